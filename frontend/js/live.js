// The live view of one run: its websocket, the samples canvas, the Plotly charts, the metric
// cards, and, for a finished run, the replay scrubber. Frames are drawn on the next animation
// frame, latest wins, so a burst of frames costs one draw.

import { api } from "./api.js";
import { RunCharts } from "./charts.js";
import { RunSocket } from "./connection.js";
import { decode, unpackRecords, REAL } from "./protocol.js";
import { SamplesChart } from "./samples_chart.js";
import { FamilyPanels } from "./family_panels.js";
import { MetricCards } from "./cards.js";
import {
  TickLog, markersFromEvents, describeChanges, occupancySummary,
  indexAtStep, latentSlice,
} from "./series.js";

// what the samples note calls the heatmap, by the run's value kind (the GAN's: D's value)
const HEATMAP_WORDS = { fitness: "fitness", training: "training points" };

const $ = (id) => document.getElementById(id);
export const FINAL = new Set(["done", "failed", "interrupted"]);
export const ACTIVE = new Set(["queued", "running", "paused", "stopping"]);

/** Which run buttons the run's state allows (true = disabled), before any role says more:
 *  pause/resume while active (and resume for an interrupted run, which goes on from its
 *  checkpoint), the step buttons while paused, stop while active. */
export function runButtonsDisabled(run) {
  const st = run ? run.status : null;
  const active = Boolean(run && ACTIVE.has(st));
  const interrupted = st === "interrupted";
  const step = st !== "paused";
  return {
    pause: !interrupted && (!active || st === "stopping" || st === "queued"),
    step, "step-d": step, "step-g": step,
    stop: !active || st === "stopping",
  };
}

/** Timings of drawn frames, read by bench/browser_frame.py (window.collapseLab.perf). */
export const perf = {
  frames: [], // [performance.now() at draw, JS ms spent drawing]
  received: 0, // binary frames that arrived (some are superseded before a draw: latest wins)
  reset() { this.frames = []; this.received = 0; },
};

export class LiveView {
  /**
   * hooks: {status(run), config(cfg, event), rejected(ev), connection(info), error(text),
   * replayStep(step), valueKinds(), claim(run) -> the chart marker of the run's preset claim}
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.samples = new SamplesChart($("samples"));
    this.familyPanels = new FamilyPanels($("family-panels"));
    this.cards = new MetricCards($("cards"));
    this.cards.setFamily(hooks.options(), hooks.defaultFamily);
    this.charts = new RunCharts({ loss: $("chart-loss"), modes: $("chart-modes"), bars: $("chart-bars"), heat: $("chart-heat") });
    this.log = new TickLog();
    this.events = [];
    this.run = null;
    this.socket = null;
    this.dataset = null;
    this.pending = null; // latest frame not yet drawn
    this.raf = 0;
    this.replay = null;
    this.playTimer = 0;
    this.statusStep = -1; // the step at which the run's status was last learned from hello or an event
    // which opening of a run the page is on: a load (history, replay) that comes back after the
    // page opened another run, or this one again, or closed the view, is dropped. Two loads of
    // one run can finish in either order (a run that ended here while a follower was sent its
    // replay at a step): the later opening's must win, not the slower download.
    this.generation = 0;
    this.opening = false;
    this.layers = { manifold: false }; // optional frame parts this viewer draws (asked of the server)
    this.shown = null; // the frame the samples panel shows (live or replayed)
    this.data = null; // {name, real} of the dataset drawn before any run (preview)
    this.samples.clear("Start a run, or open one from History");
    $("scrub").addEventListener("input", () => this.showReplay(Number($("scrub").value)));
    $("scrub-play").addEventListener("click", () => this.togglePlay());
    new ResizeObserver(() => {
      if (this.samples.lastFrame) this.samples.draw(this.samples.lastFrame);
      else if (this.data && !this.run) this.samples.drawData(this.data.real);
      this.charts.drawFrame();
    }).observe($("samples"));
    this.hoverTips();
  }

  /** Hover read-outs of the canvas occupancy charts (Plotly charts have their own). */
  hoverTips() {
    const tip = $("occ-tip");
    const panel = tip.parentElement;
    const place = (e, text) => {
      const r = panel.getBoundingClientRect();
      tip.textContent = text;
      tip.hidden = false;
      tip.style.left = `${Math.min(e.clientX - r.left + 12, r.width - 160)}px`;
      tip.style.top = `${e.clientY - r.top + 12}px`;
    };
    const name = (m) => (this.dataset && this.dataset.mode_names ? this.dataset.mode_names[m] : `mode ${m}`);
    $("chart-bars").addEventListener("mousemove", (e) => {
      const r = e.currentTarget.getBoundingClientRect();
      const m = this.charts.bars.modeAt(e.clientX - r.left);
      const occ = this.charts.lastOcc;
      if (m < 0 || !occ) { tip.hidden = true; return; }
      place(e, `mode ${m} ${name(m)}: ${(100 * occ[m]).toFixed(1)} %`);
    });
    $("chart-heat").addEventListener("mousemove", (e) => {
      const r = e.currentTarget.getBoundingClientRect();
      const c = this.charts.heat.cellAt(e.clientX - r.left, e.clientY - r.top);
      const t = c && this.log.ticks.find((x) => x.step === c.step);
      if (!c || !t) { tip.hidden = true; return; }
      place(e, `step ${c.step}, mode ${c.mode} ${name(c.mode)}: ${(100 * t.occupancy[c.mode]).toFixed(1)} %`);
    });
    for (const id of ["chart-bars", "chart-heat"]) $(id).addEventListener("mouseleave", () => { tip.hidden = true; });
  }

  /**
   * How to read the value grid of a frame with config version `v`: the objective in force then
   * (from the config events) says probability or critic; before any change, the run's first
   * value kind (hello) holds.
   */
  valueKindAt(v) {
    let objective = null;
    for (const e of this.events) if (e.version <= v && e.config && e.config.objective) objective = e.config.objective;
    const kinds = this.hooks.valueKinds();
    return (objective && kinds.get(objective)) || this.initialValueKind || "probability";
  }

  get runId() {
    return this.run ? this.run.id : null;
  }

  /** Config-change markers, and the marker of the claim of the preset the run started as while
   * it still has that preset's knobs. */
  markers() {
    const out = markersFromEvents(this.events);
    const claim = this.run && this.hooks.claim ? this.hooks.claim(this.run) : null;
    if (claim) out.push(claim);
    return out;
  }

  /**
   * Data first: with no run open, draw dataset `name`'s real samples and mode centres
   * (GET /api/datasets/{name}/preview) so a person sees the data before starting.
   */
  async preview(name) {
    if (this.run || !name || name === "csv") return;
    if (this.data && this.data.name === name) {
      this.samples.drawData(this.data.real);
      return;
    }
    let m;
    try {
      m = decode(await api.preview(name));
    } catch (e) {
      this.hooks.error(`could not load the ${name} data: ${e.message}`);
      return;
    }
    if (this.run) return; // a run opened meanwhile: it has the panel
    const ds = m.scalars.dataset;
    this.data = { name, real: m, dataset: ds };
    this.samples.setDataset(ds, "probability");
    this.samples.setReal(m);
    $("samples-panel").classList.toggle("images", ds.kind === "image");
    this.samples.drawData(m);
    // "press Start run" only where the page may start one (a watch-only page has no Start)
    const start = document.body.dataset.role === "viewer" ? "" : "; press Start run";
    $("samples-note").textContent = ds.kind === "image"
      ? `${ds.name} · ${ds.num_modes} classes · real digits${start}`
      : `${ds.name} · ${ds.num_modes} modes · the real data and its mode centres${start}`;
  }

  /** Which optional frame parts to draw; the server is asked to send them while any viewer does. */
  setLayers(layers) {
    this.layers = { ...this.layers, ...layers };
    if (this.socket) this.socket.send({ layers: this.layers });
    this.noteManifold(this.shown);
  }

  /** The manifold's latent slice, under the panel, while the layer is on. */
  noteManifold(frame) {
    const note = $("manifold-note");
    const on = this.samples.show.manifold && !(this.dataset && this.dataset.kind === "image");
    note.hidden = !on;
    $("samples-panel").classList.toggle("manifold-on", on);
    if (!on) return;
    if (frame && frame.manifold) {
      const z = this.run && this.run.config ? this.run.config.z_dim : null;
      const slice = frame.scalars.manifold_note || latentSlice(z);
      note.textContent = `G manifold: G's image of a ${frame.manifoldSide}×${frame.manifoldSide} grid of noise${slice ? `, ${slice}` : ""}`;
    }
    else note.textContent = this.run ? "G manifold: not in this frame yet (the server adds it while a viewer asks for it)" : "G manifold: drawn once a run starts";
  }

  /** Show run `run` (a RunOut): history first, then the live stream (or the replay when over). */
  async open(run, replayStep = null) {
    this.close();
    const gen = this.generation;
    this.opening = true;
    try {
      await this.load(run, replayStep);
    } finally {
      if (gen === this.generation) this.opening = false;
    }
  }

  async load(run, replayStep) {
    const gen = this.generation;
    this.run = run;
    this.statusStep = run.step || 0;
    this.finished = FINAL.has(run.status);
    this.log = new TickLog();
    this.events = [];
    this.dataset = run.dataset || null;
    this.initialValueKind = run.value_kind;
    $("samples-panel").classList.toggle("images", Boolean(run.dataset && run.dataset.kind === "image"));
    this.samples.setDataset(run.dataset, run.value_kind);
    this.charts.family = this.hooks.family ? this.hooks.family(run) : null;
    this.familyPanels.setFamily(this.charts.family);
    this.cards.setFamily(this.hooks.options(), (run.config && run.config.family) || this.hooks.defaultFamily);
    this.samples.clear(run.status === "queued" ? "Queued: waiting for a free worker…" : "Connecting…");
    this.familyPanels.clear(run.status === "queued" ? "Queued: waiting for a free worker…" : "Connecting…");
    this.charts.reset(this.dataset, [], []);
    this.updateCards(run.last || {});
    $("csv").href = api.csvUrl(run.id);
    $("csv").setAttribute("download", `run-${run.id}.csv`);
    $("scrubber").hidden = true;
    try {
      const h = await api.history(run.id);
      if (gen !== this.generation || this.run !== run) return;
      for (const t of h.ticks) this.log.push(t);
      this.events = h.events.filter((e) => e.type === "config");
      if (this.dataset) this.charts.reset(this.dataset, this.log.ticks, this.markers());
    } catch (e) {
      if (gen !== this.generation) return; // another run opened meanwhile: not this one's socket
      this.hooks.error(`could not load the run's history: ${e.message}`);
    }
    if (FINAL.has(run.status)) {
      await this.loadReplay(replayStep);
      if (gen === this.generation) this.hooks.connection({ state: "closed" }); // (not another run's badge)
    } else {
      this.connect();
    }
  }

  connect() {
    const run = this.run;
    this.socket = new RunSocket(run.id, {
      hello: (m) => this.onHello(m),
      real: (m) => { this.samples.setReal(m); },
      frame: (m) => this.onFrame(m),
      event: (ev) => this.onEvent(ev),
      status: (m) => this.onStatus(m),
      error: (m) => this.hooks.error(m.message),
      state: (s) => this.hooks.connection(s),
    }, api.token);
    this.socket.connect();
  }

  onHello(m) {
    const first = !this.dataset || this.dataset.num_modes !== m.dataset.num_modes;
    this.dataset = m.dataset;
    this.run = { ...this.run, ...m.run };
    this.statusStep = m.run.step || 0;
    this.initialValueKind = m.value_kind;
    // a (re)connected socket starts with every layer off on the server's side
    if (Object.values(this.layers).some(Boolean) && this.socket) this.socket.send({ layers: this.layers });
    this.samples.setDataset(m.dataset, m.value_kind);
    const images = m.dataset.kind === "image";
    $("samples-panel").classList.toggle("images", images);
    $("samples-note").textContent = m.dataset.tracked ? trackedNote(m.dataset)
      : images
        ? `${m.dataset.name} · ${m.dataset.num_modes} classes`
        : `${m.dataset.name} · ${m.dataset.num_modes} modes · heatmap: ${HEATMAP_WORDS[m.value_kind] || "D's value"}`;
    const known = new Set(this.events.map((e) => e.version));
    for (const e of m.events || []) if (!known.has(e.version)) this.events.push(e);
    this.events.sort((a, b) => a.version - b.version);
    if (first || !this.charts.ready) this.charts.reset(this.dataset, this.log.ticks, this.markers());
    else this.charts.setMarkers(this.markers());
    this.hooks.status(this.run);
    // a run that ended while we were away (e.g. interrupted by a server restart)
    if (FINAL.has(m.run.status)) this.onStatus({ status: m.run.status, reason: m.run.reason });
  }

  onFrame(m) {
    perf.received += 1;
    this.keepManifold(m);
    const tick = { ...m.scalars, step: m.step, config_version: m.configVersion, occupancy: m.occupancy };
    const what = this.log.push(tick);
    if (what === "append") this.charts.push(tick);
    else if (what === "reset" && this.dataset) this.charts.reset(this.dataset, this.log.ticks, this.markers());
    // a frame's status is news only when the frame is newer than what hello or a state event
    // said: a frame encoded before a pause (e.g. the hub's latest, sent to a viewer who joins a
    // paused run) must not turn the run back to "running"
    if (m.scalars.status && this.run && m.scalars.status !== this.run.status
        && !FINAL.has(this.run.status) && m.step > this.statusStep) {
      // the reason belongs to the status it came with; the new one's follows in its message
      this.run = { ...this.run, status: m.scalars.status, reason: null };
      this.statusStep = m.step;
      this.hooks.status(this.run);
    }
    this.pending = m;
    if (!this.raf) this.raf = requestAnimationFrame(() => this.drawPending());
  }

  /**
   * While the manifold layer is on, a frame that came without one (the server adds it to the
   * frames it decides to send, and now and then one slips through without) borrows the last
   * one received, if it is at most two ticks older: the layer does not blink.
   */
  keepManifold(m) {
    if (m.manifold) {
      this.lastManifold = { manifold: m.manifold, side: m.manifoldSide, step: m.step };
      return;
    }
    const last = this.lastManifold;
    const every = (this.run && this.run.config && this.run.config.tick_every) || 20;
    if (this.layers.manifold && last && m.step >= last.step && m.step - last.step <= 2 * every) {
      m.manifold = last.manifold;
      m.manifoldSide = last.side;
    }
  }

  drawPending() {
    this.raf = 0;
    const m = this.pending;
    if (!m) return;
    this.pending = null;
    const t0 = performance.now();
    this.samples.valueKind = m.scalars.value_kind || this.valueKindAt(m.configVersion);
    this.samples.draw(m);
    this.familyPanels.update(m.scalars.panels);
    this.charts.drawFrame();
    this.updateCards(m.scalars, m.occupancy);
    if (this.shown === null || Boolean(this.shown.manifold) !== Boolean(m.manifold)) this.noteManifold(m);
    this.shown = m;
    const t1 = performance.now();
    perf.frames.push([t1, t1 - t0]);
    if (perf.frames.length > 20000) perf.frames.splice(0, 10000);
  }

  onEvent(ev) {
    if (ev.type === "config") {
      if (!this.events.some((e) => e.version === ev.version)) this.events.push(ev);
      this.run = { ...this.run, config: ev.config, config_version: ev.version };
      this.charts.setMarkers(this.markers()); // after the config: the claim depends on it
      this.hooks.config(ev.config, ev);
    } else if (ev.type === "state") {
      this.run = { ...this.run, status: ev.state };
      this.statusStep = Math.max(this.statusStep, ev.step ?? 0);
      this.hooks.status(this.run);
    } else if (ev.type === "rejected") {
      this.hooks.rejected(ev);
    }
  }

  async onStatus(m) {
    this.run = { ...this.run, status: m.status, reason: m.reason };
    this.hooks.status(this.run);
    if (FINAL.has(m.status) && !this.finished) {
      this.finished = true;
      // the run is over: the socket has nothing more to say; the recorded frames become a replay
      if (this.socket) this.socket.close();
      this.socket = null;
      this.hooks.connection({ state: "closed" });
      await this.loadReplay(null);
    }
  }

  updateCards(s, occupancy) {
    const k = this.dataset ? this.dataset.num_modes : null;
    this.cards.update(s, k);
    const covered = this.cards.card("modes_covered");
    if (covered) {
      const { card, hint } = covered;
      const cov = s.modes_covered;
      // nothing can be covered before the generator has left its first blob (a population has
      // climbed its peaks): the count is not judged (green / amber / red) before the family's
      // `judge_from` step (/api/options)
      const judgeFrom = this.hooks.judgeFrom(this.run);
      const early = typeof s.step !== "number" || s.step < judgeFrom;
      if (k && typeof cov === "number" && !early) card.dataset.level = cov === k ? "good" : cov >= k / 2 ? "warn" : "bad";
      else delete card.dataset.level;
      hint.textContent = early && typeof cov === "number" ? `judged from step ${judgeFrom}` : hint.dataset.hint;
      const help = card.dataset.help || "";
      if (occupancy && occupancy.length) {
        const c = occupancySummary(occupancy);
        card.title = `${help}${help ? "\n" : ""}${c.covered} covered, ${c.starving} starving, ${c.dropped} dropped`;
      } else {
        card.title = help;
      }
    }
    const set = (id, text) => { $(id).textContent = text; };
    const prov = this.run && this.run.provenance;
    const device = (prov && prov.device) || (this.run && this.run.config && this.run.config.device) || "–";
    // a run stacked with others (a compare group, runs packed onto one worker) shares its step
    // (and its steps/s) with them
    set("m-device", prov && prov.runs_in_step > 1 ? `${device} · stacked ×${prov.runs_in_step}`
      : device);
  }

  // ------------------------------------------------------------------ replay
  async loadReplay(step) {
    const run = this.run;
    const gen = this.generation;
    let body;
    try {
      body = await api.replay(run.id);
    } catch (e) {
      if (gen === this.generation) this.hooks.error(`could not load the replay: ${e.message}`);
      return;
    }
    // opened again meanwhile (another run, or this one at a step): that opening draws
    if (gen !== this.generation || !this.run || this.run.id !== run.id) return;
    const frames = [];
    for (const rec of unpackRecords(body)) {
      const m = decode(rec);
      if (m.type === REAL) this.samples.setReal(m);
      else frames.push(m);
    }
    this.replay = { frames, steps: frames.map((f) => f.step) };
    if (!frames.length) {
      this.samples.clear(run.status === "failed" ? `Run failed: ${run.reason || "no reason given"}` : "No frames were recorded");
      return;
    }
    const scrub = $("scrub");
    scrub.max = String(frames.length - 1);
    const i = step === null ? frames.length - 1 : indexAtStep(this.replay.steps, step);
    scrub.value = String(i);
    $("scrubber").hidden = false;
    this.showReplay(i, step === null);
  }

  showReplay(i, atEnd = false) {
    if (!this.replay) return;
    const f = this.replay.frames[i];
    if (!f) return;
    this.samples.valueKind = f.scalars.value_kind || this.valueKindAt(f.configVersion);
    this.samples.draw(f);
    this.familyPanels.update(f.scalars.panels);
    this.shown = f;
    this.noteManifold(f);
    this.charts.setBars(f.occupancy);
    this.charts.setCursor(atEnd ? null : f.step);
    this.updateCards(f.scalars, f.occupancy);
    $("scrub-step").textContent = `step ${f.step}`;
    $("scrub-count").textContent = `frame ${i + 1} of ${this.replay.frames.length}`;
    if (!atEnd) this.hooks.replayStep(f.step);
  }

  togglePlay() {
    if (this.playTimer) {
      clearInterval(this.playTimer);
      this.playTimer = 0;
      $("scrub-play").textContent = "▶";
      return;
    }
    const scrub = $("scrub");
    if (Number(scrub.value) >= Number(scrub.max)) scrub.value = "0";
    $("scrub-play").textContent = "❚❚";
    this.playTimer = setInterval(() => {
      const i = Number(scrub.value) + 1;
      if (i > Number(scrub.max)) { this.togglePlay(); return; }
      scrub.value = String(i);
      this.showReplay(i);
    }, 100);
  }

  /** Send a control message over the socket, or over HTTP when the socket is not open. */
  async control(body) {
    if (!this.run) return;
    if (this.socket && this.socket.send(body)) return;
    await api.control(this.run.id, body);
  }

  close() {
    if (this.socket) this.socket.close();
    this.socket = null;
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = 0;
    if (this.playTimer) this.togglePlay();
    this.replay = null;
    this.pending = null;
    this.shown = null;
    this.lastManifold = null;
    this.charts.cursor = null;
    this.generation += 1; // whatever was still loading is for a view no longer shown
    this.opening = false;
  }

  describe(ev) {
    return `${describeChanges(ev.changes)} at step ${ev.step}`;
  }
}

/** What a tracked run's samples panel shows: its modes, and a projection where there is one. */
export function trackedNote(ds) {
  const what = { centres: "modes (nearest centre)", classes: "classes (its classifier)",
    real: "k-means bins of its real batch", none: "mode (none given)" }[ds.modes] || "modes";
  const parts = [`tracked: ${ds.name}`, `${ds.num_modes} ${what}`];
  if (ds.projection) parts.push(ds.projection);
  return parts.join(" · ");
}
