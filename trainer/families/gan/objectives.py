"""GAN objectives: each a small class with the discriminator's and the generator's loss.

Scores are D's raw outputs, shape (R, B); losses are per run, shape (R,), so R runs stacked
along the leading dimension train independently when their losses are summed. An objective
declares the knobs it owns (WGAN's clipping bound) and the penalty weight it implies while the
`gp` knob is unset (WGAN-GP's λ = 10).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from collapse_lab.trainer.knobs import Knob


class Objective:
    name: str
    help: str
    source: str
    clip_weights: bool = False  # clamp D's weights to [-clip, clip] after each D step
    value_kind: str = "critic"  # how to read D's landscape: "probability" or "critic"
    default_gp: float = 0.0  # the gradient-penalty weight in force while the `gp` knob is unset
    knobs: tuple[Knob, ...] = ()

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """D's loss on scores of a real and a fake batch; every objective here is a sum of a
        real-data term and a fake-data term."""
        return self.d_real(real) + self.d_fake(fake)

    def d_real(self, real: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_fake(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def value(self, scores: torch.Tensor) -> torch.Tensor:
        """D's output as drawn in the landscape: a probability for the logistic objectives."""
        return torch.sigmoid(scores) if self.value_kind == "probability" else scores


class Minimax(Objective):
    name = "minimax"
    help = "the original saturating game: G minimises log(1 − D(G(z)))"
    source = "Goodfellow et al. 2014"
    value_kind = "probability"

    # −log σ(r) − log(1 − σ(f)), written with softplus for stability
    def d_real(self, real):
        return F.softplus(-real).mean(dim=1)

    def d_fake(self, fake):
        return F.softplus(fake).mean(dim=1)

    def g_loss(self, fake):
        return -F.softplus(fake).mean(dim=1)  # log(1 − σ(f)) = −softplus(f)


class NonSaturating(Minimax):
    name = "nsgan"
    help = "non-saturating: G maximises log D(G(z)), strong gradients early on"
    source = "Goodfellow et al. 2014, §3"

    def g_loss(self, fake):
        return F.softplus(-fake).mean(dim=1)  # −log σ(f)


class WGAN(Objective):
    name = "wgan"
    help = "Wasserstein critic, Lipschitz by weight clipping"
    source = "Arjovsky et al. 2017"
    clip_weights = True
    knobs: tuple[Knob, ...] = (
        Knob("clip", "float", 0.01, "weight clipping bound of the wgan critic",
             group="objective", live=True, lo=1e-4, hi=1.0, log=True, label="Clip (WGAN)"),)

    def d_real(self, real):
        return -real.mean(dim=1)

    def d_fake(self, fake):
        return fake.mean(dim=1)

    def g_loss(self, fake):
        return -fake.mean(dim=1)


class WGANGP(WGAN):
    name = "wgan-gp"
    help = "Wasserstein critic with a gradient penalty (λ = 10) instead of clipping"
    source = "Gulrajani et al. 2017"
    clip_weights = False
    default_gp = 10.0
    knobs = ()  # the penalty weight is the `gp` remedy's knob


class Hinge(Objective):
    name = "hinge"
    help = "hinge loss for D, −D(G(z)) for G"
    source = "Lim & Ye 2017; Miyato et al. 2018"

    def d_real(self, real):
        return F.relu(1.0 - real).mean(dim=1)

    def d_fake(self, fake):
        return F.relu(1.0 + fake).mean(dim=1)

    def g_loss(self, fake):
        return -fake.mean(dim=1)


class LeastSquares(Objective):
    name = "lsgan"
    help = "least squares: D regresses real → 1, fake → 0"
    source = "Mao et al. 2017"

    def d_real(self, real):
        return 0.5 * ((real - 1.0) ** 2).mean(dim=1)

    def d_fake(self, fake):
        return 0.5 * (fake**2).mean(dim=1)

    def g_loss(self, fake):
        return 0.5 * ((fake - 1.0) ** 2).mean(dim=1)


OBJECTIVES: dict[str, type[Objective]] = {
    c.name: c for c in (Minimax, NonSaturating, WGAN, WGANGP, Hinge, LeastSquares)
}


def get_objective(name: str) -> Objective:
    return OBJECTIVES[name]()


def objective_knobs() -> list[Knob]:
    """The knobs objectives declare, each once, in registry order."""
    out: dict[str, Knob] = {}
    for c in OBJECTIVES.values():
        for k in c.knobs:
            out.setdefault(k.name, k)
    return list(out.values())


def describe() -> list[dict[str, Any]]:
    return [dict(name=c.name, help=c.help, source=c.source, value_kind=c.value_kind,
                 default_gp=c.default_gp, knobs=[k.name for k in c.knobs])
            for c in OBJECTIVES.values()]
