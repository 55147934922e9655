// Tracked runs (docs/tracking.md): a training loop of the user's own streams into the page. Its
// steps come from the loop, so the page offers no Pause or Step for it, and its settings are the
// knobs the loop declared (run.config.knob_specs), changed through POST /api/track/{id}/knobs;
// the loop sees a change in `run.knobs` at its next read.

import { request } from "./api.js";
import { el } from "./dom.js";

/** Whether `run` (a RunOut) is a tracked run. */
export function isTracked(run) {
  return Boolean(run && run.config && run.config.family === "tracked");
}

const ACTIVE = new Set(["running", "stopping"]);

/** The sidebar panel of a tracked run: what it is, and its declared knobs. */
export class TrackedPanel {
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks; // {error(e), toast(text)}
    this.runId = null;
  }

  /** Show `run` (or hide the panel when it is not tracked). */
  show(run) {
    const on = isTracked(run);
    document.body.classList.toggle("tracked", on);
    this.root.hidden = !on;
    if (!on) {
      this.runId = null;
      return;
    }
    const active = ACTIVE.has(run.status) && run.status !== "stopping";
    const key = `${run.id}/${run.config_version}/${active}`;
    if (this.key === key) return; // the same values: leave fields being edited alone
    this.key = key;
    this.runId = run.id;
    const cfg = run.config;
    const specs = Object.values(cfg.knob_specs || {});
    const values = cfg.knobs || {};
    const head = el("p", { class: "tracked-what" },
      el("b", { text: "Tracked run" }), ` · ${cfg.name || run.id}. Its steps come from its own training loop: `
      + "the page shows what the loop logs and can change the knobs it declared, not pause or step it.");
    const rows = specs.length ? specs.map((k) => this.row(k, values[k.name], active))
      : [el("p", { class: "hint", text: "The loop declared no knobs (track(..., knobs={...}))." })];
    this.root.replaceChildren(head, ...rows);
  }

  row(k, value, active) {
    const id = `tk-${k.name}`;
    let input;
    if (k.type === "bool") {
      input = el("input", { type: "checkbox", id });
      input.checked = Boolean(value);
    } else if (k.type === "choice") {
      input = el("select", { id }, ...k.choices.map((c) => el("option", { value: c, text: c })));
      input.value = value;
    } else {
      input = el("input", { type: "number", id, min: k.min ?? undefined, max: k.max ?? undefined,
        step: k.type === "int" ? "1" : "any", value: String(value) });
    }
    input.disabled = !active;
    input.dataset.knob = k.name;
    const range = k.type === "choice" || k.type === "bool" ? ""
      : k.min != null && k.max != null ? ` [${k.min}, ${k.max}]` : "";
    const label = el("label", { for: id, title: k.help || undefined, text: `${k.name}${range}` });
    input.addEventListener("change", () => this.apply(k, input));
    return el("div", { class: "tracked-knob" }, label, input);
  }

  async apply(k, input) {
    let v;
    if (k.type === "bool") v = input.checked;
    else if (k.type === "choice") v = input.value;
    else v = Number(input.value);
    if (typeof v === "number" && !Number.isFinite(v)) return;
    input.setAttribute("aria-invalid", "false");
    try {
      await request("POST", `/api/track/${encodeURIComponent(this.runId)}/knobs`, { set: { [k.name]: v } });
      this.hooks.toast(`${k.name} = ${v}: the loop reads it at its next step`);
    } catch (e) {
      input.setAttribute("aria-invalid", "true");
      this.hooks.error(e);
    }
  }
}
