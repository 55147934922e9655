"""Fair order of queued runs: the teacher's first, then students round-robin (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from collapse_lab.server.scheduling import fair_order


@dataclass
class R:
    id: str
    owner: str | None
    created: float


def ids(runs):
    return [r.id for r in runs]


def test_one_student_cannot_starve_the_rest():
    # student a queued five runs before b and c queued one each
    q = [R(f"a{i}", "student:a", i) for i in range(5)] + [R("b0", "student:b", 10),
                                                           R("c0", "student:c", 11)]
    assert ids(fair_order(q)) == ["a0", "b0", "c0", "a1", "a2", "a3", "a4"]


def test_teacher_runs_go_first_and_old_runs_keep_their_place():
    q = [R("s", "student:a", 1), R("t", "teacher", 5), R("script", None, 3)]
    assert ids(fair_order(q)) == ["script", "t", "s"]


def test_a_student_with_a_run_training_waits_a_round():
    q = [R("a1", "student:a", 1), R("b1", "student:b", 2)]
    active = [R("a0", "student:a", 0)]
    assert ids(fair_order(q, active)) == ["b1", "a1"]
    assert ids(fair_order(q)) == ["a1", "b1"]


def test_without_students_it_is_oldest_first():
    q = [R("x", None, 3), R("y", "teacher", 1), R("z", None, 2)]
    assert ids(fair_order(q)) == ["y", "z", "x"]
    assert fair_order([]) == []


def test_owners_are_stored_and_old_stores_gain_the_column(tmp_path):
    import sqlite3

    from collapse_lab.server.store import Store

    path = tmp_path / "runs.sqlite3"
    old = sqlite3.connect(path)  # a store written before runs had owners
    old.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, created REAL NOT NULL, status TEXT NOT "
                "NULL, reason TEXT, config TEXT NOT NULL, group_id TEXT, label TEXT, "
                "config_version INTEGER DEFAULT 0, step INTEGER DEFAULT 0, provenance TEXT, "
                "hello TEXT, real BLOB, started REAL, ended REAL, checkpoint_step INTEGER, "
                "last TEXT)")
    old.execute("INSERT INTO runs (id, created, status, config) VALUES ('old1', 1, 'done', '{}')")
    old.commit()
    old.close()
    store = Store(path)
    try:
        store.save_run(dict(id="new1", created=2.0, status="done", config={},
                            owner="student:0123456789abcdef"))
        store.flush()
        rows = {r["id"]: r for r in store.load_runs()}
        assert rows["old1"]["owner"] is None
        assert rows["new1"]["owner"] == "student:0123456789abcdef"
    finally:
        store.close()
