"""Remedies for mode collapse: penalties computed here, D's batch features in models.py.

The registry below describes each remedy (its knobs, its source) and `check_remedies` refuses the
combinations that make no sense, saying why. Penalties return per-run values, shape (R,).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from collapse_lab.trainer.config import ConfigError, RunConfig

REMEDIES = [
    dict(name="gp", knobs=["gp"], kind="penalty",
         help="WGAN-GP gradient penalty λ·E[(‖∇D(x̂)‖ − 1)²] on random interpolates, any objective",
         source="Gulrajani et al. 2017"),
    dict(name="r1", knobs=["r1"], kind="penalty",
         help="R1 penalty γ/2·E[‖∇D(x)‖²] on real data",
         source="Mescheder et al. 2018"),
    dict(name="minibatch_disc", knobs=["minibatch_disc", "mbd_kernels", "mbd_dim"], kind="feature",
         help="D sees how close each sample is to the others of its batch",
         source="Salimans et al. 2016"),
    dict(name="mbstd", knobs=["mbstd"], kind="feature",
         help="D sees the batch's mean feature standard deviation",
         source="Karras et al. 2018 (ProGAN)"),
    dict(name="unroll", knobs=["unroll"], kind="optimisation",
         help="G is trained against D unrolled k Adam steps ahead, differentiating through them",
         source="Metz et al. 2017"),
    dict(name="spectral_norm", knobs=["spectral_norm"], kind="constraint",
         help="every D weight divided by its largest singular value (one power iteration a step)",
         source="Miyato et al. 2018"),
    dict(name="entropy", knobs=["entropy"], kind="penalty",
         help="G is rewarded for spread: a nearest-neighbour estimate of its samples' entropy",
         source="Kozachenko & Leonenko 1987 estimator; cf. Dieng et al. 2019 (PresGAN)"),
]


def check_remedies(cfg: RunConfig) -> None:
    """Raise ConfigError for combinations that are refused, naming the knob and the reason."""
    if cfg.objective == "wgan" and cfg.gp_weight > 0:
        raise ConfigError("gp", "wgan already constrains the critic by clipping its weights; "
                          "for a gradient penalty instead of clipping use objective wgan-gp")
    if cfg.unroll > 0 and cfg.optimizer != "adam":
        raise ConfigError("unroll", "unrolling differentiates through Adam's update steps; "
                          "use optimizer adam")
    if cfg.minibatch_disc and cfg.batch_size > 1024:
        raise ConfigError("batch_size", "minibatch discrimination compares every pair in a batch "
                          "(batch² × kernels); use batch_size ≤ 1024 with it")
    if cfg.unroll > 0 and (cfg.minibatch_disc or cfg.mbstd) and cfg.batch_size > 512:
        raise ConfigError("unroll", "unrolling with batch features keeps k pairwise graphs alive; "
                          "use batch_size ≤ 512 with it")


def gradient_penalty(d: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] at x̂ = εx + (1 − ε)x̃, ε ~ U[0, 1] per sample (Gulrajani et al. 2017).

    real, fake: (R, B, dim) -> (R,)
    """
    eps = torch.rand(real.shape[0], real.shape[1], 1, generator=gen, device=real.device)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return ((g.norm(dim=2) - 1.0) ** 2).mean(dim=1)


def r1_penalty(d: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """E[‖∇D(x)‖²] on real data (Mescheder et al. 2018); the loss adds γ/2 times this. -> (R,)"""
    x = real.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return (g**2).sum(dim=2).mean(dim=1)


def nn_entropy(x: torch.Tensor, max_points: int = 256) -> torch.Tensor:
    """Kozachenko–Leonenko entropy estimate up to constants: dim · E[log ρᵢ], ρᵢ the distance
    from sample i to its nearest neighbour in the batch; a collapsed batch has tiny ρ.
    (R, B, dim) -> (R,)
    """
    x = x[:, :max_points]
    d = torch.cdist(x, x)  # (R, B, B)
    d = d + torch.eye(x.shape[1], device=x.device) * 1e9  # exclude self-pairs
    rho = d.min(dim=2).values
    return x.shape[2] * torch.log(rho + 1e-6).mean(dim=1)
