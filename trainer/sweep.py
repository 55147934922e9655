"""Sweeps: configs × seeds, packed into stacked engines, and the papers' style of table.

A sweep starts from a preset, varies knobs over a cartesian product (`--vary objective=nsgan,wgan-gp
--vary minibatch_disc=0,1`) and runs every config on every seed. Runs that share the shape of the
step train in packs of up to `pack` as one stacked engine (trainer/families/gan/engine.py), one
process with
one torch thread per pack, N processes on N cores — or as Ray tasks over a cluster. Every run
has its own random stream, so a row depends only on its config and seed, whatever pack it
trained in (the same numbers on every re-run). The table gives mean ± standard error over seeds
of the columns of VEEGAN's Table 1 (Srivastava et al. 2017) and PacGAN's Table 1 (Lin et al. 2018):
modes captured, modes covered, high-quality %, effective modes, reverse KL — plus the largest
hopping seen, which says whether the generator moved its mass between modes.

Pure: no server import; the CLI (`collapse-lab sweep`) lives in server/sweep.py.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import math
import multiprocessing as mp
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collapse_lab.trainer.families import knob as _knob
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.metrics import mean_se

# the table's columns: (key in a result row, header, scale for printing, decimals)
COLUMNS = (
    ("modes_captured", "captured", 1.0, 1),
    ("modes_covered", "covered", 1.0, 1),
    ("hq_pct", "HQ %", 1.0, 1),
    ("effective_modes", "eff. modes", 1.0, 2),
    ("reverse_kl", "rev. KL", 1.0, 2),
    ("max_hopping", "max hop", 1.0, 2),
)
CSV_COLUMNS = ("label", "preset", "dataset", "objective", "seed", "steps", "modes_captured",
               "modes_covered", "num_modes", "hq_pct", "effective_modes", "reverse_kl",
               "max_hopping", "covered_min", "covered_max", "frac_ticks_le3", "wall_s",
               "overrides")


@dataclass(frozen=True)
class Job:
    """One run of a sweep: a config (preset + overrides) on one seed."""

    label: str
    preset: str | None
    overrides: dict[str, Any]
    seed: int
    steps: int
    tick_every: int = 100  # ticks feed max hopping and the per-tick coverage columns
    data_dir: str | None = None
    device: str = "cpu"


@dataclass
class Summary:
    label: str
    n: int
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (mean, s.e.)
    steps: str = ""  # the runs' step count(s), e.g. "2000" or "1000/2000"


# ---------------------------------------------------------------------------- parsing
def parse_seeds(text: str) -> list[int]:
    """'0-9' → 0..9; '0-4,7,9' → 0,1,2,3,4,7,9. Raises ConfigError('seeds', ...) when malformed."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ConfigError("seeds", f"expected a list like 0-9 or 0,3,5, got {text!r}") from None
    if not out or min(out) < 0:
        raise ConfigError("seeds", f"expected non-negative seeds, got {text!r}")
    return list(dict.fromkeys(out))


def parse_vary(items: Iterable[str]) -> list[tuple[str, list[Any]]]:
    """['objective=nsgan,wgan-gp', 'minibatch_disc=0,1'] → [(knob, [coerced values]), ...]."""
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError("vary", f"expected KNOB=V1,V2,..., got {item!r}")
        name, values = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if name in ("seed", "steps"):
            raise ConfigError("vary", f"{name} is set by --seeds/--steps, not --vary")
        vals = [_knob(name).coerce(v.strip()) for v in values.split(",") if v.strip()]
        if not vals:
            raise ConfigError("vary", f"no values given for {name}")
        out.append((name, vals))
    return out


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def grid(varies: Sequence[tuple[str, list[Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The cartesian product of the varied knobs: [(label, overrides), ...] in a stable order."""
    if not varies:
        return [("base", {})]
    names = [n for n, _ in varies]
    out = []
    for combo in itertools.product(*(v for _, v in varies)):
        ov = dict(zip(names, combo, strict=True))
        out.append((" ".join(f"{n}={_fmt_value(v)}" for n, v in ov.items()), ov))
    return out


def jobs_for(configs: Sequence[tuple[str, str | None, dict[str, Any]]], seeds: Sequence[int],
             steps: int, tick_every: int = 100, data_dir: str | None = None) -> list[Job]:
    """configs: (label, preset, overrides). Config-major order, so a table fills row by row."""
    return [Job(label, preset, dict(ov), s, steps, min(tick_every, steps), data_dir)
            for label, preset, ov in configs for s in seeds]


# ---------------------------------------------------------------------------- one run
def _config(job: Job) -> Any:
    from collapse_lab.trainer import families
    from collapse_lab.trainer.registry import from_preset, preset_values

    values = dict(job.overrides, seed=job.seed, steps=job.steps, tick_every=job.tick_every,
                  device=job.device, threads=1)
    fam = families.of({**(preset_values(job.preset) if job.preset else {}), **job.overrides})
    if "grid_size" in fam.knobs:
        # the value grid is for pictures only: the smallest one keeps ticks cheap, metrics unchanged
        values["grid_size"] = 8
    return from_preset(job.preset, values)


def run_pack(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """Train jobs together to the end (those that share a step's shape as one stacked engine);
    one flat row (CSV_COLUMNS) per job, in order. A job's row is the one it gets alone: every
    run has its own random stream (trainer/families/gan/engine.py)."""
    import torch

    from collapse_lab.trainer.loop import Callbacks, Trainer

    torch.set_num_threads(1)
    trainer = Trainer(Path(jobs[0].data_dir) if jobs[0].data_dir else None)
    t0 = time.perf_counter()
    covered: list[list[int]] = [[] for _ in jobs]
    hops: list[list[float]] = [[] for _ in jobs]
    ends: list[tuple[str, str] | None] = [None] * len(jobs)

    def on_tick(i: int, t: dict[str, Any]) -> None:
        if t["step"] > 0:
            covered[i].append(t["modes_covered"])
            hops[i].append(t["hopping"])

    def on_end(i: int, status: str, why: str) -> None:
        ends[i] = (status, why)

    cfgs = [_config(j) for j in jobs]
    trainer.add_many([(str(i), c, Callbacks(on_tick=functools.partial(on_tick, i),
                                             on_end=functools.partial(on_end, i),
                                             want_picture=lambda: False))
                      for i, c in enumerate(cfgs)])
    while trainer.active():
        trainer.advance()
    wall = time.perf_counter() - t0
    rows = []
    for i, (job, cfg) in enumerate(zip(jobs, cfgs, strict=True)):
        last = trainer.runs[str(i)].last
        assert last is not None
        rows.append(dict(
            label=job.label, preset=job.preset or "", dataset=cfg.dataset,
            # a family without objectives (evolution, vae, diffusion, ...): the column names it
            objective=getattr(cfg, "objective", cfg.family), seed=job.seed, steps=last["step"],
            modes_captured=last["modes_captured"], modes_covered=last["modes_covered"],
            num_modes=len(last["occupancy"]), hq_pct=100.0 * last["hq_fraction"],
            effective_modes=last["effective_modes"], reverse_kl=last["reverse_kl"],
            max_hopping=max(hops[i], default=0.0), covered_min=min(covered[i], default=0),
            covered_max=max(covered[i], default=0),
            frac_ticks_le3=sum(c <= 3 for c in covered[i]) / max(len(covered[i]), 1),
            wall_s=wall / len(jobs),
            overrides=" ".join(f"{n}={_fmt_value(v)}" for n, v in job.overrides.items())))
    return rows


def run_job(job: Job) -> dict[str, Any]:
    """Train one job alone; its row."""
    return run_pack([job])[0]


def packs(jobs: Sequence[Job], size: int) -> list[list[int]]:
    """Job indices in packs of at most `size` that share a step's shape (config.stack_key),
    in job order within each pack."""
    from collapse_lab.trainer.families import stack_key

    by_key: dict[tuple, list[int]] = {}
    for i, job in enumerate(jobs):
        by_key.setdefault(stack_key(_config(job)), []).append(i)
    return [idx[k:k + size] for idx in by_key.values() for k in range(0, len(idx), size)]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _run_indexed(arg: tuple[list[int], list[Job]]) -> tuple[list[int], list[dict[str, Any]]]:
    idx, jobs = arg
    return idx, run_pack(jobs)


def run_jobs(jobs: Sequence[Job], workers: int = 1,
             progress: Callable[[int, int, dict[str, Any]], None] | None = None,
             pack: int = 1, backend: str = "local",
             ray_address: str | None = None) -> list[dict[str, Any]]:
    """Run every job: in packs of up to `pack` jobs that share a step's shape (one stacked
    engine each), `workers` processes at a time (spawn: no forked torch state) — or, with
    backend "ray", as Ray tasks over the cluster, one CPU each.

    Returns rows in job order whatever order they finish in; progress(done, total, row).
    """
    rows: list[dict[str, Any] | None] = [None] * len(jobs)
    work = [(idx, [jobs[i] for i in idx]) for idx in packs(jobs, max(1, pack))]
    done = 0

    def finished(idx: list[int], got: list[dict[str, Any]]) -> None:
        nonlocal done
        for i, row in zip(idx, got, strict=True):
            rows[i] = row
            done += 1
            if progress:
                progress(done, len(jobs), row)

    if backend == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(address=ray_address or None, include_dashboard=False, log_to_driver=False)
        task = ray.remote(num_cpus=1)(_run_indexed)
        pending = [task.remote(w) for w in work]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            finished(*ray.get(ready[0]))
    elif workers <= 1 or len(work) <= 1:
        for w in work:
            finished(*_run_indexed(w))
    else:
        ctx = mp.get_context("spawn")
        with ctx.Pool(min(workers, len(work)), initializer=_init_worker) as pool:
            for idx, got in pool.imap_unordered(_run_indexed, work):
                finished(idx, got)
    return rows  # type: ignore[return-value]


# ---------------------------------------------------------------------------- tables
def summarise(rows: Sequence[dict[str, Any]]) -> list[Summary]:
    """Mean ± s.e. over seeds per label, labels in first-seen order."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["label"], []).append(r)
    out = []
    for label, rs in by.items():
        s = Summary(label, len(rs), steps="/".join(
            str(x) for x in sorted({int(r["steps"]) for r in rs if "steps" in r})))
        for key, *_ in COLUMNS:
            s.stats[key] = mean_se([float(r[key]) for r in rs])
        out.append(s)
    return out


def fmt_pm(m: float, se: float, decimals: int) -> str:
    """'6.3 ± 0.5'; the mean alone when there is no standard error (nan: a single run)."""
    if math.isnan(m):
        return "—"
    if math.isnan(se):
        return f"{m:.{decimals}f}"
    return f"{m:.{decimals}f} ± {se:.{decimals}f}"


def format_table(summaries: Sequence[Summary], title: str = "",
                 published: dict[str, dict[str, str]] | None = None,
                 published_name: str = "published",
                 verdicts: dict[str, str] | None = None) -> str:
    """A fixed-width table; `published[label]` adds the paper's figures for that row and
    `verdicts[label]` whether ours falls within them."""
    head = ["config", "n", "steps"] + [h for _, h, *_ in COLUMNS]
    body = []
    for s in summaries:
        row = [s.label, str(s.n), s.steps or "—"]
        for key, _, scale, dec in COLUMNS:
            m, se = s.stats[key]
            # one run has no spread to report: its value alone, not "± 0"
            row.append(fmt_pm(m * scale, se * scale, dec) if s.n > 1
                       else fmt_pm(m * scale, math.nan, dec))
        body.append(row)
    if published:
        head.append(published_name)
        for row, s in zip(body, summaries, strict=True):
            p = published.get(s.label)
            row.append(", ".join(f"{k} {v}" for k, v in p.items()) if p else "—")
    if verdicts is not None:
        head.append("verdict")
        for row, s in zip(body, summaries, strict=True):
            row.append(verdicts.get(s.label, "—"))
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


_INT_COLUMNS = ("seed", "steps", "modes_captured", "modes_covered", "num_modes", "covered_min",
                "covered_max")
_FLOAT_COLUMNS = ("hq_pct", "effective_modes", "reverse_kl", "max_hopping", "frac_ticks_le3",
                  "wall_s")


def read_csv(text: str) -> list[dict[str, Any]]:
    """Rows written by `to_csv`, with their numbers typed again."""
    out = []
    for r in csv.DictReader(io.StringIO(text)):
        row: dict[str, Any] = dict(r)
        for k in _INT_COLUMNS:
            row[k] = int(r[k])
        for k in _FLOAT_COLUMNS:
            row[k] = float(r[k])
        out.append(row)
    return out


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), extrasaction="ignore",
                       lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()
