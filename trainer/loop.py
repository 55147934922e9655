"""The training loop: a Trainer that owns networks, optimizers and data, and `run`, which drives it.

`run` knows nothing about who watches: the CLI, the server's worker and the tests pass callbacks
(on_tick, on_event, poll, should_stop). A control message has the same shape as the HTTP control
body: {"action": "pause"|"resume"|"stop"|"step"} or {"set": {knob: value, ...}}.

No per-step host sync: losses accumulate on the device and are read once per tick.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from collapse_lab.trainer import objectives as objectives_mod
from collapse_lab.trainer.config import ConfigError, RunConfig, make_config, validate_changes
from collapse_lab.trainer.datasets import make_dataset
from collapse_lab.trainer.graphed import pick_step_impl
from collapse_lab.trainer.metrics import mode_metrics
from collapse_lab.trainer.models import Discriminator, Generator
from collapse_lab.trainer.remedies import gradient_penalty, nn_entropy, r1_penalty
from collapse_lab.trainer.stacked_optim import differentiable_adam

log = logging.getLogger(__name__)

SCALARS = ("loss_d", "loss_g", "term_gp", "term_r1", "term_entropy", "grad_norm_d", "grad_norm_g")
METRICS = ("modes_captured", "modes_covered", "hq_fraction", "effective_modes", "reverse_kl",
           "hopping")


class Diverged(RuntimeError):
    """A loss or metric became NaN/inf: the run cannot go on."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda requested but no CUDA device is available")
    return torch.device(name)


class Trainer:
    def __init__(self, cfg: RunConfig, data_dir: Path | None = None):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.data = make_dataset(cfg, data_dir).to(self.device)
        init = torch.Generator().manual_seed(cfg.seed)  # same weights on every device
        out_tanh = self.data.kind == "image"
        self.G = Generator(1, cfg.z_dim, cfg.g_width, cfg.g_depth, self.data.dim, cfg.activation,
                           out_tanh, init).to(self.device)
        self.D = Discriminator(1, self.data.dim, cfg.d_width, cfg.d_depth, cfg.activation,
                               cfg.mbd_kernels, cfg.mbd_dim, init).to(self.device)
        # fixed evaluation noise, from its own stream so training never shifts it
        ev = torch.Generator().manual_seed(cfg.seed + 7919)
        self.eval_z = torch.randn(1, cfg.eval_samples, cfg.z_dim, generator=ev).to(self.device)
        # the training stream: real batches, noise, interpolation weights
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.objective = objectives_mod.get_objective(cfg.objective)
        self.opt_g, self.opt_d = self._optimizers()
        self.step = 0
        self.version = 0
        self.prev_occupancy: torch.Tensor | None = None
        self.elapsed = 0.0  # training wall time carried over a checkpoint
        self._t0 = time.perf_counter()
        self._acc = torch.zeros(len(SCALARS), device=self.device)  # sums since the last tick
        self._acc_steps = 0
        self._last_tick = (time.perf_counter(), 0)
        if self.data.kind == "2d":
            grid, self.extent = self.data.grid_points(cfg.grid_size)
            self.grid = grid[None].to(self.device)  # (1, G·G, 2)
        # --- the step implementation: eager (train_step below) or a captured CUDA graph
        self.fast_step, self.cuda_graph_reason = pick_step_impl(self)

    # ---------------------------------------------------------------- optimizers
    def _optimizers(self):
        c = self.cfg
        if c.optimizer == "adam":
            make = lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(c.beta1, c.beta2))  # noqa: E731
        else:
            make = lambda ps, lr: torch.optim.RMSprop(ps, lr=lr, alpha=c.beta2)  # noqa: E731
        return make(self.G.parameters(), c.lr_g), make(self.D.parameters(), c.lr_d)

    def _set_hparams(self) -> None:
        c = self.cfg
        for opt, lr in ((self.opt_g, c.lr_g), (self.opt_d, c.lr_d)):
            for g in opt.param_groups:
                g["lr"] = lr
                if "betas" in g:
                    g["betas"] = (c.beta1, c.beta2)
                if "alpha" in g:
                    g["alpha"] = c.beta2

    # ---------------------------------------------------------------- live changes
    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply a validated partial config at this step boundary; returns the change event.

        Networks and optimizer state carry on; see docs/live-changes.md for what resets.
        """
        changes = validate_changes(self.cfg, changes, live=True)
        old = self.cfg
        new = old.replace(**changes)
        applied = {k: v for k, v in changes.items() if getattr(old, k) != v}
        if self.fast_step is not None:
            self.fast_step.sync()  # its optimizer state -> the torch optimizers below
        self.cfg = new
        if new.objective != old.objective:
            self.objective = objectives_mod.get_objective(new.objective)
        if new.optimizer != old.optimizer:
            self.opt_g, self.opt_d = self._optimizers()  # a different optimizer: fresh state
        else:
            self._set_hparams()
        if new.minibatch_disc and not old.minibatch_disc:
            self.D.zero_head_columns("mbd")
        if new.mbstd and not old.mbstd:
            self.D.zero_head_columns("mbstd")
        if self.fast_step is not None:
            self.fast_step.reload()  # values only: no re-capture; structure: at the next step
        if applied:
            self.version += 1
        return dict(type="config", version=self.version, step=self.step, changes=applied,
                    config=new.to_dict())

    # ---------------------------------------------------------------- one training step
    def _d_scores(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cfg
        return self.D(x, mbd=c.minibatch_disc, mbstd=c.mbstd, sn=c.spectral_norm, context=context)

    def _noise(self, b: int) -> torch.Tensor:
        return torch.randn(1, b, self.cfg.z_dim, generator=self.gen, device=self.device)

    def _real(self, b: int) -> torch.Tensor:
        return self.data.sample(b, self.gen)[None]  # (1, B, dim)

    def train_step(self) -> None:
        """n_critic discriminator updates, then one generator update."""
        if self.fast_step is not None and self.fast_step.step():  # trainer/graphed.py
            self.step += 1
            self._acc_steps += 1
            return
        c = self.cfg
        b = c.batch_size
        acc = torch.zeros(len(SCALARS), device=self.device)
        want_norms = (self.step + 1) % c.tick_every == 0
        self.D.requires_grad_(True)
        for _ in range(c.n_critic):
            real = self._real(b)
            with torch.no_grad():
                fake = self.G(self._noise(b))
            if c.spectral_norm:
                self.D.power_iteration()
            loss = self.objective.d_loss(self._d_scores(real), self._d_scores(fake))  # (R,)
            acc[0] += loss.detach().sum() / c.n_critic
            if c.gp_weight > 0:
                gp = c.gp_weight * gradient_penalty(self._d_scores, real, fake, self.gen)
                acc[2] += gp.detach().sum() / c.n_critic
                loss = loss + gp
            if c.r1 > 0:
                r1 = 0.5 * c.r1 * r1_penalty(self._d_scores, real)
                acc[3] += r1.detach().sum() / c.n_critic
                loss = loss + r1
            self.opt_d.zero_grad(set_to_none=True)
            loss.sum().backward()
            if want_norms:
                acc[5] = _grad_norm(self.D.parameters())
            self.opt_d.step()
            if self.objective.clip_weights:
                with torch.no_grad():
                    for p in self.D.parameters():
                        p.clamp_(-c.clip, c.clip)

        # generator step; D's weights need no gradient here
        self.D.requires_grad_(False)
        fake = self.G(self._noise(b))
        if c.unroll > 0:
            params = self._unrolled_d_params(c.unroll)
            flags = dict(mbd=c.minibatch_disc, mbstd=c.mbstd, sn=c.spectral_norm)
            scores = functional_call(self.D, params, (fake,), flags)
        else:
            scores = self._d_scores(fake)
        loss_g = self.objective.g_loss(scores)
        acc[1] += loss_g.detach().sum()
        if c.entropy > 0:
            term = -c.entropy * nn_entropy(fake)
            acc[4] += term.detach().sum()
            loss_g = loss_g + term
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.sum().backward()
        if want_norms:
            acc[6] = _grad_norm(self.G.parameters())
        self.opt_g.step()
        self.step += 1
        self._acc += acc
        self._acc_steps += 1

    def _unrolled_d_params(self, k: int) -> dict[str, torch.Tensor]:
        """D's parameters after k differentiable Adam steps (Metz et al. 2017, eq. 5–6).

        The fakes of each unrolled step come from G with their graph kept, so G's gradient
        includes how D would react to G (the second-order term of the paper). Penalties are left
        out of the unrolled steps. Adam's moments start from the real optimizer's state.
        """
        c = self.cfg
        params = {n: p.detach().requires_grad_(True) for n, p in self.D.named_parameters()}
        state = [self.opt_d.state.get(p, {}) for p in self.D.parameters()]
        m = [s["exp_avg"] if "exp_avg" in s else torch.zeros_like(p)
             for s, p in zip(state, self.D.parameters())]
        v = [s["exp_avg_sq"] if "exp_avg_sq" in s else torch.zeros_like(p)
             for s, p in zip(state, self.D.parameters())]
        t0 = float(state[0]["step"]) if "step" in state[0] else 0.0
        b1, b2, lr, eps = c.beta1, c.beta2, c.lr_d, 1e-8
        flags = dict(mbd=c.minibatch_disc, mbstd=c.mbstd, sn=c.spectral_norm)
        for i in range(k):
            real = self._real(c.batch_size)
            fake = self.G(self._noise(c.batch_size))
            loss = self.objective.d_loss(functional_call(self.D, params, (real,), flags),
                                         functional_call(self.D, params, (fake,), flags))
            grads = torch.autograd.grad(loss.sum(), list(params.values()), create_graph=True,
                                        allow_unused=True)  # e.g. T while mbd is off
            params = differentiable_adam(params, grads, m, v, t0 + i + 1, b1, b2, lr, eps)
            if self.objective.clip_weights:
                params = {n: p.clamp(-c.clip, c.clip) for n, p in params.items()}
        return params

    # ---------------------------------------------------------------- metrics tick
    @torch.no_grad()
    def tick(self, picture: bool = True) -> dict[str, Any]:
        """One flat dict of metrics (docs/metrics.md), plus samples and, with `picture`, D's
        landscape (half the cost of a tick: skipped when nobody will draw it)."""
        c = self.cfg
        now = time.perf_counter()
        t_last, s_last = self._last_tick
        rate = (self.step - s_last) / (now - t_last) if self.step > s_last and now > t_last else 0.0
        self._last_tick = (now, self.step)

        x = self.G(self.eval_z)  # (1, N, dim)
        nearest, hq = self.data.assign(x[0])
        weights = getattr(self.data, "weights", None)
        mm = mode_metrics(nearest, hq, self.data.num_modes, self.prev_occupancy, weights)
        self.prev_occupancy = mm["occupancy"]
        means = self._acc / max(self._acc_steps, 1)
        means[5:7] = self._acc[5:7]  # gradient norms are the last step's, not sums
        packed = torch.cat([means, torch.stack([mm[k] for k in METRICS]), mm["occupancy"]])
        host = packed.cpu().numpy().astype(float)  # the one sync of the tick
        self._acc.zero_()
        self._acc_steps = 0

        out: dict[str, Any] = dict(step=self.step, time=round(self.elapsed_time(), 4),
                                   config_version=self.version, steps_per_sec=round(rate, 2))
        for i, k in enumerate(SCALARS):
            out[k] = float(host[i])
        for i, k in enumerate(METRICS):
            out[k] = float(host[len(SCALARS) + i])
        for k in ("modes_captured", "modes_covered"):
            out[k] = int(out[k])
        out["occupancy"] = [float(v) for v in host[len(SCALARS) + len(METRICS):]]
        bad = [k for k in ("loss_d", "loss_g") if not math.isfinite(out[k])]
        if bad or not bool(torch.isfinite(x).all()):
            what = bad[0] if bad else "generated samples"
            raise Diverged(f"{what} became NaN/inf at step {self.step}")

        samples = x[0]
        out["nearest"] = nearest.to(torch.int16).cpu().numpy()
        out["hq"] = hq.cpu().numpy()
        if self.data.kind == "2d":
            out["samples"] = samples.float().cpu().numpy()  # (N, 2)
            out["extent"] = self.extent
            if not picture:
                return out
            # batch features of a grid point are taken against (part of) the current fakes
            ctx = x[:, : min(c.batch_size, 128)] if (c.minibatch_disc or c.mbstd) else None
            v = self.objective.value(self._d_scores(self.grid, context=ctx))
            out["value_grid"] = v.view(c.grid_size, c.grid_size).float().cpu().numpy()
        else:
            out["samples"] = samples[:64].float().cpu().numpy()  # (64, 64) images for display
        return out

    def elapsed_time(self) -> float:
        return self.elapsed + (time.perf_counter() - self._t0)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        if self.fast_step is not None:
            self.fast_step.sync()
        return dict(
            format=1,
            config=self.cfg.to_dict(),
            step=self.step,
            version=self.version,
            elapsed=self.elapsed_time(),
            G=self.G.state_dict(),
            D=self.D.state_dict(),
            opt_g=self.opt_g.state_dict(),
            opt_d=self.opt_d.state_dict(),
            gen=self.gen.get_state(),
            prev_occupancy=self.prev_occupancy,
            acc=self._acc,
            acc_steps=self._acc_steps,
        )

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.cfg = make_config(sd["config"])
        self.objective = objectives_mod.get_objective(self.cfg.objective)
        self.G.load_state_dict(sd["G"])
        self.D.load_state_dict(sd["D"])
        self.opt_g, self.opt_d = self._optimizers()
        self.opt_g.load_state_dict(sd["opt_g"])
        self.opt_d.load_state_dict(sd["opt_d"])
        self.gen.set_state(sd["gen"].cpu() if self.device.type == "cpu" else sd["gen"])
        self.step, self.version = int(sd["step"]), int(sd["version"])
        self.elapsed = float(sd["elapsed"])
        self._t0 = time.perf_counter()
        self._last_tick = (self._t0, self.step)
        po = sd["prev_occupancy"]
        self.prev_occupancy = None if po is None else po.to(self.device)
        self._acc = sd["acc"].to(self.device)
        self._acc_steps = int(sd["acc_steps"])
        if self.fast_step is not None:
            self.fast_step.reload()

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)

    @classmethod
    def restore(cls, path: Path, data_dir: Path | None = None) -> Trainer:
        sd = torch.load(path, map_location="cpu", weights_only=False)
        t = cls(make_config(sd["config"]), data_dir)
        t.load_state_dict(sd)
        return t

    def info(self) -> dict[str, Any]:
        """Static facts of the run for the UI and the provenance record."""
        return dict(device=str(self.device), torch=torch.__version__,
                    threads=torch.get_num_threads(), dataset=self.data.describe(),
                    objectives={o["name"]: o["value_kind"] for o in objectives_mod.describe()},
                    cuda_graph=self.fast_step is not None,
                    cuda_graph_reason=self.cuda_graph_reason)

    def real_samples(self, n: int = 2500) -> np.ndarray:
        g = torch.Generator().manual_seed(self.cfg.seed + 1)
        return self.data.to_cpu_sample(n, g).numpy().astype(np.float32)


def _grad_norm(params: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


# ---------------------------------------------------------------------- the driver
Command = dict[str, Any]


@dataclass
class Callbacks:
    on_tick: Callable[[dict[str, Any]], None] | None = None
    on_event: Callable[[dict[str, Any]], None] | None = None  # config changes, pause/resume
    poll: Callable[[float], list[Command]] | None = None  # poll(timeout) -> pending commands
    should_stop: Callable[[], bool] | None = None
    want_picture: Callable[[], bool] | None = None  # asked before each tick; None = always


class Pacer:
    """Pause, resume and single steps: whether the loop may train now, and how long it waits.

    Shared by `run` and the server's batched worker, which drives several runs in one step.
    """

    def __init__(self) -> None:
        self.paused = False
        self.single = 0  # single steps owed while paused

    def handle(self, action: str | None, n: int = 1) -> str | None:
        """Apply a pause/resume/step action; returns the new state when it changed."""
        if action in ("pause", "resume") and self.paused != (action == "pause"):
            self.paused = action == "pause"
            return "paused" if self.paused else "running"
        if action == "step":
            self.single += int(n)
        return None

    def wait(self) -> float:
        """How long to block for commands: a while when paused with nothing to do, else 0."""
        return 0.1 if self.paused and self.single == 0 else 0.0

    def may_step(self) -> bool:
        return not self.paused or self.single > 0

    def stepped(self) -> bool:
        """Count a step that was taken; True when it was a single step taken while paused."""
        if self.paused and self.single > 0:
            self.single -= 1
            return True
        return False


def run(trainer: Trainer, cb: Callbacks | None = None) -> dict[str, Any]:
    """Train until cfg.steps (which may change live; 0 = no end), a stop command, or
    should_stop().

    Ticks every cfg.tick_every steps, at the start and at the end; returns the last tick.
    Raises Diverged if a loss goes NaN/inf, ConfigError never (a bad `set` is reported as an
    event of type "rejected" and the run continues untouched).
    """
    cb = cb or Callbacks()
    emit = cb.on_event or (lambda e: None)

    def tick() -> dict[str, Any]:
        t = trainer.tick(picture=cb.want_picture() if cb.want_picture else True)
        if cb.on_tick:
            cb.on_tick(t)
        return t

    last = tick()
    pacer = Pacer()
    while not trainer.cfg.steps or trainer.step < trainer.cfg.steps:
        cmds = cb.poll(pacer.wait()) if cb.poll else []
        stop = False
        for cmd in cmds:
            action = cmd.get("action")
            if "set" in cmd:
                try:
                    emit(trainer.apply(cmd["set"]))
                except ConfigError as e:
                    emit(dict(type="rejected", field=e.field, message=e.message, step=trainer.step))
            elif action == "stop":
                stop = True
            elif state := pacer.handle(action, cmd.get("n", 1)):
                emit(dict(type="state", state=state, step=trainer.step))
        if stop or (cb.should_stop and cb.should_stop()):
            break
        if not pacer.may_step():
            continue
        trainer.train_step()
        stepped_alone = pacer.stepped()
        if trainer.step % trainer.cfg.tick_every == 0 or stepped_alone:
            last = tick()
    if last["step"] != trainer.step:
        last = tick()
    return last


def train(config: RunConfig | dict[str, Any], data_dir: Path | None = None,
          cb: Callbacks | None = None) -> dict[str, Any]:
    """Build a Trainer from a config and run it; returns the final tick."""
    cfg = config if isinstance(config, RunConfig) else make_config(config)
    return run(Trainer(cfg, data_dir), cb)
