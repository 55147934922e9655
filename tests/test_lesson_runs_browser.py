"""A teacher and two students in real Chromium at 1280×800, against `collapse-lab serve --token`:
three lessons back to back leave nothing training; each step that states an outcome shows the
run's own measured value beside the spread over seeds; the teacher looks things up and stops runs
from History without moving the class, and shows the class a run on purpose; Clone compares the
run with its remedy twin's whole recipe and pauses the original.

Screenshots go to tests/screenshots/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from browser_harness import SHOTS, browser_fixture, js, require_chromium, running_server, wait_js

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

VIEWPORT = {"width": 1280, "height": 800}
TOKEN = "class-secret-42"
ACTIVE = ("queued", "running", "paused", "stopping")
# what a page shows after a server round trip (a class-channel message: the teacher's page → the
# server → each page, which may then open a run) is waited for this long: a 2-core CI machine
# that trains three runs and draws three pages can take seconds where an idle one takes a
# fraction of one
ROUND_TRIP_MS = 30_000

require_chromium()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("data"), max_workers=3, token=TOKEN) as url:
        yield url


browser = browser_fixture()


def api(server: str):
    return httpx.Client(base_url=server, headers={"authorization": f"Bearer {TOKEN}"},
                        timeout=30)


def active(server: str) -> list[dict]:
    with api(server) as c:
        return [r for r in c.get("/api/runs").json()["runs"] if r["status"] in ACTIVE]


def wait_nothing_training(server: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while active(server):
        assert time.monotonic() < end, f"still training: {active(server)}"
        time.sleep(0.3)


def page(browser, errors: list[str], name: str):
    ctx = browser.new_context(viewport=VIEWPORT)
    pg = ctx.new_page()
    pg.on("pageerror", lambda e: errors.append(f"{name}: {e}"))
    return pg


def ready(pg) -> None:
    pg.wait_for_selector("body[data-ready='1']", timeout=ROUND_TRIP_MS)


def topbar_fits(pg) -> list[str]:
    """The top bar's controls that stick out of the window (none should, at 1280 px wide)."""
    return js(pg, "[...document.querySelectorAll('.topbar > *, .topbar .class-bar > *')]"
                  ".filter(e => e.offsetParent !== null && "
                  "e.getBoundingClientRect().right > window.innerWidth + 0.5)"
                  ".map(e => e.id || e.className)")


def pick_lesson(teacher, name: str) -> None:
    teacher.click("#lessons-open")
    teacher.click(f".lesson-choice[data-lesson='{name}']")


def lesson_run(teacher, extra: str = "true") -> str:
    """Wait until the live view shows the run the lesson just started, and return its id.
    (Until the lesson's run opens, the live view still holds the run it showed before.)"""
    wait_js(teacher, "app.live.run && app.lessons.owned.length === 1 "
                     f"&& app.live.run.id === app.lessons.owned[0] && ({extra})", timeout=60_000)
    return js(teacher, "app.live.run.id")


def next_step(teacher, step: int) -> None:
    teacher.click("#lesson-next")
    wait_js(teacher, f"app.classroom.sent && app.classroom.sent.lesson_step === {step}")


def test_three_lessons_leave_nothing_training_and_the_teacher_acts_privately(browser, server):
    errors: list[str] = []
    teacher = page(browser, errors, "teacher")
    students = [page(browser, errors, f"student {i}") for i in (1, 2)]
    teacher.goto(f"{server}/?token={TOKEN}")
    ready(teacher)
    for s in students:
        s.goto(server + "/")
        ready(s)
    teacher.wait_for_function(
        "() => document.getElementById('audience').textContent.startsWith('2 watching')")
    assert "nothing yet" in teacher.inner_text("#class-sees-text")

    # ------------------------------------------------------------ lesson 1: one run
    pick_lesson(teacher, "collapse-ring")
    lesson_run(teacher)
    first = js(teacher, "app.live.run")
    assert first["config"]["steps"] == 6000  # as long as the lesson needs, not endless
    for s in students:
        wait_js(s, f"app.state.run === '{first['id']}'", timeout=ROUND_TRIP_MS)
    assert teacher.inner_text("#class-sees-text") == "Presenting"
    # the preset switch would undo the step: not offered during the lesson
    assert teacher.is_hidden("#apply-preset") and teacher.is_disabled("#preset")
    next_step(teacher, 1)
    next_step(teacher, 2)
    # the step's claim is over ten seeds; beside it, this run's own count as it trains
    wait_js(teacher, "/of 8 modes covered at step/.test("
                     "document.getElementById('lesson-outcome').textContent)", timeout=120_000)
    outcome = teacher.inner_text("#lesson-outcome")
    assert "Over seeds: 1–2 of 8 covered at step 3,000 on 10 seeds" in outcome
    covered = js(teacher, "app.live.log.last.modes_covered")
    assert f"{covered} of 8" in outcome or "modes covered" in outcome
    text = teacher.inner_text(".lesson-text")
    assert "{{" not in text and "one on 8 seeds of 10" in text
    wait_js(students[0], "/This run:/.test(document.getElementById('lesson-outcome')"
                         "?.textContent || '')", timeout=ROUND_TRIP_MS)
    teacher.screenshot(path=SHOTS / "lessons-01-outcome-teacher.png")
    assert topbar_fits(teacher) == []
    students[0].screenshot(path=SHOTS / "lessons-02-outcome-student.png")
    teacher.click("#lesson-end")
    wait_nothing_training(server)
    for s in students:
        wait_js(s, "document.getElementById('lesson').hidden", timeout=ROUND_TRIP_MS)
    with api(server) as c:  # stopped, not deleted: kept in History
        assert c.get(f"/api/runs/{first['id']}").json()["status"] == "done"

    # ------------------------------------------------------------ lesson 2: a comparison
    pick_lesson(teacher, "why-collapse")
    wait_js(teacher, "app.state.view === 'compare' && app.compare.cards.size === 2",
            timeout=60_000)
    pair = js(teacher, "app.state.runs")
    for s in students:
        wait_js(s, f"app.state.view === 'compare' && app.state.runs.join() === '{','.join(pair)}'",
                timeout=ROUND_TRIP_MS)
    # the top bar names the comparison, not an older run; the sidebar shows what the pair shares
    title = teacher.inner_text("#run-title")
    assert title.startswith("comparison of 2 runs") and "ring8" in title and "seed 3" in title
    assert first["id"] not in title
    assert teacher.input_value("#knob-dataset") == "ring8"
    assert teacher.is_visible("#compare-shown") and not js(
        teacher, "document.getElementById('compare-new').open")
    next_step(teacher, 1)
    next_step(teacher, 2)
    wait_js(teacher, "(document.querySelector('#lesson-outcome .outcome-here').textContent"
                     ".match(/ of 8 at step/g) || []).length === 2", timeout=120_000)
    # the box names each run as its card does, by what differs
    outcome = teacher.inner_text("#lesson-outcome")
    assert outcome.startswith("These runs:") and "β1 0.9: " in outcome and "β1 0.5: " in outcome
    teacher.screenshot(path=SHOTS / "lessons-03-compare-outcome.png")

    # ------------------------------------------------------------ lesson 3, picked straight away
    pick_lesson(teacher, "wgan-gp-live")  # the comparison's runs stop: the lesson moved on
    run3 = lesson_run(teacher)  # not the first lesson's run, which the live view held till now
    assert run3 != first["id"]
    with api(server) as c:
        for rid in pair:
            assert c.get(f"/api/runs/{rid}").json()["status"] in ("stopping", "done")
    wait_js(teacher, "app.live.log.last && app.live.log.last.step >= 200", timeout=90_000)
    next_step(teacher, 1)  # the live switch to WGAN-GP
    wait_js(teacher, "app.live.run.config.objective === 'wgan-gp'", timeout=ROUND_TRIP_MS)
    next_step(teacher, 2)
    wait_js(teacher, "/after the change/.test(document.getElementById('lesson-outcome')"
                     ".textContent)", timeout=120_000)
    # the figure the narration quotes is the measured one (server/lesson_facts.json)
    facts = json.loads((Path(__file__).resolve().parent.parent / "server" / "lesson_facts.json")
                       .read_text())["live_switch"]
    met, seeds = facts["wgan-gp-ring8"]["met"], facts["seeds"]
    assert f"on {met} seeds of {seeds}" in teacher.inner_text("#lesson-outcome")
    for s in students:
        wait_js(s, f"app.state.run === '{run3}' && document.getElementById('lesson-step')"
                   ".dataset.step === '2'", timeout=ROUND_TRIP_MS)
    teacher.screenshot(path=SHOTS / "lessons-04-switch-outcome.png")
    teacher.click("#lesson-end")
    wait_nothing_training(server)

    # ------------------------------------------------------------ private until presented
    pick_lesson(teacher, "collapse-ring")
    shown = lesson_run(teacher)
    for s in students:
        wait_js(s, f"app.state.run === '{shown}'", timeout=ROUND_TRIP_MS)
    # a student's own run, to stop from History
    teacher.click("#class-open")
    teacher.check("#class-students")
    teacher.click("#class-open")
    student = students[1]
    wait_js(student, "document.body.dataset.role === 'student'", timeout=ROUND_TRIP_MS)
    # the follow button stays where it is while the connection badge's text changes each second
    box = student.locator("#follow-toggle").bounding_box()
    student.click("#follow-toggle")
    wait_js(student, "!app.classroom.follow.following", timeout=ROUND_TRIP_MS)
    student.click("#start")
    wait_js(student, "app.live.run && app.live.run.mine", timeout=ROUND_TRIP_MS)
    own = js(student, "app.live.run.id")
    wait_js(student, "document.getElementById('conn').dataset.state === 'open'",
            timeout=ROUND_TRIP_MS)
    moved = student.locator("#follow-toggle").bounding_box()
    assert abs(moved["x"] + moved["width"] - box["x"] - box["width"]) < 1, (box, moved)
    student.click("#follow-toggle")  # back with the class
    wait_js(student, "app.classroom.follow.following", timeout=ROUND_TRIP_MS)
    # re-attaching shows the presented run at once; its history and socket follow
    wait_js(student, f"app.state.run === '{shown}'", timeout=ROUND_TRIP_MS)

    # the teacher opens History: the class stays on the lesson's run
    teacher.click(".tab[data-view='history']")
    teacher.wait_for_selector(f"#history-table tr[data-run='{own}'] .stop-run")
    time.sleep(1.0)
    for s in students:
        assert js(s, "app.state.view") == "live" and js(s, "app.state.run") == shown
    sees = teacher.inner_text("#class-sees-text")
    assert sees.startswith("Class sees:") and shown in sees
    assert "lesson step 1" in teacher.get_attribute("#class-sees-text", "title")
    assert teacher.is_visible("#present-this")
    teacher.screenshot(path=SHOTS / "lessons-05-history-private.png")
    # ... stops the student's run from there, and the class does not move
    teacher.click(f"#history-table tr[data-run='{own}'] .stop-run")
    wait_js(student, "true")
    end = time.monotonic() + 30
    while True:
        with api(server) as c:
            if c.get(f"/api/runs/{own}").json()["status"] == "done":
                break
        assert time.monotonic() < end
        time.sleep(0.3)
    for s in students:
        assert js(s, "app.state.view") == "live" and js(s, "app.state.run") == shown
    # opens a finished run privately, then shows it to the class on purpose
    teacher.click(f"#history-table tr[data-run='{first['id']}'] button:has-text('Replay')")
    wait_js(teacher, f"app.state.run === '{first['id']}'", timeout=ROUND_TRIP_MS)
    time.sleep(1.0)
    assert js(students[0], "app.state.run") == shown
    teacher.click("#present-this")
    for s in students:
        wait_js(s, f"app.state.run === '{first['id']}'", timeout=ROUND_TRIP_MS)
    assert teacher.inner_text("#class-sees-text") == "Presenting"

    # ------------------------------------------------------------ stop everything from History
    teacher.click(".tab[data-view='history']")
    teacher.wait_for_selector("#history-stop-all:not([hidden])")
    teacher.screenshot(path=SHOTS / "lessons-06-history-stop.png")
    assert topbar_fits(teacher) == []
    teacher.click("#history-stop-all")
    wait_nothing_training(server)
    teacher.wait_for_function(
        "() => document.getElementById('history-active').textContent === 'nothing training'",
        timeout=ROUND_TRIP_MS)
    assert teacher.is_hidden("#history-stop-all")
    assert js(students[0], "app.state.run") == first["id"]
    teacher.click("#lesson-end")
    wait_nothing_training(server)

    # ------------------------------------------------------------ clone: the twin's recipe
    teacher.click(".tab[data-view='live']")
    teacher.select_option("#preset", "collapse-ring8")
    teacher.click("#start")
    wait_js(teacher, "app.live.run && app.live.run.status === 'running'", timeout=60_000)
    original = js(teacher, "app.live.run.id")
    assert teacher.input_value("#clone-objective") == "preset:wgan-gp-ring8"
    teacher.click("#clone")
    wait_js(teacher, "app.state.view === 'compare' && app.compare.cards.size === 2",
            timeout=60_000)
    configs = js(teacher, "[...app.compare.cards.values()].map(c => c.run.config)")
    assert [c["objective"] for c in configs] == ["nsgan", "wgan-gp"]
    twin = configs[1]
    assert (twin["gp"], twin["beta1"], twin["beta2"], twin["lr_g"]) == (1.0, 0.5, 0.9, 0.0005)
    assert configs[0]["beta1"] == 0.9 and configs[0]["seed"] == twin["seed"]
    with api(server) as c:
        wait = time.monotonic() + 60  # at its next step boundary
        while c.get(f"/api/runs/{original}").json()["status"] != "paused":
            assert time.monotonic() < wait, "the original run trains on unseen"
            time.sleep(0.3)
    assert "collapse-ring8 vs wgan-gp-ring8" in teacher.inner_text("#run-title")
    teacher.screenshot(path=SHOTS / "lessons-07-clone-twin.png")
    with api(server) as c:
        c.post("/api/runs/stop", json={"all": True})
    wait_nothing_training(server)

    for pg in (teacher, *students):
        pg.context.close()
    assert not errors, errors


def test_the_class_follows_a_lesson_of_every_family_and_a_student_runs_one(browser, server):
    """The lessons beyond the GAN in front of a class: each starts its family's run on the
    teacher's page, the student's page follows it with that family's panels and numbers; a student
    the teacher lets run starts a run of another family, which the server counts as theirs."""
    errors: list[str] = []
    teacher = page(browser, errors, "teacher")
    student = page(browser, errors, "student")
    teacher.goto(f"{server}/?token={TOKEN}")
    ready(teacher)
    student.goto(server + "/")
    ready(student)
    teacher.wait_for_function(
        "() => /^[1-9]\\d* watching/.test(document.getElementById('audience').textContent)")
    # students watch only (whatever an earlier lesson of this server allowed)
    teacher.click("#class-open")
    teacher.uncheck("#class-students")
    teacher.click("#class-open")
    wait_js(student, "document.body.dataset.role === 'viewer'", timeout=ROUND_TRIP_MS)
    for lesson, family in (("evolution", "evolution"), ("vae", "vae"),
                           ("memorisation", "diffusion"), ("decoding", "decoding")):
        pick_lesson(teacher, lesson)
        rid = lesson_run(teacher, f"app.live.run.config.family === '{family}'")
        # the step axes start at the run's first step, not around the preset's claim alone
        wait_js(teacher, "app.live.charts.markers.length > 0", timeout=ROUND_TRIP_MS)
        for chart in ("chart-loss", "chart-modes"):
            (lo, hi), first = js(teacher, f"[document.getElementById('{chart}').layout.xaxis"
                                          ".range, app.live.charts.stepSeen ? "
                                          "app.live.charts.steps[0] : 0]")
            assert lo <= first < hi, (family, chart, lo, hi, first)
        wait_js(student, f"app.state.run === '{rid}' && app.live.run "
                         f"&& app.live.run.id === '{rid}'", timeout=ROUND_TRIP_MS)
        # the student's page draws the family's own ticks: its stats, under its family's cards
        wait_js(student, "app.live.log.last && app.live.log.last.step > 0", timeout=90_000)
        assert js(student, "app.live.run.config.family") == family
        assert js(student, "document.body.dataset.role") == "viewer"
        assert student.is_hidden("#start")  # watch only until the teacher lets students run
        # a first visit's welcome offers to start a run: not on a page that follows a lesson
        assert student.is_hidden("#welcome") and student.is_hidden("#welcome-preset")
        student.screenshot(path=SHOTS / f"lessons-family-{family}-student.png")
    teacher.click("#lesson-end")
    wait_nothing_training(server)

    teacher.click("#class-open")
    teacher.check("#class-students")
    teacher.click("#class-open")
    wait_js(student, "document.body.dataset.role === 'student'", timeout=ROUND_TRIP_MS)
    student.click("#follow-toggle")
    student.select_option("#family", "vae")
    wait_js(student, "app.controls && document.getElementById('knob-beta')", timeout=ROUND_TRIP_MS)
    student.click("#start")
    wait_js(student, "app.live.run && app.live.run.mine && app.live.run.config.family === 'vae'",
            timeout=ROUND_TRIP_MS)
    own = js(student, "app.live.run")
    with api(server) as c:
        listed = c.get(f"/api/runs/{own['id']}").json()
    # the API says whose kind of run it is (never who): a student's, not the teacher's
    assert listed["config"]["family"] == "vae" and listed["owner"] == own["owner"] == "student"
    assert listed["owner"] != js(teacher, "app.classroom.session.owner")
    with api(server) as c:
        c.post("/api/runs/stop", json={"all": True})
    wait_nothing_training(server)
    for pg in (teacher, student):
        pg.context.close()
    assert not errors, errors
