"""GAN objectives: each a small class with the discriminator's and the generator's loss.

Scores are D's raw outputs, shape (R, B); losses are per run, shape (R,), so R runs stacked
along the leading dimension train independently when their losses are summed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Objective:
    name: str
    help: str
    source: str
    clip_weights: bool = False  # clamp D's weights to [-clip, clip] after each D step
    value_kind: str = "critic"  # how to read D's landscape: "probability" or "critic"

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
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

    def d_loss(self, real, fake):
        # −log σ(r) − log(1 − σ(f)), written with softplus for stability
        return (F.softplus(-real) + F.softplus(fake)).mean(dim=1)

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

    def d_loss(self, real, fake):
        return fake.mean(dim=1) - real.mean(dim=1)

    def g_loss(self, fake):
        return -fake.mean(dim=1)


class WGANGP(WGAN):
    name = "wgan-gp"
    help = "Wasserstein critic with a gradient penalty (λ = 10) instead of clipping"
    source = "Gulrajani et al. 2017"
    clip_weights = False


class Hinge(Objective):
    name = "hinge"
    help = "hinge loss for D, −D(G(z)) for G"
    source = "Lim & Ye 2017; Miyato et al. 2018"

    def d_loss(self, real, fake):
        return F.relu(1.0 - real).mean(dim=1) + F.relu(1.0 + fake).mean(dim=1)

    def g_loss(self, fake):
        return -fake.mean(dim=1)


class LeastSquares(Objective):
    name = "lsgan"
    help = "least squares: D regresses real → 1, fake → 0"
    source = "Mao et al. 2017"

    def d_loss(self, real, fake):
        return 0.5 * ((real - 1.0) ** 2).mean(dim=1) + 0.5 * (fake**2).mean(dim=1)

    def g_loss(self, fake):
        return 0.5 * ((fake - 1.0) ** 2).mean(dim=1)


OBJECTIVES: dict[str, type[Objective]] = {
    c.name: c for c in (Minimax, NonSaturating, WGAN, WGANGP, Hinge, LeastSquares)
}


def get_objective(name: str) -> Objective:
    return OBJECTIVES[name]()


def describe() -> list[dict]:
    from collapse_lab.trainer.config import DEFAULT_GP

    return [dict(name=c.name, help=c.help, source=c.source, value_kind=c.value_kind,
                 default_gp=DEFAULT_GP.get(c.name, 0.0))
            for c in OBJECTIVES.values()]
