"""The run configuration: one dataclass assembled from every knob of the registry.

The run's own knobs (data, networks, optimizer, schedule) are declared here; objectives and
remedies declare theirs in their classes (trainer/families/gan/objectives.py,
trainer/families/gan/remedies.py). `RunConfig`
has one field per knob, and `knobs()` describes them all for the CLI flags, `/api/options`, the
API's request model and the dashboard's controls — so a new knob appears everywhere at once.

`live` knobs may change mid-run (applied at the next step boundary); the others define the
networks or the data and are fixed when the run starts. `structural` live knobs change the shape
of the training step: runs that differ in them train in separate stacks (`stack_key`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from collapse_lab.trainer import run_knobs
from collapse_lab.trainer.families.gan.objectives import OBJECTIVES, get_objective, objective_knobs
from collapse_lab.trainer.families.gan.remedies import check_remedies, remedy_knobs
from collapse_lab.trainer.knobs import ConfigError, Knob, KnobSet

__all__ = ["ConfigError", "Knob", "RunConfig", "knobs", "make_config", "validate_changes"]

FAMILY = "gan"  # every GAN config's `family` (trainer/families/__init__.py)
DATASETS = run_knobs.DATASETS
ACTIVATIONS = ("relu", "leaky_relu", "tanh")
OPTIMIZERS = ("adam", "rmsprop")
DEVICES = run_knobs.DEVICES

_DATA = list(run_knobs.DATA.values())
_MODEL = [
    Knob("z_dim", "int", 16, "latent noise dimension", group="model", lo=1, hi=512,
         label="Latent size"),
    Knob("g_width", "int", 128, "generator hidden width", group="model", lo=4, hi=1024,
         label="G width"),
    Knob("g_depth", "int", 2, "generator hidden layers", group="model", lo=1, hi=8,
         label="G depth"),
    Knob("d_width", "int", 128, "discriminator hidden width", group="model", lo=4, hi=1024,
         label="D width"),
    Knob("d_depth", "int", 2, "discriminator hidden layers", group="model", lo=1, hi=8,
         label="D depth"),
    Knob("activation", "choice", "relu", "hidden activation of both networks", group="model",
         choices=ACTIVATIONS, label="Activation"),
    Knob("g_batchnorm", "bool", False, "batch normalisation after each hidden layer of G, "
         "before its activation, on the batch's own statistics (PacGAN's generator)",
         group="model", label="G batch norm"),
    Knob("d_maxout", "int", 1, "maxout pieces of each hidden unit of D: a unit is the largest "
         "of this many linear pieces, replacing the activation (PacGAN's discriminator: 5); "
         "1 = off", group="model", lo=1, hi=8, label="D maxout pieces"),
    Knob("init_std", "float", 0.0, "initial weights of both networks drawn from N(0, std²) "
         "with zero biases (PacGAN's code: 0.02); 0 = PyTorch's default (uniform, ±1/√fan-in)",
         group="model", lo=0.0, hi=1.0, label="Initial weight std"),
]
_OBJECTIVE = [
    Knob("objective", "choice", "nsgan", "GAN objective", group="objective", live=True,
         choices=tuple(OBJECTIVES), label="Objective"),
]
_OPTIM = [
    Knob("optimizer", "choice", "adam", "optimizer of both networks (changing it resets its "
         "state)", group="optim", live=True, choices=OPTIMIZERS, structural=True,
         label="Optimizer"),
    Knob("lr_g", "float", 1e-3, "generator learning rate", group="optim", live=True, lo=1e-6,
         hi=1e-1, log=True, label="G learning rate", main=True),
    Knob("lr_d", "float", 1e-3, "discriminator learning rate", group="optim", live=True,
         lo=1e-6, hi=1e-1, log=True, label="D learning rate", main=True),
    Knob("beta1", "float", 0.5, "Adam β1", group="optim", live=True, lo=0.0, hi=0.999,
         label="Adam β1", short="β1", main=True),
    Knob("beta2", "float", 0.999, "Adam β2 (RMSProp α)", group="optim", live=True, lo=0.0,
         hi=0.9999, label="Adam β2", short="β2"),
    Knob("n_critic", "int", 1, "discriminator steps per generator step", group="optim",
         live=True, lo=1, hi=20, structural=True, label="D steps per G step", main=True),
    Knob("batch_size", "int", 256, "samples per batch", group="optim", live=True, lo=8, hi=4096,
         structural=True, label="Batch size", short="batch"),
    Knob("simultaneous", "bool", False, "G's update uses D as it was before this step's D "
         "updates (simultaneous gradient steps, as in Metz et al.'s code); off = alternating",
         group="optim", live=True, structural=True, label="Simultaneous updates"),
]
_RUN = [
    dataclasses.replace(run_knobs.RUN["steps"], help="generator steps to train; 0 = until "
                        "stopped"),
    run_knobs.RUN["speed"],
    run_knobs.RUN["seed"],
    run_knobs.RUN["tick_every"],
    Knob("eval_samples", "int", 2500, "generated samples evaluated per tick (fixed noise)",
         group="run", lo=100, hi=20_000, label="Samples evaluated per tick",
         short="eval samples"),
    dataclasses.replace(run_knobs.RUN["grid_size"], help="side of the discriminator value "
                        "grid"),
    run_knobs.RUN["device"],
    run_knobs.RUN["threads"],
    Knob("cuda_graph", "choice", "auto", "capture the training step as a CUDA graph: auto = "
         "where a quick self-check passes on this device", group="run",
         choices=("auto", "on", "off"), label="CUDA graph"),
]


def _gp_weight(self: Any) -> float:
    """The gradient-penalty weight in force: the `gp` knob, or the objective's default."""
    return self.gp if self.gp is not None else get_objective(self.objective).default_gp


SPACE = KnobSet(
    FAMILY, (*_DATA, *_MODEL, *_OBJECTIVE, *objective_knobs(), *remedy_knobs(), *_OPTIM, *_RUN),
    module=__name__, name="RunConfig",
    doc="Every knob of a run (trainer/families/gan/config.py: KNOBS), with its default.",
    # the data knobs' rules, then each remedy's (e.g. unrolling needs optimizer adam)
    checks=(run_knobs.check_data, check_remedies), fill=run_knobs.fill_data,
    namespace=dict(gp_weight=property(_gp_weight)))

KNOBS: dict[str, Knob] = SPACE.knobs
LIVE_KNOBS = SPACE.live
RunConfig: Any = SPACE.config
knobs = SPACE.describe
coerce = SPACE.coerce
make_config = SPACE.make_config
validate_changes = SPACE.validate_changes
check_combination = SPACE.check
# runs with equal keys can train in one stacked step: the same data, networks and step shape;
# they may differ in seed and in every live value (rates, betas, penalty weights, the
# objective, the schedule)
stack_key = SPACE.stack_key
structure_diff = SPACE.structure_diff


def allowed(name: str) -> str:
    return KNOBS[name].allowed()
