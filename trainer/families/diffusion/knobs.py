"""The diffusion family's knobs: the training set's size, the noise predictor, the noise
schedule, the sampler and the regularisers that keep a model from memorising, each with its
label, help, range and whether it changes live.

Every live knob is a per-run value of the stacked step (trainer/families/diffusion/engine.py),
so runs that differ in any of them still train together; the network's shape, the number of
noise levels, the batch and the samples drawn a tick fix the shape of the step.
"""

from __future__ import annotations

import dataclasses

from collapse_lab.trainer.knobs import Knob

SCHEDULES = ("linear", "cosine")
MAX_TRAIN = 4096  # the largest training set: every run's points are a prefix of this many

_DIFF = (
    Knob("train_points", "int", 16, "training set: this many points drawn once from the data "
         "(the first of a fixed draw of 4,096 for the seed, so more points keep the old ones); "
         "few points trained long are memorised", group="data", live=True, lo=8, hi=MAX_TRAIN,
         main=True),
    Knob("width", "int", 128, "units in each hidden layer of the noise predictor",
         group="model", lo=8, hi=512, structural=True),
    Knob("depth", "int", 3, "hidden layers of the noise predictor", group="model", lo=1, hi=6,
         structural=True),
    Knob("noise_levels", "int", 100, "noise levels T of the forward process (DDPM's 1,000 "
         "for images; fewer train faster)", group="model", lo=4, hi=1000, structural=True),
    Knob("schedule", "choice", "cosine", "how the noise grows over the levels: DDPM's linear "
         "betas or Nichol & Dhariwal's cosine ᾱ", group="objective", live=True,
         choices=SCHEDULES),
    Knob("lr", "float", 3e-3, "Adam's learning rate", group="optim", live=True, lo=1e-5,
         hi=0.1, log=True, main=True),
    Knob("batch", "int", 256, "noised training points per step (drawn with replacement from "
         "the training set)", group="optim", lo=8, hi=8192, structural=True),
    Knob("weight_decay", "float", 0.0, "decoupled weight decay (AdamW): pulls every weight "
         "towards 0 each step, a smoother predictor", group="remedy", live=True, lo=0.0,
         hi=1.0),
    Knob("dropout", "float", 0.0, "share of hidden units dropped at random in each training "
         "step", group="remedy", live=True, lo=0.0, hi=0.9),
    Knob("ema", "float", 0.0, "exponential moving average of the weights the sampler uses "
         "(decay per step; 0 = the weights themselves)", group="remedy", live=True, lo=0.0,
         hi=0.9999),
    Knob("sample_steps", "int", 25, "denoising steps of the sampler (an even stride over the "
         "noise levels; at most noise_levels): fewer = faster ticks, rougher samples",
         group="objective", live=True, lo=1, hi=1000),
    Knob("samples", "int", 512, "samples drawn each tick to measure memorisation",
         group="model", lo=64, hi=4096, structural=True),
    Knob("score_level", "float", 0.05, "noise level (share of T) at which the learned score "
         "field is drawn as arrows", group="objective", live=True, lo=0.0, hi=1.0),
)

_LABELS = {
    "train_points": "training points N",
    "width": "width",
    "depth": "depth",
    "noise_levels": "noise levels T",
    "schedule": "noise schedule",
    "lr": "learning rate",
    "batch": "batch",
    "weight_decay": "weight decay",
    "dropout": "dropout",
    "ema": "EMA decay",
    "sample_steps": "sampling steps",
    "samples": "samples a tick",
    "score_level": "score arrows' noise level",
}

# every knob with its label (what the page, the CLI's tables and the docs call it)
DIFF: tuple[Knob, ...] = tuple(dataclasses.replace(k, label=_LABELS[k.name]) for k in _DIFF)
