"""Remedies for mode collapse, as registry objects.

A remedy declares its knobs (they become CLI flags, API fields and dashboard controls), a label,
a typical setting that switches it on (what a comparison or a lesson uses), whether switching it
changes the shape of the training step (`structural`: runs must agree on it to share a stacked
step), and the combinations it refuses. A *penalty* also owns its loss term: computed in the
discriminator's update (`stage = "d"`) or the generator's (`"g"`), per run, shape (R,), and
reported under its `stat` name. The batch features (minibatch discrimination, minibatch stddev)
and packing live in D itself (trainer/families/gan/models.py); unrolling and spectral normalization
in the
step (trainer/families/gan/engine.py) — their classes here describe them.

Adding a penalty is one class here and its tests; the engine, the CLI, `/api/options` and the
dashboard pick it up from `REMEDIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from collapse_lab.trainer.families.gan.models import MAX_PACK
from collapse_lab.trainer.families.gan.objectives import get_objective
from collapse_lab.trainer.knobs import ConfigError, Knob


@dataclass
class DBatch:
    """What a discriminator penalty sees in one D update (R runs)."""

    d: Callable[[torch.Tensor], torch.Tensor]  # scores (R, B, dim) -> (R, B)
    real: torch.Tensor  # (R, B, dim)
    fake: torch.Tensor  # (R, B, dim), no graph to G
    eps: torch.Tensor  # (R, B, 1) uniform draws of this update (interpolation weights)


@dataclass
class GBatch:
    """What a generator penalty sees in G's update."""

    fake: torch.Tensor  # (R, B, dim), with G's graph


class Remedy:
    name: str
    label: str  # short, for buttons and legends
    help: str
    source: str
    knobs: tuple[Knob, ...] = ()
    typical: dict[str, Any] = {}  # knob values that switch it on
    off: dict[str, Any] = {}  # knob values that switch it off
    structural = False

    def is_on(self, cfg: Any) -> bool:
        raise NotImplementedError

    def check(self, cfg: Any) -> None:
        """Raise ConfigError for a combination this remedy refuses, naming the knob and why."""

    def describe(self) -> dict[str, Any]:
        return dict(name=self.name, label=self.label, help=self.help, source=self.source,
                    knobs=[k.name for k in self.knobs], typical=self.typical, off=self.off,
                    structural=self.structural,
                    kind="penalty" if isinstance(self, Penalty) else "structure",
                    stat=getattr(self, "stat", None))


class Penalty(Remedy):
    """A weighted loss term; runs of one stack may differ in its weight (0 = off)."""

    stage: str  # "d": added to D's loss in every D update; "g": to G's loss
    stat: str  # the name its per-run value is reported under
    stat_label: str  # and its label on the loss chart
    color: str  # its line's colour there

    def weight(self, cfg: Any) -> float:
        raise NotImplementedError

    def is_on(self, cfg: Any) -> bool:
        return self.weight(cfg) > 0

    def term(self, batch: Any) -> torch.Tensor:
        """The unweighted term per run, (R,)."""
        raise NotImplementedError


# ---------------------------------------------------------------------------- penalties
class GradientPenalty(Penalty):
    name = "gp"
    label = "gradient penalty"
    help = "WGAN-GP gradient penalty λ·E[(‖∇D(x̂)‖ − 1)²] on random interpolates, any objective"
    source = "Gulrajani et al. 2017"
    stage, stat = "d", "term_gp"
    stat_label, color = "GP term", "#a05cd6"
    knobs = (Knob("gp", "float", None, "gradient penalty weight λ (Gulrajani et al. 2017); unset "
                  "= the objective's default: 10 for wgan-gp, 0 otherwise", group="remedy",
                  live=True, lo=0.0, hi=1000.0, nullable=True, label="Gradient penalty λ"),)
    typical = {"gp": 1.0}
    off = {"gp": 0.0}

    def weight(self, cfg: Any) -> float:
        return cfg.gp if cfg.gp is not None else get_objective(cfg.objective).default_gp

    def check(self, cfg: Any) -> None:
        if get_objective(cfg.objective).clip_weights and self.weight(cfg) > 0:
            raise ConfigError("gp", f"{cfg.objective} already constrains the critic by clipping "
                              "its weights; for a gradient penalty instead of clipping use "
                              "objective wgan-gp")

    def term(self, batch: DBatch) -> torch.Tensor:
        """E[(‖∇D(x̂)‖₂ − 1)²] at x̂ = εx + (1 − ε)x̃, ε ~ U[0, 1] per sample."""
        x = (batch.eps * batch.real + (1 - batch.eps) * batch.fake).requires_grad_(True)
        (g,) = torch.autograd.grad(batch.d(x).sum(), x, create_graph=True)
        return ((g.norm(dim=2) - 1.0) ** 2).mean(dim=1)


class R1Penalty(Penalty):
    name = "r1"
    label = "R1 penalty"
    help = "R1 penalty γ/2·E[‖∇D(x)‖²] on real data"
    source = "Mescheder et al. 2018"
    stage, stat = "d", "term_r1"
    stat_label, color = "R1 term", "#2bb3a3"
    knobs = (Knob("r1", "float", 0.0, "R1 penalty weight γ on real data (Mescheder et al. 2018)",
                  group="remedy", live=True, lo=0.0, hi=1000.0, label="R1 penalty γ"),)
    typical = {"r1": 1.0}
    off = {"r1": 0.0}

    def weight(self, cfg: Any) -> float:
        return 0.5 * cfg.r1  # the loss adds γ/2 · E‖∇D(x)‖²

    def term(self, batch: DBatch) -> torch.Tensor:
        x = batch.real.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(batch.d(x).sum(), x, create_graph=True)
        return (g**2).sum(dim=2).mean(dim=1)


class EntropyBonus(Penalty):
    name = "entropy"
    label = "entropy bonus"
    help = "G is rewarded for spread: a nearest-neighbour estimate of its samples' entropy"
    source = "Kozachenko & Leonenko 1987 estimator; cf. Dieng et al. 2019 (PresGAN)"
    stage, stat = "g", "term_entropy"
    stat_label, color = "entropy term", "#d4a017"
    knobs = (Knob("entropy", "float", 0.0, "weight of the generator's entropy (diversity) bonus",
                  group="remedy", live=True, lo=0.0, hi=10.0, label="Entropy bonus"),)
    typical = {"entropy": 0.1}
    off = {"entropy": 0.0}

    def weight(self, cfg: Any) -> float:
        return cfg.entropy

    def term(self, batch: GBatch) -> torch.Tensor:
        return -nn_entropy(batch.fake)  # a bonus: the loss goes down as the spread goes up


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


# ---------------------------------------------------------------------------- structure
class MinibatchDiscrimination(Remedy):
    name = "minibatch_disc"
    label = "minibatch discrimination"
    help = "D sees how close each sample is to the others of its batch"
    source = "Salimans et al. 2016"
    structural = True
    knobs = (
        Knob("minibatch_disc", "bool", False, "minibatch discrimination features in D",
             group="remedy", live=True, structural=True, label="Minibatch discrimination"),
        Knob("mbd_kernels", "int", 16, "minibatch discrimination kernels B (Salimans et al. "
             "2016)", group="model", lo=1, hi=128, label="Minibatch kernels B"),
        Knob("mbd_dim", "int", 4, "minibatch discrimination kernel dimension C", group="model",
             lo=1, hi=32, label="Minibatch kernel size C"),
    )
    typical = {"minibatch_disc": True}
    off = {"minibatch_disc": False}

    def is_on(self, cfg: Any) -> bool:
        return bool(cfg.minibatch_disc)

    def check(self, cfg: Any) -> None:
        if cfg.minibatch_disc and cfg.batch_size > 1024:
            raise ConfigError("batch_size", "minibatch discrimination compares every pair in a "
                              "batch (batch² × kernels); use batch_size ≤ 1024 with it")


class MinibatchStddev(Remedy):
    name = "mbstd"
    label = "minibatch stddev"
    help = "D sees the batch's mean feature standard deviation"
    source = "Karras et al. 2018 (ProGAN)"
    structural = True
    knobs = (Knob("mbstd", "bool", False, "minibatch standard deviation feature in D (Karras "
                  "et al. 2018)", group="remedy", live=True, structural=True,
                  label="Minibatch std-dev"),)
    typical = {"mbstd": True}
    off = {"mbstd": False}

    def is_on(self, cfg: Any) -> bool:
        return bool(cfg.mbstd)


class Unrolling(Remedy):
    name = "unroll"
    label = "unrolled D"
    help = "G is trained against D unrolled k Adam steps ahead, differentiating through them"
    source = "Metz et al. 2017"
    structural = True
    knobs = (Knob("unroll", "int", 0, "unrolled discriminator steps k (Metz et al. 2017); 0 = "
                  "off", group="remedy", live=True, lo=0, hi=10, structural=True,
                  label="Unrolled D steps"),)
    typical = {"unroll": 5}
    off = {"unroll": 0}

    def is_on(self, cfg: Any) -> bool:
        return cfg.unroll > 0

    def check(self, cfg: Any) -> None:
        if cfg.unroll > 0 and cfg.optimizer != "adam":
            raise ConfigError("unroll", "unrolling differentiates through Adam's update steps; "
                              "use optimizer adam")
        if cfg.unroll > 0 and (cfg.minibatch_disc or cfg.mbstd) and cfg.batch_size > 512:
            raise ConfigError("unroll", "unrolling with batch features keeps k pairwise graphs "
                              "alive; use batch_size ≤ 512 with it")


class SpectralNorm(Remedy):
    name = "spectral_norm"
    label = "spectral norm"
    help = "every D weight divided by its largest singular value (one power iteration a step)"
    source = "Miyato et al. 2018"
    structural = True
    knobs = (Knob("spectral_norm", "bool", False, "spectral normalization of D's weights "
                  "(Miyato et al. 2018)", group="remedy", live=True, structural=True,
                  label="Spectral norm"),)
    typical = {"spectral_norm": True}
    off = {"spectral_norm": False}

    def is_on(self, cfg: Any) -> bool:
        return bool(cfg.spectral_norm)


class Packing(Remedy):
    name = "pack"
    label = "packing (PacGAN)"
    help = ("D judges m samples at once, concatenated: a generator that repeats itself is easy "
            "to spot")
    source = "Lin et al. 2018 (PacGAN)"
    structural = True
    knobs = (Knob("pack", "int", 1, "samples D judges at once, concatenated (PacGAN, Lin et al. "
                  "2018); 1 = off", group="remedy", live=True, lo=1, hi=MAX_PACK,
                  structural=True, label="Pack (PacGAN)"),)
    typical = {"pack": 2}
    off = {"pack": 1}

    def is_on(self, cfg: Any) -> bool:
        return cfg.pack > 1


REMEDIES: dict[str, Remedy] = {r.name: r for r in (
    GradientPenalty(), R1Penalty(), MinibatchDiscrimination(), MinibatchStddev(), Unrolling(),
    SpectralNorm(), EntropyBonus(), Packing())}
PENALTIES: list[Penalty] = [r for r in REMEDIES.values() if isinstance(r, Penalty)]


def remedy_knobs() -> list[Knob]:
    return [k for r in REMEDIES.values() for k in r.knobs]


def remedies_on(cfg: Any) -> list[str]:
    """Names of the remedies a config has switched on, in registry order."""
    return [r.name for r in REMEDIES.values() if r.is_on(cfg)]


def check_remedies(cfg: Any) -> None:
    for r in REMEDIES.values():
        r.check(cfg)
