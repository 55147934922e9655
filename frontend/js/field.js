// Maths of the samples panel: the colour scale of D's value grid, the grid as RGBA pixels, the
// generator's gradient field, and world <-> pixel transforms. Pure (typed arrays in and out);
// samples_chart.js draws what this computes.

// Diverging scale: "looks fake" (low D) is blue, "looks real" (high D) is orange; the middle is a
// pale neutral so generated points (dark) and real points stay visible on top.
export const VALUE_STOPS = [
  [0.0, [33, 102, 172]],
  [0.25, [103, 169, 207]],
  [0.5, [247, 247, 247]],
  [0.75, [244, 165, 130]],
  [1.0, [178, 24, 43]],
];

/** A 256-entry RGB lookup table (Uint8Array of 768) interpolated between stops [[t, [r,g,b]]]. */
export function buildLUT(stops = VALUE_STOPS, size = 256) {
  const lut = new Uint8Array(size * 3);
  for (let i = 0; i < size; i++) {
    const t = i / (size - 1);
    let j = 0;
    while (j < stops.length - 2 && t > stops[j + 1][0]) j++;
    const [t0, c0] = stops[j];
    const [t1, c1] = stops[j + 1];
    const f = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 0;
    for (let c = 0; c < 3; c++) lut[3 * i + c] = Math.round(c0[c] + (c1[c] - c0[c]) * f);
  }
  return lut;
}

/**
 * The value range the colour scale spans. `probability` (σ(D)) is fixed to [0, 1] so colours mean
 * the same thing every frame. A `critic` value has no fixed scale and is defined only up to a
 * shift (WGAN's loss ignores a constant), so the scale spans the grid's own min..max.
 */
export function valueRange(grid, kind) {
  if (kind === "probability") return [0, 1];
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < grid.length; i++) {
    const v = grid[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [-1, 1];
  if (hi - lo < 1e-6) return [lo - 1e-6, hi + 1e-6];
  return [lo, hi];
}

/**
 * Paint a value grid (row 0 at ymin) into RGBA `out` (Uint8ClampedArray of w*h*4) with row 0 at
 * the top of the image (ymax), as a canvas wants it. `alpha` is 0..255.
 */
export function gridToRGBA(grid, w, h, lut, lo, hi, out, alpha = 255) {
  const span = hi - lo || 1;
  const top = lut.length / 3 - 1;
  for (let row = 0; row < h; row++) {
    const src = (h - 1 - row) * w;
    const dst = row * w * 4;
    for (let col = 0; col < w; col++) {
      let t = (grid[src + col] - lo) / span;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      if (t !== t) t = 0.5; // NaN: neutral
      const li = 3 * Math.round(t * top);
      const o = dst + 4 * col;
      out[o] = lut[li];
      out[o + 1] = lut[li + 1];
      out[o + 2] = lut[li + 2];
      out[o + 3] = alpha;
    }
  }
  return out;
}

/**
 * Central-difference gradient of the value grid in world units: returns {gx, gy} Float32Arrays
 * (row 0 at ymin like the grid). The generator is pushed along +∇D for every objective here
 * (G raises D(G(z)) whether D is a probability or a critic), so these are its gradient arrows.
 */
export function gradientField(grid, w, h, extent) {
  const [x0, x1, y0, y1] = extent;
  const dx = (x1 - x0) / Math.max(w - 1, 1);
  const dy = (y1 - y0) / Math.max(h - 1, 1);
  const gx = new Float32Array(w * h);
  const gy = new Float32Array(w * h);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const i = r * w + c;
      const cl = c > 0 ? c - 1 : c;
      const cr = c < w - 1 ? c + 1 : c;
      const rd = r > 0 ? r - 1 : r;
      const ru = r < h - 1 ? r + 1 : r;
      gx[i] = (grid[r * w + cr] - grid[r * w + cl]) / ((cr - cl) * dx || 1);
      gy[i] = (grid[ru * w + c] - grid[rd * w + c]) / ((ru - rd) * dy || 1);
    }
  }
  return { gx, gy };
}

/**
 * Arrows on a coarse lattice (`every` grid cells apart): [{x, y, u, v}] in world units, lengths
 * scaled so the longest is `maxLen` world units. Points where the gradient is ~0 are left out.
 */
export function arrowLattice(grid, w, h, extent, every = 6, maxLen = null) {
  const { gx, gy } = gradientField(grid, w, h, extent);
  const [x0, x1, y0, y1] = extent;
  const cellX = (x1 - x0) / Math.max(w - 1, 1);
  const cellY = (y1 - y0) / Math.max(h - 1, 1);
  const len = maxLen ?? 0.9 * every * Math.min(cellX, cellY);
  const pts = [];
  let peak = 0;
  const half = Math.floor(every / 2);
  for (let r = half; r < h; r += every) {
    for (let c = half; c < w; c += every) {
      const i = r * w + c;
      const m = Math.hypot(gx[i], gy[i]);
      if (Number.isFinite(m)) {
        peak = Math.max(peak, m);
        pts.push({ x: x0 + c * cellX, y: y0 + r * cellY, u: gx[i], v: gy[i], m });
      }
    }
  }
  if (peak <= 1e-12) return [];
  const out = [];
  for (const p of pts) {
    if (p.m < 0.02 * peak) continue;
    out.push({ x: p.x, y: p.y, u: (p.u / peak) * len, v: (p.v / peak) * len });
  }
  return out;
}

/**
 * Arrows of a vector field sent on an A × A lattice over the extent (row 0 at ymin; `uv` the
 * flat [u, v, u, v, …] of the frame's `arrows`): [{x, y, u, v}] in world units. A score field's
 * length spans decades (it grows as 1/distance near a training point), so lengths go as the
 * square root of the magnitude, the longest 0.9 of the lattice's spacing; ~0 is left out.
 */
export function fieldArrows(side, uv, extent) {
  const [x0, x1, y0, y1] = extent;
  const cellX = (x1 - x0) / Math.max(side - 1, 1);
  const cellY = (y1 - y0) / Math.max(side - 1, 1);
  const len = 0.9 * Math.min(cellX, cellY);
  let peak = 0;
  for (let i = 0; i < side * side; i++) {
    const m = Math.hypot(uv[2 * i], uv[2 * i + 1]);
    if (Number.isFinite(m)) peak = Math.max(peak, m);
  }
  if (peak <= 1e-12) return [];
  const out = [];
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      const i = r * side + c;
      const u = uv[2 * i];
      const v = uv[2 * i + 1];
      const m = Math.hypot(u, v);
      if (!Number.isFinite(m) || m < 1e-3 * peak) continue;
      const s = (len * Math.sqrt(m / peak)) / m;
      out.push({ x: x0 + c * cellX, y: y0 + r * cellY, u: u * s, v: v * s });
    }
  }
  return out;
}

/** Affine world -> canvas pixel transform keeping the aspect ratio 1:1 inside (w, h, pad). */
export function worldToPixel(extent, width, height, pad = 0) {
  const [x0, x1, y0, y1] = extent;
  const sx = (width - 2 * pad) / (x1 - x0);
  const sy = (height - 2 * pad) / (y1 - y0);
  const s = Math.min(sx, sy);
  const ox = pad + ((width - 2 * pad) - s * (x1 - x0)) / 2;
  const oy = pad + ((height - 2 * pad) - s * (y1 - y0)) / 2;
  return {
    scale: s,
    x: (x) => ox + (x - x0) * s,
    y: (y) => oy + (y1 - y) * s, // canvas y grows downwards
    box: [ox, oy, s * (x1 - x0), s * (y1 - y0)],
  };
}

/**
 * Gray pixels of an image sample in [-1, 1] (digits are scaled so), as RGBA: ink dark on white.
 * `src` is Float32Array of N*D, image `i` of side `side`; writes into `out` (side*side*4).
 */
export function imageToRGBA(src, i, side, out) {
  const d = side * side;
  for (let p = 0; p < d; p++) {
    let v = src[i * d + p];
    v = v !== v ? -1 : v < -1 ? -1 : v > 1 ? 1 : v;
    const g = Math.round(255 * (1 - (v + 1) / 2));
    out[4 * p] = g;
    out[4 * p + 1] = g;
    out[4 * p + 2] = g;
    out[4 * p + 3] = 255;
  }
  return out;
}
