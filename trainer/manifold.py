"""The manifold view: G's image of a coarse grid over its noise space.

The noise is z ~ N(0, I). The latent grid has M×M points: z[0] runs over ±2σ along a row,
z[1] over ±2σ down the rows (row 0 at z[1] = −2σ), every other coordinate is fixed at 0, so for a
latent size above 2 the picture is a fixed 2-D slice through the middle of the latent space.
G maps each grid point into data space; drawn with lines joining grid neighbours (the dashboard's
manifold layer), the picture shows how G folds its noise — a collapsing generator squeezes most
of the grid onto one mode, GAN Lab's "manifold" view.

Pure: a function of the generator's weights, no training state. The frame carries the result as
the manifold part of docs/protocol.md (flag 4).
"""

from __future__ import annotations

import numpy as np
import torch

SIDE = 20  # grid points per side: 400 points, a grid fine enough to see folds, cheap to draw
SPAN = 2.0  # in standard deviations of the noise


def latent_grid(z_dim: int, side: int = SIDE, span: float = SPAN) -> torch.Tensor:
    """(side·side, z_dim): point (r, c) at index r·side + c has z[0] = −span + 2·span·c/(side−1),
    z[1] = −span + 2·span·r/(side−1) and every other coordinate 0. With z_dim 1 the rows repeat
    (G's latent space is a line)."""
    if side < 2:
        raise ValueError(f"side must be at least 2, got {side}")
    t = torch.linspace(-span, span, side)
    zr, zc = torch.meshgrid(t, t, indexing="ij")  # (side, side): row index → z[1], column → z[0]
    z = torch.zeros(side * side, z_dim)
    z[:, 0] = zc.reshape(-1)
    if z_dim > 1:
        z[:, 1] = zr.reshape(-1)
    return z


def note(z_dim: int, span: float = SPAN) -> str:
    """The slice in words, for the panel (the frame's `manifold_note`)."""
    s = f"{span:g}σ"
    if z_dim == 1:
        return f"z over ±{s} (the latent space is a line)"
    if z_dim == 2:
        return f"z[0], z[1] over ±{s} (the whole latent plane)"
    return f"z[0], z[1] over ±{s}, the other {z_dim - 2} of z fixed at 0"


@torch.no_grad()
def manifold(G: torch.nn.Module, z: torch.Tensor, side: int) -> np.ndarray:
    """G's image of the latent grid `z` (side·side, z_dim) for each of G's R stacked runs:
    (R, side, side, out_dim) float32, row-major over the grid, row 0 first."""
    runs = G.layers[0].weight.shape[0]  # StackedLinear weights: (R, in, out)
    x = G(z.to(next(G.parameters()).device).expand(runs, -1, -1))  # (R, side·side, out)
    return x.reshape(runs, side, side, -1).float().cpu().numpy()
