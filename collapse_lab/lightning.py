"""A PyTorch Lightning callback that tracks a `Trainer.fit` in Collapse Lab (docs/tracking.md).

    pip install 'collapse-lab[lightning]'

    from collapse_lab.lightning import CollapseLab

    cb = CollapseLab("http://host:8000", token=TOKEN, name="my-gan", modes=centres,
                     samples=lambda module: module.generator(module.fixed_noise),
                     knobs={"lr_g": (2e-4, 1e-6, 1e-2)},
                     apply=lambda module, knobs: module.set_lr_g(knobs["lr_g"]))
    Trainer(callbacks=[cb]).fit(model)

Every training batch is one `run.log()`: the step is the count of batches, the scalars are the
numeric values in `trainer.callback_metrics` (what `self.log(...)` logged), and the samples are
`samples(module)`, called under `torch.no_grad()` only when the run would keep them (about ten
times a second). `apply(module, knobs)` runs before each batch with the current knob values.
Stop in the page stops the fit at the end of the batch (`trainer.should_stop`); an exception in
the fit marks the run failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from collapse_lab.tracking import Run, track

try:  # the `lightning` package, or the older `pytorch_lightning`
    from lightning.pytorch import Callback
except ImportError:  # pragma: no cover - depends on what is installed
    from pytorch_lightning import Callback


class CollapseLab(Callback):  # type: ignore[misc]
    """Track a Lightning fit; the arguments of `collapse_lab.track`, plus `samples` and
    `apply`."""

    def __init__(self, target: str, token: str | None = None, name: str | None = None, *,
                 samples: Callable[[Any], Any] | None = None,
                 apply: Callable[[Any, Mapping[str, Any]], None] | None = None,
                 **track_args: Any):
        super().__init__()
        self.target, self.token, self.name = target, token, name
        self.samples, self.apply, self.track_args = samples, apply, track_args
        self.run: Run | None = None
        self.batches = 0

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if getattr(trainer, "global_rank", 0) != 0:
            return  # one process of a distributed fit reports
        self.run = track(self.target, token=self.token,
                         name=self.name or type(pl_module).__name__, **self.track_args)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any,
                             batch_idx: int) -> None:
        if self.run is not None and self.apply is not None:
            self.apply(pl_module, self.run.knobs)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        run = self.run
        if run is None:
            return
        scalars = {}
        for k, v in trainer.callback_metrics.items():
            if isinstance(v, torch.Tensor) and v.numel() == 1:
                scalars[str(k).replace("/", "_")] = v
            elif isinstance(v, int | float) and not isinstance(v, bool):
                scalars[str(k).replace("/", "_")] = v
        fake = None
        if self.samples is not None and run.wants_samples():
            with torch.no_grad():
                fake = self.samples(pl_module)
        run.log(self.batches, samples=fake, **scalars)
        self.batches += 1
        if run.stop_requested:
            trainer.should_stop = True

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.run is not None:
            self.run.finish()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.run is not None:
            self.run.finish("failed", f"{type(exception).__name__}: {exception}"[:500])
