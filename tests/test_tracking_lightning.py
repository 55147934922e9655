"""The Lightning callback (collapse_lab.lightning, an optional extra): a small GAN fit with manual
optimization is tracked into a folder — every batch a tick, samples measured, knobs applied
before each batch, an exception in the fit marks the run failed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

try:
    import lightning.pytorch as pl
except ImportError:
    pl = pytest.importorskip("pytorch_lightning", reason="the `lightning` extra is not installed")


def ring():
    a = torch.arange(8) * 2 * torch.pi / 8
    return torch.stack([2 * torch.cos(a), 2 * torch.sin(a)], 1)


class GAN(pl.LightningModule):
    def __init__(self, fail_at: int | None = None):
        super().__init__()
        self.automatic_optimization = False
        self.g = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
        self.d = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1))
        self.lr_seen: list[float] = []
        self.fail_at = fail_at

    def training_step(self, batch, idx):
        if self.fail_at is not None and idx == self.fail_at:
            raise RuntimeError("boom")
        og, od = self.optimizers()
        real = batch[0]
        bce = nn.functional.binary_cross_entropy_with_logits
        fake = self.g(torch.randn(len(real), 4))
        ld = bce(self.d(real), torch.ones(len(real), 1)) + bce(self.d(fake.detach()),
                                                                 torch.zeros(len(real), 1))
        od.zero_grad()
        self.manual_backward(ld)
        od.step()
        lg = bce(self.d(fake), torch.ones(len(real), 1))
        og.zero_grad()
        self.manual_backward(lg)
        og.step()
        self.lr_seen.append(og.param_groups[0]["lr"])
        self.log("d_loss", ld)
        self.log("g_loss", lg)

    def configure_optimizers(self):
        return (torch.optim.Adam(self.g.parameters(), 1e-3),
                torch.optim.Adam(self.d.parameters(), 1e-3))


def data(n=64 * 40):
    g = torch.Generator().manual_seed(0)
    x = ring()[torch.randint(0, 8, (n,), generator=g)] + 0.05 * torch.randn(n, 2, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=64)


def set_lr(module, knobs):
    for group in module.optimizers()[0].param_groups:
        group["lr"] = knobs["lr_g"]


def fit(tmp_path, model):
    from collapse_lab.lightning import CollapseLab

    cb = CollapseLab(str(tmp_path / "runs"), name="lightning gan", modes=ring().numpy(),
                     samples=lambda m: m.g(torch.randn(256, 4)), rate=100,
                     knobs={"lr_g": (5e-4, 1e-6, 1e-2)}, apply=set_lr)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[cb])
    return trainer, cb


def stored(tmp_path):
    from collapse_lab.server.store import Store

    store = Store(tmp_path / "runs" / "runs.sqlite3")
    try:
        [rec] = store.load_runs()
        return rec, store.ticks(rec["id"])
    finally:
        store.close()


def test_a_lightning_fit_is_tracked(tmp_path):
    model = GAN()
    trainer, cb = fit(tmp_path, model)
    trainer.fit(model, data())
    assert model.lr_seen and set(model.lr_seen) == {5e-4}  # the knob, applied before each batch
    rec, ticks = stored(tmp_path)
    assert rec["status"] == "done" and rec["label"] == "lightning gan"
    assert ticks[-1]["step"] == 39  # 40 batches, one tick each at most (merged at 100 a second)
    assert any("modes_covered" in t for t in ticks)
    assert "loss_d" in ticks[-1] and np.isfinite(ticks[-1]["loss_g"])


def test_an_exception_in_the_fit_marks_the_run_failed(tmp_path):
    model = GAN(fail_at=5)
    trainer, cb = fit(tmp_path, model)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(model, data())
    rec, _ = stored(tmp_path)
    assert rec["status"] == "failed" and "boom" in rec["reason"]
