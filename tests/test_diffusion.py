"""The diffusion family: its schedules and sampler against their definitions, the circle it
learns, stacked runs against runs alone, a checkpoint's round trip, live changes, and
memorisation itself on small seeded models.

The bounds of the dynamics test come from measured runs (docs/presets.md has the ten-seed table
at full size); here a small network on 8 or 512 points of the circle, a few seconds in all.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from collapse_lab.trainer import registry, sweep
from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.datasets import Circle
from collapse_lab.trainer.families.diffusion import model
from collapse_lab.trainer.families.diffusion.config import make_config, validate_changes
from collapse_lab.trainer.families.diffusion.engine import (
    ARROWS,
    DiffState,
    DiffusionEngine,
    spacing,
)
from collapse_lab.trainer.knobs import ConfigError

BASE = dict(dataset="circle", width=32, depth=2, noise_levels=20, batch=64, samples=256,
            sample_steps=10, grid_size=16, device="cpu")


def engine(*knob_sets: dict) -> DiffusionEngine:
    cfgs = [make_config({**BASE, **k}) for k in knob_sets]
    data = make_dataset(cfgs[0])
    return DiffusionEngine([DiffState.fresh(c) for c in cfgs], data, torch.device("cpu"))


# ---------------------------------------------------------------------------- the pieces
def test_the_circle_is_spread_and_its_arcs_are_its_modes():
    c = Circle()
    x = c.sample(8000, torch.Generator().manual_seed(0))
    assert float((x.norm(dim=1) - 2).abs().mean()) == pytest.approx(0.02 * math.sqrt(2 / math.pi),
                                                                    rel=0.1)
    nearest, hq = c.assign(x)
    share = torch.bincount(nearest, minlength=8).float() / len(x)
    assert float((share - 0.125).abs().max()) < 0.02 and float(hq.float().mean()) > 0.99
    # a point's distance to each arc, against a dense sampling of the arcs
    pts = torch.tensor([[3.0, 0.1], [0.0, 0.0], [-2.0, 0.01], [1.0, 1.0], [0.5, -1.9]])
    th = torch.linspace(0, 2 * math.pi, 100_001)[:-1]
    curve = 2 * torch.stack([th.cos(), th.sin()], 1)
    arc = (th / (2 * math.pi / 8)).floor().long()
    d = torch.cdist(pts, curve)
    brute = torch.stack([d[:, arc == k].min(1).values for k in range(8)], 1)
    assert torch.allclose(c.distances(pts), brute, atol=1e-3)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_a_schedule_takes_the_signal_from_almost_all_to_almost_none(kind):
    for levels in (10, 100, 1000):
        ab = model.schedule(kind, levels)
        assert ab.shape == (levels,) and bool((ab[1:] < ab[:-1]).all())
        assert float(ab[0]) > 0.97 and float(ab[-1]) < 1e-3


def test_the_sampler_with_the_ideal_denoiser_of_a_training_set_reproduces_it():
    """The denoiser that is optimal for N points (the posterior mean over them) memorises by
    construction: (nearly) every sample lands on a training point."""
    levels = 30
    ab = model.schedule("cosine", levels)[None].float()
    train = Circle().sample(8, torch.Generator().manual_seed(1))
    x0s: list[torch.Tensor] = []

    class Ideal:  # stands in for the network's params: model.forward is patched below
        pass

    def ideal_forward(params, x, t, lv, drop=None):
        a = ab[0, t[0, 0]]
        d2 = ((x[0, :, None, :] - a.sqrt() * train[None]) ** 2).sum(-1)
        x0 = torch.softmax(-d2 / (2 * (1 - a)), 1) @ train
        x0s.append(x0)
        return ((x[0] - a.sqrt() * x0) / (1 - a).sqrt())[None]

    g = torch.Generator().manual_seed(2)
    taus = model.strides(levels, 15)
    assert taus[0] == levels - 1 and taus[-1] == 0 and len(taus) == 15
    noise = torch.randn(1, 400, 2, generator=g)
    extra = [torch.randn(1, 400, 2, generator=g) for _ in taus]
    real = model.forward
    model.forward = ideal_forward  # type: ignore[assignment]
    try:
        x = model.sample([Ideal()], ab, levels, 15, noise, extra)  # type: ignore[list-item]
    finally:
        model.forward = real  # type: ignore[assignment]
    near = torch.cdist(x[0], train).min(1).values
    assert float((near <= 0.1 * spacing(train)).float().mean()) > 0.95
    # and it is not one point: the samples spread over the training points
    assert len(set(torch.cdist(x[0], train).argmin(1).tolist())) >= 6


def test_adamw_matches_torch_for_each_run_of_a_stack():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2, 3, 4, generator=g)
    grads = [torch.randn(2, 3, 4, generator=g) for _ in range(3)]
    lr, wd = torch.tensor([1e-2, 3e-3]), torch.tensor([0.0, 0.1])
    mine = [w.clone()]
    m, v = [torch.zeros_like(w)], [torch.zeros_like(w)]
    count = torch.zeros(2, dtype=torch.long)
    for gr in grads:
        count += 1
        model.adamw(mine, [gr], m, v, count, lr, wd)
    for r in range(2):
        p = torch.nn.Parameter(w[r].clone())
        opt = torch.optim.AdamW([p], lr=float(lr[r]), weight_decay=float(wd[r]))
        for gr in grads:
            p.grad = gr[r].clone()
            opt.step()
        assert torch.allclose(mine[0][r], p.detach(), atol=1e-6)


# ---------------------------------------------------------------------------- the engine
def test_stacked_runs_follow_the_series_they_follow_alone():
    knobs = [{"seed": 0}, {"seed": 1, "dropout": 0.2, "weight_decay": 0.1},
             {"seed": 2, "ema": 0.9, "train_points": 100, "schedule": "linear"},
             {"seed": 3, "lr": 1e-2, "sample_steps": 5}]
    stack = engine(*knobs)
    alone = [engine(k) for k in knobs]
    for _ in range(8):
        stack.step()
        for e in alone:
            e.step()
    ticks = stack.tick()
    for i, e in enumerate(alone):
        for a, b in zip(stack.params, e.params):
            assert torch.allclose(a[i], b[0], atol=1e-6, rtol=1e-5)
        t = e.tick()[0]
        assert t["memorised"] == pytest.approx(ticks[i]["memorised"], abs=1e-3)
        assert t["denoise_loss"] == pytest.approx(ticks[i]["denoise_loss"], rel=1e-4)


def test_a_run_saved_and_loaded_goes_on_with_the_same_series(tmp_path):
    straight = engine({"seed": 5, "dropout": 0.1, "ema": 0.5})
    moved = engine({"seed": 5, "dropout": 0.1, "ema": 0.5})
    for _ in range(5):
        straight.step()
        moved.step()
    moved.export(0).save(tmp_path / "run.pt")
    st = DiffState.load(tmp_path / "run.pt")
    assert st.cfg == moved.cfgs[0] and st.step == 5 and st.count == 5
    moved = DiffusionEngine([st], moved.data, torch.device("cpu"))
    for _ in range(5):
        straight.step()
        moved.step()
    for a, b in zip(straight.params + straight.ema, moved.params + moved.ema):
        assert torch.equal(a, b)
    assert int(moved.steps[0]) == 10
    assert straight.tick()[0]["memorised"] == moved.tick()[0]["memorised"]


def test_a_tick_does_not_change_what_training_draws():
    ticked, quiet = engine({"seed": 7}), engine({"seed": 7})
    for k in range(6):
        ticked.step()
        quiet.step()
        if k % 2:
            ticked.tick(pictures=[0])
    assert all(torch.equal(a, b) for a, b in zip(ticked.params, quiet.params))


def test_a_live_change_is_validated_and_applied_at_the_next_step():
    eng = engine({"seed": 0})
    r16 = float(eng.radius[0])
    change = validate_changes(eng.cfgs[0], {"train_points": "512", "weight_decay": "0.1"},
                              live=True)
    ev = eng.apply(0, change)
    assert ev.changes == {"train_points": 512, "weight_decay": 0.1} and ev.version == 1
    assert int(eng.n[0]) == 512 and float(eng.wd[0]) == pytest.approx(0.1)
    assert float(eng.radius[0]) < r16  # more points lie closer together
    assert ev.config["family"] == "diffusion"
    with pytest.raises(ConfigError) as e:
        validate_changes(eng.cfgs[0], {"width": 64}, live=True)
    assert e.value.field == "width"
    with pytest.raises(ConfigError) as e:
        validate_changes(eng.cfgs[0], {"train_points": 5}, live=True)
    assert e.value.field == "train_points" and "[8, 4096]" in e.value.message
    with pytest.raises(ConfigError) as e:
        validate_changes(eng.cfgs[0], {"sample_steps": 50}, live=True)
    assert e.value.field == "sample_steps" and "noise_levels" in e.value.message


def test_a_tick_reports_samples_training_points_score_arrows_and_memorisation():
    eng = engine({"seed": 0})
    t = eng.tick(pictures=[0])[0]
    assert t["samples"].shape == (256, 2) and t["value_grid"].shape == (16, 16)
    assert t["arrows"].shape == (ARROWS, ARROWS, 2) and len(t["occupancy"]) == 8
    for k in ("denoise_loss", "memorised", "memorised_chance", "nn_distance", "effective_modes"):
        assert math.isfinite(t[k])
    assert 0 <= t["memorised"] <= 1 and 0 < t["memorised_chance"] < 0.3
    # the landscape peaks (1) at every training point
    assert float(t["value_grid"].max()) == pytest.approx(1.0, abs=0.3)
    no_pic = eng.tick()[0]
    assert "value_grid" not in no_pic and "arrows" not in no_pic


# ---------------------------------------------------------------------------- dynamics
def test_a_few_points_are_memorised_and_many_are_not():
    """8 points trained 1,000 steps: samples copy the training points several times as often
    as fresh data would by chance; 1,024 points: hardly ever (measured, five seeds: 0.28-0.50
    against 0.08 by chance; 0.00-0.01)."""
    few = [{"seed": s, "train_points": 8} for s in range(2)]
    many = [{"seed": s, "train_points": 1024} for s in range(2)]
    eng = engine(*[{**k, "width": 64, "depth": 3, "noise_levels": 50, "batch": 128,
                    "sample_steps": 25, "lr": 1e-2} for k in few + many])
    for _ in range(1000):
        eng.step()
    t = eng.tick()
    mem = [t[i]["memorised"] for i in range(4)]
    chance = [t[i]["memorised_chance"] for i in range(4)]
    assert min(mem[:2]) > 2.5 * max(chance[:2]), (mem, chance)
    assert max(mem[2:]) < 0.15, mem


# ---------------------------------------------------------------------------- the family
def test_the_cli_lists_diffusion_and_trains_its_preset(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def cli(*args: str) -> str:
        p = subprocess.run([sys.executable, "-m", "collapse_lab.server.cli", *args],
                           capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stderr
        return p.stdout

    reg = json.loads(json.dumps(registry.options()))  # what `collapse-lab options --json` prints
    fam = {f["name"]: f for f in reg["families"]}["diffusion"]
    knobs = {k["name"]: k for k in fam["knobs"]}
    assert {"train_points", "width", "weight_decay", "dropout", "ema", "schedule",
            "sample_steps"} <= set(knobs)
    assert knobs["train_points"]["live"] is True and knobs["width"]["live"] is False
    assert fam["frame"]["arrows"] == "learned score" and "circle" in fam["datasets"]
    assert {s["name"] for s in fam["stats"]} >= {"memorised", "memorised_chance", "nn_distance"}
    preset = {p["name"]: p for p in reg["presets"]}["diffusion-memorise-circle"]
    assert preset["family"] == "diffusion" and preset["expect"]["metric"] == "memorised"
    out = json.loads(cli("train", "--preset", "diffusion-memorise-circle", "--steps", "40",
                         "--width", "32", "--json", "--data-dir", str(tmp_path)))
    assert out["config"]["family"] == "diffusion" and out["final"]["step"] == 40
    assert 0 <= out["final"]["memorised"] <= 1 and out["final"]["memorised_chance"] > 0
    p = subprocess.run([sys.executable, "-m", "collapse_lab.server.cli", "train", "--family",
                        "diffusion", "--train-points", "3", "--steps", "5"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode != 0 and "--train-points" in p.stderr and "[8, 4096]" in p.stderr


def test_a_sweep_trains_diffusion_runs_packed():
    jobs = sweep.jobs_for([("few", "diffusion-memorise-circle", {"width": 32, "samples": 64}),
                           ("many", "diffusion-memorise-circle",
                            {"width": 32, "samples": 64, "train_points": 1024})], [0], 20, 10)
    rows = sweep.run_pack(jobs)
    assert [r["label"] for r in rows] == ["few", "many"]
    assert all(r["objective"] == "diffusion" and r["steps"] == 20 for r in rows)
