"""Search a preset's neighbourhood fast: many value variants of one config on several seeds, trained
as stacked engines, with modes covered read off at checkpoints.

This is how candidate presets are found before `bench/calibrate_presets.py` measures them
properly. Variants that differ only in values (learning rates, betas, penalty weights, the
objective) and seeds share one stacked engine (trainer/families/gan/engine.py) — on two threads
that is
roughly twice the run-steps per second of training them one by one — and each run follows the
series it has alone, so its numbers are those of `collapse-lab train` with the same knobs.

    python bench/search_presets.py --preset collapse-ring8 --vary objective=wgan-gp \\
        --vary lr_g=5e-4,1e-3 --vary beta1=0,0.5 --seeds 0,1 --steps 6000 --every 1000

Prints, per variant, modes covered at each checkpoint (one number per seed), the final HQ % and
effective modes, and the largest hop between consecutive ticks over the run (after the switch,
with `--live-at`; `--tick` steps apart;
the dashboard's default is 20) with the share of seeds on which it exceeds 0.5.

With `--live-at N` every run starts from the preset alone and the variant's values (with
`--set`'s) arrive as one live change at step N, as the dashboard's "Switch this run to the preset"
sends them: the search for knobs that rescue a run which has already collapsed. The steps before
the switch are trained once a seed; each variant goes on from a copy of that state.

    python bench/search_presets.py --preset collapse-ring8 --live-at 3000 --steps 6000 \\
        --set objective=wgan-gp --vary lr_g=5e-4,1e-3 --seeds 0-9 --every 500
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collapse_lab.trainer.commands import Rejected  # noqa: E402
from collapse_lab.trainer.families.gan.config import make_config  # noqa: E402
from collapse_lab.trainer.loop import Callbacks, Trainer  # noqa: E402
from collapse_lab.trainer.registry import preset_values  # noqa: E402
from collapse_lab.trainer.sweep import grid, parse_seeds, parse_vary  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", required=True)
    ap.add_argument("--vary", action="append", default=[], help="KNOB=V1,V2,... (repeatable)")
    ap.add_argument("--set", action="append", default=[],
                    help="KNOB=VALUE for every variant (with --live-at, part of its live change)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--every", type=int, default=1000, help="steps between checkpoints")
    ap.add_argument("--tick", type=int, default=20, help="steps between ticks (hops are measured "
                    "between consecutive ticks)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--live-at", type=int, default=0,
                    help="apply each variant's values as a live change at this step")
    ap.add_argument("--fresh-d", action="store_true",
                    help="with --live-at: D (weights and optimizer moments) starts afresh at the "
                    "switch, as at step 0")
    a = ap.parse_args()
    if a.live_at and not 0 < a.live_at < a.steps:
        ap.error(f"--live-at must be between 0 and --steps ({a.steps}), got {a.live_at}")
    if a.fresh_d and not a.live_at:
        ap.error("--fresh-d goes with --live-at")
    torch.set_num_threads(a.threads)
    fixed = dict(preset_values(a.preset))
    common = {k: vs[0] for k, vs in parse_vary(a.set)}
    variants = grid(parse_vary(a.vary)) or [("base", {})]
    if a.live_at:  # --set's values travel with each variant's live change
        variants = [(label, dict(common, **ov)) for label, ov in variants]
    else:
        fixed.update(common)
    seeds = parse_seeds(a.seeds)
    checkpoints = [s for s in range(a.every, a.steps + 1, a.every) if s > a.live_at]
    # results[label][seed] = (covered per checkpoint, final hq %, final effective modes)
    results: dict[str, dict[int, tuple[list[int], float, float]]] = {v[0]: {} for v in variants}
    t0 = time.perf_counter()
    trainer = Trainer()
    covered: dict[tuple[str, int], list[int]] = {}
    last: dict[tuple[str, int], dict] = {}
    max_hop: dict[tuple[str, int], float] = {}

    def on_tick(key: tuple[str, int], tick: dict) -> None:
        max_hop[key] = max(max_hop.get(key, 0.0), tick["hopping"])
        if tick["step"] > a.live_at and tick["step"] % a.every == 0:
            covered.setdefault(key, []).append(tick["modes_covered"])
            last[key] = tick

    def on_end(key: tuple[str, int], status: str, why: str) -> None:
        print(f"# seed {key[1]} {key[0]}: {status}, covered {covered.get(key)} "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    def cfg_for(seed: int, ov: dict) -> object:
        return make_config(dict(fixed, **ov, seed=seed, steps=a.steps, tick_every=a.tick,
                                threads=a.threads))

    def on_event(key: tuple[str, int], event: Any) -> None:
        if isinstance(event, Rejected):  # a value that cannot change live: say so, stop
            sys.exit(f"{key[0]}: {event.field}: {event.message}")

    def callbacks(key: tuple[str, int]) -> Callbacks:
        return Callbacks(on_tick=lambda t: on_tick(key, t),
                         on_end=lambda st, why: on_end(key, st, why),
                         on_event=lambda e: on_event(key, e),
                         want_picture=lambda: False)

    if a.live_at:
        # the steps before the switch are the same for every variant: train them once a seed,
        # then each variant goes on from a copy of that state with its values applied live
        pre = Trainer()
        pre.add_many([(str(seed), cfg_for(seed, {}), Callbacks(want_picture=lambda: False))
                      for seed in seeds])
        while any(r.step < a.live_at for r in pre.runs.values()):
            pre.advance()
        states = {seed: pre.state(str(seed)) for seed in seeds}
        print(f"# {a.live_at} steps before the switch ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
        if a.fresh_d:
            for st in states.values():
                st.D, st.opt_d = pre._fresh(st.cfg).D, None
        trainer.add_many([(f"{label}|{seed}", copy.deepcopy(states[seed]),
                           callbacks((label, seed)))
                          for seed in seeds for label, _ in variants], tick=False)
        for label, ov in variants:
            for seed in seeds:
                trainer.command(f"{label}|{seed}", {"set": ov})
    else:
        # every variant on every seed in one driver: the runs that share a step's shape train
        # as one stacked engine, whatever their seeds and values
        trainer.add_many([(f"{label}|{seed}", cfg_for(seed, ov), callbacks((label, seed)))
                          for seed in seeds for label, ov in variants])
    while trainer.active():
        trainer.advance()
    for label, _ in variants:
        for seed in seeds:
            t = last[(label, seed)]
            results[label][seed] = (covered[(label, seed)], 100 * t["hq_fraction"],
                                    t["effective_modes"])
    head = " ".join(f"{c:>{3 * len(seeds) + 1}}" for c in checkpoints)
    print(f"preset {a.preset}, seeds {a.seeds}, covered at each checkpoint (one digit per seed)")
    print(f"{'variant':<44} {head}  {'med HQ %':>8} {'med eff':>7} {'max hop':>7} {'>0.5':>5}")
    for label, _ in variants:
        per_seed = results[label]
        cols = " ".join(
            f"{'/'.join(str(per_seed[s][0][k]) for s in seeds):>{3 * len(seeds) + 1}}"
            for k in range(len(checkpoints)))
        hq = statistics.median(per_seed[s][1] for s in seeds)
        eff = statistics.median(per_seed[s][2] for s in seeds)
        hops = [max_hop[(label, s)] for s in seeds]
        big = sum(h > 0.5 for h in hops)
        print(f"{label:<44} {cols}  {hq:>8.1f} {eff:>7.2f} {statistics.median(hops):>7.2f} "
              f"{big:>2}/{len(seeds):<2}")


if __name__ == "__main__":
    main()
