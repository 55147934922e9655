"""Named configurations: a lesson's starting point, overridable knob by knob.

A preset is a partial config on top of the defaults (and optionally on top of another preset).
`docs/presets.md` records how reliably each one does what its text says, measured over seeds by
`bench/calibrate_presets.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainer.config import ConfigError, RunConfig, make_config


@dataclass(frozen=True)
class Preset:
    name: str
    help: str  # one line: what a person should see
    values: dict[str, Any] = field(default_factory=dict)
    base: str | None = None  # another preset this one starts from


_COLLAPSE_RING8 = dict(dataset="ring8", objective="nsgan", beta1=0.9, lr_g=1e-3, lr_d=1e-3)

PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("vanilla-ring8", "plain non-saturating GAN on the 8-Gaussian ring, default knobs",
           dict(dataset="ring8", objective="nsgan")),
    Preset("collapse-ring8", "a GAN that collapses on the ring: watch modes drop",
           _COLLAPSE_RING8),
    Preset("wgan-gp-ring8", "the collapse preset with the WGAN-GP objective",
           dict(objective="wgan-gp", n_critic=5, beta1=0.5, beta2=0.9, lr_g=1e-4, lr_d=1e-4),
           base="collapse-ring8"),
    Preset("minibatch-ring8", "the collapse preset with minibatch discrimination in D",
           dict(minibatch_disc=True), base="collapse-ring8"),
    Preset("unrolled-ring8", "the collapse preset with a 5-step unrolled discriminator",
           dict(unroll=5), base="collapse-ring8"),
    Preset("spectral-ring8", "the collapse preset with spectral normalization in D",
           dict(spectral_norm=True), base="collapse-ring8"),
    Preset("collapse-grid25", "a GAN that covers few of the 25 grid modes",
           dict(dataset="grid25", objective="nsgan", beta1=0.9)),
    Preset("collapse-digits", "a GAN on 8×8 digits that draws few classes",
           dict(dataset="digits", objective="nsgan", z_dim=32, g_width=256, d_width=256,
                batch_size=128, beta1=0.9, lr_g=1e-3, lr_d=1e-3)),
]}


def preset_values(name: str) -> dict[str, Any]:
    """The preset's knob values, bases resolved (base first, then the preset's own)."""
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r}; expected one of "
                          + ", ".join(PRESETS))
    p = PRESETS[name]
    values = preset_values(p.base) if p.base else {}
    values.update(p.values)
    return values


def from_preset(name: str | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    values = preset_values(name) if name else {}
    values.update(overrides or {})
    return make_config(values)


def describe() -> list[dict[str, Any]]:
    return [dict(name=p.name, help=p.help, values=preset_values(p.name)) for p in PRESETS.values()]
