// Knobs in words, from the registry (GET /api/options → knobs: each knob's `label`, for the
// controls, and `short`, for legends, chart markers and titles): the page keeps no list of its
// own. Pure: no DOM; the page calls setKnobText once, after loading the options.

import { formatNumber } from "./series.js";

let KNOBS = new Map();

/** Keep the server's knob list (each {name, label, short, type, ...}). */
export function setKnobText(knobs) {
  KNOBS = new Map((knobs || []).filter((k) => k && k.name).map((k) => [k.name, k]));
}

/** The words of a knob in the controls ("G learning rate"); its name until the list is known. */
export function knobLabel(name) {
  const k = KNOBS.get(name);
  return (k && k.label) || String(name).replace(/_/g, " ");
}

/** The knob's short name for legends and markers ("lr_g", "β1"). */
export function knobShort(name) {
  const k = KNOBS.get(name);
  return (k && k.short) || String(name);
}

/** A knob's value in a legend: 2e-4, 0.5, on / off, auto. */
export function valueText(name, v) {
  if (v === null || v === undefined) return "auto";
  if (v === true) return "on";
  if (v === false) return "off";
  if (typeof v === "number") return formatNumber(v, 3);
  return String(v);
}

/**
 * The knobs whose values differ between `configs`, in the registry's order (names it does not
 * know last, sorted), leaving out `skip` (e.g. what a run's recipe already says).
 */
export function differingKnobs(configs, skip = new Set()) {
  if (!configs || configs.length < 2) return [];
  const names = new Set();
  for (const c of configs) for (const n of Object.keys(c || {})) names.add(n);
  const out = [];
  for (const n of names) {
    if (skip.has(n)) continue;
    const first = JSON.stringify(configs[0][n] ?? null);
    if (configs.some((c) => JSON.stringify(c[n] ?? null) !== first)) out.push(n);
  }
  const order = [...KNOBS.keys()];
  const at = (n) => { const i = order.indexOf(n); return i < 0 ? 1e9 : i; };
  return out.sort((a, b) => at(a) - at(b) || (a < b ? -1 : 1));
}

/** "lr_g 2e-4, β1 0.5": the values of `names` in `config`. */
export function knobsText(config, names) {
  return names.map((n) => `${knobShort(n)} ${valueText(n, config[n])}`).join(", ");
}
