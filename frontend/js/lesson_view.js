// The lesson panel: the teacher picks a lesson and moves through its steps (buttons, PageDown /
// PageUp, n / p); entering a step performs its action once (start a preset, change the running
// run, open a comparison, open the replay at a step), highlights what to look at, and presents
// the step to the class. Followers' panels move with the teacher's over the class channel.
// The runs a lesson starts belong to it: a step that starts new ones stops the earlier ones, and
// "End lesson" (or starting another lesson) stops every run it started; they stay in History.
// A step that states an outcome shows the run's own measured value beside it. Rules: lesson.js.

import { api, ApiError } from "./api.js";
import { classApi } from "./class_api.js";
import { el } from "./dom.js";
import { FINAL } from "./live.js";
import { LOOK_TARGETS, LessonCursor, describeAction, measuredOutcome, paragraphs, startBody } from "./lesson.js";

const $ = (id) => document.getElementById(id);
const COMPACT_KEY = "collapse-lab.lesson-compact";
const readCompact = () => {
  try { return localStorage.getItem(COMPACT_KEY) === "1"; } catch { return false; }
};
const LOOK_WORDS = {
  samples: "the samples panel", occupancy: "the occupancy bars", "occupancy-time": "occupancy over time",
  losses: "the loss curves", modes: "modes over time", cards: "the metric cards", compare: "the comparison",
  panels: "the family's panels",
  replay: "the replay slider",
};

export class LessonView {
  /** hooks: {classroom, app, openRun(id, step), openCompare(runs, gid), toast, showError} */
  constructor(hooks) {
    this.h = hooks;
    this.cursor = null;
    this.cache = new Map();
    this.runId = null; // the run the lesson's steps act on
    this.owned = []; // ids of every run this lesson started, oldest first
    this.busy = false;
    hooks.classroom.lessons = this;
    this.build();
    document.addEventListener("keydown", (e) => this.onKey(e));
    setInterval(() => this.renderOutcome(), 1000);
  }

  get teacher() {
    return this.h.classroom.powers().present || this.h.classroom.powers().role === "local";
  }

  build() {
    this.pickBtn = el("button", { type: "button", class: "ghost", id: "lessons-open", text: "Lessons", hidden: true });
    this.pickBtn.addEventListener("click", () => this.togglePicker());
    document.querySelector(".class-bar").append(this.pickBtn);
    this.picker = el("div", { class: "lesson-picker", id: "lesson-picker", hidden: true, role: "menu" });
    document.body.append(this.picker);
    this.panel = el("section", { class: "lesson", id: "lesson", hidden: true, "aria-label": "Lesson", "aria-live": "polite" });
    // the narration takes the settings' column (beside the charts, never above them): whatever a
    // step names stays on screen beside its text (on a phone, it sticks above the charts)
    const side = document.querySelector(".sidebar");
    side.insertBefore(this.panel, side.querySelector(".runbox"));
    this.compact = readCompact();
    // the narration's height, for a phone's scroll margin: a named panel scrolls in below it
    new ResizeObserver(() => {
      document.documentElement.style.setProperty("--lesson-h", `${this.panel.offsetHeight}px`);
    }).observe(this.panel);
  }

  /** Hide or show the narration's paragraphs (the title, what to look at and the buttons stay). */
  setCompact(on) {
    this.compact = on;
    try { localStorage.setItem(COMPACT_KEY, on ? "1" : "0"); } catch { /* private mode: not kept */ }
    this.render();
  }

  /** The elements the current step names (its `look`, and the replay slider of a replay step). */
  looks() {
    const s = this.cursor && this.cursor.current;
    if (!s) return [];
    const names = [...s.look];
    if (s.action && s.action.type === "replay") names.push("replay");
    const out = [];
    for (const l of names) {
      const t = $(LOOK_TARGETS[l]);
      if (t) out.push(t.closest("figure") || t);
    }
    return out;
  }

  /** Highlight what the step names and bring the first of it that is shown into view. */
  reveal() {
    for (const e of document.querySelectorAll(".lesson-look")) e.classList.remove("lesson-look");
    if (!this.cursor) return;
    const looks = this.looks();
    for (const e of looks) e.classList.add("lesson-look");
    const shown = looks.filter((e) => e.offsetParent !== null); // in the view on screen
    if (!shown.length) return;
    // the narration's height now (the observer reports it only after this frame)
    document.documentElement.style.setProperty("--lesson-h", `${this.panel.offsetHeight}px`);
    // the first named panel; on a wide screen the others are on screen with it (the live view
    // fits one screen beside the narration), on a phone they follow it down the page
    const first = shown[0];
    const tall = first.getBoundingClientRect().height > window.innerHeight * 0.8;
    first.scrollIntoView({ block: tall ? "start" : "nearest", inline: "nearest" });
  }

  /** Show the picker button to whoever may run lessons. */
  gate() {
    this.pickBtn.hidden = !this.teacher;
  }

  async togglePicker() {
    this.picker.hidden = !this.picker.hidden;
    if (this.picker.hidden) return;
    this.picker.replaceChildren(el("p", { class: "hint", text: "Loading lessons…" }));
    let list;
    try {
      list = await classApi.lessons();
    } catch (e) {
      this.h.showError(e);
      return;
    }
    this.picker.replaceChildren();
    for (const l of list) {
      const b = el("button", { type: "button", class: "lesson-choice", role: "menuitem", "data-lesson": l.name },
        el("b", { text: l.title }), el("span", { text: `${l.summary} (${l.steps} steps, ~${l.minutes} min)` }));
      b.addEventListener("click", () => { this.picker.hidden = true; this.start(l.name); });
      this.picker.append(b);
    }
  }

  async load(name) {
    if (!this.cache.has(name)) this.cache.set(name, await classApi.lesson(name));
    return this.cache.get(name);
  }

  /** The teacher starts a lesson at its first step (a lesson under way ends first). */
  async start(name) {
    if (this.h.app.welcome) this.h.app.welcome.dismiss();
    let lesson;
    try {
      lesson = await this.load(name);
    } catch (e) {
      this.h.showError(e);
      return;
    }
    if (this.cursor) await this.stopOwned();
    this.cursor = new LessonCursor(lesson);
    this.runId = null;
    this.owned = [];
    await this.enter();
  }

  /** End the lesson: every run it started stops (kept in History); the class leaves it too. */
  async end() {
    const stopped = await this.stopOwned();
    this.cursor = null;
    this.runId = null;
    this.owned = [];
    this.render();
    this.h.classroom.stateChanged(true);
    if (stopped) this.h.toast(`Lesson ended: ${stopped} of its run${stopped === 1 ? "" : "s"} stopped (they stay in History).`);
  }

  /** Stop the runs this lesson started that still train; returns how many were told to stop. */
  async stopOwned(keep = []) {
    const ids = this.owned.filter((id) => !keep.includes(id));
    if (!ids.length) return 0;
    try {
      const r = await api.stopRuns({ runs: ids.slice(-64) });
      this.owned = this.owned.filter((id) => keep.includes(id));
      return r.stopped.length;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) { // one was deleted meanwhile: stop the rest one by one
        for (const id of ids) await api.control(id, { action: "stop" }).catch(() => {});
        this.owned = this.owned.filter((id) => keep.includes(id));
        return ids.length;
      }
      this.h.showError(e);
      return 0;
    }
  }

  /** What the class follows: {name, step} or null. */
  presented() {
    return this.cursor ? { name: this.cursor.name, step: this.cursor.step } : null;
  }

  /** A follower's panel shows the teacher's lesson step. */
  async follow(name, step) {
    if (!name) {
      if (this.cursor) { this.cursor = null; this.render(); }
      return;
    }
    try {
      if (!this.cursor || this.cursor.name !== name) this.cursor = new LessonCursor(await this.load(name));
      this.cursor.go(step);
    } catch (e) {
      this.h.toast(`could not load the lesson: ${e.message}`);
      return;
    }
    this.render();
  }

  async move(to) {
    if (!this.cursor || this.busy) return;
    if (this.cursor.go(to)) await this.enter();
  }

  async enter() {
    this.render();
    this.h.classroom.stateChanged(true);
    const a = this.cursor.pendingAction();
    if (a) await this.perform(a);
  }

  onKey(e) {
    if (!this.cursor || !this.teacher || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t.closest && t.closest("input, select, textarea")) return;
    if (e.key === "PageDown" || e.key === "n") { e.preventDefault(); this.move(this.cursor.step + 1); }
    else if (e.key === "PageUp" || e.key === "p") { e.preventDefault(); this.move(this.cursor.step - 1); }
  }

  // ---------------------------------------------------------------------------- actions
  async perform(a, again = false) {
    const step = this.cursor.step;
    this.busy = true;
    this.render();
    try {
      const lesson = this.cursor.lesson;
      if (a.type === "start") {
        await this.stopOwned(); // the lesson has moved past its earlier runs
        const run = await api.start(startBody(a, lesson.title));
        this.runId = run.id;
        this.owned.push(run.id);
        await this.h.openRun(run.id, null);
      } else if (a.type === "change") {
        const run = this.h.app.live.run;
        if (!run || !["running", "paused"].includes(run.status)) throw new Error("no running run to change: start one first (the step before)");
        await api.control(run.id, { set: a.set });
      } else if (a.type === "compare") {
        await this.stopOwned();
        const g = await api.compare({ base: a.base, variants: a.variants, label: a.label || lesson.title });
        this.runId = null;
        this.owned.push(...g.runs.map((r) => r.id));
        this.h.openCompare(g.runs, g.id, g.label);
      } else if (a.type === "replay") {
        const id = this.runId || this.h.app.state.run;
        if (!id) throw new Error("no run to replay: start one first");
        await this.stopAndWait(id);
        await this.h.openRun(id, a.step);
      }
      if (this.cursor && this.cursor.step === step) this.cursor.markDone(step);
      else if (this.cursor) this.cursor.done.add(step);
      this.h.classroom.stateChanged(true); // the class sees what the step opened
      if (again) this.h.toast(`Done again: ${describeAction(a)}`);
    } catch (e) {
      this.h.showError(e);
    } finally {
      this.busy = false;
      this.render();
    }
  }

  async stopAndWait(id) {
    try {
      await api.control(id, { action: "stop" });
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 409)) throw e; // 409: it had ended already
    }
    for (let i = 0; i < 100; i++) {
      const run = await api.run(id);
      if (FINAL.has(run.status)) return run;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`run ${id} did not stop in 20 s`);
  }

  // ---------------------------------------------------------------------------- the outcome
  /** The runs on screen, as {label, tick, changedAt, startedAt} for measuredOutcome. */
  shownRuns() {
    const app = this.h.app;
    if (app.state.view === "compare" && app.compare) {
      const cards = [...app.compare.cards.values()];
      const titles = cards.map((c) => (c.card.querySelector("header b") || {}).textContent || c.run.id);
      // cards titled alike (same objective) are told apart by what differs, the run's label
      const unique = new Set(titles).size === titles.length;
      return cards.map((c, i) => ({
        label: unique ? titles[i] : c.run.label || c.run.id, tick: c.log.last, changedAt: null, k: c.k,
      }));
    }
    if (app.state.view !== "live" || !app.live.run) return [];
    // the frame on screen (live or replayed), so the box and the cards agree
    const shown = app.live.shown;
    const tick = shown && shown.scalars ? { ...shown.scalars, step: shown.step } : app.live.log.last;
    const changes = app.live.events.filter((e) => e.type === "config" && e.changes && Object.keys(e.changes).length);
    const k = app.live.dataset ? app.live.dataset.num_modes : null;
    return [{ label: `run ${app.live.run.id}`, tick, k, changedAt: changes.length ? changes[changes.length - 1].step : null }];
  }

  renderOutcome() {
    if (!this.outcomeBox || !this.cursor || !this.cursor.current.outcome) return;
    const o = this.cursor.current.outcome;
    const stat = (this.h.app.options.stats || []).find((x) => x.name === o.stat);
    const lines = measuredOutcome(o, this.shownRuns(), { label: stat ? stat.label : o.stat });
    this.outcomeBox.replaceChildren(
      el("p", { class: "outcome-here" }, el("b", { text: this.shownRuns().length > 1 ? "These runs: " : "This run: " }), lines.here),
      el("p", { class: "outcome-seeds" }, el("b", { text: "Over seeds: " }), o.claim));
  }

  // ---------------------------------------------------------------------------- drawing
  render() {
    for (const e of document.querySelectorAll(".lesson-look")) e.classList.remove("lesson-look");
    if (this.h.lessonChanged) this.h.lessonChanged(Boolean(this.cursor));
    this.gate();
    const c = this.cursor;
    this.panel.hidden = !c;
    document.body.classList.toggle("in-lesson", Boolean(c));
    if (!c) { this.panel.replaceChildren(); return; }
    this.panel.classList.toggle("compact", this.compact);
    const s = c.current;
    const text = el("div", { class: "lesson-text" }, ...paragraphs(s.text).map((p) => el("p", { text: p })));
    const sources = el("p", { class: "lesson-sources", text: `Sources: ${s.sources.join("; ")}` });
    const named = s.action && s.action.type === "replay" ? [...s.look, "replay"] : s.look;
    const look = named.length ? el("p", { class: "lesson-look-at", text: `Look at ${named.map((l) => LOOK_WORDS[l] || l).join(", ")}.` }) : null;
    const fold = el("button", {
      type: "button", class: "link lesson-fold", id: "lesson-fold", "aria-expanded": String(!this.compact),
      text: this.compact ? "show text" : "hide text",
      title: this.compact ? "Show the step's text" : "Hide the step's text: the title, what to look at and the buttons stay",
    });
    fold.addEventListener("click", () => this.setCompact(!this.compact));
    const head = el("header", {}, el("span", { class: "lesson-title", text: c.lesson.title }),
      el("span", { class: "lesson-step", id: "lesson-step", "data-step": String(c.step), text: c.label() }), fold);
    const body = [head, el("h2", { text: s.title }), text];
    if (s.outcome) {
      this.outcomeBox = el("div", { class: "lesson-outcome", id: "lesson-outcome", role: "status" });
      body.push(this.outcomeBox);
    } else this.outcomeBox = null;
    if (look) body.push(look);
    body.push(sources);
    if (this.teacher) {
      const nav = el("div", { class: "lesson-nav" });
      const back = el("button", { type: "button", id: "lesson-back", text: "◀ Back", disabled: c.atStart || this.busy, title: "previous step (PageUp, p)" });
      back.addEventListener("click", () => this.move(c.step - 1));
      const next = el("button", { type: "button", class: "primary", id: "lesson-next", text: "Next ▶", disabled: c.atEnd || this.busy, title: "next step (PageDown, n)" });
      next.addEventListener("click", () => this.move(c.step + 1));
      nav.append(back, next);
      const a = s.action;
      if (a && a.type !== "none") {
        const doneAlready = c.done.has(c.step);
        const act = el("button", { type: "button", class: "ghost", id: "lesson-action", disabled: this.busy, text: this.busy ? `${describeAction(a)}…` : doneAlready ? `${describeAction(a)} again` : describeAction(a) });
        act.addEventListener("click", () => this.perform(a, doneAlready));
        nav.append(act);
      }
      const end = el("button", { type: "button", class: "ghost small", id: "lesson-end", text: "End lesson" });
      end.addEventListener("click", () => this.end());
      nav.append(end);
      body.push(nav);
    }
    this.panel.replaceChildren(...body);
    this.renderOutcome();
    this.reveal();
  }
}
