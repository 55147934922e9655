"""Adam and RMSprop over parameters stacked along a leading runs dimension, one flat buffer each.

Every parameter of a network (shape (R, ...)) becomes a view into one flat buffer, and so does its
gradient, so an optimizer step is a dozen whole-buffer operations instead of a dozen per
parameter. Hyperparameters are per-run device tensors (R,): a compare grid gives each run its own
learning rate and betas, and a captured CUDA graph reads them at replay time, so changing a value
needs no re-capture. The step counter lives on the device for the same reason.

The update is torch.optim.Adam's (and RMSprop's, non-centred, no momentum) written out, so a
stacked run and an eager run started from the same state agree to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EPS = 1e-8  # torch.optim's default ε for both optimizers


class FlatParams:
    """Re-homes the parameters of `modules` into one flat buffer (and one for their gradients).

    Each parameter's block holds all R runs contiguously, (R, n), so parameters and gradients keep
    the dense layout autograd expects. `run_index[e]` is the run of flat element e.
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
        run_idx = []
        off = 0
        for p, n in zip(self.params, sizes, strict=True):
            if p.shape[0] != runs:
                raise ValueError(f"expected a leading runs dimension {runs}, got {tuple(p.shape)}")
            sl = slice(off, off + n)
            self.data[sl].copy_(p.detach().reshape(-1))
            p.data = self.data[sl].view(p.shape)
            p.grad = self.grad[sl].view(p.shape)
            self.blocks.append(sl)
            run_idx.append(torch.arange(runs, device=dev).repeat_interleave(n // runs))
            off += n
        self.run_index = torch.cat(run_idx)  # (total,)

    def view(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Per-parameter views of a flat buffer shaped like the parameters."""
        return [flat[sl].view(p.shape) for sl, p in zip(self.blocks, self.params, strict=True)]

    def rebind_grads(self) -> None:
        """Point every .grad back at the flat gradient (after someone set it to None)."""
        for p, g in zip(self.params, self.view(self.grad), strict=True):
            if p.grad is None or p.grad.data_ptr() != g.data_ptr():
                p.grad = g

    def zero_grad(self) -> None:
        self.grad.zero_()

    def spread(self, values: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Per-run values (R,) written to every element of each run in `out` (total,).

        One broadcast copy per parameter block: a gather through `run_index` costs ~20× more
        on a CPU (it reads an int64 index per element).
        """
        r = self.runs
        for sl in self.blocks:
            out[sl].view(r, -1).copy_(values[:, None].expand(r, (sl.stop - sl.start) // r))
        return out

    def per_run(self, flat: torch.Tensor) -> torch.Tensor:
        """Sum of a flat buffer's elements per run -> (R,)."""
        out = torch.zeros(self.runs, device=flat.device, dtype=flat.dtype)
        return out.index_add_(0, self.run_index, flat)

    def grad_norm(self) -> torch.Tensor:
        """‖∇‖₂ of each run's parameters -> (R,)."""
        return self.per_run(self.grad * self.grad).sqrt()


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
        self.t = torch.zeros(r, device=dev)  # steps taken, per run
        self.exp_avg = torch.zeros(flat.total, device=dev)  # Adam's m (unused by RMSprop)
        self.exp_avg_sq = torch.zeros(flat.total, device=dev)  # Adam's v, RMSprop's square_avg
        self.expand_hparams()

    def set_hparams(self, lr: Sequence[float], beta1: Sequence[float],
                    beta2: Sequence[float]) -> None:
        """New values, copied into the existing device tensors (graphs keep reading them)."""
        for dst, src in ((self.lr, lr), (self.beta1, beta1), (self.beta2, beta2)):
            dst.copy_(torch.tensor(list(src), dtype=dst.dtype))
        self.expand_hparams()

    def expand_hparams(self) -> None:
        """Per-element copies of the values that do not change from step to step.

        Gathering them once per change rather than once per step saves three whole-buffer
        gathers a step; in place, so a captured graph sees new values.
        """
        idx = self.flat.run_index
        for name, src in (("_b1", self.beta1), ("_b2", self.beta2), ("_lr", self.lr)):
            if not hasattr(self, name):
                setattr(self, name, torch.empty(self.flat.total, device=src.device))
            getattr(self, name).copy_(src[idx])
        if not hasattr(self, "_1mb1"):
            self._1mb1 = torch.empty_like(self._b1)
            self._1mb2 = torch.empty_like(self._b2)
            self._step_size = torch.empty_like(self._b1)  # lr / (1 - β1^t), per element
            self._bc2_sqrt = torch.empty_like(self._b1)  # √(1 - β2^t), per element
        torch.sub(1.0, self._b1, out=self._1mb1)
        torch.sub(1.0, self._b2, out=self._1mb2)

    @torch.no_grad()
    def step(self) -> None:
        g, p = self.flat.grad, self.flat.data
        self.t.add_(1.0)
        if self.kind == "adam":
            self.exp_avg.lerp_(g, self._1mb1)
            self.exp_avg_sq.mul_(self._b2).addcmul_(g, g * self._1mb2)
            bc1 = 1.0 - torch.pow(self.beta1, self.t)  # (R,)
            bc2_sqrt = torch.sqrt(1.0 - torch.pow(self.beta2, self.t))
            step_size = self.flat.spread(self.lr / bc1, self._step_size)
            bc2 = self.flat.spread(bc2_sqrt, self._bc2_sqrt)
            denom = (self.exp_avg_sq.sqrt() / bc2).add_(EPS)
            p.addcdiv_(self.exp_avg * step_size, denom, value=-1.0)
        else:
            self.exp_avg_sq.mul_(self._b2).addcmul_(g, g * self._1mb2)
            denom = self.exp_avg_sq.sqrt().add_(EPS)
            p.addcdiv_(g * self._lr, denom, value=-1.0)

    # ------------------------------------------------------------ torch.optim state exchange
    def load_from_torch(self, opt: torch.optim.Optimizer) -> None:
        """Take the moments and step count of a torch optimizer over the same parameters (R = 1)."""
        m, v = self.flat.view(self.exp_avg), self.flat.view(self.exp_avg_sq)
        key = "exp_avg_sq" if self.kind == "adam" else "square_avg"
        with torch.no_grad():
            for p, mj, vj in zip(self.flat.params, m, v, strict=True):
                s = opt.state.get(p, {})
                if "step" in s:
                    self.t.fill_(float(s["step"]))
                if self.kind == "adam" and "exp_avg" in s:
                    mj.copy_(s["exp_avg"])
                if key in s:
                    vj.copy_(s[key])

    def store_to_torch(self, opt: torch.optim.Optimizer) -> None:
        """Write the moments and step count back into a torch optimizer's state (R = 1)."""
        m, v = self.flat.view(self.exp_avg), self.flat.view(self.exp_avg_sq)
        t = float(self.t[0])
        if t == 0:
            return
        for p, mj, vj in zip(self.flat.params, m, v, strict=True):
            s = opt.state[p]
            s["step"] = torch.tensor(t)
            if self.kind == "adam":
                s["exp_avg"] = mj.detach().clone()
                s["exp_avg_sq"] = vj.detach().clone()
            else:
                s["square_avg"] = vj.detach().clone()


def differentiable_adam(params: dict[str, torch.Tensor], grads, m: list, v: list, t, b1, b2, lr,
                        eps: float = 1e-8) -> dict[str, torch.Tensor]:
    """One Adam update that keeps its graph, for unrolling D (Metz et al. 2017, eq. 5–6).

    `m`, `v` (one tensor per parameter, in `params` order) are updated in place of the list;
    b1, b2, lr, t may be floats or per-run tensors broadcastable to the parameters. A parameter
    without a gradient (a feature that is off) is carried over unchanged. ε sits inside the root
    so the derivative stays finite where v = 0.
    """
    new = {}
    for j, (n, g) in enumerate(zip(params, grads, strict=True)):
        if g is None:
            new[n] = params[n]
            continue
        m[j] = b1 * m[j] + (1 - b1) * g
        v[j] = b2 * v[j] + (1 - b2) * g * g
        mhat = m[j] / (1 - b1**t)
        vhat = v[j] / (1 - b2**t)
        new[n] = params[n] - lr * mhat / torch.sqrt(vhat + eps**2)
    return new
