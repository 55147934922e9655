"""R diffusion models trained as one stack: one step, one tick.

The runs of one engine share the network's shape, the number of noise levels, the batch and the
samples a tick (`config.stack_key`) and may differ in every live knob: the training set's size,
the schedule, the learning rate, the regularisers, the sampler's steps. Each run draws its
batches from its own random stream (a torch.Generator seeded from its seed), and its samples at a
tick from a generator seeded by its seed and step, so a run trained alone, in a stack of eight,
moved between stacks or ticked more often follows one series.

**The training set.** Every run of a seed draws the same 4,096 points once from the dataset; its
training set is the first `train_points` of them, so a run given more points live keeps the ones
it has seen.

**Memorisation, measured** (docs/families.md). A generated sample is *memorised* when it lies
nearer a training point than a tenth of the training points' spacing (the mean distance from a
training point to its nearest other one). A model that has learned the distribution rather than
its training points still lands that near one by chance: the engine measures that share on fresh
data from the distribution (`memorised_chance`), about 10 % on a curve whatever N. The mode
metrics (trainer/metrics.py) read the samples as the GAN's are read.

A tick carries the generated samples, the training points' neighbourhoods as the landscape
(a bump of the memorised radius around each point, so a sample inside one is memorised), and the
learned score ∇log p_t = −ε(x, t)/√(1 − ᾱ_t) at the `score_level` on a 16 × 16 lattice
(`arrows`).
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
from collapse_lab.trainer.families.diffusion import model
from collapse_lab.trainer.families.diffusion.config import make_config, stack_key
from collapse_lab.trainer.families.diffusion.knobs import MAX_TRAIN
from collapse_lab.trainer.family import Restack, save_atomic
from collapse_lab.trainer.metrics import mode_metrics
from collapse_lab.trainer.stats import tick_fields

STATS = ("denoise_loss", "memorised", "memorised_chance", "nn_distance")
METRICS = ("modes_captured", "modes_covered", "hq_fraction", "effective_modes", "reverse_kl",
           "hopping")
FORMAT = 1  # checkpoint format of a diffusion run
MEMO_FRACTION = 0.1  # memorised: nearer a training point than this share of their spacing
CHANCE_SAMPLES = 2048  # fresh data points that measure the chance share
ARROWS = 16  # side of the score field's lattice


@dataclass
class DiffState:
    """One run's whole state apart from any stack: its checkpoint."""

    cfg: Any
    step: int = 0
    version: int = 0
    params: list[torch.Tensor] | None = None  # None = the seed's initial weights
    ema: list[torch.Tensor] | None = None
    m: list[torch.Tensor] | None = None  # Adam's moments
    v: list[torch.Tensor] | None = None
    count: int = 0  # Adam steps taken
    gen: torch.Tensor | None = None  # the batch stream's state; None = seeded from cfg.seed
    gen_device: str = "cpu"
    prev_occupancy: torch.Tensor | None = None
    elapsed: float = 0.0

    @classmethod
    def fresh(cls, cfg: Any) -> DiffState:
        return cls(cfg=cfg)

    def to_dict(self) -> dict[str, Any]:
        return dict(format=FORMAT, config=self.cfg.to_dict(), step=self.step,
                    version=self.version, params=self.params, ema=self.ema, m=self.m, v=self.v,
                    count=self.count, gen=self.gen, gen_device=self.gen_device,
                    prev_occupancy=self.prev_occupancy, elapsed=self.elapsed,
                    saved=time.time())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiffState:
        if d.get("format") != FORMAT:
            raise ValueError(f"diffusion checkpoint format {d.get('format')!r}, this version "
                             f"reads {FORMAT}")
        return cls(cfg=make_config(d["config"]), step=int(d["step"]),
                   version=int(d["version"]), params=d["params"], ema=d["ema"], m=d["m"],
                   v=d["v"], count=int(d["count"]), gen=d["gen"], gen_device=d["gen_device"],
                   prev_occupancy=d["prev_occupancy"], elapsed=float(d["elapsed"]))

    def save(self, path: Path | str) -> None:
        """Atomically: a reader sees the old file or the new one, never half of one."""
        save_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: Path | str) -> DiffState:
        return cls.from_dict(torch.load(path, map_location="cpu", weights_only=False))


def training_pool(cfg: Any, data: Dataset) -> torch.Tensor:
    """The seed's 4,096 points drawn once (MAX_TRAIN, 2): a run's training set is a prefix."""
    g = torch.Generator().manual_seed(cfg.seed * 7_919 + 17)
    return data.to_cpu_sample(MAX_TRAIN, g)


def spacing(points: torch.Tensor) -> float:
    """Mean distance from each point to its nearest other point (N ≥ 2)."""
    d = torch.cdist(points, points)
    d.fill_diagonal_(float("inf"))
    return float(d.min(1).values.mean())


def _seed(*parts: int) -> int:
    h = 1_469_598_103
    for p in parts:
        h = (h * 1_000_003 + int(p) + 12_345) % (2**63 - 1)
    return h


class DiffusionEngine:
    def __init__(self, states: Sequence[DiffState], data: Dataset, device: torch.device):
        if not states:
            raise ValueError("an engine needs at least one run")
        if len({stack_key(s.cfg) for s in states}) != 1:
            raise ValueError("the runs of one engine must agree on the step's shape")
        self.data, self.device = data, torch.device(device)
        self.runs = r = len(states)
        self.cfgs = [s.cfg for s in states]
        c0 = self.cfgs[0]
        self.levels, self.batch, self.nsamples = c0.noise_levels, c0.batch, c0.samples
        grid, self.extent = data.grid_points(c0.grid_size)
        self.grid = grid.to(self.device)  # (G·G, 2)
        self.clip = max(abs(v) for v in self.extent)
        dev, dt = self.device, torch.get_default_dtype()

        pools: dict[int, torch.Tensor] = {}
        for s in states:
            if s.cfg.seed not in pools:
                pools[s.cfg.seed] = training_pool(s.cfg, data)
        self.pool = torch.stack([pools[s.cfg.seed] for s in states]).to(dev, dt)  # (R, P, 2)
        self.fresh = torch.stack([
            data.to_cpu_sample(CHANCE_SAMPLES, torch.Generator().manual_seed(_seed(s.cfg.seed, 3)))
            for s in states]).to(dev, dt)  # (R, C, 2): the chance share's data

        def stacked(per_run: list[list[torch.Tensor]]) -> list[torch.Tensor]:
            return [torch.stack([p[k] for p in per_run]).to(dev, dt).contiguous()
                    for k in range(len(per_run[0]))]

        inits = [s.params if s.params is not None else
                 model.init_params(c0.width, c0.depth, torch.Generator().manual_seed(s.cfg.seed))
                 for s in states]
        self.params = [p.requires_grad_() for p in stacked(inits)]
        self.ema = stacked([s.ema if s.ema is not None else p for s, p in zip(states, inits)])
        self.m = stacked([s.m if s.m is not None else [torch.zeros_like(t) for t in p]
                          for s, p in zip(states, inits)])
        self.v = stacked([s.v if s.v is not None else [torch.zeros_like(t) for t in p]
                          for s, p in zip(states, inits)])
        self.count = torch.tensor([s.count for s in states], device=dev)

        self.gens: list[torch.Generator] = []
        for s in states:
            g = torch.Generator(device=dev)
            if s.gen is not None and s.gen_device == dev.type:
                g.set_state(s.gen)
            else:
                g.manual_seed(_seed(s.cfg.seed, s.step, 1))
            self.gens.append(g)

        self.steps = np.array([s.step for s in states], dtype=np.int64)
        self.versions = [s.version for s in states]
        self.prev_occupancy = [None if s.prev_occupancy is None
                               else s.prev_occupancy.to(dev) for s in states]
        self.loss_sum = torch.zeros(r, device=dev)
        self.loss_n = torch.zeros(r, device=dev)
        now = time.perf_counter()
        self.elapsed0 = [s.elapsed for s in states]
        self.joined = [now] * r
        self.last_tick = [(now, s.step) for s in states]
        self._memo: dict[tuple[int, int], tuple[float, float]] = {}  # (row, N) -> radius, chance
        self._configure()

    # ------------------------------------------------------------------ configuration
    def _configure(self) -> None:
        cfgs, dev, dt = self.cfgs, self.device, torch.get_default_dtype()

        def t(values: list[Any], dtype: torch.dtype = dt) -> torch.Tensor:
            return torch.tensor(values, device=dev, dtype=dtype)

        self.abar = torch.stack([model.schedule(c.schedule, self.levels) for c in cfgs]
                                ).to(dev, dt)  # (R, T)
        self.n = t([c.train_points for c in cfgs], torch.long)
        self.lr, self.wd = t([c.lr for c in cfgs]), t([c.weight_decay for c in cfgs])
        self.dropout = [c.dropout for c in cfgs]
        self.ema_decay = t([c.ema for c in cfgs])[:, None, None]
        radius, chance = [], []
        for i, c in enumerate(cfgs):
            key = (i, c.train_points)
            if key not in self._memo:
                train = self.pool[i, :c.train_points]
                rad = MEMO_FRACTION * spacing(train)
                near = torch.cdist(self.fresh[i], train).min(1).values
                self._memo[key] = (rad, float((near <= rad).to(dt).mean()))
            radius.append(self._memo[key][0])
            chance.append(self._memo[key][1])
        self.radius, self.chance = t(radius), t(chance)

    def apply(self, i: int, changes: dict[str, Any]) -> ConfigChanged:
        """A live change to run i between steps; returns the change event.

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
    def draws(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
        """Each run's batch from its own stream: which training points (R, B), levels (R, B),
        noise (R, B, 2) and, when a run drops units, its dropout multipliers."""
        b, dev, dt = self.batch, self.device, torch.get_default_dtype()
        width = self.params[0].shape[-1]
        layers = len(self.params) // 2 - 1
        us, ts, es, drops = [], [], [], []
        for i, g in enumerate(self.gens):
            us.append(torch.rand(b, generator=g, device=dev, dtype=dt))
            ts.append(torch.randint(self.levels, (b,), generator=g, device=dev))
            es.append(torch.randn(b, 2, generator=g, device=dev, dtype=dt))
            p = self.dropout[i]
            if p > 0:
                keep = torch.rand(layers, b, width, generator=g, device=dev, dtype=dt) >= p
                drops.append(keep.to(dt) / (1 - p))
            else:
                drops.append(torch.ones(layers, b, width, device=dev, dtype=dt))
        pick = (torch.stack(us) * self.n[:, None]).long().clamp_max(self.pool.shape[1] - 1)
        drop = None
        if any(p > 0 for p in self.dropout):
            d = torch.stack(drops, 1)  # (layers, R, B, width)
            drop = list(d.unbind(0))
        return pick, torch.stack(ts), torch.stack(es), drop

    def step(self, norms: bool = True, part: str = "both") -> None:
        """One training step of every run: a batch of its training points, noised to random
        levels; the noise predictor's squared error; AdamW; the EMA."""
        pick, tt, eps, drop = self.draws()
        x0 = self.pool.gather(1, pick[..., None].expand(-1, -1, 2))
        a = self.abar.gather(1, tt)[..., None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        with torch.enable_grad():
            pred = model.forward(self.params, xt, tt, self.levels, drop)
            loss = (pred - eps).pow(2).mean((1, 2))  # (R,)
            grads = torch.autograd.grad(loss.sum(), self.params)
        with torch.no_grad():
            self.count += 1
            model.adamw(self.params, list(grads), self.m, self.v, self.count, self.lr, self.wd)
            w = 1 - self.ema_decay
            for e, p in zip(self.ema, self.params):
                e.lerp_(p, w)
            self.loss_sum += loss.detach()
            self.loss_n += 1
        self.steps += 1

    # ------------------------------------------------------------------ metrics
    def generate(self, rows: list[int]) -> torch.Tensor:
        """Samples (n, M, 2) of runs `rows` from their EMA weights, each run's noise from a
        generator seeded by its seed and step (ticks never touch the training stream)."""
        dev, dt = self.device, torch.get_default_dtype()
        out = torch.empty(len(rows), self.nsamples, 2, device=dev, dtype=dt)
        groups: dict[int, list[int]] = {}
        for j, i in enumerate(rows):
            groups.setdefault(self.cfgs[i].sample_steps, []).append(j)
        for steps, js in groups.items():
            idx = [rows[j] for j in js]
            taus = model.strides(self.levels, steps)
            starts, extras = [], []
            for i in idx:
                g = torch.Generator(device=dev).manual_seed(
                    _seed(self.cfgs[i].seed, int(self.steps[i]), 2))
                starts.append(torch.randn(self.nsamples, 2, generator=g, device=dev, dtype=dt))
                extras.append(torch.randn(len(taus), self.nsamples, 2, generator=g, device=dev,
                                          dtype=dt))
            ii = torch.tensor(idx, device=dev)
            x = model.sample([p[ii] for p in self.ema], self.abar[ii], self.levels, steps,
                             torch.stack(starts), list(torch.stack(extras, 1).unbind(0)),
                             clip=self.clip)
            out[torch.tensor(js, device=dev)] = x
        return out

    @torch.no_grad()
    def tick(self, rows: Sequence[int] | None = None, pictures: Sequence[int] = (),
             manifolds: Sequence[int] = ()) -> dict[int, dict[str, Any]]:
        rows = list(range(self.runs)) if rows is None else list(rows)
        if not rows:
            return {}
        now = time.perf_counter()
        dev, dt = self.device, torch.get_default_dtype()
        idx = torch.tensor(rows, device=dev)
        x = self.generate(rows)  # (n, M, 2)
        n, m = x.shape[:2]
        top = int(self.n[idx].max())
        d = torch.cdist(x, self.pool[idx, :top])  # (n, M, top)
        beyond = torch.arange(top, device=dev)[None, None] >= self.n[idx][:, None, None]
        dmin = d.masked_fill(beyond, float("inf")).min(-1).values  # (n, M)
        memorised = (dmin <= self.radius[idx][:, None]).to(dt).mean(1)
        finite_x = torch.isfinite(x).all(-1)
        nn_dist = torch.where(finite_x, dmin, 0.0).mean(1)
        safe = torch.where(finite_x[..., None], x, 0.0)
        nearest, hq = self.data.assign(safe.reshape(n * m, 2))
        nearest, hq = nearest.view(n, m), hq.view(n, m) & finite_x
        loss = self.loss_sum[idx] / self.loss_n[idx].clamp_min(1)
        self.loss_sum[idx] = 0.0
        self.loss_n[idx] = 0.0
        weights = getattr(self.data, "weights", None)
        finite = torch.stack([torch.stack([torch.isfinite(p[i]).all() for p in self.params]).all()
                              for i in rows]) & finite_x.all(1) & torch.isfinite(loss)
        packed = []
        for j, i in enumerate(rows):
            mm = mode_metrics(nearest[j], hq[j], self.data.num_modes, self.prev_occupancy[i],
                              weights)
            self.prev_occupancy[i] = mm["occupancy"]
            packed.append(torch.cat([
                torch.stack([loss[j], memorised[j], self.chance[i], nn_dist[j]]),
                torch.stack([mm[k] for k in METRICS]), mm["occupancy"]]))
        host = torch.cat([torch.stack(packed), finite[:, None].to(dt)], 1).cpu().numpy()
        pics = [i for i in rows if i in set(pictures)]
        grids = self._zones(pics) if pics else {}
        arrows = self._score_field(pics) if pics else {}
        xs = x.float().cpu().numpy()
        near_np = nearest.to(torch.int16).cpu().numpy()
        hq_np = hq.cpu().numpy()
        out = {}
        for j, i in enumerate(rows):
            t = tick_fields(self, i, now, host[j], STATS, METRICS)
            if host[j, -1] < 1 or not math.isfinite(t["denoise_loss"]):
                t["failed"] = f"the model diverged (NaN/inf) at step {t['step']}"
            t["nearest"] = near_np[j]
            t["hq"] = hq_np[j]
            t["samples"] = xs[j]
            t["extent"] = self.extent
            if i in grids:
                t["value_grid"] = grids[i]
                t["arrows"] = arrows[i]
            out[i] = t
        return out

    def training_points(self, i: int) -> np.ndarray:
        """Run i's training set (N, 2)."""
        return self.pool[i, :self.cfgs[i].train_points].float().cpu().numpy()

    def _zones(self, pics: list[int]) -> dict[int, np.ndarray]:
        """Each run's training points over the value grid: a bump exp(−d²/2w²) around each,
        w the memorised radius (at least a grid cell, so every point shows)."""
        side = self.cfgs[0].grid_size
        cell = (self.extent[1] - self.extent[0]) / max(side - 1, 1)
        out = {}
        for i in pics:
            train = self.pool[i, :self.cfgs[i].train_points]
            d = torch.cdist(self.grid, train).min(1).values
            w = max(float(self.radius[i]), cell)
            out[i] = torch.exp(-0.5 * (d / w) ** 2).view(side, side).float().cpu().numpy()
        return out

    def _score_field(self, pics: list[int]) -> dict[int, np.ndarray]:
        """The learned score −ε(x, t)/√(1 − ᾱ_t) at each run's `score_level`, on an
        ARROWS × ARROWS lattice over the extent (row 0 at ymin): (ARROWS, ARROWS, 2)."""
        dev, dt = self.device, torch.get_default_dtype()
        x0, x1, y0, y1 = self.extent
        xs = torch.linspace(x0, x1, ARROWS, device=dev, dtype=dt)
        ys = torch.linspace(y0, y1, ARROWS, device=dev, dtype=dt)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        lattice = torch.stack([gx, gy], -1).view(1, -1, 2).expand(len(pics), -1, -1)
        levels = [min(self.levels - 1, round(self.cfgs[i].score_level * (self.levels - 1)))
                  for i in pics]
        ii = torch.tensor(pics, device=dev)
        tt = torch.tensor(levels, device=dev)[:, None].expand(-1, lattice.shape[1])
        e = model.forward([p[ii] for p in self.ema], lattice, tt, self.levels)
        a = self.abar[ii].gather(1, tt[:, :1])[..., None]
        score = -e / (1 - a).sqrt()
        return {i: score[j].view(ARROWS, ARROWS, 2).float().cpu().numpy()
                for j, i in enumerate(pics)}

    def elapsed(self, i: int, now: float | None = None) -> float:
        return self.elapsed0[i] + ((now or time.perf_counter()) - self.joined[i])

    # ------------------------------------------------------------------ runs in and out
    def export(self, i: int) -> DiffState:
        def one(ts: list[torch.Tensor]) -> list[torch.Tensor]:
            return [t[i].detach().clone() for t in ts]

        return DiffState(cfg=self.cfgs[i], step=int(self.steps[i]), version=self.versions[i],
                         params=one(self.params), ema=one(self.ema), m=one(self.m),
                         v=one(self.v), count=int(self.count[i]),
                         gen=self.gens[i].get_state().clone(), gen_device=self.device.type,
                         prev_occupancy=self.prev_occupancy[i], elapsed=self.elapsed(i))
