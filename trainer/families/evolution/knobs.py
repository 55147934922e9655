"""The evolution family's knobs: the genetic algorithm's own and the remedies for premature
convergence, each with its label, help, range and whether it changes live.

Every live knob is a per-run value of the stacked generation (trainer/families/evolution/ga.py),
so runs that differ in any of them still step together; only the population size and the data
fix the shape of the step.
"""

from __future__ import annotations

import dataclasses

from collapse_lab.trainer.families.evolution.ga import K_MAX
from collapse_lab.trainer.knobs import Knob

SELECTIONS = ("tournament", "truncation")

_GA = (
    Knob("population", "int", 512, "individuals in each population (each island's share "
         "of them when there are islands)", group="model", lo=16, hi=4096, structural=True),
    Knob("fitness_sigma", "float", 0.25, "width of each fitness peak: the data's density "
         "broadened by a Gaussian of this std", group="model", live=True, lo=0.02, hi=2.0),
    Knob("selection", "choice", "tournament", "how parents are chosen: the fittest of a "
         "random tournament, or at random among the best fraction (truncation)",
         group="objective", live=True, choices=SELECTIONS),
    Knob("tournament_size", "int", 4, "individuals per tournament: larger = stronger "
         "selection", group="objective", live=True, lo=1, hi=K_MAX),
    Knob("truncation", "float", 0.2, "truncation selection: the best fraction of the "
         "population that may be parents (smaller = stronger selection)", group="objective",
         live=True, lo=0.01, hi=1.0),
    Knob("crossover_rate", "float", 0.9, "probability a child is a blend of two parents "
         "(else a copy of one)", group="objective", live=True, lo=0.0, hi=1.0),
    Knob("blend_alpha", "float", 0.0, "BLX-α: each coordinate of a child is drawn from its "
         "parents' interval widened by α of its length on each side", group="objective",
         live=True, lo=0.0, hi=1.0),
    Knob("mutation_sigma", "float", 0.05, "std of a mutation's Gaussian step",
         group="objective", live=True, lo=0.001, hi=2.0, log=True),
    Knob("mutation_rate", "float", 0.2, "probability a child is mutated (raise it to keep "
         "exploring)", group="remedy", live=True, lo=0.0, hi=1.0),
    Knob("sharing_radius", "float", 0.0, "fitness sharing (Goldberg & Richardson 1987): "
         "fitness is divided among the individuals within this radius, so a crowded peak "
         "pays less; 0 = off", group="remedy", live=True, lo=0.0, hi=4.0),
    Knob("sharing_alpha", "float", 1.0, "shape of the sharing function 1 − (d/radius)^α",
         group="remedy", live=True, lo=0.1, hi=4.0),
    Knob("crowding", "bool", False, "deterministic crowding (Mahfoud 1995): parents paired "
         "at random, each child replaces the nearer parent only if it is fitter (replaces "
         "selection)", group="remedy", live=True),
    Knob("immigrants", "float", 0.0, "random immigrants: share of each generation replaced "
         "by individuals drawn uniformly over the landscape", group="remedy", live=True,
         lo=0.0, hi=0.5),
    Knob("islands", "int", 1, "islands: the population split into this many groups that "
         "select and mate within themselves", group="remedy", live=True, lo=1, hi=64),
    Knob("migration", "float", 0.01, "islands: probability a parent comes from the next "
         "island round the ring", group="remedy", live=True, lo=0.0, hi=1.0),
)

_LABELS = {
    "population": "population",
    "fitness_sigma": "peak width σ",
    "selection": "selection",
    "tournament_size": "tournament size",
    "truncation": "truncation fraction",
    "crossover_rate": "crossover rate",
    "blend_alpha": "blend α",
    "mutation_sigma": "mutation step",
    "mutation_rate": "mutation rate",
    "sharing_radius": "sharing radius",
    "sharing_alpha": "sharing α",
    "crowding": "deterministic crowding",
    "immigrants": "random immigrants",
    "islands": "islands",
    "migration": "migration rate",
}

# every knob with its label (what the page, the CLI's tables and the docs call it)
GA: tuple[Knob, ...] = tuple(dataclasses.replace(k, label=_LABELS[k.name]) for k in _GA)
