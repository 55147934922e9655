"""Mode metrics of a batch of generated samples (definitions and sources: docs/metrics.md).

All of it runs on the training device; `mode_metrics` returns tensors so a tick can copy every
scalar to the host in one transfer.
"""

from __future__ import annotations

import math

import torch

RKL_FLOOR = 1e-4  # probability given to empty bins of the generated histogram in reverse KL


def mode_metrics(nearest: torch.Tensor, hq: torch.Tensor, num_modes: int,
                 prev_occupancy: torch.Tensor | None = None,
                 data_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """nearest (N,) mode index per sample, hq (N,) high-quality flag -> scalar tensors + occupancy.

    - occupancy[k]: share of all samples that are high quality and nearest to mode k.
    - modes_captured: modes that are the nearest mode of ≥ 1 high-quality sample (VEEGAN, PacGAN).
    - modes_covered: modes with occupancy ≥ 1/(4K), a quarter of the fair share.
    - hq_fraction: share of samples that are high quality.
    - effective_modes: exp(entropy) of the nearest-mode histogram of all samples (no cut-off).
    - reverse_kl: KL(generated ‖ data) between mode histograms of the high-quality samples
      (PacGAN); empty generated bins get RKL_FLOOR. With no high-quality sample at all it uses the
      nearest-mode histogram of all samples instead, so a blob between modes still reads collapsed.
    - hopping: total variation ½Σ|p_t − p_{t−1}| between this occupancy and the previous one.
    """
    n = nearest.numel()
    k = num_modes
    dev = nearest.device
    q = torch.full((k,), 1.0 / k, device=dev) if data_weights is None else data_weights.to(dev)
    counts_hq = torch.bincount(nearest[hq], minlength=k).float()  # (K,)
    counts_all = torch.bincount(nearest, minlength=k).float()
    occupancy = counts_hq / n
    n_hq = counts_hq.sum()
    p_all = counts_all / n
    entropy = -(p_all * torch.log(p_all.clamp_min(1e-30))).sum()
    hist = torch.where(n_hq > 0, counts_hq / n_hq.clamp_min(1), p_all)
    hist = hist.clamp_min(RKL_FLOOR)
    hist = hist / hist.sum()
    rkl = (hist * torch.log(hist / q)).sum()
    if prev_occupancy is None:
        hopping = torch.zeros((), device=dev)
    else:
        hopping = 0.5 * (occupancy - prev_occupancy).abs().sum()
    return dict(
        occupancy=occupancy,
        modes_captured=(counts_hq > 0).sum().float(),
        modes_covered=(occupancy >= 1.0 / (4 * k)).sum().float(),
        hq_fraction=n_hq / n,
        effective_modes=torch.exp(entropy),
        reverse_kl=rkl,
        hopping=hopping,
    )


def mode_states(occupancy: list[float]) -> list[str]:
    """'covered' (≥ a quarter of the fair share), 'starving' (> 0 but below), 'dropped' (0)."""
    k = len(occupancy)
    return ["covered" if o >= 1.0 / (4 * k) else "starving" if o > 0 else "dropped"
            for o in occupancy]


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std / √n; 0 for one value)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    m = sum(values) / n
    if n == 1:
        return m, 0.0
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return m, math.sqrt(var / n)
