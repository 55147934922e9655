// The history view: every run the server keeps (live, done, failed, interrupted), newest first,
// with open / replay, CSV, stop (a run, its compare group, or — the teacher — every run) and
// delete; a queued run shows its place in the queue and about how long it waits. Opening the
// view, or stopping runs from it, never moves the class (classroom.js presents only on request).

import { api } from "./api.js";
import { el } from "./dom.js";
import { recipe } from "./remedies.js";

const $ = (id) => document.getElementById(id);

export { recipe };

const cell = (text, cls) => el("td", { class: cls, text });
const ACTIVE = new Set(["queued", "running", "paused"]);

/** "1st in the queue, about 2 min" for a queued run (RunOut's queue_position and wait_s). */
export function queueText(run) {
  if (run.status !== "queued" || !run.queue_position) return "";
  const n = run.queue_position;
  const nth = n % 10 === 1 && n % 100 !== 11 ? "st" : n % 10 === 2 && n % 100 !== 12 ? "nd" : n % 10 === 3 && n % 100 !== 13 ? "rd" : "th";
  let wait;
  if (run.wait_s === null || run.wait_s === undefined) wait = "waits until a run ahead is stopped or ends";
  else if (run.wait_s < 60) wait = "about a minute or less";
  else if (run.wait_s < 3600) wait = `about ${Math.round(run.wait_s / 60)} min`;
  else wait = `about ${(run.wait_s / 3600).toFixed(1)} h`;
  return `${n}${nth} in the queue, ${wait}`;
}

export class HistoryView {
  /** hooks: {open(runId), error(text), removed(runId), powers(run), toast(text)} */
  constructor(hooks) {
    this.hooks = hooks;
    $("history-refresh").addEventListener("click", () => this.load());
    $("history-stop-all").addEventListener("click", () => this.stop({ all: true }, "every run on the server"));
    // while the list is on screen it follows the runs (states, steps, places in the queue)
    setInterval(() => {
      if (!$("view-history").hidden && !document.hidden && !this.loading) this.load();
    }, 4000);
  }

  /** Stop runs (POST /api/runs/stop) and list again. */
  async stop(body, what) {
    try {
      const r = await api.stopRuns(body);
      this.hooks.toast(r.stopped.length ? `Stopped ${r.stopped.length} run${r.stopped.length === 1 ? "" : "s"} (${what}); they stay here.` : `Nothing to stop (${what}): it had ended already.`);
    } catch (e) {
      this.hooks.error(e.message);
    }
    await this.load();
  }

  async load() {
    let runs;
    this.loading = true;
    try {
      runs = (await api.runs()).runs;
    } catch (e) {
      this.hooks.error(`could not list runs: ${e.message}`);
      return;
    } finally {
      this.loading = false;
    }
    const body = $("history-table").querySelector("tbody");
    body.replaceChildren();
    const active = runs.filter((r) => ACTIVE.has(r.status)).length;
    $("history-active").textContent = active ? `${active} run${active === 1 ? "" : "s"} training or waiting` : "nothing training";
    $("history-stop-all").hidden = !this.hooks.powers(null).compare || !active;
    if (!runs.length) {
      const tr = document.createElement("tr");
      tr.append(cell("No runs yet. Start one from the Live view.", "empty"));
      tr.firstChild.colSpan = 8;
      body.append(tr);
    }
    for (const run of runs.slice().reverse()) {
      const tr = document.createElement("tr");
      tr.dataset.run = run.id;
      const id = cell();
      const code = document.createElement("code");
      code.textContent = run.id;
      id.append(code);
      if (run.label) id.append(` ${run.label}`);
      if (run.owner === "student") {
        const who = document.createElement("span");
        who.className = "owner";
        who.textContent = ` · ${run.owner_name || "a student"}${run.mine ? " (you)" : ""}`;
        id.append(who);
      }
      const status = cell();
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.status = run.status;
      badge.textContent = run.status;
      status.append(badge);
      if (run.reason && run.status !== "done") {
        const why = document.createElement("span");
        why.className = "reason";
        why.textContent = run.reason;
        status.append(why);
      }
      const queue = queueText(run);
      if (queue) status.append(el("span", { class: "reason queue-place", text: queue }));
      const k = run.dataset ? run.dataset.num_modes : "?";
      const cov = run.last && run.last.modes_covered !== undefined ? `${run.last.modes_covered} / ${k}` : "–";
      const started = run.started || run.created;
      const actions = cell(undefined, "actions");
      const open = document.createElement("button");
      open.type = "button";
      open.className = "small";
      open.textContent = ["done", "failed", "interrupted"].includes(run.status) ? "Replay" : "Open";
      open.addEventListener("click", () => this.hooks.open(run.id));
      const csv = document.createElement("a");
      csv.className = "button small ghost";
      csv.href = api.csvUrl(run.id);
      csv.download = `run-${run.id}.csv`;
      csv.textContent = "CSV";
      const del = document.createElement("button");
      del.type = "button";
      del.className = "small ghost danger";
      del.textContent = "Delete";
      del.setAttribute("aria-label", `delete run ${run.id}`);
      del.addEventListener("click", async () => {
        if (!confirm(`Delete run ${run.id} and everything recorded for it?`)) return;
        try {
          await api.remove(run.id);
          tr.remove();
          this.hooks.removed(run.id);
        } catch (e) {
          this.hooks.error(e.message);
        }
      });
      actions.append(open, " ", csv);
      const p = this.hooks.powers(run);
      if (ACTIVE.has(run.status) && p.steer) {
        const stop = el("button", { type: "button", class: "small ghost danger stop-run", text: "Stop", "aria-label": `stop run ${run.id}` });
        stop.addEventListener("click", () => this.stop({ runs: [run.id] }, `run ${run.id}`));
        actions.append(" ", stop);
      }
      if (run.group_id && p.compare && runs.some((r) => r.group_id === run.group_id && ACTIVE.has(r.status))) {
        const stopGroup = el("button", { type: "button", class: "small ghost danger stop-group", text: "Stop group", "aria-label": `stop every run of compare group ${run.group_id}` });
        stopGroup.addEventListener("click", () => this.stop({ group: run.group_id }, `compare group ${run.group_id}`));
        actions.append(" ", stopGroup);
      }
      if (p.remove) actions.append(" ", del);
      tr.append(id, status, cell(run.config.dataset || (run.dataset && run.dataset.name) || "–"), cell(recipe(run.config)), cell(String(run.step)),
        cell(cov), cell(new Date(started * 1000).toLocaleString()), actions);
      body.append(tr);
    }
  }
}
