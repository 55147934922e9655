// The samples panel on a plain 2-D canvas: D's value grid as a heatmap, real points, generated
// points, optional generator-gradient arrows and G's manifold (its image of a latent grid, lines
// joining grid neighbours); for image data a grid of 8×8 digits. Before a run starts it shows the
// dataset alone (drawData).
// Plotly takes 25–180 ms a frame for this picture and a canvas about 3 ms, hence a canvas
// (docs/dashboard.md).
// The maths (colour scale, transforms, gradients) is in field.js; this file only draws.

import {
  buildLUT, valueRange, gridToRGBA, arrowLattice, fieldArrows, worldToPixel, imageToRGBA, VALUE_STOPS,
} from "./field.js";

const LUT = buildLUT();
const REAL_COLOR = "rgba(20, 20, 20, 0.35)";
const FAKE_HQ = "#1b1f3b";
const FAKE_LQ = "rgba(140, 40, 160, 0.55)";
const MANIFOLD = "rgba(0, 121, 140, 0.8)";
/** A manifold narrower than this (CSS px) is a collapsed spot: it is ringed and drawn magnified. */
const MANIFOLD_SPOT = 16;

// what the colour bar says the heatmap is, by the frame's value kind (a GA's landscape: fitness)
const VALUE_LABELS = {
  probability: "D(x) = P(real)", critic: "critic value", fitness: "fitness", training: "near a training point",
};

export class SamplesChart {
  /** canvas: the <canvas>; opts.legend: draw the colour-scale legend (off for small panels). */
  constructor(canvas, opts = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.legend = opts.legend !== false;
    this.pointSize = opts.pointSize || 2.2;
    this.dataset = null;
    this.valueKind = "probability";
    this.real = null; // decoded real-samples message
    this.realLayer = null; // offscreen canvas with the real points, redrawn on resize only
    this.gridCanvas = document.createElement("canvas");
    this.gridCtx = this.gridCanvas.getContext("2d");
    this.gridImage = null;
    this.imageTile = null;
    this.size = [0, 0];
    this.lastFrame = null;
    this.show = { heat: true, real: true, fake: true, arrows: false, manifold: false };
  }

  setDataset(dataset, valueKind) {
    this.dataset = dataset;
    this.valueKind = valueKind || "probability";
    this.real = null;
    this.realLayer = null;
    this.lastFrame = null;
  }

  setReal(msg) {
    this.real = msg;
    this.realLayer = null;
  }

  setShow(show) {
    this.show = { ...this.show, ...show };
    if (this.lastFrame) this.draw(this.lastFrame);
  }

  /** Match the backing store to the element's CSS size × devicePixelRatio; true when changed. */
  fit() {
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const r = this.canvas.getBoundingClientRect();
    const w = Math.max(1, Math.round(r.width * dpr));
    const h = Math.max(1, Math.round(r.height * dpr));
    if (w === this.size[0] && h === this.size[1]) return false;
    this.canvas.width = w;
    this.canvas.height = h;
    this.size = [w, h];
    this.dpr = dpr;
    this.realLayer = null;
    return true;
  }

  extent(frame) {
    return (frame && frame.scalars && frame.scalars.extent) || (this.dataset && this.dataset.extent)
      || [-3, 3, -3, 3];
  }

  clear(message) {
    this.fit();
    const { ctx } = this;
    const [w, h] = this.size;
    ctx.fillStyle = "#f4f5f8";
    ctx.fillRect(0, 0, w, h);
    if (message) {
      ctx.fillStyle = "#667";
      ctx.font = `${14 * (this.dpr || 1)}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.fillText(message, w / 2, h / 2);
    }
    this.lastFrame = null;
  }

  /** Draw a decoded frame (protocol.decode). */
  draw(frame) {
    this.fit();
    this.lastFrame = frame;
    this.showing = "frame";
    if (frame.images) this.drawImages(frame);
    else this.drawPoints(frame);
  }

  drawPoints(frame) {
    const { ctx } = this;
    const [w, h] = this.size;
    const dpr = this.dpr || 1;
    const ext = this.extent(frame);
    const legendW = this.legend ? 46 * dpr : 0;
    const t = worldToPixel(ext, w - legendW, h, 6 * dpr);
    const [bx, by, bw, bh] = t.box;
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, w, h);
    ctx.save();
    ctx.beginPath();
    ctx.rect(bx, by, bw, bh);
    ctx.clip(); // samples that wander off the extent are cut at the frame, not drawn on the legend

    // value heatmap: the grid goes into a GW×GH canvas once, then one scaled drawImage
    let range = null;
    if (frame.grid && this.show.heat) {
      const gw = frame.gridW;
      const gh = frame.gridH;
      if (this.gridCanvas.width !== gw || this.gridCanvas.height !== gh || !this.gridImage) {
        this.gridCanvas.width = gw;
        this.gridCanvas.height = gh;
        this.gridImage = this.gridCtx.createImageData(gw, gh);
      }
      range = valueRange(frame.grid, this.valueKind);
      gridToRGBA(frame.grid, gw, gh, LUT, range[0], range[1], this.gridImage.data);
      this.gridCtx.putImageData(this.gridImage, 0, 0);
      ctx.imageSmoothingEnabled = true;
      // grid cell centres sit on the extent's edges, so stretch by half a cell each side
      const cx = bw / Math.max(gw - 1, 1);
      const cy = bh / Math.max(gh - 1, 1);
      ctx.drawImage(this.gridCanvas, bx - cx / 2, by - cy / 2, bw + cx, bh + cy);
    } else {
      ctx.fillStyle = "#f7f7f9";
      ctx.fillRect(bx, by, bw, bh);
    }

    if (this.show.real && this.real) {
      if (!this.realLayer) this.realLayer = this.paintReal(t, w, h);
      ctx.drawImage(this.realLayer, 0, 0);
    }

    if (this.show.arrows && (frame.grid || (frame.scalars && frame.scalars.arrows))) {
      this.drawArrows(frame, ext, t);
    }

    if (this.show.fake) {
      // one path per colour: two fills instead of 2,500
      const s = this.pointSize * dpr;
      const half = s / 2;
      const xs = frame.samples;
      const modes = frame.modes;
      for (const hq of [false, true]) {
        ctx.fillStyle = hq ? FAKE_HQ : FAKE_LQ;
        ctx.beginPath();
        for (let i = 0; i < frame.n; i++) {
          if (((modes[i] & 0x80) !== 0) !== hq) continue;
          const px = t.x(xs[2 * i]);
          const py = t.y(xs[2 * i + 1]);
          ctx.rect(px - half, py - half, s, s);
        }
        ctx.fill();
      }
    }

    // over the points: a collapsed G folds its whole grid onto one mode, where it must still show
    if (this.show.manifold && frame.manifold) this.drawManifold(frame, t);

    if (this.dataset && this.dataset.centres) {
      ctx.strokeStyle = "rgba(46, 158, 91, 0.9)";
      ctx.lineWidth = 1.2 * dpr;
      const r = 5 * dpr;
      ctx.beginPath();
      for (const [cx, cy] of this.dataset.centres) {
        const px = t.x(cx);
        const py = t.y(cy);
        ctx.moveTo(px + r, py);
        ctx.arc(px, py, r, 0, 2 * Math.PI);
      }
      ctx.stroke();
    }

    ctx.restore();
    ctx.strokeStyle = "#c9ccd6";
    ctx.lineWidth = 1;
    ctx.strokeRect(bx + 0.5, by + 0.5, bw - 1, bh - 1);
    if (this.legend && range) this.drawLegend(range, w - legendW + 8 * dpr, by + 4 * dpr, 12 * dpr, bh - 8 * dpr);
  }

  paintReal(t, w, h) {
    const layer = document.createElement("canvas");
    layer.width = w;
    layer.height = h;
    const c = layer.getContext("2d");
    const dpr = this.dpr || 1;
    const s = 1.6 * dpr;
    c.fillStyle = REAL_COLOR;
    c.beginPath();
    const xs = this.real.samples;
    for (let i = 0; i < this.real.n; i++) c.rect(t.x(xs[2 * i]) - s / 2, t.y(xs[2 * i + 1]) - s / 2, s, s);
    c.fill();
    return layer;
  }

  /**
   * G's image of the M×M latent grid: each latent row and column as a polyline (one path for
   * all), the grid's border heavier, and a dot at its first corner (z[0] = z[1] = −2σ) so a fold
   * that turns the grid over shows. A collapsed generator maps the whole grid onto a spot a few
   * pixels wide: then a ring marks the spot and an inset beside it draws the grid magnified, so
   * the fold is seen rather than an invisible dot.
   */
  drawManifold(frame, t) {
    const { ctx } = this;
    const dpr = this.dpr || 1;
    const m = frame.manifoldSide;
    const p = frame.manifold; // (M, M, 2) row-major
    let x0 = Infinity; let x1 = -Infinity; let y0 = Infinity; let y1 = -Infinity;
    for (let i = 0; i < m * m; i++) {
      const x = t.x(p[2 * i]); const y = t.y(p[2 * i + 1]);
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    const X = (r, c) => t.x(p[2 * (r * m + c)]);
    const Y = (r, c) => t.y(p[2 * (r * m + c) + 1]);
    this.manifoldPaths(m, X, Y, dpr);
    const span = Math.max(x1 - x0, y1 - y0);
    this.manifoldInset = null;
    if (!(span < MANIFOLD_SPOT * dpr) || !Number.isFinite(span)) return;
    // the spot: a ring around it
    const cx = (x0 + x1) / 2; const cy = (y0 + y1) / 2;
    const ring = (MANIFOLD_SPOT / 2 + 6) * dpr;
    ctx.strokeStyle = MANIFOLD;
    ctx.lineWidth = 2 * dpr;
    ctx.beginPath();
    ctx.arc(cx, cy, ring, 0, 2 * Math.PI);
    ctx.stroke();
    // the inset, in the plot's corner farthest from the spot
    const [bx, by, bw, bh] = t.box;
    const size = Math.min(110 * dpr, bw / 3, bh / 3);
    const pad = 6 * dpr;
    const ix = cx < bx + bw / 2 ? bx + bw - size - pad : bx + pad;
    const iy = cy < by + bh / 2 ? by + bh - size - pad : by + pad;
    const zoom = (size - 20 * dpr) / Math.max(span, 1e-3);
    const ox = ix + size / 2; const oy = iy + (size - 12 * dpr) / 2;
    ctx.fillStyle = "rgba(255, 255, 255, 0.94)";
    ctx.fillRect(ix, iy, size, size);
    ctx.lineWidth = 1 * dpr;
    ctx.strokeRect(ix, iy, size, size);
    ctx.beginPath();
    ctx.moveTo(cx + (ix + size / 2 > cx ? ring : -ring), cy);
    ctx.lineTo(ix + size / 2 > cx ? ix : ix + size, iy + size / 2);
    ctx.stroke();
    this.manifoldPaths(m, (r, c) => ox + (X(r, c) - cx) * zoom, (r, c) => oy + (Y(r, c) - cy) * zoom, dpr);
    ctx.fillStyle = MANIFOLD;
    ctx.font = `${10 * dpr}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    const times = zoom >= 10 ? Math.round(zoom) : Number(zoom.toFixed(1));
    ctx.fillText(`G's whole grid, ×${times}`, ix + size / 2, iy + size - 2 * dpr);
    this.manifoldInset = { x: ix / dpr, y: iy / dpr, size: size / dpr, zoom };
  }

  /** The manifold's polylines, border and first-corner dot, through the point maps X, Y. */
  manifoldPaths(m, X, Y, dpr) {
    const { ctx } = this;
    ctx.strokeStyle = MANIFOLD;
    ctx.lineWidth = 0.9 * dpr;
    ctx.beginPath();
    for (let r = 1; r < m - 1; r++) {
      ctx.moveTo(X(r, 0), Y(r, 0));
      for (let c = 1; c < m; c++) ctx.lineTo(X(r, c), Y(r, c));
    }
    for (let c = 1; c < m - 1; c++) {
      ctx.moveTo(X(0, c), Y(0, c));
      for (let r = 1; r < m; r++) ctx.lineTo(X(r, c), Y(r, c));
    }
    ctx.stroke();
    ctx.lineWidth = 2 * dpr;
    ctx.beginPath();
    ctx.moveTo(X(0, 0), Y(0, 0));
    for (let c = 1; c < m; c++) ctx.lineTo(X(0, c), Y(0, c));
    for (let r = 1; r < m; r++) ctx.lineTo(X(r, m - 1), Y(r, m - 1));
    for (let c = m - 2; c >= 0; c--) ctx.lineTo(X(m - 1, c), Y(m - 1, c));
    for (let r = m - 2; r >= 0; r--) ctx.lineTo(X(r, 0), Y(r, 0));
    ctx.stroke();
    ctx.fillStyle = MANIFOLD;
    ctx.beginPath();
    ctx.arc(X(0, 0), Y(0, 0), 3 * dpr, 0, 2 * Math.PI);
    ctx.fill();
  }

  /**
   * The dataset alone, before any run: the real message of GET /api/datasets/{name}/preview
   * (real points and mode centres; for digits, the real images).
   */
  drawData(real) {
    this.fit();
    if (real.images) {
      this.drawImages(real);
    } else {
      this.drawPoints({ n: 0, samples: new Float32Array(0), modes: new Uint8Array(0), grid: null,
        manifold: null, scalars: {} });
    }
    this.lastFrame = null; // nothing of a run to redraw on resize; the caller redraws the data
    this.showing = "data";
  }

  drawArrows(frame, ext, t) {
    const { ctx } = this;
    const dpr = this.dpr || 1;
    // a field the frame carries (a family's `arrows`), else the gradient of the value grid
    const field = frame.scalars && frame.scalars.arrows;
    const arrows = field ? fieldArrows(field.side, field.uv, ext)
      : arrowLattice(frame.grid, frame.gridW, frame.gridH, ext, Math.max(2, Math.round(frame.gridW / 12)));
    ctx.strokeStyle = "rgba(30, 30, 30, 0.75)";
    ctx.lineWidth = 1.1 * dpr;
    ctx.beginPath();
    const head = 3.5 * dpr;
    for (const a of arrows) {
      const x0 = t.x(a.x);
      const y0 = t.y(a.y);
      const x1 = t.x(a.x + a.u);
      const y1 = t.y(a.y + a.v);
      const ang = Math.atan2(y1 - y0, x1 - x0);
      ctx.moveTo(x0, y0);
      ctx.lineTo(x1, y1);
      ctx.lineTo(x1 - head * Math.cos(ang - 0.45), y1 - head * Math.sin(ang - 0.45));
      ctx.moveTo(x1, y1);
      ctx.lineTo(x1 - head * Math.cos(ang + 0.45), y1 - head * Math.sin(ang + 0.45));
    }
    ctx.stroke();
  }

  drawLegend(range, x, y, w, h) {
    const { ctx } = this;
    const dpr = this.dpr || 1;
    const g = ctx.createLinearGradient(0, y + h, 0, y);
    for (const [s, [r, gg, b]] of VALUE_STOPS) g.addColorStop(s, `rgb(${r},${gg},${b})`);
    ctx.fillStyle = g;
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = "#445";
    ctx.font = `${10 * dpr}px system-ui, sans-serif`;
    ctx.textAlign = "left";
    const fmt = (v) => (Math.abs(v) >= 100 ? v.toExponential(0) : String(Number(v.toPrecision(2))));
    ctx.fillText(fmt(range[1]), x, y - 3 * dpr);
    ctx.fillText(fmt(range[0]), x, y + h + 11 * dpr);
    ctx.save();
    ctx.translate(x + w + 11 * dpr, y + h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText(VALUE_LABELS[this.valueKind] || "critic value", 0, 0);
    ctx.restore();
  }

  drawImages(frame) {
    const { ctx } = this;
    const [w, h] = this.size;
    const side = Math.round(Math.sqrt(frame.dim));
    const count = frame.n;
    const cols = Math.ceil(Math.sqrt(count));
    const rows = Math.ceil(count / cols);
    const gap = 2 * (this.dpr || 1);
    const cell = Math.floor(Math.min((w - gap) / cols, (h - gap) / rows)) - gap;
    ctx.fillStyle = "#e9ebf0";
    ctx.fillRect(0, 0, w, h);
    if (!this.imageTile || this.imageTile.width !== side) {
      this.imageTile = document.createElement("canvas");
      this.imageTile.width = side;
      this.imageTile.height = side;
      this.imagePixels = this.imageTile.getContext("2d").createImageData(side, side);
    }
    const tctx = this.imageTile.getContext("2d");
    const ox = (w - cols * (cell + gap)) / 2;
    const oy = (h - rows * (cell + gap)) / 2;
    ctx.imageSmoothingEnabled = false;
    for (let i = 0; i < count; i++) {
      imageToRGBA(frame.samples, i, side, this.imagePixels.data);
      tctx.putImageData(this.imagePixels, 0, 0);
      const x = ox + (i % cols) * (cell + gap) + gap / 2;
      const y = oy + Math.floor(i / cols) * (cell + gap) + gap / 2;
      ctx.drawImage(this.imageTile, x, y, cell, cell);
      if ((frame.modes[i] & 0x80) === 0) {
        // not confidently any digit: a thin warm border
        ctx.strokeStyle = "#e0a526";
        ctx.lineWidth = 2;
        ctx.strokeRect(x + 1, y + 1, cell - 2, cell - 2);
      }
    }
  }

  /** PNG data URL of what the panel shows now. */
  toPNG() {
    return this.canvas.toDataURL("image/png");
  }
}
