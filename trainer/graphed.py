"""One run's training step captured as a CUDA graph and replayed.

Tiny GAN MLPs spend most of a step launching kernels; a captured graph launches them all at once.
The step is trainer/stacked_step.py's with R = 1: every value a user can change live (learning
rates, betas, penalty weights, entropy weight, clipping bound) is a device tensor the graph reads
at replay, so a new value needs no re-capture. A change of what the step computes (objective,
a remedy switched on or off, n_critic, batch size, optimizer) changes `StackedStep.key()`, and
the next step re-captures; networks and optimizer state carry on. Real data, noise and
interpolation weights are drawn on the device from the run's own generator, registered with the
graph so each replay draws fresh numbers.

The knob `cuda_graph` chooses: `off` = eager; `on` = capture; `auto` = capture only where a quick
self-check (a tiny run, graphed vs eager, same parameters after a few steps) passes on this
device. Any capture error falls back to eager for the rest of the run, and `Trainer.info()` says
why (`cuda_graph`, `cuda_graph_reason`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch

from collapse_lab.trainer.stacked_step import StackedStep

if TYPE_CHECKING:
    from collapse_lab.trainer.loop import Trainer

log = logging.getLogger(__name__)

_SELF_CHECK: dict[str, tuple[bool, str]] = {}  # device name -> (passed, reason)


class GraphedStep:
    """Owns the captured graph of one Trainer's step; the Trainer calls `step()`."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.graph: Any = None
        self.graph_key: tuple | None = None
        self.captures = 0
        self._build()

    def _build(self) -> None:
        t = self.trainer
        self.stepper = StackedStep(t.G, t.D, t.data, t.gen, [t.cfg], acc=t._acc.view(1, -1))
        self.stepper.opt_g.load_from_torch(t.opt_g)
        self.stepper.opt_d.load_from_torch(t.opt_d)
        self.graph = None

    # ------------------------------------------------------------ called by the Trainer
    def step(self) -> bool:
        """One training step, replayed; False if capture failed (the Trainer then goes eager)."""
        t = self.trainer
        key = (self.stepper.key(), t._acc.data_ptr())
        if self.graph is not None and key == self.graph_key:
            self.graph.replay()
            return True
        try:
            self._capture(key)
        except Exception as e:  # any capture error: eager for the rest of the run
            reason = f"capture failed, running eager: {type(e).__name__}: {e}"
            log.warning(reason)
            self.graph = None
            self.sync()
            t.fast_step = None
            t.cuda_graph_reason = reason[:500]
            return False
        return True

    def sync(self) -> None:
        """Write the optimizer state into the Trainer's torch optimizers (checkpoints, fallback)."""
        self.stepper.opt_g.store_to_torch(self.trainer.opt_g)
        self.stepper.opt_d.store_to_torch(self.trainer.opt_d)

    def reload(self) -> None:
        """After a live change or a restore: take the Trainer's config and optimizer state."""
        t = self.trainer
        if t.cfg.optimizer != self.stepper.opt_g.kind:
            self._build()  # a different optimizer: fresh buffers, a fresh capture
            return
        self.stepper.opt_g.load_from_torch(t.opt_g)
        self.stepper.opt_d.load_from_torch(t.opt_d)
        self.stepper.set_configs([t.cfg])
        self.stepper.acc = t._acc.view(1, -1)

    # ------------------------------------------------------------ capture
    def _capture(self, key: tuple) -> None:
        """Warm up with one real (eager) step on a side stream, then capture the next one.

        The warm-up step is a training step like any other (it counts); capturing records the
        kernels without running them, so no step is lost or taken twice.
        """
        self.graph = None
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.stepper.step(want_norms=True)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        register = getattr(g, "register_generator_state", None)
        if register is None:
            raise RuntimeError("this torch cannot register a generator with a CUDA graph")
        register(self.trainer.gen)
        with torch.cuda.graph(g):
            self.stepper.step(want_norms=True)
        self.graph, self.graph_key = g, key
        self.captures += 1


def self_check(device: torch.device) -> tuple[bool, str]:
    """A tiny run graphed vs eager: the same parameters after a few steps? (cached per device)"""
    name = str(device)
    if name in _SELF_CHECK:
        return _SELF_CHECK[name]
    from collapse_lab.trainer.config import make_config
    from collapse_lab.trainer.loop import Trainer

    try:
        cfg = make_config(dict(device="cuda", g_width=16, d_width=16, batch_size=32,
                               eval_samples=100, grid_size=8, objective="wgan-gp",
                               cuda_graph="off"))
        eager, graphed = Trainer(cfg), Trainer(cfg)
        ref = StackedStep(eager.G, eager.D, eager.data, eager.gen, [cfg])
        fast = GraphedStep(graphed)
        for _ in range(4):
            ref.step()
            if not fast.step():
                raise RuntimeError(graphed.cuda_graph_reason)
        worst = max(float((a - b).abs().max()) for a, b in
                    zip(eager.G.parameters(), graphed.G.parameters(), strict=True))
        ok = worst < 1e-4
        reason = (f"self-check passed (max parameter difference {worst:.1e} after 4 steps)" if ok
                  else f"self-check failed: graphed and eager differ by {worst:.1e}")
    except Exception as e:
        ok, reason = False, f"self-check failed: {type(e).__name__}: {e}"[:500]
    _SELF_CHECK[name] = (ok, reason)
    return ok, reason


def pick_step_impl(trainer: Trainer) -> tuple[GraphedStep | None, str]:
    """(the fast step or None for eager, why) for a new Trainer, following cfg.cuda_graph."""
    mode = getattr(trainer.cfg, "cuda_graph", "auto")
    if trainer.device.type != "cuda":
        return None, f"device is {trainer.device.type}: CUDA graphs need a CUDA device"
    if mode == "off":
        return None, "cuda_graph is off"
    if mode == "auto":
        ok, reason = self_check(trainer.device)
        if not ok:
            return None, reason
    else:
        reason = "cuda_graph is on"
    try:
        return GraphedStep(trainer), reason
    except Exception as e:
        return None, f"could not prepare the graphed step: {type(e).__name__}: {e}"[:500]
