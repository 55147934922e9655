"""The vae family: its knobs, its estimators against their definitions, stacked runs against runs
alone, a checkpoint's round trip, and posterior collapse and free bits on small seeded runs.

The bounds of the dynamics tests come from measured runs (docs/presets.md has the ten-seed
tables at full size); here small networks for a few hundred steps — seconds in all.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from collapse_lab.trainer import families
from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.vae.config import make_config, validate_changes
from collapse_lab.trainer.families.vae.engine import ACTIVE, VaeEngine, VaeState
from collapse_lab.trainer.family import Restack
from collapse_lab.trainer.knobs import ConfigError

SMALL = dict(latent=8, encoder_width=32, decoder_width=32, batch_size=32, device="cpu")
_DATA: dict = {}


@pytest.fixture(scope="module", autouse=True)
def digits(tmp_path_factory):
    """The digits, their classifier trained once for the module and cached in a data dir the
    CLI test reads too."""
    path = tmp_path_factory.mktemp("data")
    _DATA["dir"], _DATA["d"] = path, make_dataset(make_config({}), path)
    yield
    _DATA.clear()


def engine(*knob_sets: dict, states: list | None = None) -> VaeEngine:
    cfgs = [make_config({**SMALL, **k}) for k in knob_sets]
    return VaeEngine(states or [VaeState.fresh(c) for c in cfgs], _DATA["d"],
                     torch.device("cpu"))


def run(eng: VaeEngine, steps: int) -> dict:
    for _ in range(steps):
        eng.step()
    return eng.tick()


# ---------------------------------------------------------------------------- knobs
def test_a_vae_config_names_its_family_and_refuses_bad_knobs_by_name():
    cfg = families.make_config({"family": "vae", "beta": "2.5"})
    assert cfg.family == "vae" and cfg.beta == 2.5 and cfg.dataset == "digits"
    assert families.make_config(cfg.to_dict()) == cfg  # a stored config reads back
    for bad, field in [({"beta": -1}, "beta"), ({"latent": 0}, "latent"),
                       ({"free_bits": 5}, "free_bits"), ({"dataset": "ring8"}, "dataset"),
                       ({"population": 8}, "population"), ({"aggressive": 1.5}, "aggressive")]:
        with pytest.raises(ConfigError) as e:
            families.make_config({"family": "vae", **bad})
        assert e.value.field == field, bad
    # live: β, warm-up, free bits, aggressive steps, lr; not the sizes
    assert validate_changes(cfg, {"free_bits": "0.5", "warmup": 100}, live=True) == \
        {"free_bits": 0.5, "warmup": 100}
    with pytest.raises(ConfigError) as e:
        validate_changes(cfg, {"latent": 4}, live=True)
    assert e.value.field == "latent"


# ---------------------------------------------------------------------------- estimators
def test_active_units_and_kl_per_unit_follow_their_definitions():
    eng = engine({})
    t = run(eng, 30)[0]
    p = {n: v.detach()[:1] for n, v in eng.params.items()}
    mu, logvar = eng.encode(p, eng.x[None])
    var = mu[0].var(0)
    assert t["active_units"] == int((var > ACTIVE).sum())
    kl = 0.5 * (mu[0] ** 2 + logvar[0].exp() - 1 - logvar[0]).mean(0)
    assert t["panels"]["kl_units"]["values"] == pytest.approx(kl.tolist(), rel=1e-3, abs=1e-4)
    assert t["panels"]["activity"]["values"] == pytest.approx(var.tolist(), rel=1e-3, abs=1e-5)
    assert t["panels"]["activity"]["ref"] == ACTIVE


def test_the_mutual_information_estimate_is_zero_at_the_prior_and_log_m_when_z_names_x():
    eng = engine({})
    m, lat = len(eng.mi_idx), eng.latent
    idx = torch.tensor([0])
    prior = eng._mutual_info(torch.zeros(1, m, lat), torch.zeros(1, m, lat), idx)
    # every posterior is the prior, q(z) = N(0, I): the estimate is its Monte Carlo error
    # alone, E[log q(z|x)] − mean log N(z_i) = ½ (mean |z_i|² − L), z_i the run's fixed noise
    eps = eng.mi_eps[0]
    mc = 0.5 * float(eps.pow(2).sum(-1).mean() - lat)
    assert abs(mc) < 3 * math.sqrt(2 * lat / m) / 2  # 3 standard errors of it
    # shown at least 0: I(x; z) is a KL divergence, a figure below 0 the noise alone
    assert float(prior) == pytest.approx(max(mc, 0.0), abs=1e-4)
    far = torch.randn(1, m, lat, generator=torch.Generator().manual_seed(0)) * 10
    sharp = eng._mutual_info(far, torch.full((1, m, lat), -10.0), idx)
    # posteriors far apart and sharp: z names its image, q(z_i) = q(z_i|x_i) / M, so the
    # estimate is log M plus the same Monte Carlo term
    assert float(sharp) == pytest.approx(math.log(m) + mc, abs=1e-3)
    # where the noise reads below 0 the figure is 0: the same posteriors with the run's draws
    # shrunk, so that mean |ε|² is below L
    eng.mi_eps[0] = eps * 0.9
    low = 0.5 * float((eps * 0.9).pow(2).sum(-1).mean() - lat)
    assert low < 0 and float(eng._mutual_info(torch.zeros(1, m, lat), torch.zeros(1, m, lat),
                                              idx)) == 0.0


def test_free_bits_floor_each_units_kl_cost_and_warm_up_ramps_the_weight():
    eng = engine({"beta": 2.0, "warmup": 10}, {"beta": 2.0, "free_bits": 3.0})
    assert eng.kl_weight().tolist() == pytest.approx([2.0 * 1 / 10, 2.0])
    eng.steps[:] = 4
    assert eng.kl_weight().tolist() == pytest.approx([2.0 * 5 / 10, 2.0])
    idx = torch.zeros(2, 32, dtype=torch.long)
    eps = torch.zeros(2, 32, eng.latent)
    w = torch.ones(2)
    obj, recon, kl = (v.detach() for v in eng._losses(idx, eps, w))
    # run 0 pays its KL; run 1 pays at least 3 nats for each of its 8 units
    assert float(obj[0]) == pytest.approx(float(recon[0] + kl[0]), rel=1e-5)
    assert float(obj[1]) >= float(recon[1]) + 3.0 * eng.latent - 1e-4
    assert float(kl[1]) < 3.0 * eng.latent  # a fresh encoder's KL is small


# ---------------------------------------------------------------------------- stacking
def test_stacked_runs_follow_the_series_they_follow_alone():
    knobs = [{"beta": 1.0, "seed": 3}, {"beta": 4.0, "free_bits": 0.5, "seed": 4},
             {"beta": 2.0, "warmup": 20, "aggressive": 2, "lr": 3e-3, "seed": 5}]
    stacked = run(engine(*knobs), 25)
    for i, k in enumerate(knobs):
        alone = run(engine(k), 25)[0]
        for name in ("recon_loss", "kl", "active_units", "mutual_info", "modes_covered"):
            assert stacked[i][name] == pytest.approx(alone[name], rel=1e-4, abs=1e-5), name


def test_a_run_saved_and_loaded_goes_on_with_the_same_series(tmp_path):
    k = {"beta": 2.0, "aggressive": 1, "seed": 7}
    eng = engine(k)
    run(eng, 15)
    eng.step()  # a step since the last tick: its sums travel too
    eng.export(0).save(tmp_path / "vae.pt")
    back = families.load_checkpoint(tmp_path / "vae.pt")
    assert back.cfg == eng.cfgs[0] and back.step == 16
    again = engine(k, states=[back])
    a, b = run(eng, 10)[0], run(again, 10)[0]
    for name in ("step", "recon_loss", "kl", "mutual_info", "active_units"):
        assert a[name] == pytest.approx(b[name], rel=1e-6, abs=1e-7), name


def test_a_live_change_applies_at_the_next_step_and_a_shape_change_moves_the_run():
    eng = engine({"beta": 1.0}, {"beta": 1.0, "seed": 1})
    ev = eng.apply(1, {"free_bits": 0.5, "beta": 1.0})
    assert ev.changes == {"free_bits": 0.5} and ev.version == 1
    assert eng.free_bits.tolist() == [0.0, 0.5]
    with pytest.raises(Restack):
        eng.apply(0, {"speed": 10.0})


def test_a_tick_reports_prior_samples_reconstructions_and_the_mode_metrics():
    t = run(engine({}), 5)[0]
    assert t["samples"].shape == (64, 64) and -1 <= t["samples"].min() <= t["samples"].max() <= 1
    assert len(t["occupancy"]) == 10 and 0 <= t["modes_covered"] <= 10
    rec = t["panels"]["recon"]
    assert len(rec["images"]) == 32 <= 64 and rec["shape"] == [8, 8]
    assert rec["labels"][:2] == ["in", "out"]
    assert all(0 <= v <= 1 for img in rec["images"] for v in img)
    assert len(t["panels"]["kl_units"]["labels"]) == 8
    json.dumps(t["panels"])  # small JSON, as a frame carries it


# ---------------------------------------------------------------------------- dynamics
def test_a_large_beta_collapses_the_posterior_and_free_bits_keep_the_units():
    # measured (5 seeds, 400 steps of these small networks): β 6 leaves 0 active units,
    # I(x; z) estimated in [-0.08, 0.05] (shown at least 0) and one class; free bits 1 nat/unit
    # at β 6 keep 8 of 8 units active with I(x; z) in [1.2, 2.1]
    knobs = [{"beta": 6.0, "seed": s} for s in (0, 1, 2)]
    rescued = [{**k, "free_bits": 1.0} for k in knobs]
    t = run(engine(*knobs, *rescued), 400)
    for i in range(3):
        assert t[i]["active_units"] <= 1 and 0 <= t[i]["mutual_info"] < 0.2
        assert t[i]["modes_covered"] <= 3
        assert t[3 + i]["active_units"] >= 6 and t[3 + i]["mutual_info"] > 0.8


def test_a_sweep_row_of_a_vae_run_names_its_family():
    from collapse_lab.trainer import sweep as sw

    jobs = sw.jobs_for([("fb", "vae-collapse-digits", {"free_bits": 0.5, "latent": 4})], [0],
                       20, 10, str(_DATA["dir"]))
    row = sw.run_pack(jobs)[0]
    assert row["objective"] == "vae" and row["steps"] == 20 and row["num_modes"] == 10
    assert row["overrides"] == "free_bits=0.5 latent=4"


def test_the_cli_trains_a_vae_and_prints_its_final_metrics():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "collapse_lab.server.cli", "train", "--family",
                        "vae", "--steps", "40", "--tick-every", "20", "--latent", "4",
                        "--json", "--data-dir", str(_DATA["dir"])],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["config"]["family"] == "vae" and out["final"]["step"] == 40
    assert {"recon_loss", "kl", "active_units", "mutual_info", "modes_covered"} <= \
        set(out["final"])
    assert "panels" not in out["final"] and 0 <= out["final"]["active_units"] <= 4
