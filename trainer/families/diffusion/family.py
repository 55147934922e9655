"""The diffusion family as the rest of Collapse Lab sees it (trainer/family.py's contract)."""

from __future__ import annotations

from typing import Any

from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families.diffusion import config, cost, presets
from collapse_lab.trainer.families.diffusion.engine import DiffState, DiffusionEngine
from collapse_lab.trainer.families.diffusion.remedies import REMEDIES
from collapse_lab.trainer.family import Claim, Family, Frame, Preset, Stat, Welcome

STATS = (
    Stat("denoise_loss", "denoising loss", "loss", "mean squared error of the predicted "
         "noise over the training steps since the last tick", stage="g", fmt=".3f",
         show=("chart", "csv"), color="#334155"),
    Stat("memorised", "memorised", "memorisation", "share of generated samples nearer a "
         "training point than a tenth of the training points' spacing", fmt=".1%",
         show=("card", "chart", "csv"), color="#dc2626", hint="samples copying a training point"),
    Stat("memorised_chance", "memorised by chance", "memorisation", "the same share for fresh "
         "points of the data: what a model that learned the distribution scores", fmt=".1%",
         show=("card", "chart", "csv"), color="#94a3b8", hint="a model that generalises"),
    Stat("nn_distance", "distance to training", "memorisation", "mean distance from a "
         "generated sample to its nearest training point", fmt=".3f",
         show=("card", "chart", "csv"), color="#0369a1"),
)


def _fresh(cfg: Any, data: Dataset) -> DiffState:
    return DiffState.fresh(cfg)


def _presets() -> dict[str, Preset]:
    return {p.name: Preset(p.name, p.help, dict(p.values), p.base,
                           Claim(*p.expect) if p.expect else None, p.control,
                           family=config.FAMILY)
            for p in presets.PRESETS.values()}


FAMILY = Family(
    name=config.FAMILY,
    label="Diffusion",
    help="a small denoising diffusion model trained on a few points of a 2-D dataset: "
         "trained long on too few, it reproduces its training points instead of the "
         "distribution (memorisation)",
    knobs=config.KNOBS,
    datasets=tuple(config.KNOBS["dataset"].choices or ()),
    stats=STATS,
    frame=Frame(samples="generated samples", landscape="training points",
                arrows="learned score", occupancy=True),
    presets=_presets,
    make_config=config.make_config,
    validate_changes=config.validate_changes,
    stack_key=config.stack_key,
    structure_diff=config.structure_diff,
    fresh=_fresh,
    load=DiffState.from_dict,
    engine=DiffusionEngine,
    estimate=cost.estimate,
    # the landscape marks the training points (a bump of the memorised radius round each)
    frame_info=lambda cfg: {"value_kind": "training"},
    parts=("both",),
    groups=("data", "model", "objective", "remedy", "optim", "run"),
    remedies=tuple(REMEDIES.values()),
    welcome=Welcome(
        "Watch a diffusion model learn its few training points by heart, live, instead of the "
        "distribution they came from.",
        "diffusion-memorise-circle",
        "Loads a model trained on only 8 points of a circle: press Start run and watch its "
        "samples pile onto those 8 points instead of spreading along the circle. Then compare it "
        "with diffusion-more-data-circle, the same model on 1,024 points."),
)
