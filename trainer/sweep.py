"""Sweeps: configs × seeds, one process per core, and the papers' style of table.

A sweep starts from a preset, varies knobs over a cartesian product (`--vary objective=nsgan,wgan-gp
--vary minibatch_disc=0,1`) and runs every config on every seed. Each run is one process with one
torch thread on the CPU, so a row depends only on its config and seed (the same numbers on every
re-run) and N workers keep N cores busy. The table gives mean ± standard error over seeds of the
columns of VEEGAN's Table 1 (Srivastava et al. 2017) and PacGAN's Table 1 (Lin et al. 2018):
modes captured, modes covered, high-quality %, effective modes, reverse KL — plus the largest
hopping seen, which says whether the generator moved its mass between modes.

Pure: no server import; the CLI (`collapse-lab sweep`) lives in server/sweep.py.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import multiprocessing as mp
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collapse_lab.trainer.config import ConfigError, coerce
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


@dataclass
class Summary:
    label: str
    n: int
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (mean, s.e.)


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
        vals = [coerce(name, v.strip()) for v in values.split(",") if v.strip()]
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
def run_job(job: Job) -> dict[str, Any]:
    """Train one run to the end; returns one flat row (CSV_COLUMNS). Runs in a worker process."""
    import torch

    from collapse_lab.trainer.loop import Callbacks, train
    from collapse_lab.trainer.presets import from_preset

    torch.set_num_threads(1)
    # the value grid is for pictures only: the smallest one keeps ticks cheap, metrics unchanged
    values = dict(job.overrides, seed=job.seed, steps=job.steps, tick_every=job.tick_every,
                  grid_size=8, device="cpu", threads=1)
    cfg = from_preset(job.preset, values)
    t0 = time.perf_counter()
    covered: list[int] = []
    hops: list[float] = []

    def on_tick(t: dict[str, Any]) -> None:
        if t["step"] > 0:
            covered.append(t["modes_covered"])
            hops.append(t["hopping"])

    last = train(cfg, Path(job.data_dir) if job.data_dir else None,
                 Callbacks(on_tick=on_tick, want_picture=lambda: False))
    return dict(
        label=job.label, preset=job.preset or "", dataset=cfg.dataset, objective=cfg.objective,
        seed=job.seed, steps=last["step"], modes_captured=last["modes_captured"],
        modes_covered=last["modes_covered"], num_modes=len(last["occupancy"]),
        hq_pct=100.0 * last["hq_fraction"], effective_modes=last["effective_modes"],
        reverse_kl=last["reverse_kl"], max_hopping=max(hops, default=0.0),
        covered_min=min(covered, default=0), covered_max=max(covered, default=0),
        frac_ticks_le3=sum(c <= 3 for c in covered) / max(len(covered), 1),
        wall_s=time.perf_counter() - t0,
        overrides=" ".join(f"{n}={_fmt_value(v)}" for n, v in job.overrides.items()),
    )


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_jobs(jobs: Sequence[Job], workers: int = 1,
             progress: Callable[[int, int, dict[str, Any]], None] | None = None,
             runner: Callable[[Job], dict[str, Any]] = run_job) -> list[dict[str, Any]]:
    """Run every job, `workers` processes at a time (spawn: no forked torch state).

    Returns rows in job order whatever order they finish in; progress(done, total, row).
    """
    rows: list[dict[str, Any] | None] = [None] * len(jobs)
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            rows[i] = runner(job)
            if progress:
                progress(i + 1, len(jobs), rows[i])  # type: ignore[arg-type]
        return rows  # type: ignore[return-value]
    ctx = mp.get_context("spawn")
    with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker) as pool:
        done = 0
        for i, row in pool.imap_unordered(_indexed, [(i, runner, j) for i, j in enumerate(jobs)]):
            rows[i] = row
            done += 1
            if progress:
                progress(done, len(jobs), row)
    return rows  # type: ignore[return-value]


def _indexed(arg: tuple[int, Callable[[Job], dict[str, Any]], Job]) -> tuple[int, dict[str, Any]]:
    i, runner, job = arg
    return i, runner(job)


# ---------------------------------------------------------------------------- tables
def summarise(rows: Sequence[dict[str, Any]]) -> list[Summary]:
    """Mean ± s.e. over seeds per label, labels in first-seen order."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["label"], []).append(r)
    out = []
    for label, rs in by.items():
        s = Summary(label, len(rs))
        for key, *_ in COLUMNS:
            s.stats[key] = mean_se([float(r[key]) for r in rs])
        out.append(s)
    return out


def fmt_pm(m: float, se: float, decimals: int) -> str:
    if math.isnan(m):
        return "—"
    return f"{m:.{decimals}f} ± {se:.{decimals}f}"


def format_table(summaries: Sequence[Summary], title: str = "",
                 published: dict[str, dict[str, str]] | None = None,
                 published_name: str = "published") -> str:
    """A fixed-width table; `published[label]` adds the paper's figures for that row."""
    head = ["config", "n"] + [h for _, h, *_ in COLUMNS]
    body = []
    for s in summaries:
        row = [s.label, str(s.n)]
        for key, _, scale, dec in COLUMNS:
            m, se = s.stats[key]
            row.append(fmt_pm(m * scale, se * scale, dec))
        body.append(row)
    if published:
        head.append(published_name)
        for row, s in zip(body, summaries, strict=True):
            p = published.get(s.label)
            row.append(", ".join(f"{k} {v}" for k, v in p.items()) if p else "—")
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
