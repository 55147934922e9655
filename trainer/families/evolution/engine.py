"""R genetic algorithms evolved as one stacked population: one generation, one tick.

The populations (R, N, 2) of the runs of one engine share their size and the landscape
(`config.stack_key`) and may differ in every live knob. Each run has its own random stream (a
torch.Generator seeded from its seed) that draws one fixed-size block a generation
(trainer/families/evolution/ga.py: `Draws`), so a run evolved alone, in a stack of eight or
moved between stacks follows one series; runs whose streams are in the same state (a compare
group: one seed) share one generator and one draw.

A tick reports the population as the samples (every individual), the fitness landscape as the
value grid — with sharing on, as a newcomer would see it: the fitness at x divided by the niche
count there — and the project's mode metrics (trainer/metrics.py) with "high quality" read as
"on a peak": within the peak's width (the mode's std broadened by σ, the `fitness_sigma` knob)
of a mode.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from collapse_lab.trainer.commands import ConfigChanged
from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families.evolution import ga
from collapse_lab.trainer.families.evolution.config import make_config, stack_key
from collapse_lab.trainer.families.evolution.landscape import Landscape
from collapse_lab.trainer.family import Restack, save_atomic
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.metrics import mode_metrics
from collapse_lab.trainer.stats import tick_fields
from collapse_lab.trainer.streams import Streams

STATS = ("fitness_mean", "fitness_max", "spread")
HIST_BINS = 10  # the fitness histogram panel's bars, tenths of [0, 1]
HIST_LABELS = [f"{k / HIST_BINS:.1f}–{(k + 1) / HIST_BINS:.1f}" for k in range(HIST_BINS)]
FORMAT = 1  # checkpoint format of an evolution run


@dataclass
class EvoState:
    """One run's whole state apart from any stack: its checkpoint."""

    cfg: Any
    step: int = 0  # generations evolved
    version: int = 0  # live changes applied
    pop: torch.Tensor | None = None  # (N, 2); None = the seed's first generation
    gen: torch.Tensor | None = None  # the random stream's state; None = seeded from cfg.seed
    gen_device: str = "cpu"
    prev_occupancy: torch.Tensor | None = None
    elapsed: float = 0.0

    @classmethod
    def fresh(cls, cfg: Any) -> EvoState:
        return cls(cfg=cfg)

    # ------------------------------------------------------------ checkpoints
    def to_dict(self) -> dict[str, Any]:
        return dict(format=FORMAT, config=self.cfg.to_dict(), step=self.step,
                    version=self.version, pop=self.pop, gen=self.gen,
                    gen_device=self.gen_device, prev_occupancy=self.prev_occupancy,
                    elapsed=self.elapsed, saved=time.time())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvoState:
        if d.get("format") != FORMAT:
            raise ValueError(f"evolution checkpoint format {d.get('format')!r}, this version "
                             f"reads {FORMAT}")
        return cls(cfg=make_config(d["config"]), step=int(d["step"]),
                   version=int(d["version"]), pop=d["pop"], gen=d["gen"],
                   gen_device=d["gen_device"], prev_occupancy=d["prev_occupancy"],
                   elapsed=float(d["elapsed"]))

    def save(self, path: Path | str) -> None:
        """Atomically: a reader sees the old file or the new one, never half of one."""
        save_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: Path | str) -> EvoState:
        return cls.from_dict(torch.load(path, map_location="cpu", weights_only=False))


def first_generation(cfg: Any, extent: list[float]) -> torch.Tensor:
    """The seed's first population: uniform over the landscape's extent (N, 2)."""
    g = torch.Generator().manual_seed(cfg.seed + 104_729)
    lo, hi = extent[0], extent[1]
    return lo + (hi - lo) * torch.rand(cfg.population, 2, generator=g)


class EvolutionEngine:
    def __init__(self, states: Sequence[EvoState], data: Dataset, device: torch.device):
        if not states:
            raise ValueError("an engine needs at least one run")
        if len({stack_key(s.cfg) for s in states}) != 1:
            raise ValueError("the runs of one engine must agree on the step's shape")
        self.data, self.device = data, torch.device(device)
        self.landscape = Landscape(data)
        self.runs = r = len(states)
        self.cfgs = [s.cfg for s in states]
        c0 = self.cfgs[0]
        grid, self.extent = data.grid_points(c0.grid_size)
        self.grid = grid[None].to(self.device)  # (1, G·G, 2)
        self.lo, self.hi = self.extent[0], self.extent[1]
        self.pop = torch.stack([
            (s.pop if s.pop is not None else first_generation(s.cfg, self.extent))
            for s in states]).to(self.device, torch.get_default_dtype())  # (R, N, 2)

        self.streams = Streams(states, self.device)  # each run's, shared by runs in one state

        self.steps = np.array([s.step for s in states], dtype=np.int64)
        self.versions = [s.version for s in states]
        self.prev_occupancy = [None if s.prev_occupancy is None
                               else s.prev_occupancy.to(self.device) for s in states]
        now = time.perf_counter()
        self.elapsed0 = [s.elapsed for s in states]
        self.joined = [now] * r
        self.last_tick = [(now, s.step) for s in states]
        self._configure()

    # ------------------------------------------------------------------ configuration
    def _configure(self) -> None:
        cfgs, dev = self.cfgs, self.device

        def t(values: list[Any], dtype: torch.dtype | None = None) -> torch.Tensor:
            return torch.tensor(values, device=dev, dtype=dtype or torch.get_default_dtype())

        self.params = ga.Params(
            tournament=t([c.tournament_size for c in cfgs], torch.long),
            truncation=t([c.truncation for c in cfgs]),
            use_truncation=t([c.selection == "truncation" for c in cfgs], torch.bool),
            crossover=t([c.crossover_rate for c in cfgs]),
            alpha=t([c.blend_alpha for c in cfgs]),
            mutation=t([c.mutation_rate for c in cfgs]),
            sigma_mut=t([c.mutation_sigma for c in cfgs]),
            share_radius=t([c.sharing_radius for c in cfgs]),
            share_alpha=t([c.sharing_alpha for c in cfgs]),
            crowding=t([c.crowding for c in cfgs], torch.bool),
            immigrants=t([c.immigrants for c in cfgs]),
            islands=t([c.islands for c in cfgs], torch.long),
            migration=t([c.migration for c in cfgs]),
        )
        self.sigmas = [c.fitness_sigma for c in cfgs]
        stds: torch.Tensor = self.data.stds  # type: ignore[attr-defined]  # every 2-D dataset's
        self.hq_radius = torch.stack([
            torch.sqrt(stds.to(dev) ** 2 + c.fitness_sigma ** 2) for c in cfgs])  # (R, K)

    def fitness(self, x: torch.Tensor) -> torch.Tensor:
        """Fitness of points x (R, M, 2) under each run's landscape (R, M)."""
        return self.landscape(x, self.sigmas)

    def apply(self, i: int, changes: dict[str, Any]) -> ConfigChanged:
        """A live change to run i between generations; returns the change event.

        The change was validated where it entered (trainer/commands.py: `parse`) and is applied
        as it is. Raises Restack when it alters the step's shape and other runs share this
        engine."""
        old = self.cfgs[i]
        new = old.replace(**changes)
        if stack_key(new) != stack_key(old) and self.runs > 1:
            raise Restack(i, changes)
        applied = {k: v for k, v in changes.items() if getattr(old, k) != v}
        self.cfgs[i] = new
        self._configure()
        if applied:
            self.versions[i] += 1
        return ConfigChanged(step=int(self.steps[i]), version=self.versions[i], changes=applied,
                             config=new.to_dict())

    # ------------------------------------------------------------------ the step
    def draws(self) -> ga.Draws:
        n = self.pop.shape[1]
        return ga.Draws.stack([ga.Draws.draw(n, g, self.device) for g in self.streams.gens],
                              self.streams.stream_of)

    @torch.no_grad()
    def step(self, norms: bool = True, part: str = "both") -> None:
        """One generation of every run."""
        d = self.draws()
        if d.pick.dtype != self.pop.dtype:
            d = ga.Draws(**{f: getattr(d, f).to(self.pop.dtype)
                            for f in ga.Draws.__dataclass_fields__})
        self.pop = ga.generation(self.pop, self.fitness, self.params, d, self.lo, self.hi)
        self.steps += 1

    # ------------------------------------------------------------------ metrics
    @torch.no_grad()
    def tick(self, rows: Sequence[int] | None = None, pictures: Sequence[int] = (),
             manifolds: Sequence[int] = ()) -> dict[int, dict[str, Any]]:
        rows = list(range(self.runs)) if rows is None else list(rows)
        if not rows:
            return {}
        now = time.perf_counter()
        idx = torch.tensor(rows, device=self.device)
        pop = self.pop[idx]  # (n, N, 2)
        n, ns = pop.shape[:2]
        f = self.landscape(pop, [self.sigmas[i] for i in rows])  # (n, N)
        dist = self.data.distances(pop.reshape(n * ns, 2)).view(n, ns, -1)  # (n, N, K)
        dmin, nearest = dist.min(-1)
        on_peak = dmin <= self.hq_radius[idx].gather(1, nearest)
        weights = getattr(self.data, "weights", None)
        spread = (pop - pop.mean(1, keepdim=True)).pow(2).sum(-1).mean(1).sqrt()  # (n,)
        packed = []
        for j, i in enumerate(rows):
            mm = mode_metrics(nearest[j], on_peak[j], self.data.num_modes,
                              self.prev_occupancy[i], weights)
            self.prev_occupancy[i] = mm["occupancy"]
            packed.append(torch.cat([
                torch.stack([f[j].mean(), f[j].max(), spread[j]]),
                torch.stack([mm[k] for k in METRICS]), mm["occupancy"]]))
        finite = torch.isfinite(pop).flatten(1).all(dim=1)
        host = torch.cat([torch.stack(packed), finite[:, None].to(f.dtype)], 1).cpu().numpy()
        pics = [i for i in rows if i in set(pictures)]
        grids = self._value_grids(pics) if pics else {}
        hists = self._fitness_hists(f, rows, pics) if pics else {}
        xs = pop.float().cpu().numpy()
        near_np = nearest.to(torch.int16).cpu().numpy()
        hq_np = on_peak.cpu().numpy()
        out = {}
        for j, i in enumerate(rows):
            t = tick_fields(self, i, now, host[j], STATS, METRICS)
            step = t["step"]
            if host[j, -1] < 1 or not math.isfinite(t["fitness_mean"]):
                t["failed"] = f"the population became NaN/inf at generation {step}"
            t["nearest"] = near_np[j]
            t["hq"] = hq_np[j]
            t["samples"] = xs[j]
            t["extent"] = self.extent
            if i in grids:
                t["value_grid"] = grids[i]
            if i in hists:
                t["panels"] = {"fitness_hist": hists[i]}
            out[i] = t
        return out

    def _fitness_hists(self, f: torch.Tensor, rows: list[int],
                       pics: list[int]) -> dict[int, dict[str, Any]]:
        """The family's panel "fitness_hist" (family.py PANELS): the share of each run's
        population in each tenth of the fitness range [0, 1] (the highest peak is 1), a "bars"
        value (docs/families.md, "Panels"). A collapsed population stands in the top bar; one
        bred across two peaks by crossover shows its children in the valleys between."""
        bins = HIST_BINS
        at = {i: j for j, i in enumerate(rows)}
        sel = f[[at[i] for i in pics]].float().clamp(0, 1)  # (p, N)
        idx = (sel * bins).long().clamp(max=bins - 1)
        counts = torch.zeros(len(pics), bins, device=sel.device).scatter_add_(
            1, idx, torch.ones_like(sel))
        share = (100 * counts / sel.shape[1]).cpu().numpy()
        return {i: {"labels": HIST_LABELS, "values": share[j], "ref": None, "unit": "%"}
                for j, i in enumerate(pics)}

    def _value_grids(self, pics: list[int]) -> dict[int, np.ndarray]:
        """The landscape each run's population sees, over the value grid: fitness, divided by
        the niche count a newcomer would have there when sharing is on."""
        idx = torch.tensor(pics, device=self.device)
        grid = self.grid.expand(len(pics), -1, -1).to(self.pop.dtype)
        f = self.landscape(grid, [self.sigmas[i] for i in pics])
        sub = ga.Params(**{k: getattr(self.params, k)[idx]
                           for k in ga.Params.__dataclass_fields__})
        v = f / ga.niche_field(grid, self.pop[idx], sub)
        side = self.cfgs[0].grid_size
        return {i: v[j].view(side, side).float().cpu().numpy() for j, i in enumerate(pics)}

    def elapsed(self, i: int, now: float | None = None) -> float:
        return self.elapsed0[i] + ((now or time.perf_counter()) - self.joined[i])

    # ------------------------------------------------------------------ runs in and out
    def export(self, i: int) -> EvoState:
        return EvoState(cfg=self.cfgs[i], step=int(self.steps[i]), version=self.versions[i],
                        pop=self.pop[i].detach().clone(), gen=self.streams.state(i),
                        gen_device=self.device.type, prev_occupancy=self.prev_occupancy[i],
                        elapsed=self.elapsed(i))


METRICS = ("modes_captured", "modes_covered", "hq_fraction", "effective_modes", "reverse_kl",
           "hopping")


def build(states: Sequence[EvoState], data: Dataset, device: torch.device) -> EvolutionEngine:
    keys = [stack_key(s.cfg) for s in states]
    if len(set(keys)) != 1:
        first = dict(keys[0])
        for k in keys[1:]:
            diff = next(n for n, v in k if first[n] != v)
            raise ConfigError(diff, "these runs cannot share one stacked step: they differ in "
                              f"{diff}")
    return EvolutionEngine(states, data, device)
