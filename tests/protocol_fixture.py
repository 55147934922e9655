"""Write protocol fixture frames made by the Python encoder, for the browser decoder's node tests.

    python tests/protocol_fixture.py frontend/test/fixtures

writes `<name>.bin` (the bytes server.protocol encodes) and `<name>.json` (what a decoder must
read back: header fields, scalars and every array as plain lists) for:
  ring  a 2-D frame with a value grid, a NaN loss (sent as null) and an odd sample count (padding)
  real  the real samples (type 2) of a 2-D dataset
  digits  an image frame (D = 64, no grid)
  manifold  a 2-D frame with a value grid and G's image of a 5×5 latent grid (flag 4)
The frames are synthetic but seeded, so the files are the same on every run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from collapse_lab.server import protocol


def _tick(rng: np.random.Generator, n: int, k: int, images: bool) -> dict:
    d = 64 if images else 2
    samples = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    occ = rng.dirichlet(np.ones(k)).astype(np.float32) * 0.9
    occ[1] = 0.0  # a dropped mode
    tick = {
        "step": 1240, "time": 12.5, "config_version": 3, "steps_per_sec": 812.25,
        "loss_d": float("nan"), "loss_g": 0.6931, "term_gp": 0.0, "term_r1": 0.0,
        "term_entropy": 0.0, "grad_norm_d": 1.5, "grad_norm_g": 0.25, "modes_captured": 7,
        "modes_covered": 5, "hq_fraction": 0.875, "effective_modes": 4.75, "reverse_kl": 0.5,
        "hopping": 0.125, "occupancy": occ.tolist(), "samples": samples,
        "nearest": rng.integers(0, k, n).astype(np.int16), "hq": rng.random(n) < 0.7,
    }
    if not images:
        tick["value_grid"] = rng.random((16, 12)).astype(np.float32)  # (GH, GW): not square
        tick["extent"] = [-3.0, 3.0, -2.5, 2.5]
    return tick


def _expect(data: bytes) -> dict:
    m = protocol.decode(data)
    out = {
        "type": m.type, "step": m.step, "config_version": m.config_version,
        "scalars": m.scalars, "n": int(m.samples.shape[0]), "dim": int(m.samples.shape[1]),
        "samples": m.samples.ravel().tolist(), "occupancy": m.occupancy.tolist(),
        "nearest": m.nearest.tolist(), "hq": m.hq.tolist(), "images": m.images,
        "grid": None if m.value_grid is None else m.value_grid.ravel().tolist(),
        "grid_w": 0 if m.value_grid is None else int(m.value_grid.shape[1]),
        "grid_h": 0 if m.value_grid is None else int(m.value_grid.shape[0]),
        "manifold": None if m.manifold is None else m.manifold.ravel().tolist(),
        "manifold_side": 0 if m.manifold is None else int(m.manifold.shape[0]),
        "bytes": len(data),
    }
    return out


def main(out_dir: str) -> None:
    rng = np.random.default_rng(7)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    real = rng.normal(0, 1, (37, 2)).astype(np.float32)
    frames = {
        "ring": protocol.encode_frame(_tick(rng, 45, 8, images=False), status="running"),
        "real": protocol.encode_real(real, rng.integers(0, 8, 37)),
        "digits": protocol.encode_frame(_tick(rng, 6, 10, images=True), status="paused"),
        "manifold": protocol.encode_frame(
            dict(_tick(rng, 11, 8, images=False), manifold=rng.normal(0, 1, (5, 5, 2)),
                 manifold_note="z[0], z[1] over ±2σ, other z fixed at 0"), status="running"),
    }
    for name, data in frames.items():
        (out / f"{name}.bin").write_bytes(data)
        (out / f"{name}.json").write_text(json.dumps(_expect(data)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "frontend/test/fixtures")
