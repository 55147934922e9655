// Points a person draws or uploads (pure): blobs sampled from a seeded generator, CSV parsing
// with the server's limits (server/uploads.py), and the CSV the server takes (x,y,mode rows).

export const LIMITS = Object.freeze({
  maxBytes: 1 << 20, // server/uploads.py MAX_BYTES
  maxPoints: 20000, // server/uploads.py MAX_POINTS
  minPoints: 20,
  maxModes: 25, // mode labels 0..24 (trainer/datasets.py)
  minPerMode: 5,
});

/** A small seeded generator (mulberry32): the same drawing gives the same points. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal pair from two uniforms (Box–Muller). */
function gauss(rand) {
  const u = Math.max(rand(), 1e-12);
  const v = rand();
  const r = Math.sqrt(-2 * Math.log(u));
  return [r * Math.cos(2 * Math.PI * v), r * Math.sin(2 * Math.PI * v)];
}

/** n points of an isotropic Gaussian blob {x, y, std}: [[x, y], …]. */
export function blobPoints(blob, n, rand) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const [a, b] = gauss(rand);
    out.push([blob.x + a * blob.std, blob.y + b * blob.std]);
  }
  return out;
}

/** n points sprayed in a disc of radius r around (x, y) (a brush dab). */
export function sprayPoints(x, y, r, n, rand) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const a = 2 * Math.PI * rand();
    const d = r * Math.sqrt(rand());
    out.push([x + d * Math.cos(a), y + d * Math.sin(a)]);
  }
  return out;
}

/** A drawing ({groups: [{points: [[x, y]…]}…]}) as the CSV the server takes: x,y,mode. */
export function toCSV(groups) {
  const rows = ["x,y,mode"];
  groups.forEach((g, m) => {
    for (const [x, y] of g.points) rows.push(`${x.toFixed(4)},${y.toFixed(4)},${m}`);
  });
  return `${rows.join("\n")}\n`;
}

/** Points of a drawing, and the problem with it for training (or null). */
export function checkDrawing(groups) {
  const n = groups.reduce((s, g) => s + g.points.length, 0);
  if (!groups.length) return "draw at least one blob or brush stroke";
  if (groups.length > LIMITS.maxModes) return `at most ${LIMITS.maxModes} blobs or strokes (modes); you drew ${groups.length}`;
  if (n < LIMITS.minPoints) return `need at least ${LIMITS.minPoints} points, you drew ${n}`;
  if (n > LIMITS.maxPoints) return `at most ${LIMITS.maxPoints.toLocaleString("en")} points; you drew ${n.toLocaleString("en")}`;
  const thin = groups.findIndex((g) => g.points.length < LIMITS.minPerMode);
  if (thin >= 0) return `mode ${thin + 1} has ${groups[thin].points.length} points; each needs at least ${LIMITS.minPerMode}`;
  return null;
}

const isNumber = (s) => s !== "" && Number.isFinite(Number(s));

/**
 * A CSV a person uploads: rows `x,y` or `x,y,mode` (`,`, `;` or tabs), an optional header, '#'
 * comments. Returns {groups} (one group per mode, or one group when there is no mode column,
 * `labelled` saying which) or {error} naming the line and what was expected — the same rules
 * as the server, checked before anything is sent.
 */
export function parseCSV(text, sizeBytes = null) {
  const size = sizeBytes ?? new TextEncoder().encode(text).length;
  if (size > LIMITS.maxBytes) return { error: `the file is ${(size / 1048576).toFixed(1)} MB; at most ${LIMITS.maxBytes / 1048576} MB (${LIMITS.maxPoints.toLocaleString("en")} points)` };
  const byMode = new Map();
  let width = 0;
  let n = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const s = lines[i].trim();
    if (!s || s.startsWith("#")) continue;
    const parts = s.replace(/[;\t]/g, ",").split(",").map((t) => t.trim());
    const line = i + 1;
    if (!n && !width && !parts.some(isNumber)) {
      if (parts.length !== 2 && parts.length !== 3) return { error: `line ${line}: expected the columns x,y or x,y,mode, got ${parts.length} columns` };
      continue; // a header
    }
    if ((parts.length !== 2 && parts.length !== 3) || (width && parts.length !== width)) {
      return { error: `line ${line}: expected ${width ? `${width} values like the rows before it` : "x,y or x,y,mode"}, got ${JSON.stringify(s.slice(0, 60))}` };
    }
    width = parts.length;
    const x = Number(parts[0]);
    const y = Number(parts[1]);
    if (parts[0] === "" || parts[1] === "" || Number.isNaN(x) || Number.isNaN(y)) return { error: `line ${line}: expected two numbers 'x,y', got ${JSON.stringify(s.slice(0, 60))}` };
    if (!Number.isFinite(x) || !Number.isFinite(y)) return { error: `line ${line}: values must be finite, got ${JSON.stringify(s.slice(0, 60))}` };
    let m = 0;
    if (width === 3) {
      if (!/^\d+$/.test(parts[2]) || Number(parts[2]) > LIMITS.maxModes - 1) return { error: `line ${line}: mode must be an integer in [0, ${LIMITS.maxModes - 1}], got ${JSON.stringify(parts[2].slice(0, 20))}` };
      m = Number(parts[2]);
    }
    if (!byMode.has(m)) byMode.set(m, []);
    byMode.get(m).push([x, y]);
    n += 1;
    if (n > LIMITS.maxPoints) return { error: `more than ${LIMITS.maxPoints.toLocaleString("en")} points` };
  }
  if (n < LIMITS.minPoints) return { error: `need at least ${LIMITS.minPoints} points, got ${n}` };
  const modes = [...byMode.keys()].sort((a, b) => a - b);
  const groups = modes.map((m) => ({ points: byMode.get(m), label: m }));
  if (width === 3) {
    const thin = groups.find((g) => g.points.length < LIMITS.minPerMode);
    if (thin) return { error: `mode ${thin.label} has ${thin.points.length} points; each mode needs at least ${LIMITS.minPerMode}` };
  }
  return { groups, labelled: width === 3 };
}

/** The bounding square of some points, with a margin: [xmin, xmax, ymin, ymax]. */
export function extentOf(groups, margin = 0.15) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const g of groups) for (const [x, y] of g.points) { lo = Math.min(lo, x, y); hi = Math.max(hi, x, y); }
  if (!Number.isFinite(lo)) return [-4, 4, -4, 4];
  const pad = Math.max((hi - lo) * margin, 1e-3);
  return [lo - pad, hi + pad, lo - pad, hi + pad];
}
