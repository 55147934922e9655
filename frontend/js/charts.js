// Plotly charts of one run: loss curves, modes over time, occupancy bars and the occupancy-over-
// time heatmap (modes × ticks). Built once per run (`reset`); each frame only extends them
// (`Plotly.extendTraces`) or restyles the bars (`Plotly.restyle`), never a rebuild.
// Data maths (classes, markers, columns) is in series.js.

import {
  LOSS_TRACES, MODE_TRACES, occupancyColors, finiteOrNull, markerLayout,
} from "./series.js";

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
    margin: { l: 44, r: 10, t: 22, b: 30 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#ffffff",
    showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", font: { size: 10 } },
    xaxis: { title: { text: "step", standoff: 2 }, gridcolor: "#eceef3", zeroline: false, automargin: true },
    yaxis: { gridcolor: "#eceef3", zeroline: false, automargin: true },
    uirevision: "keep", // zoom survives updates
    ...extra,
  };
}

export class RunCharts {
  /** els: {loss, modes, bars, heat} — the four chart <div>s. */
  constructor(els) {
    this.els = els;
    this.k = 0;
    this.modeNames = [];
    this.pending = [];
    this.markers = [];
    this.cursor = null;
    this.lossVisible = new Set(["loss_d", "loss_g"]);
    this.ready = false;
  }

  /** (Re)build every chart for a run: K modes, ticks so far, config-change markers. */
  reset(dataset, ticks = [], markers = []) {
    const P = Plotly();
    this.k = dataset ? dataset.num_modes : 0;
    this.modeNames = (dataset && dataset.mode_names) || Array.from({ length: this.k }, (_, i) => `${i}`);
    this.markers = markers;
    this.pending = [];
    this.lossVisible = new Set(["loss_d", "loss_g"]);
    for (const t of ticks) this.noteTerms(t);
    const col = (key) => ({ x: ticks.map((t) => t.step), y: ticks.map((t) => finiteOrNull(t[key])) });

    const lossTraces = LOSS_TRACES.map((tr) => ({
      type: "scatter", mode: "lines", name: tr.label, line: { color: tr.color, width: 1.6 },
      visible: this.lossVisible.has(tr.key) ? true : "legendonly", ...col(tr.key),
    }));
    const lay = markerLayout(markers);
    P.react(this.els.loss, lossTraces, baseLayout({
      yaxis: { title: { text: "loss", standoff: 4 }, gridcolor: "#eceef3", zeroline: false, automargin: true },
      shapes: this.withCursor(lay.shapes), annotations: lay.annotations,
    }), PLOT_CONFIG);

    const modeTraces = MODE_TRACES.map((tr) => ({
      type: "scatter", mode: "lines", name: tr.label, line: { color: tr.color, width: tr.key === "modes_covered" ? 2.2 : 1.4 },
      ...col(tr.key),
    }));
    P.react(this.els.modes, modeTraces, baseLayout({
      yaxis: { title: { text: "modes", standoff: 4 }, range: [0, Math.max(this.k, 1) + 0.5],
        gridcolor: "#eceef3", zeroline: false, automargin: true },
      shapes: this.withCursor(lay.shapes), annotations: lay.annotations,
    }), PLOT_CONFIG);

    const last = ticks.length ? ticks[ticks.length - 1].occupancy : new Array(this.k).fill(0);
    const fair = this.k ? 1 / (4 * this.k) : 0;
    P.react(this.els.bars, [{
      type: "bar", x: this.modeNames, y: Array.from(last), marker: { color: occupancyColors(last) },
      hovertemplate: "mode %{x}: %{y:.1%}<extra></extra>", name: "occupancy",
    }], baseLayout({
      showlegend: false,
      margin: { l: 44, r: 10, t: 8, b: 30 },
      xaxis: { type: "category", gridcolor: "#eceef3", automargin: true, tickfont: { size: 10 } },
      yaxis: { title: { text: "occupancy", standoff: 4 }, tickformat: ".0%", range: [0, Math.max(0.3, 2.5 / Math.max(this.k, 1))],
        gridcolor: "#eceef3", zeroline: false, automargin: true },
      shapes: [
        { type: "line", xref: "paper", x0: 0, x1: 1, y0: fair, y1: fair, line: { color: "#e0a526", width: 1, dash: "dash" } },
        { type: "line", xref: "paper", x0: 0, x1: 1, y0: 1 / Math.max(this.k, 1), y1: 1 / Math.max(this.k, 1), line: { color: "#9aa0ae", width: 1, dash: "dot" } },
      ],
      annotations: [
        { xref: "paper", x: 1, y: fair, yanchor: "bottom", xanchor: "right", showarrow: false, text: "covered ≥ 1/(4K)", font: { size: 9, color: "#b7861a" } },
        { xref: "paper", x: 1, y: 1 / Math.max(this.k, 1), yanchor: "bottom", xanchor: "right", showarrow: false, text: "fair share 1/K", font: { size: 9, color: "#7d8393" } },
      ],
    }), PLOT_CONFIG);

    // z rows are ticks, shown transposed so ticks run along x: then a new tick is one appended
    // row, which extendTraces can add without resending the matrix
    P.react(this.els.heat, [{
      type: "heatmap", transpose: true, x: ticks.map((t) => t.step), y: this.modeNames,
      z: ticks.map((t) => Array.from(t.occupancy)), zmin: 0, zmax: Math.max(0.05, 2 / Math.max(this.k, 1)),
      colorscale: [[0, "#ffffff"], [0.12, "#fde9c9"], [0.5, "#f08a4b"], [1, "#7a1f3d"]],
      colorbar: { thickness: 8, tickformat: ".0%", len: 0.9, outlinewidth: 0, tickfont: { size: 9 } },
      hovertemplate: "step %{x}, mode %{y}: %{z:.1%}<extra></extra>",
    }], baseLayout({
      showlegend: false,
      margin: { l: 44, r: 10, t: 8, b: 30 },
      yaxis: { type: "category", title: { text: "mode", standoff: 4 }, automargin: true, tickfont: { size: 9 } },
      shapes: this.withCursor(markerLayout(markers, false).shapes),
    }), PLOT_CONFIG);
    this.ready = true;
  }

  noteTerms(t) {
    for (const key of ["term_gp", "term_r1", "term_entropy"]) {
      if (typeof t[key] === "number" && t[key] !== 0) this.lossVisible.add(key);
    }
  }

  /** Queue a new tick; flush() draws everything queued at once. */
  push(tick) {
    this.pending.push(tick);
  }

  /** Draw queued ticks: one extendTraces per chart, one restyle of the bars. */
  flush() {
    if (!this.ready || !this.pending.length) return;
    const P = Plotly();
    const ticks = this.pending;
    this.pending = [];
    const xs = ticks.map((t) => t.step);
    const ext = (traces) => ({
      x: traces.map(() => xs),
      y: traces.map((tr) => ticks.map((t) => finiteOrNull(t[tr.key]))),
    });
    const before = this.lossVisible.size;
    for (const t of ticks) this.noteTerms(t);
    P.extendTraces(this.els.loss, ext(LOSS_TRACES), LOSS_TRACES.map((_, i) => i), MAX_POINTS);
    if (this.lossVisible.size !== before) {
      // a remedy term became non-zero (e.g. WGAN-GP switched on): show its curve
      P.restyle(this.els.loss, { visible: LOSS_TRACES.map((tr) => (this.lossVisible.has(tr.key) ? true : "legendonly")) });
    }
    P.extendTraces(this.els.modes, ext(MODE_TRACES), MODE_TRACES.map((_, i) => i), MAX_POINTS);
    P.extendTraces(this.els.heat, { x: [xs], z: [ticks.map((t) => Array.from(t.occupancy))] }, [0], MAX_POINTS);
    this.setBars(ticks[ticks.length - 1].occupancy);
  }

  setBars(occupancy) {
    if (!this.ready) return;
    Plotly().restyle(this.els.bars, { y: [Array.from(occupancy)], "marker.color": [occupancyColors(occupancy)] }, [0]);
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
    this.relayoutMarkers();
  }

  /** A solid vertical line at `step` (the replay scrubber's position); null removes it. */
  setCursor(step) {
    this.cursor = step;
    this.relayoutMarkers();
  }

  relayoutMarkers() {
    if (!this.ready) return;
    const P = Plotly();
    const lay = markerLayout(this.markers);
    const shapes = this.withCursor(lay.shapes);
    P.relayout(this.els.loss, { shapes, annotations: lay.annotations });
    P.relayout(this.els.modes, { shapes, annotations: lay.annotations });
    P.relayout(this.els.heat, { shapes: this.withCursor(markerLayout(this.markers, false).shapes) });
  }

  resize() {
    if (!this.ready) return;
    for (const el of Object.values(this.els)) Plotly().Plots.resize(el);
  }

  purge() {
    for (const el of Object.values(this.els)) Plotly().purge(el);
    this.ready = false;
  }
}
