// A family's panels (family_panels.js): the value formats of docs/families.md ("Panels") checked,
// and the pure geometry and rate limit the drawing uses.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  checkPanel, groupTexts, niceMax, barsRange, labelEvery, imageGrid, span, tickText, Throttle,
  LIMITS, MAX_RATE, PANEL_KINDS,
} from "../js/family_panels.js";

test("the kinds are those trainer/family.py allows", () => {
  assert.deepEqual(PANEL_KINDS, ["bars", "line", "heatmap", "images", "text"]);
  assert.match(checkPanel("pie", {}).error, /not one of bars, line, heatmap, images, text/);
});

test("bars: non-finite values become gaps, the optional fields are filled, a mismatch is named", () => {
  const ok = checkPanel("bars", { labels: ["a", "b", "c"], values: [1, null, 2.5], ref: 0.5, unit: "nats" });
  assert.deepEqual(ok.value, { labels: ["a", "b", "c"], values: [1, null, 2.5], ref: 0.5, unit: "nats" });
  assert.deepEqual(checkPanel("bars", { values: [NaN, 3] }).value, { labels: [], values: [null, 3], ref: null, unit: "" });
  assert.equal(checkPanel("bars", { labels: ["a"], values: [1, 2] }).error, "1 labels for 2 values");
  assert.match(checkPanel("bars", { values: new Array(LIMITS.bars + 1).fill(0) }).error, /257 entries, more than 256/);
  assert.equal(checkPanel("bars", [1, 2]).error, "not an object");
  assert.equal(checkPanel("bars", { values: "1,2" }).error, "values is not a list");
});

test("line, heatmap: lengths must agree", () => {
  assert.equal(checkPanel("line", { x: [0, 1], y: [1] }).error, "2 x for 1 y");
  assert.deepEqual(checkPanel("line", { x: [0, 1], y: [1, Infinity], xlabel: "step" }).value,
    { x: [0, 1], y: [1, null], xlabel: "step", ylabel: "" });
  assert.equal(checkPanel("heatmap", { z: [[1, 2], [3]] }).error, "z's rows differ in length");
  const h = checkPanel("heatmap", { z: [[1, 2], [3, 4]], x: [0, 1], y: [5] }).value;
  assert.deepEqual(h, { z: [[1, 2], [3, 4]], x: [0, 1], y: null }); // y of the wrong length: no axis
});

test("images: each image is h×w values, at most 64 of them, labels only when one per image", () => {
  const im = [0, 0.5, 1, 0.25];
  const ok = checkPanel("images", { images: [im, im], shape: [2, 2], labels: ["in", "out"], cols: 2 }).value;
  assert.deepEqual(ok.labels, ["in", "out"]);
  assert.equal(ok.cols, 2);
  assert.equal(checkPanel("images", { images: [im, [0]], shape: [2, 2] }).error, "image 1 is not 2×2 values");
  assert.equal(checkPanel("images", { images: [im], shape: [2] }).error, "shape is not [h, w]");
  assert.match(checkPanel("images", { images: new Array(65).fill(im), shape: [2, 2] }).error, /more than 64/);
  assert.equal(checkPanel("images", { images: [im], shape: [2, 2], labels: ["a", "b"] }).value.labels, null);
});

test("text: items keep their group and tag, long strings are cut, groups keep the declared order", () => {
  const v = checkPanel("text", {
    items: [{ text: "x".repeat(500), group: "b", tag: "new" }, { text: "ab", group: "a" }, { text: "cd", group: "c" }],
    groups: ["a", "b"],
  }).value;
  assert.equal(v.items[0].text.length, 200);
  assert.equal(v.items[1].tag, null);
  assert.deepEqual(groupTexts(v.items, v.groups).map((g) => [g.group, g.items.length]), [["a", 1], ["b", 1], ["c", 1]]);
  assert.equal(checkPanel("text", { items: [{ group: "a" }] }).error, "an item has no text");
});

test("a bar axis ends on a round number above the highest bar and the ref, from 0", () => {
  assert.equal(niceMax(0.73), 1);
  assert.equal(niceMax(1.2), 2);
  assert.equal(niceMax(2.1), 2.5);
  assert.equal(niceMax(37), 50);
  assert.equal(niceMax(100), 100);
  assert.deepEqual(barsRange([10, 30, null], 42), { lo: 0, hi: 50 });
  assert.deepEqual(barsRange([-3, 1]), { lo: -5, hi: 1 });
  assert.deepEqual(barsRange([]), { lo: 0, hi: 1 });
  for (const v of [0.013, 0.7, 3, 99, 12345]) assert.ok(niceMax(v) >= v && niceMax(v) <= 2.5 * v);
});

test("labels that do not fit are thinned to every k-th, never overlapping", () => {
  const labels = Array.from({ length: 10 }, (_, i) => `0.${i}–0.${i + 1}`); // 7 characters
  assert.equal(labelEvery(labels, 1000), 1); // 100 px a slot, 48 px a label
  const k = labelEvery(labels, 200); // 20 px a slot
  assert.ok(k * 20 >= 7 * 6 + 6 && (k - 1) * 20 < 7 * 6 + 6);
});

test("images fill the box: the grid chosen is the one whose images are largest", () => {
  // 64 square images in a square box: 8 × 8
  assert.deepEqual(imageGrid(64, [8, 8], 400, 400), { cols: 8, rows: 8, scale: 400 / 64 });
  // a wide box lays them out wide
  const wide = imageGrid(8, [28, 28], 800, 100);
  assert.equal(wide.cols, 8);
  assert.equal(wide.rows, 1);
  // given columns are kept; labels take their height from each row
  const g = imageGrid(6, [10, 10], 300, 300, 2, 12);
  assert.equal(g.cols, 2);
  assert.equal(g.rows, 3);
  assert.ok(Math.abs(g.scale - Math.min(300 / 20, (100 - 12) / 10)) < 1e-12);
  assert.equal(imageGrid(0, [8, 8], 100, 100).rows, 0);
});

test("value spans leave out gaps and widen a flat line; axis numbers are short", () => {
  assert.deepEqual(span([3, null, 1, NaN, 2]), { lo: 1, hi: 3 });
  assert.deepEqual(span([2, 2]), { lo: 1, hi: 3 });
  assert.deepEqual(span([]), { lo: 0, hi: 1 });
  assert.equal(tickText(0.123456), "0.123");
  assert.equal(tickText(2500), "2500");
  assert.equal(tickText(1234567), "1.2e+6");
  assert.equal(tickText(null), "–");
});

test("at most MAX_RATE redraws a second: the wait is what is left of the gap", () => {
  const t = new Throttle(MAX_RATE);
  assert.equal(t.wait(0), 0);
  t.take(1000);
  assert.equal(t.wait(1000), 1000 / MAX_RATE);
  assert.equal(t.wait(1150), 50);
  assert.equal(t.wait(1200), 0);
  // frames at 30/s for a second: drawn at most MAX_RATE + 1 times
  const th = new Throttle(MAX_RATE);
  let draws = 0;
  for (let now = 0; now < 1000; now += 1000 / 30) if (th.wait(now) === 0) { th.take(now); draws += 1; }
  assert.ok(draws <= MAX_RATE + 1 && draws >= MAX_RATE, `${draws} draws`);
});
