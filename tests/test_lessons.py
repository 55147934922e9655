"""Lesson files: each validates against the schema, and every config in it is one the trainer
takes (walked step by step as the page does); bad lessons are refused with the step named."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from collapse_lab.server.app import create_app
from collapse_lab.server.lessons import Lesson, LessonError, lesson_dir, load_lessons, parse_lesson
from collapse_lab.server.settings import Settings
from collapse_lab.trainer.registry import PRESETS

FILES = sorted(e.name for e in lesson_dir().iterdir() if e.name.endswith(".json"))
TOPICS = {"collapse-ring", "why-collapse", "wgan-gp-live", "minibatch", "hopping-digits",
          "more-modes", "six-objectives"}


def test_at_least_six_lessons_cover_the_topics():
    lessons = load_lessons()
    assert len(lessons) >= 6 and TOPICS <= set(lessons)
    assert [x.order for x in lessons.values()] == sorted(x.order for x in lessons.values())


@pytest.mark.parametrize("name", FILES)
def test_each_lesson_file_validates_and_its_configs_are_accepted(name):
    text = (lesson_dir() / name).read_text(encoding="utf-8")
    lesson = parse_lesson(text, name)  # schema, then every config through the trainer
    assert isinstance(lesson, Lesson)
    for i, step in enumerate(lesson.steps, 1):
        assert step.sources, f"{name} step {i}: every claim needs a source"
        assert "MEASURED" not in step.text, f"{name} step {i}: a placeholder was left"
        a = step.action
        if a.type == "start":
            assert a.preset is None or a.preset in PRESETS
            # long enough to steer: a lesson's run trains until the teacher moves on
            assert a.set.get("steps", 0) >= 100_000, f"{name} step {i}: a short run"
        if a.type == "compare":
            assert a.base.get("steps", 0) >= 100_000


def bad(**change):
    lesson = json.loads((lesson_dir() / "collapse-ring.json").read_text())
    lesson.update(change)
    return json.dumps(lesson)


@pytest.mark.parametrize("text, words", [
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"],
                 "action": {"type": "start", "preset": "collapse-ring8",
                            "set": {"lr_g": 7}}}] * 2), "step 1 (x): lr_g: expected a number"),
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"],
                 "action": {"type": "change", "set": {"lr_g": 0.001}}}] * 2),
     "a change needs a run started by an earlier step"),
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"], "action": {"type": "start"}},
                {"title": "w", "text": "y", "sources": ["z"],
                 "action": {"type": "change", "set": {"g_width": 64}}}]),
     "step 2 (w): g_width: cannot change while a run is in progress"),
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"],
                 "action": {"type": "compare", "variants": [{"seed": 1}, {}]}}] * 2),
     "variants[0].seed"),
    (bad(steps=[{"title": "x", "text": "y", "sources": []}] * 2), "sources"),
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"], "look": ["everything"]}] * 2),
     "look"),
    (bad(name="other"), "the file must be other.json"),
    (bad(extra=1), "extra"),
    ("{not json", "collapse-ring.json"),
])
def test_bad_lessons_are_refused_naming_the_step(text, words):
    with pytest.raises(LessonError) as e:
        parse_lesson(text, "collapse-ring.json")
    assert words in str(e.value)


def test_lessons_over_http(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, worker_threads=1)),
                    base_url="http://127.0.0.1") as c:
        listed = c.get("/api/lessons").json()
        assert [x["name"] for x in listed] == list(load_lessons())
        one = c.get("/api/lessons/collapse-ring").json()
        assert one["steps"][0]["action"]["type"] == "start"
        assert c.get("/api/lessons/nope").status_code == 404
        assert c.get("/api/lessons/..%2Fetc").status_code in (404, 422)
