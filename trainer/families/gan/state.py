"""One run's whole state, apart from any stack it trains in: what a checkpoint holds, and what
moves when a run joins, leaves or changes stacks (trainer/families/gan/engine.py, trainer/loop.py)
— `load_weights` and `load_optimizers` put states into an engine's stack, `export` takes one out.

A fresh state is built from the config alone: the networks' initial weights from the seed, the
random stream of real batches and noise from the seed, zero optimizer moments. A run trained in
a stack of any size, or moved between stacks, follows the same series as the run trained alone
(tests/test_engine.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from collapse_lab.trainer.families.gan.config import make_config
from collapse_lab.trainer.families.gan.models import networks
from collapse_lab.trainer.families.gan.stats import STEP
from collapse_lab.trainer.family import save_atomic

FORMAT = 2  # checkpoint format; 1 was a single eager run with torch.optim state


@dataclass
class RunState:
    cfg: Any  # RunConfig
    step: int = 0  # generator steps taken
    version: int = 0  # live changes applied
    G: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> tensor, no runs dim
    D: dict[str, torch.Tensor] = field(default_factory=dict)  # parameters and buffers
    opt_g: dict[str, Any] | None = None  # moments m, v (lists) and step counts t; None = fresh
    opt_d: dict[str, Any] | None = None
    gen: torch.Tensor | None = None  # the random stream's state; None = seeded from cfg.seed
    gen_device: str = "cpu"  # the device type of the generator `gen` is a state of
    prev_occupancy: torch.Tensor | None = None  # for hopping
    sums: torch.Tensor | None = None  # (S,) step-stat sums since the last tick
    n_d: int = 0  # D updates since the last tick
    n_g: int = 0  # G steps since the last tick
    elapsed: float = 0.0  # training wall time so far

    @classmethod
    def fresh(cls, cfg: Any, data_dim: int, out_tanh: bool) -> RunState:
        """The state of a run that has not trained yet."""
        init = torch.Generator().manual_seed(cfg.seed)
        G, D = networks(1, cfg, data_dim, out_tanh, init)
        return cls(cfg=cfg, G=_unstack(G), D=_unstack(D))

    # ------------------------------------------------------------ checkpoints
    def to_dict(self) -> dict[str, Any]:
        return dict(format=FORMAT, config=self.cfg.to_dict(), step=self.step,
                    version=self.version, G=self.G, D=self.D, opt_g=self.opt_g,
                    opt_d=self.opt_d, gen=self.gen, gen_device=self.gen_device,
                    prev_occupancy=self.prev_occupancy,
                    sums=self.sums, n_d=self.n_d, n_g=self.n_g, elapsed=self.elapsed,
                    stats=[s.name for s in STEP], saved=time.time())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunState:
        if d.get("format") != FORMAT:
            raise ValueError(f"checkpoint format {d.get('format')!r}, this version reads "
                             f"{FORMAT}")
        sums = d["sums"]
        if sums is not None and d.get("stats") != [s.name for s in STEP]:
            sums = None  # written with other step stats: the partial tick starts afresh
        return cls(cfg=make_config(d["config"]), step=int(d["step"]),
                   version=int(d["version"]), G=d["G"], D=d["D"], opt_g=d["opt_g"],
                   opt_d=d["opt_d"], gen=d["gen"], gen_device=d["gen_device"],
                   prev_occupancy=d["prev_occupancy"],
                   sums=sums, n_d=int(d["n_d"]), n_g=int(d["n_g"]),
                   elapsed=float(d["elapsed"]))

    def save(self, path: Path | str) -> None:
        """Atomically: a reader sees the old file or the new one, never half of one."""
        save_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: Path | str) -> RunState:
        return cls.from_dict(torch.load(path, map_location="cpu", weights_only=False))


def _unstack(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A one-run module's parameters and buffers without the runs dimension."""
    return {n: t.detach()[0].clone() for n, t in module.state_dict().items()}


# ---------------------------------------------------------------- in and out of a stack
def load_weights(G: torch.nn.Module, D: torch.nn.Module, states: Sequence[RunState]) -> None:
    """Each state's weights and buffers into its row of the stacked networks."""
    with torch.no_grad():
        for module, key in ((G, "G"), (D, "D")):
            sd = module.state_dict()
            for i, s in enumerate(states):
                for name, t in getattr(s, key).items():
                    sd[name][i].copy_(t)


def load_optimizers(eng: Any, states: Sequence[RunState]) -> None:
    """Each state's optimizer moments and step counts into its row of the engine's stacked
    optimizers; a state saved with another optimizer kind starts afresh."""
    kind = eng.cfgs[0].optimizer
    for i, s in enumerate(states):
        if s.opt_g is not None and s.opt_g.get("kind", kind) == kind:
            _load_opt(eng.opt_g, eng.g_names, i, s.opt_g)
        if s.opt_d is not None and s.opt_d.get("kind", kind) == kind:
            _load_opt(eng.opt_d, eng.d_names, i, s.opt_d)


def export(eng: Any, i: int) -> RunState:
    """Run i of an engine's stack as a state of its own, as copies (the engine may go on or be
    dropped)."""
    return RunState(
        cfg=eng.cfgs[i], step=int(eng.steps[i]), version=eng.versions[i],
        G={n: t[i].detach().clone() for n, t in eng.G.state_dict().items()},
        D={n: t[i].detach().clone() for n, t in eng.D.state_dict().items()},
        opt_g=_run_opt(eng.opt_g, eng.g_names, i),
        opt_d=_run_opt(eng.opt_d, eng.d_names, i),
        gen=eng.streams.state(i), gen_device=eng.device.type,
        prev_occupancy=eng.prev_occupancy[i], sums=eng.stats.sums[:, i].clone(),
        n_d=int(eng.n_d[i]), n_g=int(eng.n_g[i]), elapsed=eng.elapsed(i))


def _run_opt(opt: Any, names: list[str], i: int) -> dict[str, Any]:
    st = opt.run_state(i)
    return dict(kind=opt.kind, m=dict(zip(names, st["m"], strict=True)),
                v=dict(zip(names, st["v"], strict=True)),
                t=dict(zip(names, st["t"].tolist(), strict=True)))


def _load_opt(opt: Any, names: list[str], i: int, st: dict[str, Any]) -> None:
    opt.load_run_state(i, dict(m=[st["m"][n] for n in names], v=[st["v"][n] for n in names],
                               t=torch.tensor([float(st["t"][n]) for n in names])))
