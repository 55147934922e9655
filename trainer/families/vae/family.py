"""The vae family as the rest of Collapse Lab sees it (trainer/family.py's contract)."""

from __future__ import annotations

from typing import Any

from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families.vae import config, cost, presets
from collapse_lab.trainer.families.vae.engine import ACTIVE, VaeEngine, VaeState
from collapse_lab.trainer.families.vae.remedies import REMEDIES
from collapse_lab.trainer.family import Claim, Family, Frame, Panel, Preset, Stat, Welcome

STATS = (
    Stat("recon_loss", "reconstruction", "vae", "the decoder's cross-entropy of an image "
         "given its z, nats per image (mean over the steps since the last tick)", stage="g",
         unit="nats", fmt=".2f", show=("chart", "csv"), color="#2563eb"),
    # on the I(x; z) card, under its value: the KL is what z costs, I(x; z) what it carries
    Stat("kl", "KL", "vae", "KL(q(z|x) ‖ p(z)) summed over the latent units, nats per image: "
         "what z tells the decoder costs this much", stage="g", unit="nats", fmt=".2f",
         show=("card", "chart", "csv"), color="#c2410c", under="mutual_info"),
    Stat("kl_weight", "KL weight", "vae", "the weight on the KL term at the last step: β, "
         "or less during a warm-up", stage="last", fmt=".3g", color="#64748b"),
    Stat("active_units", "active units", "vae", f"latent units whose posterior mean varies "
         f"over the data: Var_x E[z|x] > {ACTIVE} (Burda et al. 2016)", integer=True, fmt="d",
         show=("card", "chart", "csv"), color="#15803d", hint="0 = posterior collapse"),
    # the unit in the label: a card's value has no room for "nats"
    Stat("mutual_info", "I(x; z), nats", "vae", "an estimate of the mutual information "
         "between an image and its z under the encoder, in nats (at most log 256 ≈ 5.55 here)",
         fmt=".2f", show=("card", "chart", "csv"), color="#7c3aed",
         hint="0 = z says nothing of x"),
)

PANELS = (
    Panel("recon", "reconstructions", "images", "16 digits (in) beside what the decoder makes "
          "of their posterior mean (out): with a collapsed posterior every out is the same"),
    Panel("kl_units", "KL per unit", "bars", "each latent unit's KL from the prior, nats "
          "(the line: free bits λ when on)"),
    Panel("activity", "unit activity", "bars", f"Var_x E[z|x] of each latent unit; above "
          f"{ACTIVE} (the line) a unit is active"),
)


def _fresh(cfg: Any, data: Dataset) -> VaeState:
    return VaeState.fresh(cfg)


def _presets() -> dict[str, Preset]:
    return {p.name: Preset(p.name, p.help, dict(p.values), p.base,
                           Claim(*p.expect) if p.expect else None, p.control,
                           family=config.FAMILY)
            for p in presets.PRESETS.values()}


FAMILY = Family(
    name=config.FAMILY,
    label="VAE",
    help="a variational autoencoder on the 8×8 digits: the KL term pushes the posterior onto "
         "the prior and prior samples blur into one average digit (free bits, KL warm-up, "
         "aggressive encoder)",
    knobs=config.KNOBS,
    datasets=("digits",),
    stats=STATS,
    frame=Frame(samples="prior samples", occupancy=True, panels=PANELS),
    presets=_presets,
    make_config=config.make_config,
    validate_changes=config.validate_changes,
    stack_key=config.stack_key,
    structure_diff=config.structure_diff,
    fresh=_fresh,
    load=VaeState.from_dict,
    engine=VaeEngine,
    estimate=cost.estimate,
    parts=("both",),
    groups=("data", "model", "objective", "remedy", "optim", "run"),
    remedies=tuple(REMEDIES.values()),
    welcome=Welcome(
        "Watch a VAE stop using its code, live: every prior sample blurs into one average digit.",
        "vae-collapse-digits",
        "Loads a VAE with β 4: press Start run and watch its active latent units fall to one or "
        "none and its prior samples turn into one blurred digit. Then compare it with "
        "vae-free-bits-digits, the same VAE with free bits."),
)
