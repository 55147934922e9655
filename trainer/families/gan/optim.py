"""Adam and RMSprop over parameters stacked along a leading runs dimension, one flat buffer each.

Every parameter of a network (shape (R, ...)) becomes a view into one flat buffer, and so does its
gradient, so an optimizer step is a dozen whole-buffer operations instead of a dozen per
parameter. Hyperparameters are per-run device tensors (R,): the runs of a stack each have their
own learning rate and betas, and a captured CUDA graph reads them at replay time, so changing a
value needs no re-capture.

Step counts are kept per parameter and run, (P, R), as torch.optim keeps them per parameter: when
a feature's head weights start afresh mid-run (a batch feature switched on), `reset` zeroes their
moments *and* their step count, so Adam's bias correction treats them as new — their first update
is the size of a first update, not ~10× the learning rate as with v = 0 and a large shared t.

The update is torch.optim.Adam's (and RMSprop's, non-centred, no momentum) written out, so a run
here and a torch.optim run from the same state agree to float rounding (tests/test_engine.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

EPS = 1e-8  # torch.optim's default ε for both optimizers


class FlatParams:
    """Re-homes `params` (each (R, ...)) into one flat buffer, and one for their gradients.

    Each parameter's block holds all R runs contiguously, (R, n), so parameters and gradients keep
    the dense layout autograd expects.
    """

    def __init__(self, params: Sequence[nn.Parameter], runs: int):
        self.params = list(params)
        self.runs = runs
        dev = self.params[0].device
        sizes = [p.numel() for p in self.params]
        self.total = sum(sizes)
        self.data = torch.empty(self.total, device=dev)
        self.grad = torch.zeros(self.total, device=dev)
        self.blocks: list[slice] = []
        off = 0
        for p, n in zip(self.params, sizes, strict=True):
            if p.shape[0] != runs:
                raise ValueError(f"expected a leading runs dimension {runs}, got {tuple(p.shape)}")
            sl = slice(off, off + n)
            self.data[sl].copy_(p.detach().reshape(-1))
            p.data = self.data[sl].view(p.shape)
            p.grad = self.grad[sl].view(p.shape)
            self.blocks.append(sl)
            off += n

    def view(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Per-parameter views of a flat buffer shaped like the parameters."""
        return [flat[sl].view(p.shape) for sl, p in zip(self.blocks, self.params, strict=True)]

    def zero_grad(self) -> None:
        self.grad.zero_()

    def spread(self, values: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Per-run values (R,) — or per parameter and run, (P, R) — written to every element of
        each run in `out` (total,).

        One broadcast copy per parameter block: a gather through a per-element run index costs
        ~20× more on a CPU (it reads an int64 index per element).
        """
        r = self.runs
        for j, sl in enumerate(self.blocks):
            v = values if values.dim() == 1 else values[j]
            out[sl].view(r, -1).copy_(v[:, None].expand(r, (sl.stop - sl.start) // r))
        return out

    def grad_norm(self) -> torch.Tensor:
        """‖∇‖₂ of each run's parameters -> (R,)."""
        r = self.runs
        sq = torch.zeros(r, device=self.grad.device)
        for sl in self.blocks:
            g = self.grad[sl].view(r, -1)
            sq = sq + (g * g).sum(dim=1)
        return sq.sqrt()


class StackedOptimizer:
    """Adam (or RMSprop) over a FlatParams, with per-run lr, beta1, beta2 as (R,) device tensors."""

    def __init__(self, flat: FlatParams, kind: str = "adam"):
        if kind not in ("adam", "rmsprop"):
            raise ValueError(f"expected adam or rmsprop, got {kind!r}")
        self.flat = flat
        self.kind = kind
        r, dev = flat.runs, flat.data.device
        self.lr = torch.zeros(r, device=dev)
        self.beta1 = torch.zeros(r, device=dev)
        self.beta2 = torch.zeros(r, device=dev)
        self.t = torch.zeros(len(flat.blocks), r, device=dev)  # steps taken, per parameter & run
        self.exp_avg = torch.zeros(flat.total, device=dev)  # Adam's m (unused by RMSprop)
        self.exp_avg_sq = torch.zeros(flat.total, device=dev)  # Adam's v, RMSprop's square_avg
        # per-element copies of values that change only with the config, spread once per change
        self._b2 = torch.zeros(flat.total, device=dev)
        self._1mb1 = torch.zeros(flat.total, device=dev)
        self._1mb2 = torch.zeros(flat.total, device=dev)
        self._lr = torch.zeros(flat.total, device=dev)
        self._step_size = torch.zeros(flat.total, device=dev)  # lr / (1 - β1^t), per element
        self._bc2_sqrt = torch.zeros(flat.total, device=dev)  # √(1 - β2^t), per element

    def set_hparams(self, lr: Sequence[float], beta1: Sequence[float],
                    beta2: Sequence[float]) -> None:
        """New values, copied into the existing device tensors (graphs keep reading them)."""
        for dst, src in ((self.lr, lr), (self.beta1, beta1), (self.beta2, beta2)):
            dst.copy_(torch.tensor(list(src), dtype=dst.dtype))
        self.flat.spread(self.beta2, self._b2)
        self.flat.spread(1.0 - self.beta1, self._1mb1)
        self.flat.spread(1.0 - self.beta2, self._1mb2)
        self.flat.spread(self.lr, self._lr)

    @torch.no_grad()
    def step(self) -> None:
        g, p = self.flat.grad, self.flat.data
        self.t.add_(1.0)
        if self.kind == "adam":
            self.exp_avg.lerp_(g, self._1mb1)
            self.exp_avg_sq.mul_(self._b2).addcmul_(g, g * self._1mb2)
            bc1 = 1.0 - torch.pow(self.beta1[None, :], self.t)  # (P, R)
            bc2_sqrt = torch.sqrt(1.0 - torch.pow(self.beta2[None, :], self.t))
            step_size = self.flat.spread(self.lr[None, :] / bc1, self._step_size)
            bc2 = self.flat.spread(bc2_sqrt, self._bc2_sqrt)
            denom = (self.exp_avg_sq.sqrt() / bc2).add_(EPS)
            p.addcdiv_(self.exp_avg * step_size, denom, value=-1.0)
        else:
            self.exp_avg_sq.mul_(self._b2).addcmul_(g, g * self._1mb2)
            denom = self.exp_avg_sq.sqrt().add_(EPS)
            p.addcdiv_(g * self._lr, denom, value=-1.0)

    @torch.no_grad()
    def reset(self, param: int, runs: torch.Tensor) -> None:
        """Start parameter `param`'s moments and step count afresh for the given runs."""
        sl, r = self.flat.blocks[param], self.flat.runs
        for buf in (self.exp_avg, self.exp_avg_sq):
            buf[sl].view(r, -1)[runs] = 0.0
        self.t[param, runs] = 0.0

    # ------------------------------------------------------------ one run's state
    def run_state(self, i: int) -> dict[str, Any]:
        """Run i's moments (one tensor per parameter, shaped like it without the runs dim) and
        step counts (P,), as copies."""
        m, v = self.flat.view(self.exp_avg), self.flat.view(self.exp_avg_sq)
        return dict(m=[x[i].clone() for x in m], v=[x[i].clone() for x in v],
                    t=self.t[:, i].clone())

    @torch.no_grad()
    def load_run_state(self, i: int, state: dict) -> None:
        m, v = self.flat.view(self.exp_avg), self.flat.view(self.exp_avg_sq)
        for dst, src in zip(m, state["m"], strict=True):
            dst[i].copy_(src)
        for dst, src in zip(v, state["v"], strict=True):
            dst[i].copy_(src)
        self.t[:, i] = state["t"].to(self.t.device)


def differentiable_adam(params: dict[str, torch.Tensor], grads, m: list, v: list, t: list, b1, b2,
                        lr, eps: float = 1e-8) -> dict[str, torch.Tensor]:
    """One Adam update that keeps its graph, for unrolling D (Metz et al. 2017, eq. 5–6).

    `m`, `v` (one tensor per parameter, in `params` order) are updated in place of the list;
    `t` holds each parameter's step count after this update; b1, b2, lr, t may be floats or
    per-run tensors broadcastable to the parameters. A parameter without a gradient (a feature
    that is off) is carried over unchanged. ε sits inside the root so the derivative stays finite
    where v = 0.
    """
    new = {}
    for j, (n, g) in enumerate(zip(params, grads, strict=True)):
        if g is None:
            new[n] = params[n]
            continue
        m[j] = b1 * m[j] + (1 - b1) * g
        v[j] = b2 * v[j] + (1 - b2) * g * g
        mhat = m[j] / (1 - b1 ** t[j])
        vhat = v[j] / (1 - b2 ** t[j])
        new[n] = params[n] - lr * mhat / torch.sqrt(vhat + eps**2)
    return new
