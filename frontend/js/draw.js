// Draw your own data on the samples panel: place Gaussian blobs (click) or brush points (drag),
// or load a CSV of points from this computer, then train on it. Each blob or brush stroke is one
// mode of the data: the metrics count exactly the drawn modes (docs/metrics.md, "Drawn data").
// Points and CSV rules: points.js; the upload: POST /api/uploads.

import { api } from "./api.js";
import { classApi } from "./class_api.js";
import { el } from "./dom.js";
import { LIMITS, blobPoints, checkDrawing, extentOf, parseCSV, rng, sprayPoints, toCSV } from "./points.js";
import { startBody as pageStartBody } from "./state.js";

const $ = (id) => document.getElementById(id);
const BLOB_POINTS = 300;
const COLORS = ["#4c8bf5", "#e4572e", "#2e9e5b", "#a05cd6", "#d4a017", "#2bb3a3", "#d6457a", "#5f6577"];

export class DrawPanel {
  /** hooks: {app, openRun(id, step), toast, showError} */
  constructor(hooks) {
    this.h = hooks;
    this.groups = []; // [{kind: "blob"|"stroke"|"file", points: [[x, y]…]}]
    this.extent = [-4, 4, -4, 4];
    this.tool = "blob";
    this.seed = 1;
    this.stroke = null;
    this.build();
  }

  build() {
    const tools = document.querySelector("#samples-panel .panel-tools");
    this.toggleBtn = el("button", { type: "button", class: "ghost small", id: "draw-open", text: "Draw data", title: "Draw your own 2-D data (blobs or brush strokes, each one a mode), or load a CSV, and train on it" });
    this.toggleBtn.addEventListener("click", () => this.toggle());
    tools.prepend(this.toggleBtn);
    const tool = (name, text, title) => {
      const b = el("button", { type: "button", class: "small", "data-tool": name, text, title, "aria-pressed": String(name === this.tool) });
      b.addEventListener("click", () => { this.tool = name; for (const x of this.bar.querySelectorAll("[data-tool]")) x.setAttribute("aria-pressed", String(x.dataset.tool === name)); });
      return b;
    };
    this.size = el("input", { type: "range", id: "draw-size", min: 5, max: 80, value: 20, "aria-label": "blob or brush size" });
    const undo = el("button", { type: "button", class: "small ghost", text: "Undo", id: "draw-undo" });
    undo.addEventListener("click", () => { this.groups.pop(); this.redraw(); });
    const clear = el("button", { type: "button", class: "small ghost", text: "Clear", id: "draw-clear" });
    clear.addEventListener("click", () => { this.groups = []; this.extent = [-4, 4, -4, 4]; this.redraw(); });
    this.file = el("input", { type: "file", id: "draw-file", accept: ".csv,text/csv,text/plain", class: "sr-only" });
    this.file.addEventListener("change", () => this.loadFile());
    const load = el("button", { type: "button", class: "small ghost", text: "Load CSV…", id: "draw-load", title: "x,y per line, or x,y,mode to say which points form each mode" });
    load.addEventListener("click", () => this.file.click());
    this.train = el("button", { type: "button", class: "small primary", text: "Train on it", id: "draw-train" });
    this.train.addEventListener("click", () => this.trainOnIt());
    const close = el("button", { type: "button", class: "small ghost", text: "Close", id: "draw-close" });
    close.addEventListener("click", () => this.toggle(false));
    this.status = el("span", { class: "draw-status", id: "draw-status", role: "status" });
    this.bar = el("div", { class: "draw-bar", id: "draw-bar" },
      tool("blob", "Blob", "click to place a Gaussian blob (one mode)"), tool("brush", "Brush", "drag to brush points (each stroke one mode)"),
      el("label", { class: "draw-size" }, "size ", this.size), undo, clear, load, this.file, this.train, close, this.status);
    this.canvas = el("canvas", { id: "draw-canvas", class: "draw-canvas", role: "img", "aria-label": "your drawing: each colour is one mode" });
    this.layer = el("div", { class: "draw-layer", id: "draw-layer", hidden: true }, this.bar, this.canvas);
    $("samples-panel").append(this.layer);
    this.canvas.addEventListener("pointerdown", (e) => this.down(e));
    this.canvas.addEventListener("pointermove", (e) => this.moveTo(e));
    this.canvas.addEventListener("pointerup", () => this.up());
    this.canvas.addEventListener("pointerleave", () => this.up());
    new ResizeObserver(() => this.redraw()).observe(this.canvas);
  }

  /** Only a page that may start runs draws. */
  gate(p) {
    this.toggleBtn.hidden = !p.start;
    if (!p.start && !this.layer.hidden) this.toggle(false);
  }

  toggle(on = this.layer.hidden) {
    this.layer.hidden = !on;
    this.toggleBtn.setAttribute("aria-pressed", String(on));
    if (on) this.redraw();
  }

  // ---------------------------------------------------------------------------- geometry
  /** World → canvas pixels: the extent's square fitted, centred, into the canvas. */
  frame() {
    const r = this.canvas.getBoundingClientRect();
    const [x0, x1, y0, y1] = this.extent;
    const s = Math.min(r.width / (x1 - x0), r.height / (y1 - y0));
    const ox = (r.width - s * (x1 - x0)) / 2;
    const oy = (r.height - s * (y1 - y0)) / 2;
    return {
      w: r.width, h: r.height, s,
      px: (x, y) => [ox + (x - x0) * s, r.height - oy - (y - y0) * s],
      world: (px, py) => [x0 + (px - ox) / s, y0 + (r.height - oy - py) / s],
    };
  }

  eventWorld(e) {
    const r = this.canvas.getBoundingClientRect();
    return this.frame().world(e.clientX - r.left, e.clientY - r.top);
  }

  /** The size slider in world units: a blob's std, a brush's radius. */
  sizeWorld() {
    const span = this.extent[1] - this.extent[0];
    return (Number(this.size.value) / 400) * span;
  }

  // ---------------------------------------------------------------------------- drawing
  down(e) {
    const [x, y] = this.eventWorld(e);
    if (this.tool === "blob") {
      this.groups.push({ kind: "blob", points: blobPoints({ x, y, std: this.sizeWorld() }, BLOB_POINTS, rng(this.seed++)) });
    } else {
      this.stroke = { kind: "stroke", points: [] };
      this.groups.push(this.stroke);
      this.canvas.setPointerCapture?.(e.pointerId);
      this.spray(x, y);
    }
    this.redraw();
  }

  moveTo(e) {
    if (!this.stroke) return;
    const [x, y] = this.eventWorld(e);
    this.spray(x, y);
    this.redraw();
  }

  up() {
    if (this.stroke && this.stroke.points.length < LIMITS.minPerMode) this.groups.pop(); // a stray click
    this.stroke = null;
    this.redraw();
  }

  spray(x, y) {
    this.stroke.points.push(...sprayPoints(x, y, this.sizeWorld(), 6, rng(this.seed++)));
  }

  redraw() {
    const c = this.canvas;
    const r = c.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.max(1, Math.round(r.width * dpr));
    c.height = Math.max(1, Math.round(r.height * dpr));
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = "#fbfbfd";
    g.fillRect(0, 0, r.width, r.height);
    const f = this.frame();
    g.strokeStyle = "#e3e5ec";
    g.lineWidth = 1;
    const [ax, ay] = f.px(0, 0);
    g.beginPath(); g.moveTo(0, ay); g.lineTo(r.width, ay); g.moveTo(ax, 0); g.lineTo(ax, r.height); g.stroke();
    this.groups.forEach((grp, m) => {
      g.fillStyle = COLORS[m % COLORS.length];
      for (const [x, y] of grp.points) {
        const [px, py] = f.px(x, y);
        g.fillRect(px - 1.2, py - 1.2, 2.4, 2.4);
      }
    });
    if (!this.groups.length) {
      g.fillStyle = "#6b7080";
      g.font = "14px system-ui, sans-serif";
      g.textAlign = "center";
      g.fillText(this.tool === "blob" ? "Click to place blobs — each one is a mode" : "Drag to brush points — each stroke is a mode", r.width / 2, r.height / 2);
    }
    const n = this.groups.reduce((s, grp) => s + grp.points.length, 0);
    const problem = checkDrawing(this.groups);
    this.status.textContent = this.error || `${this.groups.length} mode${this.groups.length === 1 ? "" : "s"} · ${n.toLocaleString("en")} points${problem && this.groups.length ? ` — ${problem}` : ""}`;
    this.status.dataset.kind = this.error ? "error" : "";
    this.train.disabled = Boolean(problem);
    this.error = null;
  }

  // ---------------------------------------------------------------------------- files and training
  async loadFile() {
    const f = this.file.files && this.file.files[0];
    this.file.value = "";
    if (!f) return;
    if (f.size > LIMITS.maxBytes) {
      this.showError(`${f.name}: the file is ${(f.size / 1048576).toFixed(1)} MB; at most ${LIMITS.maxBytes / 1048576} MB`);
      return;
    }
    const parsed = parseCSV(await f.text(), f.size);
    if (parsed.error) {
      this.showError(`${f.name}: ${parsed.error}`); // the drawing stays as it was
      return;
    }
    this.groups = parsed.groups.map((g) => ({ kind: "file", points: g.points }));
    this.unlabelled = !parsed.labelled;
    this.extent = extentOf(this.groups);
    this.redraw();
    this.h.toast(parsed.labelled ? `${f.name}: ${this.groups.length} modes from its mode column` : `${f.name}: no mode column — the modes will be k-means clusters of the points`);
  }

  showError(text) {
    this.error = text;
    this.redraw();
    this.h.toast(text, 8000);
  }

  async trainOnIt() {
    const problem = checkDrawing(this.groups);
    if (problem) { this.showError(problem); return; }
    const csv = this.unlabelled && this.groups.length === 1
      ? `x,y\n${this.groups[0].points.map(([x, y]) => `${x},${y}`).join("\n")}\n`
      : toCSV(this.groups);
    this.train.disabled = true;
    try {
      const up = await classApi.upload(csv);
      const app = this.h.app;
      const body = { ...pageStartBody(app.state, app.options.knobs, app.options.presets), dataset: "csv", data: up.path, label: `drawn data: ${up.modes ?? "k-means"} modes` };
      const run = await api.start(body);
      this.toggle(false);
      await this.h.openRun(run.id, null);
      this.h.toast(`Training on your ${up.points.toLocaleString("en")} points (${up.modes ? `${up.modes} drawn modes` : "k-means modes"}): run ${run.id}`);
    } catch (e) {
      this.showError(e.message);
    } finally {
      this.train.disabled = false;
    }
  }
}
