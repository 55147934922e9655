"""A class in real Chromium: a teacher and two students on a token server, through a lesson.

The teacher opens the printed teacher link (the token leaves the address bar), picks a lesson
and moves through it; the viewers' pages follow (same run, view, lesson step and replay step
within FOLLOW_MS of the teacher's page sending it), one detaches and stays put, then
re-attaches; a viewer page has no enabled control that acts and its keys do nothing; students,
once the teacher allows it, start their own runs up to the cap and draw their own data.

Screenshots go to tests/screenshots/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import time

import pytest
from browser_harness import (
    SHOTS,
    browser_fixture,
    js,
    require_chromium,
    running_server,
    wait_js,
)

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

VIEWPORT = {"width": 1280, "height": 800}
TOKEN = "class-secret-42"
# a follower shows what the teacher shows within a second (docs/classroom.md) on a machine that
# is not overloaded; the waits allow a few, for a 2-core CI machine that also trains three runs
# and draws three pages (a worker starting up takes a core for seconds)
FOLLOW_MS = 5000

require_chromium()

# controls a watch-only page may use: they change what it shows, never a run
VIEW_ONLY = {"tab", "share", "follow-toggle", "show-heat", "show-real", "show-arrows",
             "show-manifold", "metric", "png",
             "csv", "history-refresh", "scrub", "scrub-play", "open",
             "lesson-fold", "type-size"}  # folding the narration, the projector's type: the view


def acting_controls(page) -> list[str]:
    """Visible, enabled controls of the page other than the view-only ones."""
    found = page.evaluate("""() => [...document.querySelectorAll('button, input, select, textarea')]
        .filter(e => !e.disabled && e.offsetParent !== null && e.type !== 'file'
                && !e.closest('.modebar'))  // Plotly's zoom and pan: they only change the view
        .map(e => e.id || (e.classList.contains('tab') ? 'tab' : '')
                  || (e.textContent.trim() === 'Open' || e.textContent.trim() === 'Replay'
                      ? 'open' : e.outerHTML.slice(0, 80)))""")
    return sorted(set(found) - VIEW_ONLY)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    # a snapshot every tick: the replay has frames to scrub through even after a short run
    with running_server(data, max_workers=3, token=TOKEN,
                        env={"COLLAPSE_LAB_SNAPSHOT_EVERY": "1"}) as url:
        yield url
    printed = (data / "server.log").read_text()
    assert f"?token={TOKEN}" in printed  # the teacher link was printed, and only there


browser = browser_fixture()


def new_page(browser, errors: list[str], name: str):
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    pg = ctx.new_page()
    pg.on("pageerror", lambda e: errors.append(f"{name}: {e}"))
    return pg


def ready(page) -> None:
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)


def test_a_lesson_with_a_teacher_and_two_students(browser, server):
    errors: list[str] = []
    teacher = new_page(browser, errors, "teacher")
    follower = new_page(browser, errors, "follower")
    explorer = new_page(browser, errors, "explorer")

    # ------------------------------------------------------------ the teacher link
    teacher.goto(f"{server}/?token={TOKEN}")
    ready(teacher)
    assert "token" not in teacher.url and teacher.url.rstrip("/") == server
    assert "collapse_lab_session" not in teacher.evaluate("document.cookie")  # HttpOnly
    assert teacher.inner_text("#role-badge") == "Teacher"
    for pg in (follower, explorer):
        pg.goto(server + "/")
        ready(pg)
        assert pg.inner_text("#role-badge").lower() == "watch only"
        assert "Watch only" in pg.inner_text("#role-note")
    teacher.wait_for_function(
        "() => document.getElementById('audience').textContent.startsWith('2 watching')")

    # the viewer link and its QR code: no token, not 0.0.0.0
    teacher.click("#class-open")
    teacher.wait_for_selector("#viewer-qr")
    link = teacher.inner_text("#viewer-link")
    assert link.startswith("http://") and "token" not in link and "0.0.0.0" not in link
    teacher.wait_for_function("() => document.getElementById('viewer-qr').naturalWidth > 0")
    teacher.click("#class-open")

    # ------------------------------------------------------------ a lesson
    teacher.click("#lessons-open")
    teacher.click(".lesson-choice[data-lesson='collapse-ring']")
    wait_js(teacher, "app.live.run && app.state.run", timeout=60_000)
    run_id = js(teacher, "app.state.run")
    # from the moment the teacher's page has sent it, every follower shows it within FOLLOW_MS
    wait_js(teacher, f"app.classroom.sent && app.classroom.sent.run === '{run_id}'")
    for pg in (follower, explorer):  # every follower on the same run and lesson step, fast
        wait_js(pg, f"app.state.run === '{run_id}'", timeout=FOLLOW_MS)
        wait_js(pg, "document.getElementById('lesson-step')?.dataset.step === '0'",
                timeout=FOLLOW_MS)
    wait_js(teacher, "L.perf.frames.length >= 3", timeout=90_000)
    wait_js(follower, "L.perf.frames.length >= 3", timeout=60_000)

    # a watch-only page: nothing that acts is enabled, the menus show the run's config
    for pg in (follower, explorer):
        assert acting_controls(pg) == [], acting_controls(pg)
        assert pg.is_disabled("#knob-objective")
        assert pg.input_value("#knob-objective") == "nsgan"
    # its keys do nothing: space does not pause the teacher's run
    follower.locator("body").focus()
    follower.keyboard.press("Space")
    follower.keyboard.press("x")
    time.sleep(1.0)
    assert js(teacher, "app.live.run.status") == "running"

    # the teacher steers; the viewers' menus move with the run, never with a click of theirs
    teacher.select_option("#knob-objective", "lsgan")
    wait_js(teacher, "app.live.run.config.objective === 'lsgan'", timeout=30_000)
    wait_js(follower, "app.live.run.config.objective === 'lsgan'", timeout=30_000)
    assert follower.input_value("#knob-objective") == "lsgan"
    teacher.select_option("#knob-objective", "nsgan")
    wait_js(follower, "app.live.run.config.objective === 'nsgan'", timeout=30_000)
    assert follower.input_value("#knob-objective") == "nsgan"

    teacher.screenshot(path=SHOTS / "class-01-teacher.png")
    follower.screenshot(path=SHOTS / "class-02-follower.png")

    # the share link and the address bar carry no token
    teacher.click("#share")
    copied = teacher.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(server) and "token" not in copied and f"run={run_id}" in copied
    assert "token" not in teacher.url

    # one student detaches to explore; the teacher moves on
    explorer.click("#follow-toggle")
    assert explorer.inner_text("#follow-text") == "Exploring on your own"
    teacher.wait_for_function(
        "() => document.getElementById('audience').textContent === '2 watching · 1 following'")
    explorer.click(".tab[data-view='history']")
    teacher.click("#lesson-next")
    wait_js(teacher, "app.classroom.sent.lesson_step === 1")
    wait_js(follower, "document.getElementById('lesson-step').dataset.step === '1'",
            timeout=FOLLOW_MS)
    assert "lesson-look" in follower.get_attribute("#chart-bars", "class") or \
        follower.evaluate("document.getElementById('chart-bars').closest('figure')"
                          ".classList.contains('lesson-look')")
    follower.screenshot(path=SHOTS / "class-03-lesson-step.png")
    for _ in range(3):
        teacher.keyboard.press("PageDown")  # a presenter's clicker
    wait_js(teacher, "app.classroom.sent.lesson_step === 4")
    wait_js(follower, "document.getElementById('lesson-step').dataset.step === '4'",
            timeout=FOLLOW_MS)
    # the detached student stayed where they went
    assert js(explorer, "app.state.view") == "history"
    assert explorer.get_attribute("#lesson-step", "data-step") == "0"
    explorer.screenshot(path=SHOTS / "class-04-detached.png")

    # the last step stops the run and opens its replay at step 400: followers too
    teacher.click("#lesson-next")
    wait_js(teacher, "app.state.replay !== null && app.live.replay", timeout=60_000)
    # (the frame nearest step 400 that was recorded: the run may not have got that far)
    wait_js(teacher, "app.live.replay && app.state.replay === app.live.replay.steps["
                     "Number(document.getElementById('scrub').value)]")
    step = js(teacher, "app.state.replay")
    wait_js(teacher, f"app.classroom.sent.replay === {step}")
    wait_js(follower, f"app.state.replay === {step}", timeout=FOLLOW_MS)
    follower.wait_for_selector("#scrubber:not([hidden])", timeout=30_000)
    # ... and draws that frame, not the last one (its own view of the run loaded the replay too,
    # when the run ended: the later opening wins, however long each download takes)
    wait_js(follower, f"app.live.shown && app.live.shown.step === {step}", timeout=30_000)
    # the teacher scrubs; the follower's replay moves with it
    teacher.fill("#scrub", "2")
    teacher.dispatch_event("#scrub", "input")
    moved = js(teacher, "app.state.replay")
    assert moved != step
    wait_js(teacher, f"app.classroom.sent.replay === {moved}")
    wait_js(follower, f"app.state.replay === {moved} && document.getElementById('scrub')"
                      ".value === '2'", timeout=FOLLOW_MS)

    # one click brings the explorer back to what the teacher shows
    explorer.click("#follow-toggle")
    wait_js(explorer, f"app.state.view === 'live' && app.state.run === '{run_id}'"
                      f" && app.state.replay === {moved}", timeout=FOLLOW_MS)
    wait_js(explorer, "document.getElementById('lesson-step').dataset.step === '5'",
            timeout=FOLLOW_MS)
    follower.screenshot(path=SHOTS / "class-05-follower-replay.png")

    # ------------------------------------------------------------ students' own runs
    teacher.click("#class-open")
    teacher.check("#class-students")
    wait_js(explorer, "document.body.dataset.role === 'student'", timeout=30_000)
    explorer.click("#follow-toggle")  # explore: open a fresh live view of their own
    explorer.click("#draw-open")
    canvas = explorer.locator("#draw-canvas")
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    r = min(box["width"], box["height"]) * 0.3
    for dx, dy in ((-r, 0), (r, 0), (0, -r)):
        explorer.mouse.click(cx + dx, cy + dy)
    assert explorer.inner_text("#draw-status").startswith("3 modes · 900 points")
    explorer.screenshot(path=SHOTS / "class-06-drawing.png")
    explorer.click("#draw-train")
    wait_js(explorer, "app.live.run && app.live.run.config.dataset === 'csv'", timeout=30_000)
    wait_js(explorer, "L.perf.frames.length >= 3 && app.live.dataset"
                      " && app.live.dataset.num_modes === 3", timeout=90_000)
    wait_js(explorer, "app.live.charts.lastOcc && app.live.charts.lastOcc.length === 3")
    mine = js(explorer, "app.live.run")
    assert mine["owner"] == "student" and mine["mine"] is True
    assert js(explorer, "app.live.dataset.mode_names") == ["blob 1", "blob 2", "blob 3"]
    explorer.wait_for_timeout(1500)
    explorer.screenshot(path=SHOTS / "class-07-drawn-dataset.png")
    # the student steers their own run
    assert not explorer.is_disabled("#knob-lr_g")
    assert not explorer.is_disabled("#stop")
    # over the cap: a clear refusal, and nothing started
    explorer.click("#start")
    # (the refusal, not another banner: a reconnecting socket's or a queued run's)
    explorer.wait_for_function(
        "() => /1 active run at a time/.test(document.getElementById('banner').textContent)"
        " && !document.getElementById('banner').hidden")
    assert js(explorer, "app.live.run.id") == mine["id"]
    explorer.screenshot(path=SHOTS / "class-08-student-cap.png")

    # the teacher sees the student's run, shows it to the class, and stops it
    teacher.wait_for_selector(f"#class-runs li[data-run='{mine['id']}']", timeout=30_000)
    teacher.screenshot(path=SHOTS / "class-09-teacher-students.png")
    teacher.click(f"#class-runs li[data-run='{mine['id']}'] button:has-text('Show the class')")
    wait_js(follower, f"app.state.run === '{mine['id']}'", timeout=30_000)
    teacher.click(f"#class-runs li[data-run='{mine['id']}'] button:has-text('Stop')")
    wait_js(explorer, "['done', 'failed'].includes(app.live.run.status)", timeout=60_000)
    assert js(explorer, "app.live.run.status") == "done"

    for pg in (teacher, follower, explorer):
        pg.context.close()
    assert not errors, errors
