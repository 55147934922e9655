"""The decoding family's knobs: the language model's (its size and optimizer) and the decoder's
(strategy, beam width, temperature, top-k, top-p, diverse beam groups and penalty), each with
its label, help, range and whether it changes live.

Every decoding knob and the learning rate are per-run values read at a tick or a step, so runs
that differ in them still train in one stack; the model's size and the batch fix the step's
shape.
"""

from __future__ import annotations

import dataclasses

from collapse_lab.trainer.knobs import Knob

STRATEGIES = ("greedy", "beam", "diverse_beam", "sample")

_LM = (
    Knob("embed", "int", 32, "size of each word's embedding", group="model", lo=4, hi=256,
         structural=True),
    Knob("hidden", "int", 64, "size of the GRU's hidden state", group="model", lo=8, hi=512,
         structural=True),
    Knob("lm_batch", "int", 64, "sentences in each training batch", group="optim", lo=1,
         hi=1024, structural=True),
    Knob("lm_lr", "float", 3e-3, "Adam's learning rate", group="optim", live=True, lo=1e-5,
         hi=0.1, log=True, main=True),
)

_DECODE = (
    Knob("strategy", "choice", "beam", "how strings are decoded from the model: greedy (the "
         "likeliest word each step), beam (keep the likeliest partial strings), diverse_beam "
         "(groups of beams pushed apart, Vijayakumar et al. 2016), sample (draw each word, with "
         "temperature, top-k and top-p)", group="objective", live=True, choices=STRATEGIES),
    Knob("beam_width", "int", 16, "beams kept (and strings returned) by beam and diverse beam "
         "search", group="objective", live=True, lo=1, hi=64),
    Knob("temperature", "float", 1.0, "sampling: divides the log-probabilities; below 1 sharpens "
         "towards the likeliest words, above 1 flattens", group="objective", live=True,
         lo=0.05, hi=5.0, log=True),
    Knob("top_k", "int", 0, "sampling: only the k likeliest words may be drawn; 0 = all",
         group="objective", live=True, lo=0, hi=64),
    Knob("top_p", "float", 1.0, "sampling: nucleus (Holtzman et al. 2020), only the likeliest "
         "words whose probabilities add up to p may be drawn; 1 = all", group="objective",
         live=True, lo=0.01, hi=1.0),
    Knob("samples", "int", 128, "sampling: strings drawn at each tick", group="objective",
         live=True, lo=1, hi=200),
    Knob("groups", "int", 16, "diverse beam search: the beams split into this many groups, "
         "each penalised for the words earlier groups chose at the same step (as many groups as "
         "beams: each beam its own group)", group="remedy", live=True, lo=1, hi=64),
    Knob("diversity", "float", 1.0, "diverse beam search: the penalty (in nats) on a word for "
         "each earlier group that chose it at the same step; 0 = groups search alike",
         group="remedy", live=True, lo=0.0, hi=20.0),
)

_LABELS = {
    "embed": "embedding size",
    "hidden": "hidden size",
    "lm_batch": "batch size",
    "lm_lr": "learning rate",
    "strategy": "decoding",
    "beam_width": "beam width",
    "temperature": "temperature",
    "top_k": "top-k",
    "top_p": "top-p",
    "samples": "samples per tick",
    "groups": "beam groups",
    "diversity": "diversity penalty",
}

LM: tuple[Knob, ...] = tuple(dataclasses.replace(k, label=_LABELS[k.name]) for k in _LM)
DECODE: tuple[Knob, ...] = tuple(dataclasses.replace(k, label=_LABELS[k.name]) for k in _DECODE)
