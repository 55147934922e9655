// The history view: every run the server keeps (live, done, failed, interrupted), newest first,
// with open / replay, CSV and delete.

import { api } from "./api.js";
import { el } from "./dom.js";
import { recipe } from "./remedies.js";

const $ = (id) => document.getElementById(id);

export { recipe };

const cell = (text, cls) => el("td", { class: cls, text });

export class HistoryView {
  /** hooks: {open(runId), error(text), removed(runId)} */
  constructor(hooks) {
    this.hooks = hooks;
    $("history-refresh").addEventListener("click", () => this.load());
  }

  async load() {
    let runs;
    try {
      runs = (await api.runs()).runs;
    } catch (e) {
      this.hooks.error(`could not list runs: ${e.message}`);
      return;
    }
    const body = $("history-table").querySelector("tbody");
    body.replaceChildren();
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
      actions.append(open, " ", csv, " ", del);
      tr.append(id, status, cell(run.config.dataset || (run.dataset && run.dataset.name) || "–"), cell(recipe(run.config)), cell(String(run.step)),
        cell(cov), cell(new Date(started * 1000).toLocaleString()), actions);
      body.append(tr);
    }
  }
}
