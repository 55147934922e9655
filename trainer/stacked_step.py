"""The training step written for R stacked runs with per-run values as device tensors.

`Trainer.train_step` (trainer/loop.py) is the reference: the same order of random draws, the same
losses and penalties, the same Adam. Here every value a run may differ in — learning rates,
betas, penalty weights, entropy weight, clipping bound, and which objective it plays — is an (R,)
tensor, so

- a compare grid trains R runs in one set of batched kernels (trainer/batched.py), and
- a captured CUDA graph of one run (trainer/graphed.py) reads new values at replay time.

What shapes the computation (which penalties are on at all, batch features, unrolling, n_critic,
batch size, the optimizer) is `structure()`: runs must agree on it to share a step, and a graph
is re-captured when it changes.

All runs share the real batch and the noise of each draw (the real data stream of a compare
grid is one stream), so a run here sees exactly what an eager Trainer with the same seed sees
as long as it draws the same things — that is, as long as the group agrees on whether the
gradient penalty is on (its interpolation weights come from the same stream).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.func import functional_call

from collapse_lab.trainer import objectives as objectives_mod
from collapse_lab.trainer.config import RunConfig
from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.models import Discriminator, Generator
from collapse_lab.trainer.remedies import gradient_penalty, nn_entropy, r1_penalty
from collapse_lab.trainer.stacked_optim import FlatParams, StackedOptimizer, differentiable_adam

# columns of the per-run accumulator, the same order as trainer.loop.SCALARS
N_SCALARS = 7


def structure(cfg: RunConfig) -> tuple:
    """What fixes the shape of one run's step; runs in one stacked step must agree on it."""
    return (cfg.optimizer, cfg.batch_size, cfg.n_critic, cfg.unroll, cfg.minibatch_disc,
            cfg.mbstd, cfg.spectral_norm)


class StackedStep:
    """n_critic D updates and one G update for R runs, stacked along dim 0."""

    # D scores real and fake in one pass (half the kernels) unless batch features need them apart
    joint_d_pass = True

    def __init__(self, G: Generator, D: Discriminator, data: Dataset, gen: torch.Generator,
                 cfgs: Sequence[RunConfig], acc: torch.Tensor | None = None):
        self.G, self.D, self.data, self.gen = G, D, data, gen
        self.runs = r = len(cfgs)
        self.device = dev = next(G.parameters()).device
        self.flat_g = FlatParams(list(G.parameters()), r)
        self.flat_d = FlatParams(list(D.parameters()), r)
        kind = cfgs[0].optimizer
        self.opt_g = StackedOptimizer(self.flat_g, kind)
        self.opt_d = StackedOptimizer(self.flat_d, kind)
        self.gp_w = torch.zeros(r, device=dev)
        self.r1_w = torch.zeros(r, device=dev)
        self.ent_w = torch.zeros(r, device=dev)
        self.clip = torch.zeros(r, device=dev)
        self.clip_mask = torch.zeros(r, device=dev)  # 1 where the run clips D's weights
        self.zero = torch.zeros(r, device=dev)
        # the clipping bound and switch spread over D's flat parameters, once per change
        self._clip_el = torch.zeros(self.flat_d.total, device=dev)
        self._clip_on = torch.zeros(self.flat_d.total, device=dev)
        # per-run sums of trainer.loop.SCALARS since the last tick (R, 7)
        self.acc = acc if acc is not None else torch.zeros(r, N_SCALARS, device=dev)
        self.objs: list[tuple[objectives_mod.Objective, torch.Tensor | None]] = []
        self.set_configs(cfgs)

    # ------------------------------------------------------------ values and structure
    def set_configs(self, cfgs: Sequence[RunConfig]) -> None:
        """Take new per-run values; the caller re-captures a graph if `key()` changed."""
        shapes = {structure(c) for c in cfgs}
        if len(shapes) != 1 or len(cfgs) != self.runs:
            raise ValueError("every run of a stacked step needs the same structure "
                             f"(optimizer, batch, n_critic, unroll, batch features, sn): {shapes}")
        self.cfgs = list(cfgs)
        c0 = cfgs[0]
        self.batch_size, self.n_critic, self.unroll = c0.batch_size, c0.n_critic, c0.unroll
        self.flags = dict(mbd=c0.minibatch_disc, mbstd=c0.mbstd, sn=c0.spectral_norm)
        self.opt_g.set_hparams([c.lr_g for c in cfgs], [c.beta1 for c in cfgs],
                               [c.beta2 for c in cfgs])
        self.opt_d.set_hparams([c.lr_d for c in cfgs], [c.beta1 for c in cfgs],
                               [c.beta2 for c in cfgs])

        def fill(t: torch.Tensor, values: list[float]) -> None:
            t.copy_(torch.tensor(values, dtype=t.dtype))

        fill(self.gp_w, [c.gp_weight for c in cfgs])
        fill(self.r1_w, [0.5 * c.r1 for c in cfgs])  # the loss adds γ/2 · E‖∇D‖²
        fill(self.ent_w, [c.entropy for c in cfgs])
        fill(self.clip, [c.clip for c in cfgs])
        names = sorted({c.objective for c in cfgs})
        objs = {n: objectives_mod.get_objective(n) for n in names}
        fill(self.clip_mask, [float(objs[c.objective].clip_weights) for c in cfgs])
        self.flat_d.spread(self.clip, self._clip_el)
        self.flat_d.spread(self.clip_mask, self._clip_on)
        self.any_clip = any(o.clip_weights for o in objs.values())
        if len(names) == 1:
            self.objs = [(objs[names[0]], None)]
        else:  # a per-run mix of objectives: each run's loss is its own objective's, via masks
            self.objs = []
            for n in names:
                w = torch.tensor([float(c.objective == n) for c in cfgs], device=self.device)
                self.objs.append((objs[n], w))
        self.has_gp = any(c.gp_weight > 0 for c in cfgs)
        self.has_r1 = any(c.r1 > 0 for c in cfgs)
        self.has_ent = any(c.entropy > 0 for c in cfgs)

    def key(self) -> tuple:
        """Everything a captured graph bakes in; values outside it are read from tensors."""
        return (structure(self.cfgs[0]), tuple(type(o).__name__ for o, _ in self.objs),
                self.has_gp, self.has_r1, self.has_ent, self.any_clip)

    # ------------------------------------------------------------ the step
    def _d(self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        if params is None:
            return self.D(x, **self.flags)
        return functional_call(self.D, params, (x,), self.flags)

    def _noise(self) -> torch.Tensor:  # (R, B, z): one draw shared by every run
        z = torch.randn(1, self.batch_size, self.G.layers[0].weight.shape[1], generator=self.gen,
                        device=self.device)
        return z.expand(self.runs, -1, -1)

    def _real(self) -> torch.Tensor:  # (1, B, dim)
        return self.data.sample(self.batch_size, self.gen)[None]

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:  # -> (R,)
        loss = None
        for obj, w in self.objs:
            term = obj.d_loss(real, fake)
            term = term if w is None else term * w
            loss = term if loss is None else loss + term
        assert loss is not None
        return loss

    def _g_loss(self, scores: torch.Tensor) -> torch.Tensor:  # -> (R,)
        loss = None
        for obj, w in self.objs:
            term = obj.g_loss(scores)
            term = term if w is None else term * w
            loss = term if loss is None else loss + term
        assert loss is not None
        return loss

    def step(self, want_norms: bool = True) -> None:
        """One generator step; adds this step's scalars to `acc` (R, 7).

        The gradient norms (columns 5, 6) are those of this step's last D and G updates, written
        over rather than added (only where `want_norms`: the step before a tick).
        """
        nc = float(self.n_critic)
        r = self.runs
        zero = self.zero
        d_loss_sum, gp_sum, r1_sum = zero, zero, zero
        gn_d = zero
        self.D.requires_grad_(True)
        for _ in range(self.n_critic):
            real1 = self._real()
            real = real1.expand(r, -1, -1)
            with torch.no_grad():
                fake = self.G(self._noise())
            if self.flags["sn"]:
                self.D.power_iteration()
            if self.flags["mbd"] or self.flags["mbstd"] or not self.joint_d_pass:
                sr, sf = self._d(real), self._d(fake)
            else:  # one pass over real and fake together: half the kernels, same maths
                s = self._d(torch.cat([real, fake], dim=1))
                sr, sf = s[:, : self.batch_size], s[:, self.batch_size :]
            loss = self._d_loss(sr, sf)  # (R,)
            d_loss_sum = d_loss_sum + loss.detach()
            if self.has_gp:
                gp = self.gp_w * gradient_penalty(self._d, real1, fake, self.gen)
                gp_sum = gp_sum + gp.detach()
                loss = loss + gp
            if self.has_r1:
                r1 = self.r1_w * r1_penalty(self._d, real.contiguous())
                r1_sum = r1_sum + r1.detach()
                loss = loss + r1
            self.flat_d.zero_grad()
            loss.sum().backward()
            if want_norms:
                gn_d = self.flat_d.grad_norm()
            self.opt_d.step()
            if self.any_clip:
                self._clip_d()

        self.D.requires_grad_(False)
        fake = self.G(self._noise())
        if self.unroll > 0:
            scores = self._d(fake, self._unrolled_d_params(self.unroll))
        else:
            scores = self._d(fake)
        loss_g = self._g_loss(scores)
        ent = zero
        g_total = loss_g
        if self.has_ent:
            ent = -self.ent_w * nn_entropy(fake)
            g_total = loss_g + ent
        self.flat_g.zero_grad()
        g_total.sum().backward()
        if want_norms:
            self.acc[:, 5:7] = torch.stack([gn_d, self.flat_g.grad_norm()], dim=1)
        self.opt_g.step()
        self.D.requires_grad_(True)
        cols = [d_loss_sum / nc, loss_g.detach(), gp_sum / nc, r1_sum / nc, ent.detach()]
        self.acc[:, :5] += torch.stack(cols, dim=1)

    @torch.no_grad()
    def _clip_d(self) -> None:
        p = self.flat_d.data
        c = self._clip_el
        clipped = torch.minimum(torch.maximum(p, -c), c)
        p.copy_(torch.where(self._clip_on > 0, clipped, p))

    def _unrolled_d_params(self, k: int) -> dict[str, torch.Tensor]:
        """D's parameters after k differentiable Adam steps per run (Metz et al. 2017, eq. 5–6).

        As Trainer._unrolled_d_params, with each run's own lr and betas; the moments start from
        the optimizer's state. ε sits inside the root so the derivative stays finite where v = 0.
        """
        params = {n: p.detach().requires_grad_(True) for n, p in self.D.named_parameters()}
        m = self.flat_d.view(self.opt_d.exp_avg)
        v = self.flat_d.view(self.opt_d.exp_avg_sq)
        shape = (self.runs, 1, 1)  # every parameter is (R, a, b)
        b1 = self.opt_d.beta1.view(shape)
        b2 = self.opt_d.beta2.view(shape)
        lr = self.opt_d.lr.view(shape)
        t0 = self.opt_d.t.view(shape)
        clip = self.clip.view(shape)
        clip_on = self.clip_mask.view(shape) > 0
        eps = 1e-8
        for i in range(k):
            real = self._real().expand(self.runs, -1, -1)
            fake = self.G(self._noise())
            loss = self._d_loss(self._d(real, params), self._d(fake, params))
            grads = torch.autograd.grad(loss.sum(), list(params.values()), create_graph=True,
                                        allow_unused=True)
            params = differentiable_adam(params, grads, m, v, t0 + (i + 1), b1, b2, lr, eps)
            if self.any_clip:
                params = {n: torch.where(clip_on, torch.minimum(torch.maximum(p, -clip), clip), p)
                          for n, p in params.items()}
        return params

    def state(self) -> dict[str, Any]:
        return dict(opt_g=(self.opt_g.t, self.opt_g.exp_avg, self.opt_g.exp_avg_sq),
                    opt_d=(self.opt_d.t, self.opt_d.exp_avg, self.opt_d.exp_avg_sq))
