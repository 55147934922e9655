"""Everything a user can choose, in one JSON-able description (CLI, /api/options, the UI)."""

from __future__ import annotations

from typing import Any

from collapse_lab.trainer import data, objectives, presets, stats
from collapse_lab.trainer.config import knobs
from collapse_lab.trainer.remedies import REMEDIES


def options() -> dict[str, Any]:
    return dict(
        datasets=data.describe(),
        objectives=objectives.describe(),
        remedies=[r.describe() for r in REMEDIES.values()],
        presets=presets.describe(),
        knobs=knobs(),
        stats=stats.describe(),
    )
