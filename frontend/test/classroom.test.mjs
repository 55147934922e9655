// Role gating, following the teacher, lesson stepping and drawn/uploaded points: the page's pure
// classroom logic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { powers, roleLabel, roleHint } from "../js/role.js";
import { FollowSwitch, Latest, applyPresented, describePresented, presentedOf, samePresented, sameScene } from "../js/follow.js";
import { LessonCursor, describeAction, measuredOutcome, paragraphs, startBody, LOOK_TARGETS } from "../js/lesson.js";
import { queueText } from "../js/history.js";
import { LIMITS, blobPoints, checkDrawing, extentOf, parseCSV, rng, sprayPoints, toCSV } from "../js/points.js";
import { initialState } from "../js/state.js";

test("a viewer may do nothing that acts; a student only on their own runs", () => {
  const viewer = powers({ role: "viewer", owner: "student", students_may_run: false });
  assert.equal(viewer.watchOnly, true);
  for (const k of ["start", "compare", "remove", "steer", "present"]) assert.equal(viewer[k], false, k);
  assert.equal(roleLabel(viewer), "Watch only");
  assert.match(roleHint(viewer), /Watch only/);
  const student = { role: "viewer", owner: "student", students_may_run: true };
  assert.equal(powers(student).start, true);
  assert.equal(powers(student).compare, false);
  assert.equal(powers(student, { owner: "teacher" }).steer, false);
  assert.equal(powers(student, { owner: "student", mine: false }).steer, false);
  assert.equal(powers(student, { owner: "student", mine: true }).steer, true);
  // no student session (too many new ones from one address): watch only
  assert.equal(powers({ ...student, owner: null }).watchOnly, true);
  assert.match(roleHint(powers(student, { owner: "teacher" }), { owner: "teacher" }), /not yours/);
  for (const role of ["teacher", "local"]) {
    const p = powers({ role, owner: "teacher", students_may_run: false }, { owner: "student", mine: false });
    assert.equal(p.steer && p.start && p.compare && p.remove, true);
  }
  assert.equal(powers({ role: "teacher" }).present, true);
  assert.equal(powers({ role: "local" }).present, false);
  assert.equal(powers(null).watchOnly, true); // before the server answered: nothing acts
});

test("a follower takes the presented view and keeps its own settings", () => {
  const mine = { ...initialState(), config: { lr_g: 0.0005 }, preset: "gp-ring8" };
  const teacher = { ...initialState(), run: "r1", replay: 200, show: { heat: false, real: true, fake: true, arrows: true } };
  const p = presentedOf(teacher, { name: "collapse-ring", step: 2 });
  assert.deepEqual(p.show, teacher.show);
  assert.equal(p.lesson, "collapse-ring");
  assert.equal(p.lesson_step, 2);
  const { state, reopen, replayOnly } = applyPresented(mine, p);
  assert.equal(state.run, "r1");
  assert.equal(state.replay, 200);
  assert.equal(state.show.arrows, true);
  assert.deepEqual(state.config, { lr_g: 0.0005 });
  assert.equal(state.preset, "gp-ring8");
  assert.equal(reopen, true);
  assert.equal(replayOnly, false);
  // only the replay step moved: no reopen
  const again = applyPresented(state, { ...p, replay: 400 });
  assert.equal(again.reopen, false);
  assert.equal(again.replayOnly, true);
  assert.equal(samePresented(p, presentedOf(teacher, { name: "collapse-ring", step: 2 })), true);
  assert.equal(samePresented(p, presentedOf(teacher, { name: "collapse-ring", step: 3 })), false);
});

test("a detached viewer stays put and re-attaches to the latest state", () => {
  const f = new FollowSwitch();
  assert.deepEqual(f.receive({ seq: 1, state: { run: "a" } }), { run: "a" });
  assert.equal(f.receive({ seq: 0, state: { run: "old" } }), null); // stale
  assert.equal(f.detach(), true);
  assert.equal(f.detach(), false);
  assert.equal(f.receive({ seq: 2, state: { run: "b" } }), null);
  assert.equal(f.receive({ seq: 3, state: { run: "c" } }), null);
  assert.deepEqual(f.attach(), { run: "c" });
  assert.deepEqual(f.receive({ seq: 4, state: { run: "d" } }), { run: "d" });
});

const LESSON = {
  name: "demo", title: "Demo",
  steps: [
    { title: "one", text: "a\n\nb  c", sources: ["x"], action: { type: "start", preset: "collapse-ring8", set: { steps: 100000 } }, look: ["samples"] },
    { title: "two", text: "t", sources: ["x"], action: { type: "none" }, look: [] },
    { title: "three", text: "t", sources: ["x"], action: { type: "change", set: { objective: "wgan-gp", gp: 1 } }, look: ["occupancy"] },
    { title: "four", text: "t", sources: ["x"], action: { type: "replay", step: 600 }, look: [] },
  ],
};

test("presented states are applied one at a time, the newest last", async () => {
  const applied = [];
  let running = 0, most = 0;
  const gates = [];
  const latest = new Latest(async (v) => {
    running += 1;
    most = Math.max(most, running);
    await new Promise((resolve) => gates.push(resolve)); // as slow as the test says
    applied.push(v);
    running -= 1;
  });
  const done = latest.push("run a");
  latest.push("run b"); // arrive while "run a" still opens
  latest.push("run c");
  assert.equal(gates.length, 1); // only "run a" is being applied
  gates[0]();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(gates.length, 2); // then the newest that waited, never "run b"
  gates[1]();
  await done;
  assert.deepEqual(applied, ["run a", "run c"]);
  assert.equal(most, 1);
  assert.equal(latest.running, null);
  // an error is reported and the next value still applies
  const errors = [];
  const failing = new Latest(async (v) => { if (v === 1) throw new Error("gone"); applied.push(v); },
    (e) => errors.push(e.message));
  const p = failing.push(1);
  failing.push(2);
  await p;
  assert.deepEqual(errors, ["gone"]);
  assert.equal(applied.at(-1), 2);
});

test("lesson steps move with clamping and run each action once", () => {
  const c = new LessonCursor(LESSON);
  assert.equal(c.label(), "Step 1 of 4");
  assert.equal(c.prev(), false);
  assert.equal(c.pendingAction().type, "start");
  c.markDone();
  assert.equal(c.pendingAction(), null);
  assert.equal(c.next(), true);
  assert.equal(c.pendingAction(), null); // a text-only step
  c.next();
  assert.equal(c.pendingAction().type, "change");
  c.markDone();
  c.prev();
  c.prev();
  assert.equal(c.pendingAction(), null); // back at step 1: the run is not started again
  assert.equal(c.go(99), true);
  assert.equal(c.atEnd, true);
  assert.equal(c.step, 3);
  assert.deepEqual(paragraphs(LESSON.steps[0].text), ["a", "b c"]);
  assert.equal(describeAction(LESSON.steps[2].action), "Change objective, gp on the running run");
  assert.equal(describeAction(LESSON.steps[3].action), "Stop and replay from step 600");
  assert.deepEqual(startBody(LESSON.steps[0].action, "Demo"), { steps: 100000, label: "lesson: Demo", preset: "collapse-ring8" });
  assert.equal(LOOK_TARGETS.occupancy, "chart-bars");
});

test("drawn blobs are seeded and become x,y,mode rows", () => {
  const a = blobPoints({ x: 1, y: -1, std: 0.2 }, 400, rng(7));
  const b = blobPoints({ x: 1, y: -1, std: 0.2 }, 400, rng(7));
  assert.deepEqual(a, b);
  const mx = a.reduce((s, p) => s + p[0], 0) / a.length;
  const sd = Math.sqrt(a.reduce((s, p) => s + (p[0] - mx) ** 2, 0) / a.length);
  // the mean of 400 draws is within 4 standard errors (0.2/√400 = 0.01) of the centre
  assert.ok(Math.abs(mx - 1) < 0.04, `mean ${mx}`);
  assert.ok(Math.abs(sd - 0.2) < 0.03, `std ${sd}`);
  const spray = sprayPoints(0, 0, 0.5, 200, rng(1));
  assert.ok(spray.every(([x, y]) => Math.hypot(x, y) <= 0.5 + 1e-12));
  const groups = [{ points: a.slice(0, 10) }, { points: spray.slice(0, 12) }];
  const csv = toCSV(groups);
  assert.equal(csv.split("\n")[0], "x,y,mode");
  assert.equal(csv.trim().split("\n").length, 23);
  const back = parseCSV(csv);
  assert.equal(back.labelled, true);
  assert.deepEqual(back.groups.map((g) => g.points.length), [10, 12]);
  assert.equal(checkDrawing(groups), null);
  assert.match(checkDrawing([{ points: a.slice(0, 3) }, { points: a.slice(0, 30) }]), /mode 1 has 3 points/);
  assert.match(checkDrawing([]), /at least one/);
  const [x0, x1] = extentOf(groups);
  assert.ok(x0 < Math.min(...a.slice(0, 10).map((p) => p[0])) && x1 > 0);
});

test("bad CSVs are named before anything is sent", () => {
  const rows = (n, f) => Array.from({ length: n }, (_, i) => f(i)).join("\n");
  assert.match(parseCSV(`x,y,z,w\n${rows(30, () => "1,2,3,4")}`).error, /columns x,y or x,y,mode/);
  assert.match(parseCSV(`x,y\n${rows(30, () => "1,2")}\n1,NaN`).error, /line 32: expected two numbers/);
  assert.match(parseCSV(`x,y\n${rows(30, () => "1,2")}\n1,Infinity`).error, /line 32: values must be finite/);
  assert.match(parseCSV(`${rows(30, () => "1,2")}\n1,2,0`).error, /line 31: expected 2 values/);
  assert.match(parseCSV(`${rows(30, () => "1,2,0")}\n1,2,25`).error, /mode must be an integer in \[0, 24\]/);
  assert.match(parseCSV("1,2\n3,4").error, /at least 20 points, got 2/);
  assert.match(parseCSV(rows(LIMITS.maxPoints + 1, () => "1,2")).error, /more than 20,000 points/);
  assert.match(parseCSV("1,2\n", LIMITS.maxBytes + 1).error, /at most 1 MB/);
  const ok = parseCSV(`# my points\nx;y\n${rows(25, (i) => `${i};${-i}`)}`);
  assert.equal(ok.labelled, false);
  assert.equal(ok.groups[0].points.length, 25);
});

test("the teacher's page presents a scene: a replay step or a layer is the same scene, another run is not", () => {
  const a = presentedOf({ ...initialState(), run: "r1" });
  assert.equal(sameScene(a, { ...a, replay: 40, show: { ...a.show, arrows: true } }), true);
  assert.equal(sameScene(a, { ...a, run: "r2" }), false);
  assert.equal(sameScene(a, { ...a, view: "history" }), false);
  assert.equal(sameScene(a, { ...a, view: "compare", runs: ["x", "y"], group: "g1" }), false);
  assert.equal(sameScene(a, null), false);
  assert.match(describePresented(null), /nothing yet/);
  assert.equal(describePresented(a), "run r1, live");
  assert.equal(describePresented({ ...a, replay: 400, lesson: "collapse-ring", lesson_step: 5 }), "run r1, replay at step 400 · lesson step 6");
  assert.equal(describePresented({ ...a, view: "compare", runs: ["x", "y"] }), "a comparison of 2 runs");
  assert.equal(describePresented({ ...a, view: "history" }), "the run list (History)");
});

test("a step's outcome is this run's measured value, counted from the start or the switch", () => {
  const o = { stat: "modes_covered", claim: "c", since: "change" };
  const run = { label: "run r1", tick: { step: 4200, modes_covered: 5 }, changedAt: 3000, k: 8 };
  const names = { label: "modes covered" };
  assert.equal(measuredOutcome(o, [run], names).here, "5 of 8 modes covered at step 4,200 (1,200 after the change)");
  assert.equal(measuredOutcome(o, [{ ...run, changedAt: null }], names).here, "5 of 8 modes covered at step 4,200, not switched yet");
  assert.equal(measuredOutcome({ ...o, since: "start" }, [run], names).here, "5 of 8 modes covered at step 4,200");
  assert.equal(measuredOutcome(o, [{ ...run, tick: null }], names).here, "no tick yet");
  assert.equal(measuredOutcome(o, [], names).here, "no run on screen");
  const two = measuredOutcome({ stat: "modes_covered", claim: "c" }, [
    { label: "nsgan", tick: { step: 900, modes_covered: 1 }, k: 8 },
    { label: "wgan-gp", tick: { step: 900, modes_covered: 8 }, k: 8 }], names).here;
  assert.equal(two, "modes covered: nsgan: 1 of 8 at step 900 · wgan-gp: 8 of 8 at step 900");
  assert.equal(measuredOutcome({ stat: "hq_fraction", claim: "c" }, [{ label: "r", tick: { step: 10, hq_fraction: 0.5 } }], { label: "HQ" }).here, "50.0 % HQ at step 10");
});

test("a queued run says its place and its wait, or what it waits for", () => {
  assert.equal(queueText({ status: "running", queue_position: null }), "");
  assert.equal(queueText({ status: "queued", queue_position: 1, wait_s: 30 }), "1st in the queue, about a minute or less");
  assert.equal(queueText({ status: "queued", queue_position: 2, wait_s: 150 }), "2nd in the queue, about 3 min");
  assert.equal(queueText({ status: "queued", queue_position: 3, wait_s: null }), "3rd in the queue, waits until a run ahead is stopped or ends");
  assert.equal(queueText({ status: "queued", queue_position: 11, wait_s: 7200 }), "11th in the queue, about 2.0 h");
});
