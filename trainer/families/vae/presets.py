"""The vae family's presets: posterior collapse on the digits and its remedies.

Each remedy twin keeps every other knob of the collapse preset and carries its control: the
overrides that switch the remedy off (docs/presets.md has the ten-seed table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VaePreset:
    name: str
    help: str
    values: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    expect: tuple[str, str, float] | None = None
    control: dict[str, Any] | None = None


_COLLAPSE = dict(dataset="digits", latent=16, encoder_width=128, decoder_width=128,
                 decoder_layers=1, beta=4.0, warmup=0, free_bits=0.0, aggressive=0, lr=1e-3,
                 batch_size=128, steps=3000)

PRESETS: dict[str, VaePreset] = {p.name: p for p in [
    VaePreset(
        "vae-collapse-digits",
        "Posterior collapse on the digits: with β 4 the KL term makes every unit of z cost "
        "more than it tells the decoder, so the posteriors settle on the prior, the decoder "
        "learns to ignore z and every prior sample decodes to the same blurred average digit.",
        _COLLAPSE, expect=("active_units", "at_most", 1)),
]}


def values(name: str) -> dict[str, Any]:
    """A preset's knobs, its base's first."""
    p = PRESETS[name]
    out = values(p.base) if p.base else {}
    out.update(p.values)
    return out
