// The page: loads /api/options, builds the controls, keeps the state in the URL hash, and routes
// between the live, compare and history views. Steering a run goes through LiveView.control.

import { api, ApiError } from "./api.js";
import { Classroom } from "./classroom.js";
import { DrawPanel } from "./draw.js";
import { LessonView } from "./lesson_view.js";
import { buildControls, settleKeys } from "./controls.js";
import { el } from "./dom.js";
import { CompareView, compareVariants } from "./compare.js";
import { recipe, remedies, setFamilyRemedies, setRemedies } from "./remedies.js";
import { isTracked, TrackedPanel } from "./tracked.js";
import { HistoryView, queueText } from "./history.js";
import { setKnobText } from "./knob_text.js";
import { installTypeToggle } from "./room.js";
import { Welcome } from "./welcome.js";
import { dashboardPNG } from "./snapshot.js";
import { cardStats, cardText } from "./cards.js";
import { curvePerf, setMetricChoices } from "./charts.js";
import { LiveView, ACTIVE, perf, runButtonsDisabled } from "./live.js";
import { describeChanges, formatNumber, frameRate, percentile } from "./series.js";
import { paceChanges, pacedTickEvery, speedWidget } from "./speed.js";
import {
  baseConfig, claimMarker, configDiff, decodeHash, effectiveConfig, encodeHash, initialState,
  knobIndex, presetLength, presetOf, startBody, presetSwitch, DEFAULT_FAMILY, familyOptions,
  hashFamily,
} from "./state.js";

const $ = (id) => document.getElementById(id);

const app = {
  all: null, // /api/options as the server sent it: every family
  options: null, // the same seen through the family the settings are for (familyOptions)
  state: initialState(),
  controls: null,
  knobs: new Map(),
  live: null,
  compare: null,
  history: null,
  writingHash: false,
  pace: { restore: null }, // the tick_every to restore when slow motion ends (speed.js)
};

// ---------------------------------------------------------------------------- messages
let toastTimer = 0;
function toast(text, ms = 3500) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ms);
}

function banner(text, kind = "warn") {
  const b = $("banner");
  if (!text) {
    b.hidden = true;
    document.body.classList.remove("has-banner");
    return;
  }
  b.textContent = text;
  b.dataset.kind = kind;
  b.hidden = false;
  document.body.classList.add("has-banner");
}

function showError(e) {
  if (e instanceof ApiError && e.unreachable) banner("Server unreachable: check that `collapse-lab serve` is running.", "error");
  else if (e instanceof ApiError && e.queueFull) banner(e.status === 429 ? e.message : `Queue full: ${e.message}`, "warn");
  else toast(e.message || String(e), 6000);
  if (e instanceof ApiError && e.field) {
    const row = document.querySelector(`[data-knob="${CSS.escape(e.field.split(".").pop())}"]`);
    if (row) { row.classList.add("changed"); row.scrollIntoView({ block: "nearest" }); }
  }
}

// ---------------------------------------------------------------------------- hash
function writeHash() {
  if (app.classroom) app.classroom.stateChanged(); // the teacher's page presents it to the class
  const h = encodeHash(app.state, app.options.knobs, app.options.presets);
  if (location.hash.replace(/^#/, "") === h) return;
  app.writingHash = true;
  history.replaceState(null, "", h ? `#${h}` : location.pathname + location.search);
  app.writingHash = false;
}

// ---------------------------------------------------------------------------- connection badge
const CONN_TEXT = {
  connecting: () => "connecting…",
  open: () => "live",
  reconnecting: (s) => `reconnecting${s.delay !== undefined ? ` in ${(s.delay / 1000).toFixed(1)} s` : "…"} (try ${s.attempt})`,
  unreachable: (s) => `server unreachable, retrying in ${((s.delay || 0) / 1000).toFixed(0)} s`,
  closed: () => "run over",
  missing: () => "run not found",
  idle: () => "ready",
};

function setConnection(s) {
  const c = $("conn");
  c.dataset.state = s.state;
  $("conn-text").textContent = (CONN_TEXT[s.state] || (() => s.state))(s);
  if (s.state === "unreachable") banner(`Server unreachable (${s.reason || "no answer"}). Retrying automatically…`, "error");
  else if (s.state !== "reconnecting" && /unreachable/.test($("banner").textContent)) banner(null);
  if (s.state === "missing") banner(`Run ${app.state.run} is not on this server any more. Its settings are loaded: press Start run.`, "info");
}

// ---------------------------------------------------------------------------- run state in the UI
/** A run's family as /api/options describes it (null for none known, e.g. a tracked run). */
function familyOf(run) {
  const name = (run && run.config && run.config.family) || DEFAULT_FAMILY;
  return ((app.all && app.all.families) || []).find((f) => f.name === name) || null;
}

/** Data first (live.js preview), for a family whose samples are 2-D points: one whose are not
 * (decoding's sentences, frame.samples "") has no samples panel and no data preview to ask for. */
function previewData(name) {
  const fam = familyOf({ config: { family: app.options.family } });
  if (fam && fam.frame && fam.frame.samples === "") return;
  app.live.preview(name);
}

/** A run shown whose family is not the one the settings are for (the settings are the next run's). */
function otherFamily(run) {
  return Boolean(run && !isTracked(run) && app.options
    && ((run.config && run.config.family) || DEFAULT_FAMILY) !== app.options.family);
}

// What the samples panel's layers and the first chart are called follows the run's family
// (/api/options `families`): a family without a generator (parts lack "g") has no G manifold
// and no D/G step (app.css); its landscape and its arrows (if any) are named by its frame.
function familyPanels(run) {
  // no run: the panels of the family the settings are for, each saying what it will show
  const fam = familyOf(run || { config: { family: app.options.family } });
  if (!run && app.live) {
    app.live.cards.setFamily(app.all, app.options.family);
    app.live.familyPanels.setFamily(fam);
    app.live.familyPanels.clear("Once a run starts: drawn from its frames.");
  }
  // a family whose samples are not 2-D points (frame.samples "") has no samples panel (app.css);
  // its PNG and CSV buttons move to the occupancy panel's caption
  const noSamples = Boolean(fam && fam.frame.samples === "" && !isTracked(run));
  document.body.dataset.samples = noSamples ? "0" : "1";
  const home = noSamples ? $("occ-tools") : document.querySelector("#samples-panel .panel-tools");
  if ($("png").parentElement !== home) home.append($("png"), $("csv"));
  if (!fam || isTracked(run)) return;
  const hasG = fam.parts.includes("g");
  $("heat-label").textContent = hasG ? "D landscape" : fam.frame.landscape ? `${fam.frame.landscape} landscape` : "landscape";
  // arrows: the GAN's G gradient (from D's landscape), or a field the family sends (its frame's
  // `arrows`, e.g. a diffusion model's learned score)
  $("arrows-label").textContent = hasG ? "G gradient" : fam.frame.arrows || "";
  $("arrows-tool").title = hasG ? "arrows along +∇D: where D pushes generated points"
    : `arrows: the ${fam.frame.arrows || ""} field`;
  document.body.dataset.arrows = hasG || fam.frame.arrows ? "1" : "0";
  $("loss-title").textContent = hasG ? "Losses" : `${fam.label}: curves`;
  const charted = fam.stats.filter((st) => (st.show || []).includes("chart")).map((st) => st.label);
  $("chart-loss").closest(".panel").dataset.emptyText = hasG
    ? "Once a run starts: D's and G's losses, step by step."
    : `Once a run starts: ${charted.join(", ") || "its curves"}, step by step.`;
  // a class on the body, not `hidden`: the classroom's gate owns the step buttons' `hidden`
  document.body.dataset.generator = hasG ? "1" : "0";
}

/** The run buttons as the run's state allows them (the classroom's gate may say more). */
function showRunButtons(run) {
  const st = run ? run.status : null;
  const interrupted = st === "interrupted"; // the server died while it trained: it can go on
  for (const [id, off] of Object.entries(runButtonsDisabled(run))) $(id).disabled = off;
  $("pause").textContent = st === "paused" || interrupted ? "Resume" : "Pause";
  $("pause").setAttribute("aria-pressed", st === "paused" ? "true" : "false");
  $("pause").title = interrupted ? "Resume this run from its last checkpoint (space)"
    : "Pause or resume (space)";
  if (app.options) fillCloneChoices(run);
  $("clone").disabled = !run || !$("clone-objective").options.length; // nothing to compare with
  $("reset").disabled = !run || st === "stopping";
}

/** The line under Start: what the settings below do to the run shown, or to the next run. */
function steerHint(run) {
  const active = run && ACTIVE.has(run.status);
  if (isTracked(run)) return "The settings below are for a new run of Collapse Lab's own; this run's knobs are in its panel.";
  if (otherFamily(run)) return `The settings below are for a new ${app.options.label} run; the run shown is of another family.`;
  // while a run is active, non-live knobs describe the *next* run; say so
  if (active) return "Live settings apply to this run at once and are marked on the charts. Others (greyed) need a new run.";
  if (run) return "A recorded run: the Replay slider under the charts shows any step of it. Reset trains these settings again from step 0.";
  return "Pick settings and press Start run: it trains until you stop it, or for the steps you set. While it trains, live settings apply at once and are marked on the charts.";
}

/** A failed or queued run says so across the top; another state clears what it said. */
function showRunBanner(run) {
  const st = run ? run.status : null;
  if (st === "failed") banner(`Run ${run.id} failed: ${run.reason || "no reason given"}`, "error");
  else if (st === "queued") {
    banner(`Run ${run.id} is queued: every worker is busy; it starts when one is free.${run.queue_position ? ` ${queueText(run)}.` : ""}`, "info");
    watchQueue(run.id);
  }
  else if ($("banner").dataset.kind !== "error" || /failed/.test($("banner").textContent)) banner(null);
}

/** Everything on the page that follows the run shown: buttons, status, title, panels, settings. */
function setRunUI(run) {
  const st = run ? run.status : null;
  const active = run && ACTIVE.has(st);
  showRunButtons(run);
  $("view-live").dataset.empty = run ? "0" : "1"; // no run: the panels say what they will show
  familyPanels(run); // before the status: it builds the cards, the device card with it
  $("m-status").textContent = st ? (run.reason && st !== "running" ? `${st}: ${run.reason}` : st) : "–";
  $("m-status").title = $("m-status").textContent;
  renderTitle();
  if (app.tracked) app.tracked.show(run);
  $("steer-hint").textContent = steerHint(run);
  // a tracked run's knobs are its own panel's, another family's run is not steered from here:
  // the settings describe the next run
  if (app.controls) app.controls.setEditable((k) => !active || isTracked(run) || otherFamily(run) || k.live);
  updateApplyPreset();
  if (app.classroom) app.classroom.gate(run); // what this page's role may touch (classroom.js)
  showRunBanner(run);
}

/** While the run shown waits in the queue, its place and wait, every few seconds. */
let queueTimer = 0;
function watchQueue(id) {
  clearTimeout(queueTimer);
  queueTimer = setTimeout(async () => {
    const live = app.live.run;
    if (!live || live.id !== id || live.status !== "queued") return;
    try {
      const run = await api.run(id);
      if (app.live.run && app.live.run.id === id && run.status === "queued") {
        banner(`Run ${id} is queued: every worker is busy; it starts when one is free. ${queueText(run)}.`, "info");
      }
    } catch { /* the next status says more */ }
    watchQueue(id);
  }, 3000);
}

/** The top bar names what the view shows: the live run, the comparison, or the run list. */
function renderTitle() {
  const title = $("run-title");
  title.replaceChildren();
  const b = document.createElement("b");
  if (app.state.view === "compare") {
    const shown = app.compare ? [...app.compare.cards.values()].map((c) => c.run) : [];
    if (!shown.length) return;
    b.textContent = `comparison of ${shown.length} runs`;
    title.append(b, ` · ${shown[0].config.dataset} · seed ${shown[0].config.seed}${app.compareLabel ? ` · ${app.compareLabel}` : ""}`);
    return;
  }
  if (app.state.view === "history") return;
  const run = app.live && app.live.run;
  if (!run) return;
  b.textContent = `run ${run.id}`;
  title.append(b, isTracked(run) ? ` · ${recipe(run.config)} · ${run.status}`
    : ` · ${run.config.dataset} · ${describeRecipe(run.config)} · ${run.status}`);
}

/** A comparison on screen: the sidebar shows its shared settings, the form steps aside. */
function showGroupState(runs, label) {
  app.compareLabel = label || null;
  const shown = $("compare-shown");
  if (!runs.length) {
    shown.hidden = true;
    $("compare-new").open = true;
    return;
  }
  const cfg = runs[0].config;
  if (!isTracked(runs[0])) followFamily(cfg.family || DEFAULT_FAMILY);
  shown.textContent = `On screen: ${label ? `${label}, ` : ""}${runs.length} runs on ${cfg.dataset}, seed ${cfg.seed}, started together. The settings on the left are the ones they share (each card names what differs).`;
  shown.hidden = false;
  $("compare-new").open = false;
  loadConfigIntoControls(cfg);
  renderTitle();
}

function describeRecipe(cfg) {
  return recipe(cfg);
}

// ---------------------------------------------------------------------------- families
/**
 * The settings are for family `name`: the controls (its knobs, groups, labels, ranges and help),
 * the preset menu (its presets), the remedies and the compare choices become its own. Returns
 * true when the family changed.
 */
function useFamily(name) {
  if (app.options && app.options.family === name && app.controls) return false;
  app.options = familyOptions(app.all, name);
  setRemedies(app.options.remedies);
  app.knobs = knobIndex(app.options.knobs);
  buildSettings();
  fillPresets();
  $("family").value = app.options.family;
  const fam = familyOf({ config: { family: app.options.family } });
  $("family-help").textContent = fam ? fam.help : "";
  $("family-help").hidden = !fam || $("family-row").hidden;
  cloneFor = null;
  fillCloneChoices(app.live ? app.live.run : null);
  compareChoices();
  if (app.welcome) app.welcome.follow(fam);
  if (app.live) setRunUI(app.live.run); // what may be edited follows the run shown
  return true;
}

/** The settings follow a run's (or a link's) family; another family's preset and settings go. */
function followFamily(name) {
  if (useFamily(name)) {
    if (!app.options.presets.some((p) => p.name === app.state.preset)) app.state.preset = null;
    app.state.config = {};
    $("preset").value = app.state.preset || "";
    showPresetHelp();
  }
  app.state.family = name === DEFAULT_FAMILY ? null : name;
}

/** The controls of the family's knobs (controls.js); Steps and Speed sit under Start. */
function buildSettings() {
  $("run-length").replaceChildren();
  $("speed-row").replaceChildren();
  app.controls = buildControls($("controls"), app.options, onKnob, {
    placed: { steps: $("run-length"), speed: $("speed-row") },
    factories: { speed: (knob, cb) => speedWidget(knob, cb, el, settleKeys) },
    zeroText: { steps: "until stopped" },
  });
}

/** The preset menu: the family's presets, each with its lesson text on hover. */
function fillPresets() {
  const sel = $("preset");
  sel.replaceChildren(new Option("(none: your settings)", ""));
  for (const p of app.options.presets) {
    const o = new Option(p.name, p.name);
    o.title = p.help;
    sel.append(o);
  }
  sel.value = app.state.preset || "";
}

/** The family chooser of the New-run form: shown when the server has more than one family. */
function setupFamilyChooser() {
  const fams = app.all.families || [];
  const sel = $("family");
  for (const f of fams) {
    const o = new Option(f.label, f.name);
    o.title = f.help;
    sel.append(o);
  }
  $("family-row").hidden = fams.length < 2;
  sel.addEventListener("change", () => {
    followFamily(sel.value);
    app.state.preset = null;
    $("preset").value = "";
    showPresetHelp();
    loadConfigIntoControls(baseConfig(app.options.knobs, app.options.presets, null));
    writeHash();
    updateApplyPreset();
    if (!app.live.run) previewData(app.controls.get().dataset);
  });
}

// ---------------------------------------------------------------------------- controls
function onKnob(name, value, final) {
  if (!final) return;
  const run = app.live.run;
  const knob = app.knobs.get(name);
  if (run && ACTIVE.has(run.status) && run.status !== "stopping" && app.state.view === "live" && knob.live
      && !isTracked(run) && !otherFamily(run)) {
    const row = document.querySelector(`[data-knob="${CSS.escape(name)}"]`);
    row.classList.add("changed");
    let changes = { [name]: value };
    if (name === "speed") {
      // slow motion ticks more often, so every step shows (speed.js)
      const fallback = baseConfig(app.options.knobs, app.options.presets, app.state.preset).tick_every;
      const r = paceChanges(value, run.config, app.pace.restore, fallback);
      app.pace.restore = r.restore;
      changes = r.changes;
    }
    if (Object.keys(changes).length) {
      // slow motion is a slow-down asked for: its tick every step costs nothing at its pace
      const asked = name === "speed" ? Promise.resolve(true) : askCost(run, changes);
      asked.then((go) => {
        if (!go) {
          if (app.live.run) loadConfigIntoControls(app.live.run.config);
          return;
        }
        app.live.control({ set: changes }).catch((e) => {
          showError(e);
          if (app.live.run) loadConfigIntoControls(app.live.run.config); // a refused change: no drift
        });
      });
    }
  }
  if (name === "dataset" && !app.live.run) previewData(value);
  syncStateFromControls();
}

/**
 * Before a live change that would slow the run more than 3× (the server's estimate from its
 * cost table, GET /api/runs/{id}/estimate), say what the run's rate would become and ask.
 * Resolves true to apply. Where the estimate cannot be had, the change goes ahead as before.
 */
let costAsk = null;
async function askCost(run, changes) {
  let est;
  try {
    est = await api.estimateChange(run.id, changes);
  } catch {
    return true;
  }
  if (!est.ask) return true;
  if (costAsk) costAsk(false); // a newer change replaces the one still asking
  const rate = (v) => (v == null ? "?" : formatNumber(v));
  const now = est.measured_steps_per_sec ?? est.now.steps_per_sec;
  $("cost-ask-text").textContent = `${describeChanges(changes)} would slow this run about `
    + `${formatNumber(est.slowdown)}× (${rate(now)} → about ${rate(est.expected_steps_per_sec)} steps/s`
    + `${est.after.heaviest ? `; ${est.after.heaviest} weighs most` : ""}). Apply it?`;
  $("cost-ask").hidden = false; // sticky at the top of the sidebar: in view wherever it scrolled
  return new Promise((resolve) => {
    costAsk = (go) => {
      costAsk = null;
      $("cost-ask").hidden = true;
      resolve(go);
    };
  });
}

function syncStateFromControls() {
  const base = baseConfig(app.options.knobs, app.options.presets, app.state.preset);
  const cfg = app.controls.get();
  // the tick rate slow motion set is the pace's, not a setting: a link (and a run started from
  // it) keeps the tick rate from before, and slows down again by its speed (pacedBody)
  if (cfg.speed > 0 && app.pace.restore !== null) cfg.tick_every = app.pace.restore;
  else if (cfg.speed > 0 && cfg.tick_every === pacedTickEvery(cfg.speed, base.tick_every)) cfg.tick_every = base.tick_every;
  app.state.config = configDiff(cfg, base);
  writeHash();
}

function loadConfigIntoControls(cfg) {
  app.controls.set(cfg);
  for (const r of document.querySelectorAll(".knob.changed")) r.classList.remove("changed");
}

// ---------------------------------------------------------------------------- actions
/** False (and the field named, focused) when a settings field holds text that is no value. */
function settingsValid() {
  const bad = app.controls.invalid();
  if (!bad.length) return true;
  toast(`Not started: ${bad.map((b) => b.message).join("; ")}`, 8000);
  const row = bad[0].input.closest(".knob");
  if (row) row.classList.add("changed");
  const det = bad[0].input.closest("details");
  if (det) det.open = true;
  bad[0].input.focus();
  return false;
}

/** A start body with the tick rate slow motion needs (speed.js). */
function pacedBody(body) {
  const cfg = effectiveConfig(app.state, app.options.knobs, app.options.presets);
  if (cfg.speed > 0) {
    const tick = pacedTickEvery(cfg.speed, cfg.tick_every);
    if (tick !== cfg.tick_every) body.tick_every = tick;
  }
  return body;
}

async function startRun() {
  syncStateFromControls();
  if (!settingsValid()) return;
  $("start").disabled = true;
  try {
    const run = await api.start(pacedBody(startBody(app.state, app.options.knobs, app.options.presets)));
    if (app.welcome) app.welcome.dismiss();
    app.state.view = "live";
    app.state.run = run.id;
    app.state.replay = null;
    showView();
    await openRun(run);
    toast(`Started run ${run.id}${run.status === "queued" ? " (queued)" : ""}`);
  } catch (e) {
    showError(e);
  } finally {
    $("start").disabled = false;
  }
}

/**
 * Reset: the run shown again from step 0, with the same settings (those in force now, live
 * changes included) and the same seed; the old run is stopped (it stays in History).
 */
async function resetRun() {
  const run = app.live.run;
  if (!run) return;
  loadConfigIntoControls(run.config);
  syncStateFromControls();
  if (!settingsValid()) return;
  $("reset").disabled = true;
  try {
    if (ACTIVE.has(run.status) && run.status !== "stopping") {
      try {
        await api.control(run.id, { action: "stop" });
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 409)) throw e; // 409: it had ended already
      }
    }
    const fresh = await api.start(pacedBody(startBody(app.state, app.options.knobs, app.options.presets)));
    app.state.view = "live";
    app.state.run = fresh.id;
    app.state.replay = null;
    showView();
    await openRun(fresh);
    toast(`Reset: run ${fresh.id} starts from step 0 with the same settings and seed (run ${run.id} stopped, in History).`, 6000);
  } catch (e) {
    showError(e);
  } finally {
    $("reset").disabled = !app.live.run;
  }
}

async function openRun(runOrId, replayStep = null) {
  let run = runOrId;
  if (typeof runOrId === "string") {
    try {
      run = await api.run(runOrId);
    } catch (e) {
      if (app.state.run !== runOrId) return; // another run was asked for meanwhile
      if (e instanceof ApiError && e.status === 404) {
        setConnection({ state: "missing" });
        app.state.run = null;
        writeHash();
        return;
      }
      showError(e);
      return;
    }
    // another run was asked for while this one was fetched (a follower sent on, a click after
    // a click): that one opens; this one, answering last, must not replace it
    if (app.state.run !== run.id) return;
  }
  app.state.run = run.id;
  if (!isTracked(run)) followFamily((run.config && run.config.family) || DEFAULT_FAMILY);
  if (!app.state.preset && !isTracked(run)) {
    // a link to a run names no preset: the one it started as, for its lesson text
    const p = presetOf(app.options.knobs, app.options.presets,
      (run.provenance && run.provenance.config_at_start) || run.config);
    if (p) {
      app.state.preset = p.name;
      $("preset").value = p.name;
      showPresetHelp();
    }
  }
  writeHash();
  banner(null);
  if (!isTracked(run)) loadConfigIntoControls(run.config);
  setRunUI(run);
  await app.live.open(run, replayStep);
}

/** pause | resume | stop | step (part: "d", "g" or "both"); resuming an interrupted run reopens it. */
async function control(action, part = "both") {
  const run = app.live.run;
  if (!run) return;
  try {
    await api.control(run.id, action === "step" ? { action, n: 1, part } : { action });
    if (action === "resume" && run.status === "interrupted") await openRun(run.id);
    if (action === "step") stepSign(part);
  } catch (e) {
    showError(e);
  }
}

/** "Compare with": the remedy twins of the preset the run started as (their whole recipe), then
 * each other objective alone; the first twin is the default, as it shows something. */
let cloneFor = null;
function fillCloneChoices(run) {
  const key = run ? `${run.id}:${run.config_version}` : "";
  if (key === cloneFor) return;
  cloneFor = key;
  const sel = $("clone-objective");
  sel.replaceChildren();
  const { knobs, presets, objectives } = app.options;
  const started = run ? presetOf(knobs, presets, (run.provenance && run.provenance.config_at_start) || run.config) : null;
  const twins = started ? presets.filter((p) => p.twin_of === started.name) : [];
  if (twins.length) {
    const g = document.createElement("optgroup");
    g.label = `${started.name}'s remedy twins (whole recipe)`;
    for (const t of twins) g.append(new Option(t.name, `preset:${t.name}`));
    sel.append(g);
  }
  const g = document.createElement("optgroup");
  g.label = "only the objective";
  for (const o of objectives) if (!run || o.name !== run.config.objective) g.append(new Option(o.name, `objective:${o.name}`));
  if (g.children.length) sel.append(g); // a family without objectives: its twins only
  sel.value = twins.length ? `preset:${twins[0].name}` : "objective:wgan-gp";
  if (!sel.value && sel.options.length) sel.selectedIndex = 0;
}

/** The compare body of a clone: the run's settings in force against a twin's whole recipe (or
 * another objective), both from step 0, as long as the longer of the two recipes. */
function cloneBody(run, choice) {
  const [kind, name] = choice.split(":");
  const base = { ...run.config };
  const { knobs, presets } = app.options;
  if (kind === "objective") {
    return { base, variants: [{ objective: run.config.objective }, { objective: name }], label: `${run.config.objective} vs ${name}` };
  }
  const twin = baseConfig(knobs, presets, name);
  const differ = {};
  for (const k of knobs) {
    if (["dataset", "data", "seed", "steps", "device", "speed", "tick_every"].includes(k.name)) continue;
    if (twin[k.name] !== base[k.name]) differ[k.name] = twin[k.name];
  }
  const length = presetLength(knobs, presets, name);
  if (base.steps > 0 && Number.isFinite(length)) base.steps = Math.max(base.steps, length);
  const started = presetOf(knobs, presets, (run.provenance && run.provenance.config_at_start) || run.config);
  const own = {};
  for (const k of Object.keys(differ)) own[k] = base[k];
  return { base, variants: [own, differ], label: `${started ? started.name : "this run"} vs ${name}` };
}

const STEP_SIGNS = {
  d: "One D update: D's landscape (the heatmap) moved; the points did not.",
  g: "One G update: the points moved; D's landscape did not.",
  both: "One step: D's update, then G's.",
};

/** A single step shows itself: the samples panel flashes, and a line says what moved. */
function stepSign(part) {
  const panel = $("samples-panel");
  panel.dataset.stepped = part;
  panel.classList.remove("stepped");
  void panel.offsetWidth; // restart the flash
  panel.classList.add("stepped");
  toast(STEP_SIGNS[part] || STEP_SIGNS.both, 2500);
}

async function cloneCompare() {
  const run = app.live.run;
  const choice = $("clone-objective").value;
  if (!run || !choice) return;
  try {
    const g = await api.compare(cloneBody(run, choice));
    // the original does not train on unseen beside its clones
    let paused = false;
    if (run.status === "running") {
      try { await api.control(run.id, { action: "pause" }); paused = true; } catch { /* it ended meanwhile */ }
    }
    openCompare(g.runs, g.id, g.label);
    if (paused) toast(`Run ${run.id} is paused while the comparison trains (resume it from History).`, 6000);
  } catch (e) {
    showError(e);
  }
}

function compareChoices() {
  const box = $("compare-choices");
  box.replaceChildren();
  const add = (kind, name, text) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = kind;
    input.value = name;
    input.addEventListener("change", countVariants);
    label.append(input, text);
    box.append(label);
  };
  // a family without objectives compares its settings as they are with each remedy switched on
  if (!app.options.objectives.length) add("base", "", "as set");
  for (const o of app.options.objectives) add("objective", o.name, o.name);
  for (const r of remedies()) add("remedy", r.name, `+ ${r.name}`);
  const first = app.options.objectives.length ? ["nsgan", "wgan-gp"] : ["", remedies().length ? remedies()[0].name : null];
  for (const o of first) {
    const i = box.querySelector(`input[value="${o}"]`);
    if (i) i.checked = true;
  }
  countVariants();
}

function chosenVariants() {
  const objectives = [...document.querySelectorAll('#compare-choices input[name="objective"]:checked')].map((i) => i.value);
  const remedies = [...document.querySelectorAll('#compare-choices input[name="remedy"]:checked')].map((i) => i.value);
  const base = document.querySelector('#compare-choices input[name="base"]:checked') ? [{}] : [];
  return [...base, ...compareVariants(objectives, remedies, app.controls.get().objective)];
}

function countVariants() {
  const n = chosenVariants().length;
  $("compare-count").textContent = `${n} run${n === 1 ? "" : "s"}${n < 2 || n > 8 ? " — pick 2 to 8" : ""}`;
  $("compare-start").disabled = n < 2 || n > 8;
}

async function startCompare(ev) {
  ev.preventDefault();
  syncStateFromControls();
  if (!settingsValid()) return;
  const body = pacedBody(startBody(app.state, app.options.knobs, app.options.presets));
  delete body.objective; // each variant names its own
  try {
    const g = await api.compare({ base: body, variants: chosenVariants() });
    openCompare(g.runs, g.id, g.label);
  } catch (e) {
    showError(e);
  }
}

function openCompare(runs, groupId, label = null) {
  app.state.view = "compare";
  app.state.group = groupId;
  app.state.runs = runs.map((r) => r.id);
  writeHash();
  showView();
  app.compare.show(runs, groupId);
  showGroupState(runs, label);
}

async function loadCompareFromState() {
  const asked = JSON.stringify([app.state.group, app.state.runs]);
  try {
    let runs;
    let label = null;
    if (app.state.group) ({ runs, label } = await api.group(app.state.group));
    else runs = await Promise.all(app.state.runs.map((id) => api.run(id)));
    // the page moved on while these were fetched (another comparison, another view): not these
    if (app.state.view !== "compare" || JSON.stringify([app.state.group, app.state.runs]) !== asked) return;
    app.compare.show(runs, app.state.group);
    showGroupState(runs, label);
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------------------- views
function showView() {
  for (const v of ["live", "compare", "history"]) {
    $(`view-${v}`).hidden = app.state.view !== v;
    document.querySelector(`.tab[data-view="${v}"]`).setAttribute("aria-pressed", String(app.state.view === v));
  }
  renderTitle();
  if (app.state.view === "history") app.history.load();
  if (app.state.view !== "compare") app.compare.close();
  if (app.state.view !== "live") {
    // a hidden live view would keep a socket and draw for nobody
    app.live.close();
  } else {
    requestAnimationFrame(() => app.live.charts.resize());
    if (app.state.run && app.live.runId === app.state.run && !app.live.socket && !app.live.replay && !app.live.opening) {
      openRun(app.state.run, app.state.replay);
    }
  }
}

async function applyState() {
  showView();
  loadConfigIntoControls(effectiveConfig(app.state, app.options.knobs, app.options.presets));
  $("preset").value = app.state.preset || "";
  showPresetHelp();
  for (const k of ["heat", "real", "arrows", "manifold"]) $(`show-${k}`).checked = app.state.show[k];
  app.live.samples.setShow(app.state.show);
  app.live.setLayers({ manifold: app.state.show.manifold });
  $("metric").value = app.state.metric;
  if (app.live.charts.metric.key !== app.state.metric) app.live.charts.setMetric(app.state.metric, app.live.log.ticks);
  if (app.state.view === "compare" && (app.state.group || app.state.runs.length)) await loadCompareFromState();
  if (app.state.run && app.state.run !== app.live.runId) await openRun(app.state.run, app.state.replay);
  else if (!app.state.run) {
    setRunUI(null);
    previewData(app.controls.get().dataset); // data first: the data before any run
  }
}

// ---------------------------------------------------------------------------- keyboard
function onKey(e) {
  const t = e.target;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (t.closest && t.closest("input[type=text], input[type=number], select, textarea")) return;
  if (app.state.view !== "live") return;
  if (app.classroom && !app.classroom.keyAllowed(e.key)) return; // a viewer's keys do not act
  const run = app.live.run;
  if (e.key === " " && !(t.tagName === "BUTTON")) {
    e.preventDefault();
    if (run && (run.status === "paused" || run.status === "interrupted")) control("resume");
    else if (run && run.status === "running") control("pause");
  } else if ((e.key === "s" || (["d", "g"].includes(e.key) && document.body.dataset.generator !== "0"))
      && run && run.status === "paused") {
    // d and g step a part a family may not have (a GA, a VAE): only where the D/G buttons show
    control("step", { s: "both", d: "d", g: "g" }[e.key]);
  } else if (e.key === "x" && run && ACTIVE.has(run.status)) {
    control("stop");
  } else if (e.key === "Enter" && t === document.body) {
    startRun();
  }
}

/** The scalars written under the PNG's title: what the picture shows, in numbers — the stats
 * the registry shows on a card, labelled and formatted as it says (/api/options `stats`). */
function pngMetrics(s) {
  const k = app.live.dataset ? app.live.dataset.num_modes : "?";
  const out = [];
  const run = app.live.run;
  const family = (run && run.config && run.config.family) || DEFAULT_FAMILY;
  for (const { stat, subs } of cardStats(app.all, family)) {
    for (const st of [stat, ...subs]) if (st.kind !== "tick") out.push([st.label, cardText(st, s[st.name], k)]);
  }
  const losses = (app.options.stats || []).filter((st) => st.kind === "loss" && typeof s[st.name] === "number");
  if (losses.length) out.push([losses.map((st) => st.label).join(" / "), losses.map((st) => formatNumber(s[st.name], 3)).join(" / ")]);
  if (s.objective) out.unshift(["objective", s.objective]);
  return out;
}

/** The page's own frame rate beside the connection state: a slow machine vs a stuck run. */
function showFrameRate() {
  const out = $("conn-rate");
  const run = app.live && app.live.run;
  if (!run || !app.live.socket || $("conn").dataset.state !== "open") {
    out.textContent = "";
    return;
  }
  const r = frameRate(perf.frames.map((f) => f[0]), performance.now());
  if (run.status === "paused") out.textContent = " · paused";
  else if (run.status !== "running") out.textContent = "";
  else if (r.sinceMs !== null && r.sinceMs > 3000) out.textContent = ` · no frame for ${Math.round(r.sinceMs / 1000)} s`;
  else out.textContent = r.fps === null ? "" : ` · ${r.fps.toFixed(1)} frames/s`;
  out.dataset.stalled = r.sinceMs !== null && r.sinceMs > 3000 && run.status === "running" ? "1" : "0";
}

// ---------------------------------------------------------------------------- boot
async function loadOptions() {
  for (let attempt = 0; ; attempt++) {
    try {
      return await api.options();
    } catch (e) {
      const delay = Math.min(10000, 500 * 2 ** attempt);
      setConnection({ state: "unreachable", delay, reason: e.message });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** The chosen preset's settings as a live change to the running run (presetSwitch). */
function presetChangesForRun() {
  const run = app.live && app.live.run;
  const name = $("preset").value;
  if (!run || !name || !ACTIVE.has(run.status) || run.status === "stopping" || app.state.view !== "live") return null;
  const step = app.live.log && app.live.log.last ? app.live.log.last.step : run.step || 0;
  const sw = presetSwitch(app.options.knobs, app.options.presets, name, run.config, step);
  // another dataset (or network) is another experiment: that needs a new run, not a switch
  if (sw.frozen.length || !Object.keys(sw.changes).length) return null;
  return sw.changes;
}

function updateApplyPreset() {
  // mid-lesson the run is the lesson's: switching it to another preset would undo the step
  const inLesson = Boolean(app.lessons && app.lessons.cursor);
  const changes = app.options && !inLesson ? presetChangesForRun() : null;
  $("apply-preset").hidden = !changes;
  if (changes) $("apply-preset").title = `Switch this run, now, to ${$("preset").value}: ${describeChanges(changes)}`;
}

async function applyPreset() {
  const changes = presetChangesForRun();
  if (!changes) return;
  try {
    await app.live.control({ set: changes });
  } catch (e) {
    showError(e);
  }
}

/** The preset's lesson text — what a person should see — under the preset picker. */
function showPresetHelp() {
  const p = app.options && app.options.presets.find((x) => x.name === $("preset").value);
  $("preset-help").textContent = p ? p.help : "";
  $("preset-help").hidden = !p;
}

/** What the page learns once from the registry: every family's knob words and remedies, and
 * the metrics the modes chart may draw (the cards take theirs in cards.js). */
function learnRegistry() {
  const seen = new Map();
  for (const f of app.all.families || []) for (const k of f.knobs) if (!seen.has(k.name)) seen.set(k.name, k);
  setKnobText(seen.size ? [...seen.values()] : app.all.knobs); // knob labels and short names
  setFamilyRemedies(app.all.families);
  for (const m of setMetricChoices(app.all.stats)) {
    const o = new Option(m.label, m.key);
    o.title = m.help;
    $("metric").append(o);
  }
}

/** A link's settings: its family first (its knobs and presets read the rest), then the state. */
function readHash(hash) {
  followFamily(hashFamily(hash, app.all));
  const { state, errors } = decodeHash(hash, app.options.knobs, app.options.presets);
  state.family = app.options.family === DEFAULT_FAMILY ? null : app.options.family;
  app.state = state;
  if (errors.length) toast(`Some settings in the link were ignored: ${errors.join("; ")}`, 8000);
}

/** The three views and the tracked-run panel, with what each needs of the page. */
function makeViews() {
  app.tracked = new TrackedPanel($("tracked-panel"), { error: showError, toast });
  app.live = new LiveView({
    status: (run) => setRunUI(run),
    config: (cfg, ev) => {
      if (!isTracked(app.live.run) && !otherFamily(app.live.run)) loadConfigIntoControls(cfg);
      setRunUI(app.live.run);
      toast(`Changed at step ${ev.step}: ${describeChanges(ev.changes)}`);
    },
    rejected: (ev) => {
      toast(`Refused: ${ev.field}: ${ev.message}`, 6000);
      if (app.live.run && !otherFamily(app.live.run)) loadConfigIntoControls(app.live.run.config);
    },
    connection: (s) => setConnection(s),
    error: (text) => {
      toast(text, 6000);
      // e.g. a refused change
      if (app.live.run && !otherFamily(app.live.run)) loadConfigIntoControls(app.live.run.config);
    },
    replayStep: (step) => { app.state.replay = step; writeHash(); },
    valueKinds: () => new Map(app.all.objectives.map((o) => [o.name, o.value_kind])),
    family: (run) => familyOf(run),
    options: () => app.all,
    defaultFamily: DEFAULT_FAMILY,
    // a tracked run has no family of Collapse Lab's: it is judged as the default family's runs
    judgeFrom: (run) => (familyOf(run) || familyOf(null) || {}).judge_from || 0,
    claim: (run) => {
      const { knobs, presets } = app.options;
      if (otherFamily(run)) return null;
      const started = presetOf(knobs, presets,
        (run.provenance && run.provenance.config_at_start) || run.config);
      // a preset's claim is about its own knobs: once a live change has taken the run away from
      // them (a switch to a remedy twin, say) the claim no longer applies, so it is not drawn
      return started && presetOf(knobs, presets, run.config) === started ? claimMarker(started) : null;
    },
  });
  const show = (id) => { app.state.view = "live"; app.state.run = id; app.state.replay = null; showView(); openRun(id); };
  app.compare = new CompareView({
    open: show,
    error: (text) => toast(text, 6000),
    changed: (ids, gid) => { app.state.runs = ids; app.state.group = gid; writeHash(); },
    // a run's family's objectives (none for a family without the knob)
    objectives: (run) => familyOptions(app.all, (run.config && run.config.family) || DEFAULT_FAMILY).objectives.map((o) => o.name),
    family: (run) => familyOf(run),
  });
  app.history = new HistoryView({
    open: show,
    error: (text) => toast(text, 6000),
    removed: (id) => { if (app.state.run === id) { app.state.run = null; writeHash(); } },
    powers: (run) => (app.classroom ? app.classroom.powers(run) : { steer: true, compare: true, remove: true }),
    toast: (text) => toast(text),
  });
}

/** Start, pause, step, stop, reset, clone, compare and the preset menu. */
function wireRunControls() {
  $("start").addEventListener("click", startRun);
  $("pause").addEventListener("click", () => control(app.live.run && ["paused", "interrupted"].includes(app.live.run.status) ? "resume" : "pause"));
  $("step").addEventListener("click", () => control("step", "both"));
  $("step-d").addEventListener("click", () => control("step", "d"));
  $("step-g").addEventListener("click", () => control("step", "g"));
  $("stop").addEventListener("click", () => control("stop"));
  $("reset").addEventListener("click", resetRun);
  // a mouse click leaves no focus on a run button, so space pauses/resumes (and does not press
  // the clicked button again); keyboard use keeps focus where it is
  for (const id of ["start", "pause", "reset", "stop", "step", "step-d", "step-g"]) {
    $(id).addEventListener("click", (e) => { if (e.detail > 0) e.currentTarget.blur(); });
  }
  $("clone").addEventListener("click", cloneCompare);
  $("compare-form").addEventListener("submit", startCompare);
  $("preset").addEventListener("change", () => {
    app.state.preset = $("preset").value || null;
    showPresetHelp();
    app.state.config = {};
    loadConfigIntoControls(baseConfig(app.options.knobs, app.options.presets, app.state.preset));
    writeHash();
    updateApplyPreset();
    if (!app.live.run) previewData(app.controls.get().dataset);
  });
  $("apply-preset").addEventListener("click", applyPreset);
  $("cost-ask-apply").addEventListener("click", () => costAsk && costAsk(true));
  $("cost-ask-cancel").addEventListener("click", () => costAsk && costAsk(false));
}

/** The PNG of the live view: the picture shown (a replay's scrubbed step), titled, with its numbers. */
async function downloadPNG() {
  const run = app.live.run;
  // the step of the picture shown (a replay shows the scrubbed one), not the run's last
  const shown = app.live.shown;
  const step = shown ? shown.step : app.live.log.last ? app.live.log.last.step : 0;
  const title = run ? `Collapse Lab · run ${run.id} · ${run.config.dataset} · ${describeRecipe(run.config)} · step ${step}` : "Collapse Lab";
  try {
    const a = document.createElement("a");
    const metrics = shown ? pngMetrics(shown.scalars) : [];
    a.href = await dashboardPNG(title, metrics, { manifold: Boolean(app.state.show.manifold && shown && shown.manifold),
      text: document.body.dataset.samples === "0" ? app.live.familyPanels.firstText() : null });
    a.download = `collapse-lab-${app.live.runId || "view"}${shown ? `-step${shown.step}` : ""}.png`;
    app.lastPNG = { title, metrics, step: shown ? shown.step : null }; // what was written on it
    a.click();
  } catch (e) {
    showError(e);
  }
}

/** The samples panel's layers, the modes chart's right axis, the PNG and the frame rate. */
function wirePanelTools() {
  for (const k of ["heat", "real", "arrows", "manifold"]) {
    $(`show-${k}`).addEventListener("change", () => {
      app.state.show[k] = $(`show-${k}`).checked;
      app.live.samples.setShow(app.state.show);
      if (k === "manifold") app.live.setLayers({ manifold: app.state.show.manifold });
      writeHash();
    });
  }
  $("metric").addEventListener("change", () => {
    app.state.metric = $("metric").value;
    app.live.charts.setMetric(app.state.metric, app.live.log.ticks);
    writeHash();
  });
  setInterval(showFrameRate, 1000);
  $("png").addEventListener("click", downloadPNG);
}

/** The tabs, the share button, the keys and a link changed by hand. */
function wireNavigation() {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      app.state.view = tab.dataset.view;
      writeHash();
      showView();
      if (app.state.view === "compare" && !app.compare.cards.size && (app.state.group || app.state.runs.length)) loadCompareFromState();
    });
  }
  $("share").addEventListener("click", async () => {
    writeHash();
    try {
      await navigator.clipboard.writeText(location.href);
      toast("Link copied: it opens this run (or these settings, ready to start).");
    } catch {
      toast(`Link: ${location.href}`, 8000);
    }
  });
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", () => {
    if (app.writingHash) return;
    readHash(location.hash);
    applyState();
  });
}

/** The classroom: role, class channel, lessons, drawing (classroom.js, lesson_view.js, draw.js). */
async function startClassroom() {
  const showRun = async (id, step) => {
    app.state.view = "live";
    app.state.run = id;
    app.state.replay = step;
    showView();
    await openRun(id, step);
  };
  app.classroom = new Classroom({ app, applyState, openRun: showRun, openCompare, writeHash, toast, banner, showError });
  app.lessons = new LessonView({
    app, classroom: app.classroom, openRun: showRun, openCompare, toast, showError,
    // during a lesson nothing offered may undo its step: no preset switch of the lesson's run
    lessonChanged: (on) => {
      if (!app.classroom.powers().start) return;
      $("preset").disabled = on;
      $("family").disabled = on;
      $("preset").title = on ? "The lesson sets the run's preset: end the lesson to pick another" : "";
      updateApplyPreset();
    },
  });
  app.classroom.draw = new DrawPanel({ app, openRun: showRun, toast, showError });
  await app.classroom.init();
}

/** The first view: what the link says, then a first visit's welcome. */
async function openFirstState(firstHash) {
  readHash(location.hash);
  await applyState();
  writeHash();
  await app.classroom.ready();
  app.welcome = new Welcome({
    family: () => familyOf({ config: { family: app.options.family } }),
    lessons: () => app.lessons.teacher,
    openLessons: () => app.lessons.togglePicker(),
    usePreset: (name) => {
      const p = app.all.presets.find((x) => x.name === name);
      if (p) followFamily(p.family || DEFAULT_FAMILY);
      $("preset").value = name;
      $("preset").dispatchEvent(new Event("change"));
      $("start").focus();
    },
  });
  if (!app.state.run) app.welcome.maybeShow(app.classroom.powers(), firstHash);
}

async function boot() {
  const firstHash = location.hash; // a plain address is a first visit's (the welcome)
  installTypeToggle($("type-size"), () => {
    app.live.charts.retype();
    requestAnimationFrame(() => app.live.charts.resize());
    if (app.compare.cards.size) app.compare.plot();
  });
  setConnection({ state: "connecting" });
  app.all = await loadOptions();
  setConnection({ state: "idle" });
  banner(null);
  learnRegistry();
  setupFamilyChooser();
  useFamily(hashFamily(location.hash, app.all));
  makeViews();
  wireRunControls();
  wirePanelTools();
  wireNavigation();
  await startClassroom();
  await openFirstState(firstHash);
  document.body.dataset.ready = "1";
}

// for tests and bench/browser_frame.py: the page's state and the drawing timings
window.collapseLab = {
  app,
  perf,
  curvePerf,
  summary() {
    const f = perf.frames;
    if (f.length < 2) return { frames: f.length };
    const ms = f.map((x) => x[1]);
    const span = (f[f.length - 1][0] - f[0][0]) / 1000;
    return { frames: f.length, seconds: span, fps: (f.length - 1) / span, p50_ms: percentile(ms, 50), p95_ms: percentile(ms, 95), max_ms: Math.max(...ms) };
  },
};

boot().catch((e) => {
  banner(`The page could not start: ${e.message}`, "error");
  throw e;
});
