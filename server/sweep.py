"""`collapse-lab sweep`: many seeds × configs, a paper-style table (mean ± s.e.) and a CSV.

    collapse-lab sweep --preset collapse-ring8 --vary objective=nsgan,wgan-gp \
                       --vary minibatch_disc=0,1 --seeds 0-9 --steps 3000 [--csv out.csv]
    collapse-lab sweep --table veegan      # the VEEGAN / PacGAN ring8 + grid25 protocol

The work is trainer/sweep.py; this file only parses flags and prints. Registered by server/cli.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from collapse_lab.trainer.knobs import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser("sweep", help="configs × seeds, a mean ± s.e. table like the papers'")
    p.add_argument("--preset", help="the config every row starts from (see `options`)")
    p.add_argument("--vary", action="append", default=[], metavar="KNOB=V1,V2",
                   help="a knob and its values; several --vary give their cartesian product")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=V",
                   help="a knob fixed for every row (on top of the preset)")
    p.add_argument("--seeds", help="seeds, e.g. 0-9 or 0,3,5 (default 0-4; with --table the "
                   "paper's number of runs)")
    p.add_argument("--steps", type=int, help="generator steps per run (default: each preset's own, "
                   "else 3000)")
    p.add_argument("--tick-every", type=int, default=100,
                   help="steps between the ticks that feed max hopping (default 100)")
    p.add_argument("--table", choices=["veegan", "pacgan"],
                   help="run the paper's ring8 and grid25 rows and print its numbers beside ours")
    p.add_argument("--csv", metavar="PATH", help="write one row per run")
    p.add_argument("--workers", type=int, default=0,
                   help="processes, one torch thread each (default: one per core)")
    p.add_argument("--pack", type=int, default=8,
                   help="runs that share a step's shape train as one stacked engine, this many "
                   "at most (default 8; 1 = each run alone)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local processes, or Ray tasks over a cluster (the `ray` extra)")
    p.add_argument("--ray-address", help="the Ray cluster (default: start a local Ray)")
    p.add_argument("--data-dir", help="where caches live (digits classifier)")
    p.add_argument("--from-csv", metavar="PATH[,PATH]",
                   help="print the table from earlier runs' CSVs instead of training (with "
                   "--table, rows are matched to the paper's rows by preset and dataset)")
    p.set_defaults(func=cmd_sweep)


def _fail(message: str) -> int:
    print(f"collapse-lab: error: {message}", file=sys.stderr)
    raise SystemExit(2)


class _Progress:
    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.t0 = time.perf_counter()

    def __call__(self, done: int, total: int, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        el = time.perf_counter() - self.t0
        eta = el / done * (total - done)
        sys.stderr.write(f"\r{done:>4}/{total} runs  last: {row['label'][:40]:<40} seed "
                         f"{row['seed']:<3} covered {row['modes_covered']:>2}  eta {eta:5.0f}s ")
        sys.stderr.flush()
        if done == total:
            sys.stderr.write("\n")


def cmd_sweep(ns: argparse.Namespace) -> int:
    from collapse_lab.trainer import sweep as sw
    from collapse_lab.trainer.families.gan import paper_tables
    from collapse_lab.trainer.registry import from_preset, preset_values

    workers = ns.workers or os.cpu_count() or 1
    if ns.steps is not None and ns.steps < 1:
        _fail("--steps: expected a positive integer")
    if ns.pack < 1:
        _fail("--pack: expected a positive integer")
    if ns.backend == "ray" or ns.ray_address:
        try:
            import ray  # noqa: F401
        except ImportError:
            _fail("--backend ray: Ray is not installed; pip install 'collapse-lab[ray]'")
    try:
        fixed = dict(sw.parse_vary(ns.set))
        fixed = {k: v[-1] for k, v in fixed.items()}
        if ns.table:
            table = paper_tables.TABLES[ns.table]
            if ns.vary or ns.preset:
                _fail("--table runs the paper's own rows; leave out --preset and --vary")
            seeds = sw.parse_seeds(ns.seeds or table.seeds)
            configs = []
            for d in paper_tables.DATASETS:
                for label, preset, _ in paper_tables.rows(table, d):
                    configs.append((f"{d}: {label}", preset, dict(fixed)))
        else:
            seeds = sw.parse_seeds(ns.seeds or "0-4")
            if ns.preset:
                preset_values(ns.preset)  # unknown preset: a one-line error now, not in a worker
            configs = [(label, ns.preset, {**fixed, **ov})
                       for label, ov in sw.grid(sw.parse_vary(ns.vary))]
            for _, preset, ov in configs:  # refuse bad combinations before any run starts
                from_preset(preset, ov)
    except ConfigError as e:
        _fail(f"--{e.field.replace('_', '-')}: {e.message}")
    jobs = []
    for label, preset, ov in configs:
        steps = ns.steps or int(from_preset(preset, ov).steps)
        jobs += sw.jobs_for([(label, preset, ov)], seeds, steps, ns.tick_every, ns.data_dir)
    if ns.from_csv:
        rows = _rows_from_csv(ns.from_csv, configs, set(seeds))
    else:
        backend = "ray" if ns.ray_address else ns.backend
        if sys.stderr.isatty():
            where = ("Ray tasks" if backend == "ray"
                     else f"{min(workers, len(jobs))} processes")
            sys.stderr.write(f"{len(jobs)} runs ({len(configs)} configs × {len(seeds)} seeds) "
                             f"in packs of up to {ns.pack} on {where}\n")
        rows = sw.run_jobs(jobs, workers, _Progress(), pack=ns.pack, backend=backend,
                           ray_address=ns.ray_address)
    if ns.csv and not ns.from_csv:
        Path(ns.csv).write_text(sw.to_csv(rows))
    summaries = sw.summarise(rows)
    if ns.table:
        table = paper_tables.TABLES[ns.table]
        for d in paper_tables.DATASETS:
            mine = [s for s in summaries if s.label.startswith(f"{d}: ")]
            by_label = {s.label: s for s in mine}
            pub, verdicts = {}, {}
            for label, _, model in paper_tables.rows(table, d):
                # a row may be missing (--from-csv with runs of some presets only)
                cells = table.published.get(model or "", {}).get(d)
                row = by_label.get(f"{d}: {label}")
                if cells and row:
                    pub[f"{d}: {label}"] = {f"{model}:": ""} | cells
                    verdicts[f"{d}: {label}"] = paper_tables.verdict(cells, row.stats, row.n)
            if not mine:
                print(f"no runs of this table's {d} rows\n")
                continue
            k = 8 if d == "ring8" else 25
            runs = len(sw.parse_seeds(table.seeds))
            title = (f"{d} ({k} modes), seeds {ns.seeds or table.seeds}: mean ± s.e. over the "
                     f"seeds each row has (n; the paper ran {runs})")
            print(sw.format_table(mine, title, published=_flat(pub), published_name=ns.table,
                                  verdicts=verdicts))
            print("verdict: our mean within the published mean ± 2 s.e. (± 10 % where no error "
                  f"is published), given at least {paper_tables.MIN_SEEDS_FOR_VERDICT} seeds; "
                  "lesson presets are not the paper's setting and get none")
            unmeasured = [f"{model} ({preset})" for label, preset, model
                          in paper_tables.rows(table, d)
                          if model and f"{d}: {label}" not in by_label]
            if unmeasured:
                print("not measured (no runs in the CSV): " + ", ".join(unmeasured))
            print(f"published, {table.caption}")
            print("\n".join(paper_tables.published_lines(table, d)))
            print()
    else:
        title = (f"preset {ns.preset or '(defaults)'}, {rows[0]['steps']} steps, seeds "
                 f"{ns.seeds or '0-4'}: mean ± s.e. over seeds")
        print(sw.format_table(summaries, title))
    if ns.csv and not ns.from_csv:
        print(f"{len(rows)} rows written to {ns.csv}")
    return 0


def _rows_from_csv(paths: str, configs: list, seeds: set[int]) -> list[dict[str, Any]]:
    """Earlier runs matched to this sweep's configs: by label, else by preset (+ dataset)."""
    from collapse_lab.trainer import sweep as sw

    found: list[dict[str, Any]] = []
    for path in paths.split(","):
        try:
            found += sw.read_csv(Path(path).read_text())
        except (OSError, KeyError, ValueError) as e:
            _fail(f"--from-csv: cannot read {path}: {e}")
    rows = []
    for label, preset, _ in configs:
        dataset = label.split(": ", 1)[0] if ": " in label else None
        mine = [r for r in found if r["seed"] in seeds and r["label"] == label]
        if not mine:  # e.g. the calibration's rows, labelled by preset
            mine = [r for r in found if r["seed"] in seeds and r["preset"] == preset
                    and r["label"] == preset and dataset in (None, r["dataset"])]
        rows += [dict(r, label=label) for r in mine]
    if not rows:
        _fail("--from-csv: no rows match these configs and seeds")
    return rows


def _flat(pub: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """{'GAN:': '', 'modes': '1'} → printed as 'GAN: modes 1, HQ % 99.3'."""
    out = {}
    for label, cells in pub.items():
        items = list(cells.items())
        head = items[0][0]
        rest = ", ".join(f"{k} {v}" for k, v in items[1:])
        out[label] = {head: rest}
    return out
