"""Names in a real Chromium: a student gives a name on joining, the teacher's Class panel shows
it beside the student's run and removes it, the student's page asks again; the teacher signs
out. Screenshots under tests/screenshots/ (names-*.png)."""

from __future__ import annotations

import pytest
from browser_harness import (
    SHOTS,
    browser_fixture,
    js,
    open_page,
    server_fixture,
    wait_js,
    watched_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]
TOKEN = "names-secret-1"
server = server_fixture(max_workers=2, token=TOKEN,
                        env={"COLLAPSE_LAB_STUDENTS_MAY_RUN": "true"})
browser = browser_fixture()
SIZE = {"viewport": {"width": 1280, "height": 800}}


def test_a_students_name_shows_to_the_teacher_and_can_be_removed(browser, server):
    with watched_page(browser, **SIZE) as t, watched_page(browser, **SIZE) as s:
        open_page(t, f"{server}/?token={TOKEN}")
        open_page(s, f"{server}/")
        s.wait_for_selector("#name-box:not([hidden])")
        s.fill("#student-name", "Ana \u202eMaria")  # a bidi override is dropped
        s.click("#name-box button[type=submit]")
        s.wait_for_selector("#student-named:not([hidden])")
        assert s.inner_text("#student-named") == "The class sees you as Ana Maria."
        s.screenshot(path=SHOTS / "names-1-student.png")
        # the student's own run: steerable on their page, named on the teacher's
        s.select_option("#preset", "collapse-ring8")
        s.click("#start")
        wait_js(s, "app.live.run && app.live.run.mine === true", timeout=60_000)
        assert not s.is_disabled("#stop")
        t.click("#class-open")
        t.wait_for_selector("#class-students-list .student-name")
        assert t.inner_text("#class-students-list .student-name") == "Ana Maria"
        t.wait_for_selector("#class-runs li[data-run]")
        assert "Ana Maria" in t.inner_text("#class-runs li[data-run]")
        assert "student:" not in t.inner_text("#class-panel")
        t.screenshot(path=SHOTS / "names-2-class-panel.png")
        t.click("#class-runs li[data-run] button.danger")  # Stop
        t.click("#class-students-list button.danger")  # Remove name
        s.wait_for_selector("#name-box:not([hidden])", timeout=15_000)
        assert js(s, "true") is True
        # sign-out: the teacher's page watches only
        t.click("#class-signout")
        t.wait_for_selector("#role-badge:has-text('Student'), #role-badge:has-text('Watch')")
        t.screenshot(path=SHOTS / "names-3-signed-out.png")
