"""The CUDA-graph step: eager on CPU with its reason; on CUDA the graphed step against eager.

Tolerance on CUDA: the graphed step and the eager step run the same kernels with the same random
draws, so parameters agree to 1e-5 after a few steps (element-wise).
"""

from __future__ import annotations

import pytest
import torch

from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.gan.config import make_config
from collapse_lab.trainer.families.gan.engine import Engine
from collapse_lab.trainer.families.gan.graphed import GraphedStep
from collapse_lab.trainer.families.gan.state import RunState
from collapse_lab.trainer.loop import Trainer

SMALL = dict(batch_size=32, g_width=16, d_width=16, eval_samples=200, grid_size=8, threads=1)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def engine(knobs: dict, runs: int = 1) -> Engine:
    cfgs = [make_config({**knobs, "seed": i}) for i in range(runs)]
    data = make_dataset(cfgs[0]).to(cfgs[0].device)
    return Engine([RunState.fresh(c, data.dim, False) for c in cfgs], data,
                  torch.device(cfgs[0].device))


def test_cpu_runs_eager_and_says_why():
    t = Trainer()
    t.add("r", make_config(dict(SMALL, device="cpu", cuda_graph="on")))
    eng = t.runs["r"].engine
    assert eng.graph is None and "cpu" in eng.graph_reason
    assert "cpu" in t.info("r")["cuda_graph_reason"]
    eng.step()
    assert t.runs["r"].step == 1


def test_grad_norms_in_a_tick_are_the_last_steps():
    eng = engine(dict(SMALL, device="cpu", tick_every=4))
    for _ in range(4):
        eng.step(norms=True)
    tick = eng.tick()[0]
    grads = [p.grad for p in eng.G.parameters()]
    last = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    assert tick["grad_norm_g"] == pytest.approx(float(last), rel=1e-5)


def _params(e: Engine) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (*e.G.parameters(), *e.D.parameters())]


@cuda
@pytest.mark.parametrize("runs", [1, 8])
@pytest.mark.parametrize("over", [dict(), dict(objective="wgan-gp", n_critic=3),
                                  dict(r1=1.0, entropy=0.1), dict(unroll=2),
                                  dict(minibatch_disc=True, spectral_norm=True)])
def test_graphed_matches_eager_on_cuda(over, runs):
    knobs = dict(SMALL, device="cuda", cuda_graph="off", **over)
    eager, graphed = engine(knobs, runs), engine(knobs, runs)
    fast = GraphedStep(graphed)
    for _ in range(4):
        eager.device_step(True)
        assert fast.step(), graphed.graph_reason
    assert fast.captures == 1
    for a, b in zip(_params(eager), _params(graphed), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@cuda
def test_live_changes_on_cuda():
    t = Trainer()
    t.add("r", make_config(dict(SMALL, device="cuda", cuda_graph="on")))
    eng = t.runs["r"].engine
    assert eng.graph is not None, eng.graph_reason
    for _ in range(3):
        eng.step()
    fast = eng.graph
    assert fast.captures == 1
    t.command("r", {"set": {"lr_d": 1e-4, "gp": 0.0}})  # values only
    eng.step()
    assert fast.captures == 1
    assert float(eng.opt_d.lr[0]) == pytest.approx(1e-4)
    before = _params(eng)
    t.command("r", {"set": {"objective": "wgan-gp", "gp": 10.0}})  # another step: re-captured
    eng.step()
    eng.step()
    assert fast.captures == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(eng), strict=True))
    tick = eng.tick()[0]
    assert tick["step"] == 6 and tick["term_gp"] > 0


@cuda
def test_auto_self_check_decides():
    eng = engine(dict(SMALL, device="cuda", cuda_graph="auto"))
    assert "self-check" in eng.graph_reason
