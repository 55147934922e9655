// The browser's protocol decoder against (1) a frame laid out by hand from the table in
// docs/protocol.md and (2) fixture frames written by the Python encoder (server/protocol.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import {
  decode, encode, unpackRecords, parseText, ProtocolError, modeOf, isHighQuality, FRAME, REAL,
} from "../js/protocol.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");

// A frame written byte by byte from the spec's tables (not by encode()), so the decoder is
// checked against the document rather than against itself.
function handFrame() {
  const json = new TextEncoder().encode('{"step":40,"loss_d":null,"status":"paused"}'); // 43 B + 1 pad
  const n = 3, d = 2, k = 2, gw = 2, gh = 1;
  const jpad = (4 - (json.length % 4)) % 4;
  const size = 32 + json.length + jpad + 4 * n * d + 4 * k + n + 1 + 4 * gw * gh;
  const buf = new ArrayBuffer(size);
  const dv = new DataView(buf);
  const u8 = new Uint8Array(buf);
  u8.set([0x43, 0x4c, 0x41, 0x42], 0);
  u8[4] = 1; u8[5] = 1;
  dv.setUint16(6, 1, true); // grid follows
  dv.setUint32(8, 40, true);
  dv.setUint32(12, 2, true);
  dv.setUint32(16, json.length, true);
  dv.setUint32(20, n, true);
  dv.setUint16(24, d, true);
  dv.setUint16(26, k, true);
  dv.setUint16(28, gw, true);
  dv.setUint16(30, gh, true);
  let off = 32;
  u8.set(json, off); off += json.length;
  for (let i = 0; i < jpad; i++) u8[off++] = 0x20;
  for (const v of [1.5, -2, 0.25, 3, -1, 0]) { dv.setFloat32(off, v, true); off += 4; }
  for (const v of [0.75, 0]) { dv.setFloat32(off, v, true); off += 4; }
  for (const v of [0x80 | 1, 0, 0x80]) u8[off++] = v;
  off += 1; // pad modes to 4
  for (const v of [0.1, 0.9]) { dv.setFloat32(off, v, true); off += 4; }
  assert.equal(off, size);
  return buf;
}

test("decodes a frame laid out by hand from the spec", () => {
  const m = decode(handFrame());
  assert.equal(m.type, FRAME);
  assert.equal(m.step, 40);
  assert.equal(m.configVersion, 2);
  assert.deepEqual(m.scalars, { step: 40, loss_d: null, status: "paused" });
  assert.equal(m.n, 3);
  assert.equal(m.dim, 2);
  assert.deepEqual(Array.from(m.samples), [1.5, -2, 0.25, 3, -1, 0]);
  assert.deepEqual(Array.from(m.occupancy), [0.75, 0]);
  assert.deepEqual([0, 1, 2].map((i) => modeOf(m.modes, i)), [1, 0, 0]);
  assert.deepEqual([0, 1, 2].map((i) => isHighQuality(m.modes, i)), [true, false, true]);
  assert.equal(m.gridW, 2);
  assert.equal(m.gridH, 1);
  assert.ok(Math.abs(m.grid[0] - 0.1) < 1e-7 && Math.abs(m.grid[1] - 0.9) < 1e-7);
  assert.equal(m.images, false);
});

// The same frame with the manifold part appended by hand: flag 4, manifold_side 2 in the JSON,
// then 2×2×2 float32 after the value grid.
function handManifoldFrame() {
  const json = new TextEncoder().encode('{"step":40,"manifold_side":2,"manifold_note":"z"}'); // 49 B + 3 pad
  const n = 1, d = 2, k = 1, gw = 1, gh = 1, side = 2;
  const jpad = (4 - (json.length % 4)) % 4;
  const size = 32 + json.length + jpad + 4 * n * d + 4 * k + n + 3 + 4 * gw * gh + 4 * side * side * 2;
  const buf = new ArrayBuffer(size);
  const dv = new DataView(buf);
  const u8 = new Uint8Array(buf);
  u8.set([0x43, 0x4c, 0x41, 0x42], 0);
  u8[4] = 1; u8[5] = 1;
  dv.setUint16(6, 1 | 4, true); // grid and manifold follow
  dv.setUint32(8, 40, true);
  dv.setUint32(16, json.length, true);
  dv.setUint32(20, n, true);
  dv.setUint16(24, d, true);
  dv.setUint16(26, k, true);
  dv.setUint16(28, gw, true);
  dv.setUint16(30, gh, true);
  let off = 32;
  u8.set(json, off); off += json.length + jpad;
  for (const v of [0.5, 0.5]) { dv.setFloat32(off, v, true); off += 4; }
  dv.setFloat32(off, 1, true); off += 4;
  u8[off] = 0x80; off += 4; // one modes byte, 3 pad
  dv.setFloat32(off, 0.5, true); off += 4;
  for (const v of [-1, -1, 1, -1, -1, 1, 1, 1]) { dv.setFloat32(off, v, true); off += 4; }
  assert.equal(off, size);
  return buf;
}

test("decodes the manifold part laid out by hand (flag 4, manifold_side in the JSON)", () => {
  const buf = handManifoldFrame();
  const m = decode(buf);
  assert.equal(m.manifoldSide, 2);
  assert.deepEqual(Array.from(m.manifold), [-1, -1, 1, -1, -1, 1, 1, 1]);
  assert.equal(m.manifold.buffer, buf); // a view, not a copy
  assert.equal(m.scalars.manifold_note, "z");
  assert.throws(() => decode(buf.slice(0, buf.byteLength - 4)), /frame truncated: manifold need 32 bytes/);
  // the flag without a side is refused by name
  const bad = encode({ type: FRAME, step: 1, scalars: { step: 1 }, samples: [0, 0], n: 1, dim: 2, occupancy: [1], modes: [0] });
  new DataView(bad).setUint16(6, 4, true);
  assert.throws(() => decode(bad), /manifold flag needs manifold_side/);
  // encode() writes the part back
  const again = decode(encode({ ...m, manifold: m.manifold, manifoldSide: 2 }));
  assert.deepEqual(Array.from(again.manifold), Array.from(m.manifold));
  assert.deepEqual(Array.from(again.grid), Array.from(m.grid));
});

test("arrays are views into the received buffer, not copies", () => {
  const buf = handFrame();
  const m = decode(buf);
  assert.equal(m.samples.buffer, buf);
  assert.equal(m.grid.buffer, buf);
});

test("decodes from a Uint8Array slice at an unaligned offset", () => {
  const frame = new Uint8Array(handFrame());
  const big = new Uint8Array(frame.length + 3);
  big.set(frame, 3);
  const m = decode(big.subarray(3));
  assert.deepEqual(Array.from(m.samples), [1.5, -2, 0.25, 3, -1, 0]);
  assert.equal(m.step, 40);
});

test("refuses short, foreign and truncated messages with a message naming the part", () => {
  const buf = handFrame();
  assert.throws(() => decode(buf.slice(0, 20)), /header needs 32 bytes, got 20/);
  const bad = new Uint8Array(buf.slice(0));
  bad[0] = 0x58;
  assert.throws(() => decode(bad.buffer), /bad magic/);
  const v2 = new Uint8Array(buf.slice(0));
  v2[4] = 2;
  assert.throws(() => decode(v2.buffer), /protocol version 2/);
  assert.throws(() => decode(buf.slice(0, 90)), (e) => e instanceof ProtocolError
    && /frame truncated: samples need 24 bytes at offset 76, 14 left/.test(e.message));
  assert.throws(() => decode(buf.slice(0, buf.byteLength - 4)), /value grid need 8 bytes/);
});

test("encode() is decode()'s inverse for image frames and real samples", () => {
  const samples = Float32Array.from({ length: 2 * 64 }, (_, i) => (i % 9) / 4 - 1);
  const buf = encode({ type: FRAME, step: 7, configVersion: 1, scalars: { step: 7 }, samples,
    n: 2, dim: 64, occupancy: [0.5, 0.25, 0], modes: [2, 0x81], images: true });
  const m = decode(buf);
  assert.equal(m.images, true);
  assert.equal(m.grid, null);
  assert.deepEqual(Array.from(m.samples), Array.from(samples));
  assert.deepEqual(Array.from(m.occupancy), [0.5, 0.25, 0]);
  const real = decode(encode({ type: REAL, samples: [1, 2], n: 1, dim: 2, modes: [0x83] }));
  assert.equal(real.type, REAL);
  assert.deepEqual(real.scalars, {});
  assert.equal(modeOf(real.modes, 0), 3);
});

test("replay records split on their u32 lengths", () => {
  const a = new Uint8Array(handFrame());
  const b = new Uint8Array(encode({ type: REAL, samples: [1, 2], n: 1, dim: 2, modes: [0x80] }));
  const body = new Uint8Array(8 + a.length + b.length);
  const dv = new DataView(body.buffer);
  dv.setUint32(0, a.length, true);
  body.set(a, 4);
  dv.setUint32(4 + a.length, b.length, true);
  body.set(b, 8 + a.length);
  const recs = unpackRecords(body.buffer);
  assert.equal(recs.length, 2);
  assert.equal(decode(recs[0]).step, 40);
  assert.equal(decode(recs[1]).type, REAL);
  assert.throws(() => unpackRecords(body.buffer.slice(0, 10)), /replay truncated/);
});

test("text messages need a type", () => {
  assert.equal(parseText('{"type":"status","status":"failed"}').status, "failed");
  assert.throws(() => parseText("{}"), /no type/);
  assert.throws(() => parseText("{"), /does not parse/);
});

// ---------------------------------------------------------------- Python-encoded fixtures
const fixtures = join(here, "fixtures");
const encoder = join(root, "server", "protocol.py");

const NAMES = ["ring", "real", "digits", "manifold"];

// fixtures are generated, not committed: made again when one is missing or older than the
// encoder or the script that writes them (a stale set would test yesterday's format)
function fixturesFresh() {
  const newest = Math.max(...[encoder, join(root, "tests", "protocol_fixture.py")]
    .filter((p) => existsSync(p)).map((p) => statSync(p).mtimeMs));
  return NAMES.every((n) => existsSync(join(fixtures, `${n}.bin`))
    && existsSync(join(fixtures, `${n}.json`))
    && statSync(join(fixtures, `${n}.bin`)).mtimeMs >= newest);
}

function ensureFixtures() {
  if (fixturesFresh()) return null;
  if (!existsSync(encoder)) return "server/protocol.py (the Python encoder) is not in this tree";
  mkdirSync(fixtures, { recursive: true });
  // the project's Python (the venv's `python` when the suite runs inside it), else python3
  let python = process.env.PYTHON || "python";
  const run = (exe) => spawnSync(exe, [join(root, "tests", "protocol_fixture.py"), fixtures], {
    cwd: root, env: { ...process.env, PYTHONPATH: root }, encoding: "utf8", timeout: 60000,
  });
  let r = run(python);
  if (r.error && r.error.code === "ENOENT" && !process.env.PYTHON) {
    python = "python3";
    r = run(python);
  }
  if (r.status !== 0) {
    return `${python} tests/protocol_fixture.py failed: ${(r.stderr || r.error || "").toString().trim().split("\n").pop()}`;
  }
  return null;
}

const why = ensureFixtures();
const skip = why && process.env.CI !== "true" ? why : false;

for (const name of NAMES) {
  test(`decodes the Python encoder's ${name} fixture`, { skip }, () => {
    if (why) assert.fail(why); // under CI a missing encoder is a failure, not a skip
    const bytes = readFileSync(join(fixtures, `${name}.bin`));
    const want = JSON.parse(readFileSync(join(fixtures, `${name}.json`), "utf8"));
    // a fresh ArrayBuffer, as a websocket with binaryType "arraybuffer" delivers it
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    assert.equal(buf.byteLength, want.bytes);
    const m = decode(buf);
    assert.equal(m.type, want.type);
    assert.equal(m.step, want.step);
    assert.equal(m.configVersion, want.config_version);
    assert.deepEqual(m.scalars, want.scalars);
    assert.equal(m.n, want.n);
    assert.equal(m.dim, want.dim);
    assert.equal(m.images, want.images);
    assert.deepEqual(Array.from(m.samples), want.samples);
    assert.deepEqual(Array.from(m.occupancy), want.occupancy);
    assert.deepEqual(Array.from(m.modes, (_, i) => modeOf(m.modes, i)), want.nearest);
    assert.deepEqual(Array.from(m.modes, (_, i) => isHighQuality(m.modes, i)), want.hq);
    if (want.grid === null) assert.equal(m.grid, null);
    else {
      assert.equal(m.gridW, want.grid_w);
      assert.equal(m.gridH, want.grid_h);
      assert.deepEqual(Array.from(m.grid), want.grid);
    }
    if (want.manifold === null) assert.equal(m.manifold, null);
    else {
      assert.equal(m.manifoldSide, want.manifold_side);
      assert.deepEqual(Array.from(m.manifold), want.manifold);
    }
  });
}
