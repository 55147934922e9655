"""A cost before work for every family: each family's model (trainer/families/*/cost.py)
against the server's per-run budget, with real workers — runs over it refused before anything
starts, the shipped presets under it, live changes that would go over it refused, and in a
classroom a student's run of any family counted and refused alike."""

from __future__ import annotations

import json
import math

import pytest
from cookie_jar import Browser
from fastapi.testclient import TestClient
from polling import wait_for

from collapse_lab.server.app import create_app
from collapse_lab.server.settings import Settings
from collapse_lab.trainer import families, registry

TOKEN = "teacher-secret-28"
OTHERS = ("evolution", "vae", "diffusion", "decoding")
# a classroom's tighter per-step budget than the default 10 s: the largest decoding run (hidden
# 512, lm_batch 1,024) takes about 2.7 s a step and the largest VAE's about 11 s, within or
# near the default; every preset is far under
STEP_S = 1.0
# per family, a run far past STEP_S and the knob that weighs most in it
HEAVY = {
    # 1,000 sampling steps × 4,096 samples of a 256-wide network every 5 steps
    "diffusion": (dict(width=256, noise_levels=1000, sample_steps=1000, samples=4096,
                       tick_every=5), "sample_steps"),
    # fitness sharing over 4,096 individuals, its picture over 256² grid points
    "evolution": (dict(population=4096, sharing_radius=0.5, grid_size=256, tick_every=2),
                  "population"),
    # 20 aggressive encoder steps of 1,024-wide networks on batches of 1,024
    "vae": (dict(aggressive=20, batch_size=1024, encoder_width=1024, decoder_width=1024,
                 decoder_layers=4), "aggressive"),
    # the largest language model on the largest batches
    "decoding": (dict(hidden=512, embed=256, lm_batch=1024), "lm_batch"),
}
# per family, a small run, a live change that makes it far heavier, and the knob to name
LIVE = {
    "diffusion": (dict(width=64, batch=32, noise_levels=1000, sample_steps=10, tick_every=10),
                  {"sample_steps": 1000}, "sample_steps"),
    "evolution": (dict(population=1024, grid_size=16, tick_every=20), {"sharing_radius": 0.3},
                  "population"),
    "vae": (dict(batch_size=32, encoder_width=256, decoder_width=256, tick_every=50),
            {"aggressive": 20}, "aggressive"),
    "decoding": (dict(lm_batch=8, embed=8, hidden=16, tick_every=200),
                 {"strategy": "diverse_beam", "beam_width": 64, "groups": 64, "tick_every": 1},
                 "tick_every"),
}


def client(tmp_path, **kw) -> TestClient:
    s = Settings(data_dir=tmp_path, worker_threads=1, stop_timeout=10, **kw)
    return TestClient(create_app(s), base_url="http://127.0.0.1")


def estimate(c: TestClient, config: dict) -> dict:
    r = c.get("/api/estimate", params={"config": json.dumps(config)})
    assert r.status_code == 200, r.text
    return r.json()


def budget_text(est: dict, settings: Settings) -> str:
    """The budget a refusal of a run with this estimate names (server/budget.py)."""
    if est["memory_mb"] > settings.run_memory_mb:
        return (f"over the per-run budget of {settings.run_memory_mb / 1024:.1f} GB "
                "(setting run_memory_mb)")
    return (f"over the per-run budget of {settings.run_step_seconds:g} s "
            "(setting run_step_seconds)")


def test_every_family_over_the_budget_is_refused_naming_the_knob(tmp_path):
    """Each family's heavy run is a 422 naming the knob its estimate says weighs most and the
    budget it is over, and nothing starts; the same through a compare group; the estimate says
    it does not fit."""
    default = Settings(data_dir=tmp_path)
    with client(tmp_path, run_step_seconds=STEP_S) as c:
        settings = c.app.state.settings
        for fam, (over, knob) in HEAVY.items():
            config = dict(over, family=fam, device="cpu")
            est = estimate(c, config)
            assert not est["fits"], (fam, est)
            over_memory = est["memory_mb"] > est["budget_mb"]
            assert est["heaviest_memory" if over_memory else "heaviest"] == knob, (fam, est)
            r = c.post("/api/runs", json=config)
            assert r.status_code == 422 and r.json()["field"] == knob, (fam, r.text)
            detail = r.json()["detail"]
            assert budget_text(est, settings) in detail and f"{knob} (currently " in detail, \
                detail
            r = c.post("/api/compare", json={"base": dict(family=fam, device="cpu"),
                                             "variants": [{}, over]})
            assert r.status_code == 422 and r.json()["field"] == f"variants[1].{knob}", r.text
            if fam in ("diffusion", "evolution"):  # past the default budget too
                assert (est["step_ms"] > default.run_step_seconds * 1000
                        or est["memory_mb"] > default.run_memory_mb), (fam, est)
        assert c.get("/api/runs").json()["runs"] == []  # nothing was started


def test_every_shipped_preset_fits_the_default_budget(tmp_path):
    """Every preset of every family, estimated by the server, is within the default budget."""
    names = list(registry.presets())
    assert {registry.preset_family(n) for n in names} == set(families.FAMILIES)
    with client(tmp_path) as c:
        for name in names:
            est = estimate(c, {"preset": name})
            assert est["fits"], (name, est)
            assert 0 < est["step_ms"] <= est["budget_step_ms"], (name, est)
            assert est["memory_mb"] <= est["budget_mb"], (name, est)


@pytest.mark.parametrize("fam", OTHERS)
def test_a_live_change_over_the_budget_is_refused(tmp_path, fam):
    """A running run of each family and a live change that multiplies its cost: with the
    per-step budget between the two estimates (the run's ticking step within it), the change
    estimate says it does not fit and asks, the change is a 422 naming the knob, and the run
    keeps training as it was."""
    small, change, knob = LIVE[fam]
    config = dict(small, family=fam, device="cpu", steps=0)
    cfg = families.make_config(config)
    now = families.of(cfg).estimate(cfg)
    after = families.of(cfg).estimate(cfg.replace(**change))
    top = max(now["step_ms"], now["tick_ms"])  # the run's slowest step now: the one ticking
    assert after["step_ms"] > 2 * top, (now, after)
    budget_s = math.sqrt(top * after["step_ms"]) / 1000  # between the two
    with client(tmp_path, run_step_seconds=budget_s) as c:
        rid = c.post("/api/runs", json=config).json()["id"]
        wait_for(lambda: c.get(f"/api/runs/{rid}").json()["status"] == "running", timeout=60)
        ch = c.get(f"/api/runs/{rid}/estimate", params={"set": json.dumps(change)}).json()
        assert ch["now"]["fits"] and not ch["after"]["fits"] and ch["ask"], ch
        assert ch["after"]["heaviest"] == knob, ch
        r = c.post(f"/api/runs/{rid}/control", json={"set": change})
        assert r.status_code == 422 and r.json()["field"] == knob, r.text
        assert f"over the per-run budget of {budget_s:g} s" in r.json()["detail"]
        run = c.get(f"/api/runs/{rid}").json()
        assert run["status"] == "running"
        assert all(run["config"][k] == getattr(cfg, k) for k in change), run["config"]
        c.post(f"/api/runs/{rid}/control", json={"action": "stop"})
        wait_for(lambda: c.get(f"/api/runs/{rid}").json()["status"] in ("done", "failed"),
                 timeout=60)


def test_a_students_run_of_any_family_is_counted_and_refused_over_budget(tmp_path):
    """`serve --token` with students: a student's diffusion run takes their one active run,
    a second (a VAE) is 429 naming the cap; over the budget a student's run of each family
    other than the GAN is 422 naming the knob, as a GAN's is; the teacher's is refused too."""
    s = Settings(data_dir=tmp_path, token=TOKEN, worker_threads=1, stop_timeout=10,
                 students_may_run=True, student_cap=1, run_step_seconds=STEP_S)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        ana = Browser(c)
        assert ana.get("/api/session").json()["owner"] == "student"
        assert ana.post("/api/session/name", json={"name": "Ana"}).status_code == 200
        small = dict(family="diffusion", device="cpu", steps=0, width=32, batch=32,
                     samples=128, tick_every=50)
        r = ana.post("/api/runs", json=small)
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        wait_for(lambda: c.get(f"/api/runs/{rid}").json()["status"] == "running", timeout=60)
        r = ana.post("/api/runs", json=dict(family="vae", device="cpu", steps=0))
        assert r.status_code == 429 and "1 active run" in r.json()["detail"], r.text

        bea = Browser(c)
        assert bea.get("/api/session").json()["owner"] == "student"
        for fam, (over, knob) in HEAVY.items():
            r = bea.post("/api/runs", json=dict(over, family=fam, device="cpu"))
            assert r.status_code == 422 and r.json()["field"] == knob, (fam, r.text)
        gan = bea.post("/api/runs", json=dict(batch_size=4096, g_width=1024, d_width=1024,
                                              g_depth=8, d_depth=8, device="cpu"))
        assert gan.status_code == 422 and gan.json()["field"] == "batch_size", gan.text
        teacher = Browser(c)
        assert teacher.get(f"/?token={TOKEN}").status_code == 303
        over, knob = HEAVY["vae"]
        r = teacher.post("/api/runs", json=dict(over, family="vae", device="cpu"))
        assert r.status_code == 422 and r.json()["field"] == knob, r.text
        # Bea started nothing: her refused runs did not count, so her one run is free
        r = bea.post("/api/runs", json=dict(small, tick_every=60))
        assert r.status_code == 201, r.text
        ids = {x["id"] for x in c.get("/api/runs").json()["runs"]}
        assert ids == {rid, r.json()["id"]}
        for i in ids:
            assert teacher.post(f"/api/runs/{i}/control", json={"action": "stop"}) \
                .status_code == 200
        wait_for(lambda: all(c.get(f"/api/runs/{i}").json()["status"] in ("done", "failed")
                             for i in ids), timeout=60)


def test_a_run_whose_every_tick_is_over_the_budget_is_refused(tmp_path):
    """1,000 sampler steps × 4,096 samples every 100 steps: a step costs little on average, but
    the step that ticks takes the whole tick (and the worker's other runs wait for it), so with
    the default budget the run is a 422 naming sample_steps and the tick's time; raising
    tick_every would not shorten a tick, so it is never the knob named."""
    config = dict(family="diffusion", device="cpu", noise_levels=1000, sample_steps=1000,
                  samples=4096, tick_every=100)
    with client(tmp_path) as c:
        est = estimate(c, config)
        step = est["budget_step_ms"]
        assert est["step_ms"] <= step < est["tick_ms"] and not est["fits"], est
        assert est["heaviest_tick"] == "sample_steps", est
        r = c.post("/api/runs", json=config)
        assert r.status_code == 422 and r.json()["field"] == "sample_steps", r.text
        assert "each tick of this run would take about " in r.json()["detail"], r.text
        assert f"over the per-run budget of {step / 1000:g} s a step" in r.json()["detail"]
        r = c.post("/api/runs", json=dict(config, tick_every=10_000))  # a tick is a tick
        assert r.status_code == 422 and r.json()["field"] == "sample_steps", r.text
        assert c.get("/api/runs").json()["runs"] == []
        small = estimate(c, dict(config, sample_steps=100))  # a tenth of the sampler fits
        assert small["fits"] and small["tick_ms"] < est["tick_ms"] / 5, small
