"""What a decoding run will cost before it starts: memory and time per training step.

The shared shape is trainer/cost.py's. With `cell` = 3·(embed + hidden)·hidden + hidden·V the
language model's multiply-adds for one word (a GRU cell and the output layer, V the language's
words), L its longest sentence plus the end, and `strings` what a tick decodes (beam_width for
beam and diverse beam search, samples for sampling, 1 for greedy), the work counts of one
training step:

- `const`: 1, a step's fixed cost; `tick`: 1 / tick_every, a tick's (mode metrics, the text
  panel);
- `train`: lm_batch × L × cell — the step's forward and backward;
- `decode`: strings × L × cell / tick_every — each tick's decoding;
- `search`: L × groups / tick_every for beam and diverse beam search (1 group for beam and
  greedy) — each group's selection is its own small step, every word;
- `text`: strings × L / tick_every — distinct-n and self-BLEU over the decoded strings.

Memory: the process (`base_mb`) plus a step's activations (lm_batch × L × (4·hidden + embed +
V), kept for the backward) and a tick's (strings × L × V). Within the knobs' ranges decoding
stays far under any memory budget, and its decoding is small (beam_width and samples are
bounded, 64 and 200); its cost is the language model's training: hidden and lm_batch.

Coefficients: `python bench/costs.py --family decoding --write` (costs.json beside this file).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from collapse_lab.trainer import cost
from collapse_lab.trainer.families.decoding.config import KNOBS

TABLE = Path(__file__).resolve().with_name("costs.json")
FEATURES = ("const", "tick", "train", "decode", "search", "text")
TICKED = ("tick", "decode", "search", "text")  # the terms that are a tick's work over tick_every
# where costs.json is missing: its fit (bench/costs.py on the machine of docs/performance.md,
# "Costs"), rounded
DEFAULT = ('{"seconds": {"const": 0.0098, "tick": 0.004, "train": 2.7e-10, "decode": 0.0, '
           '"search": 0.00025, "text": 1.3e-05}, "memory": {"base_mb": 326.0, '
           '"floor_mb": 244.0}}')
WHY = {
    "const": "a step's fixed cost",
    "tick": "every tick decodes and measures the run, every tick_every steps",
    "train": "a step's work grows with lm_batch × hidden × (embed + hidden)",
    "decode": "each tick decodes beam_width (or samples) strings through the model, every "
              "tick_every steps",
    "search": "diverse beam search selects group by group at every word, every tick_every "
              "steps",
    "text": "each tick measures distinct-n and self-BLEU over the strings it decoded",
    "activations": "a step keeps lm_batch × the sentence's words × hidden for its backward",
    "decoding": "a tick holds its strings' next-word distributions",
}


@lru_cache(maxsize=4)
def language(name: str) -> tuple[int, int]:
    """V (the words, with the end) and L (the longest sentence plus the end) of a language."""
    from collapse_lab.trainer.language import TemplateLanguage

    lang = TemplateLanguage(name)
    return len(lang.vocab), lang.length + 1


def coefficients() -> dict[str, Any]:
    return cost.coefficients(TABLE, DEFAULT)


def knobs() -> dict[str, Any]:
    return KNOBS


def strings_knob(cfg: Any) -> str | None:
    """The knob that sets how many strings a tick decodes (None: greedy decodes one)."""
    return {"beam": "beam_width", "diverse_beam": "beam_width", "sample": "samples"}.get(
        cfg.strategy)


def drivers(cfg: Any) -> dict[str, tuple[str, ...]]:
    s = strings_knob(cfg)
    each = (s,) if s else ()
    return {"const": ("lm_batch",), "tick": ("-tick_every",),
            "train": ("lm_batch", "hidden", "embed"),
            "decode": (*each, "-tick_every", "hidden"),
            "search": ("groups", "-tick_every") if cfg.strategy == "diverse_beam"
            else ("-tick_every",),
            "text": (*each, "-tick_every"), "activations": ("lm_batch", "hidden"),
            "decoding": (*each, "hidden")}


def strings(cfg: Any) -> int:
    s = strings_knob(cfg)
    return int(getattr(cfg, s)) if s else 1


def work(cfg: Any, watched: bool = True) -> dict[str, float]:
    """The work counts of one training step of `cfg` (see the module's text)."""
    v, length = language(cfg.dataset)
    cell = 3 * (cfg.embed + cfg.hidden) * cfg.hidden + cfg.hidden * v
    every = max(cfg.tick_every, 1)
    groups = (min(cfg.groups, cfg.beam_width) if cfg.strategy == "diverse_beam" else 1)
    return dict(const=1.0, tick=1.0 / every, train=float(cfg.lm_batch * length * cell),
                decode=strings(cfg) * length * cell / every,
                search=(length * groups / every if cfg.strategy != "sample" else 0.0),
                text=strings(cfg) * length / every)


def memory_parts(cfg: Any, watched: bool = True) -> dict[str, float]:
    """MB of the largest tensors a step or a tick holds, over the process's own."""
    v, length = language(cfg.dataset)
    f = cost.FLOAT / cost.MB
    return dict(activations=cfg.lm_batch * length * (4 * cfg.hidden + cfg.embed + v) * 4 * f,
                decoding=strings(cfg) * length * (v + cfg.hidden) * 4 * f)


def estimate(cfg: Any, watched: bool = True) -> dict[str, Any]:
    """Memory (MB) and seconds per step of a run of `cfg`, and which knob weighs most."""
    return cost.estimate(cfg, sys.modules[__name__], watched)
