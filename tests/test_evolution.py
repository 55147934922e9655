"""The evolution family: its landscape, its operators against their definitions, stacked runs
against runs alone, and the collapse and its remedies on small seeded populations.

The bounds of the dynamics tests come from measured runs (docs/presets.md has the ten-seed
tables at full size); here a population of 256 on the ring, 120 generations, five seeds — a
few seconds in all.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.evolution import ga
from collapse_lab.trainer.families.evolution.config import make_config, validate_changes
from collapse_lab.trainer.families.evolution.engine import EvolutionEngine, EvoState
from collapse_lab.trainer.families.evolution.landscape import Landscape
from collapse_lab.trainer.knobs import ConfigError

BASE = dict(dataset="ring8", population=256, grid_size=16, device="cpu", tournament_size=2)
SEEDS = (0, 1, 2, 3, 4)


def engine(*knob_sets: dict) -> EvolutionEngine:
    cfgs = [make_config({**BASE, **k}) for k in knob_sets]
    data = make_dataset(cfgs[0])
    return EvolutionEngine([EvoState.fresh(c) for c in cfgs], data, torch.device("cpu"))


def covered(knobs: dict, gens: int = 120) -> list[int]:
    eng = engine(*({**knobs, "seed": s} for s in SEEDS))
    for _ in range(gens):
        eng.step()
    t = eng.tick()
    return [t[i]["modes_covered"] for i in range(eng.runs)]


def params(n_runs: int = 1, **kw) -> ga.Params:
    d = dict(tournament=2, truncation=0.2, use_truncation=False, crossover=0.0, alpha=0.0,
             mutation=0.0, sigma_mut=0.05, share_radius=0.0, share_alpha=1.0, crowding=False,
             immigrants=0.0, islands=1, migration=0.0)
    d.update(kw)
    out = {}
    for k, v in d.items():
        dtype = (torch.long if isinstance(v, int) and not isinstance(v, bool)
                 else torch.bool if isinstance(v, bool) else torch.float32)
        out[k] = torch.full((n_runs,), v, dtype=dtype)
    return ga.Params(**out)


# ---------------------------------------------------------------------------- landscape
def test_the_landscape_has_one_peak_of_height_one_per_mode():
    data = make_dataset(make_config({"dataset": "ring8"}))
    land = Landscape(data)
    peaks = land(data.centres[None], [0.25])[0]
    assert torch.allclose(peaks, torch.ones(8), atol=1e-3)
    # halfway between two neighbouring centres: two tails of width √(0.02² + 0.25²)
    mid = (data.centres[0] + data.centres[1])[None, None] / 2
    half = float((data.centres[0] - data.centres[1]).norm()) / 2
    s2 = 0.02**2 + 0.25**2
    expect = 2 * math.exp(-half**2 / (2 * s2))
    assert float(land(mid, [0.25])) == pytest.approx(expect, rel=0.02)
    assert float(land(torch.zeros(1, 1, 2), [0.25])) < 1e-6  # the ring's empty middle


def test_a_dataset_that_is_not_a_mixture_gets_a_density_estimate_with_peaks_on_its_modes():
    data = make_dataset(make_config({"dataset": "lines"}))
    land = Landscape(data)
    on = land(torch.tensor([[[0.0, 1.0], [0.5, -2.0]]]), [0.25])[0]
    off = land(torch.tensor([[[0.0, 1.5], [0.0, 3.0]]]), [0.25])[0]
    assert float(on.min()) > 0.5 and float(off.max()) < 0.2


def test_digits_is_refused_naming_the_dataset():
    with pytest.raises(ConfigError) as e:
        make_config({"dataset": "digits"})
    assert e.value.field == "dataset"


# ---------------------------------------------------------------------------- operators
def test_sharing_divides_by_the_niche_count_of_the_definition():
    pop = torch.tensor([[[0.0, 0.0], [0.3, 0.0], [2.0, 0.0]]])
    f = torch.tensor([[1.0, 0.5, 0.8]])
    out = ga.shared(f, pop, params(share_radius=0.75, share_alpha=1.0))
    sh = 1 - 0.3 / 0.75  # the only pair within the radius
    assert torch.allclose(out, torch.tensor([[1 / (1 + sh), 0.5 / (1 + sh), 0.8]]))
    assert torch.equal(ga.shared(f, pop, params(share_radius=0.0)), f)


def test_tournament_picks_the_fittest_of_its_candidates():
    gen = torch.Generator().manual_seed(0)
    n = 64
    fe = torch.rand(1, n, generator=gen)
    d = ga.Draws.stack([ga.Draws.draw(n, gen, torch.device("cpu"))], torch.tensor([0]))
    for k in (1, 3, 16):
        got = ga.select(fe, params(tournament=k), d)[0]
        cand = (d.pick[0, :, :k] * n).long()
        assert torch.equal(fe[0, got], fe[0][cand].max(1).values)


def test_truncation_draws_only_from_the_best_fraction():
    gen = torch.Generator().manual_seed(1)
    n = 100
    fe = torch.randperm(n, generator=gen).float()[None]
    d = ga.Draws.stack([ga.Draws.draw(n, gen, torch.device("cpu"))], torch.tensor([0]))
    got = ga.select(fe, params(use_truncation=True, truncation=0.1), d)[0]
    assert float(fe[0, got].min()) >= n - 10


def test_islands_select_within_themselves_without_migration():
    n, islands = 64, 4
    fe = torch.rand(1, n, generator=torch.Generator().manual_seed(2))
    d = ga.Draws.stack([ga.Draws.draw(n, torch.Generator().manual_seed(3),
                                      torch.device("cpu"))], torch.tensor([0]))
    got = ga.select(fe, params(islands=islands, tournament=4), d)[0]
    child = torch.arange(n).repeat(2)
    assert torch.equal(got * islands // n, child * islands // n)
    moved = ga.select(fe, params(islands=islands, tournament=4, migration=1.0), d)[0]
    assert torch.equal(moved * islands // n, (child * islands // n + 1) % islands)


def test_crowding_never_lowers_an_individuals_fitness_slot_by_slot():
    eng = engine({"crowding": True, "mutation_rate": 1.0, "mutation_sigma": 0.5, "seed": 4})
    for _ in range(5):
        before = eng.fitness(eng.pop)
        eng.step()
        after = eng.fitness(eng.pop)
        assert bool((after >= before - 1e-6).all())


# ---------------------------------------------------------------------------- stacks
def test_stacked_runs_follow_the_series_they_follow_alone():
    knobs = [{"seed": 0}, {"seed": 1, "sharing_radius": 0.75, "crossover_rate": 0.0},
             {"seed": 2, "crowding": True}, {"seed": 3, "selection": "truncation",
                                             "islands": 3, "immigrants": 0.05}]
    stack = engine(*knobs)
    alone = [engine(k) for k in knobs]
    for _ in range(15):
        stack.step()
        for e in alone:
            e.step()
    for i, e in enumerate(alone):
        assert torch.equal(stack.pop[i], e.pop[0])


def test_a_run_saved_and_loaded_goes_on_with_the_same_series(tmp_path):
    straight = engine({"seed": 5, "sharing_radius": 0.5})
    moved = engine({"seed": 5, "sharing_radius": 0.5})
    for _ in range(10):
        straight.step()
        moved.step()
    moved.export(0).save(tmp_path / "run.pt")
    st = EvoState.load(tmp_path / "run.pt")
    assert st.cfg == moved.cfgs[0] and st.step == 10
    moved = EvolutionEngine([st], moved.data, torch.device("cpu"))
    for _ in range(10):
        straight.step()
        moved.step()
    assert torch.equal(straight.pop, moved.pop)
    assert int(moved.steps[0]) == 20


def test_a_live_change_is_validated_and_applied_at_the_next_generation():
    eng = engine({"seed": 0})
    change = validate_changes(eng.cfgs[0], {"sharing_radius": "0.75", "crowding": "on"},
                              live=True)
    ev = eng.apply(0, change)
    assert ev.changes == {"sharing_radius": 0.75, "crowding": True}
    assert ev.version == 1 and bool(eng.params.crowding[0])
    assert ev.config["family"] == "evolution" and ev.config["sharing_radius"] == 0.75
    with pytest.raises(ConfigError) as e:
        validate_changes(eng.cfgs[0], {"population": 128}, live=True)
    assert e.value.field == "population"
    with pytest.raises(ConfigError) as e:
        validate_changes(eng.cfgs[0], {"tournament_size": 40}, live=True)
    assert e.value.field == "tournament_size" and "[1, 16]" in e.value.message
    with pytest.raises(ConfigError) as e:
        validate_changes(eng.cfgs[0], {"family": "gan"}, live=True)
    assert e.value.field == "family"


def test_a_tick_reports_the_population_the_landscape_and_the_mode_metrics():
    eng = engine({"seed": 0, "sharing_radius": 0.75})
    t = eng.tick(pictures=[0])[0]
    assert t["samples"].shape == (256, 2) and t["value_grid"].shape == (16, 16)
    assert len(t["occupancy"]) == 8 and t["step"] == 0
    for k in ("fitness_mean", "fitness_max", "spread", "modes_covered", "effective_modes"):
        assert math.isfinite(t[k])
    assert 0 <= t["fitness_mean"] <= t["fitness_max"] <= 1.0 + 1e-6


def test_a_picture_tick_carries_the_fitness_histogram_panel_the_frame_sends():
    from collapse_lab.server.protocol import decode, encode_frame
    from collapse_lab.trainer.families.evolution.family import FAMILY

    eng = engine({"seed": 0}, {"seed": 1, "sharing_radius": 0.75})
    for _ in range(30):
        eng.step()
    t = eng.tick(pictures=[1])
    assert "panels" not in t[0]  # pictures only for the runs that get one
    (key,) = [p.key for p in FAMILY.frame.panels]
    h = t[1]["panels"][key]
    assert len(h["labels"]) == len(h["values"]) == 10 and h["unit"] == "%"
    assert sum(h["values"]) == pytest.approx(100, abs=1e-3)
    # the bars' mean (bin centres) is the population's mean fitness to within half a bin
    mean = sum((k + 0.5) / 10 * v / 100 for k, v in enumerate(h["values"]))
    assert abs(mean - t[1]["fitness_mean"]) <= 0.05
    got = decode(encode_frame(t[1])).scalars["panels"][key]
    assert got["labels"] == h["labels"] and got["ref"] is None
    assert got["values"] == pytest.approx([float(v) for v in h["values"]], rel=1e-3)


# ---------------------------------------------------------------------------- dynamics
def test_tournament_selection_with_blend_crossover_converges_onto_one_peak():
    assert max(covered({})) <= 2


def test_deterministic_crowding_keeps_the_peaks():
    assert min(covered({"crowding": True})) >= 6


def test_sharing_keeps_the_peaks_only_without_crossover():
    assert min(covered({"sharing_radius": 0.75, "crossover_rate": 0.0})) >= 6
    # children of parents on two peaks land in the valley: sharing with crossover loses peaks
    assert max(covered({"sharing_radius": 0.75})) <= 5


# ---------------------------------------------------------------------------- the family
def test_the_cli_lists_both_families_and_trains_an_evolution_preset(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def cli(*args: str) -> str:
        p = subprocess.run([sys.executable, "-m", "collapse_lab.server.cli", *args],
                           capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stderr
        return p.stdout

    reg = json.loads(cli("options", "--json"))
    fams = {f["name"]: f for f in reg["families"]}
    assert set(fams) >= {"gan", "evolution"}
    evo = fams["evolution"]
    assert {k["name"] for k in evo["knobs"]} >= {"sharing_radius", "crowding", "immigrants",
                                                 "islands", "tournament_size", "mutation_rate"}
    assert next(k for k in evo["knobs"] if k["name"] == "sharing_radius")["live"] is True
    assert evo["frame"]["landscape"] == "fitness"
    assert {r["name"] for r in evo["remedies"]} == {"sharing", "crowding", "immigrants",
                                                    "mutation", "islands"}
    preset = {p["name"]: p for p in reg["presets"]}["evolution-collapse-ring8"]
    assert preset["family"] == "evolution"
    assert preset["expect"] == {"metric": "modes_covered", "op": "at_most", "value": 2}
    out = json.loads(cli("train", "--preset", "evolution-collapse-ring8", "--steps", "60",
                         "--population", "256", "--json", "--data-dir", str(tmp_path)))
    assert out["config"]["family"] == "evolution" and out["final"]["step"] == 60
    assert out["final"]["modes_covered"] <= 2 and out["final"]["fitness_mean"] > 0.5
