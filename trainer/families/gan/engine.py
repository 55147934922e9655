"""The training engine: R ≥ 1 runs trained as one stacked model, one step, one tick.

Every weight is stacked along a leading runs dimension (trainer/families/gan/models.py) and both
optimizers
work on one flat buffer per network with per-run values (trainer/families/gan/optim.py), so a
single run is
R = 1 and a compare group, a sweep or a class's packed runs are R > 1 — the same code, the same
kernels, batched.

The runs of one engine agree on what shapes the step (`config.stack_key`: the data, the networks,
the optimizer, batch size, n_critic, unrolling, batch features, spectral norm). They may differ in
every value: the seed (each run brings its own weights and random stream), learning rates,
betas, penalty weights, the clipping bound, the schedule — and the objective, mixed per run by
masks. A change of shape for one run moves it to another engine (trainer/loop.py does that).

Random draws. Each run has its own stream (trainer/streams.py) of real batches, noise and
interpolation weights, and every D update draws all three whatever the knobs (an unused draw
costs microseconds), so a run's draws never depend on its penalties or on the runs beside it.

This module is the step and the engine's shape; a run's state moves in and out of the stack in
state.py (`load_weights`, `load_optimizers`, `export`), and what a tick measures is tick.py.
Per-run results are reported by name into `StepStats` and read by the tick.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from collapse_lab.trainer.commands import ConfigChanged
from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families.gan import objectives as objectives_mod
from collapse_lab.trainer.families.gan import state as run_state
from collapse_lab.trainer.families.gan import tick as ticks
from collapse_lab.trainer.families.gan.config import (
    ConfigError,
    make_config,
    stack_key,
)
from collapse_lab.trainer.families.gan.graphed import pick_step_impl
from collapse_lab.trainer.families.gan.models import networks
from collapse_lab.trainer.families.gan.optim import (
    FlatParams,
    StackedOptimizer,
    differentiable_adam,
)
from collapse_lab.trainer.families.gan.remedies import PENALTIES, DBatch, GBatch
from collapse_lab.trainer.families.gan.state import RunState
from collapse_lab.trainer.families.gan.stats import STEP
from collapse_lab.trainer.family import Restack
from collapse_lab.trainer.stats import StepStats
from collapse_lab.trainer.streams import Streams


class Engine:
    def __init__(self, states: Sequence[RunState], data: Dataset, device: torch.device):
        if not states:
            raise ValueError("an engine needs at least one run")
        keys = {stack_key(s.cfg) for s in states}
        if len(keys) != 1:
            raise ValueError("the runs of one engine must agree on the step's shape "
                             "(config.stack_key)")
        self.data, self.device = data, torch.device(device)
        self.runs = r = len(states)
        c0 = states[0].cfg
        out_tanh = data.kind == "image"
        shapes = torch.Generator().manual_seed(0)  # the weights come from the states below
        G, D = networks(r, c0, data.dim, out_tanh, shapes)
        self.G, self.D = G.to(self.device), D.to(self.device)
        run_state.load_weights(self.G, self.D, states)
        self.g_names = [n for n, _ in self.G.named_parameters()]
        self.d_names = [n for n, _ in self.D.named_parameters()]
        self.flat_g = FlatParams(list(self.G.parameters()), r)
        self.flat_d = FlatParams(list(self.D.parameters()), r)
        self.cfgs = [s.cfg for s in states]
        self._make_optimizers(c0.optimizer)
        run_state.load_optimizers(self, states)
        self.streams = Streams(states, self.device)  # shared by runs in one state
        self.evaluation = ticks.Evaluation(self.cfgs, data, self.device)

        # per-run bookkeeping
        self.stats = StepStats(STEP, r, self.device)
        for i, s in enumerate(states):
            if s.sums is not None:
                self.stats.sums[:, i] = s.sums.to(self.device)
        self.steps = np.array([s.step for s in states], dtype=np.int64)
        self.versions = [s.version for s in states]
        self.n_d = np.array([s.n_d for s in states], dtype=np.int64)
        self.n_g = np.array([s.n_g for s in states], dtype=np.int64)
        self.prev_occupancy = [None if s.prev_occupancy is None
                               else s.prev_occupancy.to(self.device) for s in states]
        now = time.perf_counter()
        self.elapsed0 = [s.elapsed for s in states]
        self.joined = [now] * r
        self.last_tick = [(now, s.step) for s in states]
        # per-run values as device tensors, read by the step (and by a captured graph)
        self.pen_w = torch.zeros(len(PENALTIES), r, device=self.device)
        self.clip = torch.zeros(r, device=self.device)
        self.clip_mask = torch.zeros(r, device=self.device)
        self._clip_el = torch.zeros(self.flat_d.total, device=self.device)
        self._clip_on = torch.zeros(self.flat_d.total, device=self.device)
        self.zero = torch.zeros(r, device=self.device)
        self._configure()
        self.graph, self.graph_reason = pick_step_impl(self, _solo_engine)

    # ------------------------------------------------------------------ configuration
    def _make_optimizers(self, kind: str) -> None:
        self.opt_g = StackedOptimizer(self.flat_g, kind)
        self.opt_d = StackedOptimizer(self.flat_d, kind)

    def _configure(self) -> None:
        """Read every per-run value and the stack's structure from the configs."""
        cfgs, c0 = self.cfgs, self.cfgs[0]
        self.batch_size, self.n_critic, self.unroll = c0.batch_size, c0.n_critic, c0.unroll
        self.pack, self.simultaneous = c0.pack, c0.simultaneous
        self.flags = dict(mbd=c0.minibatch_disc, mbstd=c0.mbstd, sn=c0.spectral_norm,
                          pack=c0.pack)
        self.opt_g.set_hparams([c.lr_g for c in cfgs], [c.beta1 for c in cfgs],
                               [c.beta2 for c in cfgs])
        self.opt_d.set_hparams([c.lr_d for c in cfgs], [c.beta1 for c in cfgs],
                               [c.beta2 for c in cfgs])
        self.pen_w.copy_(torch.tensor([[p.weight(c) for c in cfgs] for p in PENALTIES]))
        self.penalties = [(j, p) for j, p in enumerate(PENALTIES) if any(
            p.weight(c) > 0 for c in cfgs)]
        names = sorted({c.objective for c in cfgs})
        objs = {n: objectives_mod.get_objective(n) for n in names}
        self.objective_of = [objs[c.objective] for c in cfgs]
        self.clip.copy_(torch.tensor([c.clip for c in cfgs]))
        self.clip_mask.copy_(torch.tensor([float(objs[c.objective].clip_weights)
                                           for c in cfgs]))
        self.flat_d.spread(self.clip, self._clip_el)
        self.flat_d.spread(self.clip_mask, self._clip_on)
        self.any_clip = any(o.clip_weights for o in objs.values())
        if len(names) == 1:
            self.objs: list[tuple[objectives_mod.Objective, torch.Tensor | None]] = [
                (objs[names[0]], None)]
        else:  # a per-run mix of objectives: each run's loss is its own objective's, by masks
            self.objs = [(objs[n], torch.tensor([float(c.objective == n) for c in cfgs],
                                                device=self.device)) for n in names]

    def key(self) -> tuple:
        """Everything a captured graph bakes in; the values outside it are read from tensors."""
        return (stack_key(self.cfgs[0]), tuple(type(o).__name__ for o, _ in self.objs),
                tuple(j for j, _ in self.penalties), self.any_clip)

    def apply(self, i: int, changes: dict[str, Any]) -> ConfigChanged:
        """A live change to run i at this step boundary; returns the change event.

        The change was validated where it entered (trainer/commands.py: `parse`) and is applied
        as it is. Raises Restack when the change alters the step's shape and other runs share
        this engine.
        """
        old = self.cfgs[i]
        new = old.replace(**changes)
        if stack_key(new) != stack_key(old):
            if self.runs > 1:
                raise Restack(i, changes)
            self._restructure(old, new)
        applied = {k: v for k, v in changes.items() if getattr(old, k) != v}
        self.cfgs[i] = new
        self._configure()
        if applied:
            self.versions[i] += 1
        return ConfigChanged(step=int(self.steps[i]), version=self.versions[i], changes=applied,
                             config=new.to_dict())

    def _restructure(self, old: Any, new: Any) -> None:
        """A one-run engine changes shape in place (the caller replaces cfgs[0])."""
        rows = torch.tensor([0], device=self.device)
        for feature, params in self.D.feature_params().items():
            if getattr(new, feature) and not getattr(old, feature):
                # a batch feature switched on: its head starts at zero (D's scores unchanged)
                # and its parameters' optimizer state starts afresh (trainer/families/gan/optim.py)
                self.D.zero_head(feature, rows)
                for p in params:
                    self.opt_d.reset(self._param_index(self.flat_d, p), rows)
        if new.pack > old.pack:  # the first layer's weights for the new pack slots start at zero
            d = self.data.dim
            with torch.no_grad():
                self.D.pack_w[rows, (old.pack - 1) * d:(new.pack - 1) * d] = 0.0
            self.opt_d.reset(self._param_index(self.flat_d, self.D.pack_w), rows)
        if new.optimizer != old.optimizer:
            self._make_optimizers(new.optimizer)  # a different optimizer: fresh state
            if self.graph is not None:
                self.graph.invalidate()  # the captured step read the old optimizer's buffers

    @staticmethod
    def _param_index(flat: FlatParams, p: torch.nn.Parameter) -> int:
        return next(j for j, q in enumerate(flat.params) if q is p)

    # ------------------------------------------------------------------ random draws
    def _real(self) -> torch.Tensor:  # (R, pack·B, dim)
        n = self.pack * self.batch_size
        return self.streams.combine([self.data.sample(n, g) for g in self.streams.gens])

    def _noise(self) -> torch.Tensor:  # (R, pack·B, z)
        z, n = int(self.cfgs[0].z_dim), self.pack * self.batch_size
        return self.streams.combine([torch.randn(n, z, generator=g, device=self.device)
                                     for g in self.streams.gens])

    def _packed(self, x: torch.Tensor) -> torch.Tensor:
        """(R, pack·B, dim) -> (R, B, pack·dim): consecutive samples make one pack (PacGAN)."""
        if self.pack == 1:
            return x
        r, n, d = x.shape
        return x.reshape(r, n // self.pack, self.pack * d)

    def _uniform(self) -> torch.Tensor:  # (R, B, 1)
        return self.streams.combine([torch.rand(self.batch_size, 1, generator=g,
                                                device=self.device) for g in self.streams.gens])

    # ------------------------------------------------------------------ the step
    def _d(self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None,
           context: torch.Tensor | None = None) -> torch.Tensor:
        if params is None:
            return self.D(x, **self.flags, context=context)
        return functional_call(self.D, params, (x,), dict(self.flags, context=context))

    def _mix(self, per_objective: list[torch.Tensor]) -> torch.Tensor:
        out = None
        for (_, w), term in zip(self.objs, per_objective, strict=True):
            term = term if w is None else term * w
            out = term if out is None else out + term
        assert out is not None
        return out

    def d_update(self, norms: bool) -> None:
        """One discriminator update of every run."""
        real, z, eps = self._real(), self._noise(), self._uniform()
        with torch.no_grad():
            fake = self._packed(self.G(z))
        real = self._packed(real)
        if self.flags["sn"]:
            self.D.power_iteration(self.pack)
        if self.flags["mbd"] or self.flags["mbstd"]:  # batch features: each batch on its own
            sr, sf = self._d(real), self._d(fake)
        else:  # one pass over real and fake together: half the kernels, the same maths
            s = self._d(torch.cat([real, fake], dim=1))
            sr, sf = s[:, : self.batch_size], s[:, self.batch_size:]
        loss = self._mix([o.d_loss(sr, sf) for o, _ in self.objs])  # (R,)
        self.stats.add("loss_d", loss)
        if self.penalties:
            batch = DBatch(d=self._d, real=real, fake=fake, eps=eps)
            for j, p in self.penalties:
                if p.stage == "d":
                    term = self.pen_w[j] * p.term(batch)
                    self.stats.add(p.stat, term)
                    loss = loss + term
        self.flat_d.zero_grad()
        loss.sum().backward()
        if norms:
            self.stats.put("grad_norm_d", self.flat_d.grad_norm())
        self.opt_d.step()
        if self.any_clip:
            self._clip_d()

    def g_update(self, norms: bool) -> None:
        """One generator update of every run (against D unrolled k steps ahead if asked)."""
        self.g_gradient(norms)
        self.opt_g.step()

    def g_gradient(self, norms: bool) -> None:
        """G's gradient against D as it is now, into G's flat gradient (no update yet)."""
        self.D.requires_grad_(False)
        try:
            total = self.g_objective(report=True)
            self.flat_g.zero_grad()
            total.sum().backward()
            if norms:
                self.stats.put("grad_norm_g", self.flat_g.grad_norm())
        finally:
            self.D.requires_grad_(True)

    def g_objective(self, report: bool = False) -> torch.Tensor:
        """What G minimises in its update, per run (R,), with its graph to G's parameters:
        its loss against D (unrolled k steps ahead if asked) plus its penalty terms. Draws this
        update's noise (and the unrolled steps' batches) from the runs' streams."""
        samples = self.G(self._noise())  # (R, pack·B, dim)
        fake = self._packed(samples)
        if self.unroll > 0:
            params = self._unrolled_d_params(self.unroll)
            scores = self._d(fake, params)
            loss = self._mix([o.g_loss(scores) for o, _ in self.objs])
            # Metz et al.'s surrogate f(θ_G, θ_D^K(θ_G)) keeps D's real-data term, which depends
            # on θ_G through the unrolled steps: G's loss takes minus D's
            real_scores = self._d(self._packed(self._real()), params)
            total = loss - self._mix([o.d_real(real_scores) for o, _ in self.objs])
        else:
            scores = self._d(fake)
            loss = self._mix([o.g_loss(scores) for o, _ in self.objs])
            total = loss
        if report:
            self.stats.add("loss_g", loss)
        if self.penalties:
            batch = GBatch(fake=samples)
            for j, p in self.penalties:
                if p.stage == "g":
                    term = self.pen_w[j] * p.term(batch)
                    if report:
                        self.stats.add(p.stat, term)
                    total = total + term
        return total

    def step(self, norms: bool = True, part: str = "both") -> None:
        """One training step of every run: n_critic D updates, then one G update.

        part "d": one D update only; "g": one G update only (a teacher's split steps). `norms`:
        record the gradient norms (wanted on the step before a tick). On CUDA a whole step is
        replayed from a captured graph where that works (trainer/families/gan/graphed.py).
        """
        if part == "both" and not (self.graph is not None and self.graph.step()):
            self.device_step(norms)
        elif part == "d":
            self.d_update(norms)
        elif part == "g":
            self.g_update(norms)
        if part in ("both", "d"):
            self.n_d += self.n_critic if part == "both" else 1
        if part in ("both", "g"):
            self.n_g += 1
            self.steps += 1

    def device_step(self, norms: bool) -> None:
        """The device work of one step (what a CUDA graph captures): no host bookkeeping.

        Alternating (the default): D's updates, then G's against the updated D. Simultaneous:
        G's gradient is taken against D as it was before this step's D updates, and applied
        after them (simultaneous gradient steps, as in Metz et al.'s code)."""
        if self.simultaneous:
            self.g_gradient(norms)  # D's updates below touch D's gradients only
            for _ in range(self.n_critic):
                self.d_update(norms)
            self.opt_g.step()
            return
        for _ in range(self.n_critic):
            self.d_update(norms)
        self.g_update(norms)

    @torch.no_grad()
    def _clip_d(self) -> None:
        p = self.flat_d.data
        c = self._clip_el
        clipped = torch.minimum(torch.maximum(p, -c), c)
        p.copy_(torch.where(self._clip_on > 0, clipped, p))

    def _unrolled_d_params(self, k: int) -> dict[str, torch.Tensor]:
        """D's parameters after k differentiable Adam steps per run (Metz et al. 2017, eq. 5–6).

        The fakes of each unrolled step come from G with their graph kept, so G's gradient
        includes how D would react to G (the paper's second-order term). Penalties are left out
        of the unrolled steps. The moments and step counts start from the optimizer's state.
        """
        params = {n: p.detach().requires_grad_(True) for n, p in self.D.named_parameters()}
        m = self.flat_d.view(self.opt_d.exp_avg)
        v = self.flat_d.view(self.opt_d.exp_avg_sq)
        shape = (self.runs, 1, 1)  # every parameter is (R, a, b)
        b1, b2 = self.opt_d.beta1.view(shape), self.opt_d.beta2.view(shape)
        lr = self.opt_d.lr.view(shape)
        t0 = [self.opt_d.t[j].view(shape) for j in range(len(m))]
        clip, clip_on = self.clip.view(shape), self.clip_mask.view(shape) > 0
        for i in range(k):
            real, fake = self._packed(self._real()), self._packed(self.G(self._noise()))
            loss = self._mix([o.d_loss(self._d(real, params), self._d(fake, params))
                              for o, _ in self.objs])
            grads = torch.autograd.grad(loss.sum(), list(params.values()), create_graph=True,
                                        allow_unused=True)  # e.g. T while mbd is off
            params = differentiable_adam(params, grads, m, v, [t + (i + 1) for t in t0], b1, b2,
                                         lr)
            if self.any_clip:
                params = {n: torch.where(clip_on, torch.minimum(torch.maximum(p, -clip), clip), p)
                          for n, p in params.items()}
        return params

    # ------------------------------------------------------------------ metrics
    def tick(self, rows: Sequence[int] | None = None, pictures: Sequence[int] = (),
             manifolds: Sequence[int] = ()) -> dict[int, dict[str, Any]]:
        """One flat dict of metrics per run in `rows` (docs/metrics.md), by row; runs in
        `pictures` also get D's landscape, runs in `manifolds` G's image of a latent grid
        (tick.py)."""
        return ticks.tick(self, rows, pictures, manifolds)

    def elapsed(self, i: int, now: float | None = None) -> float:
        return self.elapsed0[i] + ((now or time.perf_counter()) - self.joined[i])

    # ------------------------------------------------------------------ runs in and out
    def export(self, i: int) -> RunState:
        """Run i's whole state, as copies (the engine may go on or be dropped)."""
        return run_state.export(self, i)


def _solo_engine(knobs: dict[str, Any]) -> Engine:
    """A fresh one-run engine from knobs (the CUDA-graph self-check builds two)."""
    cfg = make_config(knobs)
    data = make_dataset(cfg).to(cfg.device)
    return Engine([RunState.fresh(cfg, data.dim, data.kind == "image")], data, cfg.device)


def build(states: Sequence[RunState], data: Dataset, device: torch.device) -> Engine:
    """An engine over `states`; raises ConfigError naming the knob if they cannot share one."""
    keys = [stack_key(s.cfg) for s in states]
    if len(set(keys)) != 1:
        first = dict(keys[0])
        for k in keys[1:]:
            diff = next(n for n, v in k if first[n] != v)
            raise ConfigError(diff, "these runs cannot share one stacked step: they differ in "
                              f"{diff}")
    return Engine(states, data, device)
