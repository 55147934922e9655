// The charts of one run: loss curves and modes over time in Plotly (hover, zoom, PNG export),
// occupancy bars and the occupancy-over-time heatmap on canvas (occupancy_chart.js).
// Built once per run (`reset`). Each frame redraws the two canvas charts (well under 1 ms); the
// Plotly curves are extended (`Plotly.extendTraces`, never rebuilt) on their own timer, one chart
// per task every CURVE_MS, because one Plotly update costs 7–15 ms on a small CPU: done every
// frame it alone would break the 8 ms frame budget. Data maths is in series.js.
//
// The modes chart carries a second axis on the right: a scalar metric against steps (reverse KL
// by default: divergence over time; any scalar of a tick on request, `setMetric`). The y axes
// take a robust range (series.js robustRange), so one gradient-penalty spike cannot flatten the
// losses to a line; what is left off the scale is said in a note on the chart.

import { OccupancyBars, OccupancyHeatmap } from "./occupancy_chart.js";
import { typeScale } from "./room.js";
import {
  LOSS_TRACES, familyTraces, MODE_TRACES, DEFAULT_METRIC, metricChoices, finiteOrNull,
  formatNumber, setStats,
  labelRows, markerLayout, markersInSpan, robustRange,
} from "./series.js";

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
const MARGIN = { l: 46, r: 10, t: 26, b: 34 };
const MARGIN_Y2 = { ...MARGIN, r: 48 };

/** Plotly's font and legend sizes at the page's type scale (room.js: a projector's larger type). */
export function typeFonts() {
  const k = typeScale();
  return { font: { ...FONT, size: Math.round(11 * k) }, legend: Math.round(10 * k) };
}

/** The step axis; pinned to `lay`'s range where axesLayout pins it (a run with no curve yet). */
function stepAxis(lay = {}) {
  return { title: { text: "step", standoff: 2 }, gridcolor: "#eceef3", zeroline: false,
    ...(lay["xaxis.range"] ? { range: lay["xaxis.range"], autorange: false } : {}) };
}

function baseLayout(extra = {}) {
  const f = typeFonts();
  return {
    font: f.font,
    margin: MARGIN,
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#ffffff",
    showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", font: { size: f.legend } },
    xaxis: stepAxis(),
    yaxis: { gridcolor: "#eceef3", zeroline: false },
    uirevision: "keep", // zoom survives updates (of one run: Charts.reset gives each run its own)
    ...extra,
  };
}

// the right-axis choices, from the server's stats once /api/options has answered
let choices = metricChoices([{ name: DEFAULT_METRIC, label: "reverse KL", kind: "metric" }]);

/** Take the metric picker's choices from /api/options `stats`; returns them. */
export function setMetricChoices(stats) {
  setStats(stats);
  choices = metricChoices(stats);
  return choices;
}

export const metricChoice = (key) => choices.find((m) => m.key === key)
  || choices.find((m) => m.key === DEFAULT_METRIC) || choices[0];

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
    this.family = null; // the run's family (/api/options' `families`): what the first chart draws
    const fam = familyTraces(this.family);
    this.lossTraces = fam.traces;
    this.lossY2 = fam.traces.some((t) => t.axis === "y2"); // a second unit: a right axis
    this.lossTerms = new Set(fam.terms);
    this.lossVisible = new Set(fam.traces.map((t) => t.key).filter((k) => !this.lossTerms.has(k)));
    this.metric = metricChoice(DEFAULT_METRIC);
    this.vals = {}; // key -> recent values (the robust ranges' input)
    this.steps = [0, 0]; // first and last step on the curves
    this.stepSeen = false; // whether steps holds a tick's step yet
    this.applied = { loss: {}, modes: {} }; // what was last relaid out, to skip no-op relayouts
    this.zoomed = { loss: false, modes: false }; // a person zoomed: leave the axes alone
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
    const fam = familyTraces(this.family);
    this.lossTraces = fam.traces;
    this.lossY2 = fam.traces.some((t) => t.axis === "y2"); // a second unit: a right axis
    this.lossTerms = new Set(fam.terms);
    this.lossVisible = new Set(fam.traces.map((t) => t.key).filter((k) => !this.lossTerms.has(k)));
    this.vals = {};
    this.steps = ticks.length ? [ticks[0].step, ticks[ticks.length - 1].step] : [0, 0];
    this.stepSeen = ticks.length > 0;
    this.applied = { loss: {}, modes: {} };
    this.zoomed = { loss: false, modes: false };
    // a new revision: Plotly keeps what a relayout set (a zoom, the pinned step axis) across
    // updates of one revision, so another run (or this one opened again) starts from its own
    this.revision = (this.revision || 0) + 1;
    for (const t of ticks) { this.noteTerms(t); this.keep(t); }
    const col = (key) => ({ x: ticks.map((t) => t.step), y: ticks.map((t) => finiteOrNull(t[key])) });

    const lossTraces = this.lossTraces.map((tr) => ({
      type: "scatter", mode: "lines", name: tr.label, line: { color: tr.color, width: 1.6 },
      visible: this.lossVisible.has(tr.key) ? true : "legendonly", ...col(tr.key),
      ...(tr.axis === "y2" ? { yaxis: "y2", line: { color: tr.color, width: 1.3, dash: "dot" } } : {}),
    }));
    const lossLay = this.axesLayout("loss");
    P.react(this.els.loss, lossTraces, baseLayout({
      ...(this.lossY2 ? { margin: MARGIN_Y2 } : {}),
      uirevision: this.revision,
      xaxis: stepAxis(lossLay),
      yaxis: { title: { text: fam.title, standoff: 4 }, gridcolor: "#eceef3", zeroline: false,
        ...(lossLay["yaxis.range"] ? { range: lossLay["yaxis.range"] } : {}) },
      ...(this.lossY2 ? { yaxis2: { title: { text: fam.title2, standoff: 2 }, overlaying: "y",
        side: "right", showgrid: false, zeroline: false, tickmode: "auto", nticks: 6,
        ...(lossLay["yaxis2.range"] ? { range: lossLay["yaxis2.range"] } : {}) } } : {}),
      shapes: lossLay.shapes, annotations: lossLay.annotations,
    }), PLOT_CONFIG);

    P.react(this.els.modes, this.modeTraces(ticks), this.modesLayout(ticks), PLOT_CONFIG);

    for (const which of ["loss", "modes"]) this.watchZoom(which);
    this.lastOcc = ticks.length ? ticks[ticks.length - 1].occupancy : new Float32Array(this.k);
    this.heat.setMarkers(markers);
    this.heat.setCursor(this.cursor);
    this.heat.reset(this.k, ticks);
    this.bars.draw(this.lastOcc);
    this.ready = true;
    if (!this.timer) this.timer = setInterval(() => this.flushCurves(), CURVE_MS / 2);
  }

  modeTraces(ticks) {
    const col = (key) => ({ x: ticks.map((t) => t.step), y: ticks.map((t) => finiteOrNull(t[key])) });
    const m = this.metric;
    return [
      ...MODE_TRACES.map((tr) => ({
        type: "scatter", mode: "lines", name: tr.label,
        line: { color: tr.color, width: tr.key === "modes_covered" ? 2.2 : 1.4 }, ...col(tr.key),
      })),
      { type: "scatter", mode: "lines", name: `${m.label} →`, yaxis: "y2",
        line: { color: m.color, width: 1.3, dash: "dot" }, ...col(m.key) },
    ];
  }

  modesLayout() {
    const lay = this.axesLayout("modes");
    const m = this.metric;
    return baseLayout({
      margin: MARGIN_Y2,
      uirevision: this.revision,
      xaxis: stepAxis(lay),
      yaxis: { title: { text: "modes", standoff: 4 }, range: [0, Math.max(this.k, 1) + 0.5],
        gridcolor: "#eceef3", zeroline: false },
      yaxis2: { title: { text: m.label, standoff: 2, font: { color: m.color } }, overlaying: "y",
        side: "right", showgrid: false, zeroline: false, tickfont: { color: m.color },
        tickmode: "auto", nticks: 6,
        ...(lay["yaxis2.range"] ? { range: lay["yaxis2.range"] } : {}) },
      shapes: lay.shapes, annotations: lay.annotations,
    });
  }

  /** A person's zoom (drag, or the mode bar) freezes that chart's axes; double-click frees them. */
  watchZoom(which) {
    const el = this.els[which];
    if (!el.on || el.dataset.zoomWatched) return;
    el.dataset.zoomWatched = "1";
    el.on("plotly_relayout", (ev) => {
      const keys = Object.keys(ev || {});
      if (keys.includes("shapes")) return; // ours (relayoutAxes always sends the shapes)
      if (keys.some((k) => /^[xy]axis2?\.range\[/.test(k))) this.zoomed[which] = true;
      else if (keys.some((k) => /autorange$/.test(k))) {
        this.zoomed[which] = false;
        this.applied[which] = {};
      }
    });
  }

  /** Keep a tick's values of `keys` for the robust ranges (default: every charted key). */
  keep(t, keys = [...this.lossTraces.map((x) => x.key), this.metric.key]) {
    for (const key of keys) {
      const v = finiteOrNull(t[key]);
      if (v === null) continue;
      const arr = this.vals[key] || (this.vals[key] = []);
      arr.push(v);
      if (arr.length > MAX_POINTS) arr.splice(0, arr.length - MAX_POINTS);
    }
    if (typeof t.step === "number") {
      if (!this.stepSeen) this.steps = [t.step, t.step];
      this.stepSeen = true;
      this.steps[1] = Math.max(this.steps[1], t.step);
    }
  }

  /**
   * The layout bits of one chart that follow the data: the marker shapes with their labels in
   * rows that do not overlap at the chart's current scale, the robust y range (unless a person
   * zoomed) and, on the loss chart, a note of what is off the scale.
   */
  axesLayout(which) {
    const el = this.els[which];
    const margin = which === "modes" || this.lossY2 ? MARGIN_Y2 : MARGIN;
    const width = Math.max(80, (el.clientWidth || 400) - margin.l - margin.r);
    // markers ahead of the data (a claim's step not reached yet) are a note, not a line that
    // would stretch the step axis past the data (series.js markersInSpan)
    const { shown, ahead } = markersInSpan(this.markers, this.steps[0], this.steps[1]);
    const span = Math.max(1, ...shown.map((m) => m.step), this.steps[1]) - Math.min(this.steps[0], ...shown.map((m) => m.step));
    // a claim's label near the first step runs right of its line (series.js labelLeft)
    const first = Math.min(this.steps[0], ...shown.map((m) => m.step));
    const px = width / Math.max(span, 1);
    const lay = markerLayout(shown, true, labelRows(shown, px, undefined, undefined, first), first, px);
    const shapes = this.withCursor(lay.shapes);
    const out = { shapes, annotations: lay.annotations };
    if (ahead) {
      out.annotations = [...out.annotations, {
        x: 1, xref: "paper", y: 1, yref: "paper", xanchor: "right", yanchor: "top", showarrow: false,
        text: ahead, font: { size: 10, color: "#1f6f40" },
      }];
    }
    if (this.zoomed[which]) return out;
    // Before the curves have a span of their own (no tick, or one), Plotly's autorange would
    // span the marker shapes alone (a claim at step 3,000 gave an axis of 2999–3000.5): pin
    // the axis from the run's first step to its furthest marker until a second tick arrives
    const marks = this.markers.map((m) => m.step);
    if (this.steps[1] <= this.steps[0] && marks.length) {
      out["xaxis.range"] = [Math.min(this.steps[0], ...marks), Math.max(this.steps[0] + 1, ...marks)];
    } else {
      out["xaxis.autorange"] = true;
    }
    if (which === "loss") {
      const values = [];
      const right = [];
      for (const tr of this.lossTraces) {
        if (!this.lossVisible.has(tr.key)) continue;
        const into = tr.axis === "y2" ? right : values;
        for (const v of this.vals[tr.key] || []) into.push(v);
      }
      if (this.lossY2) {
        const r2 = robustRange(right);
        if (r2.range && r2.clipped) out["yaxis2.range"] = r2.range;
        else if (r2.range) out["yaxis2.autorange"] = true;
      }
      const r = robustRange(values);
      // Plotly's own autorange costs nothing extra; a range of ours is a second redraw, so it
      // is set only when there is something to leave off the scale
      if (r.range && !r.clipped) out["yaxis.autorange"] = true;
      if (r.range && r.clipped) {
        out["yaxis.range"] = r.range;
        out.annotations = [...out.annotations, {
          x: 1, xref: "paper", y: 0, yref: "paper", xanchor: "right", yanchor: "bottom",
          showarrow: false, font: { size: 10, color: "#5f6577" }, bgcolor: "rgba(255,255,255,0.85)",
          text: `${r.clipped} value${r.clipped === 1 ? "" : "s"} off the scale (up to ${formatNumber(r.max, 3)}): zoom out to see`,
        }];
      }
    } else {
      const r = robustRange(this.vals[this.metric.key] || []);
      if (r.range && r.clipped) out["yaxis2.range"] = r.range;
      else if (r.range) out["yaxis2.autorange"] = true;
    }
    return out;
  }

  /** Relayout chart `which` when its data-driven layout changed (one Plotly call, or none). */
  relayoutAxes(which) {
    const lay = this.axesLayout(which);
    const key = JSON.stringify(lay);
    if (key === this.applied[which].key) return;
    const range = lay["yaxis.range"] || lay["yaxis2.range"];
    const old = this.applied[which].range;
    // a range that moved by under 10 % of its span is not worth a redraw on its own
    const small = range && old && Math.abs(range[0] - old[0]) + Math.abs(range[1] - old[1]) < 0.1 * (old[1] - old[0]);
    const x = JSON.stringify(lay["xaxis.range"] || null); // pinned until a second tick, then auto
    if (small && x === this.applied[which].x && JSON.stringify(lay.annotations) === this.applied[which].ann
        && JSON.stringify(lay.shapes) === this.applied[which].shapes) return;
    this.applied[which] = { key, range, x, ann: JSON.stringify(lay.annotations), shapes: JSON.stringify(lay.shapes) };
    Plotly().relayout(this.els[which], lay);
  }

  noteTerms(t) {
    for (const key of this.lossTerms) {
      if (Number.isFinite(t[key]) && t[key] !== 0) this.lossVisible.add(key);
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
    const keys = which === "loss" ? this.lossTraces.map((t) => t.key) : [...MODE_TRACES.map((t) => t.key), this.metric.key];
    for (const t of ticks) this.keep(t, which === "loss" ? keys : [this.metric.key]);
    const xs = ticks.map((t) => t.step);
    const update = { x: keys.map(() => xs), y: keys.map((key) => ticks.map((t) => finiteOrNull(t[key]))) };
    P.extendTraces(this.els[which], update, keys.map((_, i) => i), MAX_POINTS);
    if (which === "loss") {
      const before = this.lossVisible.size;
      for (const t of ticks) this.noteTerms(t);
      if (this.lossVisible.size !== before) {
        // a remedy term became non-zero (e.g. WGAN-GP switched on): show its curve
        P.restyle(this.els.loss, { visible: this.lossTraces.map((tr) => (this.lossVisible.has(tr.key) ? true : "legendonly")) });
      }
    }
    this.relayoutAxes(which);
    curvePerf.push(performance.now() - t0);
    if (curvePerf.length > 5000) curvePerf.splice(0, 2500);
  }

  /** Chart another scalar on the modes chart's right axis (a key of setMetricChoices' list). */
  setMetric(key, ticks = []) {
    this.metric = metricChoice(key);
    if (!this.ready) return;
    this.vals[this.metric.key] = [];
    for (const t of ticks.slice(-MAX_POINTS)) {
      const v = finiteOrNull(t[this.metric.key]);
      if (v !== null) this.vals[this.metric.key].push(v);
    }
    this.pending.modes = [];
    this.applied.modes = {};
    this.zoomed.modes = false;
    Plotly().react(this.els.modes, this.modeTraces(ticks), this.modesLayout(), PLOT_CONFIG);
    this.watchZoom("modes");
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
    this.relayoutAxes("loss");
    this.relayoutAxes("modes");
    this.heat.draw();
  }

  /** The type scale changed (room.js): the curves take its font sizes. */
  retype() {
    if (!this.ready) return;
    const f = typeFonts();
    for (const el of [this.els.loss, this.els.modes]) Plotly().relayout(el, { font: f.font, "legend.font.size": f.legend });
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
