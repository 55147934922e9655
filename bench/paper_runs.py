"""Train the paper presets over seeds, resumably, one row per run appended to a CSV.

    python bench/paper_runs.py [--presets paper-pacgan-gan-ring8,...] [--seeds 0-4]
                               [--steps N] [--workers 2] [--tick-every 250]
                               [--csv bench/out/paper-runs.csv]
    python bench/paper_runs.py --plan PRESET:SEEDS[:STEPS] --plan ...   # in this order

Runs go seed by seed across the presets (seed 0 of every preset, then seed 1, ...), so an
interrupted sweep still has a row for every preset (or in the order `--plan` gives); a run
whose (preset, seed, steps) is already in the CSV is skipped, so the same command resumes where
it stopped. Each run trains in its own
process on one torch thread (the paper presets' networks are large enough that stacking runs
gains nothing on a CPU). `collapse-lab sweep --table pacgan --from-csv FILE` prints the papers'
tables from the CSV.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

from collapse_lab.trainer import sweep as sw
from collapse_lab.trainer.registry import PRESETS, meets_claim, preset_values


def _run(job: sw.Job) -> dict:
    return sw.run_job(job)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(n for n in PRESETS if n.startswith("paper-")))
    p.add_argument("--seeds", default="0-4")
    p.add_argument("--steps", type=int, default=0, help="steps per run; 0 = each preset's own")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tick-every", type=int, default=250)
    p.add_argument("--csv", default="bench/out/paper-runs.csv")
    p.add_argument("--plan", action="append", default=[], metavar="PRESET:SEEDS[:STEPS]",
                   help="run these, in this order, instead of --presets × --seeds (the costly "
                   "rows first when time is short)")
    ns = p.parse_args(argv)
    plan: list[tuple[str, int, int]] = []  # (preset, seed, steps)
    if ns.plan:
        for item in ns.plan:
            name, seeds_text, *rest = item.split(":") + [""]
            steps = int(rest[0]) if rest[0] else 0
            plan += [(name.strip(), s, steps) for s in sw.parse_seeds(seeds_text)]
    else:
        names = [n.strip() for n in ns.presets.split(",") if n.strip()]
        plan = [(n, s, ns.steps) for s in sw.parse_seeds(ns.seeds) for n in names]
    for n, _, _ in plan:
        if n not in PRESETS:
            p.error(f"unknown preset {n!r}")
    path = Path(ns.csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    done: set[tuple[str, int, int]] = set()
    if path.exists() and path.read_text().strip():
        done = {(r["label"], r["seed"], r["steps"]) for r in sw.read_csv(path.read_text())}
    else:
        path.write_text(sw.to_csv([]))
    jobs = []
    for n, seed, steps in plan:
        steps = steps or int(preset_values(n).get("steps", 3000))
        if (n, seed, steps) not in done:
            jobs += sw.jobs_for([(n, n, {})], [seed], steps, ns.tick_every)
    print(f"{len(jobs)} runs to go ({len(done)} already in {path})", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(max(1, ns.workers), maxtasksperchild=1) as pool:
        for i, row in enumerate(pool.imap_unordered(_run, jobs), 1):
            with path.open("a") as f:
                f.write(sw.to_csv([row]).split("\n", 1)[1])
            ok = "meets" if meets_claim(row["label"], row) else "misses"
            print(f"[{i}/{len(jobs)} {time.perf_counter() - t0:.0f} s] {row['label']} seed "
                  f"{row['seed']}: captured {row['modes_captured']}/{row['num_modes']}, covered "
                  f"{row['modes_covered']}, HQ {row['hq_pct']:.1f} %, rev. KL "
                  f"{row['reverse_kl']:.2f} ({ok} its claim), {row['wall_s']:.0f} s",
                  file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
