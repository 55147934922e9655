// The welcome's words: the family's own, from its /api/options entry; shown on a plain address.
import { test } from "node:test";
import assert from "node:assert/strict";

import { plainAddress, welcomeText } from "../js/welcome.js";

test("an address with no hash, or one naming only the family, is a first visit's", () => {
  assert.equal(plainAddress(""), true);
  assert.equal(plainAddress("#"), true);
  assert.equal(plainAddress("#family=vae"), true);
  assert.equal(plainAddress("#family=vae&preset=vae-collapse-digits"), false);
  assert.equal(plainAddress("#run=ab12"), false);
  assert.equal(plainAddress("#view=compare"), false);
});

test("the headline, first preset and hint are the family's; a family without them gets its help", () => {
  const vae = {
    name: "vae", label: "VAE", help: "a variational autoencoder",
    welcome: { headline: "Watch a VAE stop using its code.", preset: "vae-collapse-digits", hint: "Loads…" },
  };
  assert.deepEqual(welcomeText(vae), vae.welcome);
  const bare = { name: "x", label: "X", help: "a model of some kind" };
  assert.deepEqual(welcomeText(bare), { headline: "X: a model of some kind.", preset: null, hint: "" });
  assert.doesNotMatch(welcomeText(null).headline, /GAN/);
});
