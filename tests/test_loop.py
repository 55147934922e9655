import itertools

import pytest
import torch

from collapse_lab.trainer.config import OBJECTIVES, ConfigError, make_config
from collapse_lab.trainer.loop import Callbacks, Diverged, Trainer, run

REMEDY_SETTINGS = {
    "none": {},
    "gp": {"gp": 5.0},
    "r1": {"r1": 1.0},
    "minibatch_disc": {"minibatch_disc": True, "mbd_kernels": 4},
    "mbstd": {"mbstd": True},
    "unroll": {"unroll": 2},
    "spectral_norm": {"spectral_norm": True},
    "entropy": {"entropy": 0.1},
}


def scalars(tick):
    return {k: v for k, v in tick.items()
            if isinstance(v, (int, float)) and k not in ("time", "steps_per_sec")}


def valid_combinations():
    for obj, rem in itertools.product(OBJECTIVES, REMEDY_SETTINGS):
        try:
            make_config(dict(objective=obj, **REMEDY_SETTINGS[rem]))
        except ConfigError:
            continue
        yield obj, rem


@pytest.mark.parametrize("objective,remedy", list(valid_combinations()))
def test_every_valid_combination_trains_200_steps(objective, remedy, small):
    cfg = make_config(dict(small, objective=objective, steps=200, tick_every=100,
                           **REMEDY_SETTINGS[remedy]))
    last = run(Trainer(cfg))
    assert last["step"] == 200
    assert all(v == v for v in scalars(last).values())  # no NaN
    if remedy == "gp" or objective == "wgan-gp":
        assert last["term_gp"] > 0
    if remedy == "r1":
        assert last["term_r1"] > 0


def test_invalid_combinations_are_refused_with_a_reason():
    with pytest.raises(ConfigError) as e:
        make_config(dict(objective="wgan", gp=10))
    assert e.value.field == "gp" and "wgan-gp" in e.value.message
    with pytest.raises(ConfigError) as e:
        make_config(dict(unroll=5, optimizer="rmsprop"))
    assert e.value.field == "unroll"
    with pytest.raises(ConfigError) as e:
        make_config(dict(minibatch_disc=True, batch_size=2048))
    assert e.value.field == "batch_size"


def test_bad_values_name_the_knob_and_range():
    with pytest.raises(ConfigError) as e:
        make_config(dict(lr_g=5))
    assert e.value.field == "lr_g" and "[1e-06, 0.1]" in e.value.message
    with pytest.raises(ConfigError) as e:
        make_config(dict(objective="wgan2"))
    assert "nsgan" in e.value.message
    with pytest.raises(ConfigError):
        make_config(dict(steps=True))
    with pytest.raises(ConfigError):
        make_config(dict(n_critic=2.5))


def test_midrun_switch_changes_objective_and_bumps_version(small):
    cfg = make_config(dict(small, objective="nsgan", steps=60, tick_every=10))
    t = Trainer(cfg)
    ticks, events = [], []

    def poll(timeout):
        return [{"set": {"objective": "wgan-gp"}}] if t.step == 30 and not events else []

    run(t, Callbacks(on_tick=ticks.append, on_event=events.append, poll=poll))
    assert [e["type"] for e in events] == ["config"]
    assert events[0]["step"] == 30 and events[0]["changes"] == {"objective": "wgan-gp"}
    assert t.objective.name == "wgan-gp"
    before = [x for x in ticks if x["step"] <= 30]
    after = [x for x in ticks if x["step"] > 30]
    assert all(x["config_version"] == 0 for x in before)
    assert all(x["config_version"] == 1 for x in after)
    assert all(x["term_gp"] == 0 for x in before) and all(x["term_gp"] > 0 for x in after)


def test_bad_live_change_is_rejected_and_run_continues(small):
    t = Trainer(make_config(dict(small, objective="wgan", steps=20)))
    events = []
    sent = []

    def poll(timeout):
        if not sent:
            sent.append(1)
            return [{"set": {"gp": 5}}, {"set": {"z_dim": 3}}, {"set": {"lr_d": 2.0}}]
        return []

    last = run(t, Callbacks(on_event=events.append, poll=poll))
    assert [e["type"] for e in events] == ["rejected"] * 3
    assert [e["field"] for e in events] == ["gp", "z_dim", "lr_d"]
    assert last["step"] == 20 and t.version == 0 and t.cfg.gp is None


def test_pause_single_step_resume_stop(small):
    t = Trainer(make_config(dict(small, steps=1000, tick_every=50)))
    script = {5: [{"action": "pause"}], 6: [{"action": "step", "n": 3}]}
    calls = {"n": 0}
    ticks = []

    def poll(timeout):
        calls["n"] += 1
        if calls["n"] == 12:
            return [{"action": "stop"}]
        return script.get(calls["n"], [])

    run(t, Callbacks(on_tick=ticks.append, poll=poll))
    # 4 steps before the pause, 3 single steps while paused, then stopped
    assert t.step == 7
    assert [x["step"] for x in ticks] == [0, 5, 6, 7]


def test_same_seed_same_series(small):
    def series():
        out = []
        run(Trainer(make_config(dict(small, steps=60, seed=3))), Callbacks(on_tick=out.append))
        return [scalars(x) | {"occ": x["occupancy"]} for x in out]

    a, b = series(), series()
    assert a == b
    c = []
    run(Trainer(make_config(dict(small, steps=60, seed=4))), Callbacks(on_tick=c.append))
    assert scalars(c[-1]) != a[-1]


@pytest.mark.parametrize("extra", [{}, {"unroll": 2, "spectral_norm": True, "mbstd": True}])
def test_save_restore_continue_matches_uninterrupted(small, tmp_path, extra):
    cfg = make_config(dict(small, steps=40, **extra))
    full = Trainer(cfg)
    run(full)
    half = Trainer(cfg.replace(steps=20))
    run(half)
    half.save(tmp_path / "ckpt.pt")
    resumed = Trainer.restore(tmp_path / "ckpt.pt")
    resumed.apply({"steps": 40})
    run(resumed)
    for a, b in zip(full.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(full.D.state_dict().values(), resumed.D.state_dict().values()):
        assert torch.equal(a, b)


def test_nan_fails_the_run(small):
    t = Trainer(make_config(dict(small, steps=100)))

    def poison(tick):
        if tick["step"] == 10:
            with torch.no_grad():
                t.G.layers[0].weight.fill_(float("nan"))

    with pytest.raises(Diverged, match="NaN"):
        run(t, Callbacks(on_tick=poison))


def test_live_remedy_switch_keeps_d_output(small):
    """Batch features switched on start with zero head weights: D is unchanged at the switch."""
    t = Trainer(make_config(dict(small, steps=10)))
    run(t)
    x = torch.randn(1, 64, 2)
    with torch.no_grad():
        before = t._d_scores(x)
        t.apply({"minibatch_disc": True, "mbstd": True})
        after = t._d_scores(x)
    assert torch.allclose(before, after, atol=1e-6)
    assert t.version == 1


def test_tick_carries_picture_for_2d(small):
    t = Trainer(make_config(dict(small, steps=10)))
    tick = t.tick()
    assert tick["samples"].shape == (500, 2)
    assert tick["value_grid"].shape == (16, 16)
    assert len(tick["occupancy"]) == 8 and len(tick["extent"]) == 4
    p = t.objective.value(torch.zeros(1))
    assert 0 <= float(tick["value_grid"].min()) and float(tick["value_grid"].max()) <= 1
    assert float(p) == 0.5


def test_tick_without_picture_skips_only_the_landscape(small):
    t = Trainer(make_config(dict(small, steps=10)))
    with_pic, without = t.tick(picture=True), Trainer(make_config(dict(small, steps=10))).tick(
        picture=False)
    assert "value_grid" in with_pic and "value_grid" not in without
    assert with_pic["occupancy"] == without["occupancy"]
    assert (with_pic["samples"] == without["samples"]).all()


def test_steps_zero_trains_until_stopped(small):
    """steps 0 = until stopped: the loop goes on past any step count until told to stop."""
    cfg = make_config(dict(small, steps=0, tick_every=50))
    trainer = Trainer(cfg)
    last = run(trainer, Callbacks(should_stop=lambda: trainer.step >= 137))
    assert trainer.step == 137 and last["step"] == 137  # a last tick at the stop
    # and a live change to a finite length ends it there
    trainer = Trainer(cfg)
    sent = []

    def poll(timeout):
        if trainer.step == 30 and not sent:
            sent.append(1)
            return [{"set": {"steps": 40}}]
        return []

    assert run(trainer, Callbacks(poll=poll))["step"] == 40
