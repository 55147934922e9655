"""Scale: runs packed onto shared workers, the Ray backend against local workers, and a sweep
locally against Ray. Prints three tables (docs/scale.md has them as measured).

    python bench/scale.py packing [--runs 30] [--seconds 60] [--workers 2]
    python bench/scale.py backends [--runs 8] [--seconds 30]          (needs the `ray` extra)
    python bench/scale.py sweep [--configs 100] [--steps 500]          (needs the `ray` extra)

`packing`: a real server (`collapse-lab serve`, `max_workers` 2) gets `--runs` runs of
collapse-ring8 with different seeds and learning rates, started one after another, first with
packing off (a run waits for a free worker), then on (a run that finds no free worker joins
one); the table gives run-steps/s in total and per run over the window after the last start.

`backends`: the same server with local workers and with `--backend ray` (a local Ray): the time
from `POST /api/runs` to the first frame on the websocket, the age of frames when they arrive
(from the `sent` field), and run-steps/s in total with `--runs` runs training.

`sweep`: `collapse-lab sweep` of `--configs` configs (25 learning-rate pairs × seeds) locally
(one process per core, packs of 8) and on a local Ray (Ray tasks, packs of 8): wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser_harness import running_server  # noqa: E402

from collapse_lab.server.client import Client  # noqa: E402

LRS = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3)


@contextmanager
def server(max_workers: int, **env: str):
    """A real server (settings from `env`, as COLLAPSE_LAB_<KEY>) and a client of it."""
    data = Path(tempfile.mkdtemp(prefix="collapse-lab-scale-"))
    with running_server(data, max_workers=max_workers, wait_s=180,
                        env={f"COLLAPSE_LAB_{k.upper()}": v for k, v in env.items()}) as url:
        yield Client(url, timeout=60)


def knobs(i: int, steps: int = 1_000_000) -> dict:
    return dict(preset="collapse-ring8", seed=i, steps=steps, lr_g=LRS[i % 5],
                lr_d=LRS[(i // 5) % 5])


def steps_of(c: Client, ids: list[str]) -> dict[str, int]:
    return {r["id"]: r["step"] for r in c.runs() if r["id"] in ids}


def packing(a: argparse.Namespace) -> None:
    print(f"{a.runs} runs of collapse-ring8 (seeds 0..{a.runs - 1}, learning rates varied), "
          f"max_workers {a.workers}, one thread a worker, {a.seconds:g} s window")
    print(f"{'pack':>6} {'training':>9} {'queued':>7} {'run-steps/s total':>18} "
          f"{'per training run':>17} {'per run':>8}")
    for pack in ("false", "true"):
        with server(a.workers, pack=pack) as c:
            ids = [c.start_run(**knobs(i))["id"] for i in range(a.runs)]
            time.sleep(a.warmup)
            s0, t0 = steps_of(c, ids), time.monotonic()
            time.sleep(a.seconds)
            s1, t1 = steps_of(c, ids), time.monotonic()
            runs = {r["id"]: r for r in c.runs()}
            training = [i for i in ids if runs[i]["status"] == "running"]
            rate = {i: (s1[i] - s0[i]) / (t1 - t0) for i in ids}
            total = sum(rate.values())
            per_training = total / max(len(training), 1)
            print(f"{'on' if pack == 'true' else 'off':>6} {len(training):>9} "
                  f"{a.runs - len(training):>7} {total:>18.0f} {per_training:>17.1f} "
                  f"{total / a.runs:>8.1f}", flush=True)


def first_frame_and_ages(c: Client, run_id: str, t_start: float, frames: int,
                         out: dict) -> None:
    with c.stream(run_id) as s:
        ages = []
        for f in s.frames(frames, timeout=120):
            if "first" not in out:
                out["first"] = time.time() - t_start
            if f.scalars.get("sent"):
                ages.append(time.time() - f.scalars["sent"])
        out["ages"] = ages


def backends(a: argparse.Namespace) -> None:
    print(f"collapse-ring8, {a.runs} runs at once for run-steps/s ({a.seconds:g} s window); "
          "one viewer for frames")
    print(f"{'backend':>8} {'first frame':>12} {'frame age median':>17} {'p95':>7} "
          f"{'run-steps/s':>12}")
    for backend in ("local", "ray"):
        with server(a.runs, backend=backend, pack="false") as c:
            out: dict = {}
            t0 = time.time()
            rid = c.start_run(**knobs(0))["id"]
            th = threading.Thread(target=first_frame_and_ages, args=(c, rid, t0, 100, out))
            th.start()
            th.join(300)
            ids = [rid] + [c.start_run(**knobs(i))["id"] for i in range(1, a.runs)]
            time.sleep(a.warmup)
            s0, t1 = steps_of(c, ids), time.monotonic()
            time.sleep(a.seconds)
            s1, t2 = steps_of(c, ids), time.monotonic()
            total = sum(s1[i] - s0[i] for i in ids) / (t2 - t1)
            ages = sorted(out.get("ages", [float("nan")]))
            p95 = ages[int(0.95 * (len(ages) - 1))]
            print(f"{backend:>8} {out.get('first', float('nan')):>11.1f}s "
                  f"{1000 * statistics.median(ages):>15.0f}ms {1000 * p95:>5.0f}ms "
                  f"{total:>12.0f}", flush=True)


def sweep(a: argparse.Namespace) -> None:
    seeds = max(1, a.configs // 25)
    print(f"collapse-lab sweep: 25 learning-rate pairs × {seeds} seeds = {25 * seeds} runs of "
          f"{a.steps} steps, packs of 8")
    print(f"{'backend':>8} {'wall s':>8} {'runs/s':>7}")
    for backend in ("local", "ray"):
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "collapse_lab.server.cli", "sweep", "--backend", backend,
             "--preset", "collapse-ring8", "--vary", "lr_g=" + ",".join(map(str, LRS)),
             "--vary", "lr_d=" + ",".join(map(str, LRS)), "--seeds", f"0-{seeds - 1}",
             "--steps", str(a.steps), "--pack", "8"],
            cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        wall = time.monotonic() - t0
        if out.returncode != 0:
            print(f"{backend:>8} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        print(f"{backend:>8} {wall:>8.1f} {25 * seeds / wall:>7.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["packing", "backends", "sweep"])
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds after the last start")
    ap.add_argument("--configs", type=int, default=100)
    ap.add_argument("--steps", type=int, default=500)
    a = ap.parse_args()
    if a.what == "packing":
        a.runs = a.runs or 30
        packing(a)
    elif a.what == "backends":
        a.runs = a.runs or 8
        backends(a)
    else:
        sweep(a)


if __name__ == "__main__":
    main()
