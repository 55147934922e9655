"""An engine's training step captured as a CUDA graph and replayed.

Tiny GAN MLPs spend most of a step launching kernels; a captured graph launches them all at once,
for one run or for hundreds stacked. Every value a user can change live (learning rates, betas,
penalty weights, clipping bound, the objective masks) is a device tensor the graph reads at
replay, so a new value needs no re-capture. A change of what the step computes (`Engine.key()`:
the set of objectives or penalties in use, the step's shape) re-captures at the next step;
networks and optimizer state carry on. Real data, noise and interpolation weights are drawn on
the device from the runs' generators, registered with the graph so each replay draws fresh
numbers.

The knob `cuda_graph` chooses: `off` = eager; `on` = capture; `auto` = capture only where a quick
self-check (a tiny run, graphed vs eager, same parameters after a few steps) passes on this
device. Any capture error falls back to eager for the rest of the engine's life, and the engine
says why (`graph_reason`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)

_SELF_CHECK: dict[str, tuple[bool, str]] = {}  # device name -> (passed, reason)


class GraphedStep:
    """Owns the captured graph of one engine's step; `Engine.step` calls `step()`."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.graph: Any = None
        self.graph_key: tuple | None = None
        self.captures = 0

    def invalidate(self) -> None:
        self.graph = None

    def step(self) -> bool:
        """One training step, replayed (or captured); False: the caller steps eagerly."""
        key = self.engine.key()
        if self.graph is not None and key == self.graph_key:
            self.graph.replay()
            return True
        stepped = False
        try:
            stepped = self._capture(key)
        except Exception as e:  # any capture error: eager for the rest of the engine's life
            reason = f"capture failed, running eager: {type(e).__name__}: {e}"
            log.warning(reason)
            self.graph = None
            self.engine.graph = None
            self.engine.graph_reason = reason[:500]
        return stepped

    def _capture(self, key: tuple) -> bool:
        """Warm up with one real (eager) step on a side stream, then capture the next one.

        The warm-up is a training step like any other (it counts); capturing records the
        kernels without running them, so no step is lost or taken twice. Returns True once the
        warm-up step has run (a capture error after it must not step again).
        """
        eng = self.engine
        self.graph = None
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            eng.device_step(True)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        register = getattr(g, "register_generator_state", None)
        if register is None:
            raise RuntimeError("this torch cannot register a generator with a CUDA graph")
        for gen in eng.streams.gens:
            register(gen)
        try:
            with torch.cuda.graph(g):
                eng.device_step(True)
        except Exception as e:
            reason = f"capture failed, running eager: {type(e).__name__}: {e}"
            log.warning(reason)
            eng.graph, eng.graph_reason = None, reason[:500]
            return True
        self.graph, self.graph_key = g, key
        self.captures += 1
        return True


def self_check(device: torch.device, factory: Callable[[Any], Any]) -> tuple[bool, str]:
    """A tiny run graphed vs eager: the same parameters after a few steps? (cached per device)

    `factory(knobs)` builds a one-run engine from a dict of knobs.
    """
    name = str(device)
    if name in _SELF_CHECK:
        return _SELF_CHECK[name]
    try:
        knobs = dict(device=name, g_width=16, d_width=16, batch_size=32, eval_samples=100,
                     grid_size=8, objective="wgan-gp", cuda_graph="off")
        eager, graphed = factory(knobs), factory(knobs)
        fast = GraphedStep(graphed)
        for _ in range(4):
            eager.device_step(True)
            if not fast.step():
                raise RuntimeError(graphed.graph_reason)
        worst = max(float((a - b).abs().max()) for a, b in
                    zip(eager.G.parameters(), graphed.G.parameters(), strict=True))
        ok = worst < 1e-4
        reason = (f"self-check passed (max parameter difference {worst:.1e} after 4 steps)" if ok
                  else f"self-check failed: graphed and eager differ by {worst:.1e}")
    except Exception as e:
        ok, reason = False, f"self-check failed: {type(e).__name__}: {e}"[:500]
    _SELF_CHECK[name] = (ok, reason)
    return ok, reason


def pick_step_impl(engine: Any,
                   factory: Callable[[Any], Any] | None = None) -> tuple[GraphedStep | None, str]:
    """(the graphed step or None for eager, why) for a new engine, following cfg.cuda_graph."""
    mode = engine.cfgs[0].cuda_graph
    if engine.device.type != "cuda":
        return None, f"device is {engine.device.type}: CUDA graphs need a CUDA device"
    if mode == "off":
        return None, "cuda_graph is off"
    if mode == "auto":
        if factory is None:
            return None, "no self-check available"
        ok, reason = self_check(engine.device, factory)
        if not ok:
            return None, reason
    else:
        reason = "cuda_graph is on"
    return GraphedStep(engine), reason
