// Occupancy on canvas: bars per mode (coloured covered / starving / dropped) and the occupancy-
// over-time heatmap (modes × ticks), where mode hopping shows as a staircase.
//
// Why canvas and not Plotly: measured in headless Chromium on the 2-core dev machine with no
// training running, one Plotly bar `restyle` costs ~7 ms and one heatmap `extendTraces` ~14 ms,
// so these two charts alone would spend the whole 8 ms frame budget three times over at 10 fps.
// Drawn here they cost well under a millisecond. The curves stay in Plotly (charts.js).

import { buildLUT } from "./field.js";
import { typeScale } from "./room.js";
import { OCC_COLORS, classifyOccupancy, indexAtStep } from "./series.js";

// white (0: dropped) → amber → deep red (≥ 2/K, twice the fair share)
const HEAT_LUT = buildLUT([
  [0, [255, 255, 255]], [0.12, [253, 233, 201]], [0.5, [240, 138, 75]], [1, [122, 31, 61]],
]);
const FONT = "system-ui, -apple-system, Segoe UI, sans-serif";
const MARKER = "#7a5af8";

function fit(canvas) {
  const dpr = Math.min(window.devicePixelRatio || 1, 2);
  const r = canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round(r.width * dpr));
  const h = Math.max(1, Math.round(r.height * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  return { w, h, dpr };
}

/** Bars per mode with the 1/(4K) "covered" line and the 1/K fair share. */
export class OccupancyBars {
  constructor(canvas, opts = {}) {
    this.canvas = canvas;
    this.axes = opts.axes !== false;
    this.names = [];
    this.last = null;
  }

  setModes(names) {
    this.names = names || [];
  }

  draw(occupancy) {
    this.last = occupancy;
    const { w, h, dpr } = fit(this.canvas);
    const ctx = this.canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    const k = occupancy.length;
    if (!k) return;
    const ts = typeScale(); // the projector's larger type (room.js)
    const left = this.axes ? 34 * ts * dpr : 0;
    const bottom = this.axes ? 14 * ts * dpr : 0;
    const top = this.axes ? 6 * dpr : 0;
    const ph = h - bottom - top;
    const pw = w - left;
    let ymax = 2.5 / k;
    for (let i = 0; i < k; i++) if (occupancy[i] > ymax) ymax = occupancy[i];
    ymax = Math.min(1, Math.ceil(ymax * 20) / 20);
    const y = (v) => top + ph - (v / ymax) * ph;
    ctx.font = `${10 * ts * dpr}px ${FONT}`;
    if (this.axes) {
      ctx.fillStyle = "#5f6577";
      ctx.strokeStyle = "#eceef3";
      ctx.lineWidth = 1;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      const step = ymax > 0.5 ? 0.25 : ymax > 0.2 ? 0.1 : 0.05;
      for (let v = 0; v <= ymax + 1e-9; v += step) {
        ctx.beginPath();
        ctx.moveTo(left, Math.round(y(v)) + 0.5);
        ctx.lineTo(w, Math.round(y(v)) + 0.5);
        ctx.stroke();
        ctx.fillText(`${Math.round(v * 100)}%`, left - 4 * dpr, y(v));
      }
    }
    const cls = classifyOccupancy(occupancy);
    const bw = pw / k;
    const gap = Math.min(4 * dpr, bw * 0.2);
    for (let i = 0; i < k; i++) {
      const v = occupancy[i];
      const bh = cls[i] === "dropped" ? 2 * dpr : Math.max(1, (v / ymax) * ph);
      ctx.fillStyle = OCC_COLORS[cls[i]];
      ctx.fillRect(left + i * bw + gap / 2, top + ph - bh, Math.max(1, bw - gap), bh);
    }
    const line = (v, color, dash) => {
      ctx.strokeStyle = color;
      ctx.setLineDash(dash);
      ctx.beginPath();
      ctx.moveTo(left, Math.round(y(v)) + 0.5);
      ctx.lineTo(w, Math.round(y(v)) + 0.5);
      ctx.stroke();
      ctx.setLineDash([]);
    };
    line(1 / (4 * k), "#e0a526", [4 * dpr, 3 * dpr]);
    line(1 / k, "#9aa0ae", [2 * dpr, 2 * dpr]);
    if (this.axes) {
      ctx.fillStyle = "#5f6577";
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      const every = Math.ceil(k / Math.max(1, Math.floor(pw / (18 * dpr))));
      for (let i = 0; i < k; i += every) ctx.fillText(String(i), left + (i + 0.5) * bw, top + ph + 2 * dpr);
    }
  }

  /** Mode index under a CSS-pixel x, or -1. */
  modeAt(xCss) {
    const k = this.last ? this.last.length : 0;
    if (!k) return -1;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const left = this.axes ? 34 : 0;
    const pw = this.canvas.width / dpr - left;
    const i = Math.floor(((xCss - left) / pw) * k);
    return i >= 0 && i < k ? i : -1;
  }
}

/** Modes (rows) × ticks (columns) image, kept in an offscreen canvas one column per tick. */
export class OccupancyHeatmap {
  constructor(canvas) {
    this.canvas = canvas;
    this.k = 0;
    this.steps = [];
    this.markers = [];
    this.cursor = null;
    this.img = document.createElement("canvas");
    this.col = null;
  }

  reset(k, ticks = []) {
    this.k = k;
    this.steps = [];
    this.img.width = Math.max(256, ticks.length * 2);
    this.img.height = Math.max(1, k);
    this.col = this.img.getContext("2d").createImageData(1, Math.max(1, k));
    for (const t of ticks) this.append(t);
    this.draw();
  }

  append(tick) {
    const k = this.k;
    if (!k) return;
    if (this.steps.length >= this.img.width) {
      // grow: copy the old image into one twice as wide
      const old = this.img;
      this.img = document.createElement("canvas");
      this.img.width = old.width * 2;
      this.img.height = old.height;
      this.img.getContext("2d").drawImage(old, 0, 0);
    }
    const zmax = 2 / k;
    const d = this.col.data;
    for (let m = 0; m < k; m++) {
      const v = tick.occupancy[m] || 0;
      const t = Math.min(1, v / zmax);
      const li = 3 * Math.round(t * 255);
      const o = 4 * m; // row m = mode m, drawn top to bottom
      d[o] = HEAT_LUT[li];
      d[o + 1] = HEAT_LUT[li + 1];
      d[o + 2] = HEAT_LUT[li + 2];
      d[o + 3] = 255;
    }
    this.img.getContext("2d").putImageData(this.col, this.steps.length, 0);
    this.steps.push(tick.step);
  }

  setMarkers(markers) {
    this.markers = markers;
  }

  setCursor(step) {
    this.cursor = step;
  }

  layout() {
    const { w, h, dpr } = fit(this.canvas);
    const ts = typeScale();
    const left = 34 * ts * dpr;
    const bottom = 14 * ts * dpr;
    return { w, h, dpr, left, bottom, pw: w - left - 4 * dpr, ph: h - bottom - 2 * dpr };
  }

  draw() {
    const { w, h, dpr, left, pw, ph } = this.layout();
    const ctx = this.canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    const n = this.steps.length;
    const k = this.k;
    ctx.font = `${10 * typeScale() * dpr}px ${FONT}`;
    ctx.fillStyle = "#5f6577";
    if (!k) return;
    ctx.fillStyle = "#fafbfd";
    ctx.fillRect(left, 2 * dpr, pw, ph);
    if (n) {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.img, 0, 0, n, k, left, 2 * dpr, pw, ph);
    }
    ctx.fillStyle = "#5f6577";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const rowH = ph / k;
    const every = Math.ceil(k / Math.max(1, Math.floor(ph / (11 * dpr))));
    for (let m = 0; m < k; m += every) ctx.fillText(String(m), left - 4 * dpr, 2 * dpr + (m + 0.5) * rowH);
    if (!n) return;
    ctx.textBaseline = "top";
    const xOf = (i) => left + ((i + 0.5) / n) * pw;
    ctx.textAlign = "left";
    ctx.fillText(`step ${this.steps[0]}`, left, 4 * dpr + ph);
    ctx.textAlign = "right";
    ctx.fillText(`${this.steps[n - 1]}`, left + pw, 4 * dpr + ph);
    ctx.lineWidth = 1.5 * dpr;
    for (const mk of this.markers) {
      if (mk.step < this.steps[0] || mk.step > this.steps[n - 1]) continue;
      const x = Math.round(xOf(indexAtStep(this.steps, mk.step)));
      ctx.strokeStyle = mk.kind === "claim" ? "#2e9e5b" : MARKER;
      ctx.setLineDash([3 * dpr, 2 * dpr]);
      ctx.beginPath();
      ctx.moveTo(x, 2 * dpr);
      ctx.lineTo(x, 2 * dpr + ph);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    if (this.cursor !== null) {
      const x = Math.round(xOf(indexAtStep(this.steps, this.cursor)));
      ctx.strokeStyle = "#111";
      ctx.beginPath();
      ctx.moveTo(x, 2 * dpr);
      ctx.lineTo(x, 2 * dpr + ph);
      ctx.stroke();
    }
  }

  /** {step, mode} under CSS pixel (x, y), or null. */
  cellAt(xCss, yCss) {
    const n = this.steps.length;
    if (!n || !this.k) return null;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const left = 34;
    const pw = this.canvas.width / dpr - left - 4;
    const ph = this.canvas.height / dpr - 16;
    const i = Math.floor(((xCss - left) / pw) * n);
    const m = Math.floor(((yCss - 2) / ph) * this.k);
    if (i < 0 || i >= n || m < 0 || m >= this.k) return null;
    return { index: i, step: this.steps[i], mode: m };
  }
}
