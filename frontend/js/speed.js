// Slow motion: the `speed` knob (steps per second cap; 0 = unlimited) on a slider of stops from
// one step a second to unlimited, and the tick rate that goes with it. Pure: no DOM.
//
// A run ticks every `tick_every` steps and each tick may become a frame. Slowed to a few steps a
// second with the usual 20 steps a tick, a student would wait seconds for each picture; so while
// the speed is capped the page asks for a tick every ceil(speed / 10) steps (at most the run's own
// tick_every): at 1–10 steps/s every step is drawn, and frames still come at most ~10 a second.
// Going back to unlimited restores the tick_every the run had before.

/** Slider stops, slow to fast; 0 (unlimited) is the last, fastest stop. */
export const SPEED_STOPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 0];
const TICKS_PER_SECOND = 10; // the server's default frame rate

/** Slider position of a speed: the nearest stop (on a log scale); 0 = unlimited = the last. */
export function speedToPos(speed) {
  if (!(speed > 0)) return SPEED_STOPS.length - 1;
  let best = 0;
  for (let i = 0; i < SPEED_STOPS.length - 1; i++) {
    if (Math.abs(Math.log(SPEED_STOPS[i] / speed)) < Math.abs(Math.log(SPEED_STOPS[best] / speed))) best = i;
  }
  return best;
}

/** Speed at a slider position. */
export function posToSpeed(pos) {
  const i = Math.max(0, Math.min(SPEED_STOPS.length - 1, Math.round(pos)));
  return SPEED_STOPS[i];
}

/** "unlimited", "1 step/s", "20 steps/s", "0.5 steps/s". */
export function speedLabel(speed) {
  if (!(speed > 0)) return "unlimited";
  const n = Number(speed.toPrecision(3));
  return `${n} step${n === 1 ? "" : "s"}/s`;
}

/** The tick_every that shows a run paced at `speed` smoothly: ceil(speed / 10), at most `base`. */
export function pacedTickEvery(speed, base) {
  return Math.max(1, Math.min(base, Math.ceil(speed / TICKS_PER_SECOND)));
}

/**
 * The live change for a new speed: {changes: {speed, tick_every?}, restore}. `running` is the
 * run's config ({speed, tick_every}); `restore` is the tick_every to go back to when the speed is
 * unlimited again (remembered by the caller between calls; null when none is remembered, and
 * `fallback` then). Only knobs that differ from the running config are in `changes`.
 */
export function paceChanges(speed, running, restore = null, fallback = 20) {
  const changes = {};
  const was = running.speed > 0;
  let keep = restore;
  let tick;
  if (speed > 0) {
    if (!was || keep === null) keep = was ? (keep ?? fallback) : running.tick_every;
    tick = pacedTickEvery(speed, keep);
  } else {
    tick = was ? (keep ?? fallback) : running.tick_every;
    keep = null;
  }
  if (speed !== running.speed) changes.speed = speed;
  if (tick !== running.tick_every) changes.tick_every = tick;
  return { changes, restore: keep };
}

/**
 * The speed knob's widget for controls.js (a factory, `buildControls(..., {factories})`): a
 * slider over SPEED_STOPS with its value in words. `el` is dom.js's builder and `settle`
 * controls.js's settleKeys (passed in so this module stays importable without a DOM).
 */
export function speedWidget(knob, onChange, el, settle = (i, f) => i.addEventListener("change", f)) {
  const id = `knob-${knob.name}`;
  const out = el("output", { for: id, class: "knob-value", text: speedLabel(knob.default) });
  const input = el("input", {
    id, type: "range", min: 0, max: SPEED_STOPS.length - 1, step: 1,
    "aria-label": "Speed: steps per second, slow motion to unlimited",
  });
  const note = el("div", { class: "knob-help", text: "Slow motion: the most steps a second the run takes. Slowed down, every step (up to 10 a second) is drawn." });
  const row = el("div", { class: "knob knob-speed", "data-knob": knob.name, title: knob.help },
    el("div", { class: "knob-head" }, el("label", { for: id, text: "Speed" }), out), input, note);
  const w = { knob, row, input, value: knob.default };
  const show = (v) => { out.textContent = speedLabel(v); input.setAttribute("aria-valuetext", out.textContent); };
  input.addEventListener("input", () => show(posToSpeed(Number(input.value))));
  settle(input, () => {
    w.value = posToSpeed(Number(input.value));
    show(w.value);
    onChange(knob.name, w.value, true);
  });
  w.set = (v) => { w.value = v; input.value = String(speedToPos(v)); show(v); };
  w.setEnabled = (on) => { input.disabled = !on; row.classList.toggle("frozen", !on); };
  w.set(knob.default);
  return w;
}
