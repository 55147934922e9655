// Controls generated from /api/options, so the page always matches the server's knob registry:
// a select per choice, a switch per flag, a slider per bounded number (log scale where the knob
// spans decades), a text field per string. The slider maths at the top is pure and tested.

import { el } from "./dom.js";
import { knobLabel as knobText } from "./knob_text.js";
import { formatNumber } from "./series.js";

const SLIDER_STEPS = 1000;

/** Round to 3 significant digits (sliders should give 0.0005, not 0.000501187). */
export function roundSig(v, digits = 3) {
  if (v === 0 || !Number.isFinite(v)) return v;
  return Number(v.toPrecision(digits));
}

/** How a number knob maps to a slider position 0..SLIDER_STEPS; null: use a number field. */
export function sliderScale(knob) {
  const { min, max } = knob;
  if (min === undefined || max === undefined) return null;
  if (knob.type === "int" && max - min > 100000) return null; // seeds, step counts: type them
  const isInt = knob.type === "int";
  const fix = (v) => (isInt ? Math.round(v) : roundSig(v));
  let kind = "linear";
  if (knob.log && min > 0) kind = "log";
  else if (!isInt && min === 0 && max >= 100) kind = "zerolog"; // 0 = off, then decades
  else if (isInt && min > 0 && max / min >= 100) kind = "log"; // batch sizes
  // two significant digits on log scales: a slider step is ~1 % there, so 0.0005 and 10 are
  // reachable rather than 0.000501 and 9.95
  const fixLog = (v) => (isInt ? Math.round(v) : roundSig(v, 2));
  if (kind === "log") {
    const r = Math.log(max / min);
    return {
      kind,
      toPos: (v) => Math.round((Math.log(Math.max(v, min) / min) / r) * SLIDER_STEPS),
      fromPos: (p) => fixLog(min * Math.exp((p / SLIDER_STEPS) * r)),
    };
  }
  if (kind === "zerolog") {
    const lo = max / 1e5;
    const r = Math.log(max / lo);
    return {
      kind,
      toPos: (v) => (v <= 0 ? 0 : Math.max(1, Math.round(1 + (Math.log(Math.max(v, lo) / lo) / r) * (SLIDER_STEPS - 1)))),
      fromPos: (p) => (p <= 0 ? 0 : fixLog(lo * Math.exp(((p - 1) / (SLIDER_STEPS - 1)) * r))),
    };
  }
  const steps = isInt ? max - min : SLIDER_STEPS;
  return {
    kind,
    steps,
    toPos: (v) => Math.round(((v - min) / (max - min)) * steps),
    fromPos: (p) => fix(min + (p / steps) * (max - min)),
  };
}

/** Display text for a knob value. */
export function showValue(knob, v) {
  if (v === null || v === undefined) return "auto";
  if (typeof v === "boolean") return v ? "on" : "off";
  if (typeof v === "number") {
    if (knob.type === "int") return String(v);
    return formatNumber(v).replace("e-", "e−");
  }
  return String(v);
}

// Sections of the panel: group names of the registry -> heading; "more" goes into a <details>.
// A knob the registry marks `main` goes into its group's main section ("data-main"), where
// there is one; every other knob of that group waits under "More settings".
const SECTIONS = [
  { title: "Data & objective", groups: ["data-main", "objective"] },
  { title: "Remedies", groups: ["remedy"] },
  { title: "Optimisation", groups: ["optim-main"] },
  { title: "More settings", groups: ["data", "optim", "model", "run"], details: true },
];
const MAIN_GROUPS = new Set(SECTIONS.flatMap((s) => s.groups).filter((g) => g.endsWith("-main")));

/** The title of the panel's section a knob (from /api/options) is shown in; null: none. */
export function knobSection(knob) {
  const main = `${knob.group}-main`;
  const group = knob.main && MAIN_GROUPS.has(main) ? main : knob.group;
  const sec = SECTIONS.find((s) => s.groups.includes(group));
  return sec ? sec.title : null;
}

/** A knob's words in the controls: its `label` from the registry (/api/options). */
export const knobLabel = (knob) => knob.label || knobText(knob.name);

/**
 * Build the knob controls into `root`. onChange(name, value, final): `final` is false while a
 * slider is being dragged (only the display follows), true when the value is settled.
 * opts: {placed: {knob: element} — widgets that go into that element instead of a section;
 * factories: {knob: (knob, onChange) => widget} — a knob's own widget; zeroText: {knob: text} —
 * a number field shows 0 as an empty field with this placeholder (e.g. "until stopped")}.
 * Returns {set(config), get(), setEditable(fn(knob) -> bool), invalid(), knobs}.
 */
export function buildControls(root, options, onChange, opts = {}) {
  const placed = opts.placed || {};
  const factories = opts.factories || {};
  root.replaceChildren();
  const widgets = new Map();
  const objectiveHelp = new Map((options.objectives || []).map((o) => [o.name, `${o.help} (${o.source})`]));
  const remedyHelp = new Map();
  for (const r of options.remedies || []) for (const k of r.knobs || []) remedyHelp.set(k, `${r.help} — ${r.source}`);
  const datasetHelp = new Map((options.datasets || []).map((d) => [d.name, d.help]));
  // an unset (null) gp means "the objective's default": show that value, e.g. "auto (10)"
  const defaultGp = new Map((options.objectives || []).map((o) => [o.name, o.default_gp ?? 0]));
  const autoValue = (knob) => {
    if (knob.name !== "gp") return knob.default ?? knob.min;
    const obj = widgets.get("objective");
    return defaultGp.get(obj ? obj.value : "") ?? 0;
  };
  const helps = { objectiveHelp, datasetHelp, autoValue, refreshAuto: null };

  for (const sec of SECTIONS) {
    const knobs = options.knobs.filter((k) => knobSection(k) === sec.title);
    if (!knobs.length) continue;
    const body = el("div", { class: "knobs" });
    if (sec.details) {
      root.append(el("details", { class: "section" }, el("summary", { text: sec.title }), body));
    } else {
      root.append(el("section", { class: "section" }, el("h3", { text: sec.title }), body));
    }
    for (const knob of knobs) {
      const w = factories[knob.name] ? factories[knob.name](knob, onChange)
        : makeWidget(knob, remedyHelp.get(knob.name) || knob.help, onChange, helps, (opts.zeroText || {})[knob.name]);
      widgets.set(knob.name, w);
      (placed[knob.name] || body).append(w.row);
    }
  }

  const refreshAuto = () => {
    for (const w of widgets.values()) if (w.knob.nullable && w.value === null && w.input?.type === "range") w.set(null);
  };
  helps.refreshAuto = refreshAuto;

  return {
    knobs: options.knobs,
    set(config) {
      for (const [name, w] of widgets) if (name in config) w.set(config[name]);
      refreshAuto();
    },
    get() {
      const out = {};
      for (const [name, w] of widgets) out[name] = w.value;
      return out;
    },
    setEditable(pred) {
      for (const w of widgets.values()) w.setEnabled(pred(w.knob));
    },
    /** Fields holding text that is not a valid value: [{name, message, input}]. */
    invalid() {
      const out = [];
      for (const [name, w] of widgets) {
        const i = w.input;
        if (i && i.type === "number" && !i.disabled && !i.checkValidity()) {
          out.push({ name, message: i.validationMessage || `${name}: not a valid value`, input: i });
        }
      }
      return out;
    },
    widget: (name) => widgets.get(name),
  };
}

/** Quiet time after the last key press on a slider before its value counts as settled (ms). */
export const KEY_SETTLE_MS = 600;

/**
 * Call `settled()` when a slider's value is settled: at once after a drag (its change event),
 * but after arrow / page / home / end keys only once they stop for KEY_SETTLE_MS, so holding
 * an arrow sends one live change (and leaves one chart marker), not one per press.
 */
export function settleKeys(input, settled) {
  let keyed = false;
  let timer = 0;
  input.addEventListener("keydown", (e) => {
    if (/^(Arrow|Page|Home|End)/.test(e.key)) keyed = true;
  });
  input.addEventListener("change", () => {
    clearTimeout(timer);
    if (!keyed) { settled(); return; }
    timer = setTimeout(() => { keyed = false; settled(); }, KEY_SETTLE_MS);
  });
  input.addEventListener("blur", () => {
    if (!timer || !keyed) return;
    clearTimeout(timer); // leaving the slider settles it at once
    timer = 0;
    keyed = false;
    settled();
  });
}

function makeWidget(knob, help, onChange, helps, zeroText) {
  const id = `knob-${knob.name}`;
  const helpId = `${id}-help`;
  const label = el("label", { for: id, text: knobLabel(knob) });
  const out = el("output", { for: id, class: "knob-value" });
  const note = el("div", { class: "knob-help", id: helpId, text: help });
  const row = el("div", { class: `knob knob-${knob.type}`, "data-knob": knob.name, title: help });
  const w = { knob, row, value: knob.default, input: null };
  let input;

  if (knob.type === "choice") {
    input = el("select", { id, "aria-describedby": helpId });
    for (const c of knob.choices) input.append(el("option", { value: c, text: c }));
    const extra = knob.name === "objective" ? helps.objectiveHelp : knob.name === "dataset" ? helps.datasetHelp : null;
    const showHelp = () => { if (extra && extra.has(input.value)) note.textContent = extra.get(input.value); };
    input.addEventListener("change", () => {
      w.value = input.value; showHelp(); onChange(knob.name, w.value, true);
      if (knob.name === "objective") helps.refreshAuto?.();
    });
    w.set = (v) => { w.value = v; input.value = v; showHelp(); };
    row.append(el("div", { class: "knob-head" }, label), input, note);
  } else if (knob.type === "bool") {
    input = el("input", { id, type: "checkbox", role: "switch", "aria-describedby": helpId });
    input.addEventListener("change", () => { w.value = input.checked; onChange(knob.name, w.value, true); });
    w.set = (v) => { w.value = Boolean(v); input.checked = w.value; };
    row.classList.add("switch-row");
    row.append(el("div", { class: "knob-head" }, input, label), note);
  } else if (knob.type === "int" || knob.type === "float") {
    const scale = sliderScale(knob);
    if (scale) {
      input = el("input", { id, type: "range", min: 0, max: scale.steps || SLIDER_STEPS, step: 1, "aria-describedby": helpId });
      const show = (v) => {
        out.textContent = v === null && knob.nullable ? `auto (${showValue(knob, helps.autoValue(knob))})` : showValue(knob, v);
        input.setAttribute("aria-valuetext", out.textContent);
      };
      input.addEventListener("input", () => { const v = scale.fromPos(Number(input.value)); show(v); onChange(knob.name, v, false); });
      settleKeys(input, () => { w.value = scale.fromPos(Number(input.value)); show(w.value); onChange(knob.name, w.value, true); });
      w.set = (v) => {
        w.value = v;
        const shown = v === null ? helps.autoValue(knob) : v;
        input.value = String(scale.toPos(shown));
        show(v);
      };
      const head = el("div", { class: "knob-head" }, label, out);
      if (knob.nullable) {
        const auto = el("button", { type: "button", class: "link", text: "auto", title: `reset ${knob.name} to the objective's default`, "aria-label": `${knobLabel(knob)}: objective default` });
        auto.addEventListener("click", () => { w.set(null); onChange(knob.name, null, true); });
        head.append(auto);
        w.auto = auto;
      }
      row.append(head, input, note);
    } else {
      input = el("input", { id, type: "number", min: knob.min, max: knob.max, step: knob.type === "int" ? 1 : "any", "aria-describedby": helpId, placeholder: zeroText });
      input.addEventListener("change", () => {
        // an empty field means 0 where 0 has a name ("until stopped")
        const empty = input.value === "" && !input.validity.badInput;
        const v = empty && zeroText ? 0 : Number(input.value);
        const what = knob.type === "int" ? "an integer" : "a number";
        if ((empty && !zeroText) || input.validity.badInput || !Number.isFinite(v)
            || (knob.type === "int" && !Number.isInteger(v))
            || (knob.min !== undefined && v < knob.min) || (knob.max !== undefined && v > knob.max)) {
          const zero = zeroText ? ` (0 or empty: ${zeroText})` : "";
          const msg = `${knob.name}: expected ${what} in [${knob.min}, ${knob.max}]${zero}`;
          // said under the field, not in a browser bubble (which swallows the next click)
          input.setCustomValidity(msg);
          input.setAttribute("aria-invalid", "true");
          error.textContent = msg;
          error.hidden = false;
          return;
        }
        clearError();
        w.value = v;
        onChange(knob.name, w.value, true);
      });
      const error = el("div", { class: "knob-error", role: "alert" });
      error.hidden = true;
      const clearError = () => {
        input.setCustomValidity("");
        input.removeAttribute("aria-invalid");
        error.hidden = true;
      };
      w.set = (v) => {
        w.value = v;
        clearError();
        input.value = v === null || (v === 0 && zeroText) ? "" : String(v);
      };
      row.append(el("div", { class: "knob-head" }, label), input, error, note);
    }
  } else {
    input = el("input", { id, type: "text", placeholder: knob.nullable ? "(none)" : "", "aria-describedby": helpId, spellcheck: "false" });
    input.addEventListener("change", () => { w.value = input.value.trim() || (knob.nullable ? null : ""); onChange(knob.name, w.value, true); });
    w.set = (v) => { w.value = v; input.value = v ?? ""; };
    row.append(el("div", { class: "knob-head" }, label), input, note);
  }
  w.input = input;
  w.setEnabled = (on) => {
    input.disabled = !on;
    if (w.auto) w.auto.disabled = !on;
    row.classList.toggle("frozen", !on);
  };
  w.set(knob.default);
  return w;
}
