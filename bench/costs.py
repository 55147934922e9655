"""Measure what runs cost and fit the estimator's table (trainer/families/*/costs.json).

For a spread of configurations (network sizes, batch sizes, n_critic, unrolling, penalties,
minibatch discrimination at several sizes, tick_every), times the driver's `Trainer.advance()`
with D's landscape drawn at every tick (a watched run) in `--rounds` interleaved rounds keeping
the fastest (a shared machine's load only ever slows a case), and in a subprocess per configuration
the peak memory of a short run. Fits the per-unit costs of trainer/families/gan/cost.py by
non-negative least squares on relative error, prints measured against predicted, and with
`--write` stores the coefficients and the table in costs.json.

`--family evolution|vae|diffusion|decoding` does the same for that family's model
(trainer/families/NAME/cost.py, trainer/cost.py): its own spread of configurations (FAMILIES
below), timed alike, its per-unit costs fitted alike, `base_mb` the peak RSS of the
memory case with the most counted tensors less those tensors, `floor_mb` the default's peak, and
the memory cases' measured peak beside the estimate.

    python bench/costs.py [--family gan] [--seconds 0.6] [--write]
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collapse_lab.trainer.families.gan import cost  # noqa: E402
from collapse_lab.trainer.families.gan.config import make_config  # noqa: E402
from collapse_lab.trainer.loop import Callbacks, Trainer  # noqa: E402

CASES: list[tuple[str, dict]] = [
    ("plain b64", dict(batch_size=64)),
    ("plain", dict()),
    ("plain b1024", dict(batch_size=1024)),
    ("wide 256", dict(g_width=256, d_width=256)),
    ("n_critic 5", dict(n_critic=5)),
    ("wgan-gp", dict(objective="wgan-gp")),
    ("unroll 3", dict(unroll=3)),
    ("tick_every 2", dict(tick_every=2)),
    ("mbd 16x4 b64", dict(minibatch_disc=True, batch_size=64)),
    ("mbd 16x4", dict(minibatch_disc=True)),
    ("mbd 32x8", dict(minibatch_disc=True, mbd_kernels=32, mbd_dim=8)),
    ("mbd 16x4 b64 + gp", dict(minibatch_disc=True, batch_size=64, gp=1.0)),
    ("mbd 16x4 + gp", dict(minibatch_disc=True, gp=1.0)),
]
MEMORY_CASES = ["plain", "mbd 16x4", "mbd 32x8", "mbd 16x4 + gp", "plain b1024"]

# the other families: (timed cases, memory cases); the first case of each is the default
FAMILIES: dict[str, tuple[list[tuple[str, dict]], list[str]]] = {
    "diffusion": ([
        ("default", dict()),
        ("batch 64", dict(batch=64)),
        ("batch 2048", dict(batch=2048)),
        ("width 256", dict(width=256)),
        ("depth 6 width 64", dict(depth=6, width=64)),
        ("sample_steps 100", dict(sample_steps=100, tick_every=10)),
        ("samples 4096", dict(samples=4096, tick_every=10)),
        ("N 4096 grid 128", dict(train_points=4096, grid_size=128, tick_every=5)),
        ("tick_every 1", dict(tick_every=1)),
        ("N 4096 grid 256", dict(train_points=4096, grid_size=256, samples=4096,
                                 tick_every=1)),
    ], ["default", "batch 2048", "N 4096 grid 256"]),
    "evolution": ([
        ("default", dict()),
        ("population 64", dict(population=64)),
        ("population 4096", dict(population=4096)),
        ("sharing", dict(sharing_radius=0.3)),
        ("sharing 1024", dict(sharing_radius=0.3, population=1024)),
        ("sharing 2048 unticked", dict(sharing_radius=0.3, population=2048, tick_every=1000)),
        ("sharing grid 64 every 1", dict(sharing_radius=0.3, grid_size=64, tick_every=1)),
        ("spiral 1024", dict(dataset="spiral", population=1024)),
        ("tick_every 1", dict(tick_every=1)),
        ("sharing 2048 grid 128", dict(sharing_radius=0.3, population=2048, grid_size=128,
                                       tick_every=1)),
    ], ["default", "sharing 2048 grid 128"]),
    "vae": ([
        ("default", dict()),
        ("batch 512", dict(batch_size=512)),
        ("wide 512 x3", dict(encoder_width=512, decoder_width=512, decoder_layers=3)),
        ("aggressive 5", dict(aggressive=5)),
        ("tick_every 1", dict(tick_every=1)),
        ("latent 64 tick_every 2", dict(latent=64, tick_every=2)),
        ("wide 1024 x4 b1024", dict(batch_size=1024, encoder_width=1024, decoder_width=1024,
                                    decoder_layers=4, latent=64)),
    ], ["default", "wide 1024 x4 b1024"]),
    "decoding": ([
        ("default", dict()),
        ("hidden 256", dict(hidden=256)),
        ("lm_batch 512", dict(lm_batch=512)),
        ("sample 200 every 1", dict(strategy="sample", samples=200, tick_every=1)),
        ("diverse 64x64 every 1", dict(strategy="diverse_beam", beam_width=64, groups=64,
                                       tick_every=1)),
        ("tick_every 1", dict(tick_every=1)),
        ("hidden 512 lm_batch 1024", dict(hidden=512, embed=256, lm_batch=1024)),
    ], ["default", "hidden 512 lm_batch 1024"]),
}


FAMILY = "gan"


def fit_table(rows: list, seconds: dict, features: tuple) -> list[dict]:
    """Print each case's measured and estimated steps/s; the same as rows for costs.json."""
    print("| case | measured steps/s | estimated steps/s | error |")
    print("|---|---:|---:|---:|")
    table = []
    for name, over, s, w in rows:
        est = sum(seconds[f] * w[f] for f in features)
        print(f"| {name} | {1 / s:.1f} | {1 / est:.1f} | {100 * (est / s - 1):+.0f} % |")
        table.append(dict(case=name, knobs=over, measured_steps_per_sec=round(1 / s, 2),
                          estimated_steps_per_sec=round(1 / est, 2)))
    return table


def config(over: dict):
    if FAMILY != "gan":
        from collapse_lab.trainer.families import make_config as any_config

        return any_config(dict(dict(family=FAMILY, device="cpu", steps=0, threads=1), **over))
    return make_config(dict(dict(device="cpu", steps=0, threads=1), **over))


def seconds_per_step(over: dict, seconds: float) -> float:
    tr = Trainer()
    tr.add("r", config(over), Callbacks(want_picture=lambda: True))
    for _ in range(5):
        tr.advance()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        tr.advance()
        n += 1
    return (time.perf_counter() - t0) / n


def fastest(cases: list[tuple[str, dict]], rounds: int, seconds: float) -> dict[str, float]:
    """Each case's seconds per step: the fastest of `rounds` interleaved timings (others' load
    on a shared machine only ever slows a case, so the fastest is the nearest to an idle one)."""
    best = {name: float("inf") for name, _ in cases}
    for r in range(rounds):
        for name, over in cases:
            best[name] = min(best[name], seconds_per_step(over, seconds))
            print(f"  round {r + 1} timed {name}: {1 / best[name]:.1f} steps/s",
                  file=sys.stderr, flush=True)
    return best


def peak_mb(over: dict, steps: int = 30) -> float:
    """Peak RSS of a fresh process that trains `steps` steps of `over`."""
    code = ("import json,sys,torch; torch.set_num_threads(1);"
            "from collapse_lab.trainer.loop import Callbacks, Trainer;"
            "from collapse_lab.trainer.families import make_config;"
            "t=Trainer(); t.add('r', make_config(json.loads(sys.argv[1])),"
            " Callbacks(want_picture=lambda: True));"
            f"[t.advance() for _ in range({steps})];"
            # VmHWM, not ru_maxrss: Linux keeps the forking parent's peak in the latter
            "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status')"
            " if l.startswith('VmHWM')][0])")
    cfg = dict(dict(family=FAMILY, device="cpu", steps=0, threads=1), **over)
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cfg)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=0.6)
    ap.add_argument("--write", action="store_true", help="store the fit in costs.json")
    ap.add_argument("--family", default="gan", choices=("gan", *FAMILIES))
    ap.add_argument("--rounds", type=int, default=3, help="each case timed this many times, "
                    "interleaved, the fastest kept")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.family != "gan":
        family(a)
        return
    from scipy.optimize import nnls

    best = fastest(CASES, a.rounds, a.seconds)
    rows = [(name, over, best[name], cost.work(config(over))) for name, over in CASES]
    X = np.array([[w[f] for f in cost.FEATURES] for _, _, _, w in rows])
    y = np.array([s for _, _, s, _ in rows])
    coef, _ = nnls(X / y[:, None], np.ones_like(y))  # relative error: slow cases weigh alike
    seconds = dict(zip(cost.FEATURES, (float(c) for c in coef), strict=True))

    mem_rows = {}
    for name in MEMORY_CASES:
        mem_rows[name] = peak_mb(dict(CASES)[name])
        print(f"  memory {name}: {mem_rows[name]:.0f} MB", file=sys.stderr, flush=True)
    base = mem_rows["plain"]
    pair1 = config(dict(CASES)["mbd 32x8"])
    pair2 = config(dict(CASES)["mbd 16x4 + gp"])
    memory = dict(base_mb=round(base, 1),
                  pair_bytes=max(4.0, (mem_rows["mbd 32x8"] - base) * 2**20
                                 / cost.pair_elements(pair1)),
                  pair2_bytes=max(4.0, (mem_rows["mbd 16x4 + gp"] - base) * 2**20
                                  / cost.pair_elements(pair2)))
    co = dict(seconds=seconds, memory=memory)

    print(f"\ntorch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"1 thread, {a.seconds} s per case, fastest of {a.rounds} rounds\n")
    table = fit_table(rows, seconds, cost.FEATURES)
    print("\n| case | peak RSS MB |\n|---|---:|")
    for name, mb in mem_rows.items():
        print(f"| {name} | {mb:.0f} |")
    print(f"\ncoefficients: {json.dumps(co)}")
    if a.write:
        cost.TABLE.write_text(json.dumps(dict(
            coefficients=co, measured=table, memory_mb=mem_rows, torch=torch.__version__,
            when=time.strftime("%Y-%m-%d")), indent=1) + "\n")
        print(f"written to {cost.TABLE}")


def family(a: argparse.Namespace) -> None:
    """Time and fit the model of a family other than the GAN (trainer/cost.py's shape)."""
    from scipy.optimize import nnls

    global FAMILY
    FAMILY = a.family
    model = importlib.import_module(f"collapse_lab.trainer.families.{a.family}.cost")
    cases, memory_cases = FAMILIES[a.family]
    best = fastest(cases, a.rounds, a.seconds)
    rows = [(name, over, best[name], model.work(config(over))) for name, over in cases]
    X = np.array([[w[f] for f in model.FEATURES] for _, _, _, w in rows])
    y = np.array([s for _, _, s, _ in rows])
    coef, _ = nnls(X / y[:, None], np.ones_like(y))  # relative error: slow cases weigh alike
    seconds = dict(zip(model.FEATURES, (float(c) for c in coef), strict=True))

    mem_rows = {}
    for name in memory_cases:
        over = dict(cases)[name]
        mem_rows[name] = peak_mb(over, steps=max(3, config(over).tick_every))
        print(f"  memory {name}: {mem_rows[name]:.0f} MB", file=sys.stderr, flush=True)
    # base_mb from the case whose counted tensors are largest: accurate where a budget bites
    # (a small run's peak is the imports', which its tensors fit into once freed)
    big = max(memory_cases, key=lambda n: sum(model.memory_parts(config(dict(cases)[n])).values()))
    base = mem_rows[big] - sum(model.memory_parts(config(dict(cases)[big])).values())
    co = dict(seconds=seconds, memory=dict(base_mb=round(base, 1),
                                           floor_mb=round(mem_rows[memory_cases[0]], 1)))

    print(f"\n{a.family}: torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, 1 thread, {a.seconds} s per case, "
          f"fastest of {a.rounds} rounds\n")
    table = fit_table(rows, seconds, model.FEATURES)
    print("\n| case | peak RSS MB | estimated MB |\n|---|---:|---:|")
    for name, mb in mem_rows.items():
        est_mb = max(co["memory"]["floor_mb"],
                     base + sum(model.memory_parts(config(dict(cases)[name])).values()))
        print(f"| {name} | {mb:.0f} | {est_mb:.0f} |")
    print(f"\ncoefficients: {json.dumps(co)}")
    if a.write:
        model.TABLE.write_text(json.dumps(dict(
            coefficients=co, measured=table, memory_mb=mem_rows, torch=torch.__version__,
            when=time.strftime("%Y-%m-%d")), indent=1) + "\n")
        print(f"written to {model.TABLE}")


if __name__ == "__main__":
    main()
