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
                 batch_size=128, steps=1000)

PRESETS: dict[str, VaePreset] = {p.name: p for p in [
    VaePreset(
        "vae-collapse-digits",
        "Posterior collapse on the digits: with β 4 every nat z carries costs four in the "
        "objective, more than it saves the decoder, so within a few hundred steps every latent "
        "unit's posterior settles on the prior, the KL falls to zero, the decoder learns to "
        "ignore z and every prior sample decodes to the same blurred average digit, which the "
        "classifier calls one class.",
        _COLLAPSE, expect=("active_units", "at_most", 1)),
    VaePreset(
        "vae-free-bits-digits",
        "vae-collapse-digits with free bits (λ 0.5 nats a unit, Kingma et al. 2016): below "
        "half a nat a unit's KL costs nothing, so no unit is pushed all the way onto the prior; "
        "every unit stays active, z carries about 8 nats, the reconstructions keep their digit "
        "and prior samples are digits of most classes. Without free bits the same knobs "
        "collapse.",
        dict(free_bits=0.5), base="vae-collapse-digits",
        expect=("active_units", "at_least", 12), control=dict(free_bits=0.0)),
    VaePreset(
        "vae-warmup-digits",
        "An honest negative: vae-collapse-digits with a KL warm-up over its first 500 steps "
        "(Bowman et al. 2016). While the KL weight is small the units carry information and "
        "prior samples are digits of several classes; once it reaches β 4 the same arithmetic "
        "as before applies, and the posterior collapses all the same. A warm-up rescues a "
        "collapse that is an accident of early training, not one the objective asks for: here "
        "free bits (vae-free-bits-digits) or a smaller β do.",
        dict(warmup=500), base="vae-collapse-digits",
        expect=("active_units", "at_most", 1)),
]}


def values(name: str) -> dict[str, Any]:
    """A preset's knobs, its base's first."""
    p = PRESETS[name]
    out = values(p.base) if p.base else {}
    out.update(p.values)
    return out
