// Following the teacher (pure): what the teacher presents (the class channel's `present`
// messages) turned into the follower's page state, and the follow / detach switch.

/** Keys of the page state a follower takes from the teacher. */
export const PRESENTED = ["view", "run", "runs", "group", "replay", "show", "lesson", "lesson_step"];

/** The part of a page state the teacher presents (for a `present` message). */
export function presentedOf(state, lesson = null) {
  return {
    view: state.view,
    run: state.run || null,
    runs: (state.runs || []).slice(0, 8),
    group: state.group || null,
    replay: state.replay ?? null,
    show: { ...state.show },
    lesson: lesson ? lesson.name : null,
    lesson_step: lesson ? lesson.step : 0,
  };
}

/** Equal presented states (so an unchanged state is not sent again). */
export function samePresented(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The same scene: view, run, runs and group (the replay step, layers and lesson may differ). */
export function sameScene(a, b) {
  if (!a || !b) return false;
  return (a.view || "live") === (b.view || "live") && (a.run || null) === (b.run || null)
    && (a.group || null) === (b.group || null)
    && JSON.stringify(a.runs || []) === JSON.stringify(b.runs || []);
}

/** What a presented state shows, in words, for the teacher's "The class sees: …" line. */
export function describePresented(p) {
  if (!p) return "nothing yet (press Show the class, or start a lesson)";
  let what;
  if (p.view === "history") what = "the run list (History)";
  else if (p.view === "compare") what = `a comparison of ${(p.runs || []).length || "its"} runs`;
  else if (p.run) what = p.replay !== null && p.replay !== undefined ? `run ${p.run}, replay at step ${p.replay}` : `run ${p.run}, live`;
  else what = "the Live view, no run";
  return p.lesson ? `${what} · lesson step ${(p.lesson_step || 0) + 1}` : what;
}

/**
 * The follower's next page state: `state` with the presented keys replaced; its own settings
 * (config, preset) kept. Returns {state, reopen, replayOnly}: reopen when the run, the view or
 * the compare group changed; replayOnly when only the replay step moved on the same run.
 */
export function applyPresented(state, presented) {
  const next = { ...state, show: { ...state.show } };
  next.view = presented.view || "live";
  next.run = presented.run || null;
  next.runs = presented.runs || [];
  next.group = presented.group || null;
  next.replay = presented.replay ?? null;
  Object.assign(next.show, presented.show || {});
  const reopen = next.view !== state.view || next.run !== state.run || next.group !== state.group
    || JSON.stringify(next.runs) !== JSON.stringify(state.runs || []);
  const replayOnly = !reopen && next.replay !== state.replay;
  return { state: next, reopen, replayOnly };
}

/**
 * Runs `fn` on values one at a time, newest last: a value pushed while `fn` runs on an earlier
 * one waits, and of the values that waited only the newest is run. A follower applies presented
 * states through it: two applied at once (a run opening, a lesson loading) could finish in
 * either order and leave the page on the older one. `push` resolves when nothing is left to run.
 */
export class Latest {
  constructor(fn, onError = () => {}) {
    this.fn = fn;
    this.onError = onError;
    this.waiting = null; // {value} of the newest value not yet run
    this.running = null; // the promise of the run in progress
  }

  push(value) {
    this.waiting = { value };
    if (!this.running) this.running = this.drain();
    return this.running;
  }

  async drain() {
    try {
      while (this.waiting) {
        const { value } = this.waiting;
        this.waiting = null;
        try {
          await this.fn(value);
        } catch (e) {
          this.onError(e);
        }
      }
    } finally {
      this.running = null;
    }
  }
}

/** A follower's switch: following the teacher, or exploring alone. */
export class FollowSwitch {
  constructor(following = true) {
    this.following = following;
    this.latest = null; // the latest presented state, applied again on re-attach
    this.seq = 0;
  }

  /** A `present` message: returns the state to apply now, or null (detached, or stale). */
  receive(msg) {
    if (typeof msg.seq === "number") {
      if (msg.seq < this.seq) return null;
      this.seq = msg.seq;
    }
    this.latest = msg.state;
    return this.following ? msg.state : null;
  }

  detach() {
    const changed = this.following;
    this.following = false;
    return changed;
  }

  /** Follow again: returns the latest presented state to apply at once (or null). */
  attach() {
    this.following = true;
    return this.latest;
  }
}
