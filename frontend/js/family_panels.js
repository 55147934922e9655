// A family's own pictures (docs/families.md, "Panels"): every panel the run's family declares in
// /api/options (`families[].frame.panels`: key, label, kind, help) is drawn from the frame's
// `panels[key]`, in the format of its kind — bars, line, heatmap, images, text. Nothing here
// knows a family: a new family's panel is drawn by declaring it.
// Canvases, not Plotly (a Plotly update costs more than a frame's budget; see charts.js), built
// once per family and updated in place; at most MAX_RATE redraws a second, the latest value wins.
// The checks and the geometry are pure (frontend/test/family_panels.test.mjs); the class draws.

import { el } from "./dom.js";
import { buildLUT, VALUE_STOPS } from "./field.js";

export const PANEL_KINDS = ["bars", "line", "heatmap", "images", "text"];
// the largest values a panel may carry (docs/families.md); more is refused, not drawn slowly
export const LIMITS = { bars: 256, images: 64, imagePixels: 4096, text: 200, line: 5000, heatmap: 40000 };
export const MAX_RATE = 5; // redraws a second
const TEXT_MAX = 200; // characters of one text item

const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const numOrNull = (v) => (isNum(v) ? v : null);
const isArr = Array.isArray;

/**
 * A panel value checked against its kind's format (pure). Returns {value} (normalised: non-finite
 * numbers as null, optional fields filled) or {error: "what is wrong"}; a panel with an error
 * says so instead of drawing.
 */
export function checkPanel(kind, v) {
  if (!v || typeof v !== "object" || isArr(v)) return { error: "not an object" };
  const numbers = (a, name, max) => {
    if (!isArr(a)) return `${name} is not a list`;
    if (a.length > max) return `${name} has ${a.length} entries, more than ${max}`;
    return null;
  };
  switch (kind) {
    case "bars": {
      const e = numbers(v.values, "values", LIMITS.bars);
      if (e) return { error: e };
      const labels = isArr(v.labels) ? v.labels.map(String) : [];
      if (labels.length && labels.length !== v.values.length) return { error: `${labels.length} labels for ${v.values.length} values` };
      return { value: { labels, values: v.values.map(numOrNull), ref: numOrNull(v.ref), unit: typeof v.unit === "string" ? v.unit : "" } };
    }
    case "line": {
      const e = numbers(v.y, "y", LIMITS.line) || numbers(v.x, "x", LIMITS.line);
      if (e) return { error: e };
      if (v.x.length !== v.y.length) return { error: `${v.x.length} x for ${v.y.length} y` };
      return { value: { x: v.x.map(numOrNull), y: v.y.map(numOrNull), xlabel: String(v.xlabel ?? ""), ylabel: String(v.ylabel ?? "") } };
    }
    case "heatmap": {
      if (!isArr(v.z) || !v.z.length || !isArr(v.z[0])) return { error: "z is not a list of rows" };
      const w = v.z[0].length;
      if (v.z.some((r) => !isArr(r) || r.length !== w)) return { error: "z's rows differ in length" };
      if (v.z.length * w > LIMITS.heatmap) return { error: `z has ${v.z.length * w} cells, more than ${LIMITS.heatmap}` };
      const axis = (a, n) => (isArr(a) && a.length === n ? a.map(numOrNull) : null);
      return { value: { z: v.z.map((r) => r.map(numOrNull)), x: axis(v.x, w), y: axis(v.y, v.z.length) } };
    }
    case "images": {
      const e = numbers(v.images, "images", LIMITS.images);
      if (e) return { error: e };
      const s = v.shape;
      if (!isArr(s) || s.length !== 2 || !s.every((d) => Number.isInteger(d) && d > 0)) return { error: "shape is not [h, w]" };
      if (s[0] * s[1] > LIMITS.imagePixels) return { error: `images of ${s[0]}×${s[1]} are larger than ${LIMITS.imagePixels} pixels` };
      const bad = v.images.findIndex((im) => !isArr(im) || im.length !== s[0] * s[1]);
      if (bad >= 0) return { error: `image ${bad} is not ${s[0]}×${s[1]} values` };
      const labels = isArr(v.labels) && v.labels.length === v.images.length ? v.labels.map(String) : null;
      const cols = Number.isInteger(v.cols) && v.cols > 0 ? v.cols : null;
      return { value: { images: v.images, shape: s, labels, cols } };
    }
    case "text": {
      const e = numbers(v.items, "items", LIMITS.text);
      if (e) return { error: e };
      if (v.items.some((it) => !it || typeof it.text !== "string")) return { error: "an item has no text" };
      const items = v.items.map((it) => ({ text: it.text.slice(0, TEXT_MAX), group: String(it.group ?? ""), tag: it.tag == null ? null : String(it.tag) }));
      const groups = isArr(v.groups) ? v.groups.map(String) : [];
      return { value: { items, groups } };
    }
    default:
      return { error: `kind ${JSON.stringify(kind)} is not one of ${PANEL_KINDS.join(", ")}` };
  }
}

/** Text items by group (pure): the declared groups in their order, then any others met. */
export function groupTexts(items, groups = []) {
  const order = [...groups];
  for (const it of items) if (!order.includes(it.group)) order.push(it.group);
  return order.map((g) => ({ group: g, items: items.filter((it) => it.group === g) }))
    .filter((g) => g.items.length);
}

/** A round upper end for a value axis (pure): 1, 2, 2.5 or 5 times a power of ten ≥ v. */
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v * (1 - 1e-9)) return m * p;
  return 10 * p;
}

/** The value range of bars (pure): from min(0, lowest) to a round top above the highest and ref. */
export function barsRange(values, ref = null) {
  const vs = values.filter(isNum);
  if (isNum(ref)) vs.push(ref);
  const lo = Math.min(0, ...vs);
  const hi = Math.max(0, ...vs);
  return { lo: lo < 0 ? -niceMax(-lo) : 0, hi: hi > 0 ? niceMax(hi) : (lo < 0 ? 0 : 1) };
}

/** Every k-th label of n, so that labels `charPx`·chars wide fit `width` px (pure). */
export function labelEvery(labels, width, charPx = 6) {
  if (!labels.length) return 1;
  const widest = Math.max(...labels.map((l) => l.length)) * charPx + 6;
  const slot = width / labels.length;
  return Math.max(1, Math.ceil(widest / Math.max(slot, 1e-9)));
}

/**
 * Images on a grid in a width×height box (pure): the columns (given, or those that make the
 * images largest), rows, and the scale of one image; each row also holds a label `labelPx` high.
 */
export function imageGrid(n, shape, width, height, cols = null, labelPx = 0) {
  const [ih, iw] = shape;
  if (n <= 0) return { cols: cols || 1, rows: 0, scale: 0 };
  let best = null;
  for (let c = cols || 1; c <= (cols || n); c++) {
    const rows = Math.ceil(n / c);
    const scale = Math.max(0, Math.min(width / (c * iw), (height / rows - labelPx) / ih));
    if (!best || scale > best.scale) best = { cols: c, rows, scale };
  }
  return best;
}

/** A value range of numbers, nulls left out (pure); equal ends are widened by one either side. */
export function span(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) if (isNum(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (lo === Infinity) return { lo: 0, hi: 1 };
  if (lo === hi) return { lo: lo - 1, hi: hi + 1 };
  return { lo, hi };
}

/** A number for an axis: 3 significant digits, no trailing zeros (pure). */
export function tickText(v) {
  if (!isNum(v)) return "–";
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

/** Redraws at most `rate` a second (pure): `due(now)` says whether to draw now, else how long to wait. */
export class Throttle {
  constructor(rate = MAX_RATE) {
    this.gap = 1000 / rate;
    this.last = -Infinity;
  }

  wait(now) {
    return Math.max(0, this.last + this.gap - now);
  }

  take(now) {
    this.last = now;
  }
}

// ------------------------------------------------------------------------------------- drawing
const LUT = buildLUT(VALUE_STOPS);
const INK = "#2c2f3a";
const MUTED = "#6b7080";
const BAR = "#4c8bf5";
const REF = "#e0a526";
const FONT = "11px system-ui, -apple-system, Segoe UI, sans-serif";

/** A canvas sized to its box at the device's pixel ratio; returns [ctx, w, h] in CSS px. */
function fit(canvas) {
  const r = canvas.getBoundingClientRect();
  const dpr = globalThis.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(r.width));
  const h = Math.max(1, Math.round(r.height));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = FONT;
  return [ctx, w, h];
}

function drawBars(canvas, v) {
  const [ctx, w, h] = fit(canvas);
  const pad = { l: 38, r: 8, t: 14, b: v.labels.length ? 18 : 6 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  const { lo, hi } = barsRange(v.values, v.ref);
  const y = (x) => pad.t + ph * (1 - (x - lo) / (hi - lo));
  ctx.fillStyle = MUTED;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of [lo, (lo + hi) / 2, hi]) ctx.fillText(tickText(t), pad.l - 4, y(t));
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  if (v.unit) ctx.fillText(v.unit, 2, 0);
  ctx.strokeStyle = "#d5d8e2";
  ctx.beginPath();
  ctx.moveTo(pad.l, y(0) + 0.5);
  ctx.lineTo(w - pad.r, y(0) + 0.5);
  ctx.stroke();
  const n = v.values.length;
  const slot = pw / Math.max(n, 1);
  ctx.fillStyle = BAR;
  v.values.forEach((val, i) => {
    if (val === null) return;
    const a = y(Math.max(val, 0));
    const b = y(Math.min(val, 0));
    ctx.fillRect(pad.l + i * slot + slot * 0.1, a, Math.max(1, slot * 0.8), Math.max(b - a, val === 0 ? 0 : 1));
  });
  if (v.ref !== null) {
    ctx.strokeStyle = REF;
    ctx.setLineDash([5, 3]);
    ctx.beginPath();
    ctx.moveTo(pad.l, y(v.ref));
    ctx.lineTo(w - pad.r, y(v.ref));
    ctx.stroke();
    ctx.setLineDash([]);
  }
  if (v.labels.length) {
    const every = labelEvery(v.labels, pw);
    ctx.fillStyle = MUTED;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    v.labels.forEach((l, i) => {
      if (i % every) return;
      const half = ctx.measureText(l).width / 2; // kept inside the canvas at either end
      ctx.fillText(l, Math.min(Math.max(pad.l + (i + 0.5) * slot, half), w - half), h - pad.b + 4);
    });
  }
}

function drawLine(canvas, v) {
  const [ctx, w, h] = fit(canvas);
  const pad = { l: 42, r: 8, t: 14, b: 28 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  const xs = span(v.x);
  const ys = span(v.y);
  const px = (x) => pad.l + pw * (x - xs.lo) / (xs.hi - xs.lo);
  const py = (y) => pad.t + ph * (1 - (y - ys.lo) / (ys.hi - ys.lo));
  ctx.strokeStyle = "#d5d8e2";
  ctx.strokeRect(pad.l + 0.5, pad.t + 0.5, pw, ph);
  ctx.fillStyle = MUTED;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillText(tickText(ys.hi), pad.l - 4, pad.t);
  ctx.fillText(tickText(ys.lo), pad.l - 4, pad.t + ph);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillText(tickText(xs.lo), pad.l, pad.t + ph + 3);
  ctx.fillText(tickText(xs.hi), pad.l + pw, pad.t + ph + 3);
  if (v.xlabel) ctx.fillText(v.xlabel, pad.l + pw / 2, pad.t + ph + 14);
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  if (v.ylabel) ctx.fillText(v.ylabel, 2, 0);
  ctx.strokeStyle = BAR;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let on = false;
  for (let i = 0; i < v.x.length; i++) {
    if (v.x[i] === null || v.y[i] === null) { on = false; continue; }
    if (on) ctx.lineTo(px(v.x[i]), py(v.y[i]));
    else ctx.moveTo(px(v.x[i]), py(v.y[i]));
    on = true;
  }
  ctx.stroke();
  ctx.lineWidth = 1;
}

/** Grey levels 0..1 (or a colour scale's values) into an offscreen canvas of w×h pixels. */
function raster(w, h, fill) {
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  const g = c.getContext("2d");
  const img = g.createImageData(w, h);
  fill(img.data);
  g.putImageData(img, 0, 0);
  return c;
}

function drawHeatmap(canvas, v) {
  const [ctx, w, h] = fit(canvas);
  const rows = v.z.length;
  const cols = v.z[0].length;
  const { lo, hi } = span(v.z.flat());
  const tile = raster(cols, rows, (d) => {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const val = v.z[rows - 1 - r][c]; // row 0 at the bottom, as on a plot
        const p = 4 * (r * cols + c);
        if (val === null) { d[p + 3] = 0; continue; }
        const k = 4 * Math.round(255 * Math.min(1, Math.max(0, (val - lo) / (hi - lo))));
        d[p] = LUT[k]; d[p + 1] = LUT[k + 1]; d[p + 2] = LUT[k + 2]; d[p + 3] = 255;
      }
    }
  });
  const pad = { l: 38, r: 8, t: 14, b: 16 };
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tile, pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
  ctx.fillStyle = MUTED;
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText(`${tickText(lo)} … ${tickText(hi)}`, 2, 0);
  if (v.x) {
    ctx.fillText(tickText(v.x[0]), pad.l, h - pad.b + 3);
    ctx.textAlign = "right";
    ctx.fillText(tickText(v.x[cols - 1]), w - pad.r, h - pad.b + 3);
  }
  if (v.y) {
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(tickText(v.y[0]), pad.l - 4, h - pad.b - 4);
    ctx.fillText(tickText(v.y[rows - 1]), pad.l - 4, pad.t + 4);
  }
}

function drawImages(canvas, v) {
  const [ctx, w, h] = fit(canvas);
  const [ih, iw] = v.shape;
  const labelPx = v.labels ? 12 : 0;
  const g = imageGrid(v.images.length, v.shape, w, h, v.cols, labelPx);
  const cw = iw * g.scale;
  const ch = ih * g.scale;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = MUTED;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  v.images.forEach((im, i) => {
    const tile = raster(iw, ih, (d) => {
      for (let p = 0; p < iw * ih; p++) {
        const val = im[p];
        const grey = isNum(val) ? Math.round(255 * (1 - Math.min(1, Math.max(0, val)))) : 255;
        d[4 * p] = grey; d[4 * p + 1] = grey; d[4 * p + 2] = grey; d[4 * p + 3] = 255;
      }
    });
    const x = (i % g.cols) * cw;
    const y = Math.floor(i / g.cols) * (ch + labelPx);
    ctx.drawImage(tile, x + 1, y + 1, Math.max(1, cw - 2), Math.max(1, ch - 2));
    if (v.labels) ctx.fillText(v.labels[i], x + cw / 2, y + ch);
  });
}

const DRAW = { bars: drawBars, line: drawLine, heatmap: drawHeatmap, images: drawImages };

/** A text panel updated in place: one list per group, one item per string (reused nodes). */
function drawText(box, v) {
  const groups = groupTexts(v.items, v.groups);
  while (box.children.length > groups.length) box.lastChild.remove();
  groups.forEach((g, i) => {
    let sec = box.children[i];
    if (!sec) {
      sec = el("div", { class: "fp-group" }, el("div", { class: "fp-group-name" }), el("ol", { class: "fp-items" }));
      box.append(sec);
    }
    sec.firstChild.textContent = g.group;
    sec.firstChild.hidden = !g.group;
    const list = sec.lastChild;
    while (list.children.length > g.items.length) list.lastChild.remove();
    g.items.forEach((it, j) => {
      let li = list.children[j];
      if (!li) {
        li = el("li", {}, el("span", { class: "fp-str" }), el("span", { class: "fp-tag" }));
        list.append(li);
      }
      li.firstChild.textContent = it.text;
      li.lastChild.textContent = it.tag || "";
      li.lastChild.hidden = !it.tag;
      if (it.tag) li.dataset.tag = it.tag;
      else delete li.dataset.tag;
    });
  });
}

export class FamilyPanels {
  /**
   * section: the element that holds the panels (hidden while the family declares none).
   * opts.compact: small panels without help lines (the compare grid's cards).
   */
  constructor(section, opts = {}) {
    this.section = section;
    this.compact = Boolean(opts.compact);
    this.panels = []; // [{spec, fig, body, note}]
    this.key = "";
    this.latest = null;
    this.throttle = new Throttle(MAX_RATE);
    this.timer = 0;
    this.draws = 0; // redraws done (read by tests)
    this.setFamily(null);
    if (globalThis.ResizeObserver) {
      new ResizeObserver(() => { if (this.latest) this.drawNow(); }).observe(section);
    }
  }

  /** Build one figure per declared panel of `family` (a /api/options family, or null). */
  setFamily(family) {
    const specs = (family && family.frame && family.frame.panels) || [];
    const key = JSON.stringify(specs);
    this.section.hidden = specs.length === 0;
    if (key === this.key) return;
    this.key = key;
    this.latest = null;
    this.section.replaceChildren();
    this.panels = specs.map((spec) => {
      const fig = el("figure", { class: `panel fp-panel fp-${spec.kind}` });
      fig.dataset.panel = spec.key;
      fig.dataset.kind = spec.kind;
      const cap = el("figcaption", {}, el("span", { text: spec.label }));
      if (spec.help) cap.title = spec.help;
      const body = spec.kind === "text"
        ? el("div", { class: "fp-body fp-text-box" })
        : el("canvas", { class: "fp-body fp-canvas", role: "img", "aria-label": `${spec.label}${spec.help ? `: ${spec.help}` : ""}` });
      const note = el("div", { class: "fp-empty" });
      fig.append(cap, body, note);
      if (spec.help && !this.compact) fig.append(el("div", { class: "fp-help", text: spec.help }));
      this.section.append(fig);
      return { spec, fig, body, note };
    });
    this.clear("Once a run starts: drawn from its frames.");
  }

  /** The first text panel with a value drawn, as {label, value} (the PNG's picture of a family
   * whose samples are not points), or null. */
  firstText() {
    const p = this.panels.find((q) => q.spec.kind === "text" && this.latest && this.latest[q.spec.key]);
    return p ? { label: p.spec.label, value: this.latest[p.spec.key] } : null;
  }

  /** Every panel shows `text` instead of a picture (no run yet, queued, connecting…). */
  clear(text) {
    clearTimeout(this.timer);
    this.timer = 0;
    this.latest = null;
    for (const p of this.panels) this.showNote(p, text);
  }

  showNote(p, text) {
    p.note.textContent = text || "";
    p.note.hidden = !text;
    p.fig.dataset.empty = text ? "1" : "0";
    if (text && p.spec.kind === "text") p.body.replaceChildren();
    else if (text) {
      const ctx = p.body.getContext("2d");
      ctx.clearRect(0, 0, p.body.width, p.body.height);
    }
  }

  /**
   * The panels of a frame (its JSON part's `panels`, or undefined): drawn now if the last
   * redraw is old enough, else once the rate allows (the latest value wins).
   */
  update(values) {
    if (!this.panels.length) return;
    // a frame may lack a panel (a tick the engine did not picture: the first after a viewer
    // came or after the run moved): what is drawn of it stays, and so does its value
    this.latest = { ...(this.latest || {}), ...(values || {}) };
    if (this.timer) return;
    const wait = this.throttle.wait(performance.now());
    if (wait <= 0) this.drawNow();
    else this.timer = setTimeout(() => { this.timer = 0; this.drawNow(); }, wait);
  }

  drawNow() {
    const values = this.latest;
    if (!values || this.section.hidden) return;
    this.throttle.take(performance.now());
    this.draws += 1;
    for (const p of this.panels) {
      const raw = values[p.spec.key];
      if (raw === undefined || raw === null) {
        // a frame without this panel (e.g. an older replay frame): keep what is drawn
        if (p.fig.dataset.empty !== "0") this.showNote(p, "Not in this frame: the next picture brings it.");
        continue;
      }
      const got = checkPanel(p.spec.kind, raw);
      if (got.error) { this.showNote(p, `This panel's value cannot be drawn: ${got.error}.`); continue; }
      this.showNote(p, "");
      if (p.spec.kind === "text") drawText(p.body, got.value);
      else DRAW[p.spec.kind](p.body, got.value);
    }
  }
}
