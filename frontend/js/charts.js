// The charts of one run: loss curves and modes over time in Plotly (hover, zoom, PNG export),
// occupancy bars and the occupancy-over-time heatmap on canvas (occupancy_chart.js).
// Built once per run (`reset`). Each frame redraws the two canvas charts (well under 1 ms); the
// Plotly curves are extended (`Plotly.extendTraces`, never rebuilt) on their own timer, one chart
// per task every CURVE_MS, because one Plotly update costs 7–15 ms on a small CPU: done every
// frame it alone would break the 8 ms frame budget. Data maths is in series.js.

import { OccupancyBars, OccupancyHeatmap } from "./occupancy_chart.js";
import { LOSS_TRACES, MODE_TRACES, finiteOrNull, markerLayout } from "./series.js";

/** How often each curve chart takes the ticks that arrived (ms); the two charts alternate. */
export const CURVE_MS = 1000;

/** Durations (ms) of Plotly curve updates, for bench/browser_frame.py. */
export const curvePerf = [];

const Plotly = () => globalThis.Plotly;

export const PLOT_CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

const FONT = { family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 11, color: "#2c2f3a" };
const MAX_POINTS = 4000; // per curve; older points scroll out

function baseLayout(extra = {}) {
  return {
    font: FONT,
    margin: { l: 46, r: 10, t: 26, b: 34 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#ffffff",
    showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", font: { size: 10 } },
    xaxis: { title: { text: "step", standoff: 2 }, gridcolor: "#eceef3", zeroline: false },
    yaxis: { gridcolor: "#eceef3", zeroline: false },
    uirevision: "keep", // zoom survives updates
    ...extra,
  };
}

export class RunCharts {
  /** els: {loss, modes}: Plotly <div>s; {bars, heat}: <canvas>es. */
  constructor(els) {
    this.els = els;
    this.bars = new OccupancyBars(els.bars);
    this.heat = new OccupancyHeatmap(els.heat);
    this.k = 0;
    this.pending = { loss: [], modes: [] };
    this.markers = [];
    this.cursor = null;
    this.lastOcc = null;
    this.lossVisible = new Set(["loss_d", "loss_g"]);
    this.ready = false;
    this.timer = 0;
    this.turn = 0;
  }

  /** (Re)build every chart for a run: K modes, ticks so far, config-change markers. */
  reset(dataset, ticks = [], markers = []) {
    const P = Plotly();
    this.k = dataset ? dataset.num_modes : 0;
    this.markers = markers;
    this.pending = { loss: [], modes: [] };
    this.lossVisible = new Set(["loss_d", "loss_g"]);
    for (const t of ticks) this.noteTerms(t);
    const col = (key) => ({ x: ticks.map((t) => t.step), y: ticks.map((t) => finiteOrNull(t[key])) });
    const lay = markerLayout(markers);

    const lossTraces = LOSS_TRACES.map((tr) => ({
      type: "scatter", mode: "lines", name: tr.label, line: { color: tr.color, width: 1.6 },
      visible: this.lossVisible.has(tr.key) ? true : "legendonly", ...col(tr.key),
    }));
    P.react(this.els.loss, lossTraces, baseLayout({
      yaxis: { title: { text: "loss", standoff: 4 }, gridcolor: "#eceef3", zeroline: false },
      shapes: this.withCursor(lay.shapes), annotations: lay.annotations,
    }), PLOT_CONFIG);

    const modeTraces = MODE_TRACES.map((tr) => ({
      type: "scatter", mode: "lines", name: tr.label,
      line: { color: tr.color, width: tr.key === "modes_covered" ? 2.2 : 1.4 }, ...col(tr.key),
    }));
    P.react(this.els.modes, modeTraces, baseLayout({
      yaxis: { title: { text: "modes", standoff: 4 }, range: [0, Math.max(this.k, 1) + 0.5],
        gridcolor: "#eceef3", zeroline: false },
      shapes: this.withCursor(lay.shapes), annotations: lay.annotations,
    }), PLOT_CONFIG);

    this.lastOcc = ticks.length ? ticks[ticks.length - 1].occupancy : new Float32Array(this.k);
    this.heat.setMarkers(markers);
    this.heat.setCursor(this.cursor);
    this.heat.reset(this.k, ticks);
    this.bars.draw(this.lastOcc);
    this.ready = true;
    if (!this.timer) this.timer = setInterval(() => this.flushCurves(), CURVE_MS / 2);
  }

  noteTerms(t) {
    for (const key of ["term_gp", "term_r1", "term_entropy"]) {
      if (typeof t[key] === "number" && t[key] !== 0) this.lossVisible.add(key);
    }
  }

  /** A new tick: the heatmap takes its column now, the curves at their next turn. */
  push(tick) {
    this.pending.loss.push(tick);
    this.pending.modes.push(tick);
    this.heat.append(tick);
    this.lastOcc = tick.occupancy;
  }

  /** Per frame: redraw the canvas charts (bars at the latest tick, heatmap). */
  drawFrame() {
    if (!this.ready) return;
    this.bars.draw(this.lastOcc);
    this.heat.draw();
  }

  /** Extend one curve chart with the ticks that arrived since its last turn (alternating). */
  flushCurves() {
    if (!this.ready) return;
    const which = this.turn++ % 2 === 0 ? "loss" : "modes";
    const ticks = this.pending[which];
    if (!ticks.length || document.hidden) return;
    this.pending[which] = [];
    const P = Plotly();
    const t0 = performance.now();
    const traces = which === "loss" ? LOSS_TRACES : MODE_TRACES;
    const xs = ticks.map((t) => t.step);
    const update = {
      x: traces.map(() => xs),
      y: traces.map((tr) => ticks.map((t) => finiteOrNull(t[tr.key]))),
    };
    P.extendTraces(this.els[which], update, traces.map((_, i) => i), MAX_POINTS);
    if (which === "loss") {
      const before = this.lossVisible.size;
      for (const t of ticks) this.noteTerms(t);
      if (this.lossVisible.size !== before) {
        // a remedy term became non-zero (e.g. WGAN-GP switched on): show its curve
        P.restyle(this.els.loss, { visible: LOSS_TRACES.map((tr) => (this.lossVisible.has(tr.key) ? true : "legendonly")) });
      }
    }
    curvePerf.push(performance.now() - t0);
    if (curvePerf.length > 5000) curvePerf.splice(0, 2500);
  }

  /** The bars at a given occupancy (the replay scrubber's frame). */
  setBars(occupancy) {
    this.lastOcc = occupancy;
    this.drawFrame();
  }

  withCursor(shapes) {
    if (this.cursor === null) return shapes;
    return [...shapes, {
      type: "line", xref: "x", yref: "paper", x0: this.cursor, x1: this.cursor, y0: 0, y1: 1,
      line: { color: "#111", width: 1.5 },
    }];
  }

  /** Replace the config-change markers on every time chart. */
  setMarkers(markers) {
    this.markers = markers;
    this.heat.setMarkers(markers);
    this.relayoutMarkers();
  }

  /** A solid vertical line at `step` (the replay scrubber's position); null removes it. */
  setCursor(step) {
    this.cursor = step;
    this.heat.setCursor(step);
    this.relayoutMarkers();
  }

  relayoutMarkers() {
    if (!this.ready) return;
    const P = Plotly();
    const lay = markerLayout(this.markers);
    const shapes = this.withCursor(lay.shapes);
    P.relayout(this.els.loss, { shapes, annotations: lay.annotations });
    P.relayout(this.els.modes, { shapes, annotations: lay.annotations });
    this.heat.draw();
  }

  resize() {
    if (!this.ready) return;
    Plotly().Plots.resize(this.els.loss);
    Plotly().Plots.resize(this.els.modes);
    this.drawFrame();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
  }
}
