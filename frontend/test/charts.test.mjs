// Chart data maths: occupancy classes, tick log, markers, CSV, colour scale, gradient arrows.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  classifyOccupancy, occupancySummary, TickLog, describeChanges, markersFromEvents, markerLayout,
  ticksToCSV, indexAtStep, percentile, backoffDelay, formatNumber, SCALAR_KEYS,
  labelRows, robustRange, frameRate, metricChoices, latentSlice, setStats, formatStat,
  familyTraces, LOSS_TRACES, MODE_TRACES, markersInSpan, labelLeft,
} from "../js/series.js";
import {
  buildLUT, valueRange, gridToRGBA, gradientField, arrowLattice, fieldArrows, worldToPixel, imageToRGBA,
} from "../js/field.js";

test("occupancy classes follow docs/metrics.md: covered >= 1/(4K), starving > 0, dropped = 0", () => {
  // K = 4: the line is 1/16 = 0.0625
  const occ = [0.0625, 0.0624, 0, 0.5];
  assert.deepEqual(classifyOccupancy(occ), ["covered", "starving", "dropped", "covered"]);
  assert.deepEqual(occupancySummary(Float32Array.from(occ)),
    { covered: 2, starving: 1, dropped: 1 });
  assert.deepEqual(classifyOccupancy([]), []);
});

test("the tick log appends newer steps, ignores repeats and rewinds on an older step", () => {
  const log = new TickLog(3);
  assert.equal(log.push({ step: 20, loss_d: 1 }), "append");
  assert.equal(log.push({ step: 20, loss_d: 9 }), "same");
  assert.equal(log.push({ step: 40, loss_d: NaN }), "append");
  assert.equal(log.push({ step: 60, loss_d: 3 }), "append");
  assert.deepEqual(log.column("loss_d"), { x: [20, 40, 60], y: [1, null, 3] });
  assert.equal(log.push({ step: 80, loss_d: 4 }), "append");
  assert.deepEqual(log.column("loss_d").x, [40, 60, 80]); // bounded at 3
  assert.equal(log.push({ step: 50, loss_d: 5 }), "reset");
  assert.deepEqual(log.column("loss_d").x, [40, 50]);
});

test("config events become labelled markers at their steps", () => {
  const events = [
    { type: "config", version: 0, step: 0, changes: {} },
    { type: "state", state: "paused", step: 100 },
    { type: "config", version: 1, step: 1200, changes: { objective: "wgan-gp", gp: 10 } },
    { type: "config", version: 2, step: 1500, changes: { minibatch_disc: true, lr_g: 0.0005 } },
  ];
  const m = markersFromEvents(events);
  assert.deepEqual(m.map((x) => x.step), [1200, 1500]);
  assert.equal(m[0].label, "objective → wgan-gp, gp 10");
  assert.equal(m[1].label, "+minibatch_disc, lr_g 5e-4");
  const lay = markerLayout(m);
  assert.equal(lay.shapes.length, 2);
  assert.equal(lay.shapes[1].x0, 1500);
  assert.equal(lay.annotations[0].text, "objective → wgan-gp, gp 10");
  assert.equal(markerLayout(m, false).annotations.length, 0);
  assert.equal(describeChanges({ spectral_norm: false, gp: null }), "−spectral_norm, gp default");
});

test("numbers are formatted compactly", () => {
  assert.equal(formatNumber(0.0005), "5e-4");
  assert.equal(formatNumber(12.345), "12.3");
  assert.equal(formatNumber(3), "3");
  assert.equal(formatNumber(1024), "1024"); // an integer whole, not rounded to 1020
  assert.equal(describeChanges({ train_points: 1024 }), "train_points 1024");
  assert.equal(formatNumber(null), "–");
  assert.equal(formatNumber(NaN), "–");
  assert.equal(formatNumber(123456), "1.23e5");
});

// the shape of /api/options `stats` (trainer/stats.py, trainer/families/gan/stats.py)
const STATS = [
  { name: "step", label: "step", kind: "tick", format: "d", unit: "" },
  { name: "loss_d", label: "D loss", kind: "loss", format: ".4f", unit: "", color: "#e4572e" },
  { name: "loss_g", label: "G loss", kind: "loss", format: ".4f", unit: "", color: "#4c8bf5" },
  { name: "term_gp", label: "GP term", kind: "term", format: ".4f", unit: "", color: "#a05cd6" },
  { name: "modes_covered", label: "modes covered", kind: "metric", format: "d", color: "#2e9e5b" },
  { name: "hq_fraction", label: "high quality", kind: "metric", format: ".1%", unit: "" },
  { name: "time", label: "time", kind: "tick", format: ".1f", unit: "s" },
];

test("the page's lists of stats come from the server's registry", () => {
  setStats(STATS);
  assert.deepEqual(SCALAR_KEYS, STATS.map((s) => s.name));
  assert.deepEqual(LOSS_TRACES.map((t) => [t.key, t.label, t.color]),
    [["loss_d", "D loss", "#e4572e"], ["loss_g", "G loss", "#4c8bf5"], ["term_gp", "GP term", "#a05cd6"]]);
  assert.deepEqual(MODE_TRACES.map((t) => t.key), ["modes_covered"]);
  assert.equal(formatStat("hq_fraction", 0.1234), "12.3 %");
  assert.equal(formatStat("loss_d", 1.5), "1.5000");
  assert.equal(formatStat("time", 12.345), "12.3 s");
  assert.equal(formatStat("step", 3000), "3000");
  assert.equal(formatStat("loss_d", NaN), "–");
});

test("CSV has the server's columns: scalars then occ_0..occ_{K-1}", () => {
  setStats(STATS);
  const csv = ticksToCSV([
    { step: 20, loss_d: 1.5, loss_g: null, occupancy: [0.5, 0.25] },
    { step: 40, loss_d: 1.25, occupancy: [0.75, 0] },
  ]);
  const lines = csv.trimEnd().split("\n");
  assert.equal(lines[0], [...SCALAR_KEYS, "occ_0", "occ_1"].join(","));
  assert.equal(lines.length, 3);
  const row = lines[1].split(",");
  assert.equal(row[0], "20");
  assert.equal(row[SCALAR_KEYS.indexOf("loss_d")], "1.5");
  assert.equal(row[SCALAR_KEYS.indexOf("loss_g")], "");
  assert.deepEqual(row.slice(-2), ["0.5", "0.25"]);
});

test("indexAtStep finds the snapshot at or before a step", () => {
  const steps = [0, 200, 400, 600];
  assert.equal(indexAtStep(steps, 399), 1);
  assert.equal(indexAtStep(steps, 400), 2);
  assert.equal(indexAtStep(steps, 9999), 3);
  assert.equal(indexAtStep(steps, -5), 0);
  assert.equal(indexAtStep([], 5), -1);
});

test("percentile and backoff", () => {
  assert.equal(percentile([5, 1, 3, 2, 4], 50), 3);
  assert.equal(percentile([0, 10], 95), 9.5);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.equal(backoffDelay(0, 0.5), 500);
  assert.equal(backoffDelay(3, 0.5), 4000);
  assert.equal(backoffDelay(30, 0.5), 10000);
  assert.ok(backoffDelay(2, 0) < backoffDelay(2, 0.99));
});

test("colour scale: probability is fixed to [0,1], critic spans its grid", () => {
  const lut = buildLUT();
  assert.equal(lut.length, 768);
  assert.deepEqual(Array.from(lut.slice(0, 3)), [33, 102, 172]);
  assert.deepEqual(Array.from(lut.slice(765)), [178, 24, 43]);
  assert.deepEqual(valueRange(Float32Array.from([0.2, 0.3]), "probability"), [0, 1]);
  assert.deepEqual(valueRange(Float32Array.from([-0.5, 2, NaN]), "critic"), [-0.5, 2]);
  assert.deepEqual(valueRange(Float32Array.from([NaN]), "critic"), [-1, 1]);
  const flat = valueRange(Float32Array.from([3, 3]), "critic");
  assert.ok(flat[0] < 3 && flat[1] > 3);
});

test("grid pixels put row 0 (ymin) at the bottom of the image", () => {
  const lut = buildLUT();
  const grid = Float32Array.from([0, 0, 1, 1]); // 2x2: bottom row low, top row high
  const px = gridToRGBA(grid, 2, 2, lut, 0, 1, new Uint8ClampedArray(16));
  assert.deepEqual(Array.from(px.slice(0, 4)), [178, 24, 43, 255]); // top-left = high value
  assert.deepEqual(Array.from(px.slice(8, 12)), [33, 102, 172, 255]); // bottom-left = low
});

test("gradient of a plane is its slope; arrows point uphill", () => {
  const w = 5, h = 4;
  const ext = [0, 4, 0, 3]; // one world unit per cell
  const grid = new Float32Array(w * h);
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) grid[r * w + c] = 2 * c - r;
  const { gx, gy } = gradientField(grid, w, h, ext);
  for (let i = 0; i < w * h; i++) {
    assert.ok(Math.abs(gx[i] - 2) < 1e-6);
    assert.ok(Math.abs(gy[i] + 1) < 1e-6);
  }
  const arrows = arrowLattice(grid, w, h, ext, 2, 1);
  assert.ok(arrows.length > 0);
  for (const a of arrows) {
    assert.ok(Math.abs(Math.hypot(a.u, a.v) - 1) < 1e-6);
    assert.ok(a.u > 0 && a.v < 0);
  }
  assert.deepEqual(arrowLattice(new Float32Array(w * h), w, h, ext), []); // flat: no arrows
});

test("a sent field's arrows sit on its lattice, point its way, longest 0.9 of a cell", () => {
  // 3 × 3 lattice over [-1, 1]²: a field pointing at the origin, x·4 stronger than the rest
  const side = 3, ext = [-1, 1, -1, 1];
  const uv = [];
  for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) uv.push(-(c - 1) * 4, -(r - 1));
  const arrows = fieldArrows(side, uv, ext);
  assert.equal(arrows.length, 8); // the centre's zero vector is left out
  const longest = Math.max(...arrows.map((a) => Math.hypot(a.u, a.v)));
  assert.ok(Math.abs(longest - 0.9) < 1e-9);
  for (const a of arrows) {
    assert.ok(a.x * a.u + a.y * a.v < 0); // towards the origin
    assert.ok([-1, 0, 1].includes(a.x) && [-1, 0, 1].includes(a.y));
  }
  // square-root lengths: the field's weakest nonzero arrow (|v| = 1 against √17) is not lost
  const short = arrows.find((a) => a.x === 0 && a.y === 1);
  assert.ok(Math.abs(Math.hypot(short.u, short.v) - 0.9 * Math.sqrt(1 / Math.sqrt(17))) < 1e-9);
  assert.deepEqual(fieldArrows(side, new Array(18).fill(0), ext), []);
});

test("world to pixel keeps a 1:1 aspect and flips y", () => {
  const t = worldToPixel([-2, 2, -1, 1], 400, 300, 10);
  assert.equal(t.scale, 95);
  assert.equal(t.x(-2), 10);
  assert.equal(t.x(2), 390);
  assert.equal(t.y(1), 55); // top of the centred box
  assert.equal(t.y(-1), 245);
});

test("image samples in [-1, 1] become ink on paper", () => {
  const px = imageToRGBA(Float32Array.from([-1, 1, 0, 7]), 0, 2, new Uint8ClampedArray(16));
  assert.deepEqual([px[0], px[4], px[8], px[12]], [255, 0, 128, 0]);
});

// the remedies as GET /api/options lists them (a subset, with the registry's fields)
const REMEDY_LIST = [
  { name: "gp", knobs: ["gp"], typical: { gp: 1.0 }, off: { gp: 0.0 } },
  { name: "minibatch_disc", knobs: ["minibatch_disc", "mbd_kernels", "mbd_dim"],
    typical: { minibatch_disc: true }, off: { minibatch_disc: false } },
  { name: "unroll", knobs: ["unroll"], typical: { unroll: 5 }, off: { unroll: 0 } },
  { name: "pack", knobs: ["pack"], typical: { pack: 2 }, off: { pack: 1 } },
];

test("compare variants: one per objective, one per remedy on the base objective", async () => {
  const { compareVariants } = await import("../js/compare.js");
  const { setRemedies } = await import("../js/remedies.js");
  setRemedies(REMEDY_LIST);
  assert.deepEqual(compareVariants(["nsgan", "wgan-gp"], ["minibatch_disc", "gp", "pack"], "nsgan"), [
    { objective: "nsgan" }, { objective: "wgan-gp" },
    { objective: "nsgan", minibatch_disc: true }, { objective: "nsgan", gp: 1.0 },
    { objective: "nsgan", pack: 2 },
  ]);
});

test("recipe names the objective and the remedies switched on, as the server lists them", async () => {
  const { recipe, setRemedies } = await import("../js/remedies.js");
  setRemedies(REMEDY_LIST);
  assert.equal(recipe({ objective: "nsgan", gp: null, minibatch_disc: true, unroll: 5, pack: 1 }),
    "nsgan + minibatch_disc + unroll 5");
  assert.equal(recipe({ objective: "hinge", gp: 0, minibatch_disc: false, unroll: 0, pack: 3 }),
    "hinge + pack 3");
  setRemedies([]);
  assert.equal(recipe({ objective: "hinge", pack: 3 }), "hinge"); // nothing known, nothing named
});

test("the manifold's latent slice in words", () => {
  assert.equal(latentSlice(16), "z[0], z[1] over ±2σ, the other 14 of z fixed at 0");
  assert.equal(latentSlice(2), "z[0], z[1] over ±2σ (the whole latent plane)");
  assert.equal(latentSlice(1), "z over ±2σ (the latent space is a line)");
  assert.equal(latentSlice(undefined), "");
});

test("slow motion and open-ended runs read as such in marker labels", () => {
  // the tick rate slow motion sets with a speed is part of it, not a change of its own
  assert.equal(describeChanges({ speed: 2, tick_every: 1 }), "speed 2/s");
  assert.equal(describeChanges({ speed: 0 }), "speed unlimited");
  assert.equal(describeChanges({ steps: 0 }), "steps: until stopped");
  assert.equal(describeChanges({ steps: 6500 }), "steps 6500");
});

test("marker labels close together go to separate rows; far apart they share the top row", () => {
  const m = (step, label) => ({ step, label });
  // 0.1 px per step: a 20-character label is ~120 px = 1,200 steps wide
  const markers = [m(1000, "objective → wgan-gp"), m(1300, "gp 1, lr_g 5e-4"), m(1500, "beta1 0.5"), m(5000, "+minibatch_disc")];
  assert.deepEqual(labelRows(markers, 0.1), [0, 1, 2, 0]);
  assert.deepEqual(labelRows(markers, 10), [0, 0, 0, 0]); // zoomed in: room for all in one row
  // past three rows, the row that frees up first
  const crowd = [m(0, "aaaaaaaaaa"), m(1, "aaaaaaaaaa"), m(2, "a"), m(3, "aaaaaaaaaa")];
  assert.deepEqual(labelRows(crowd, 1), [0, 1, 2, 2]);
  // given in any order, rows follow the steps
  assert.deepEqual(labelRows([markers[1], markers[0]], 0.1), [1, 0]);
  // a claim's label ends at its line (right-anchored) and a change's label must clear it
  const withClaim = [m(1000, "speed 2, tick_every 1"), { step: 3000, label: "claim: ≤ 3 of 8 modes covered", kind: "claim" }];
  assert.deepEqual(labelRows(withClaim, 0.1), [1, 0]); // 1000–1,950 px·10 overlaps 1,240–3,000
  assert.deepEqual(labelRows(withClaim, 1), [0, 0]); // wide enough: both on the top row
  const lay = markerLayout(markers, true, labelRows(markers, 0.1));
  assert.deepEqual(lay.annotations.map((a) => a.y), [1, 0.87, 0.74, 1]);
  const claim = markerLayout([{ step: 3000, label: "claim", kind: "claim" }]);
  assert.equal(claim.shapes[0].line.color, "#2e9e5b");
  assert.equal(claim.annotations[0].xanchor, "right"); // left of its line
  assert.equal(claim.annotations[0].bgcolor, undefined); // hides no curve
});

test("a robust y range is not flattened by one spike, and says what it left out", () => {
  // 150 losses around 0.7 and one gradient-penalty spike of 350
  const v = Array.from({ length: 150 }, (_, i) => 0.6 + 0.2 * Math.sin(i));
  v[40] = 350;
  const r = robustRange(v);
  assert.ok(r.range[1] < 2 && r.range[0] > 0.3, JSON.stringify(r));
  assert.equal(r.clipped, 1);
  assert.equal(r.max, 350);
  // a trend is not an outlier: a steady climb keeps its whole range
  const climb = Array.from({ length: 100 }, (_, i) => i);
  const c = robustRange(climb);
  assert.ok(c.range[0] <= 0 && c.range[1] >= 99 && c.clipped === 0);
  assert.deepEqual(robustRange([null, NaN]).range, null);
  const flat = robustRange([2, 2, 2]);
  assert.ok(flat.range[0] < 2 && flat.range[1] > 2);
});

test("the page's frame rate: frames per second over the last 3 s, decaying when frames stop", () => {
  const times = Array.from({ length: 50 }, (_, i) => 1000 + 100 * i); // 10 a second until 5,900
  const live = frameRate(times, 5900);
  assert.ok(Math.abs(live.fps - 10) < 0.5, live.fps);
  assert.equal(live.sinceMs, 0);
  const stalled = frameRate(times, 8000); // 2.1 s without a frame
  assert.ok(stalled.fps < 4 && stalled.sinceMs === 2100, JSON.stringify(stalled));
  assert.equal(frameRate(times, 20000).fps, 0);
  assert.deepEqual(frameRate([], 100), { fps: null, sinceMs: null });
});

test("the metric picker offers the server's scalars, metrics first, mode counts left out", () => {
  const stats = [
    { name: "step", label: "step", kind: "tick" },
    { name: "steps_per_sec", label: "steps/s", kind: "tick" },
    { name: "loss_d", label: "D loss", kind: "loss", help: "D's loss" },
    { name: "modes_covered", label: "modes covered", kind: "metric" },
    { name: "reverse_kl", label: "reverse KL", kind: "metric" },
    { name: "new_metric", label: "a new one", kind: "metric" },
  ];
  const c = metricChoices(stats);
  assert.deepEqual(c.map((m) => m.key), ["reverse_kl", "new_metric", "loss_d", "steps_per_sec"]);
  assert.equal(c[2].label, "D loss");
  assert.equal(c[2].help, "D's loss");
  assert.ok(c.every((m) => /^#[0-9a-f]{6}$/.test(m.color)), "every choice has a colour");
  assert.deepEqual(metricChoices(undefined), []);
});

test("the first chart draws the run's family's own charted stats, norms aside", () => {
  const evolution = { name: "evolution", stats: [
    { name: "fitness_mean", label: "mean fitness", kind: "fitness", show: ["card", "chart", "csv"], color: "#15803d" },
    { name: "fitness_max", label: "best fitness", kind: "fitness", show: ["chart", "csv"], color: "" },
    { name: "hidden", label: "csv only", kind: "fitness", show: ["csv"] },
  ] };
  const f = familyTraces(evolution);
  assert.deepEqual(f.traces.map((t) => t.key), ["fitness_mean", "fitness_max"]);
  assert.equal(f.traces[0].color, "#15803d");
  assert.ok(f.traces[1].color.startsWith("#")); // the page picks one when the server gives none
  assert.equal(f.title, "fitness");
  assert.deepEqual(f.terms, []);
  const gan = { name: "gan", stats: [
    { name: "loss_d", label: "D loss", kind: "loss", show: ["chart", "csv"], color: "#e4572e" },
    { name: "term_gp", label: "GP term", kind: "term", show: ["chart", "csv"], color: "#a05cd6" },
    { name: "grad_norm_d", label: "‖∇D‖", kind: "norm", show: ["chart", "csv"] },
  ] };
  assert.deepEqual(familyTraces(gan).traces.map((t) => t.key), ["loss_d", "term_gp"]);
  assert.deepEqual(familyTraces(gan).terms, ["term_gp"]);
  assert.equal(familyTraces(gan).title, "loss");
  assert.ok(familyTraces(gan).traces.every((t) => t.axis === "y")); // one unit: one axis
  // a VAE: reconstruction and KL in nats on the left, its plain numbers (the KL weight, 0..β;
  // active units, 0..16) on a right axis, so they cannot squash the nats flat
  const vae = { name: "vae", stats: [
    { name: "recon_loss", label: "reconstruction", kind: "vae", unit: "nats", show: ["chart", "csv"] },
    { name: "kl", label: "KL", kind: "vae", unit: "nats", show: ["card", "chart", "csv"] },
    { name: "kl_weight", label: "KL weight", kind: "vae", unit: "", show: ["chart", "csv"] },
    { name: "active_units", label: "active units", kind: "vae", unit: "", show: ["card", "chart", "csv"] },
  ] };
  const v = familyTraces(vae);
  assert.deepEqual(v.traces.map((t) => t.axis), ["y", "y", "y2", "y2"]);
  assert.deepEqual(v.traces.map((t) => t.label), ["reconstruction", "KL", "KL weight →", "active units →"]);
  assert.equal(v.title, "nats"); // the unit, not the family's kind "vae"
  assert.equal(v.title2, "KL weight, active units");
  // no family named (an older server): the losses and terms of the server's stats
  setStats(STATS);
  assert.equal(familyTraces(null).traces, LOSS_TRACES);
  assert.deepEqual(familyTraces(null).terms, ["term_gp"]);
});

test("a marker ahead of the data is a note at the edge, not a line stretching the step axis", () => {
  const claim = { step: 4000, label: "claim: memorised ≥ 50 %", kind: "claim" };
  const change = { step: 300, label: "lr 0.001", kind: "config" };
  // a loaded machine has trained 730 steps of the claim's 4,000: the axis keeps to the data
  const slow = markersInSpan([change, claim], 10, 730);
  assert.deepEqual(slow.shown, [change]);
  assert.equal(slow.ahead, "claim: memorised ≥ 50 % at step 4,000 →");
  assert.equal(markerLayout(slow.shown).shapes.length, 1);
  // once the data reaches the claim it is drawn at its step like any marker
  assert.deepEqual(markersInSpan([change, claim], 10, 4000), { shown: [change, claim], ahead: "" });
  // a change just applied, a step or a tick ahead of the last drawn tick, is a line at once
  const just = { step: 740, label: "objective → wgan-gp", kind: "config" };
  assert.deepEqual(markersInSpan([just, claim], 10, 730), { shown: [just], ahead: slow.ahead });
  // before a second tick there is no span yet: every marker is drawn (the axis is pinned to them)
  assert.deepEqual(markersInSpan([claim], 0, 0), { shown: [claim], ahead: "" });
});

test("a claim's label near the first step runs right of its line, so the axis keeps to the data", () => {
  const claim = { step: 300, label: "claim: ≤ 2 of 8 modes covered", kind: "claim" }; // 29 chars
  const w = 29 * 5.6 + 8; // 170.4 px
  // 420 px for steps 0..1,750: step 300 is 72 px in, too close to the left edge for 170 px of text
  const px = 420 / 1750;
  assert.ok(300 * px < w);
  assert.equal(labelLeft(claim, 0, px), false);
  assert.equal(markerLayout([claim], true, null, 0, px).annotations[0].xanchor, "left");
  // with the data at 0..350 the claim is 360 px in: its label ends at its line as before
  assert.equal(labelLeft(claim, 0, 420 / 350), true);
  assert.equal(markerLayout([claim], true, null, 0, 420 / 350).annotations[0].xanchor, "right");
  assert.equal(markerLayout([claim]).annotations[0].xanchor, "right"); // no chart scale given
  // a change's label always runs right
  assert.equal(labelLeft({ step: 900, label: "lr", kind: "config" }, 0, 1), false);
});
