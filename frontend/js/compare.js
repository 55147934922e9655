// The compare grid: 2–8 runs side by side, each with a small samples canvas, occupancy bars and
// its key numbers, above two shared Plotly charts (modes covered, D loss) with one trace per run,
// so every run is read on the same axes.

import { api } from "./api.js";
import { el } from "./dom.js";
import { differingKnobs, knobsText } from "./knob_text.js";
import { recipe, remedies, remedyOn } from "./remedies.js";
import { PLOT_CONFIG, typeFonts } from "./charts.js";
import { RunSocket } from "./connection.js";
import { OccupancyBars } from "./occupancy_chart.js";
import { SamplesChart } from "./samples_chart.js";
import { FamilyPanels } from "./family_panels.js";
import { TickLog, familyTraces, finiteOrNull, formatNumber } from "./series.js";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#4c8bf5", "#e4572e", "#2e9e5b", "#a05cd6", "#d4a017", "#2bb3a3", "#d6457a", "#5f6577"];
const Plotly = () => globalThis.Plotly;

// Remedies a comparison can switch on, with the value that switches each on.

/** Variants of a comparison from the chosen objectives and remedies (pure; 2–8 are allowed). */
export function compareVariants(objectives, remedies, baseObjective) {
  const out = objectives.map((o) => ({ objective: o }));
  for (const r of remedies) out.push({ objective: baseObjective, ...remedyOn(r) });
  return out;
}

/**
 * Titles of runs shown side by side (pure): each run's recipe, and the knobs that differ between
 * the runs besides those the recipe names, by their short names from the registry.
 */
export function compareTitles(configs) {
  const inRecipe = new Set(["objective", ...remedies().map((r) => r.knobs[0])]);
  const names = differingKnobs(configs, inRecipe);
  return configs.map((c) => {
    const base = recipe(c);
    return names.length ? `${base} · ${knobsText(c, names)}` : base;
  });
}

export class CompareView {
  /**
   * hooks: {open(runId), error(text), changed(runIds, groupId), objectives(run) -> [names],
   * family(run) -> its /api/options family}
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.cards = new Map(); // run id -> card
    this.group = null;
    this.raf = 0;
    this.plotted = false;
  }

  get runIds() {
    return [...this.cards.keys()];
  }

  /** Show these runs (RunOut list) in the grid; `group` is their compare group id, if any. */
  show(runs, group = null) {
    this.close();
    this.group = group;
    this.titles = compareTitles(runs.map((r) => r.config));
    $("view-compare").dataset.empty = runs.length ? "0" : "1"; // no runs: the charts say so
    const grid = $("compare-grid");
    grid.replaceChildren();
    runs.forEach((run, i) => this.addCard(run, i));
    this.plot();
    this.timer = setInterval(() => this.flushCurves(), 1000);
    this.loadHistory();
  }

  /**
   * The curves from each run's first tick, not from the moment this page joined: each run's
   * recorded ticks (GET /api/runs/{id}/history) go before those the socket brought meanwhile,
   * and the curves are drawn again once. A page that shows the grid again (a role that changed,
   * a follower back from exploring) keeps the whole history.
   */
  async loadHistory() {
    const cards = [...this.cards.values()];
    const got = await Promise.all(cards.map((c) => api.history(c.run.id).catch(() => null)));
    if (cards.some((c) => this.cards.get(c.run.id) !== c)) return; // the grid changed meanwhile
    let any = false;
    cards.forEach((c, j) => {
      const h = got[j];
      if (!h || !h.ticks.length) return;
      const log = new TickLog();
      for (const t of h.ticks) log.push(t);
      for (const t of c.log.ticks) if (!log.last || t.step > log.last.step) log.push(t);
      c.log = log;
      any = true;
    });
    if (any) this.plot();
  }

  addCard(run, i) {
    const color = PALETTE[i % PALETTE.length];
    const card = el("article", { class: "cmp-card" });
    card.dataset.run = run.id;
    // the recipe as a person would say it ("nsgan + minibatch_disc"), then whatever else differs
    // between the runs shown ("nsgan · lr_g 2e-4, β1 0.9"): no two cards read the same
    const title = this.titles[i];
    card.setAttribute("aria-label", `run ${run.id}: ${title}`);
    const head = el("header");
    const name = el("b", { text: title });
    name.style.color = color;
    name.title = `run ${run.id}${run.label ? `: ${run.label}` : ""}`;
    const badge = el("span", { class: "badge", text: run.status });
    badge.dataset.status = run.status;
    head.append(name, badge);
    const canvas = el("canvas", { class: "cmp-samples" });
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `samples of run ${run.id}`);
    const bars = el("canvas", { class: "cmp-bars" });
    bars.setAttribute("role", "img");
    bars.setAttribute("aria-label", `occupancy per mode of run ${run.id}`);
    const metrics = el("div", { class: "cmp-metrics" });
    const covered = el("span", { text: "covered –" });
    const eff = el("span", { text: "eff –" });
    const step = el("span", { text: "step –" });
    metrics.append(covered, eff, step);
    const actions = el("div", { class: "cmp-actions" });
    const open = el("button", { class: "small ghost", text: "Open" });
    open.type = "button";
    open.title = "Open this run in the live view";
    open.addEventListener("click", () => this.hooks.open(run.id));
    actions.append(open);
    // a clone with another objective, for a family that has objectives (the run's own)
    const objectives = this.hooks.objectives(run).filter((o) => o !== run.config.objective);
    if (objectives.length) {
      const pick = el("select");
      pick.setAttribute("aria-label", `objective of a clone of run ${run.id}`);
      for (const o of objectives) pick.append(new Option(o, o));
      pick.value = run.config.objective === "wgan-gp" ? "nsgan" : "wgan-gp";
      if (!pick.value) pick.selectedIndex = 0;
      const clone = el("button", { class: "small", text: "Clone ▸" });
      clone.type = "button";
      clone.title = "Add a run with these settings and another objective";
      clone.addEventListener("click", () => this.clone(run, pick.value));
      actions.append(pick, clone);
    }
    // the family's own panels, small, under the run's numbers; a family without 2-D samples
    // (frame.samples "") has no scatter
    const fam = this.hooks.family ? this.hooks.family(run) : null;
    canvas.hidden = Boolean(fam && fam.frame && fam.frame.samples === "");
    const panelBox = el("div", { class: "cmp-panels" });
    card.append(head, canvas, bars, metrics, panelBox, actions);
    $("compare-grid").append(card);

    const chart = new SamplesChart(canvas, { legend: false, pointSize: 1.6 });
    chart.setDataset(run.dataset, run.value_kind);
    chart.clear(run.status === "queued" ? "queued…" : "connecting…");
    const panels = new FamilyPanels(panelBox, { compact: true });
    panels.setFamily(fam);
    const c = { run, i, color, card, chart, panels, bars, barChart: new OccupancyBars(bars, { axes: false }), badge, covered, eff, step, log: new TickLog(), pending: null, newTicks: [], k: run.dataset ? run.dataset.num_modes : 0, statusStep: run.step || 0 };
    c.socket = new RunSocket(run.id, {
      hello: (m) => {
        c.k = m.dataset.num_modes;
        c.statusStep = m.run.step || 0;
        this.setStatus(c, m.run.status);
        chart.setDataset(m.dataset, m.value_kind);
        this.modesRange();
      },
      real: (m) => chart.setReal(m),
      frame: (m) => this.onFrame(c, m),
      status: (m) => this.setStatus(c, m.status),
      event: (ev) => {
        if (ev.type !== "state") return;
        c.statusStep = Math.max(c.statusStep, ev.step ?? 0);
        this.setStatus(c, ev.state);
      },
      error: (m) => this.hooks.error(m.message),
      state: () => {},
    }, api.token);
    c.socket.connect();
    this.cards.set(run.id, c);
    return c;
  }

  setStatus(c, status) {
    c.badge.textContent = status;
    c.badge.dataset.status = status;
    c.status = status;
  }

  onFrame(c, m) {
    const tick = { ...m.scalars, step: m.step, occupancy: m.occupancy };
    if (c.log.push(tick) === "append") c.newTicks.push(tick);
    // as in the live view: a frame older than the last state event does not undo it
    if (m.scalars.status && m.step > c.statusStep && !["done", "failed", "interrupted"].includes(c.status)) {
      c.statusStep = m.step;
      this.setStatus(c, m.scalars.status);
    }
    c.pending = m;
    if (!this.raf) this.raf = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.raf = 0;
    for (const c of this.cards.values()) {
      const m = c.pending;
      if (!m) continue;
      c.pending = null;
      if (m.scalars.value_kind) c.chart.valueKind = m.scalars.value_kind; // the objective may change
      c.chart.draw(m);
      c.barChart.draw(m.occupancy);
      c.panels.update(m.scalars.panels);
      const s = m.scalars;
      c.covered.textContent = `covered ${s.modes_covered ?? "–"}/${c.k || "?"}`;
      c.eff.textContent = `eff ${formatNumber(s.effective_modes, 3)}`;
      c.step.textContent = `step ${m.step}`;
    }
  }

  /** Extend the shared curves with every run's new ticks: once a second, not per frame
   * (a Plotly update costs more than a whole frame's budget; see charts.js). */
  flushCurves() {
    if (!this.plotted || document.hidden) return;
    const xs = [];
    const cov = [];
    const loss = [];
    const idx = [];
    for (const c of this.cards.values()) {
      if (!c.newTicks.length) continue;
      idx.push(c.i);
      xs.push(c.newTicks.map((t) => t.step));
      cov.push(c.newTicks.map((t) => finiteOrNull(t.modes_covered)));
      loss.push(c.newTicks.map((t) => finiteOrNull(t[this.second.key])));
      c.newTicks = [];
    }
    if (!idx.length) return;
    Plotly().extendTraces($("cmp-modes"), { x: xs, y: cov }, idx, 4000);
    Plotly().extendTraces($("cmp-loss"), { x: xs, y: loss }, idx, 4000);
  }

  /**
   * The second shared chart: the first curve of the runs' family (/api/options: a GAN's D loss,
   * a genetic algorithm's mean fitness), named in its caption.
   */
  secondCurve() {
    const first = [...this.cards.values()][0];
    const fam = first && this.hooks.family ? this.hooks.family(first.run) : null;
    const t = familyTraces(fam).traces[0] || { key: "loss_d", label: "D loss" };
    return { key: t.key, label: t.label };
  }

  plot() {
    this.second = this.secondCurve();
    $("cmp-loss-title").textContent = `${this.second.label}, all runs`;
    const traces = (key) => [...this.cards.values()].map((c) => ({
      type: "scatter", mode: "lines", name: this.titles[c.i], line: { color: c.color, width: 1.6 },
      x: c.log.ticks.map((t) => t.step), y: c.log.ticks.map((t) => finiteOrNull(t[key])),
    }));
    const k = Math.max(0, ...[...this.cards.values()].map((c) => c.k));
    const f = typeFonts();
    const layout = (title, extra = {}) => ({
      margin: { l: 40, r: 8, t: 26, b: 34 }, font: f.font, paper_bgcolor: "rgba(0,0,0,0)",
      showlegend: true, legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom", font: { size: f.legend } },
      xaxis: { title: { text: "step" }, gridcolor: "#eceef3" },
      yaxis: { title: { text: title }, gridcolor: "#eceef3", ...extra }, uirevision: "keep",
    });
    Plotly().react($("cmp-modes"), traces("modes_covered"), layout("modes covered", k ? { range: [0, k + 0.5] } : {}), PLOT_CONFIG);
    Plotly().react($("cmp-loss"), traces(this.second.key), layout(this.second.label), PLOT_CONFIG);
    for (const c of this.cards.values()) c.newTicks = [];
    this.plotted = true;
    this.rangeK = k;
  }

  /** Modes-covered axis from 0 to the largest K (known once the runs said hello). */
  modesRange() {
    const k = Math.max(0, ...[...this.cards.values()].map((c) => c.k));
    if (k && this.plotted && k !== this.rangeK) {
      this.rangeK = k;
      Plotly().relayout($("cmp-modes"), { "yaxis.range": [0, k + 0.5] });
    }
  }

  async clone(run, objective) {
    try {
      let g;
      if (this.group) {
        g = await api.extendGroup(this.group, { objective });
      } else {
        const { dataset, data, seed, ...rest } = run.config;
        g = await api.compare({ base: { dataset, data, seed, ...rest }, variants: [{ objective: run.config.objective }, { objective }], label: `clone of ${run.id}` });
      }
      this.show(g.runs, g.id);
      this.hooks.changed(g.runs.map((r) => r.id), g.id);
    } catch (e) {
      this.hooks.error(e.message);
    }
  }

  close() {
    clearInterval(this.timer);
    for (const c of this.cards.values()) c.socket.close();
    this.cards.clear();
    $("view-compare").dataset.empty = "1";
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = 0;
  }
}
