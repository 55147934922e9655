// Chart data maths: occupancy classes, curve series, config-change markers, CSV, replay lookup.
// Pure: no DOM and no Plotly, so node's test runner checks it. The Plotly glue is charts.js.

import { knobShort } from "./knob_text.js";

/**
 * The stats a tick reports, from the server's registry (/api/options `stats`: name, label, kind,
 * unit, format, where shown, colour): `setStats` fills these once the options have answered, so
 * the page copies no list of names, labels or colours (trainer/stats.py, a family's stats.py).
 */
/** Scalar metrics of a tick, in the order the curves and CSV use (docs/protocol.md). */
export let SCALAR_KEYS = [];
/** Loss-chart traces: key, label, colour — every stat of kind loss or term. Terms are drawn
 * only once they are non-zero. */
export let LOSS_TRACES = [];
/** Metric-chart traces (modes over time): the mode counts. */
export let MODE_TRACES = [];
let STATS = new Map();
const MODE_LABELS = { modes_covered: "covered", modes_captured: "captured", effective_modes: "effective" };

/** Take every list above from /api/options `stats`. */
export function setStats(stats) {
  const list = stats || [];
  STATS = new Map(list.map((s) => [s.name, s]));
  SCALAR_KEYS = list.map((s) => s.name);
  LOSS_TRACES = list.filter((s) => s.kind === "loss" || s.kind === "term")
    .map((s) => ({ key: s.name, label: s.label, color: s.color, kind: s.kind }));
  MODE_TRACES = Object.keys(MODE_LABELS).filter((k) => STATS.has(k))
    .map((k) => ({ key: k, label: MODE_LABELS[k], color: STATS.get(k).color }));
}

/** A stat's value as the registry formats it (its `format`, a Python format spec, and unit). */
export function formatStat(name, v) {
  const [text, unit] = formatStatParts(name, v);
  return unit ? `${text} ${unit}` : text;
}

/** formatStat's number and unit apart ("" for none): a card sets the unit in smaller type. */
export function formatStatParts(name, v) {
  const s = STATS.get(name);
  if (typeof v !== "number" || !Number.isFinite(v)) return ["–", ""];
  if (!s) return [formatNumber(v, 3), ""];
  const m = /^,?\.?(\d*)([dfg%])$/.exec(s.format || "");
  let text;
  if (!m) text = formatNumber(v, 3);
  else if (m[2] === "d") text = s.format.startsWith(",") ? Math.round(v).toLocaleString("en-US") : String(Math.round(v));
  else if (m[2] === "f") text = v.toFixed(Number(m[1] || 6));
  else if (m[2] === "%") return [(100 * v).toFixed(Number(m[1] || 6)), "%"];
  else text = formatNumber(v, Number(m[1] || 6));
  return [text, s.unit || ""];
}

/**
 * The first chart's traces for a run of `family` (an entry of /api/options' `families`): the
 * family's own stats that it charts, norms aside — a GAN's losses and penalty terms, a genetic
 * algorithm's fitness — with the server's labels and colours, and the axis title. LOSS_TRACES
 * where the server names no family. A `term` is drawn once it is non-zero.
 *
 * Stats of another unit than the first's go on a second y axis on the right (`axis: "y2"`, named
 * with a "→" like the modes chart's right-axis curve): a VAE's reconstruction and KL are in nats
 * per image (tens to hundreds), its KL weight, active units and I(x; z) are small plain numbers
 * that one shared axis would squash flat. The split follows the registry's `unit`, so a family
 * states it once where it declares its stats. The left title is that unit (else the first
 * stat's kind: "loss", "fitness"); the right one names its stats when they fit.
 */
export function familyTraces(family) {
  const own = ((family && family.stats) || [])
    .filter((s) => (s.show || []).includes("chart") && s.kind !== "norm");
  if (!own.length) return { traces: LOSS_TRACES, title: "loss", title2: "", terms: LOSS_TRACES.filter((t) => t.kind === "term").map((t) => t.key) };
  const unit = own[0].unit || "";
  const right = own.filter((s) => (s.unit || "") !== unit);
  const names = right.map((s) => s.label).join(", ");
  return {
    traces: own.map((s, j) => {
      const axis = (s.unit || "") === unit ? "y" : "y2";
      return {
        key: s.name, label: axis === "y2" ? `${s.label} →` : s.label, axis,
        color: s.color || OTHER_COLORS[j % OTHER_COLORS.length],
      };
    }),
    title: unit || own[0].kind,
    title2: names.length <= 24 ? names : "",
    terms: own.filter((s) => s.kind === "term").map((s) => s.name),
  };
}

/**
 * The scalar drawn against steps on the modes chart's right axis (divergence over time): reverse
 * KL by default, any other scalar of a tick on request. The list is the server's (the `stats` of
 * /api/options, labelled and coloured as the server says): every scalar but the step counters and
 * the mode counts the left axis already draws, metrics first.
 */
const OTHER_COLORS = ["#0e7490", "#be185d", "#4d7c0f", "#92400e"];
const NOT_CHARTED = new Set(["step", "time", "config_version", "modes_captured", "modes_covered"]);
const KIND_ORDER = ["metric", "loss", "term", "norm", "tick"];

export function metricChoices(stats) {
  const rank = (s) => (KIND_ORDER.includes(s.kind) ? KIND_ORDER.indexOf(s.kind) : KIND_ORDER.length);
  return (stats || [])
    .filter((s) => !NOT_CHARTED.has(s.name))
    .sort((a, b) => rank(a) - rank(b)) // stable: the server's order within a kind
    .map((s, j) => ({
      key: s.name, label: s.label, help: s.help,
      color: s.color || OTHER_COLORS[j % OTHER_COLORS.length],
    }));
}
export const DEFAULT_METRIC = "reverse_kl";

export const OCC_COLORS = { covered: "#2e9e5b", starving: "#e0a526", dropped: "#d64545" };

/**
 * Classify per-mode occupancy as docs/metrics.md defines it: covered when occupancy >= 1/(4K),
 * starving when above 0 but below, dropped at 0.
 */
export function classifyOccupancy(occupancy) {
  const k = occupancy.length;
  const fair = k > 0 ? 1 / (4 * k) : 0;
  const out = new Array(k);
  for (let i = 0; i < k; i++) {
    const v = occupancy[i];
    out[i] = v >= fair ? "covered" : v > 0 ? "starving" : "dropped";
  }
  return out;
}

/** Counts of each class: {covered, starving, dropped}. */
export function occupancySummary(occupancy) {
  const c = { covered: 0, starving: 0, dropped: 0 };
  for (const cls of classifyOccupancy(occupancy)) c[cls]++;
  return c;
}

/** Bar colours for Plotly, one per mode. */
export function occupancyColors(occupancy) {
  return classifyOccupancy(occupancy).map((c) => OCC_COLORS[c]);
}

/** A number for a chart: null (a gap) for null/undefined/non-finite. */
export function finiteOrNull(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/**
 * Keeps the ticks a chart has drawn so a new frame extends the curves only when it carries a
 * newer tick. Frames repeat the latest tick while paused, and a resumed run may go back in steps
 * (from a checkpoint); then the charts are rebuilt from `reset`.
 */
export class TickLog {
  constructor(limit = 5000) {
    this.limit = limit;
    this.ticks = [];
  }

  get last() {
    return this.ticks.length ? this.ticks[this.ticks.length - 1] : null;
  }

  /** "append" (newer step), "same" (same step; ignore) or "reset" (older step; redraw all). */
  classify(step) {
    const last = this.last;
    if (!last || step > last.step) return "append";
    if (step === last.step) return "same";
    return "reset";
  }

  /** Record a tick {step, ...scalars, occupancy}; returns what classify() said. */
  push(tick) {
    const what = this.classify(tick.step);
    if (what === "same") return what;
    if (what === "reset") {
      // keep the ticks before this step: the run went on from an earlier checkpoint
      this.ticks = this.ticks.filter((t) => t.step < tick.step);
    }
    this.ticks.push(tick);
    if (this.ticks.length > this.limit) this.ticks.splice(0, this.ticks.length - this.limit);
    return what;
  }

  /** Column arrays for a key: {x: steps, y: values}. */
  column(key) {
    return {
      x: this.ticks.map((t) => t.step),
      y: this.ticks.map((t) => finiteOrNull(t[key])),
    };
  }

  /** Occupancy rows (tick × mode), for the heatmap. */
  occupancyRows() {
    return this.ticks.map((t) => Array.from(t.occupancy || []));
  }
}

/**
 * The manifold's slice of the latent space in words, from the latent size (docs/protocol.md:
 * z[0] and z[1] over ±2σ, every other coordinate 0); "" when the size is unknown.
 */
export function latentSlice(zDim) {
  if (!Number.isInteger(zDim) || zDim < 1) return "";
  if (zDim === 1) return "z over ±2σ (the latent space is a line)";
  if (zDim === 2) return "z[0], z[1] over ±2σ (the whole latent plane)";
  return `z[0], z[1] over ±2σ, the other ${zDim - 2} of z fixed at 0`;
}

/**
 * Short text for a config change: "objective → wgan-gp, gp 10", each knob by its short name from
 * the registry (knob_text.js). The tick rate that slow motion sets with a speed (speed.js) is
 * part of the speed, not news of its own: it is left out beside one.
 */
export function describeChanges(changes) {
  const parts = [];
  const c = changes || {};
  for (const [k, v] of Object.entries(c)) {
    const n = knobShort(k);
    if (k === "tick_every" && "speed" in c) continue;
    if (k === "objective" || k === "optimizer" || k === "dataset") parts.push(`${n} → ${v}`);
    else if (k === "speed") parts.push(v > 0 ? `speed ${formatNumber(v)}/s` : "speed unlimited");
    else if (k === "steps" && v === 0) parts.push(`${n}: until stopped`);
    else if (v === true) parts.push(`+${n}`);
    else if (v === false) parts.push(`−${n}`);
    else if (v === null) parts.push(`${n} default`);
    else parts.push(`${n} ${typeof v === "number" ? formatNumber(v) : v}`);
  }
  return parts.join(", ");
}

/** Compact number: 0.0005 -> "5e-4", 12.5 -> "12.5", 3 -> "3". */
export function formatNumber(v, digits = 3) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v === 0) return "0";
  const a = Math.abs(v);
  // an integer is shown whole below 100,000 (1,024 training points, not 1020)
  if (Number.isInteger(v) && a < 1e5) return String(v);
  if (a < 1e-3 || a >= 1e5) {
    const [m, e] = v.toExponential(digits - 1).split("e");
    return `${String(Number(m))}e${Number(e)}`;
  }
  return String(Number(v.toPrecision(digits)));
}

/** Config events (type "config") that changed something, as markers {step, label, version}. */
export function markersFromEvents(events) {
  const out = [];
  for (const e of events || []) {
    if (!e || e.type !== "config" || !e.changes || !Object.keys(e.changes).length) continue;
    out.push({ step: e.step, label: describeChanges(e.changes), version: e.version });
  }
  return out;
}

/** Pixels a marker label takes per character at the charts' 10 px font (an estimate). */
export const LABEL_CHAR_PX = 5.6;
export const LABEL_ROWS = 3;

/**
 * Rows for marker labels so that labels close together do not overlap. A label takes
 * `LABEL_CHAR_PX` a character: a change's label starts at its marker and runs right; a claim's
 * (kind "claim") ends at its marker, in the top row, placed first. The others, in step order, go
 * into the first row where they overlap no label; past `maxRows` rows, the row whose last label
 * ends first. `pxPerStep`: the chart's horizontal scale. Returns one row index (0 = top) per
 * marker, in the markers' order.
 */
export function labelRows(markers, pxPerStep, maxRows = LABEL_ROWS, charPx = LABEL_CHAR_PX, first = -Infinity) {
  const span = (m) => {
    const x = m.step * pxPerStep;
    const w = (m.label || "").length * charPx + 8;
    return labelLeft(m, first, pxPerStep, charPx) ? [x - w, x] : [x, x + w];
  };
  const rows = new Array(markers.length).fill(0);
  const taken = []; // per row: [[a, b], ...]
  const order = markers.map((m, i) => i)
    .sort((a, b) => (markers[b].kind === "claim") - (markers[a].kind === "claim")
      || markers[a].step - markers[b].step);
  for (const i of order) {
    const [a, b] = span(markers[i]);
    let row = markers[i].kind === "claim" ? 0
      : taken.findIndex((iv) => iv.every(([c, d]) => b <= c || a >= d));
    if (row < 0 && taken.length < maxRows) row = taken.length;
    if (row < 0) {
      const ends = taken.map((iv) => Math.max(...iv.map(([, d]) => d)));
      row = ends.indexOf(Math.min(...ends));
    }
    (taken[row] || (taken[row] = [])).push([a, b]);
    rows[i] = row;
  }
  return rows;
}

/**
 * Whether marker `m`'s label sits left of its line: a claim's does (it marks where the run
 * should be by then), unless the label would run past the chart's first step (`first`, at
 * `pxPerStep`), where Plotly would stretch the step axis to negative steps to fit its text;
 * then it runs right like a change's label.
 */
export function labelLeft(m, first = -Infinity, pxPerStep = 1, charPx = LABEL_CHAR_PX) {
  if (m.kind !== "claim") return false;
  const w = (m.label || "").length * charPx + 8;
  return (m.step - first) * pxPerStep >= w;
}

/**
 * The markers a curve chart draws once it has a span of data (steps `first`..`last`): those
 * within it as lines, and a claim ahead of it (a preset's claim at step 4,000 while a slow machine
 * has trained 700) as a note at the chart's right edge. A line that far ahead would stretch the
 * step axis past the data and squash every curve into its left part, more so the slower the
 * machine. A change is always a line: it has happened, at most a tick ahead of the curves.
 * Returns {shown, ahead: the note's text, "" for none}.
 */
export function markersInSpan(markers, first, last) {
  if (!(last > first)) return { shown: markers, ahead: "" };
  const ahead = (m) => m.kind === "claim" && m.step > last;
  const shown = markers.filter((m) => !ahead(m));
  const later = markers.filter(ahead).sort((a, b) => a.step - b.step);
  const note = later.map((m) => `${m.label} at step ${Math.round(m.step).toLocaleString("en-US")}`).join(" · ");
  return { shown, ahead: note ? `${note} →` : "" };
}

/**
 * Plotly layout shapes and annotations for markers: a dashed vertical line per marker across the
 * whole plot height, labelled at the top, in the rows `rows` gives (labelRows; default all in the
 * top row). A marker of kind "claim" (a preset's calibrated step) is green, its label on the
 * left of its line with no background. `withLabels` false for the small charts.
 */
export function markerLayout(markers, withLabels = true, rows = null, first = -Infinity, pxPerStep = 1) {
  const shapes = [];
  const annotations = [];
  markers.forEach((m, i) => {
    const claim = m.kind === "claim";
    shapes.push({
      type: "line", xref: "x", yref: "paper", x0: m.step, x1: m.step, y0: 0, y1: 1,
      line: claim ? { color: "#2e9e5b", width: 1.5, dash: "dash" }
        : { color: "#7a5af8", width: 1.5, dash: "dot" },
    });
    if (!withLabels) return;
    const row = rows ? rows[i] : 0;
    const left = labelLeft(m, first, pxPerStep);
    annotations.push(claim ? {
      // left of its line, on no background: it must not hide the curves it sits over
      x: m.step, xref: "x", y: 1 - 0.13 * row, yref: "paper", yanchor: "top", xanchor: left ? "right" : "left",
      text: m.label, showarrow: false, font: { size: 10, color: "#1f6f40" },
      hovertext: m.hover || m.label,
    } : {
      x: m.step, xref: "x", y: 1 - 0.13 * row, yref: "paper", yanchor: "top", xanchor: "left",
      text: m.label, showarrow: false, font: { size: 10, color: "#5b3fd6" },
      bgcolor: "rgba(255,255,255,0.85)",
    });
  });
  return { shapes, annotations };
}

function csvCell(v) {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV of ticks in the server's column order: the scalars, then occ_0..occ_{K-1}. */
export function ticksToCSV(ticks) {
  const k = ticks.reduce((m, t) => Math.max(m, (t.occupancy || []).length), 0);
  const cols = [...SCALAR_KEYS, ...Array.from({ length: k }, (_, i) => `occ_${i}`)];
  const lines = [cols.join(",")];
  for (const t of ticks) {
    const row = SCALAR_KEYS.map((c) => csvCell(t[c]));
    for (let i = 0; i < k; i++) row.push(csvCell(t.occupancy ? t.occupancy[i] : ""));
    lines.push(row.join(","));
  }
  return `${lines.join("\n")}\n`;
}

/** Index of the last element of sorted `steps` that is <= step (0 when step is before all). */
export function indexAtStep(steps, step) {
  let lo = 0;
  let hi = steps.length - 1;
  if (hi < 0) return -1;
  if (step < steps[0]) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (steps[mid] <= step) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** p-th percentile (0..100) of numbers, linear interpolation; NaN for an empty list. */
export function percentile(values, p) {
  if (!values.length) return NaN;
  const s = Float64Array.from(values).sort();
  const r = (p / 100) * (s.length - 1);
  const lo = Math.floor(r);
  const hi = Math.ceil(r);
  return s[lo] + (s[hi] - s[lo]) * (r - lo);
}

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential backoff capped at `max`,
 * with `jitter` in [0, 1) spreading clients that lost the server at the same moment.
 */
export function backoffDelay(attempt, jitter = 0, base = 500, max = 10000) {
  const d = Math.min(max, base * 2 ** Math.min(attempt, 20));
  return Math.round(d * (0.75 + 0.5 * jitter));
}

/**
 * A y range that a few outliers cannot flatten: the core of the values is their `lo`..`hi`
 * percentiles (a few spikes in a hundred ticks are not the core); a value is left off the scale
 * only when it lies more than `far` core spans beyond the core (a gradient-penalty spike of 350
 * over losses near 1), never for a trend or a short series. The range is padded by `pad` of its span. Returns {range: [a, b] | null, clipped:
 * values outside the range, max: the largest value (for a note)}.
 */
export function robustRange(values, lo = 2, hi = 98, far = 1, pad = 0.06) {
  const v = [];
  for (const x of values) if (typeof x === "number" && Number.isFinite(x)) v.push(x);
  if (!v.length) return { range: null, clipped: 0, max: null };
  const p = percentile(v, lo);
  const q = percentile(v, hi);
  const core = q - p || Math.abs(q) || 1;
  let a = Infinity;
  let b = -Infinity;
  let clipped = 0;
  let max = -Infinity;
  for (const x of v) {
    if (x > max) max = x;
    if (x < p - far * core || x > q + far * core) clipped++;
    else { if (x < a) a = x; if (x > b) b = x; }
  }
  const span = b - a || Math.abs(b) || 1;
  return { range: [a - pad * span, b + pad * span], clipped, max };
}

/**
 * The page's own frame rate from the draw times (ms, increasing) of its frames: {fps, sinceMs}.
 * fps counts the frames of the last `windowMs` over the time from the first of them to `now`,
 * so a stream that stops decays towards 0 instead of showing its old rate; null before any
 * frame. sinceMs: ms since the last frame (null before any).
 */
export function frameRate(times, now, windowMs = 3000) {
  if (!times.length) return { fps: null, sinceMs: null };
  let n = 0;
  let first = now;
  for (let i = times.length - 1; i >= 0 && times[i] >= now - windowMs; i--) {
    n++;
    first = times[i];
  }
  const fps = n < 2 ? (n * 1000) / windowMs : ((n - 1) * 1000) / Math.max(now - first, 1);
  return { fps, sinceMs: now - times[times.length - 1] };
}
