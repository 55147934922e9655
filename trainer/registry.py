"""Everything a user can choose, in one JSON-able description (CLI, /api/options, the UI)."""

from __future__ import annotations

from typing import Any

from collapse_lab.trainer import data, stats
from collapse_lab.trainer.families.gan import objectives, presets
from collapse_lab.trainer.families.gan.config import knobs
from collapse_lab.trainer.families.gan.remedies import REMEDIES


def options() -> dict[str, Any]:
    return dict(
        datasets=data.describe(),
        objectives=objectives.describe(),
        remedies=[r.describe() for r in REMEDIES.values()],
        presets=presets.describe(),
        knobs=knobs(),
        stats=stats.describe(),
    )
