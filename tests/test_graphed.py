"""The CUDA-graph step: eager on CPU with its reason; on CUDA the graphed step against eager.

Tolerance on CUDA: the graphed step and the eager stacked step run the same kernels with the
same random draws, so parameters agree to 1e-5 after a few steps (element-wise).
"""

from __future__ import annotations

import pytest
import torch

from collapse_lab.trainer.config import make_config
from collapse_lab.trainer.graphed import GraphedStep
from collapse_lab.trainer.loop import Trainer
from collapse_lab.trainer.stacked_step import StackedStep

SMALL = dict(batch_size=32, g_width=16, d_width=16, eval_samples=200, grid_size=8, threads=1)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cpu_runs_eager_and_says_why():
    t = Trainer(make_config(dict(SMALL, device="cpu", cuda_graph="on")))
    info = t.info()
    assert info["cuda_graph"] is False
    assert "cpu" in info["cuda_graph_reason"]
    t.train_step()
    assert t.step == 1


def test_grad_norms_in_a_tick_are_the_last_steps():
    t = Trainer(make_config(dict(SMALL, device="cpu", tick_every=4)))
    for _ in range(4):
        t.train_step()
    tick = t.tick()
    params = [p for p in t.G.parameters() if p.grad is not None]
    last = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
    assert tick["grad_norm_g"] == pytest.approx(float(last), rel=1e-5)


def _params(t: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (*t.G.parameters(), *t.D.parameters())]


@cuda
@pytest.mark.parametrize("over", [dict(), dict(objective="wgan-gp", n_critic=3),
                                  dict(r1=1.0, entropy=0.1), dict(unroll=2),
                                  dict(minibatch_disc=True, spectral_norm=True)])
def test_graphed_matches_eager_on_cuda(over):
    cfg = make_config(dict(SMALL, device="cuda", cuda_graph="off", **over))
    eager, graphed = Trainer(cfg), Trainer(cfg)
    ref = StackedStep(eager.G, eager.D, eager.data, eager.gen, [cfg])
    fast = GraphedStep(graphed)
    for _ in range(4):
        ref.step()
        assert fast.step(), graphed.cuda_graph_reason
    assert fast.captures == 1
    for a, b in zip(_params(eager), _params(graphed), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@cuda
def test_live_changes_on_cuda():
    t = Trainer(make_config(dict(SMALL, device="cuda", cuda_graph="on")))
    assert t.info()["cuda_graph"], t.info()["cuda_graph_reason"]
    for _ in range(3):
        t.train_step()
    fast = t.fast_step
    assert fast is not None and fast.captures == 1
    t.apply({"lr_d": 1e-4, "gp": 0.0})  # values only
    t.train_step()
    assert fast.captures == 1
    assert float(fast.stepper.opt_d.lr[0]) == pytest.approx(1e-4)
    before = _params(t)
    t.apply({"objective": "wgan-gp", "gp": 10.0})  # a different step: captured again
    t.train_step()
    t.train_step()
    assert fast.captures == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(t), strict=True))
    tick = t.tick()
    assert tick["step"] == 6 and tick["term_gp"] > 0
    sd = t.state_dict()
    assert float(sd["opt_d"]["state"][0]["step"]) == 6


@cuda
def test_auto_self_check_decides():
    t = Trainer(make_config(dict(SMALL, device="cuda", cuda_graph="auto")))
    info = t.info()
    assert "self-check" in info["cuda_graph_reason"]
