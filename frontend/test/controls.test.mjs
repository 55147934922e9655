// The panel's sections: a knob's place comes from the registry's `main` flag, not its name.
import { test } from "node:test";
import assert from "node:assert/strict";

import { knobSection } from "../js/controls.js";

test("a main data or optimisation knob is in the main sections, the rest under More settings", () => {
  assert.equal(knobSection({ name: "dataset", group: "data", main: true }), "Data & objective");
  assert.equal(knobSection({ name: "data_scale", group: "data", main: false }), "More settings");
  assert.equal(knobSection({ name: "lr", group: "optim", main: true }), "Optimisation");
  assert.equal(knobSection({ name: "lr_g", group: "optim" }), "More settings"); // the name alone: no
  assert.equal(knobSection({ name: "batch", group: "optim", main: false }), "More settings");
});

test("objectives and remedies have sections of their own; a main flag where no main section is changes nothing", () => {
  assert.equal(knobSection({ name: "strategy", group: "objective" }), "Data & objective");
  assert.equal(knobSection({ name: "crowding", group: "remedy", main: true }), "Remedies");
  assert.equal(knobSection({ name: "population", group: "model", main: true }), "More settings");
  assert.equal(knobSection({ name: "seed", group: "run" }), "More settings");
  assert.equal(knobSection({ name: "x", group: "nosuch" }), null);
});
