"""What a VAE run will cost before it starts: memory and time per training step.

The shared shape is trainer/cost.py's. With `enc` = 64·encoder_width + encoder_width·2·latent
and `dec` = latent·decoder_width + (decoder_layers − 1)·decoder_width² + decoder_width·64 the
networks' multiply-adds for one 8×8 image, the work counts of one training step:

- `updates`: aggressive + 1, the fixed cost of each update (its draws, Adam over every weight
  tensor: a few milliseconds whatever the sizes, more than the default networks' products);
- `tick`: 1 / tick_every, a tick's fixed cost (the digits classifier on the prior samples, mode
  metrics, panels);
- `train`: batch_size × (aggressive + 1) × (enc + dec) — the joint update and each aggressive
  encoder-only update (which still decodes for its loss);
- `eval`: (1,797 × enc + 516 × dec + 256² × latent) / tick_every — each tick encodes every
  digit, decodes 500 prior samples and 16 reconstructions, and compares 256 posteriors pairwise
  for I(x; z).

Memory: the process (`base_mb`) plus a step's activations (batch_size × the layers' widths,
kept for the backward), a tick's posteriors of every digit and I(x; z)'s 256² × latent
densities, and the weights with Adam's moments. Within the knobs' ranges a VAE stays far under
any memory budget; its cost is time: a wide network, a large batch and aggressive steps.

Coefficients: `python bench/costs.py --family vae --write` (costs.json beside this file).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from collapse_lab.trainer import cost
from collapse_lab.trainer.families.vae.config import KNOBS
from collapse_lab.trainer.families.vae.engine import MI_IMAGES, PRIOR_SAMPLES, RECONS

TABLE = Path(__file__).resolve().with_name("costs.json")
FEATURES = ("updates", "tick", "train", "eval")
TICKED = ("tick", "eval")  # the terms that are a tick's work over tick_every
DIGITS, PIXELS = 1797, 64  # scikit-learn's 8×8 digits (trainer/digits.py)
# where costs.json is missing: its fit (bench/costs.py on the machine of docs/performance.md,
# "Costs"), rounded
DEFAULT = ('{"seconds": {"updates": 0.0044, "tick": 0.0024, "train": 1.4e-10, '
           '"eval": 3.7e-10}, "memory": {"base_mb": 338.0, "floor_mb": 392.0}}')
WHY = {
    "updates": "each update, the joint one and every aggressive encoder step, has its fixed "
               "cost",
    "tick": "every tick measures and draws the run, every tick_every steps",
    "train": "a step's work grows with batch_size × (aggressive + 1) × the networks' widths "
             "(decoder_width² × decoder_layers)",
    "eval": "each tick encodes every digit and decodes 500 prior samples, every tick_every "
            "steps",
    "activations": "a step keeps batch_size × the layers' widths for its backward",
    "posteriors": "a tick holds every digit's posterior and 256² × latent densities",
    "weights": "the weights and Adam's moments grow with decoder_width² × decoder_layers",
}


def coefficients() -> dict[str, Any]:
    return cost.coefficients(TABLE, DEFAULT)


def knobs() -> dict[str, Any]:
    return KNOBS


def drivers(cfg: Any) -> dict[str, tuple[str, ...]]:
    nets = ("decoder_width", "encoder_width", "decoder_layers", "latent")
    return {"updates": ("aggressive",), "tick": ("-tick_every",),
            "train": ("aggressive", "batch_size", *nets), "eval": ("-tick_every", *nets),
            "activations": ("batch_size", *nets), "posteriors": ("latent", "encoder_width"),
            "weights": nets}


def nets(cfg: Any) -> tuple[int, int]:
    """Multiply-adds of the encoder and of the decoder for one image."""
    enc = PIXELS * cfg.encoder_width + cfg.encoder_width * 2 * cfg.latent
    dec = (cfg.latent * cfg.decoder_width + (cfg.decoder_layers - 1) * cfg.decoder_width ** 2
           + cfg.decoder_width * PIXELS)
    return enc, dec


def work(cfg: Any, watched: bool = True) -> dict[str, float]:
    """The work counts of one training step of `cfg` (see the module's text)."""
    enc, dec = nets(cfg)
    every = max(cfg.tick_every, 1)
    return dict(updates=float(cfg.aggressive + 1), tick=1.0 / every,
                train=float(cfg.batch_size * (cfg.aggressive + 1) * (enc + dec)),
                eval=(DIGITS * enc + (PRIOR_SAMPLES + RECONS) * dec
                      + MI_IMAGES ** 2 * cfg.latent) / every)


def memory_parts(cfg: Any, watched: bool = True) -> dict[str, float]:
    """MB of the largest tensors a step or a tick holds, over the process's own."""
    f = cost.FLOAT / cost.MB
    widths = (cfg.encoder_width + 4 * cfg.latent + cfg.decoder_width * cfg.decoder_layers
              + 2 * PIXELS)
    enc, dec = nets(cfg)
    return dict(activations=cfg.batch_size * widths * 4 * f,  # values, gradients, temporaries
                posteriors=(DIGITS * (cfg.encoder_width + 4 * cfg.latent)
                            + MI_IMAGES ** 2 * cfg.latent * 3) * f,
                weights=(enc + dec) * 4 * f)  # weights, gradients, Adam's two moments


def estimate(cfg: Any, watched: bool = True) -> dict[str, Any]:
    """Memory (MB) and seconds per step of a run of `cfg`, and which knob weighs most."""
    return cost.estimate(cfg, sys.modules[__name__], watched)
