"""The evolution family's presets: premature convergence on the ring and its remedies.

Measured on ten seeds (docs/presets.md, bench/evolution_presets.py): 512 individuals on the
ring's density broadened to σ 0.25, tournaments of 2, mutation (rate 0.2, step 0.05), 300
generations. Each remedy twin keeps every other knob of the collapse preset unless its text
says otherwise, and carries its control: the overrides that switch the remedy off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EvoPreset:
    name: str
    help: str
    values: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    expect: tuple[str, str, float] | None = None
    control: dict[str, Any] | None = None


_COLLAPSE = dict(dataset="ring8", population=512, fitness_sigma=0.25, selection="tournament",
                 tournament_size=2, crossover_rate=0.9, blend_alpha=0.0, mutation_rate=0.2,
                 mutation_sigma=0.05, sharing_radius=0.0, crowding=False, immigrants=0.0,
                 islands=1, steps=300)

PRESETS: dict[str, EvoPreset] = {p.name: p for p in [
    EvoPreset(
        "evolution-collapse-ring8",
        "Premature convergence on the ring: 512 individuals start spread over the plane, "
        "tournaments of 2 pick the parents and every child is a blend of two of them. Blending "
        "pulls the population into the ring's empty middle, and the first lineage to reach a "
        "peak takes over: within a few dozen generations every individual sits on one of the "
        "eight peaks and the other seven are never visited again.",
        _COLLAPSE, expect=("modes_covered", "at_most", 2)),
    EvoPreset(
        "evolution-sharing-ring8",
        "evolution-collapse-ring8 with fitness sharing (radius 0.75, Goldberg & Richardson "
        "1987) and mutation only (no crossover): an individual's fitness is divided among its "
        "neighbours, so a crowded peak pays less than an empty one and the population splits "
        "into eight niches of about 64. Without sharing the same knobs drift onto one peak.",
        dict(sharing_radius=0.75, crossover_rate=0.0), base="evolution-collapse-ring8",
        expect=("modes_covered", "at_least", 7), control=dict(sharing_radius=0.0)),
    EvoPreset(
        "evolution-sharing-crossover-ring8",
        "An honest negative: fitness sharing (radius 0.75) with the collapse preset's blend "
        "crossover kept collapses as fast as without it. Blending pulls the population into "
        "the ring's empty middle before any niche forms, and later a child of parents on two "
        "peaks lands in the valley between them where nothing scores, so a minority niche "
        "wastes its matings and dies out: sharing needs mating kept within a niche, or no "
        "crossover (evolution-sharing-ring8).",
        dict(sharing_radius=0.75), base="evolution-collapse-ring8",
        expect=("modes_covered", "at_most", 2)),
    EvoPreset(
        "evolution-crowding-ring8",
        "evolution-collapse-ring8 with deterministic crowding (Mahfoud 1995): parents are "
        "paired at random and each child replaces the parent it is nearer to, only if fitter. "
        "A valley child never wins, so blend crossover is harmless and every peak keeps the "
        "individuals that climbed it.",
        dict(crowding=True), base="evolution-collapse-ring8",
        expect=("modes_covered", "at_least", 7), control=dict(crowding=False)),
    EvoPreset(
        "evolution-rescue-ring8",
        "The twin to switch to live: fitness sharing (radius 0.75), 5 % random immigrants a "
        "generation and no crossover. Sharing alone cannot bring back a peak nobody stands on, "
        "and immigrants alone die out on the unshared peaks; together, an immigrant that lands "
        "on an empty peak has it to itself, is worth more than anyone on the crowded one and "
        "founds a niche. Switched onto a collapsed evolution-collapse-ring8 run it holds all "
        "eight peaks again within 50 generations.",
        dict(sharing_radius=0.75, crossover_rate=0.0, immigrants=0.05),
        base="evolution-collapse-ring8", expect=("modes_covered", "at_least", 7),
        control=dict(sharing_radius=0.0, immigrants=0.0)),
    EvoPreset(
        "evolution-collapse-grid25",
        "The collapse recipe of evolution-collapse-ring8 on the 5×5 grid's 25 peaks: the "
        "population contracts, finds one peak and keeps it; 24 are lost.",
        dict(_COLLAPSE, dataset="grid25"), expect=("modes_covered", "at_most", 2)),
    EvoPreset(
        "evolution-rescue-grid25",
        "evolution-rescue-ring8's remedies (sharing 0.75, 5 % immigrants, no crossover) on the "
        "5×5 grid: immigrants find the peaks and sharing keeps them, about 20 individuals a "
        "peak, so 20 or more of the 25 are held. Deterministic crowding does less well here "
        "(about 10): it keeps only the peaks its first generation happened to fill.",
        dict(sharing_radius=0.75, crossover_rate=0.0, immigrants=0.05),
        base="evolution-collapse-grid25", expect=("modes_covered", "at_least", 20),
        control=dict(sharing_radius=0.0, immigrants=0.0)),
]}


def values(name: str) -> dict[str, Any]:
    """A preset's knobs, its base's first."""
    p = PRESETS[name]
    out = values(p.base) if p.base else {}
    out.update(p.values)
    return out
