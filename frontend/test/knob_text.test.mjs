// Knobs in words: labels and short names from the registry, and what differs between runs.
import { test } from "node:test";
import assert from "node:assert/strict";

import { differingKnobs, knobLabel, knobShort, knobsText, setKnobText } from "../js/knob_text.js";
import { describeChanges } from "../js/series.js";

const KNOBS = [
  { name: "objective", label: "Objective", short: "objective" },
  { name: "lr_g", label: "G learning rate", short: "lr_g" },
  { name: "beta1", label: "Adam β1", short: "β1" },
  { name: "tick_every", label: "Steps between ticks", short: "tick every" },
  { name: "seed", label: "Seed", short: "seed" },
];

test("labels and short names come from the registry's list, the knob's name before it", () => {
  setKnobText([]);
  assert.equal(knobLabel("tick_every"), "tick every");
  assert.equal(knobShort("beta1"), "beta1");
  setKnobText(KNOBS);
  assert.equal(knobLabel("tick_every"), "Steps between ticks");
  assert.equal(knobShort("beta1"), "β1");
  assert.equal(knobShort("unknown_knob"), "unknown_knob");
  assert.equal(describeChanges({ beta1: 0.9, tick_every: 5 }), "β1 0.9, tick every 5");
});

test("a comparison's runs are told apart by the knobs that differ, in the registry's order", () => {
  setKnobText(KNOBS);
  const a = { objective: "nsgan", lr_g: 0.0002, beta1: 0.9, seed: 3, extra: 1 };
  const b = { objective: "nsgan", lr_g: 0.001, beta1: 0.5, seed: 3, extra: 2 };
  // beta1 is declared after lr_g: that order, whatever the configs' key order; unknown names last
  assert.deepEqual(differingKnobs([b, a]), ["lr_g", "beta1", "extra"]);
  assert.deepEqual(differingKnobs([a, b], new Set(["extra"])), ["lr_g", "beta1"]);
  assert.equal(knobsText(a, ["lr_g", "beta1"]), "lr_g 2e-4, β1 0.9");
  assert.equal(knobsText(b, ["lr_g", "beta1"]), "lr_g 0.001, β1 0.5");
  // one run, or runs that agree: nothing to say
  assert.deepEqual(differingKnobs([a]), []);
  assert.deepEqual(differingKnobs([a, { ...a }]), []);
  // a knob one config lacks differs from one that has it; null and missing agree
  assert.deepEqual(differingKnobs([{ gp: null }, {}]), []);
  assert.deepEqual(differingKnobs([{ gp: 1 }, {}]), ["gp"]);
  assert.equal(knobsText({ gp: null, mbstd: true }, ["gp", "mbstd"]), "gp auto, mbstd on");
});

test("compare titles: the recipe, then what else differs; two cards never read the same", async () => {
  const { compareTitles } = await import("../js/compare.js");
  const { setRemedies } = await import("../js/remedies.js");
  setKnobText(KNOBS);
  setRemedies([{ name: "gp", knobs: ["gp"], typical: { gp: 1 }, off: { gp: 0 } }]);
  // the why-collapse lesson: one loss, two optimisers
  const base = { objective: "nsgan", gp: null, seed: 3 };
  assert.deepEqual(compareTitles([{ ...base, lr_g: 2e-4, beta1: 0.9 }, { ...base, lr_g: 1e-3, beta1: 0.5 }]),
    ["nsgan · lr_g 2e-4, β1 0.9", "nsgan · lr_g 0.001, β1 0.5"]);
  // objectives and remedies are said by the recipe alone
  assert.deepEqual(compareTitles([{ ...base, lr_g: 1e-3 }, { ...base, objective: "wgan-gp", lr_g: 1e-3 }, { ...base, gp: 1, lr_g: 1e-3 }]),
    ["nsgan", "wgan-gp", "nsgan + gp 1"]);
  setRemedies([]);
});
