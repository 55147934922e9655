"""scikit-learn's 8×8 handwritten digits, and the classifier that says which digit a sample is.

The classifier (64 → 128 → 10 MLP, Adam, 300 full-batch epochs, seed 0) is trained once on 80 %
of the images and cached under the data dir with its test accuracy; a generated image is
high quality when the classifier's top probability is ≥ 0.9 (docs/metrics.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from collapse_lab.trainer.datasets import Dataset

log = logging.getLogger(__name__)

CONFIDENCE = 0.9
CACHE_NAME = "digits_classifier_v1.pt"


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """(images (1797, 64) scaled to [-1, 1], labels (1797,))."""
    from sklearn.datasets import load_digits as sk_load

    d = sk_load()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0 * 2.0 - 1.0
    return x, torch.tensor(d.target, dtype=torch.long)


def _classifier() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def train_classifier(x: torch.Tensor, y: torch.Tensor,
                     epochs: int = 300) -> tuple[nn.Module, float]:
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    n_train = int(0.8 * len(x))
    tr, te = perm[:n_train], perm[n_train:]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = _classifier()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x[tr]), y[tr]).backward()
        opt.step()
    with torch.no_grad():
        acc = (net(x[te]).argmax(1) == y[te]).float().mean().item()
    return net, acc


def get_classifier(data_dir: Path | None) -> tuple[nn.Module, float]:
    """The cached classifier, training it first if the cache is missing or unreadable."""
    x, y = load_digits()
    path = Path(data_dir) / CACHE_NAME if data_dir else None
    if path and path.is_file():
        try:
            blob = torch.load(path, weights_only=True)
            net = _classifier()
            net.load_state_dict(blob["state"])
            return net, float(blob["test_accuracy"])
        except Exception as e:  # a corrupt cache is rebuilt, never fatal
            log.warning("digits classifier cache %s unreadable (%s); retraining", path, e)
    net, acc = train_classifier(x, y)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"state": net.state_dict(), "test_accuracy": acc}, tmp)
        tmp.replace(path)  # atomic: a crash never leaves half a file
    log.info("digits classifier test accuracy %.3f", acc)
    return net, acc


class Digits(Dataset):
    name = "digits"
    dim = 64
    kind = "image"

    def __init__(self, data_dir: Path | None = None):
        super().__init__()
        self.images, self.labels = load_digits()
        self.mode_names = [str(i) for i in range(10)]
        self.classifier, self.test_accuracy = get_classifier(data_dir)
        self.classifier.requires_grad_(False)

    def to(self, device):
        super().to(device)
        self.classifier.to(device)
        return self

    def sample(self, n, gen):
        idx = torch.randint(len(self.images), (n,), generator=gen, device=self.device)
        return self.images[idx]

    def assign(self, x):
        prob = torch.softmax(self.classifier(x), dim=1)
        conf, cls = prob.max(dim=1)
        return cls, conf >= CONFIDENCE

    def describe(self):
        d = super().describe()
        d["classifier_test_accuracy"] = self.test_accuracy
        d["image_shape"] = [8, 8]
        return d
