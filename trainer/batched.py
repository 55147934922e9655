"""Many runs as one batched model: a compare grid trained in one set of kernels.

The networks already stack every weight along a leading runs dimension (trainer/models.py), so N
runs that share the dataset, seed and shapes train as one Generator/Discriminator with R = N,
one flat optimizer (trainer/stacked_optim.py) and one step (trainer/stacked_step.py). Runs may
differ in any value — learning rates, betas, penalty weights, entropy weight, clipping bound —
and in the objective (a per-run mix of losses by masks). They must agree on what shapes the step:
`group_key` below; `plan_groups` splits a grid into as few such groups as possible.

All runs of a group see the same real batches and the same noise, from the same initial
weights, so their differences come from their configs alone. Each run gets its own tick dict,
the same as Trainer.tick() gives (docs/metrics.md), computed with one host copy for the group.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from collapse_lab.trainer import objectives as objectives_mod
from collapse_lab.trainer.config import ConfigError, RunConfig, validate_changes
from collapse_lab.trainer.datasets import make_dataset
from collapse_lab.trainer.loop import METRICS, SCALARS, resolve_device
from collapse_lab.trainer.metrics import mode_metrics
from collapse_lab.trainer.models import Discriminator, Generator
from collapse_lab.trainer.stacked_step import StackedStep, structure

# knobs every run of a batched group shares: they fix the data, the networks or the schedule
SHARED = ("dataset", "data", "clusters", "z_dim", "g_width", "g_depth", "d_width", "d_depth",
          "activation", "mbd_kernels", "mbd_dim", "seed", "steps", "speed", "tick_every",
          "eval_samples", "grid_size", "device", "threads")


def group_key(cfg: RunConfig) -> tuple:
    """Runs with equal keys can train in one batched step."""
    return tuple(getattr(cfg, k) for k in SHARED) + structure(cfg)


def plan_groups(cfgs: Sequence[RunConfig]) -> list[list[int]]:
    """Indices of `cfgs` split into batched groups, in order of first appearance."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(cfgs):
        groups.setdefault(group_key(c), []).append(i)
    return list(groups.values())


class BatchedTrainer:
    """R runs of one group trained together; per-run ticks, per-run live value changes."""

    def __init__(self, cfgs: Sequence[RunConfig], data_dir: Path | None = None):
        if not cfgs:
            raise ValueError("a batched group needs at least one run")
        keys = {group_key(c) for c in cfgs}
        if len(keys) != 1:
            raise ConfigError("runs", "these runs differ in a knob that shapes the step; split "
                              "them with plan_groups() (shared: " + ", ".join(SHARED) + ")")
        self.cfgs = list(cfgs)
        c0 = self.cfgs[0]
        self.runs = r = len(self.cfgs)
        self.device = resolve_device(c0.device)
        if c0.threads > 0:
            torch.set_num_threads(c0.threads)
        self.data = make_dataset(c0, data_dir).to(self.device)
        # the same initialisation order and streams as Trainer, so run i starts where an eager
        # Trainer with the same seed starts
        init = torch.Generator().manual_seed(c0.seed)
        out_tanh = self.data.kind == "image"
        self.G = Generator(r, c0.z_dim, c0.g_width, c0.g_depth, self.data.dim, c0.activation,
                           out_tanh, init).to(self.device)
        self.D = Discriminator(r, self.data.dim, c0.d_width, c0.d_depth, c0.activation,
                               c0.mbd_kernels, c0.mbd_dim, init).to(self.device)
        ev = torch.Generator().manual_seed(c0.seed + 7919)
        self.eval_z = torch.randn(1, c0.eval_samples, c0.z_dim, generator=ev).to(self.device)
        self.gen = torch.Generator(device=self.device).manual_seed(c0.seed)
        self.stepper = StackedStep(self.G, self.D, self.data, self.gen, self.cfgs)
        self.step = 0
        self.versions = [0] * r
        self.prev_occupancy: list[torch.Tensor | None] = [None] * r
        self.failed: dict[int, str] = {}  # run index -> why it stopped being meaningful
        self._acc_steps = 0
        self._t0 = time.perf_counter()
        self._last_tick = (self._t0, 0)
        if self.data.kind == "2d":
            grid, self.extent = self.data.grid_points(c0.grid_size)
            self.grid = grid[None].to(self.device)  # (1, G·G, 2)

    # ------------------------------------------------------------ training
    def train_step(self) -> None:
        self.stepper.step(want_norms=(self.step + 1) % self.cfgs[0].tick_every == 0)
        self.step += 1
        self._acc_steps += 1

    def train(self, steps: int) -> None:
        for _ in range(steps):
            self.train_step()

    def apply(self, run: int, changes: dict[str, Any]) -> dict[str, Any]:
        """A live change to one run: values (and the objective) only; returns the change event.

        A change to a knob that shapes the step (n_critic, batch size, batch features, unroll,
        spectral norm, optimizer) would move the run out of its group, and is refused.
        """
        changes = validate_changes(self.cfgs[run], changes, live=True)
        old = self.cfgs[run]
        new = old.replace(**changes)
        if group_key(new) != group_key(old):
            field = next(k for k in changes if getattr(new, k) != getattr(old, k)
                         and k not in ("objective", "gp", "r1", "entropy", "clip", "lr_g",
                                       "lr_d", "beta1", "beta2"))
            raise ConfigError(field, "changes the shape of a batched group's step; only values "
                              "and the objective can change per run in a batched grid")
        applied = {k: v for k, v in changes.items() if getattr(old, k) != v}
        self.cfgs[run] = new
        self.stepper.set_configs(self.cfgs)
        if applied:
            self.versions[run] += 1
        return dict(type="config", version=self.versions[run], step=self.step, changes=applied,
                    config=new.to_dict())

    # ------------------------------------------------------------ metrics
    @torch.no_grad()
    def tick(self, picture: bool = True) -> list[dict[str, Any]]:
        """One tick dict per run, keyed as Trainer.tick()'s; one host copy for the scalars.
        Without `picture`, D's landscape (`value_grid`) is left out, as in Trainer.tick."""
        r, c0 = self.runs, self.cfgs[0]
        now = time.perf_counter()
        t_last, s_last = self._last_tick
        rate = (self.step - s_last) / (now - t_last) if self.step > s_last and now > t_last else 0.0
        self._last_tick = (now, self.step)

        x = self.G(self.eval_z.expand(r, -1, -1))  # (R, N, dim)
        n = x.shape[1]
        nearest, hq = self.data.assign(x.reshape(r * n, -1))
        nearest, hq = nearest.view(r, n), hq.view(r, n)
        weights = getattr(self.data, "weights", None)
        means = self.stepper.acc / max(self._acc_steps, 1)  # (R, 7)
        means[:, 5:7] = self.stepper.acc[:, 5:7]  # the last step's gradient norms, not sums
        rows = []
        for i in range(r):
            mm = mode_metrics(nearest[i], hq[i], self.data.num_modes, self.prev_occupancy[i],
                              weights)
            self.prev_occupancy[i] = mm["occupancy"]
            rows.append(torch.cat([means[i], torch.stack([mm[k] for k in METRICS]),
                                   mm["occupancy"]]))
        host = torch.stack(rows).cpu().numpy().astype(float)  # the one sync of the scalars
        finite = torch.isfinite(x).flatten(1).all(dim=1).cpu().tolist()
        self.stepper.acc.zero_()
        self._acc_steps = 0

        grid_v = None
        if self.data.kind == "2d" and picture:
            ctx = x[:, : min(c0.batch_size, 128)] if (c0.minibatch_disc or c0.mbstd) else None
            s = self.D(self.grid.expand(r, -1, -1), **self.stepper.flags, context=ctx)
            prob = torch.tensor([objectives_mod.get_objective(c.objective).value_kind
                                 == "probability" for c in self.cfgs], device=self.device)
            grid_v = torch.where(prob[:, None], torch.sigmoid(s), s).float().cpu().numpy()
        xs = x.float().cpu().numpy()
        near_np = nearest.to(torch.int16).cpu().numpy()
        hq_np = hq.cpu().numpy()

        ns, nm = len(SCALARS), len(METRICS)
        out = []
        elapsed = round(time.perf_counter() - self._t0, 4)
        for i, c in enumerate(self.cfgs):
            t: dict[str, Any] = dict(step=self.step, time=elapsed,
                                     config_version=self.versions[i], steps_per_sec=round(rate, 2))
            for j, k in enumerate(SCALARS):
                t[k] = float(host[i, j])
            for j, k in enumerate(METRICS):
                t[k] = float(host[i, ns + j])
            for k in ("modes_captured", "modes_covered"):
                t[k] = int(t[k])
            t["occupancy"] = [float(v) for v in host[i, ns + nm:]]
            bad = [k for k in ("loss_d", "loss_g") if not math.isfinite(t[k])]
            if (bad or not finite[i]) and i not in self.failed:
                what = bad[0] if bad else "generated samples"
                self.failed[i] = f"{what} became NaN/inf at step {self.step}"
            t["nearest"] = near_np[i]
            t["hq"] = hq_np[i]
            if self.data.kind == "2d":
                t["samples"] = xs[i]
                t["extent"] = self.extent
                if grid_v is not None:
                    t["value_grid"] = grid_v[i].reshape(c.grid_size, c.grid_size)
            else:
                t["samples"] = np.ascontiguousarray(xs[i, :64])
            out.append(t)
        return out

    def info(self) -> dict[str, Any]:
        return dict(device=str(self.device), torch=torch.__version__,
                    threads=torch.get_num_threads(), runs=self.runs,
                    dataset=self.data.describe(), batched=True)

    def real_samples(self, n: int = 2500) -> np.ndarray:
        """The same real samples as Trainer.real_samples for this group's dataset and seed."""
        g = torch.Generator().manual_seed(self.cfgs[0].seed + 1)
        return self.data.to_cpu_sample(n, g).numpy().astype(np.float32)


def train_grid(cfgs: Sequence[RunConfig], steps: int,
               data_dir: Path | None = None) -> list[dict[str, Any]]:
    """Train a compare grid group by group for `steps` steps; the final tick of every run, in
    the order of `cfgs`."""
    out: list[dict[str, Any] | None] = [None] * len(cfgs)
    for idx in plan_groups(cfgs):
        bt = BatchedTrainer([cfgs[i] for i in idx], data_dir)
        bt.train(steps)
        for i, t in zip(idx, bt.tick(), strict=True):
            out[i] = t
    return [t for t in out if t is not None]
