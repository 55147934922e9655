// The remedies as the server lists them (GET /api/options → remedies): the knob that switches
// each on, the value a comparison turns it on with, and its label. The page learns them once,
// after loading the options, so a remedy added to the trainer's registry appears everywhere
// (compare choices, recipes, titles) without a change here.

let REMEDIES = [];
let BY_FAMILY = new Map(); // family name -> its remedies, for the recipe of any run

const usable = (list) => (list || []).filter((r) => r && r.name && r.typical && r.knobs && r.knobs.length);

/** Keep the remedy list of the family the settings are for (each {name, label, knobs, typical, off}). */
export function setRemedies(list) {
  REMEDIES = usable(list);
}

/** Keep every family's remedies (/api/options `families`), so any run's recipe reads right. */
export function setFamilyRemedies(families) {
  BY_FAMILY = new Map((families || []).map((f) => [f.name, usable(f.remedies)]));
}

export function remedies() {
  return REMEDIES;
}

/** The knob values that switch remedy `name` on, as a comparison uses them ({} if unknown). */
export function remedyOn(name) {
  const r = REMEDIES.find((x) => x.name === name);
  return r ? { ...r.typical } : {};
}

/**
 * "nsgan + minibatch_disc + unroll 5": the objective and the remedies a config has on (pure);
 * a family without objectives starts with its name ("evolution + sharing_radius 0.75").
 */
export function recipe(config) {
  if (config.family === "tracked") return `tracked: ${config.name}`; // the user's own loop
  const parts = [config.objective ?? config.family ?? "gan"];
  for (const r of BY_FAMILY.get(config.family || "gan") || REMEDIES) {
    const k = r.knobs[0]; // the knob that switches it (the others size it)
    const v = config[k];
    if (v === true) parts.push(k);
    else if (typeof v === "number" && v !== 0 && v !== r.off?.[k]) parts.push(`${k} ${v}`);
  }
  return parts.join(" + ");
}
