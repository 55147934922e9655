"""The families' numbers do not move when their code does: seed 0, GAN stacks that reach every
part of the step (objectives mixed per run, penalties, clipping, unrolling, batch features,
packing, simultaneous updates, a split step) and evolution stacks (selection, sharing, crowding,
islands), trained here and compared with tests/golden/seed0.json.

On the platform that wrote the file (torch version, CPU capability, machine) the comparison is
to the last bit: every final stat, a hash of every run's exported state (weights, optimizer
moments, random stream) and of its tick's pictures. Elsewhere a float32 kernel may round
differently, so the stats and the weights' norms are compared within 1e-3 relative — a wrong
value (a learning rate 1 % off, a term dropped) moves them by more. Rewrite the file only for a
change meant to move the numbers: `COLLAPSE_LAB_WRITE_GOLDEN=1 pytest tests/test_numbers_kept.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from collapse_lab.trainer import families
from collapse_lab.trainer.data import make_dataset

GOLDEN = Path(__file__).resolve().parent / "golden" / "seed0.json"
BASE = dict(seed=0, batch_size=48, g_width=24, d_width=24, z_dim=4, eval_samples=300,
            grid_size=12, device="cpu", cuda_graph="off", mbd_kernels=3, mbd_dim=2)
STEPS = 12
# name -> the knobs of each run of one stack (runs of a stack share its shape, not its values)
CASES = {
    "nsgan": [{}],
    "mixed-objectives": [{"objective": "nsgan"}, {"objective": "wgan-gp", "lr_d": 2e-3},
                         {"objective": "hinge", "seed": 1}],
    "penalties": [{"objective": "wgan-gp"}, {"gp": 5.0, "r1": 1.0, "entropy": 0.5}],
    "clipping": [{"objective": "wgan", "n_critic": 3, "optimizer": "rmsprop"}],
    "unrolled": [{"unroll": 2}],
    "batch-features": [{"minibatch_disc": True, "mbstd": True, "pack": 2, "g_batchnorm": True,
                        "d_maxout": 2, "init_std": 0.02}],
    "simultaneous": [{"simultaneous": True, "spectral_norm": True}],
}
EVO = dict(family="evolution", seed=0, population=64, grid_size=12, device="cpu")
EVO_CASES = {
    "evolution-selection": [{}, {"selection": "truncation", "seed": 1},
                            {"crossover_rate": 0.0, "mutation_rate": 0.5}],
    "evolution-remedies": [{"sharing_radius": 0.75, "immigrants": 0.1},
                           {"crowding": True}, {"islands": 4, "migration": 0.05}],
}
RTOL = 1e-3


def platform_key() -> dict[str, str]:
    return dict(torch=torch.__version__, cpu=torch.backends.cpu.get_cpu_capability(),
                machine=platform.machine())


def digest(*arrays: object) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().contiguous().numpy()
        if isinstance(a, np.ndarray):
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(json.dumps(a, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def tensors(value: object) -> list[object]:
    """Every tensor and number of an exported state's field, in a fixed order."""
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in [k, *tensors(value[k])]]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in tensors(v)]
    return [value]


def state_digest(st: object) -> str:
    """The exported state without its config and wall time: weights, optimizer moments and step
    counts, the random stream, the population, the partial tick."""
    fields = sorted(f.name for f in dataclasses.fields(st)  # type: ignore[arg-type]
                    if f.name not in ("cfg", "elapsed"))
    return digest(*[x for name in fields for x in [name, *tensors(getattr(st, name))]])


def norms(st: object) -> dict[str, float]:
    """Norms of the weights (GAN) or the population (evolution), for other platforms."""
    nets = {n: getattr(st, n) for n in ("G", "D", "pop") if hasattr(st, n)}
    return {n: float(torch.cat([p.flatten().double() for p in
                                (v.values() if isinstance(v, dict) else [v])]).norm())
            for n, v in nets.items()}


def train(base: dict, knob_sets: list[dict]) -> list[dict]:
    cfgs = [families.make_config({**base, **k}) for k in knob_sets]
    fam = families.of(cfgs[0])
    data = make_dataset(cfgs[0]).to("cpu")
    eng = fam.engine([fam.fresh(c, data) for c in cfgs], data, torch.device("cpu"))
    for s in range(STEPS):
        eng.step(norms=s == STEPS - 1)
    if "d" in fam.parts:
        eng.step(part="d")  # a teacher's split step
        eng.step(norms=True, part="g")
    ticks = eng.tick(pictures=range(eng.runs), manifolds=range(eng.runs))
    out = []
    for i in range(eng.runs):
        t, st = ticks[i], eng.export(i)
        stats = {k: float(v) for k, v in t.items()
                 if isinstance(v, (int, float, np.floating)) and k not in ("time", "steps_per_sec")}
        pics = [t[k] for k in ("samples", "nearest", "hq", "occupancy", "value_grid", "manifold")
                if k in t]
        out.append(dict(stats=stats, norms=norms(st), state=state_digest(st),
                        pictures=digest(*pics, t.get("panels"))))
    return out


@pytest.fixture(scope="module")
def results() -> dict[str, list[dict]]:
    torch.set_num_threads(1)
    out = {name: train(BASE, knobs) for name, knobs in CASES.items()}
    out.update({name: train(EVO, knobs) for name, knobs in EVO_CASES.items()})
    return out


def test_the_gan_trains_to_the_recorded_numbers(results):
    if os.environ.get("COLLAPSE_LAB_WRITE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(dict(platform=platform_key(), steps=STEPS, cases=results),
                                     indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert set(golden["cases"]) == set(results)
    exact = golden["platform"] == platform_key()
    for name, runs in results.items():
        want = golden["cases"][name]
        assert len(runs) == len(want), name
        for i, (got, ref) in enumerate(zip(runs, want, strict=True)):
            where = f"{name}, run {i}"
            assert set(got["stats"]) == set(ref["stats"]), where
            for k, v in ref["stats"].items():
                g = got["stats"][k]
                if exact:
                    assert g == v or (math.isnan(g) and math.isnan(v)), f"{where}: {k} {g} != {v}"
                else:
                    assert g == pytest.approx(v, rel=RTOL, abs=1e-6), f"{where}: {k}"
            for net, v in ref["norms"].items():
                assert got["norms"][net] == pytest.approx(v, rel=1e-12 if exact else RTOL), where
            if exact:
                assert got["state"] == ref["state"], f"{where}: weights, moments or stream moved"
                assert got["pictures"] == ref["pictures"], f"{where}: the tick's pictures moved"


def test_the_cases_reach_what_they_are_named_for(results):
    """Each case exercises its part of the step (else a golden value proves little)."""
    by_name = {n: [families.make_config({**BASE, **k}) for k in ks] for n, ks in CASES.items()}
    assert len({c.objective for c in by_name["mixed-objectives"]}) == 3
    assert all(c.gp_weight > 0 for c in by_name["penalties"])
    assert by_name["clipping"][0].n_critic == 3
    for runs in results.values():
        for r in runs:
            assert all(math.isfinite(v) for v in r["stats"].values())
    # runs of one stack that differ in a value end apart
    for name in ("mixed-objectives", "evolution-selection", "evolution-remedies"):
        assert len({r["state"] for r in results[name]}) == 3, name
