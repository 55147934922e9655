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


_MEMORISE = dict(dataset="circle", train_points=8, width=64, depth=3, noise_levels=50,
                 schedule="cosine", lr=3e-3, batch=128, weight_decay=0.0, dropout=0.0, ema=0.0,
                 samples=512, sample_steps=10, steps=4000, tick_every=10)

PRESETS: dict[str, DiffPreset] = {p.name: p for p in [
    DiffPreset(
        "diffusion-memorise-circle",
        "Memorisation: a small diffusion model (an MLP noise predictor, 50 noise levels) "
        "trained 4,000 steps on only 8 points of a circle. Its samples do not spread along "
        "the circle: they pile onto the 8 training points, most of them nearer one than a "
        "tenth of the points' spacing, against about 8 % for fresh points of the circle.",
        _MEMORISE, expect=("memorised", "at_least", 0.5)),
    DiffPreset(
        "diffusion-more-data-circle",
        "The same model and training on 1,024 points of the circle instead of 8: no point "
        "can be learned by heart, and the samples spread along the whole circle — hardly any "
        "lands that near a training point.",
        dict(train_points=1024), base="diffusion-memorise-circle",
        expect=("memorised", "at_most", 0.2), control=dict(train_points=8)),
    DiffPreset(
        "diffusion-weight-decay-circle",
        "The memorising recipe with strong weight decay (AdamW, 1.0): the noise predictor "
        "stays smooth and cannot carve a spike at each of the 8 points, so its samples form "
        "blurred arcs around them rather than copies.",
        dict(weight_decay=1.0), base="diffusion-memorise-circle",
        expect=("memorised", "at_most", 0.2), control=dict(weight_decay=0.0)),
    DiffPreset(
        "diffusion-early-stop-circle",
        "The memorising recipe stopped after 500 steps: the model has learned roughly where "
        "the points are but not yet each point exactly, so few samples are copies — "
        "memorisation grows with training (the control trains the full 4,000).",
        dict(steps=500), base="diffusion-memorise-circle",
        expect=("memorised", "at_most", 0.2), control=dict(steps=4000)),
]}


def values(name: str) -> dict[str, Any]:
    """A preset's knobs, its base's first."""
    p = PRESETS[name]
    out = values(p.base) if p.base else {}
    out.update(p.values)
    return out
