"""The run configuration: one typed dataclass whose field metadata is the knob registry.

Every knob a user can set lives here once, with its type, default, range and help. The CLI flags,
`collapse-lab options`, the server's `/api/options` and the dashboard's controls are all generated
from `knobs()`, so a new knob appears everywhere at once.

`live=True` marks knobs that may change mid-run (applied at the next step boundary); the others
define the shape of the networks or the data and are fixed when the run starts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

DATASETS = ("ring8", "grid25", "lines", "spiral", "digits", "csv")
OBJECTIVES = ("minimax", "nsgan", "wgan", "wgan-gp", "hinge", "lsgan")
ACTIVATIONS = ("relu", "leaky_relu", "tanh")
OPTIMIZERS = ("adam", "rmsprop")
DEVICES = ("auto", "cpu", "cuda")
# the gradient-penalty weight an objective implies while the `gp` knob is unset
DEFAULT_GP = {"wgan-gp": 10.0}


class ConfigError(ValueError):
    """A bad knob value. `field` names the knob; the message says what is allowed."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def knob(default: Any, help: str, *, group: str, live: bool = False, lo: float | None = None,
         hi: float | None = None, choices: tuple[str, ...] | None = None, log: bool = False,
         nullable: bool = False) -> Any:
    meta = dict(help=help, group=group, live=live, lo=lo, hi=hi, choices=choices, log=log,
                nullable=nullable)
    return field(default=default, metadata=meta)


@dataclass
class RunConfig:
    # --- data
    dataset: str = knob("ring8", "toy distribution to learn", group="data", choices=DATASETS)
    data: str | None = knob(None, "path of a CSV of 2-D points (dataset=csv)", group="data",
                            nullable=True)
    clusters: int = knob(0, "modes of user CSV data (k-means k); 0 = choose by silhouette",
                         group="data", lo=0, hi=25)
    # --- model (fixed for a run: they set the networks' shapes)
    z_dim: int = knob(16, "latent noise dimension", group="model", lo=1, hi=512)
    g_width: int = knob(128, "generator hidden width", group="model", lo=4, hi=1024)
    g_depth: int = knob(2, "generator hidden layers", group="model", lo=1, hi=8)
    d_width: int = knob(128, "discriminator hidden width", group="model", lo=4, hi=1024)
    d_depth: int = knob(2, "discriminator hidden layers", group="model", lo=1, hi=8)
    activation: str = knob("relu", "hidden activation of both networks", group="model",
                           choices=ACTIVATIONS)
    mbd_kernels: int = knob(16, "minibatch discrimination kernels B (Salimans et al. 2016)",
                            group="model", lo=1, hi=128)
    mbd_dim: int = knob(4, "minibatch discrimination kernel dimension C", group="model", lo=1,
                        hi=32)
    # --- objective
    objective: str = knob("nsgan", "GAN objective", group="objective", live=True,
                          choices=OBJECTIVES)
    clip: float = knob(0.01, "weight clipping bound of the wgan critic", group="objective",
                       live=True, lo=1e-4, hi=1.0, log=True)
    # --- remedies
    gp: float | None = knob(None, "gradient penalty weight λ (Gulrajani et al. 2017); unset = "
                            "the objective's default: 10 for wgan-gp, 0 otherwise",
                            group="remedy", live=True, lo=0.0, hi=1000.0, nullable=True)
    r1: float = knob(0.0, "R1 penalty weight γ on real data (Mescheder et al. 2018)",
                     group="remedy", live=True, lo=0.0, hi=1000.0)
    minibatch_disc: bool = knob(False, "minibatch discrimination features in D", group="remedy",
                                live=True)
    mbstd: bool = knob(False, "minibatch standard deviation feature in D (Karras et al. 2018)",
                       group="remedy", live=True)
    unroll: int = knob(0, "unrolled discriminator steps k (Metz et al. 2017); 0 = off",
                       group="remedy", live=True, lo=0, hi=10)
    spectral_norm: bool = knob(False, "spectral normalization of D's weights (Miyato et al. 2018)",
                               group="remedy", live=True)
    entropy: float = knob(0.0, "weight of the generator's entropy (diversity) bonus",
                          group="remedy", live=True, lo=0.0, hi=10.0)
    # --- optimisation
    optimizer: str = knob("adam", "optimizer of both networks (changing it resets its state)",
                          group="optim", live=True, choices=OPTIMIZERS)
    lr_g: float = knob(1e-3, "generator learning rate", group="optim", live=True, lo=1e-6,
                       hi=1e-1, log=True)
    lr_d: float = knob(1e-3, "discriminator learning rate", group="optim", live=True, lo=1e-6,
                       hi=1e-1, log=True)
    beta1: float = knob(0.5, "Adam β1", group="optim", live=True, lo=0.0, hi=0.999)
    beta2: float = knob(0.999, "Adam β2 (RMSProp α)", group="optim", live=True, lo=0.0,
                        hi=0.9999)
    n_critic: int = knob(1, "discriminator steps per generator step", group="optim", live=True,
                         lo=1, hi=20)
    batch_size: int = knob(256, "samples per batch", group="optim", live=True, lo=8, hi=4096)
    # --- run
    steps: int = knob(3000, "generator steps to train; 0 = until stopped", group="run",
                      live=True, lo=0, hi=1_000_000)
    speed: float = knob(0.0, "at most this many steps per second (slow motion); 0 = unlimited",
                        group="run", live=True, lo=0.0, hi=10_000.0)
    seed: int = knob(0, "seed of weights, noise and data", group="run", lo=0, hi=2**31 - 1)
    tick_every: int = knob(20, "steps between metric ticks", group="run", live=True, lo=1,
                           hi=10_000)
    eval_samples: int = knob(2500, "generated samples evaluated per tick (fixed noise)",
                             group="run", lo=100, hi=20_000)
    grid_size: int = knob(64, "side of the discriminator value grid", group="run", lo=8, hi=256)
    device: str = knob("auto", "auto = CUDA when present, else CPU", group="run", choices=DEVICES)
    threads: int = knob(0, "CPU threads for this run; 0 = torch's default", group="run", lo=0,
                        hi=256)
    cuda_graph: str = knob("auto", "capture the training step as a CUDA graph: auto = where a "
                           "quick self-check passes on this device", group="run",
                           choices=("auto", "on", "off"))

    # ------------------------------------------------------------------ derived values
    @property
    def gp_weight(self) -> float:
        """The penalty weight in force: the `gp` knob, or the objective's default."""
        if self.gp is not None:
            return self.gp
        return DEFAULT_GP.get(self.objective, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
LIVE_KNOBS = frozenset(n for n, f in _FIELDS.items() if f.metadata["live"])


def _type_name(f: dataclasses.Field) -> str:
    t = str(f.type).split("|")[0].strip()
    if f.metadata["choices"]:
        return "choice"
    return {"str": "str", "int": "int", "float": "float", "bool": "bool"}[t]


def knobs() -> list[dict[str, Any]]:
    """Every knob as a plain dict: name, type, default, range or choices, help, group, live."""
    out = []
    for f in dataclasses.fields(RunConfig):
        m = f.metadata
        d: dict[str, Any] = dict(name=f.name, type=_type_name(f), default=f.default,
                                 help=m["help"], group=m["group"], live=m["live"],
                                 nullable=m["nullable"])
        if m["choices"]:
            d["choices"] = list(m["choices"])
        if m["lo"] is not None:
            d["min"], d["max"], d["log"] = m["lo"], m["hi"], m["log"]
        out.append(d)
    return out


def allowed(name: str) -> str:
    """Human text of what a knob accepts, for error messages."""
    f = _FIELDS[name]
    m, t = f.metadata, _type_name(f)
    if m["choices"]:
        s = "one of " + ", ".join(m["choices"])
    elif t == "bool":
        s = "true or false"
    elif m["lo"] is not None:
        s = f"{'an integer' if t == 'int' else 'a number'} in [{m['lo']:g}, {m['hi']:g}]"
    else:
        s = "a string"
    return s + (" or null" if m["nullable"] else "")


def coerce(name: str, value: Any) -> Any:
    """Check and convert one knob value; raise ConfigError naming the knob and the range."""
    if name not in _FIELDS:
        raise ConfigError(name, f"unknown knob; expected one of {', '.join(_FIELDS)}")
    f = _FIELDS[name]
    m, t = f.metadata, _type_name(f)
    if value is None:
        if m["nullable"]:
            return None
        raise ConfigError(name, f"expected {allowed(name)}, got null")
    bad = ConfigError(name, f"expected {allowed(name)}, got {value!r}")
    if t == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("1", "0", "true", "false", "on", "off",
                                                         "yes", "no"):
            return value.lower() in ("1", "true", "on", "yes")
        raise bad
    if t in ("choice", "str"):
        if not isinstance(value, str) or len(value) > 4096:
            raise bad
        if m["choices"] and value not in m["choices"]:
            raise bad
        return value
    # numbers: accept numeric strings (CLI, CSV sweeps) but never bools
    if isinstance(value, bool):
        raise bad
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise bad from None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad
    if t == "int":
        if float(value) != int(value):
            raise bad
        value = int(value)
    else:
        value = float(value)
    if not (m["lo"] <= value <= m["hi"]):
        raise bad
    return value


def validate_changes(cfg: RunConfig, changes: dict[str, Any], *, live: bool) -> dict[str, Any]:
    """Check a partial config against `cfg`. With live=True only live knobs may change.

    Returns the coerced changes; raises ConfigError on the first bad one. Combinations are
    checked on the merged config, so nothing is applied unless all of it is valid.
    """
    out = {}
    for name, value in changes.items():
        v = coerce(name, value)
        if live and name not in LIVE_KNOBS and v != getattr(cfg, name):
            raise ConfigError(name, "cannot change while a run is in progress; live knobs are "
                              + ", ".join(sorted(LIVE_KNOBS)))
        out[name] = v
    check_combination(cfg.replace(**out))
    return out


def check_combination(cfg: RunConfig) -> None:
    """Refuse combinations that make no sense, saying why."""
    from collapse_lab.trainer.remedies import check_remedies  # the remedies module owns the rules

    if cfg.dataset == "csv" and not cfg.data:
        raise ConfigError("data", "dataset csv needs a file: --data points.csv")
    if cfg.dataset != "csv" and cfg.data:
        raise ConfigError("dataset", "a data file was given; use dataset csv with it")
    check_remedies(cfg)


def make_config(values: dict[str, Any] | None = None) -> RunConfig:
    """A validated RunConfig from a dict of (possibly string) values."""
    values = dict(values or {})
    if values.get("data") and "dataset" not in values:
        values["dataset"] = "csv"  # `--data points.csv` alone means: learn these points
    coerced = {k: coerce(k, v) for k, v in values.items()}
    cfg = RunConfig(**coerced)
    check_combination(cfg)
    return cfg
