"""The decoding family as the rest of Collapse Lab sees it (trainer/family.py's contract)."""

from __future__ import annotations

from typing import Any

from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families.decoding import config, cost, presets
from collapse_lab.trainer.families.decoding.engine import DecodingEngine, DecState
from collapse_lab.trainer.families.decoding.remedies import REMEDIES
from collapse_lab.trainer.family import Claim, Family, Frame, Panel, Preset, Stat, Welcome

STATS = (
    Stat("lm_loss", "LM loss", "loss", "training loss: the negative log-likelihood of a sentence "
         "(nats); the language's own entropy, 5.77 nats, is the floor", stage="g", unit="nats",
         fmt=".3f", show=("card", "chart", "csv"), color="#1f77b4"),
    Stat("logprob", "log-likelihood", "text", "mean log-probability of a decoded string under "
         "the model (nats): beam search finds the likeliest, sampling typical ones",
         unit="nats", fmt=".2f", show=("card", "chart", "csv"), color="#0f766e"),
    Stat("distinct_1", "distinct-1", "text", "distinct words over all words of the decoded "
         "strings (Li et al. 2016)", fmt=".3f", color="#a16207"),
    Stat("distinct_2", "distinct-2", "text", "distinct word pairs over all word pairs of the "
         "decoded strings", fmt=".3f", show=("card", "chart", "csv"), color="#ca8a04",
         hint="low = the strings repeat each other"),
    Stat("self_bleu", "self-BLEU", "text", "each decoded string's BLEU-3 against the others, "
         "averaged (Zhu et al. 2018): 1 = they say the same", fmt=".3f",
         show=("card", "chart", "csv"), color="#b91c1c"),
    Stat("outputs", "strings decoded", "text", "strings the tick decoded: samples when "
         "sampling, else the beams that survived (at most beam_width; 1 for greedy)",
         integer=True, fmt="d", show=("csv",)),
)


def _fresh(cfg: Any, data: Dataset) -> DecState:
    return DecState.fresh(cfg)


def _presets() -> dict[str, Preset]:
    return {p.name: Preset(p.name, p.help, dict(p.values), p.base,
                           Claim(*p.expect) if p.expect else None, p.control,
                           family=config.FAMILY)
            for p in presets.PRESETS.values()}


FAMILY = Family(
    name=config.FAMILY,
    label="Decoding",
    help="a small GRU language model on a language of known templates: beam search writes "
         "only the likeliest template, sampling and diverse beams write them all",
    knobs=config.KNOBS,
    datasets=tuple(config.KNOBS["dataset"].choices or ()),
    stats=STATS,
    frame=Frame(samples="", occupancy=True, panels=(
        Panel("strings", "decoded strings", "text", "the strings of the latest tick, grouped "
              "by the template each traces to"),)),
    presets=_presets,
    make_config=config.make_config,
    validate_changes=config.validate_changes,
    stack_key=config.stack_key,
    structure_diff=config.structure_diff,
    fresh=_fresh,
    load=DecState.from_dict,
    engine=DecodingEngine,
    estimate=cost.estimate,
    parts=("both",),
    groups=("data", "model", "objective", "remedy", "optim", "run"),
    remedies=tuple(REMEDIES.values()),
    welcome=Welcome(
        "Watch beam search write only the likeliest sentences of a language, live, and other "
        "decoders write them all.",
        "decoding-beam-collapse",
        "Loads a small language model decoded by beam search: press Start run and watch its "
        "strings keep to one or two of the six templates. Then pick decoding-sampling and switch "
        "the run to it."),
)
