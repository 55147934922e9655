"""The pieces of a stacked denoising diffusion model (Ho et al. 2020), R runs at once.

- `schedule`: the forward process's ᾱ_t over T noise levels (DDPM's linear betas, stretched to
  T levels, or Nichol & Dhariwal's cosine);
- `Net`: an MLP noise predictor ε(x_t, t) whose every weight has a leading runs dimension R
  ((R, in, out) matrices, batched matmuls), with per-run dropout;
- `adamw`: Adam with decoupled weight decay, per-run learning rate, decay and step count;
- `sample`: the ancestral sampler over an even stride of the noise levels (DDIM with η = 1,
  Song et al. 2021: with every level it is DDPM's own sampler).

Shapes: points are (R, B, 2), times (R, B) integer levels 0..T-1.
"""

from __future__ import annotations

import math

import torch

FREQS = (1.0, 2.0, 4.0, 8.0, 16.0)  # the time embedding's frequencies
EMBED = 1 + 2 * len(FREQS)
BETA_MAX = 0.999  # the largest beta either schedule takes


def schedule(kind: str, levels: int) -> torch.Tensor:
    """ᾱ_t for t = 0..T-1 (float64): the share of the signal's variance left at level t."""
    t = torch.arange(1, levels + 1, dtype=torch.float64)
    if kind == "linear":
        # DDPM's betas 1e-4 .. 0.02 over 1,000 levels, stretched so T levels add as much noise
        scale = 1000.0 / levels
        betas = torch.linspace(1e-4 * scale, 0.02 * scale, levels, dtype=torch.float64)
    elif kind == "cosine":
        s = 0.008

        def f(u: torch.Tensor) -> torch.Tensor:
            return torch.cos((u / levels + s) / (1 + s) * math.pi / 2) ** 2

        betas = 1 - f(t) / f(t - 1)
    else:
        raise ValueError(f"unknown schedule {kind!r}")
    return torch.cumprod(1 - betas.clamp(max=BETA_MAX), 0)


def embed(t: torch.Tensor, levels: int) -> torch.Tensor:
    """(…) integer levels -> (…, EMBED) features: t/T and sines and cosines of it."""
    u = (t.to(torch.get_default_dtype()) + 1) / levels
    ang = u[..., None] * (math.pi * torch.tensor(FREQS, device=t.device, dtype=u.dtype))
    return torch.cat([u[..., None], torch.sin(ang), torch.cos(ang)], -1)


def init_params(width: int, depth: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One run's weights and biases, layer by layer ([W0, b0, W1, b1, ...]), as nn.Linear
    initialises them (uniform within 1/√fan_in)."""
    dims = [2 + EMBED] + [width] * depth + [2]
    out: list[torch.Tensor] = []
    for a, b in zip(dims[:-1], dims[1:]):
        bound = 1.0 / math.sqrt(a)
        out.append((torch.rand(a, b, generator=gen) * 2 - 1) * bound)
        out.append((torch.rand(1, b, generator=gen) * 2 - 1) * bound)
    return out


def forward(params: list[torch.Tensor], x: torch.Tensor, t: torch.Tensor, levels: int,
            drop: list[torch.Tensor] | None = None) -> torch.Tensor:
    """ε predicted for noised points x (R, B, 2) at levels t (R, B); `drop`: one (R, B, width)
    multiplier a hidden layer (0 or 1/(1-p)) in training, None at sampling."""
    h = torch.cat([x, embed(t, levels)], -1)
    n = len(params) // 2
    for i in range(n):
        h = torch.baddbmm(params[2 * i + 1], h, params[2 * i])
        if i < n - 1:
            h = torch.nn.functional.silu(h)
            if drop is not None:
                h = h * drop[i]
    return h


def adamw(params: list[torch.Tensor], grads: list[torch.Tensor], m: list[torch.Tensor],
          v: list[torch.Tensor], count: torch.Tensor, lr: torch.Tensor, wd: torch.Tensor,
          b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> None:
    """One AdamW step in place; count (R,) steps taken so far by each run (after this one),
    lr and wd (R,) per run."""
    c = count.to(params[0].dtype)
    step = (lr / (1 - b1 ** c))[:, None, None]
    bc2 = (1 - b2 ** c).sqrt()[:, None, None]
    decay = (1 - lr * wd)[:, None, None]
    for p, g, mm, vv in zip(params, grads, m, v):
        mm.mul_(b1).add_(g, alpha=1 - b1)
        vv.mul_(b2).addcmul_(g, g, value=1 - b2)
        p.mul_(decay).sub_(step * mm / (vv.sqrt() / bc2 + eps))


def strides(levels: int, steps: int) -> list[int]:
    """The noise levels an S-step sampler visits, from the noisiest down to 0."""
    steps = max(1, min(steps, levels))
    return sorted({round(v) for v in torch.linspace(levels - 1, 0, steps).tolist()},
                  reverse=True)


@torch.no_grad()
def sample(params: list[torch.Tensor], abar: torch.Tensor, levels: int, steps: int,
           noise: torch.Tensor, extra: list[torch.Tensor], clip: float | None = None
           ) -> torch.Tensor:
    """Samples (R, M, 2) by ancestral sampling over an even stride of `steps` levels.

    abar (R, T) each run's ᾱ; `noise` (R, M, 2) the starting points x_T; the fresh noise of each
    step comes from `extra` (a list of (R, M, 2) tensors, one per visited level) so a caller
    draws it from each run's own generator. `clip` bounds the predicted clean point (the data's
    extent), as DDPM's sampler clips images to [-1, 1]."""
    x = noise
    taus = strides(levels, steps)
    r, m, _ = x.shape
    for k, t in enumerate(taus):
        a = abar[:, t][:, None, None]
        prev = taus[k + 1] if k + 1 < len(taus) else -1
        a_prev = abar[:, prev][:, None, None] if prev >= 0 else torch.ones_like(a)
        tt = torch.full((r, m), t, device=x.device, dtype=torch.long)
        e = forward(params, x, tt, levels)
        x0 = (x - (1 - a).sqrt() * e) / a.sqrt()
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        if prev < 0:
            x = x0
            break
        # DDIM's σ with η = 1: the posterior q(x_prev | x_t, x0)'s std
        sigma = ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).clamp_min(0).sqrt()
        e = (x - a.sqrt() * x0) / (1 - a).sqrt()  # the noise consistent with the clipped x0
        x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp_min(0).sqrt() * e
        x = x + sigma * extra[k]
    return x
