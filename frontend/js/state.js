// The page's state and its URL hash, like TensorFlow Playground: everything a person sees is in
// the hash, so a link reproduces the view. Pure: no DOM; `knobs` is /api/options' knob list.
//
// Hash grammar: `#view=live&run=ID&preset=NAME&objective=wgan-gp&lr_g=0.0005&arrows=1`.
// Config knobs appear under their own names, only where they differ from the defaults (or the
// preset's values), so links stay short. Unknown keys and bad values are reported, not fatal.

export const VIEWS = ["live", "compare", "history"];

// Display switches of the samples panel: hash key -> default.
export const SHOW_DEFAULTS = Object.freeze({ heat: true, real: true, fake: true, arrows: false, manifold: false });

// What the page starts runs with where it differs from the registry's defaults (and presets):
// a run started from the page trains until stopped unless the person sets its steps.
export const PAGE_DEFAULTS = Object.freeze({ steps: 0 });

// The scalar the modes chart draws on its right axis (from the server's stats, series.js metricChoices).
const DEFAULT_METRIC = "reverse_kl";
const METRIC_RE = /^[a-z_]{1,32}$/;

// Keys the page itself uses; a knob with one of these names would be written as `c.NAME`.
const RESERVED = new Set(["view", "run", "runs", "group", "family", "preset", "replay", "tab", "metric", ...Object.keys(SHOW_DEFAULTS)]);

// The family of a page whose link names none (and of a run config without `family`).
export const DEFAULT_FAMILY = "gan";
const FAMILY_RE = /^[a-z][a-z0-9_]{0,31}$/;

/** A fresh state: live view, no run, default config. */
export function initialState() {
  return {
    view: "live",
    run: null, // id of the run shown in the live / replay view
    runs: [], // ids of the runs in the compare grid
    group: null, // compare group id, when the grid came from POST /api/compare
    family: null, // the family of the next run's settings (null: the preset's, else the default)
    preset: null, // preset the config started from
    config: {}, // knob overrides on top of the defaults (and preset)
    show: { ...SHOW_DEFAULTS },
    replay: null, // step the replay scrubber points at (history view)
    metric: DEFAULT_METRIC, // the scalar charted on the modes chart's right axis
  };
}

/** Map knob name -> knob description. */
export function knobIndex(knobs) {
  const out = new Map();
  for (const k of knobs || []) out.set(k.name, k);
  return out;
}

/**
 * Coerce a string (from the hash or a form field) to the knob's type.
 * Returns {value} or {error: "lr_g: expected a number in [1e-06, 0.1], got 'abc'"}.
 */
export function coerceKnob(knob, raw) {
  const name = knob.name;
  const s = typeof raw === "string" ? raw.trim() : raw;
  if ((s === "" || s === "null" || s === null || s === undefined) && knob.nullable) return { value: null };
  switch (knob.type) {
    case "bool": {
      if (s === true || s === "1" || s === "true" || s === "on") return { value: true };
      if (s === false || s === "0" || s === "false" || s === "off") return { value: false };
      return { error: `${name}: expected 1 or 0, got ${JSON.stringify(raw)}` };
    }
    case "int":
    case "float": {
      const v = typeof s === "number" ? s : Number(s);
      const range = `[${knob.min ?? "-inf"}, ${knob.max ?? "inf"}]`;
      const what = knob.type === "int" ? "an integer" : "a number";
      if (s === "" || !Number.isFinite(v) || (knob.type === "int" && !Number.isInteger(v))) {
        return { error: `${name}: expected ${what} in ${range}, got ${JSON.stringify(raw)}` };
      }
      if ((knob.min !== undefined && v < knob.min) || (knob.max !== undefined && v > knob.max)) {
        return { error: `${name}: expected ${what} in ${range}, got ${v}` };
      }
      return { value: v };
    }
    case "choice": {
      if (knob.choices.includes(s)) return { value: s };
      return { error: `${name}: expected one of ${knob.choices.join(", ")}, got ${JSON.stringify(raw)}` };
    }
    default:
      if (typeof s !== "string") return { error: `${name}: expected text, got ${JSON.stringify(raw)}` };
      return { value: s };
  }
}

function formatValue(v) {
  if (v === null || v === undefined) return "null";
  if (v === true) return "1";
  if (v === false) return "0";
  if (typeof v === "number") return String(v); // shortest round-trip form
  return String(v);
}

const keyFor = (name) => (RESERVED.has(name) ? `c.${name}` : name);

/**
 * The base values a config is compared with: knob defaults overlaid by the preset's values, then
 * by the page's own defaults (PAGE_DEFAULTS: a run trains until stopped unless steps are set).
 */
export function baseConfig(knobs, presets, presetName) {
  const base = {};
  for (const k of knobs || []) base[k.name] = k.default;
  const p = (presets || []).find((x) => x.name === presetName);
  if (p) Object.assign(base, p.values);
  for (const [name, v] of Object.entries(PAGE_DEFAULTS)) if (name in base) base[name] = v;
  return base;
}

/** The knobs of `config` that differ from `base` (the overrides worth writing down). */
export function configDiff(config, base) {
  const out = {};
  for (const [name, v] of Object.entries(config || {})) {
    if (!(name in base) || base[name] !== v) out[name] = v;
  }
  return out;
}

/** State -> hash string (without the leading '#'). Deterministic key order. */
export function encodeHash(state, knobs, presets) {
  const parts = [];
  const put = (k, v) => parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  if (state.view && state.view !== "live") put("view", state.view);
  if (state.run) put("run", state.run);
  if (state.runs && state.runs.length) put("runs", state.runs.join(","));
  if (state.group) put("group", state.group);
  if (state.family && state.family !== DEFAULT_FAMILY) put("family", state.family);
  if (state.preset) put("preset", state.preset);
  if (state.replay !== null && state.replay !== undefined) put("replay", state.replay);
  if (state.metric && state.metric !== DEFAULT_METRIC) put("metric", state.metric);
  for (const [k, def] of Object.entries(SHOW_DEFAULTS)) {
    const v = state.show ? state.show[k] : def;
    if (v !== undefined && v !== def) put(k, v ? "1" : "0");
  }
  const base = baseConfig(knobs, presets, state.preset);
  const diff = configDiff(state.config, base);
  const order = (knobs || []).map((k) => k.name);
  const names = Object.keys(diff).sort((a, b) => {
    const ia = order.indexOf(a);
    const ib = order.indexOf(b);
    return (ia < 0 ? 1e9 : ia) - (ib < 0 ? 1e9 : ib) || (a < b ? -1 : 1);
  });
  for (const name of names) put(keyFor(name), formatValue(diff[name]));
  return parts.join("&");
}

/**
 * Hash string (with or without '#') -> {state, errors}. Config values are coerced by the knob
 * registry; a bad value is left out and named in `errors`, so a mangled link still opens.
 */
export function decodeHash(hash, knobs, presets) {
  const state = initialState();
  const errors = [];
  const index = knobIndex(knobs);
  const text = (hash || "").replace(/^#/, "");
  const config = {};
  for (const part of text.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    let key;
    let raw;
    try {
      key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
      raw = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1));
    } catch {
      errors.push(`could not read ${JSON.stringify(part)}`);
      continue;
    }
    if (key === "view") {
      if (VIEWS.includes(raw)) state.view = raw;
      else errors.push(`view: expected one of ${VIEWS.join(", ")}, got ${JSON.stringify(raw)}`);
    } else if (key === "run") {
      if (/^[A-Za-z0-9_-]{1,64}$/.test(raw)) state.run = raw;
      else errors.push(`run: not a run id: ${JSON.stringify(raw)}`);
    } else if (key === "runs") {
      state.runs = raw.split(",").filter((r) => /^[A-Za-z0-9_-]{1,64}$/.test(r)).slice(0, 8);
    } else if (key === "group") {
      if (/^[A-Za-z0-9_-]{1,64}$/.test(raw)) state.group = raw;
    } else if (key === "family") {
      if (FAMILY_RE.test(raw)) state.family = raw; // which exist: hashFamily, with the options
      else errors.push(`family: not a family name: ${JSON.stringify(raw)}`);
    } else if (key === "preset") {
      if (!presets || presets.some((p) => p.name === raw)) state.preset = raw;
      else errors.push(`preset: no preset named ${JSON.stringify(raw)}`);
    } else if (key === "replay") {
      const v = Number(raw);
      if (Number.isInteger(v) && v >= 0) state.replay = v;
      else errors.push(`replay: expected a step, got ${JSON.stringify(raw)}`);
    } else if (key === "metric") {
      if (METRIC_RE.test(raw)) state.metric = raw;
      else errors.push(`metric: not a metric name: ${JSON.stringify(raw)}`);
    } else if (key in SHOW_DEFAULTS) {
      state.show[key] = raw === "1" || raw === "true";
    } else {
      const name = key.startsWith("c.") ? key.slice(2) : key;
      const knob = index.get(name);
      if (!knob) {
        errors.push(`unknown setting ${JSON.stringify(key)}`);
        continue;
      }
      const r = coerceKnob(knob, raw);
      if ("error" in r) errors.push(r.error);
      else config[name] = r.value;
    }
  }
  state.config = config;
  return { state, errors };
}

/** The full config to start: base (defaults + preset) overlaid by the state's overrides. */
export function effectiveConfig(state, knobs, presets) {
  return { ...baseConfig(knobs, presets, state.preset), ...state.config };
}

/**
 * The body of POST /api/runs for a state: {preset, ...overrides} or the flat overrides. The
 * page's own defaults (PAGE_DEFAULTS) are always sent: the server's would be the registry's.
 */
export function startBody(state, knobs, presets) {
  const base = baseConfig(knobs, presets, state.preset);
  const diff = configDiff(state.config, base);
  for (const name of Object.keys(PAGE_DEFAULTS)) if (name in base) diff[name] = { ...base, ...state.config }[name];
  // a family other than the default is named (a preset names its own)
  if (state.family && state.family !== DEFAULT_FAMILY && !state.preset) diff.family = state.family;
  return state.preset ? { preset: state.preset, ...diff } : diff;
}

/**
 * The family a link's settings belong to (pure): its `family` key where that family exists,
 * else its preset's family, else the default. `options` is /api/options (families, presets).
 */
export function hashFamily(hash, options) {
  const names = ((options && options.families) || []).map((f) => f.name);
  let family = null;
  let preset = null;
  for (const part of (hash || "").replace(/^#/, "").split("&")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    let key;
    let raw;
    try {
      key = decodeURIComponent(part.slice(0, eq));
      raw = decodeURIComponent(part.slice(eq + 1));
    } catch {
      continue;
    }
    if (key === "family" && names.includes(raw)) family = raw;
    else if (key === "preset") preset = raw;
  }
  if (family) return family;
  const p = ((options && options.presets) || []).find((x) => x.name === preset);
  return p && names.includes(p.family) ? p.family : DEFAULT_FAMILY;
}

/**
 * /api/options seen through one family (pure): its knobs, its presets, its remedies and, where
 * it has an `objective` knob, the objectives; the rest (stats, datasets, families) as it is.
 * `family` names it; an unknown name gets the first family.
 */
export function familyOptions(options, name) {
  const fams = options.families || [];
  const fam = fams.find((f) => f.name === name) || fams[0];
  if (!fam) return { ...options, family: DEFAULT_FAMILY, judgeFrom: 0 };
  const hasObjective = fam.knobs.some((k) => k.name === "objective");
  return {
    ...options,
    family: fam.name,
    label: fam.label,
    judgeFrom: fam.judge_from || 0,
    knobs: fam.knobs,
    presets: (options.presets || []).filter((p) => (p.family || DEFAULT_FAMILY) === fam.name),
    remedies: fam.remedies || [],
    objectives: hasObjective ? options.objectives || [] : [],
  };
}

/**
 * The live changes between a running config and the controls' values: only knobs that are live
 * and differ. Returns {changes, frozen} where frozen names the non-live knobs that differ
 * (they need a new run).
 */
/**
 * Switching a running run to a preset's settings (the classroom move: a collapsed run gets its
 * remedy twin's knobs). The wanted values are the preset's recipe over the knob defaults — every
 * knob but the run-group ones (seed, device, ticks ...); a run with an end (steps > 0) is
 * stretched so it still trains the preset's own length from `step` on; a run that trains until
 * stopped (steps 0) is left so. Returns liveChanges()'s {changes, frozen}.
 */
export function presetSwitch(knobs, presets, presetName, running, step) {
  const base = baseConfig(knobs, presets, presetName);
  const wanted = {};
  for (const k of knobs || []) if (k.group !== "run") wanted[k.name] = base[k.name];
  const out = liveChanges(running, wanted, knobs);
  const length = presetLength(knobs, presets, presetName);
  if (Object.keys(out.changes).length && running.steps > 0 && Number.isFinite(length)
      && step + length > running.steps) {
    out.changes.steps = step + length;
  }
  return out;
}

/** A preset's own length in steps (its `steps`, else the registry's default), or undefined. */
export function presetLength(knobs, presets, presetName) {
  const p = (presets || []).find((x) => x.name === presetName);
  const knob = (knobs || []).find((k) => k.name === "steps");
  if (p && "steps" in p.values) return p.values.steps;
  return knob ? knob.default : undefined;
}

/**
 * The preset a run started from: the one whose recipe equals the run's starting config on every
 * knob outside the run group (seed, length, device ... are the run's own). Null when none does
 * (the run was set up by hand, or changed before it started).
 */
export function presetOf(knobs, presets, config) {
  if (!config) return null;
  for (const p of presets || []) {
    const base = baseConfig(knobs, presets, p.name);
    if ((knobs || []).every((k) => k.group === "run" || config[k.name] === base[k.name])) return p;
  }
  return null;
}

/** The chart marker of a preset's calibrated claim ({step, label, kind: "claim"}), or null. */
export function claimMarker(preset) {
  if (!preset || !preset.claim || !preset.claim_step) return null;
  const claim = preset.claim.replace(/ at the end$/, "");
  return {
    step: preset.claim_step, label: `claim: ${claim}`, kind: "claim",
    hover: `${preset.name} is calibrated to end with ${claim} at step ${preset.claim_step} (docs/presets.md)`,
  };
}

export function liveChanges(running, wanted, knobs) {
  const index = knobIndex(knobs);
  const changes = {};
  const frozen = [];
  for (const [name, v] of Object.entries(wanted)) {
    if (running[name] === v) continue;
    const knob = index.get(name);
    if (!knob) continue;
    if (knob.live) changes[name] = v;
    else frozen.push(name);
  }
  return { changes, frozen };
}
