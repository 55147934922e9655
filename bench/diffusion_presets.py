"""Calibrate the diffusion family's presets: each claim on ten seeds, each twin beside its
control, and the live switch from a memorising run to more data.

    python bench/diffusion_presets.py --seeds 0-9 --write docs/presets.md

A preset's seeds train as one stack (each run's numbers are those it has alone, up to float
rounding: tests/test_diffusion.py), on the CPU with one thread. *Success* is the preset's claim
on the final tick. A control that is the same config as a preset already trained (a twin's
remedy switched off is often the memorising preset itself) is not trained twice. The live switch
trains the memorising preset, then applies the change as one live change to every seed and
counts a seed when the claim holds at a check (every `--every` steps) within `--after` steps.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.diffusion.config import coerce, make_config
from collapse_lab.trainer.families.diffusion.engine import DiffState, DiffusionEngine
from collapse_lab.trainer.families.diffusion.presets import PRESETS, values


def seeds_arg(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def holds(tick: dict[str, Any], expect: tuple[str, str, float]) -> bool:
    metric, op, value = expect
    return tick[metric] <= value if op == "at_most" else tick[metric] >= value


_CACHE: dict[tuple, dict[str, Any]] = {}


def train(knobs: dict[str, Any], seeds: list[int], every: int, switch: dict[str, Any] | None
          = None, after: int = 0, expect: tuple[str, str, float] | None = None
          ) -> dict[str, Any]:
    key = (tuple(sorted(knobs.items())), tuple(seeds), every,
           tuple(sorted((switch or {}).items())), after)
    if key in _CACHE:
        return _CACHE[key]
    cfgs = [make_config(dict(knobs, seed=s, device="cpu")) for s in seeds]
    eng = DiffusionEngine([DiffState.fresh(c) for c in cfgs], make_dataset(cfgs[0]),
                          torch.device("cpu"))
    steps = cfgs[0].steps
    total = steps + (after if switch else 0)
    met_at: list[int | None] = [None] * len(seeds)
    series: list[list[float]] = [[] for _ in seeds]
    t0 = time.perf_counter()
    ticks: dict[int, dict[str, Any]] = {}
    for s in range(1, total + 1):
        if switch is not None and s - 1 == steps:
            for i in range(eng.runs):
                eng.apply(i, switch)
        eng.step()
        if s % every == 0 or s == total:
            ticks = eng.tick()
            for i, t in ticks.items():
                series[i].append(t["memorised"])
                if (switch is not None and s > steps and expect is not None
                        and met_at[i] is None and holds(t, expect)):
                    met_at[i] = s - steps
    wall = time.perf_counter() - t0
    print(f"  {knobs.get('train_points')} points, {total} steps of {len(seeds)} seeds in "
          f"{wall:.0f} s", file=sys.stderr, flush=True)
    out = dict(final=[ticks[i] for i in range(eng.runs)], met_at=met_at, wall=wall,
               series=series)
    _CACHE[key] = out
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(x: float) -> str:
    return f"{100 * x:.0f}"


def span(xs: list[float]) -> str:
    return f"{pct(min(xs))}–{pct(max(xs))}"


def steps_span(met: list[int]) -> str:
    """The steps a claim took over seeds: "250" or "250–500"; "—" when no seed met it."""
    if not met:
        return "—"
    return f"{min(met):,}" if min(met) == max(met) else f"{min(met):,}–{max(met):,}"


def claim_text(expect: tuple[str, str, float]) -> str:
    metric, op, v = expect
    return f"{metric} {'≤' if op == 'at_most' else '≥'} {pct(v)} %"


def row(name: str, label: str, fin: list[dict[str, Any]], expect: tuple[str, str, float],
        steps: int, wall: float | None) -> str:
    n = len(fin)
    mem = [t["memorised"] for t in fin]
    cells = [label, claim_text(expect), f"{sum(holds(t, expect) for t in fin)}/{n}",
             pct(med(mem)), span(mem), pct(med([t["memorised_chance"] for t in fin])),
             f"{med([t['nn_distance'] for t in fin]):.3f}",
             pct(med([t["hq_fraction"] for t in fin])),
             f"{med([t['modes_covered'] for t in fin]):g}/{len(fin[0]['occupancy'])}",
             f"{steps:,}"]
    if wall is not None:
        cells.append(f"{wall:.0f}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-9")
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--every", type=int, default=250, help="steps between ticks")
    ap.add_argument("--from", dest="source", default="diffusion-memorise-circle")
    ap.add_argument("--switch", default="train_points=1024,weight_decay=1.0",
                    help="comma-separated knob=value[;knob=value]: each a live change after "
                    "--from's steps")
    ap.add_argument("--claim", default="memorised,at_most,0.2",
                    help="the claim of the switch: metric,op,value")
    ap.add_argument("--after", type=int, default=2000)
    ap.add_argument("--write", metavar="PAGE", help="put the section into this page (e.g. "
                    "docs/presets.md), between its markers")
    a = ap.parse_args()
    torch.set_num_threads(1)
    seeds = seeds_arg(a.seeds)
    t_all = time.perf_counter()
    rows, controls, switches = [], [], []
    for name in a.presets.split(","):
        p = PRESETS[name]
        assert p.expect is not None
        r = train(values(name), seeds, a.every)
        rows.append(row(name, f"`{name}`", r["final"], p.expect, values(name)["steps"],
                        r["wall"]))
        if p.control:
            knobs = {**values(name), **p.control}
            c = train(knobs, seeds, a.every)
            off = ", ".join(f"{k}={v}" for k, v in p.control.items())
            controls.append(row(name, f"`{name}` with {off}", c["final"], p.expect,
                                knobs["steps"], None))
    metric, op, value = a.claim.split(",")
    expect = (metric, op, float(value))
    src = values(a.source)
    for text in filter(None, a.switch.split(",")):
        change = {k: coerce(k, v) for k, v in (kv.split("=", 1) for kv in text.split(";"))}
        r = train(src, seeds, a.every, switch=change, after=a.after, expect=expect)
        met = [m for m in r["met_at"] if m is not None]
        label = ", ".join(f"{k}={v}" for k, v in change.items())
        before = [s[src["steps"] // a.every - 1] for s in r["series"]]
        switches.append(
            f"| `{a.source}` → {label} | {src['steps']:,} | {claim_text(expect)} | "
            f"{len(met)}/{len(seeds)} | {steps_span(met)} | "
            f"{pct(med(before))} | {pct(med([t['memorised'] for t in r['final']]))} |")
    section = document(a, rows, controls, switches, time.perf_counter() - t_all)
    print("\n".join(section))
    if a.write:
        write_block(Path(a.write), section)


FINDINGS = """\
**What "generalise" means with 8 points.** More data is the only twin whose samples lie on the
circle as the data's do (high quality as often as the memorising model's, every arc covered).
Weight decay and stopping early do not copy the training points, but their samples are the
training points blurred: a third of them or fewer lie within 3 std of the circle. With 8 points
there is little else to learn; the honest rescue is more data.

**What the search found besides the presets** (5 seeds, the memorising preset's knobs unless
said): dropout 0.2 only halves memorisation at 3,300 steps (22–36 % against 57–84 %), and 0.5
keeps it at 2–13 % but blurs the samples (as few as 2 arcs covered); weight decay 0.3 leaves
11–35 %; an exponential moving average of the weights (0.999) delays memorisation, it does not
prevent it (0–2 % at 1,300 steps, 34–67 % at 3,300); a learning rate of 1e-2 memorises faster
early (11–36 % at 500 steps against 5–18 %) but no more by 3,000; 20 noise levels instead of 50
memorise as much; width 128 with batch 256 memorises faster (47–74 % at 1,500 steps against
33–57 %) at a higher cost a step."""


BEGIN, END = "<!-- diffusion: bench/diffusion_presets.py -->", "<!-- /diffusion -->"
HEAD = ("| preset | claim | success | median memorised % | memorised % (seeds) | median by "
        "chance % | median distance to training | median high quality % | median covered | "
        "steps")


def document(a: argparse.Namespace, rows: list[str], controls: list[str], switches: list[str],
             total_s: float) -> list[str]:
    out = [BEGIN, "## Diffusion: memorisation of a small training set", "",
           "Generated by `python bench/diffusion_presets.py --seeds 0-9 --write docs/presets.md` "
           "(this block only). A preset's seeds train as one stack on the CPU with one thread. "
           "A sample is *memorised* when it lies nearer a training point than a tenth of the "
           "training points' spacing; *by chance* is the same share for fresh points of the "
           "data, what a model that learned the distribution would score (docs/families.md). "
           "*Success* means the final tick meets the claim; each tick measures 512 samples.", "",
           f"Seeds {a.seeds}; torch {torch.__version__}, {platform.machine()}, "
           f"{datetime.date.today()}; {total_s / 60:.1f} min in all (a shared 2-core machine).",
           "", HEAD + " | wall s (10 seeds) |", "|---" * 11 + "|", *rows]
    if controls:
        out += ["", "### Controls: each twin with its remedy switched off", "",
                HEAD + " |", "|---" * 10 + "|", *controls]
    if switches:
        out += ["", "### Switching a memorising run live", "",
                f"Each seed's `{a.source}` run trains its {values(a.source)['steps']:,} steps, "
                "then the change arrives as one live change and the run trains on; a seed "
                f"counts when the claim holds at a check (every {a.every} steps) within "
                f"{a.after:,} steps of the switch.", "",
                f"| switch | at step | claim | met within {a.after:,} steps | steps to meet it | "
                f"median memorised % before | median memorised % at +{a.after:,} |",
                "|---|---|---|---|---|---|---|", *switches]
    out += ["", "### What each preset is for", ""]
    for name in a.presets.split(","):
        out.append(f"- **`{name}`** — {PRESETS[name].help}")
    out += ["", FINDINGS, END]
    return out


def write_block(path: Path, section: list[str]) -> None:
    """Replace the block between BEGIN and END in `path` (or append it)."""
    text = path.read_text() if path.exists() else ""
    block = "\n".join(section)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
