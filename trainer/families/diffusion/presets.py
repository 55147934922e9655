"""The diffusion family's presets: a memorising model and the twins that generalise.

Measured on ten seeds (docs/presets.md, bench/calibrate_presets.py). Each twin keeps every other
knob of the memorising preset unless its text says otherwise, and carries its control: the
overrides that switch its remedy off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DiffPreset:
    name: str
    help: str
    values: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    expect: tuple[str, str, float] | None = None
    control: dict[str, Any] | None = None


_MEMORISE = dict(dataset="circle", train_points=8, width=128, depth=3, noise_levels=50,
                 schedule="cosine", lr=3e-3, batch=256, weight_decay=0.0, dropout=0.0, ema=0.0,
                 sample_steps=25, steps=3000, tick_every=100)

PRESETS: dict[str, DiffPreset] = {p.name: p for p in [
    DiffPreset(
        "diffusion-memorise-circle",
        "A diffusion model trained on 8 points of a circle: its samples pile onto the 8 "
        "training points instead of spreading along the circle.",
        _MEMORISE, expect=("memorised", "at_least", 0.5)),
]}


def values(name: str) -> dict[str, Any]:
    """A preset's knobs, its base's first."""
    p = PRESETS[name]
    out = values(p.base) if p.base else {}
    out.update(p.values)
    return out
