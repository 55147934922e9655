"""Batched training of a compare grid: the same parameters as separate eager Trainers.

Tolerance: runs are compared by the relative distance ‖θ_batched − θ_eager‖ / ‖θ_eager − θ_0‖
over all parameters after 5 steps: < 1e-4 with D scoring real and fake in separate passes as
the eager loop does (float32, the same random draws: only rounding differs). Adam's first
steps amplify rounding in the few elements whose gradient is ~1e-8 (the update is ≈ lr·sign(g)
there), so an element-wise tolerance would measure those elements rather than the maths. A
wrong learning rate, beta, penalty weight or objective is off by a share of the update (> 1e-2,
see test_a_wrong_value_would_be_caught). The joint real+fake pass (faster, the same maths,
other rounding) is checked with a looser bound.
"""

from __future__ import annotations

import pytest
import torch

from collapse_lab.trainer.batched import BatchedTrainer, plan_groups
from collapse_lab.trainer.config import ConfigError, make_config
from collapse_lab.trainer.loop import SCALARS, Trainer
from collapse_lab.trainer.stacked_optim import FlatParams, StackedOptimizer
from collapse_lab.trainer.stacked_step import StackedStep

BASE = dict(batch_size=32, g_width=16, d_width=16, eval_samples=200, grid_size=8, threads=1,
            tick_every=5)
STEPS = 5


@pytest.fixture(autouse=True)
def one_thread_separate_passes(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setattr(StackedStep, "joint_d_pass", False)


def params(model, run=None):
    ps = [p.detach() for p in (*model.G.parameters(), *model.D.parameters())]
    return torch.cat([(p if run is None else p[run]).flatten() for p in ps])


def check_against_eager(variants: list[dict], tol: float = 1e-4) -> BatchedTrainer:
    cfgs = [make_config({**BASE, **v}) for v in variants]
    bt = BatchedTrainer(cfgs)
    start = params(bt, 0).clone()
    bt.train(STEPS)
    for i, c in enumerate(cfgs):
        t = Trainer(c)
        assert torch.equal(params(t), start)  # the same initial weights
        for _ in range(STEPS):
            t.train_step()
        ref = params(t)
        moved = (ref - start).norm()
        assert moved > 0
        err = (params(bt, i) - ref).norm() / moved
        assert err < tol, f"run {i} {variants[i]}: relative difference {err:.2e}"
    return bt


def test_values_differ_per_run():
    check_against_eager([dict(), dict(lr_d=5e-4, beta1=0.0), dict(lr_g=2e-3, beta2=0.9)])


def test_objectives_mix_in_one_batch():
    bt = check_against_eager([dict(objective=o) for o in
                              ("nsgan", "minimax", "wgan", "hinge", "lsgan")])
    ticks = bt.tick()
    assert len(ticks) == 5
    kinds = [bool(((t["value_grid"] >= 0) & (t["value_grid"] <= 1)).all()) for t in ticks]
    assert kinds[0] and kinds[1]  # logistic objectives draw probabilities


def test_penalty_weights_and_n_critic():
    check_against_eager([dict(objective="wgan-gp", n_critic=3),
                         dict(objective="wgan-gp", gp=3.0, lr_d=1e-4, n_critic=3),
                         dict(objective="hinge", gp=1.0, n_critic=3)])


def test_joint_real_fake_pass_is_the_same_maths(monkeypatch):
    monkeypatch.setattr(StackedStep, "joint_d_pass", True)
    check_against_eager([dict(), dict(objective="hinge")], tol=2e-2)
    # (a group draws interpolation weights when any run has gp > 0, so for parity with eager
    # runs every run here has one)
    check_against_eager([dict(objective="wgan-gp"), dict(objective="hinge", gp=1.0)], tol=2e-2)


def test_r1_and_entropy():
    # the entropy estimate's gradient is 1/ρ of the nearest pair: rounding grows through it
    check_against_eager([dict(r1=1.0, entropy=0.5), dict(r1=5.0, entropy=0.1)], tol=5e-3)


def test_batch_features_and_spectral_norm():
    f = dict(minibatch_disc=True, mbstd=True, spectral_norm=True)
    check_against_eager([f, dict(f, lr_g=1e-4)])


def test_unroll_and_rmsprop():
    # ε-dominated first steps (unrolled Adam's √(v̂ + ε²), RMSprop's 1/√((1−α)g²)) amplify
    # rounding more: a looser bound, still far below a wrong value's effect
    check_against_eager([dict(unroll=2), dict(unroll=2, lr_d=3e-4, objective="wgan")], tol=2e-2)
    check_against_eager([dict(optimizer="rmsprop"), dict(optimizer="rmsprop", lr_d=1e-4)],
                        tol=2e-2)


def test_a_wrong_value_would_be_caught():
    cfg = make_config(BASE)
    bt = BatchedTrainer([cfg])
    start = params(bt, 0).clone()
    bt.train(STEPS)
    t = Trainer(cfg.replace(lr_d=cfg.lr_d * 1.5))
    for _ in range(STEPS):
        t.train_step()
    ref = params(t)
    assert (params(bt, 0) - ref).norm() / (ref - start).norm() > 1e-2


def test_tick_per_run_has_trainer_keys():
    cfgs = [make_config(BASE), make_config({**BASE, "lr_d": 1e-4})]
    bt = BatchedTrainer(cfgs)
    bt.train(5)
    t = Trainer(cfgs[0])
    for _ in range(5):
        t.train_step()
    ref = t.tick()
    ticks = bt.tick()
    assert set(ticks[0]) == set(ref)
    for k in (*SCALARS, "modes_captured", "effective_modes", "reverse_kl"):
        assert ticks[0][k] == pytest.approx(ref[k], rel=1e-3, abs=1e-4), k
    assert ticks[0]["grad_norm_d"] > 0
    assert ticks[0]["samples"].shape == ref["samples"].shape
    assert ticks[1]["loss_d"] != ticks[0]["loss_d"]


def test_live_value_change_and_refused_structure():
    bt = BatchedTrainer([make_config(BASE), make_config(BASE)])
    bt.train(2)
    ev = bt.apply(1, {"lr_d": 1e-4, "objective": "hinge"})
    assert ev["changes"] == {"lr_d": 1e-4, "objective": "hinge"} and ev["version"] == 1
    assert float(bt.stepper.opt_d.lr[1]) == pytest.approx(1e-4)
    bt.train(2)
    with pytest.raises(ConfigError) as e:
        bt.apply(0, {"n_critic": 3})
    assert e.value.field == "n_critic"


def test_plan_groups_splits_on_structure_only():
    cfgs = [make_config(dict(lr_d=1e-3)), make_config(dict(n_critic=5)),
            make_config(dict(objective="hinge")), make_config(dict(n_critic=5, gp=1.0))]
    assert plan_groups(cfgs) == [[0, 2], [1, 3]]


def test_flat_optimizer_matches_torch_adam():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(1, 4, 3))
    b = torch.nn.Parameter(a.detach().clone())
    flat = FlatParams([b], runs=1)
    opt = StackedOptimizer(flat, "adam")
    opt.set_hparams([1e-2], [0.5], [0.99])
    ref = torch.optim.Adam([a], lr=1e-2, betas=(0.5, 0.99))
    for i in range(5):
        g = torch.randn(1, 4, 3) * (i + 1)
        a.grad = g.clone()
        flat.grad.copy_(g.flatten())
        ref.step()
        opt.step()
    torch.testing.assert_close(b.detach(), a.detach(), rtol=1e-5, atol=1e-7)
    opt.store_to_torch(ref)
    assert float(ref.state[a]["step"]) == 5
