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

Random draws. Each run has its own stream (a torch.Generator seeded from its seed) of real
batches, noise and interpolation weights, and every D update draws all three whatever the knobs
(an unused draw costs microseconds), so a run's draws never depend on its penalties or on the
runs beside it: a run trained alone, in a stack of eight, or moved between stacks follows one
series. Runs whose streams are in the same state (a compare group: one seed) share one generator
and one draw.

Per-run results are reported by name into `StepStats` and read by `tick`.
"""

from __future__ import annotations

import math
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
from collapse_lab.trainer.families.gan.stats import STEP, STEP_NAMES
from collapse_lab.trainer.family import Restack
from collapse_lab.trainer.metrics import mode_metrics
from collapse_lab.trainer.stats import METRIC_NAMES, StepStats, tick_fields

MANIFOLD_SIDE = 24  # latent grid points per side of the manifold layer
MANIFOLD_SPAN = 2.0  # the grid spans ±2 standard deviations of the noise


# fakes a grid point's minibatch features are taken against when D's landscape is drawn
LANDSCAPE_CONTEXT = 32


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
        with torch.no_grad():
            for module, key in ((self.G, "G"), (self.D, "D")):
                sd = module.state_dict()
                for i, s in enumerate(states):
                    for name, t in getattr(s, key).items():
                        sd[name][i].copy_(t)
        self.g_names = [n for n, _ in self.G.named_parameters()]
        self.d_names = [n for n, _ in self.D.named_parameters()]
        self.flat_g = FlatParams(list(self.G.parameters()), r)
        self.flat_d = FlatParams(list(self.D.parameters()), r)
        self.cfgs = [s.cfg for s in states]
        self._make_optimizers(c0.optimizer)
        for i, s in enumerate(states):
            if s.opt_g is not None and s.opt_g.get("kind", c0.optimizer) == c0.optimizer:
                self._load_opt(self.opt_g, self.g_names, i, s.opt_g)
            if s.opt_d is not None and s.opt_d.get("kind", c0.optimizer) == c0.optimizer:
                self._load_opt(self.opt_d, self.d_names, i, s.opt_d)

        # random streams, shared by runs whose streams are in the same state
        self.gens: list[torch.Generator] = []
        stream_of: list[int] = []
        seen: list[tuple[Any, torch.Tensor | None]] = []
        for s in states:
            own = s.gen if s.gen is not None and s.gen_device == self.device.type else None
            ident = (s.cfg.seed, s.step) if own is None else None
            for j, (sid, sstate) in enumerate(seen):
                if (own is None and sid == ident) or (
                        own is not None and sstate is not None and torch.equal(own, sstate)):
                    stream_of.append(j)
                    break
            else:
                g = torch.Generator(device=self.device)
                if own is not None:
                    g.set_state(own)
                else:  # a fresh run, or a state from another device type: seeded afresh
                    g.manual_seed(s.cfg.seed if s.step == 0 else _mix(s.cfg.seed, s.step))
                self.gens.append(g)
                seen.append((ident, own))
                stream_of.append(len(self.gens) - 1)
        self.stream_of = torch.tensor(stream_of, device=self.device)

        # fixed evaluation noise per seed, from its own stream so training never shifts it
        noise: dict[int, torch.Tensor] = {}
        for c in self.cfgs:
            if c.seed not in noise:
                ev = torch.Generator().manual_seed(c.seed + 7919)
                noise[c.seed] = torch.randn(c0.eval_samples, c0.z_dim, generator=ev)
        if len(noise) == 1:
            self.eval_z = next(iter(noise.values()))[None].to(self.device).expand(r, -1, -1)
        else:
            self.eval_z = torch.stack([noise[c.seed] for c in self.cfgs]).to(self.device)
        if data.kind == "2d":
            grid, self.extent = data.grid_points(c0.grid_size)
            self.grid = grid[None].to(self.device)  # (1, G·G, 2)
            self.latent_grid = _latent_grid(c0.z_dim).to(self.device)  # (M·M, z)

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
    def _combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Per-stream draws -> (R, ...) in run order."""
        if len(parts) == 1:
            return parts[0][None].expand(self.runs, *parts[0].shape)
        return torch.stack(parts)[self.stream_of]

    def _real(self) -> torch.Tensor:  # (R, pack·B, dim)
        n = self.pack * self.batch_size
        return self._combine([self.data.sample(n, g) for g in self.gens])

    def _noise(self) -> torch.Tensor:  # (R, pack·B, z)
        z, n = int(self.cfgs[0].z_dim), self.pack * self.batch_size
        return self._combine([torch.randn(n, z, generator=g, device=self.device)
                              for g in self.gens])

    def _packed(self, x: torch.Tensor) -> torch.Tensor:
        """(R, pack·B, dim) -> (R, B, pack·dim): consecutive samples make one pack (PacGAN)."""
        if self.pack == 1:
            return x
        r, n, d = x.shape
        return x.reshape(r, n // self.pack, self.pack * d)

    def _uniform(self) -> torch.Tensor:  # (R, B, 1)
        return self._combine([torch.rand(self.batch_size, 1, generator=g, device=self.device)
                              for g in self.gens])

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
    def _subset(self, module: torch.nn.Module, rows: list[int]) -> Any:
        """module restricted to some runs: itself for all, else a functional call over the
        rows' slices of its parameters and buffers."""
        if len(rows) == self.runs:
            return module
        idx = torch.tensor(rows, device=self.device)
        sd = {n: t[idx] for n, t in module.state_dict(keep_vars=True).items()}
        return lambda *a, **kw: functional_call(module, sd, a, kw)

    @torch.no_grad()
    def tick(self, rows: Sequence[int] | None = None, pictures: Sequence[int] = (),
             manifolds: Sequence[int] = ()) -> dict[int, dict[str, Any]]:
        """One flat dict of metrics per run in `rows` (docs/metrics.md), by row.

        Runs in `pictures` also get D's landscape (`value_grid`), half the cost of a tick; runs
        in `manifolds` G's image of a latent grid (`manifold`). A run whose losses or samples
        are not finite gets `failed` (the reason) instead of going on.
        """
        rows = list(range(self.runs)) if rows is None else list(rows)
        if not rows:
            return {}
        now = time.perf_counter()
        idx = torch.tensor(rows, device=self.device)
        x = self._subset(self.G, rows)(self.eval_z[idx])  # (n, N, dim)
        n, ns = len(rows), x.shape[1]
        nearest, hq = self.data.assign(x.reshape(n * ns, -1))
        nearest, hq = nearest.view(n, ns), hq.view(n, ns)
        weights = getattr(self.data, "weights", None)
        n_d = torch.as_tensor(self.n_d[rows], device=self.device, dtype=torch.float32)
        n_g = torch.as_tensor(self.n_g[rows], device=self.device, dtype=torch.float32)
        means = self.stats.means(n_d, n_g, idx)  # (S, n)
        packed = []
        for j, i in enumerate(rows):
            mm = mode_metrics(nearest[j], hq[j], self.data.num_modes, self.prev_occupancy[i],
                              weights)
            self.prev_occupancy[i] = mm["occupancy"]
            packed.append(torch.cat([means[:, j], torch.stack([mm[k] for k in METRIC_NAMES]),
                                     mm["occupancy"]]))
        finite = torch.isfinite(x).flatten(1).all(dim=1)
        host = torch.cat([torch.stack(packed), finite[:, None].float()], dim=1).cpu().numpy()
        self.stats.reset(idx)
        self.n_d[rows] = 0
        self.n_g[rows] = 0

        pics = [i for i in rows if i in set(pictures)] if self.data.kind == "2d" else []
        grids = self._value_grids(pics, x, rows) if pics else {}
        mans = [i for i in rows if i in set(manifolds)] if self.data.kind == "2d" else []
        manifold = {}
        if mans:
            zg = self.latent_grid[None].expand(len(mans), -1, -1)
            pts = self._subset(self.G, mans)(zg).float().cpu().numpy()
            manifold = {i: pts[j].reshape(MANIFOLD_SIDE, MANIFOLD_SIDE, -1)
                        for j, i in enumerate(mans)}
        xs = x.float().cpu().numpy()
        near_np = nearest.to(torch.int16).cpu().numpy()
        hq_np = hq.cpu().numpy()

        out = {}
        for j, i in enumerate(rows):
            t = tick_fields(self, i, now, host[j], STEP_NAMES, METRIC_NAMES)
            step = t["step"]
            bad = [k for k in ("loss_d", "loss_g") if not math.isfinite(t[k])]
            if bad or host[j, -1] < 1:
                what = bad[0] if bad else "generated samples"
                t["failed"] = f"{what} became NaN/inf at step {step}"
            t["nearest"] = near_np[j]
            t["hq"] = hq_np[j]
            if self.data.kind == "2d":
                t["samples"] = xs[j]
                t["extent"] = self.extent
                if i in grids:
                    t["value_grid"] = grids[i]
                if i in manifold:
                    t["manifold"] = manifold[i]
            else:
                t["samples"] = np.ascontiguousarray(xs[j, :64])  # (64, 64) images for display
            out[i] = t
        return out

    def _value_grids(self, pics: list[int], x: torch.Tensor,
                     rows: list[int]) -> dict[int, np.ndarray]:
        """D's landscape over the value grid for runs `pics` (x: the tick's samples of `rows`)."""
        c0 = self.cfgs[0]
        sel = torch.tensor([rows.index(i) for i in pics], device=self.device)
        # batch features of a grid point are taken against (part of) the current fakes; with
        # packing, a grid point is scored as a pack of copies of itself. Minibatch
        # discrimination's sums run over LANDSCAPE_CONTEXT fakes, each counting for
        # (batch − 1) / LANDSCAPE_CONTEXT of a training batch's others: the same expected
        # value as in training at a quarter of 128 fakes' pairs (grid² × context × kernels ×
        # dims is most of a watched tick's cost); the minibatch stddev takes up to 128 fakes
        ctx, weight = None, 1.0
        if c0.minibatch_disc or c0.mbstd:
            n = min(c0.batch_size, 128 if c0.mbstd else LANDSCAPE_CONTEXT)
            ctx = self._packed(x[sel, : n * self.pack])
            weight = (c0.batch_size - 1) / n
        d = self._subset(self.D, pics)
        grid = self.grid.expand(len(pics), -1, -1).repeat(1, 1, self.pack)
        scores = d(grid, **self.flags, context=ctx, context_weight=weight)
        out = {}
        for j, i in enumerate(pics):
            v = self.objective_of[i].value(scores[j])
            out[i] = v.view(c0.grid_size, c0.grid_size).float().cpu().numpy()
        return out

    def elapsed(self, i: int, now: float | None = None) -> float:
        return self.elapsed0[i] + ((now or time.perf_counter()) - self.joined[i])

    # ------------------------------------------------------------------ runs in and out
    def export(self, i: int) -> RunState:
        """Run i's whole state, as copies (the engine may go on or be dropped)."""
        g = self.gens[int(self.stream_of[i])]
        return RunState(
            cfg=self.cfgs[i], step=int(self.steps[i]), version=self.versions[i],
            G={n: t[i].detach().clone() for n, t in self.G.state_dict().items()},
            D={n: t[i].detach().clone() for n, t in self.D.state_dict().items()},
            opt_g=self._run_opt(self.opt_g, self.g_names, i),
            opt_d=self._run_opt(self.opt_d, self.d_names, i),
            gen=g.get_state().clone(), gen_device=self.device.type,
            prev_occupancy=self.prev_occupancy[i], sums=self.stats.sums[:, i].clone(),
            n_d=int(self.n_d[i]), n_g=int(self.n_g[i]), elapsed=self.elapsed(i))

    @staticmethod
    def _run_opt(opt: StackedOptimizer, names: list[str], i: int) -> dict[str, Any]:
        st = opt.run_state(i)
        return dict(kind=opt.kind, m=dict(zip(names, st["m"], strict=True)),
                    v=dict(zip(names, st["v"], strict=True)),
                    t=dict(zip(names, st["t"].tolist(), strict=True)))

    @staticmethod
    def _load_opt(opt: StackedOptimizer, names: list[str], i: int, st: dict[str, Any]) -> None:
        opt.load_run_state(i, dict(m=[st["m"][n] for n in names], v=[st["v"][n] for n in names],
                                   t=torch.tensor([float(st["t"][n]) for n in names])))


def _latent_grid(z_dim: int) -> torch.Tensor:
    """(M·M, z): z[0] and z[1] over ±MANIFOLD_SPAN, row by row from the lowest z[1]; the other
    coordinates 0 (a fixed 2-D slice of the latent space when z has more than 2 dimensions)."""
    m = MANIFOLD_SIDE
    ax = torch.linspace(-MANIFOLD_SPAN, MANIFOLD_SPAN, m)
    gy, gx = torch.meshgrid(ax, ax, indexing="ij")
    z = torch.zeros(m * m, z_dim)
    z[:, 0] = gx.reshape(-1)
    if z_dim > 1:
        z[:, 1] = gy.reshape(-1)
    return z


def _solo_engine(knobs: dict[str, Any]) -> Engine:
    """A fresh one-run engine from knobs (the CUDA-graph self-check builds two)."""
    cfg = make_config(knobs)
    data = make_dataset(cfg).to(cfg.device)
    return Engine([RunState.fresh(cfg, data.dim, data.kind == "image")], data, cfg.device)


def _mix(seed: int, step: int) -> int:
    """A seed for a run's stream continued on another device type (its state cannot move)."""
    return (seed * 1_000_003 + step * 7_919 + 12_345) % (2**63 - 1)


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
