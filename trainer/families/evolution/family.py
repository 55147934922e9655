"""The evolution family as the rest of Collapse Lab sees it (trainer/family.py's contract)."""

from __future__ import annotations

from typing import Any

from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families.evolution import config, cost, presets
from collapse_lab.trainer.families.evolution.engine import EvolutionEngine, EvoState
from collapse_lab.trainer.families.evolution.remedies import REMEDIES
from collapse_lab.trainer.family import Claim, Family, Frame, Panel, Preset, Stat, Welcome

STATS = (
    Stat("fitness_mean", "mean fitness", "fitness", "the population's mean fitness (the "
         "highest peak is 1)", fmt=".3f", show=("card", "chart", "csv"), color="#15803d"),
    Stat("fitness_max", "best fitness", "fitness", "the fittest individual's fitness",
         fmt=".3f", color="#166534"),
    Stat("spread", "spread", "fitness", "RMS distance of the individuals from the "
         "population's mean: 0 when all stand on one point", fmt=".3f", color="#7c3aed"),
)

# the family's own picture beside the shared ones (engine.py `_fitness_hists` fills it)
PANELS = (
    Panel("fitness_hist", "Fitness of the population", "bars",
          "share of the population (%) in each tenth of the fitness range; the highest peak "
          "is 1: a population on its peaks stands in the top bars, crossover's children between "
          "two peaks in the low ones"),
)


def _fresh(cfg: Any, data: Dataset) -> EvoState:
    return EvoState.fresh(cfg)


def _presets() -> dict[str, Preset]:
    return {p.name: Preset(p.name, p.help, dict(p.values), p.base,
                           Claim(*p.expect) if p.expect else None, p.control,
                           family=config.FAMILY)
            for p in presets.PRESETS.values()}


FAMILY = Family(
    name=config.FAMILY,
    label="Evolution",
    help="a genetic algorithm whose fitness is the data's density: the same collapse "
         "without a neural network (selection, crossover, mutation; five remedies)",
    knobs=config.KNOBS,
    datasets=tuple(config.KNOBS["dataset"].choices or ()),
    stats=STATS,
    frame=Frame(samples="population", landscape="fitness", occupancy=True, panels=PANELS),
    presets=_presets,
    make_config=config.make_config,
    validate_changes=config.validate_changes,
    stack_key=config.stack_key,
    structure_diff=config.structure_diff,
    fresh=_fresh,
    load=EvoState.from_dict,
    engine=EvolutionEngine,
    estimate=cost.estimate,
    # the landscape is fitness (with sharing on: as a newcomer would see it), drawn on its own
    # min..max scale, not D's probability
    frame_info=lambda cfg: {"value_kind": "fitness"},
    parts=("both",),
    groups=("data", "model", "objective", "remedy", "run"),
    remedies=tuple(REMEDIES.values()),
    # a population starts spread over the plane and settles on its peaks within a few dozen
    # generations (docs/presets.md): its count of peaks held is judged from generation 50
    judge_from=50,
    welcome=Welcome(
        "Watch a population converge on one peak of its data, live, and spread it back out.",
        "evolution-collapse-ring8",
        "Loads a genetic algorithm that converges too early: press Start run and watch the ring's "
        "eight peaks fall to one or two. Then pick evolution-rescue-ring8 and switch the run to "
        "it."),
)
