"""Lesson files: each validates against the schema, and every config in it is one the trainer
takes (walked step by step as the page does); bad lessons are refused with the step named."""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collapse_lab.server.app import create_app
from collapse_lab.server.lessons import (
    MAX_LESSON_STEPS,
    Lesson,
    LessonError,
    fill_facts,
    lesson_dir,
    load_facts,
    load_lessons,
    parse_lesson,
)
from collapse_lab.server.settings import Settings
from collapse_lab.trainer.registry import PRESETS, SCALAR_NAMES, control_label, meets_claim

ROOT = Path(__file__).resolve().parent.parent

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
        assert "{{" not in step.text + (step.outcome.claim if step.outcome else "")
        a = step.action
        if a.type == "start":
            assert a.preset is None or a.preset in PRESETS
        if a.type in ("start", "compare"):
            # as long as the lesson needs it, and then it ends by itself
            steps = (a.set if a.type == "start" else a.base)["steps"]
            assert 1_000 <= steps <= MAX_LESSON_STEPS, f"{name} step {i}: {steps} steps"
        if step.outcome:
            assert step.outcome.stat in SCALAR_NAMES


def test_every_outcome_a_step_states_is_measured_beside_it():
    """A step whose text gives measured figures for the run on screen says what to measure."""
    lessons = load_lessons()
    stated = {(n, i) for n, x in lessons.items() for i, s in enumerate(x.steps) if s.outcome}
    assert {("collapse-ring", 2), ("wgan-gp-live", 2), ("why-collapse", 2), ("more-modes", 4),
            ("hopping-digits", 3), ("minibatch", 2)} <= stated
    assert lessons["wgan-gp-live"].steps[2].outcome.since == "change"


def calibration_rows() -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    with open(ROOT / "docs" / "presets.csv", newline="") as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["label"], []).append(r)
    return rows


def test_the_figures_lessons_quote_are_the_calibration_table():
    """Every calibration figure of lesson_facts.json, worked out again from docs/presets.csv."""
    rows = calibration_rows()
    for key, figures in load_facts()["calibration"].items():
        # a twin's control is "<twin>-control" here, "<twin> (remedy off)" in the table
        name = key.removesuffix("-control")
        label = control_label(name) if key.endswith("-control") else name
        runs = rows[label]
        preset = PRESETS[name]
        covered = [int(r["modes_covered"]) for r in runs]
        seeds = {int(r["seed"]): int(r["modes_covered"]) for r in runs}
        for key, want in figures.items():
            if key == "seeds":
                got = len(runs)
            elif key == "steps":
                got = int(runs[0]["steps"])
            elif key == "met":
                got = sum(meets_claim(preset.name, {"modes_covered": c, "effective_modes":
                                                      float(r["effective_modes"])})
                          for c, r in zip(covered, runs, strict=True))
            elif key == "covered_min":
                got = min(covered)
            elif key == "covered_max":
                got = max(covered)
            elif key == "covered_median":
                got = statistics.median(covered)
            elif m := re.fullmatch(r"max_hop_(min|max|median)", key):
                hops = [float(r["max_hopping"]) for r in runs]
                pick = {"min": min, "max": max, "median": statistics.median}[m.group(1)]
                got = round(pick(hops), 2)
            elif key == "hq_median":
                got = round(statistics.median(float(r["hq_pct"]) for r in runs), 1)
            elif m := re.fullmatch(r"covered_(eq|ge)_(\d+)", key):
                n = int(m.group(2))
                got = sum(c == n if m.group(1) == "eq" else c >= n for c in covered)
            elif m := re.fullmatch(r"seed_(\d+)", key):
                got = seeds[int(m.group(1))]
            else:
                raise AssertionError(f"{label}: no rule for the figure {key!r}")
            assert got == want, f"{label}.{key}: the table says {got}, lesson_facts.json {want}"


def _steps(v: float) -> str:
    return f"> {6000:,}" if math.isinf(v) else f"{v:,.0f}"


def test_the_live_switch_figures_are_the_measured_ones():
    """The live-switch figures are derived again from the stored per-seed runs
    (docs/live-switch.csv, bench/live_switch.py --csv): each seed's steps to rescue is its first
    check meeting the twin's claim, and the lesson facts and docs/presets.md's table say what
    those give — the seeds rescued, the first and last, the median over every seed (an
    unrescued seed counting as beyond the window), the median over the rescued seeds and the
    median covered at the window's end. A twin with no stored runs may show only what its
    counts fix."""
    ls = load_facts()["live_switch"]
    doc = (ROOT / "docs" / "presets.md").read_text()
    with (ROOT / "docs" / "live-switch.csv").open(encoding="utf-8") as f:
        stored = list(csv.DictReader(f))
    for twin in ("wgan-gp-ring8", "gp-ring8", "pacgan-ring8"):
        f = ls[twin]
        assert PRESETS[twin].expect[2] == f["claim"]
        assert 0 <= f["met"] <= ls["seeds"] and f["first"] <= f["last"] <= ls["within"]
        runs = [r for r in stored if r["to"] == twin]
        if not runs:
            # measured before the per-seed runs were kept: only figures that its counts fix —
            # fewer than half the seeds rescued puts the median over every seed beyond the
            # window, and with at most two rescued their median is the first and last's mean
            assert 2 * f["met"] < ls["seeds"], twin
            over_all = math.inf
            rescued = (f["first"] + f["last"]) / 2 if f["met"] <= 2 else None
        else:
            assert sorted(int(r["seed"]) for r in runs) == list(range(ls["seeds"])), twin
            hits, at_end = [], []
            for r in runs:
                assert (r["switch_from"], int(r["before"]), int(r["within"])) == \
                    (ls["from"], ls["at"], ls["within"])
                every = int(r["every"])
                covered = [float(c) for c in r["covered_at_checks"].split()]
                assert len(covered) == ls["within"] // every + 1  # the switch, then each check
                hit = next((i * every for i, c in enumerate(covered)
                            if meets_claim(twin, {"modes_covered": c})), None)
                assert (int(r["steps_to_rescue"]) if r["steps_to_rescue"] else None) == hit, r
                hits.append(hit)
                at_end.append(covered[-1])
            met = sorted(h for h in hits if h is not None)
            over_all = statistics.median(met + [math.inf] * (len(hits) - len(met)))
            rescued = statistics.median(met)
            assert (f["met"], f["first"], f["last"]) == (len(met), met[0], met[-1]), twin
            assert f["median_covered"] == statistics.median(at_end)
            assert f["median_rescued"] == rescued
            assert f.get("median_all", math.inf) == over_all  # absent: beyond the window
        row = re.compile(rf"\| → `{re.escape(twin)}` \| ≥ {f['claim']} of 8 modes covered \| "
                         rf"{f['met']}/10 \| {f['first']:,}–{f['last']:,} \| "
                         rf"{re.escape(_steps(over_all))} \| "
                         rf"{re.escape('—' if rescued is None else _steps(rescued))} \| "
                         rf"{f['median_covered']:g} \|")
        assert row.search(doc), row.pattern


def test_figures_are_filled_in_and_a_missing_one_refuses_the_lesson():
    facts = {"a": {"b-c": {"n": 6000, "x": 2.5, "k": 3.0}}}
    assert fill_facts("{{a.b-c.n}} steps, {{a.b-c.x}} and {{a.b-c.k}}", facts) == \
        "6,000 steps, 2.5 and 3"
    text = bad(summary="on {{live_switch.nope.met}} seeds")
    with pytest.raises(LessonError, match="no figure 'live_switch.nope.met'"):
        parse_lesson(text, "collapse-ring.json")
    with pytest.raises(LessonError, match="is a table"):
        parse_lesson(bad(summary="{{live_switch}}"), "collapse-ring.json")
    with pytest.raises(LessonError, match="names no figure"):
        parse_lesson(bad(summary="{{a b}}"), "collapse-ring.json")


def bad(**change):
    lesson = json.loads((lesson_dir() / "collapse-ring.json").read_text())
    lesson.update(change)
    return json.dumps(lesson)


@pytest.mark.parametrize("text, words", [
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"],
                 "action": {"type": "start", "preset": "collapse-ring8",
                            "set": {"lr_g": 7}}}] * 2), "step 1 (x): lr_g: expected a number"),
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"],
                 "action": {"type": "start", "preset": "collapse-ring8",
                            "set": {"steps": 0}}}] * 2), "step 1 (x): steps: a lesson's run"),
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"],
                 "action": {"type": "compare", "variants": [{}, {}]}}] * 2),
     "[1, 50,000], got None"),
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"],
                 "outcome": {"stat": "nope", "claim": "c"}}] * 2), "no statistic 'nope'"),
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"],
                 "action": {"type": "change", "set": {"lr_g": 0.001}}}] * 2),
     "a change needs a run started by an earlier step"),
    (bad(steps=[{"title": "x", "text": "y", "sources": ["z"],
                 "action": {"type": "start", "set": {"steps": 1000}}},
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
