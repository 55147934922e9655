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
import time
from pathlib import Path
from typing import Any

import torch
from _preset_report import (
    knobs_text,
    machine_line,
    med,
    met,
    purposes,
    row,
    seeds_arg,
    table,
    train,
    write_block,
)

from collapse_lab.trainer.families.diffusion.config import coerce
from collapse_lab.trainer.families.diffusion.presets import PRESETS, values


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


def preset_row(label: str, fin: list[dict[str, Any]], expect: tuple[str, str, float],
               steps: int, wall: float | None) -> str:
    mem = [t["memorised"] for t in fin]
    cells = [label, claim_text(expect), met(fin, expect),
             pct(med(mem)), span(mem), pct(med([t["memorised_chance"] for t in fin])),
             f"{med([t['nn_distance'] for t in fin]):.3f}",
             pct(med([t["hq_fraction"] for t in fin])),
             f"{med([t['modes_covered'] for t in fin]):g}/{len(fin[0]['occupancy'])}",
             f"{steps:,}"]
    if wall is not None:
        cells.append(f"{wall:.0f}")
    return row(cells)


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
        r = train("diffusion", cpu(values(name)), seeds, a.every)
        rows.append(preset_row(f"`{name}`", r["final"], p.expect, values(name)["steps"],
                               r["wall"]))
        if p.control:
            knobs = {**values(name), **p.control}
            c = train("diffusion", cpu(knobs), seeds, a.every)
            controls.append(preset_row(f"`{name}` with {knobs_text(p.control)}", c["final"],
                                       p.expect, knobs["steps"], None))
    metric, op, value = a.claim.split(",")
    expect = (metric, op, float(value))
    src = values(a.source)
    for text in filter(None, a.switch.split(",")):
        change = {k: coerce(k, v) for k, v in (kv.split("=", 1) for kv in text.split(";"))}
        r = train("diffusion", cpu(src), seeds, a.every, switch=change, after=a.after,
                  expect=expect)
        ok = [m for m in r["met_at"] if m is not None]
        before = [ticks[src["steps"] // a.every - 1]["memorised"] for ticks in r["ticks"]]
        switches.append(row([f"`{a.source}` → {knobs_text(change)}", f"{src['steps']:,}",
                             claim_text(expect), f"{len(ok)}/{len(seeds)}", steps_span(ok),
                             pct(med(before)), pct(med([t["memorised"] for t in r["final"]]))]))
    section = document(a, rows, controls, switches, time.perf_counter() - t_all)
    print("\n".join(section))
    if a.write:
        write_block(Path(a.write), section, BEGIN, END)


def cpu(knobs: dict[str, Any]) -> dict[str, Any]:
    return dict(knobs, device="cpu")


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
HEAD = ("preset | claim | success | median memorised % | memorised % (seeds) | median by "
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
           machine_line(a.seeds, total_s), "", *table(HEAD + " | wall s (10 seeds)", rows)]
    if controls:
        out += ["", "### Controls: each twin with its remedy switched off", "",
                *table(HEAD, controls)]
    if switches:
        out += ["", "### Switching a memorising run live", "",
                f"Each seed's `{a.source}` run trains its {values(a.source)['steps']:,} steps, "
                "then the change arrives as one live change and the run trains on; a seed "
                f"counts when the claim holds at a check (every {a.every} steps) within "
                f"{a.after:,} steps of the switch.", "",
                *table(f"switch | at step | claim | met within {a.after:,} steps | steps to "
                       f"meet it | median memorised % before | median memorised % at "
                       f"+{a.after:,}", switches)]
    out += [*purposes(PRESETS, a.presets.split(",")), "", FINDINGS, END]
    return out


if __name__ == "__main__":
    main()
