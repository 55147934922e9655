"""The fitness landscape of a dataset: its density broadened into one smooth peak per mode.

An individual is a point of the plane; its fitness is the data's density there, convolved with
a Gaussian of standard deviation σ (the `fitness_sigma` knob), so every mode of the data is a
peak a population can climb and the valleys between them are where nothing scores. The scale is
relative: the highest peak is 1 (selection, sharing and crowding compare fitnesses only).

- Gaussian mixtures (ring8, grid25): exactly, peak k has the std √(std_k² + σ²) and a height
  proportional to its weight.
- Any other 2-D dataset (lines, spiral, a user's points): a kernel density estimate over a fixed
  sample of the data (seeded, the same for every run), with kernel σ.

Every run of a stack may have its own σ (a live knob): the functions take σ per run.
"""

from __future__ import annotations

import torch

from collapse_lab.trainer.datasets import Dataset, GaussianMixture
from collapse_lab.trainer.knobs import ConfigError

KDE_POINTS = 1024  # data points of the kernel density estimate (datasets that are not mixtures)


class Landscape:
    """fitness(x, sigma) for points x (R, N, 2) and σ per run (R,) -> (R, N), peaks at 1."""

    def __init__(self, data: Dataset):
        if data.kind != "2d" or data.dim != 2:
            raise ConfigError("dataset", f"evolution needs a 2-D dataset; {data.name} is "
                              f"{data.kind}")
        self.data = data
        self.exact = type(data) is GaussianMixture
        if isinstance(data, GaussianMixture) and self.exact:
            self.centres = data.centres  # (K, 2)
            self.var = data.stds**2  # (K,)
            self.weights = data.weights / data.weights.max()  # (K,)
        else:
            g = torch.Generator(device="cpu").manual_seed(0)
            self.centres = data.to_cpu_sample(KDE_POINTS, g).to(data.device)
            self.var = torch.zeros(KDE_POINTS, device=data.device)
            self.weights = torch.ones(KDE_POINTS, device=data.device)
        self._scale: dict[float, float] = {}

    def raw(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Σ_k w_k (σ²/s_k²) exp(−|x − c_k|² / 2s_k²), s_k² = var_k + σ²: the broadened density
        up to a constant (R, N)."""
        s2 = self.var[None, :] + sigma[:, None] ** 2  # (R, K)
        d2 = torch.cdist(x, self.centres[None].expand(len(x), -1, -1)) ** 2  # (R, N, K)
        amp = self.weights[None, :] * sigma[:, None] ** 2 / s2  # (R, K)
        return (amp[:, None, :] * torch.exp(-d2 / (2 * s2[:, None, :]))).sum(-1)

    def scale(self, sigma: float) -> float:
        """1 / the highest value of raw() at this σ (the data's own points as candidates)."""
        if sigma not in self._scale:
            if self.exact:
                pts = self.centres
            else:
                pts = self.centres[:256]
            s = torch.tensor([sigma], device=pts.device, dtype=pts.dtype)
            top = float(self.raw(pts[None], s).max())
            self._scale[sigma] = 1.0 / max(top, 1e-30)
        return self._scale[sigma]

    def __call__(self, x: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
        s = torch.tensor(sigmas, device=x.device, dtype=x.dtype)
        k = torch.tensor([self.scale(v) for v in sigmas], device=x.device, dtype=x.dtype)
        return self.raw(x, s) * k[:, None]
