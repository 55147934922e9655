"""Tracked runs (docs/tracking.md): the wire format, the declared knobs, the measure, and
`collapse_lab.track` against a real server process — live ticks, knob changes back within a
second, stop, a killed loop failing, a restart keeping the history — and into a folder."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest

from collapse_lab.server.tracked import (
    Measure,
    Series,
    WireError,
    pack,
    parse_knobs,
    unpack,
    validate_set,
)
from collapse_lab.trainer.knobs import ConfigError
from tests.browser_harness import running_server

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tracking-test-token"


def ring(k=8, r=2.0):
    a = np.arange(k) * 2 * np.pi / k
    return np.stack([r * np.cos(a), r * np.sin(a)], 1).astype(np.float32)


def around(centres, idx, n, std, seed=0):
    rng = np.random.default_rng(seed)
    return (centres[idx % len(centres)][rng.integers(0, 1 << 30, n) % len(idx)]
            + rng.normal(0, std, (n, centres.shape[1]))).astype(np.float32)


# ---------------------------------------------------------------------------- wire format
def test_wire_round_trip_and_refusals():
    a = np.arange(12, dtype=np.float32).reshape(6, 2)
    lab = np.array([1, 2, 3], np.int32)
    meta, arrays = unpack(pack({"type": "log", "step": 3}, {"samples": a, "labels": lab}))
    assert meta == {"type": "log", "step": 3}
    assert np.array_equal(arrays["samples"], a) and np.array_equal(arrays["labels"], lab)
    good = pack({"type": "log"}, {"samples": a})
    with pytest.raises(WireError, match="magic"):
        unpack(b"XXXX" + good[4:])
    with pytest.raises(WireError, match="needs 48 bytes"):
        unpack(good[:-8])
    with pytest.raises(WireError, match="after the last array"):
        unpack(good + b"\0\0\0\0")
    with pytest.raises(WireError, match="unknown array"):
        unpack(pack({}, {"weights": a}))
    with pytest.raises(WireError, match="at most"):
        unpack(b"\0" * ((1 << 20) + 1))


# ---------------------------------------------------------------------------- knobs
def test_declared_knobs_are_checked_by_type_and_range():
    specs = parse_knobs({"lr_g": {"type": "float", "value": 2e-4, "min": 1e-6, "max": 1e-2},
                         "n_critic": {"type": "int", "value": 1, "min": 1, "max": 10},
                         "ema": {"type": "bool", "value": False},
                         "opt": {"type": "choice", "value": "adam", "choices": ["adam", "sgd"]}})
    assert validate_set(specs, {"lr_g": 1e-3, "n_critic": 5.0, "ema": True, "opt": "sgd"}) == {
        "lr_g": 1e-3, "n_critic": 5, "ema": True, "opt": "sgd"}
    for bad, field, words in [({"lr_g": 0.5}, "lr_g", "in [1e-06, 0.01]"),
                              ({"n_critic": 2.5}, "n_critic", "an integer"),
                              ({"ema": 1}, "ema", "true or false"),
                              ({"opt": "rmsprop"}, "opt", "one of adam, sgd"),
                              ({"gp": 1.0}, "gp", "not a knob this loop declared")]:
        with pytest.raises(ConfigError, match=re.escape(words)) as e:
            validate_set(specs, bad)
        assert e.value.field == field
    with pytest.raises(ConfigError, match="min 2 is above max 1"):
        parse_knobs({"x": {"type": "float", "value": 1.5, "min": 2, "max": 1}})
    with pytest.raises(ConfigError, match="knob name"):
        parse_knobs({"1x": {"type": "float", "value": 1.0}})
    with pytest.raises(ConfigError):  # the declared value itself out of range
        parse_knobs({"x": {"type": "float", "value": 5.0, "min": 0, "max": 1}})


# ---------------------------------------------------------------------------- the measure
def test_centres_count_covered_modes():
    c = ring()
    m = Measure.from_start({"modes": "centres", "mode_std": 0.05}, {"centres": c})
    s = Series(m)
    all8 = s.tick({"step": 0, "time": 0.0}, {"samples": around(c, np.arange(8), 800, 0.02)}, 0)
    assert all8["modes_covered"] == 8 and all8["hq_fraction"] > 0.99
    one = s.tick({"step": 1, "time": 1.0}, {"samples": around(c, np.array([3]), 800, 0.02)}, 0)
    assert one["modes_covered"] == 1 and one["occupancy"][3] > 0.99
    # the hop from an even spread to one mode: total variation 1 − 1/8
    assert math.isclose(one["hopping"], 1 - 1 / 8, abs_tol=0.03)
    assert m.describe()["centres"][0] == [2.0, 0.0]


def test_real_batch_bins_ndb_precision_recall():
    c = ring(8)
    real = around(c, np.arange(8), 1600, 0.05, seed=2)
    m = Measure.from_start({"modes": "real", "bins": 16}, {"real": real})
    s = Series(m)
    fair = s.tick({"step": 0, "time": 0}, {"samples": around(c, np.arange(8), 1000, 0.05, 3)}, 0)
    # same distribution: each bin differs by chance with probability 5 %; 16 bins → about 0.8
    assert fair["ndb"] <= 4
    assert fair["precision"] > 0.9 and fair["recall"] > 0.9
    # collapsed onto one mode: the bins of the other 7 modes are empty (each of those tests
    # fails), precision stays high (on the data), recall drops to about 1/8
    bad = s.tick({"step": 1, "time": 1}, {"samples": around(c, np.array([0]), 1000, 0.05, 4)}, 0)
    assert bad["ndb"] >= 14
    assert bad["precision"] > 0.9 and bad["recall"] < 0.25


def test_vectors_are_drawn_through_a_fixed_projection_and_images_as_images():
    rng = np.random.default_rng(0)
    c = rng.normal(0, 3, (5, 10)).astype(np.float32)
    m = Measure.from_start({"modes": "centres"}, {"centres": c})
    d = m.describe()
    assert d["kind"] == "2d" and "principal axes of the mode centres (10 → 2)" in d["projection"]
    s = Series(m)
    t = s.tick({"step": 0, "time": 0}, {"samples": around(c, np.arange(5), 100, 0.01)}, 0)
    assert t["modes_covered"] == 5
    assert m.last["samples"].shape == (100, 2)
    im = Measure.from_start({"modes": "classes", "num_classes": 10}, {})
    si = Series(im)
    si.tick({"step": 0, "time": 0, "image_shape": [8, 8]},
            {"samples": rng.uniform(-1, 1, (100, 64)).astype(np.float32),
             "labels": np.repeat(np.arange(10), 10).astype(np.int32),
             "confident": np.ones(100, np.uint8)}, 0)
    assert im.describe()["kind"] == "image" and im.describe()["image_shape"] == [8, 8]
    assert im.last["samples"].shape == (64, 64)  # a frame draws 64 images; metrics used all
    with pytest.raises(ConfigError, match="after 0"):
        si.tick({"step": 0, "time": 1}, {}, 0)


# ---------------------------------------------------------------------------- a real server
LOOP = textwrap.dedent("""
    import sys, time, numpy as np, collapse_lab
    url, token, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    a = np.arange(8) * 2 * np.pi / 8
    centres = np.stack([2 * np.cos(a), 2 * np.sin(a)], 1)
    run = collapse_lab.track(url, token=token, name="killed-loop", modes=centres,
                             knobs={"lr": (1e-3, 1e-5, 1e-1)})
    print(run.id, flush=True)
    for step in range(steps):
        run.log(step, samples=np.random.normal(0, 0.05, (256, 2)) + centres[step % 8], d_loss=1.0)
        time.sleep(0.02)
    run.finish()
""")


def wait_until(fn, timeout=20.0, every=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"not true within {timeout} s")


@pytest.mark.server
def test_track_against_a_token_server(tmp_path):
    import collapse_lab
    from collapse_lab.tracking import TrackError

    c = ring()
    with running_server(tmp_path, token=TOKEN, env={"COLLAPSE_LAB_TRACK_GRACE": "1.5"}) as url:
        auth = {"authorization": f"Bearer {TOKEN}"}
        with pytest.raises(TrackError, match="needs a token to track"):
            collapse_lab.track(url, name="no token", modes=c)
        with pytest.raises(TrackError, match="needs a token"):
            collapse_lab.track(url, token="wrong-token-123", name="bad token", modes=c)
        run = collapse_lab.track(url, token=TOKEN, name="ring", modes=c, mode_std=0.05,
                                 knobs={"lr_g": (2e-4, 1e-6, 1e-2), "gp": 0.0})
        assert run.knobs == {"lr_g": 2e-4, "gp": 0.0}
        for step in range(40):
            run.log(step, samples=around(c, np.array([step % 2]), 256, 0.02, step),
                    d_loss=0.5 + step, g_loss=1.0)
            time.sleep(0.03)
        info = wait_until(lambda: (r := httpx.get(f"{url}/api/runs/{run.id}").json())
                          ["step"] >= 30 and r)
        assert info["status"] == "running" and info["config"]["family"] == "tracked"
        assert info["dataset"]["tracked"] and info["dataset"]["num_modes"] == 8
        assert info["last"]["modes_covered"] == 1
        # a knob change in the API reaches run.knobs within a second
        t0 = time.monotonic()
        r = httpx.post(f"{url}/api/track/{run.id}/knobs", json={"set": {"lr_g": 1e-3}},
                       headers=auth)
        assert r.status_code == 200, r.text
        wait_until(lambda: run.knobs["lr_g"] == 1e-3, timeout=1.0, every=0.005)
        latency = time.monotonic() - t0
        print(f"knob change reached run.knobs in {latency * 1000:.0f} ms")
        bad = httpx.post(f"{url}/api/track/{run.id}/knobs", json={"set": {"lr_g": 5.0}},
                         headers=auth)
        assert bad.status_code == 422 and bad.json()["field"] == "lr_g"
        assert httpx.post(f"{url}/api/track/{run.id}/knobs",
                          json={"set": {"lr_g": 1e-4}}).status_code == 403  # no token
        paused = httpx.post(f"{url}/api/runs/{run.id}/control", json={"action": "pause"},
                            headers=auth)
        assert paused.status_code == 409 and "tracked" in paused.json()["detail"]
        run.log(40, samples=around(c, np.arange(8), 256, 0.02, 99), d_loss=0.1)
        run.finish()
        done = httpx.get(f"{url}/api/runs/{run.id}").json()
        assert done["status"] == "done"
        h = httpx.get(f"{url}/api/runs/{run.id}/history").json()
        steps = [t["step"] for t in h["ticks"]]
        assert steps == sorted(steps) and steps[-1] == 40 and len(steps) >= 10
        assert [e["changes"] for e in h["events"] if e["type"] == "config"] == [{"lr_g": 1e-3}]
        assert h["ticks"][-1]["modes_covered"] == 8 and "loss_d" in h["ticks"][-1]
        replay = httpx.get(f"{url}/api/runs/{run.id}/replay")
        assert int(replay.headers["x-frames"]) >= 2

        # a writer token the teacher made: it tracks one run at a time, and nothing else
        assert httpx.post(f"{url}/api/track/writers", json={"label": "ada"}).status_code == 403
        made = httpx.post(f"{url}/api/track/writers", json={"label": "ada"}, headers=auth)
        assert made.status_code == 201, made.text
        writer = made.json()["token"]
        mine = collapse_lab.track(url, token=writer, name="ada's run", modes=c)
        with pytest.raises(TrackError, match="already tracks run"):
            collapse_lab.track(url, token=writer, name="a second one", modes=c)
        assert httpx.post(f"{url}/api/track/{mine.id}/knobs", json={"set": {}},
                          headers={"authorization": f"Bearer {writer}"}).status_code == 403
        assert httpx.get(f"{url}/api/runs/{mine.id}").json()["owner"] == "teacher"  # delegated
        mine.log(0, samples=c)
        mine.finish()
        assert httpx.get(f"{url}/api/runs/{mine.id}").json()["status"] == "done"
        again = collapse_lab.track(url, token=writer, name="after the first", modes=c)
        again.log(0, samples=c)
        wait_until(lambda: httpx.get(f"{url}/api/runs/{again.id}").json()["step"] == 0)
        # deleted while its loop runs: the loop is told, nothing more is stored, log() goes on
        assert httpx.delete(f"{url}/api/runs/{again.id}", headers=auth).status_code == 200
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            for step in range(1, 30):
                again.log(step, samples=c)
                time.sleep(0.02)
            again.finish()
        assert any("deleted" in str(w.message) for w in said), [str(w.message) for w in said]
        assert httpx.get(f"{url}/api/runs/{again.id}").status_code == 404

        # a loop killed mid-run: its run fails once track_grace has passed
        proc = subprocess.Popen([sys.executable, "-c", LOOP, url, TOKEN, "100000"],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        rid = proc.stdout.readline().strip()
        wait_until(lambda: httpx.get(f"{url}/api/runs/{rid}").json()["step"] > 5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        gone = wait_until(lambda: (r := httpx.get(f"{url}/api/runs/{rid}").json())
                          ["status"] == "failed" and r, timeout=15)
        assert "went away without finishing" in gone["reason"]


@pytest.mark.server
def test_a_restarted_server_keeps_the_history_and_the_loop_goes_on(tmp_path):
    import collapse_lab

    c = ring()
    from tests.browser_harness import free_port

    port = free_port()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with running_server(tmp_path, port=port) as url:
            run = collapse_lab.track(url, name="restart", modes=c)
            for step in range(20):
                run.log(step, samples=around(c, np.arange(8), 128, 0.02, step), d_loss=1.0)
                time.sleep(0.03)
            wait_until(lambda: httpx.get(f"{url}/api/runs/{run.id}").json()["step"] >= 15)
        # the server is gone; the loop goes on (log never raises), then a new server on the port
        for step in range(20, 40):
            run.log(step, samples=around(c, np.arange(8), 128, 0.02, step), d_loss=1.0)
            time.sleep(0.03)
        time.sleep(0.5)
    assert sum("lost the server" in str(w.message) for w in said) == 1  # said once
    with running_server(tmp_path, port=port) as url:
        for step in range(40, 80):
            run.log(step, samples=around(c, np.arange(8), 128, 0.02, step), d_loss=1.0)
            time.sleep(0.03)
        run.finish()
        info = httpx.get(f"{url}/api/runs/{run.id}").json()
        assert info["status"] == "done", info
        steps = [t["step"] for t in httpx.get(f"{url}/api/runs/{run.id}/history").json()["ticks"]]
        assert steps[0] < 15 and steps[-1] == 79  # before the restart, and after it
        assert any(s < 20 for s in steps) and any(s >= 40 for s in steps)


def test_track_into_a_folder_is_served_with_history_and_replay(tmp_path):
    import collapse_lab

    c = ring()
    folder = tmp_path / "runs"
    with collapse_lab.track(folder, name="offline", modes=c, rate=100) as run:
        for step in range(30):
            run.log(step, samples=around(c, np.array([0, 1, 2, 3]), 200, 0.02, step), d_loss=1)
            time.sleep(0.012)
    from collapse_lab.server.store import Store

    store = Store(folder / "runs.sqlite3")
    try:
        [rec] = store.load_runs()
        assert rec["status"] == "done" and rec["config"]["family"] == "tracked"
        ticks = store.ticks(rec["id"])
        assert ticks[-1]["step"] == 29 and ticks[-1]["modes_covered"] == 4
        assert len(store.snapshots(rec["id"])) >= 2 and store.real(rec["id"])
    finally:
        store.close()


@pytest.mark.server
@pytest.mark.slow
def test_the_examples_run_against_a_real_server(tmp_path):
    """examples/ shortened: each starts, logs, finishes, and its run is done with its ticks."""
    with running_server(tmp_path, token=TOKEN) as url:
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        for script, steps, args in [("gan_2d.py", 120, []),
                                    ("digits_gan.py", 60, ["--cache", str(tmp_path / "cls")])]:
            out = subprocess.run([sys.executable, str(ROOT / "examples" / script), url,
                                  "--token", TOKEN, "--steps", str(steps), *args],
                                 capture_output=True, text=True, timeout=300, cwd=tmp_path,
                                 env=env)
            assert out.returncode == 0, out.stdout + out.stderr
            rid = out.stdout.split("tracking run ")[1].split(":")[0].split()[0]
            run = httpx.get(f"{url}/api/runs/{rid}").json()
            assert run["status"] == "done" and run["label"] == f"examples/{script}"
            ticks = httpx.get(f"{url}/api/runs/{rid}/history").json()["ticks"]
            assert ticks[-1]["step"] == steps - 1
            sampled = [t for t in ticks if "modes_covered" in t]
            assert sampled and all(0 <= t["modes_covered"] <= 10 for t in sampled)
            assert "loss_d" in ticks[-1] and "loss_g" in ticks[-1]
            if script == "digits_gan.py":
                assert run["dataset"]["kind"] == "image" and run["dataset"]["num_modes"] == 10
