// Decoder of the Collapse Lab wire protocol, version 1 (docs/protocol.md).
//
// Pure: no DOM, no websocket. Arrays are views into the received ArrayBuffer (the spec aligns
// every array to 4 bytes), so decoding a 36 KB frame copies nothing but the small JSON part.

export const MAGIC = [0x43, 0x4c, 0x41, 0x42]; // "CLAB"
export const VERSION = 1;
export const FRAME = 1;
export const REAL = 2;
export const FLAG_GRID = 1;
export const FLAG_IMAGES = 2;
export const FLAG_MANIFOLD = 4; // G's image of an M×M latent grid follows the value grid
export const MAX_MANIFOLD_SIDE = 256;
export const HEADER_BYTES = 32;

/** A message that is not a valid protocol message; the text says what is wrong. */
export class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = "ProtocolError";
  }
}

const pad4 = (n) => (4 - (n % 4)) % 4;
const utf8 = new TextDecoder("utf-8", { fatal: true });

function need(total, off, size, what, kind) {
  if (off + size > total) {
    const left = Math.max(total - off, 0);
    throw new ProtocolError(`${kind} truncated: ${what} need ${size} bytes at offset ${off}, ${left} left`);
  }
}

/** Read the 32-byte header; throws ProtocolError on a short message, wrong magic or version. */
export function decodeHeader(view) {
  if (view.byteLength < HEADER_BYTES) {
    throw new ProtocolError(`message truncated: header needs 32 bytes, got ${view.byteLength}`);
  }
  for (let i = 0; i < 4; i++) {
    if (view.getUint8(i) !== MAGIC[i]) {
      const got = String.fromCharCode(...[0, 1, 2, 3].map((j) => view.getUint8(j)));
      throw new ProtocolError(`bad magic ${JSON.stringify(got)}, expected "CLAB"`);
    }
  }
  const version = view.getUint8(4);
  if (version !== VERSION) {
    throw new ProtocolError(`protocol version ${version}, this decoder reads ${VERSION}`);
  }
  const type = view.getUint8(5);
  if (type !== FRAME && type !== REAL) {
    throw new ProtocolError(`unknown message type ${type}, expected 1 (frame) or 2 (real)`);
  }
  return {
    type,
    flags: view.getUint16(6, true),
    step: view.getUint32(8, true),
    configVersion: view.getUint32(12, true),
    jsonBytes: view.getUint32(16, true),
    n: view.getUint32(20, true),
    dim: view.getUint16(24, true),
    k: view.getUint16(26, true),
    gridW: view.getUint16(28, true),
    gridH: view.getUint16(30, true),
  };
}

/**
 * Decode one binary message (ArrayBuffer, or a Uint8Array/DataView over one).
 * Returns {type, step, configVersion, scalars, samples (Float32Array N*D), n, dim, occupancy
 * (Float32Array K), modes (Uint8Array N, raw byte: bits 0-6 mode, bit 7 high quality),
 * grid (Float32Array GW*GH, row 0 at ymin) | null, gridW, gridH, images (bool),
 * manifold (Float32Array M*M*2, latent-grid row 0 first) | null, manifoldSide (M, or 0)}.
 */
export function decode(data) {
  let buffer;
  let base = 0;
  let length;
  if (data instanceof ArrayBuffer) {
    buffer = data;
    length = data.byteLength;
  } else if (ArrayBuffer.isView(data)) {
    buffer = data.buffer;
    base = data.byteOffset;
    length = data.byteLength;
  } else {
    throw new ProtocolError(`expected binary data, got ${typeof data}`);
  }
  const view = new DataView(buffer, base, length);
  const h = decodeHeader(view);
  const kind = h.type === FRAME ? "frame" : "real samples";
  let off = HEADER_BYTES;
  need(length, off, h.jsonBytes, "json", kind);
  let scalars = {};
  if (h.jsonBytes > 0) {
    try {
      scalars = JSON.parse(utf8.decode(new Uint8Array(buffer, base + off, h.jsonBytes)));
    } catch (e) {
      throw new ProtocolError(`${kind} garbled: json part does not parse (${e.message})`);
    }
    if (scalars === null || typeof scalars !== "object" || Array.isArray(scalars)) {
      throw new ProtocolError(`${kind} garbled: json part is not an object`);
    }
  }
  off += h.jsonBytes + pad4(h.jsonBytes);
  const sampleCount = h.n * h.dim;
  need(length, off, 4 * sampleCount, "samples", kind);
  const samples = f32(buffer, base + off, sampleCount);
  off += 4 * sampleCount;
  need(length, off, 4 * h.k, "occupancy", kind);
  const occupancy = f32(buffer, base + off, h.k);
  off += 4 * h.k;
  need(length, off, h.n, "modes", kind);
  const modes = new Uint8Array(buffer, base + off, h.n);
  off += h.n + pad4(h.n);
  let grid = null;
  if (h.flags & FLAG_GRID) {
    need(length, off, 4 * h.gridW * h.gridH, "value grid", kind);
    grid = f32(buffer, base + off, h.gridW * h.gridH);
    off += 4 * h.gridW * h.gridH;
  }
  let manifold = null;
  let side = 0;
  if (h.flags & FLAG_MANIFOLD) {
    side = scalars.manifold_side;
    if (!Number.isInteger(side) || side < 2 || side > MAX_MANIFOLD_SIDE) {
      throw new ProtocolError(`${kind} garbled: the manifold flag needs manifold_side, an integer in [2, ${MAX_MANIFOLD_SIDE}], got ${JSON.stringify(side)}`);
    }
    need(length, off, 4 * side * side * 2, "manifold", kind);
    manifold = f32(buffer, base + off, side * side * 2);
  }
  return {
    type: h.type,
    step: h.step,
    configVersion: h.configVersion,
    scalars,
    samples,
    n: h.n,
    dim: h.dim,
    occupancy,
    modes,
    grid,
    gridW: grid ? h.gridW : 0,
    gridH: grid ? h.gridH : 0,
    images: Boolean(h.flags & FLAG_IMAGES),
    manifold,
    manifoldSide: manifold ? side : 0,
  };
}

// A view when the offset is 4-aligned (always, per the spec, for a buffer we own from offset 0);
// a copy otherwise, so a decoder fed a sliced Uint8Array still works. Little-endian hosts only
// for the zero-copy path (every browser in use); big-endian hosts take the DataView copy.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function f32(buffer, byteOffset, count) {
  if (LITTLE_ENDIAN && byteOffset % 4 === 0) return new Float32Array(buffer, byteOffset, count);
  const out = new Float32Array(count);
  const dv = new DataView(buffer, byteOffset, count * 4);
  for (let i = 0; i < count; i++) out[i] = dv.getFloat32(4 * i, true);
  return out;
}

/** Mode index of sample i (bits 0-6 of its modes byte). */
export const modeOf = (modes, i) => modes[i] & 0x7f;
/** Whether sample i is high quality (bit 7 of its modes byte). */
export const isHighQuality = (modes, i) => (modes[i] & 0x80) !== 0;

/**
 * Split a replay body (`u32 length | message` records, docs/protocol.md) into messages.
 * Returns Uint8Array views; pass each to decode().
 */
export function unpackRecords(buffer) {
  const out = [];
  const dv = new DataView(buffer);
  let off = 0;
  while (off < buffer.byteLength) {
    if (off + 4 > buffer.byteLength) {
      throw new ProtocolError(`replay truncated: record length needs 4 bytes at offset ${off}`);
    }
    const n = dv.getUint32(off, true);
    off += 4;
    if (off + n > buffer.byteLength) {
      throw new ProtocolError(
        `replay truncated: record needs ${n} bytes at offset ${off}, ${buffer.byteLength - off} left`,
      );
    }
    out.push(new Uint8Array(buffer, off, n));
    off += n;
  }
  return out;
}

/** Parse a text message; returns the object or throws ProtocolError when it has no type. */
export function parseText(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch (e) {
    throw new ProtocolError(`text message does not parse (${e.message})`);
  }
  if (!msg || typeof msg.type !== "string") {
    throw new ProtocolError("text message has no type");
  }
  return msg;
}

/**
 * Encode a frame (for tests and the replay of recorded ticks): the inverse of decode().
 * fields: {type, step, configVersion, scalars, samples (N*D), n, dim, occupancy, modes, grid,
 * gridW, gridH, images, manifold (M*M*2), manifoldSide}. With a manifold, `manifold_side` is
 * written into the scalars.
 */
export function encode(fields) {
  const enc = new TextEncoder();
  const manifold = fields.manifold || null;
  const side = manifold ? fields.manifoldSide : 0;
  const scalars = manifold ? { ...(fields.scalars || {}), manifold_side: side } : fields.scalars;
  const js = scalars && Object.keys(scalars).length
    ? enc.encode(JSON.stringify(scalars)) : new Uint8Array(0);
  const n = fields.n;
  const d = fields.dim;
  const k = fields.occupancy ? fields.occupancy.length : 0;
  const grid = fields.grid || null;
  const gw = grid ? fields.gridW : 0;
  const gh = grid ? fields.gridH : 0;
  const size = HEADER_BYTES + js.length + pad4(js.length) + 4 * n * d + 4 * k + n + pad4(n)
    + (grid ? 4 * gw * gh : 0) + (manifold ? 8 * side * side : 0);
  const buf = new ArrayBuffer(size);
  const dv = new DataView(buf);
  const u8 = new Uint8Array(buf);
  u8.set(MAGIC, 0);
  dv.setUint8(4, VERSION);
  dv.setUint8(5, fields.type || FRAME);
  dv.setUint16(6, (grid ? FLAG_GRID : 0) | (fields.images ? FLAG_IMAGES : 0)
    | (manifold ? FLAG_MANIFOLD : 0), true);
  dv.setUint32(8, fields.step || 0, true);
  dv.setUint32(12, fields.configVersion || 0, true);
  dv.setUint32(16, js.length, true);
  dv.setUint32(20, n, true);
  dv.setUint16(24, d, true);
  dv.setUint16(26, k, true);
  dv.setUint16(28, gw, true);
  dv.setUint16(30, gh, true);
  let off = HEADER_BYTES;
  u8.set(js, off);
  off += js.length;
  for (let i = 0; i < pad4(js.length); i++) u8[off++] = 0x20;
  for (let i = 0; i < n * d; i++, off += 4) dv.setFloat32(off, fields.samples[i], true);
  for (let i = 0; i < k; i++, off += 4) dv.setFloat32(off, fields.occupancy[i], true);
  for (let i = 0; i < n; i++) u8[off++] = fields.modes ? fields.modes[i] : 0;
  off += pad4(n);
  if (grid) for (let i = 0; i < gw * gh; i++, off += 4) dv.setFloat32(off, grid[i], true);
  if (manifold) for (let i = 0; i < 2 * side * side; i++, off += 4) dv.setFloat32(off, manifold[i], true);
  return buf;
}
