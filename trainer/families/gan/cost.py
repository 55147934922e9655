"""What a run will cost before it starts: memory and time per step, from its knobs.

A linear model in a few work counts (below), its coefficients measured on this kind of machine
by `python bench/costs.py` and stored beside this file in `costs.json` (with the table they were
fitted to). Work counts, per training step:

- `mlp`: batch × pack × (D's depth × width² + G's depth × width²) × (n_critic + 1) × (unroll + 1)
  — the multiply-adds of the networks;
- `pairs`: with minibatch discrimination, batch² × kernels × dims × (n_critic + 1) × (unroll + 1)
  — the pairwise feature;
- `mlp2`, `pairs2`: the same again where second derivatives are taken (a gradient penalty, R1,
  or unrolling) — their double backward;
- `tick`: per step, the metric tick's share: eval_samples × G's work and, while someone watches,
  D's landscape over grid_size² points (against 128 fakes for batch features), over tick_every.

Memory: the process (`base_mb`) plus the pair weights a step keeps for its backward (batch² ×
kernels, bounded, see `pair_elements`) and the networks' activations, which grow with the batch,
the widths and depths, and unrolling.

The estimate is a guide, not a bound: workers also run under an address-space limit
(server/worker.py), so a wrong estimate fails that worker's runs, never the machine.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

# the real folder, never a strict editable install's link tree (docs/architecture.md, "Editors")
TABLE = Path(__file__).resolve().with_name("costs.json")
FEATURES = ("const", "mlp", "pairs", "mlp2", "pairs2", "tick")
# used where costs.json is missing: fitted by hand to the tables of docs/performance.md, taken
# on an idle 2-core CPU, one thread (bench/steps.py: a default step ≈ 4.2 ms, + gradient penalty
# ≈ 7 ms; bench/minibatch.py: + minibatch 16 × 4 at batch 256 ≈ 17.4 ms; bench/minibatch_costs.py:
# minibatch with a penalty ≈ 6 × plain with a penalty at batch 256)
DEFAULT = {"seconds": {"const": 5e-4, "mlp": 1.0e-10, "pairs": 1.55e-9, "mlp2": 8e-11,
                       "pairs2": 2.7e-9, "tick": 5e-11},
           "memory": {"base_mb": 380.0, "pair_bytes": 4.0, "pair2_bytes": 4.0}}


@lru_cache(maxsize=1)
def coefficients() -> dict[str, Any]:
    try:
        return json.loads(TABLE.read_text())["coefficients"]
    except (OSError, ValueError, KeyError):
        return DEFAULT


def _second(cfg: Any) -> bool:
    gp = cfg.gp if cfg.gp is not None else (10.0 if cfg.objective == "wgan-gp" else 0.0)
    return bool(gp > 0 or cfg.r1 > 0 or cfg.unroll > 0)


def work(cfg: Any, watched: bool = True) -> dict[str, float]:
    """The work counts of one training step of `cfg` (see the module's text)."""
    b = cfg.batch_size * cfg.pack
    nets = cfg.d_depth * cfg.d_width ** 2 + cfg.g_depth * cfg.g_width ** 2
    passes = (cfg.n_critic + 1) * (cfg.unroll + 1)
    mlp = float(b * nets * passes)
    pairs = float(cfg.batch_size ** 2 * cfg.mbd_kernels * cfg.mbd_dim * passes
                  if cfg.minibatch_disc else 0)
    second = _second(cfg)
    grid = cfg.grid_size ** 2 if watched and cfg.dataset != "digits" else 0
    context = min(cfg.batch_size, 128) if cfg.minibatch_disc else 0
    tick = (cfg.eval_samples * cfg.g_depth * cfg.g_width ** 2
            + grid * (cfg.d_depth * cfg.d_width ** 2
                      + context * cfg.mbd_kernels * cfg.mbd_dim)) / max(cfg.tick_every, 1)
    return dict(const=1.0, mlp=mlp, pairs=pairs, mlp2=mlp if second else 0.0,
                pairs2=pairs if second else 0.0, tick=float(tick))


KEEP_LIMIT = 1 << 26  # trainer/families/gan/minibatch.py: pair weights kept up to this many


def pair_elements(cfg: Any) -> int:
    """Elements of the pair weights a step keeps for its backward: batch² × kernels, up to
    minibatch.py's KEEP_LIMIT (past it they are computed again in blocks); the landscape's
    pairs and the second derivative's are computed in blocks and kept nowhere."""
    if not cfg.minibatch_disc:
        return 0
    return min(cfg.batch_size ** 2 * cfg.mbd_kernels * cfg.pack, KEEP_LIMIT)


def estimate(cfg: Any, watched: bool = True) -> dict[str, Any]:
    """Memory (MB) and seconds per step of a run of `cfg`, and which knob weighs most."""
    co = coefficients()
    w = work(cfg, watched)
    parts = {k: co["seconds"][k] * w[k] for k in FEATURES}
    secs = sum(parts.values())
    mem = co["memory"]
    pair_mb = pair_elements(cfg) * (mem["pair2_bytes"] if _second(cfg) else
                                    mem["pair_bytes"]) / 2**20
    act_mb = (cfg.batch_size * cfg.pack * (cfg.d_width * cfg.d_depth + cfg.g_width * cfg.g_depth)
              * 4 * 8 * (cfg.unroll + 1)
              + max(cfg.eval_samples, cfg.grid_size ** 2) * max(cfg.d_width, cfg.g_width) * 4 * 3
              + 4 * 4 * (cfg.d_depth * cfg.d_width ** 2 + cfg.g_depth * cfg.g_width ** 2)
              ) / 2**20  # activations, an evaluation's, weights with Adam's moments
    memory = mem["base_mb"] + pair_mb + act_mb
    # the knob to name when over a budget: what drives the largest part
    if cfg.minibatch_disc and (pair_mb > act_mb or parts["pairs"] + parts["pairs2"] > secs / 2):
        knob = "batch_size" if cfg.batch_size > 256 else "mbd_kernels"
    elif parts["tick"] > secs / 2:
        knob = "tick_every"
    elif cfg.n_critic > 1 and parts["mlp"] > secs / 2:
        knob = "n_critic"
    elif cfg.unroll > 0:
        knob = "unroll"
    else:
        knob = "batch_size"
    mem_knob = ("mbd_kernels" if pair_mb > act_mb and cfg.batch_size <= 256 else "batch_size")
    return dict(memory_mb=round(memory, 1), step_ms=round(secs * 1e3, 3),
                steps_per_sec=round(1.0 / secs, 1) if secs > 0 else None,
                heaviest=knob, heaviest_memory=mem_knob,
                parts_ms={k: round(v * 1e3, 3) for k, v in parts.items()},
                why=why(cfg), why_memory=why(cfg),
                tick_ms=round(parts["tick"] * max(cfg.tick_every, 1) * 1e3, 3),
                heaviest_tick=tick_knob(cfg, watched),
                why_tick="each tick evaluates eval_samples samples of G and, watched, D's "
                         "landscape over grid_size² points")


def tick_knob(cfg: Any, watched: bool = True) -> str:
    """Which of a tick's two parts weighs more: G's samples or D's landscape."""
    samples = cfg.eval_samples * cfg.g_depth * cfg.g_width ** 2
    grid = cfg.grid_size ** 2 if watched and cfg.dataset != "digits" else 0
    landscape = grid * (cfg.d_depth * cfg.d_width ** 2
                        + (min(cfg.batch_size, 128) * cfg.mbd_kernels * cfg.mbd_dim
                           if cfg.minibatch_disc else 0))
    return "grid_size" if landscape > samples else "eval_samples"


def why(cfg: Any) -> str:
    """What makes a run of `cfg` heavy, for a refusal (server/budget.py)."""
    if not cfg.minibatch_disc:
        return "the networks' work grows with batch_size and the widths"
    return ("minibatch discrimination's pairs grow with batch_size² × mbd_kernels × mbd_dim"
            + (", and second derivatives (gp, r1, unroll) go through them again"
               if _second(cfg) else ""))
