"""The vae family's knobs: the model's sizes, the objective's weight on the KL term and the
remedies for posterior collapse, each with its label, help, range and whether it changes live.

Every live knob is a per-run value of the stacked step (trainer/families/vae/engine.py), so runs
that differ in β, warm-up, free bits, aggressive encoder steps or learning rate still step
together; the sizes of the networks, the latent and the batch fix the step's shape.
"""

from __future__ import annotations

from collapse_lab.trainer.knobs import Knob

AGGRESSIVE_MAX = 20  # encoder-only updates per step, at most (each costs about a step)

VAE: tuple[Knob, ...] = (
    Knob("latent", "int", 16, "latent units: the size of z", group="model", lo=1, hi=64,
         structural=True, label="latent units", short="latent"),
    Knob("encoder_width", "int", 128, "hidden units of the encoder's one hidden layer",
         group="model", lo=8, hi=1024, structural=True, label="encoder width",
         short="enc"),
    Knob("decoder_width", "int", 128, "hidden units of each of the decoder's hidden layers "
         "(the decoder's capacity: a stronger decoder needs z less)", group="model", lo=8,
         hi=1024, structural=True, label="decoder width", short="dec"),
    Knob("decoder_layers", "int", 1, "hidden layers of the decoder (its capacity, with its "
         "width)", group="model", lo=1, hi=4, structural=True, label="decoder layers",
         short="dec layers"),
    Knob("beta", "float", 1.0, "weight of the KL term: loss = reconstruction + β·KL (β-VAE, "
         "Higgins et al. 2017); large β pushes every unit's posterior onto the prior",
         group="objective", live=True, lo=0.0, hi=20.0, label="β (KL weight)", short="β"),
    Knob("warmup", "int", 0, "KL warm-up (Bowman et al. 2016): the KL weight grows linearly "
         "from 0 to β over this many steps; 0 = off", group="remedy", live=True, lo=0,
         hi=100_000, label="KL warm-up steps", short="warm-up"),
    Knob("free_bits", "float", 0.0, "free bits λ (Kingma et al. 2016): each unit's KL, "
         "averaged over the batch, costs nothing below λ nats, so units may carry that much "
         "information for free; 0 = off", group="remedy", live=True, lo=0.0, hi=4.0,
         label="free bits λ (nats/unit)", short="free bits"),
    Knob("aggressive", "int", 0, "aggressive encoder steps (He et al. 2019): encoder-only "
         "updates before each joint step, so the encoder keeps up with the decoder; 0 = off",
         group="remedy", live=True, lo=0, hi=AGGRESSIVE_MAX, label="aggressive encoder steps",
         short="aggr"),
    Knob("lr", "float", 1e-3, "Adam learning rate of encoder and decoder", group="optim",
         live=True, lo=1e-5, hi=1e-1, log=True, label="learning rate", short="lr",
         main=True),
    Knob("batch_size", "int", 128, "images per step", group="optim", lo=8, hi=1024,
         structural=True, label="batch size", short="batch"),
)
