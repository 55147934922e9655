"""The GAN family as the rest of Collapse Lab sees it (trainer/family.py's contract)."""

from __future__ import annotations

from typing import Any

from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families.gan import config, cost, presets
from collapse_lab.trainer.families.gan.engine import Engine
from collapse_lab.trainer.families.gan.objectives import get_objective
from collapse_lab.trainer.families.gan.remedies import REMEDIES
from collapse_lab.trainer.families.gan.state import RunState
from collapse_lab.trainer.families.gan.stats import STEP
from collapse_lab.trainer.family import Family, Frame, Welcome


def _frame_info(cfg: Any) -> dict[str, Any]:
    return {"value_kind": get_objective(cfg.objective).value_kind, "objective": cfg.objective}


def _fresh(cfg: Any, data: Dataset) -> RunState:
    return RunState.fresh(cfg, data.dim, data.kind == "image")


FAMILY = Family(
    name="gan",
    label="GAN",
    help="a small generator against a small discriminator (six objectives, nine remedies)",
    knobs=config.KNOBS,
    datasets=config.DATASETS,
    stats=STEP,
    frame=Frame(samples="G's samples", landscape="D's value", manifold="G(z) over a latent grid",
                occupancy=True),
    presets=lambda: presets.PRESETS,
    make_config=config.make_config,
    validate_changes=config.validate_changes,
    stack_key=config.stack_key,
    structure_diff=config.structure_diff,
    fresh=_fresh,
    load=RunState.from_dict,
    engine=Engine,
    estimate=cost.estimate,
    frame_info=_frame_info,
    parts=("both", "d", "g"),
    remedies=tuple(REMEDIES.values()),
    # for its first few hundred steps a generator is a blob between the modes: its count of
    # modes covered is judged (coloured) from step 500 (docs/dashboard.md)
    judge_from=500,
    welcome=Welcome(
        "Watch a GAN lose the modes of its data, live, and steer it back.",
        "collapse-ring8",
        "Loads a run that collapses within a minute: press Start run and watch the ring's eight "
        "modes fall to one or two. Then pick wgan-gp-ring8 and switch the run to it."),
)
