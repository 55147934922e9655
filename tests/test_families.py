"""The family contract and its registry: configs name their family, old ones are GAN runs, a
command is checked once where it enters, and the registry's facts match what they describe."""

from __future__ import annotations

import pytest
import torch

from collapse_lab.trainer import commands, data, families, registry, stats
from collapse_lab.trainer.family import Claim, Stat
from collapse_lab.trainer.knobs import ConfigError


def test_a_config_names_its_family_and_an_old_one_is_a_gan_run():
    cfg = families.make_config({"steps": 10})
    assert cfg.family == "gan" and cfg.to_dict()["family"] == "gan"
    assert families.make_config(cfg.to_dict()) == cfg  # a stored config reads back
    old = {k: v for k, v in cfg.to_dict().items() if k != "family"}  # stored before families
    assert families.make_config(old) == cfg
    with pytest.raises(ConfigError) as e:
        families.make_config({"family": "nosuch"})
    assert e.value.field == "family" and "gan" in e.value.message
    with pytest.raises(ConfigError) as e:
        families.validate_changes(cfg, {"family": "evolution"}, live=False)
    assert e.value.field == "family"


def test_an_old_checkpoint_loads_as_a_gan_run(tmp_path):
    gan = families.get("gan")
    cfg = families.make_config({"g_width": 8, "d_width": 8, "eval_samples": 100})
    state = gan.fresh(cfg, data.make_dataset(cfg))
    d = state.to_dict()
    d["config"].pop("family")  # as written before families existed
    torch.save(d, tmp_path / "old.pt")
    back = families.load_checkpoint(tmp_path / "old.pt")
    assert back.cfg == cfg and back.step == 0
    assert all(torch.equal(back.G[k], state.G[k]) for k in state.G)


def test_a_command_is_checked_once_where_it_enters():
    cfg = families.make_config({})
    assert families.parse_command({"action": "pause"}, cfg) == commands.Pause()
    assert families.parse_command({"action": "step", "n": 3, "part": "d"}, cfg) == \
        commands.Step(n=3, part="d")
    s = families.parse_command({"set": {"lr_d": "1e-4", "objective": "hinge"}}, cfg)
    assert s == commands.Set({"lr_d": 1e-4, "objective": "hinge"})  # coerced: trusted as is
    for body, field in [({"action": "step", "n": 0}, "n"),
                        ({"action": "step", "n": True}, "n"),
                        ({"action": "step", "part": "x"}, "part"),
                        ({"action": "pause", "part": "d"}, "part"),
                        ({"action": "jump"}, "action"),
                        ({"set": {}}, "set"),
                        ({"set": {"z_dim": 8}}, "z_dim"),  # not live
                        ({"set": {"lr_d": 1.0}}, "lr_d")]:  # out of range
        with pytest.raises(ConfigError) as e:
            families.parse_command(body, cfg)
        assert e.value.field == field, body
    assert commands.body(commands.Step(2, "g")) == {"n": 2, "part": "g", "action": "step"}
    ev = commands.to_dict(commands.StateChanged("paused", 40))
    assert ev == {"type": "state", "state": "paused", "step": 40}
    assert commands.to_dict(commands.StateChanged("paused", 40, "disk full"))["reason"] == \
        "disk full"


def test_stats_say_how_they_are_shown():
    hq = next(s for s in stats.METRICS if s.name == "hq_fraction")
    assert hq.format(0.1234) == "12.3 %"
    assert Stat("t", "time", "tick", "", unit="s", fmt=".1f").format(12.345) == "12.3 s"
    assert Stat("n", "n", "metric", "", integer=True, fmt="d").format(3.0) == "3"
    with pytest.raises(ValueError):
        Stat("x", "x", "metric", "", show=("poster",))
    for fam in families.FAMILIES.values():
        names = [s.name for s in stats.scalars(fam)]
        assert len(names) == len(set(names)), fam.name
        assert set(names) <= set(registry.SCALAR_NAMES)


def test_datasets_say_how_many_modes_they_have():
    for name, spec in data.DATASETS.items():
        if name in ("csv", "digits"):  # a file's clusters; scikit-learn's download
            continue
        fam = next(f for f in families.FAMILIES.values() if name in f.datasets)
        cfg = families.make_config({"family": fam.name, "dataset": name})
        assert data.make_dataset(cfg).num_modes == spec.modes, name
    assert registry.claim_text("collapse-ring8") == "≤ 3 of 8 modes covered at the end"


def test_claims_are_machine_readable():
    c = registry.claim("collapse-ring8")
    assert c == Claim("modes_covered", "at_most", 3.0)
    assert c.holds({"modes_covered": 3}) and not c.holds({"modes_covered": 4})
    with pytest.raises(ValueError):
        Claim("modes_covered", "about", 3)


def test_a_panel_of_an_unknown_kind_is_refused_at_import_naming_the_kinds():
    from collapse_lab.trainer.family import PANEL_KINDS, Panel

    assert PANEL_KINDS == ("bars", "line", "heatmap", "images", "text")
    for kind in PANEL_KINDS:
        assert Panel("k", "label", kind).describe()["kind"] == kind
    with pytest.raises(ValueError, match="kind 'pie' not in"):
        Panel("k", "label", "pie")


def test_options_say_from_which_step_a_family_is_judged_and_what_a_card_shows_under_another():
    opts = registry.options()
    judge = {f["name"]: f["judge_from"] for f in opts["families"]}
    assert judge["gan"] == 500 and judge["evolution"] == 50
    assert all(isinstance(v, int) and v >= 0 for v in judge.values())
    names = {s["name"] for s in opts["stats"]}
    under = {s["name"]: s["under"] for s in opts["stats"] if s["under"]}
    assert {"steps_per_sec": "step", "modes_captured": "modes_covered"}.items() <= under.items()
    for host in under.values():  # each is written under a stat that has a card
        assert host in names
        assert "card" in next(s for s in opts["stats"] if s["name"] == host)["show"]


def test_options_mark_each_familys_main_knobs_for_the_panel():
    """The panel shows a family's `main` data and optimisation knobs up front (controls.js); the
    GAN's are the ones it always showed, and no family's main knobs are all under "more"."""
    fams = {f["name"]: f for f in registry.options()["families"]}
    main = {n: {k["name"] for k in f["knobs"] if k["main"]} for n, f in fams.items()}
    assert main["gan"] == {"dataset", "lr_g", "lr_d", "n_critic", "beta1"}
    assert main["vae"] == {"dataset", "lr"}
    assert main["diffusion"] == {"dataset", "train_points", "lr"}
    assert main["decoding"] == {"dataset", "lm_lr"} and main["evolution"] == {"dataset"}
    for f in fams.values():
        for k in f["knobs"]:
            assert isinstance(k["main"], bool)
            if k["main"]:  # a main knob is one a main section takes: data or optimisation
                assert k["group"] in ("data", "optim"), k


def test_each_family_welcomes_a_first_visit_with_its_own_preset():
    """The page's welcome (welcome.js) is the family's: a headline naming what collapses, and a
    first preset of its own whose hint names the preset it is rescued by."""
    opts = registry.options()
    family_of = {p["name"]: p["family"] for p in opts["presets"]}
    twins = {p["name"]: p["twin_of"] for p in opts["presets"]}
    for f in opts["families"]:
        w = f["welcome"]
        assert w["headline"].startswith("Watch ") and w["headline"].endswith("."), f["name"]
        assert family_of[w["preset"]] == f["name"]
        rescue = [n for n, t in twins.items() if t == w["preset"] and n in w["hint"]]
        assert rescue, (f["name"], w["hint"])  # the hint points to a calibrated twin
    heads = [f["welcome"]["headline"] for f in opts["families"]]
    assert len(set(heads)) == len(heads)
    assert sum("GAN" in h for h in heads) == 1


# a small, quick config of each family, CPU
_TINY = {
    "gan": dict(g_width=16, d_width=16, z_dim=4, batch_size=32, eval_samples=200, grid_size=8),
    "evolution": dict(dataset="ring8", population=64, grid_size=8),
    "vae": dict(latent=4, encoder_width=16, decoder_width=16, batch_size=16),
    "diffusion": dict(dataset="circle", width=16, depth=2, noise_levels=10, batch=32,
                      samples=64, sample_steps=5, grid_size=8),
    "decoding": dict(dataset="templates", hidden=16, embed=8),
}


@pytest.mark.parametrize("family", list(families.FAMILIES))
def test_runs_that_differ_only_in_threads_share_one_engine(family):
    """`threads` is a process-wide setting the step never reads: two runs that differ only in it
    stack (one engine); two that differ in a knob of the step's shape do not."""
    from collapse_lab.trainer.loop import Trainer

    assert set(_TINY) == set(families.FAMILIES)  # a new family: add its small config here
    base = dict(_TINY[family], family=family, device="cpu", steps=4)
    a, b = (families.make_config(dict(base, threads=t)) for t in (1, 2))
    assert families.stack_key(a) == families.stack_key(b)
    t = Trainer()
    t.add_many([("a", a, None), ("b", b, None)], tick=False)
    assert len(t.engines) == 1 and t.engines[0].runs == 2
    c = families.make_config(dict(base, threads=1, speed=5.0))  # a pace is the whole engine's
    assert families.stack_key(c) != families.stack_key(a)
    t.add("c", c, tick=False)
    assert len(t.engines) == 2
    torch.set_num_threads(1)  # the process-wide setting the runs above changed, put back


def test_a_vae_ignores_the_landscape_grid_so_it_does_not_split_a_stack():
    """A VAE draws no landscape: runs that differ in grid_size still stack."""
    a, b = (families.make_config(dict(_TINY["vae"], family="vae", grid_size=g))
            for g in (16, 64))
    assert families.stack_key(a) == families.stack_key(b)
    assert "grid_size" not in dict(families.stack_key(a)[1:])
