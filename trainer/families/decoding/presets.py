"""The decoding family's presets: beam collapse on the six-template language and its rescues.

Each preset trains the same model (a GRU of hidden size 64, 1,000 Adam steps) on the same
seed's batches; they differ only in how strings are decoded, so the runs of one seed stack and
a remedy twin's control (its remedy switched off) decodes the very same model. Measured on ten
seeds (docs/presets.md, bench/calibrate_presets.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DecPreset:
    name: str
    help: str
    values: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    expect: tuple[str, str, float] | None = None
    control: dict[str, Any] | None = None


_BEAM = dict(dataset="templates", embed=32, hidden=64, lm_batch=64, lm_lr=3e-3, steps=1000,
             strategy="beam", beam_width=16)

PRESETS: dict[str, DecPreset] = {p.name: p for p in [
    DecPreset(
        "decoding-beam-collapse",
        "Beam collapse: a small GRU learns a language of six sentence templates (30 % … 8 % of "
        "the sentences). Beam search with 16 beams keeps the likeliest strings, and every "
        "sentence of the likeliest template ('the cat sleeps here') is likelier than any other "
        "template's, so most of the 16 come from it; a few beams keep a second template "
        "whose opening is likely, and four of the six templates are never written.",
        _BEAM, expect=("modes_covered", "at_most", 2)),
    DecPreset(
        "decoding-sampling",
        "The same model decoded by sampling at temperature 1: each word drawn from the model's "
        "distribution, so the 128 strings of a tick come from the templates in about their "
        "proportions and all six are written. Its control decodes by beam search again.",
        dict(strategy="sample", temperature=1.0, top_k=0, top_p=1.0, samples=128),
        base="decoding-beam-collapse", expect=("modes_covered", "at_least", 6),
        control=dict(strategy="beam")),
    DecPreset(
        "decoding-diverse-beam",
        "The same model decoded by diverse beam search (Vijayakumar et al. 2016): each of the "
        "16 beams is a group of its own and pays 1 nat for every earlier group that chose the "
        "same word at the same step, so the beams open their sentences differently and spread "
        "over the templates. Its control sets the penalty to 0: sixteen identical greedy "
        "searches.",
        dict(strategy="diverse_beam", groups=16, diversity=1.0),
        base="decoding-beam-collapse", expect=("modes_covered", "at_least", 6),
        control=dict(diversity=0.0)),
]}


def values(name: str) -> dict[str, Any]:
    """A preset's knobs, its base's first."""
    p = PRESETS[name]
    out = values(p.base) if p.base else {}
    out.update(p.values)
    return out
