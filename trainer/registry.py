"""Everything a user can choose, in one JSON-able description (CLI, /api/options, the UI)."""

from __future__ import annotations

from typing import Any

from collapse_lab.trainer import objectives, presets, remedies
from collapse_lab.trainer.config import DATASETS, knobs

DATASET_HELP = {
    "ring8": "8 Gaussians on a circle of radius 2 (std 0.02)",
    "grid25": "5×5 Gaussians with spacing 2 (std 0.05)",
    "lines": "5 parallel line segments; each line is a mode",
    "spiral": "an Archimedean spiral; 8 equal arc-length segments are its modes",
    "digits": "scikit-learn's 8×8 handwritten digits; the 10 classes are the modes",
    "csv": "your own 2-D points (--data FILE.csv, or drawn on the dashboard): a mode column, "
           "or else k-means clusters, gives the modes",
}


def options() -> dict[str, Any]:
    return dict(
        datasets=[dict(name=d, help=DATASET_HELP[d]) for d in DATASETS],
        objectives=objectives.describe(),
        remedies=remedies.REMEDIES,
        presets=presets.describe(),
        knobs=knobs(),
    )
