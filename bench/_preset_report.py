"""What the calibration benches of the evolution, vae, diffusion and decoding presets share (run
as `python bench/x_presets.py`, so this folder is on the import path): the seeds argument, a
claim's test, training a preset's seeds as one stack (with a live switch and when its claim is
met), the per-seed figures (median, range), markdown tables and the page block they write.

Each bench keeps what is its own: its columns, its claim's words, its switches and its findings.
"""

from __future__ import annotations

import datetime
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from collapse_lab.trainer import families
from collapse_lab.trainer.data import make_dataset

Expect = tuple[str, str, float]


def seeds_arg(text: str) -> list[int]:
    """"0-9" or "0,3,5-7" -> the seeds."""
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def holds(tick: Mapping[str, Any], expect: Expect) -> bool:
    """Whether a tick meets a claim (metric, "at_most" | "at_least", value)."""
    metric, op, value = expect
    return tick[metric] <= value if op == "at_most" else tick[metric] >= value


def met(fin: Iterable[Mapping[str, Any]], expect: Expect) -> str:
    """How many seeds' final ticks meet the claim, of how many: "9/10"."""
    fin = list(fin)
    return f"{sum(holds(t, expect) for t in fin)}/{len(fin)}"


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def spread(xs: list[int]) -> str:
    """The range over seeds: "1" or "7–8"."""
    return f"{min(xs)}" if min(xs) == max(xs) else f"{min(xs)}–{max(xs)}"


def fmt(x: float) -> str:
    """A median of counts: "7" or "6.50"."""
    return f"{x:g}" if x == int(x) else f"{x:.2f}"


def knobs_text(change: Mapping[str, Any]) -> str:
    """A change in words: "sharing_radius=0.0, immigrants=0.05"."""
    return ", ".join(f"{k}={v}" for k, v in change.items())


# ------------------------------------------------------------------ training a preset's seeds
_DONE: dict[str, dict[str, Any]] = {}  # a stack already trained: its result


def train(family: str, knobs: dict[str, Any], seeds: list[int], every: int, *,
          switch: dict[str, Any] | None = None, after: int = 0, expect: Expect | None = None,
          unit: str = "steps") -> dict[str, Any]:
    """Train `knobs` on every seed as one stack of the family's engine, on the CPU, ticking
    every `every` steps and at the last. With `switch`, the run's own steps are trained first,
    then the change arrives as one live change and the stack trains `after` more steps; each
    seed's `met_at` is the steps after the switch at which `expect` first held at a tick.

    Returns {final: each seed's last tick, ticks: each seed's scalars at every tick, met_at,
    wall}. The same stack asked again (a twin's control is often another preset) is not
    trained twice: the same seeds give the same numbers."""
    key = repr((family, sorted(knobs.items()), seeds, every, sorted((switch or {}).items()),
                after, expect))
    if key in _DONE:
        return _DONE[key]
    fam = families.get(family)
    cfgs = [fam.make_config(dict(knobs, seed=s)) for s in seeds]
    data = make_dataset(cfgs[0])
    eng = fam.engine([fam.fresh(c, data) for c in cfgs], data, torch.device("cpu"))
    at = cfgs[0].steps
    total = at + after if switch is not None else at
    met_at: list[int | None] = [None] * len(seeds)
    ticks: list[list[dict[str, float]]] = [[] for _ in seeds]
    last: dict[int, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for s in range(1, total + 1):
        if switch is not None and s - 1 == at:
            for i in range(eng.runs):
                eng.apply(i, switch)
        eng.step()
        if s % every == 0 or s == total:
            last = eng.tick()
            for i, t in last.items():
                ticks[i].append({k: v for k, v in t.items()
                                 if isinstance(v, (int, float)) and not isinstance(v, bool)})
                if (switch is not None and s > at and expect is not None
                        and met_at[i] is None and holds(t, expect)):
                    met_at[i] = s - at
    wall = time.perf_counter() - t0
    print(f"  {total} {unit} of {len(seeds)} seeds in {wall:.0f} s", file=sys.stderr,
          flush=True)
    out = dict(final=[last[i] for i in range(eng.runs)], ticks=ticks, met_at=met_at, wall=wall)
    _DONE[key] = out
    return out


# ------------------------------------------------------------------ the page's block
def table(head: str, rows: list[str]) -> list[str]:
    """A markdown table: the head's cells ("a | b | c"), its rule, the rows."""
    n = len(head.split(" | "))
    return [f"| {head} |", "|---" * n + "|", *rows]


def row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def machine_line(seeds: str, total_s: float) -> str:
    """Where and when the figures were measured."""
    return (f"Seeds {seeds}; torch {torch.__version__}, {platform.machine()}, "
            f"{datetime.date.today()}; {total_s / 60:.1f} min in all (a shared 2-core machine).")


def purposes(presets: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """The "What each preset is for" part: each preset's help."""
    return ["", "### What each preset is for", "",
            *(f"- **`{name}`** — {presets[name].help}" for name in names)]


def write_block(path: Path, section: list[str], begin: str, end: str) -> None:
    """Replace the block between `begin` and `end` in `path` (or append it)."""
    text = path.read_text() if path.exists() else ""
    block = "\n".join(section)
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
