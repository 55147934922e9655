"""The evolution family's remedies for premature convergence, as the page's remedy panel, the
client's summary and the tests see them: which knobs each one owns, the values that switch it
on (`typical`) and off (`off`), and its source (docs/families.md has what each does here)."""

from __future__ import annotations

from functools import partial

from collapse_lab.trainer.families.evolution.knobs import GA
from collapse_lab.trainer.family import Remedy as _Remedy

_BY_NAME = {k.name: k for k in GA}


# one of this family's remedies: trainer/family.py `Remedy` over its knobs
Remedy = partial(_Remedy, table=_BY_NAME)


REMEDIES: dict[str, _Remedy] = {r.name: r for r in (
    Remedy("sharing", "fitness sharing",
           "fitness divided among the individuals within a radius: a crowded peak pays less "
           "than an empty one (keep crossover off: valley children undo it)",
           "Goldberg & Richardson, ICGA 1987", ("sharing_radius", "sharing_alpha"),
           typical=dict(sharing_radius=0.75, crossover_rate=0.0), off=dict(sharing_radius=0.0)),
    Remedy("crowding", "deterministic crowding",
           "each child replaces the nearer of its parents, only if it is fitter",
           "Mahfoud, PhD thesis, 1995", ("crowding",),
           typical=dict(crowding=True), off=dict(crowding=False)),
    Remedy("immigrants", "random immigrants",
           "a share of each generation replaced by random newcomers",
           "Grefenstette, PPSN 1992", ("immigrants",),
           typical=dict(immigrants=0.05), off=dict(immigrants=0.0)),
    Remedy("mutation", "mutation rate",
           "every child mutated, with larger steps: more exploration", "", ("mutation_rate",),
           typical=dict(mutation_rate=1.0), off=dict(mutation_rate=0.2)),
    Remedy("islands", "islands",
           "separate populations that each converge on their own, with rare migrants",
           "Whitley & Starkweather 1990; Cantú-Paz 2000", ("islands", "migration"),
           typical=dict(islands=8, migration=0.01), off=dict(islands=1)),
)}
