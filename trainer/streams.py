"""Each run's random stream, as the engine of any family keeps them.

A run has its own stream (a torch.Generator seeded from its seed) and draws everything random
from it, so a run trained alone, in a stack of eight, or moved between stacks follows one series.
Runs whose streams are in the same state (a compare group: one seed, one step) share one
generator and one draw: `combine` spreads the per-stream draws over the runs.

A run's state carries its stream's state (`gen`, `gen_device`). A stream cannot move between
device types (a CPU generator's state means nothing to a CUDA one): such a run, or a fresh one,
is seeded afresh from its seed and step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class Streams:
    """The random streams of the R runs of one engine (`states`: anything with `cfg.seed`,
    `step`, `gen` and `gen_device`)."""

    def __init__(self, states: Sequence[Any], device: torch.device):
        self.device = device
        self.runs = len(states)
        self.gens: list[torch.Generator] = []
        stream_of: list[int] = []
        seen: list[tuple[Any, torch.Tensor | None]] = []
        for s in states:
            own = s.gen if s.gen is not None and s.gen_device == device.type else None
            ident = (s.cfg.seed, s.step) if own is None else None
            for j, (sid, sstate) in enumerate(seen):
                if (own is None and sid == ident) or (
                        own is not None and sstate is not None and torch.equal(own, sstate)):
                    stream_of.append(j)
                    break
            else:
                g = torch.Generator(device=device)
                if own is not None:
                    g.set_state(own)
                else:  # a fresh run, or a state from another device type: seeded afresh
                    g.manual_seed(s.cfg.seed if s.step == 0 else continued_seed(s.cfg.seed,
                                                                                s.step))
                self.gens.append(g)
                seen.append((ident, own))
                stream_of.append(len(self.gens) - 1)
        self.stream_of = torch.tensor(stream_of, device=device)  # run -> its stream

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """One draw per stream (in `gens` order) -> (R, ...) in run order."""
        if len(parts) == 1:
            return parts[0][None].expand(self.runs, *parts[0].shape)
        return torch.stack(parts)[self.stream_of]

    def of(self, i: int) -> torch.Generator:
        """Run i's stream."""
        return self.gens[int(self.stream_of[i])]

    def state(self, i: int) -> torch.Tensor:
        """Run i's stream's state, a copy (what its exported state carries as `gen`)."""
        return self.of(i).get_state().clone()


def continued_seed(seed: int, step: int) -> int:
    """A seed for a run's stream continued on another device type (its state cannot move)."""
    return (seed * 1_000_003 + step * 7_919 + 12_345) % (2**63 - 1)
