// The metric cards (cards.js): which stats get a card, in what order, and what they say.
import { test } from "node:test";
import assert from "node:assert/strict";

import { cardStats, cardText, cardParts, subText, cardId } from "../js/cards.js";
import { setStats } from "../js/series.js";

const stat = (name, kind, show, extra = {}) => ({ name, label: name.replace(/_/g, " "), kind, help: "", show, format: ".3g", unit: "", hint: "", under: "", ...extra });
const STEP = stat("step", "tick", ["card", "chart", "csv"], { format: "d" });
const RATE = stat("steps_per_sec", "tick", ["card", "chart"], { label: "steps/s", format: ".0f", under: "step" });
const TIME = stat("time", "tick", ["csv"]);
const LOSS = stat("loss_d", "loss", ["chart", "csv"]);
const FIT = stat("fitness_mean", "fitness", ["card", "chart", "csv"], { format: ".3f" });
const COVERED = stat("modes_covered", "metric", ["card", "chart", "csv"], { format: "d" });
const CAPTURED = stat("modes_captured", "metric", ["card", "chart", "csv"], { format: "d", under: "modes_covered" });
const HQ = stat("hq_fraction", "metric", ["card", "chart", "csv"], { label: "high quality", format: ".1%" });
const OPTIONS = {
  stats: [STEP, TIME, RATE, LOSS, FIT, COVERED, CAPTURED, HQ],
  families: [{ name: "gan", stats: [LOSS] }, { name: "evolution", stats: [FIT] }],
};
setStats(OPTIONS.stats);

const names = (cards) => cards.map((c) => [c.stat.name, c.subs.map((s) => s.name)]);

test("a card per stat shown on one: the mode metrics, the family's own, then the tick's", () => {
  assert.deepEqual(names(cardStats(OPTIONS, "gan")),
    [["modes_covered", ["modes_captured"]], ["hq_fraction", []], ["step", ["steps_per_sec"]]]);
  assert.deepEqual(names(cardStats(OPTIONS, "evolution")),
    [["modes_covered", ["modes_captured"]], ["hq_fraction", []], ["fitness_mean", []], ["step", ["steps_per_sec"]]]);
  // a run of no registered family (a tracked loop): the common cards only
  assert.deepEqual(names(cardStats(OPTIONS, "tracked")).map((n) => n[0]), ["modes_covered", "hq_fraction", "step"]);
});

test("a stat under another that has no card gets a card of its own", () => {
  const opts = { ...OPTIONS, stats: OPTIONS.stats.filter((s) => s.name !== "modes_covered") };
  assert.ok(cardStats(opts, "gan").some((c) => c.stat.name === "modes_captured"));
});

test("values as the registry formats them; modes covered out of the dataset's modes", () => {
  assert.equal(cardText(HQ, 0.4712), "47.1 %");
  assert.equal(cardText(FIT, 0.98765), "0.988");
  assert.equal(cardText(COVERED, 3, 8), "3 / 8");
  assert.equal(cardText(COVERED, null, 8), "–");
  assert.equal(subText(RATE, 608.6), "609 steps/s");
  assert.equal(subText(CAPTURED, 7), "7 modes captured");
  assert.equal(subText(CAPTURED, undefined), "– modes captured");
});

test("a card's unit comes apart from its number, so the number keeps its room", () => {
  assert.deepEqual(cardParts(HQ, 1), ["100.0", "%"]);
  assert.deepEqual(cardParts(FIT, 0.98765), ["0.988", ""]);
  assert.deepEqual(cardParts(COVERED, 3, 8), ["3 / 8", ""]);
  assert.deepEqual(cardParts(HQ, null), ["–", ""]);
  // the parts say what cardText says
  assert.equal(cardParts(HQ, 0.4712).join(" "), cardText(HQ, 0.4712));
});

test("the first cards keep the ids lessons and tests know; others are m-<name>", () => {
  assert.equal(cardId("modes_covered"), "m-covered");
  assert.equal(cardId("steps_per_sec"), "m-speed");
  assert.equal(cardId("fitness_mean"), "m-fitness_mean");
});
