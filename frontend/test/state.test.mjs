// Page state <-> URL hash round trips, coercion by the knob registry, start bodies, live changes.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  initialState, encodeHash, decodeHash, coerceKnob, startBody, liveChanges, effectiveConfig,
  baseConfig, presetSwitch, presetOf, claimMarker, presetLength,
} from "../js/state.js";
import { hashFamily, familyOptions, DEFAULT_FAMILY } from "../js/state.js";
import {
  SPEED_STOPS, speedToPos, posToSpeed, speedLabel, paceChanges, pacedTickEvery,
} from "../js/speed.js";

// a slice of /api/options' knob list, shaped as trainer.registry.options() returns it
const KNOBS = [
  { name: "dataset", type: "choice", default: "ring8", choices: ["ring8", "grid25", "digits"], live: false, nullable: false },
  { name: "objective", type: "choice", default: "nsgan", choices: ["nsgan", "wgan", "wgan-gp"], live: true, nullable: false },
  { name: "gp", type: "float", default: null, min: 0, max: 1000, live: true, nullable: true },
  { name: "minibatch_disc", type: "bool", default: false, live: true, nullable: false },
  { name: "lr_g", type: "float", default: 0.001, min: 1e-6, max: 0.1, live: true, nullable: false },
  { name: "n_critic", type: "int", default: 1, min: 1, max: 20, live: true, nullable: false },
  { name: "seed", type: "int", default: 0, min: 0, max: 2147483647, live: false, nullable: false },
  { name: "data", type: "str", default: null, live: false, nullable: true },
];
const PRESETS = [
  { name: "collapse-ring8", values: { dataset: "ring8", objective: "nsgan", lr_g: 0.001 } },
  { name: "wgan-gp-ring8", values: { dataset: "ring8", objective: "wgan-gp", n_critic: 5 } },
];

test("the default state encodes to an empty hash and back", () => {
  assert.equal(encodeHash(initialState(), KNOBS, PRESETS), "");
  const { state, errors } = decodeHash("", KNOBS, PRESETS);
  assert.deepEqual(state, initialState());
  assert.deepEqual(errors, []);
});

test("a full state round-trips through the hash", () => {
  const s = initialState();
  s.view = "compare";
  s.run = "r_abc12";
  s.runs = ["r1", "r2", "r3"];
  s.group = "g7";
  s.preset = "wgan-gp-ring8";
  s.config = { gp: 2.5, minibatch_disc: true, lr_g: 0.0005, seed: 42, data: "my points.csv" };
  s.show.arrows = true;
  s.show.real = false;
  s.replay = 1200;
  const hash = encodeHash(s, KNOBS, PRESETS);
  const { state, errors } = decodeHash(`#${hash}`, KNOBS, PRESETS);
  assert.deepEqual(errors, []);
  assert.deepEqual(state, s);
  assert.match(hash, /^view=compare&run=r_abc12&runs=r1%2Cr2%2Cr3&group=g7&preset=wgan-gp-ring8/);
  assert.match(hash, /lr_g=0\.0005/);
  assert.match(hash, /data=my%20points\.csv/);
});

test("values equal to the preset or the defaults are left out of the hash", () => {
  const s = initialState();
  s.preset = "wgan-gp-ring8";
  s.config = { objective: "wgan-gp", n_critic: 5, lr_g: 0.001, gp: null, seed: 3 };
  assert.equal(encodeHash(s, KNOBS, PRESETS), "preset=wgan-gp-ring8&seed=3");
});

test("bad values are reported by name and left out; the rest still opens", () => {
  const { state, errors } = decodeHash(
    "#run=r1&lr_g=7&objective=sgd&n_critic=2.5&minibatch_disc=maybe&bogus=1&gp=null&view=zzz",
    KNOBS, PRESETS);
  assert.equal(state.run, "r1");
  assert.deepEqual(state.config, { gp: null });
  assert.equal(state.view, "live");
  assert.equal(errors.length, 6);
  assert.ok(errors.includes("lr_g: expected a number in [0.000001, 0.1], got 7"), errors.join("|"));
  assert.ok(errors.some((e) => e.startsWith("objective: expected one of nsgan, wgan, wgan-gp")));
  assert.ok(errors.some((e) => e.startsWith("n_critic: expected an integer")));
  assert.ok(errors.some((e) => e.startsWith("minibatch_disc: expected 1 or 0")));
  assert.ok(errors.some((e) => e.includes('"bogus"')));
  assert.ok(errors.some((e) => e.startsWith("view:")));
});

test("a run id that is not an id is refused (no markup through the hash)", () => {
  const { state, errors } = decodeHash("#run=%3Cimg%20src%3Dx%3E", KNOBS, PRESETS);
  assert.equal(state.run, null);
  assert.equal(errors.length, 1);
});

test("coerceKnob keeps types and ranges", () => {
  const byName = Object.fromEntries(KNOBS.map((k) => [k.name, k]));
  assert.deepEqual(coerceKnob(byName.n_critic, "5"), { value: 5 });
  assert.deepEqual(coerceKnob(byName.lr_g, "1e-4"), { value: 0.0001 });
  assert.deepEqual(coerceKnob(byName.minibatch_disc, "true"), { value: true });
  assert.deepEqual(coerceKnob(byName.gp, ""), { value: null });
  assert.ok("error" in coerceKnob(byName.lr_g, ""));
  assert.ok("error" in coerceKnob(byName.n_critic, "0"));
});

test("start body: the preset plus only what differs from it", () => {
  const s = initialState();
  s.preset = "collapse-ring8";
  s.config = { objective: "nsgan", minibatch_disc: true };
  assert.deepEqual(startBody(s, KNOBS, PRESETS), { preset: "collapse-ring8", minibatch_disc: true });
  s.preset = null;
  s.config = { objective: "wgan", lr_g: 0.001 };
  assert.deepEqual(startBody(s, KNOBS, PRESETS), { objective: "wgan" });
  assert.equal(effectiveConfig(s, KNOBS, PRESETS).dataset, "ring8");
  assert.equal(baseConfig(KNOBS, PRESETS, "wgan-gp-ring8").n_critic, 5);
});

test("live changes separate live knobs from ones that need a new run", () => {
  const running = { objective: "nsgan", gp: null, seed: 0, lr_g: 0.001, dataset: "ring8" };
  const wanted = { objective: "wgan-gp", gp: null, seed: 4, lr_g: 0.001, dataset: "grid25" };
  const { changes, frozen } = liveChanges(running, wanted, KNOBS);
  assert.deepEqual(changes, { objective: "wgan-gp" });
  assert.deepEqual(frozen.sort(), ["dataset", "seed"]);
});

test("sliders: log knobs span decades, 0 stays off, ints stay ints", async () => {
  const { sliderScale, showValue } = await import("../js/controls.js");
  const lr = sliderScale(KNOBS.find((k) => k.name === "lr_g") && { ...KNOBS.find((k) => k.name === "lr_g"), log: true });
  assert.equal(lr.kind, "log");
  assert.equal(lr.fromPos(lr.toPos(0.0005)), 0.0005);
  assert.equal(lr.fromPos(0), 0.000001);
  assert.equal(lr.fromPos(1000), 0.1);
  const gp = sliderScale(KNOBS.find((k) => k.name === "gp"));
  assert.equal(gp.kind, "zerolog");
  assert.equal(gp.toPos(0), 0);
  assert.equal(gp.fromPos(0), 0);
  assert.equal(gp.fromPos(gp.toPos(10)), 10);
  const nc = sliderScale(KNOBS.find((k) => k.name === "n_critic"));
  assert.equal(nc.kind, "linear");
  assert.equal(nc.fromPos(nc.toPos(5)), 5);
  assert.equal(sliderScale(KNOBS.find((k) => k.name === "seed")), null); // typed, not slid
  assert.equal(showValue({ type: "float" }, 0.0003), "3e−4");
  assert.equal(showValue({ type: "float" }, null), "auto");
  assert.equal(showValue({ type: "int" }, 5), "5");
});

test("switching a running run to a preset: the live knobs that differ, a longer run, frozen knobs named", () => {
  const knobs = [
    ...KNOBS.map((k) => ({ ...k, group: k.name === "seed" ? "run" : "objective" })),
    { name: "steps", type: "int", default: 3000, min: 1, max: 1000000, live: true, nullable: false, group: "run" },
    { name: "beta1", type: "float", default: 0.5, min: 0, max: 0.999, live: true, nullable: false, group: "optim" },
  ];
  const presets = [
    { name: "collapse-ring8", values: { dataset: "ring8", objective: "nsgan", lr_g: 0.0002, beta1: 0.9 } },
    { name: "wgan-gp-ring8", values: { dataset: "ring8", objective: "wgan-gp", lr_g: 0.0005, gp: 1, steps: 4000 } },
    { name: "collapse-grid25", values: { dataset: "grid25", objective: "nsgan" } },
  ];
  const running = { ...baseConfig(knobs, presets, "collapse-ring8"), seed: 7, steps: 3000 };
  // 2,500 steps in: the twin's 4,000 steps run from here, so the run is stretched to 6,500
  const sw = presetSwitch(knobs, presets, "wgan-gp-ring8", running, 2500);
  assert.deepEqual(sw.changes, { objective: "wgan-gp", gp: 1, lr_g: 0.0005, beta1: 0.5, steps: 6500 });
  // a run that trains until stopped (the page's runs) keeps no end
  const open = presetSwitch(knobs, presets, "wgan-gp-ring8", { ...running, steps: 0 }, 2500);
  assert.deepEqual(open.changes, { objective: "wgan-gp", gp: 1, lr_g: 0.0005, beta1: 0.5 });
  assert.deepEqual(sw.frozen, []); // the seed (a run-group knob) is the run's own, not a difference
  // the same preset again: nothing to change, and the length is left alone
  const same = presetSwitch(knobs, presets, "collapse-ring8", running, 2500);
  assert.deepEqual(same, { changes: {}, frozen: [] });
  // another dataset cannot be switched to mid-run
  assert.deepEqual(presetSwitch(knobs, presets, "collapse-grid25", running, 100).frozen, ["dataset"]);
});

// ---------------------------------------------------------------- runs until stopped, presets' claims
const RUN_KNOBS = [
  ...KNOBS.map((k) => ({ ...k, group: k.name === "seed" ? "run" : "objective" })),
  { name: "steps", type: "int", default: 3000, min: 0, max: 1000000, live: true, nullable: false, group: "run" },
];
const CLAIMED = [
  { name: "collapse-ring8", values: { dataset: "ring8", objective: "nsgan", lr_g: 0.0002, steps: 3000 }, claim: "≤ 3 of 8 modes covered at the end", claim_step: 3000 },
  { name: "wgan-gp-ring8", values: { dataset: "ring8", objective: "wgan-gp", lr_g: 0.0005, gp: 1, steps: 4000 }, claim: "≥ 7 of 8 modes covered at the end", claim_step: 4000 },
  { name: "vanilla-ring8", values: { dataset: "ring8", objective: "nsgan" }, claim: null, claim_step: null },
];

test("runs started from the page train until stopped unless steps are set", () => {
  const s = initialState();
  s.preset = "collapse-ring8";
  // the preset's 3,000 steps are its calibration length, not the run's: the page sends 0
  assert.deepEqual(startBody(s, RUN_KNOBS, CLAIMED), { preset: "collapse-ring8", steps: 0 });
  assert.equal(encodeHash(s, RUN_KNOBS, CLAIMED), "preset=collapse-ring8");
  // steps the person sets travel in the link and in the body, even the preset's own number
  s.config = { steps: 3000 };
  assert.equal(encodeHash(s, RUN_KNOBS, CLAIMED), "preset=collapse-ring8&steps=3000");
  assert.deepEqual(startBody(s, RUN_KNOBS, CLAIMED), { preset: "collapse-ring8", steps: 3000 });
  const { state } = decodeHash("#preset=collapse-ring8&steps=3000", RUN_KNOBS, CLAIMED);
  assert.equal(effectiveConfig(state, RUN_KNOBS, CLAIMED).steps, 3000);
  assert.equal(presetLength(RUN_KNOBS, CLAIMED, "wgan-gp-ring8"), 4000);
  assert.equal(presetLength(RUN_KNOBS, CLAIMED, "vanilla-ring8"), 3000); // the registry's default
});

test("a run's preset is found from its starting config; its claim becomes a chart marker", () => {
  const cfg = { ...baseConfig(RUN_KNOBS, CLAIMED, "wgan-gp-ring8"), seed: 5, steps: 0 };
  assert.equal(presetOf(RUN_KNOBS, CLAIMED, cfg).name, "wgan-gp-ring8"); // seed and length are its own
  assert.equal(presetOf(RUN_KNOBS, CLAIMED, { ...cfg, lr_g: 0.0003 }), null); // changed by hand
  const m = claimMarker(presetOf(RUN_KNOBS, CLAIMED, cfg));
  assert.deepEqual({ step: m.step, label: m.label, kind: m.kind },
    { step: 4000, label: "claim: ≥ 7 of 8 modes covered", kind: "claim" });
  assert.match(m.hover, /^wgan-gp-ring8 is calibrated to end with ≥ 7 of 8 modes covered at step 4000/);
  assert.equal(claimMarker(CLAIMED[2]), null); // no calibrated claim, no marker
});

test("the chart metric lives in the hash; a bad one is named", () => {
  const s = initialState();
  assert.equal(s.metric, "reverse_kl");
  s.metric = "hopping";
  const h = encodeHash(s, KNOBS, PRESETS);
  assert.equal(h, "metric=hopping");
  assert.equal(decodeHash(h, KNOBS, PRESETS).state.metric, "hopping");
  const bad = decodeHash("#metric=<img>", KNOBS, PRESETS);
  assert.equal(bad.state.metric, "reverse_kl");
  assert.match(bad.errors[0], /^metric: /);
  assert.equal(decodeHash("#manifold=1", KNOBS, PRESETS).state.show.manifold, true);
});

// ---------------------------------------------------------------- slow motion
test("speed slider: stops from 1 step/s to unlimited, labels", () => {
  assert.equal(SPEED_STOPS[0], 1);
  assert.equal(posToSpeed(SPEED_STOPS.length - 1), 0); // the last stop is unlimited
  for (const v of SPEED_STOPS) assert.equal(posToSpeed(speedToPos(v)), v);
  assert.equal(posToSpeed(speedToPos(3)), 2); // nearest on a log scale: 3 is nearer 2 than 5
  assert.equal(posToSpeed(speedToPos(4)), 5);
  assert.equal(posToSpeed(speedToPos(7000)), 2000);
  assert.equal(posToSpeed(99), 0);
  assert.equal(speedLabel(0), "unlimited");
  assert.equal(speedLabel(1), "1 step/s");
  assert.equal(speedLabel(20), "20 steps/s");
});

test("slowing down ticks every step (at most 10 ticks a second); unlimited restores the run's", () => {
  assert.equal(pacedTickEvery(1, 20), 1);
  assert.equal(pacedTickEvery(10, 20), 1);
  assert.equal(pacedTickEvery(50, 20), 5);
  assert.equal(pacedTickEvery(1000, 20), 20); // never coarser than the run's own
  let r = paceChanges(5, { speed: 0, tick_every: 20 }, null);
  assert.deepEqual(r, { changes: { speed: 5, tick_every: 1 }, restore: 20 });
  r = paceChanges(50, { speed: 5, tick_every: 1 }, r.restore);
  assert.deepEqual(r, { changes: { speed: 50, tick_every: 5 }, restore: 20 });
  r = paceChanges(0, { speed: 50, tick_every: 5 }, r.restore);
  assert.deepEqual(r, { changes: { speed: 0, tick_every: 20 }, restore: null });
  // nothing remembered (the page was reloaded while slow): the preset's or default tick_every
  assert.deepEqual(paceChanges(0, { speed: 5, tick_every: 1 }, null, 10).changes, { speed: 0, tick_every: 10 });
  // a change that changes nothing sends nothing
  assert.deepEqual(paceChanges(0, { speed: 0, tick_every: 20 }, null).changes, {});
});

// ---------------------------------------------------------------------------- families

const FAMS = {
  families: [
    { name: "gan", label: "GAN", judge_from: 500, remedies: [{ name: "gp" }],
      knobs: [{ name: "objective", type: "choice", choices: ["nsgan"], default: "nsgan", group: "objective" }, { name: "steps", type: "int", default: 100, min: 0, max: 1e6, group: "run" }] },
    { name: "evolution", label: "Evolution", judge_from: 50, remedies: [{ name: "sharing" }],
      knobs: [{ name: "population", type: "int", default: 512, min: 16, max: 4096, group: "model" }, { name: "steps", type: "int", default: 300, min: 0, max: 1e6, group: "run" }] },
  ],
  presets: [{ name: "collapse-ring8", family: "gan", values: {} }, { name: "evolution-collapse-ring8", family: "evolution", values: { population: 512 } }],
  objectives: [{ name: "nsgan" }],
  stats: [{ name: "step" }],
};

test("a link's family: its family key, else its preset's family, else the default", () => {
  assert.equal(hashFamily("#family=evolution", FAMS), "evolution");
  assert.equal(hashFamily("#preset=evolution-collapse-ring8&steps=5", FAMS), "evolution");
  assert.equal(hashFamily("#preset=collapse-ring8", FAMS), "gan");
  assert.equal(hashFamily("#family=nosuch", FAMS), DEFAULT_FAMILY);
  assert.equal(hashFamily("", FAMS), DEFAULT_FAMILY);
});

test("the options seen through a family: its knobs, presets and remedies; objectives only where it has the knob", () => {
  const evo = familyOptions(FAMS, "evolution");
  assert.equal(evo.family, "evolution");
  assert.equal(evo.judgeFrom, 50);
  assert.deepEqual(evo.knobs.map((k) => k.name), ["population", "steps"]);
  assert.deepEqual(evo.presets.map((p) => p.name), ["evolution-collapse-ring8"]);
  assert.deepEqual(evo.remedies.map((r) => r.name), ["sharing"]);
  assert.deepEqual(evo.objectives, []);
  assert.equal(evo.stats, FAMS.stats); // every family's stats stay: runs of any family are shown
  const gan = familyOptions(FAMS, "gan");
  assert.deepEqual(gan.objectives.map((o) => o.name), ["nsgan"]);
  assert.deepEqual(gan.presets.map((p) => p.name), ["collapse-ring8"]);
  assert.equal(familyOptions(FAMS, "nosuch").family, "gan");
});

test("a family other than the default travels in the link and in a start body without a preset", () => {
  const evo = familyOptions(FAMS, "evolution");
  const state = { ...initialState(), family: "evolution", config: { population: 256 } };
  const h = encodeHash(state, evo.knobs, evo.presets);
  assert.equal(h, "family=evolution&population=256");
  const back = decodeHash(h, evo.knobs, evo.presets);
  assert.deepEqual(back.errors, []);
  assert.equal(back.state.family, "evolution");
  assert.deepEqual(back.state.config, { population: 256 });
  assert.deepEqual(startBody(state, evo.knobs, evo.presets), { family: "evolution", population: 256, steps: 0 });
  // a preset names its family itself
  assert.deepEqual(startBody({ ...state, preset: "evolution-collapse-ring8", config: {} }, evo.knobs, evo.presets),
    { preset: "evolution-collapse-ring8", steps: 0 });
  // the default family is not written
  assert.equal(encodeHash({ ...initialState(), family: "gan" }, [], []), "");
  assert.match(decodeHash("#family=Bad!", evo.knobs, evo.presets).errors[0], /family: not a family name/);
});
