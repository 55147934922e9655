// Lessons (pure): moving through a lesson's steps, and which step actions still have to run.
// A lesson is GET /api/lessons/{name} (server/lessons.py holds the schema).

/** The panels a step's `look` highlights: look name -> element id in index.html. */
export const LOOK_TARGETS = {
  samples: "samples-panel",
  occupancy: "chart-bars",
  "occupancy-time": "chart-heat",
  losses: "chart-loss",
  modes: "chart-modes",
  cards: "cards",
  compare: "compare-grid",
  panels: "family-panels", // the pictures a run's family declares (family_panels.js)
  replay: "scrubber", // not a `look` of the lesson files: a replay step names its slider
};

/** Paragraphs of a step's text (a blank line starts a new one). */
export function paragraphs(text) {
  return String(text || "").split(/\n\s*\n/).map((p) => p.replace(/\s+/g, " ").trim()).filter(Boolean);
}

/** Where a teacher is in a lesson, and which steps' actions have run. */
export class LessonCursor {
  constructor(lesson, step = 0) {
    this.lesson = lesson;
    this.step = 0;
    this.done = new Set(); // step indexes whose action ran
    this.go(step);
  }

  get name() {
    return this.lesson.name;
  }

  get count() {
    return this.lesson.steps.length;
  }

  get current() {
    return this.lesson.steps[this.step];
  }

  get atStart() {
    return this.step === 0;
  }

  get atEnd() {
    return this.step === this.count - 1;
  }

  /** Move to step i (clamped); returns true when it moved. */
  go(i) {
    const to = Math.max(0, Math.min(this.count - 1, Number.isInteger(i) ? i : 0));
    const moved = to !== this.step;
    this.step = to;
    return moved;
  }

  next() {
    return this.go(this.step + 1);
  }

  prev() {
    return this.go(this.step - 1);
  }

  /**
   * The action the current step still has to perform, once: null for a step without one, or
   * whose action already ran (going back and forth does not start runs again).
   */
  pendingAction() {
    const a = this.current.action;
    if (!a || a.type === "none" || this.done.has(this.step)) return null;
    return a;
  }

  markDone(i = this.step) {
    this.done.add(i);
  }

  /** "Step 3 of 6". */
  label() {
    return `Step ${this.step + 1} of ${this.count}`;
  }
}

/** Words for a step's action, for its button ("Start collapse-ring8", …). */
export function describeAction(a) {
  if (!a || a.type === "none") return "";
  if (a.type === "start") return `Start ${a.preset || "a run"}`;
  if (a.type === "change") return `Change ${Object.keys(a.set).join(", ")} on the running run`;
  if (a.type === "compare") return `Compare ${a.variants.length} runs side by side`;
  if (a.type === "replay") return `Stop and replay from step ${a.step}`;
  return a.type;
}

/** The POST /api/runs body of a start action: the preset, its knobs, and a label. */
export function startBody(a, lessonTitle) {
  const body = { ...(a.set || {}), label: `lesson: ${lessonTitle}`.slice(0, 200) };
  if (a.preset) body.preset = a.preset;
  return body;
}

const COUNTS = new Set(["modes_covered", "modes_captured"]); // "k of K" statistics
const thousands = (n) => Math.round(n).toLocaleString("en-US");

/** A statistic's value as a step's outcome box says it. */
function statValue(stat, v, k) {
  if (COUNTS.has(stat)) return k ? `${v} of ${k}` : String(v);
  if (stat === "hq_fraction") return `${(100 * v).toFixed(1)} %`;
  return Number.isInteger(v) ? String(v) : Number(v).toFixed(2);
}

/**
 * What the runs on screen measure for a step's outcome: {here} in words, e.g. "2 of 8 modes
 * covered at step 3,200 (1,200 after the change)". runs: [{label, tick, changedAt, k}] where tick
 * holds the latest scalars and step, changedAt the step of the latest live change (or null),
 * k the run's number of modes;
 * names: {label: the statistic's words, k: the dataset's modes}.
 */
export function measuredOutcome(outcome, runs, names = {}) {
  const word = names.label || outcome.stat;
  const one = (r, withLabel) => {
    const t = r.tick;
    const v = t ? t[outcome.stat] : undefined;
    const who = withLabel ? `${r.label}: ` : "";
    if (v === undefined || v === null) return `${who}no tick yet`;
    let when = `at step ${thousands(t.step)}`;
    if (outcome.since === "change") {
      when += r.changedAt === null || r.changedAt === undefined || t.step < r.changedAt
        ? ", not switched yet" : ` (${thousands(t.step - r.changedAt)} after the change)`;
    }
    return `${who}${statValue(outcome.stat, v, r.k || names.k)}${withLabel ? "" : ` ${word}`} ${when}`;
  };
  if (!runs.length) return { here: "no run on screen" };
  if (runs.length === 1) return { here: one(runs[0], false) };
  return { here: `${word}: ${runs.map((r) => one(r, true)).join(" · ")}` };
}
