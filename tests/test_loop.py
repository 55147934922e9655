"""The driver (trainer/loop.py): every combination trains, live changes, pause and single steps,
stops, divergence, determinism and the registry's refusals."""

import itertools

import pytest
import torch

from collapse_lab.trainer import families
from collapse_lab.trainer.families.gan.config import OBJECTIVES, ConfigError, make_config
from collapse_lab.trainer.loop import Callbacks, Trainer, run, train

# every remedy the GAN's registry declares, at its typical setting (smaller where that only
# costs time: fewer kernels, fewer unrolled steps)
_FASTER = {"minibatch_disc": {"mbd_kernels": 4}, "unroll": {"unroll": 2}}
REMEDY_SETTINGS = {"none": {}, **{r.name: {**r.typical, **_FASTER.get(r.name, {})}
                                  for r in families.get("gan").remedies}}


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


def one(cfg, *, ticks=None, events=None, script=None):
    """A Trainer with one run 'r'; `script(trainer, calls)` returns commands at each poll."""
    t = Trainer()
    ends = []
    t.add("r", cfg, Callbacks(on_tick=ticks.append if ticks is not None else None,
                              on_event=events.append if events is not None else None,
                              on_end=lambda s, why: ends.append((s, why))))
    calls = {"n": 0}

    def poll(timeout):
        calls["n"] += 1
        return [("r", c) for c in (script(t, calls["n"]) if script else [])]

    run(t, poll)
    return t, ends


@pytest.mark.parametrize("objective,remedy", list(valid_combinations()))
def test_every_valid_combination_trains_200_steps(objective, remedy, small):
    cfg = make_config(dict(small, objective=objective, steps=200, tick_every=100,
                           **REMEDY_SETTINGS[remedy]))
    last = train(cfg)
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
    ticks, events = [], []

    def script(t, n):
        return [{"set": {"objective": "wgan-gp"}}] if t.runs["r"].step == 30 and not events \
            else []

    t, _ = one(cfg, ticks=ticks, events=events, script=script)
    assert [e.type for e in events] == ["config"]
    assert events[0].step == 30 and events[0].changes == {"objective": "wgan-gp"}
    assert t.runs["r"].cfg.objective == "wgan-gp"
    before = [x for x in ticks if x["step"] <= 30]
    after = [x for x in ticks if x["step"] > 30]
    assert all(x["config_version"] == 0 for x in before)
    assert all(x["config_version"] == 1 for x in after)
    assert all(x["term_gp"] == 0 for x in before) and all(x["term_gp"] > 0 for x in after)


def test_bad_live_change_is_rejected_and_run_continues(small):
    events = []

    def script(t, n):
        return [{"set": {"gp": 5}}, {"set": {"z_dim": 3}}, {"set": {"lr_d": 2.0}}] if n == 1 \
            else []

    t, ends = one(make_config(dict(small, objective="wgan", steps=20)), events=events,
                  script=script)
    assert [e.type for e in events] == ["rejected"] * 3
    assert [e.field for e in events] == ["gp", "z_dim", "lr_d"]
    r = t.runs["r"]
    assert r.last["step"] == 20 and r.final.version == 0 and r.cfg.gp is None
    assert ends == [("done", "finished 20 steps")]


def test_pause_single_steps_resume_stop(small):
    ticks = []
    script = {5: [{"action": "pause"}], 6: [{"action": "step", "n": 3}],
              12: [{"action": "stop"}]}
    t, ends = one(make_config(dict(small, steps=1000, tick_every=50)), ticks=ticks,
                  script=lambda t, n: script.get(n, []))
    # 4 steps before the pause, 3 single steps while paused, then stopped
    assert t.runs["r"].step == 7
    assert [x["step"] for x in ticks] == [0, 5, 6, 7]
    assert ends == [("done", "stopped at step 7")]


def test_split_steps_train_one_network(small):
    """While paused, part "d" updates D alone and part "g" G alone; both tick."""
    t = Trainer()
    ticks = []
    t.add("r", make_config(dict(small, steps=100)), Callbacks(on_tick=ticks.append))
    t.command("r", {"action": "pause"})

    def snap():
        eng = t.runs["r"].engine
        return ([p.detach().clone() for p in eng.G.parameters()],
                [p.detach().clone() for p in eng.D.parameters() if p.grad is not None])

    g0, d0 = snap()
    t.command("r", {"action": "step", "part": "d"})
    t.advance()
    g1, d1 = snap()
    assert all(torch.equal(a, b) for a, b in zip(g0, g1)) and t.runs["r"].step == 0
    assert any(not torch.equal(a, b) for a, b in zip(d0, d1))
    t.command("r", {"action": "step", "part": "g"})
    t.advance()
    g2, d2 = snap()
    assert any(not torch.equal(a, b) for a, b in zip(g1, g2)) and t.runs["r"].step == 1
    assert all(torch.equal(a, b) for a, b in zip(d1, d2))
    assert [x["step"] for x in ticks] == [0, 0, 1]


def test_speed_caps_the_step_rate(small):
    """speed = 20 steps a second: 10 steps take about half a second, not milliseconds."""
    import time

    t = Trainer()
    t.add("r", make_config(dict(small, steps=10, speed=20.0)))
    t0 = time.monotonic()
    run(t)
    took = time.monotonic() - t0
    assert took >= 9 / 20  # the first step goes at once, then one every 1/20 s


def test_same_seed_same_series(small):
    def series(seed):
        out = []
        train(make_config(dict(small, steps=60, seed=seed)), cb=Callbacks(on_tick=out.append))
        return [scalars(x) | {"occ": x["occupancy"]} for x in out]

    a, b = series(3), series(3)
    assert a == b
    assert series(4)[-1] != a[-1]


def test_nan_fails_the_run(small):
    t = Trainer()
    ends = []

    def poison(tick):
        if tick["step"] == 10:
            with torch.no_grad():
                t.runs["r"].engine.G.layers[0].weight.fill_(float("nan"))

    t.add("r", make_config(dict(small, steps=100)),
          Callbacks(on_tick=poison, on_end=lambda s, why: ends.append((s, why))))
    run(t)
    assert ends[0][0] == "failed" and "NaN" in ends[0][1]
    assert t.runs["r"].final.step == 20  # poisoned after the tick at 10: the next tick fails it


def test_tick_carries_picture_for_2d(small):
    t = Trainer()
    ticks = []
    t.add("r", make_config(dict(small, steps=10)), Callbacks(on_tick=ticks.append))
    tick = ticks[0]
    assert tick["samples"].shape == (500, 2)
    assert tick["value_grid"].shape == (16, 16)
    assert len(tick["occupancy"]) == 8 and len(tick["extent"]) == 4
    assert 0 <= float(tick["value_grid"].min()) and float(tick["value_grid"].max()) <= 1


def test_tick_without_picture_skips_only_the_landscape(small):
    with_pic, without = [], []
    Trainer().add("r", make_config(dict(small, steps=10)), Callbacks(on_tick=with_pic.append))
    Trainer().add("r", make_config(dict(small, steps=10)),
                  Callbacks(on_tick=without.append, want_picture=lambda: False))
    assert "value_grid" in with_pic[0] and "value_grid" not in without[0]
    assert with_pic[0]["occupancy"] == without[0]["occupancy"]
    assert (with_pic[0]["samples"] == without[0]["samples"]).all()


def test_manifold_layer_on_request(small):
    got = []
    Trainer().add("r", make_config(dict(small, steps=10)),
                  Callbacks(on_tick=got.append, want_manifold=lambda: True))
    m = got[0]["manifold"]
    assert m.ndim == 3 and m.shape[0] == m.shape[1] and m.shape[2] == 2


def test_steps_zero_trains_until_stopped(small):
    """steps 0 = until stopped: the run goes on past any length until a stop, which ends it
    as stopped (not finished) with a last tick; a live change to a length ends it there."""
    ticks = []
    cfg = make_config(dict(small, steps=0, tick_every=50))
    t, ends = one(cfg, ticks=ticks,
                  script=lambda t, n: [{"action": "stop"}] if t.runs["r"].step >= 137 else [])
    assert t.runs["r"].step == 137 and ticks[-1]["step"] == 137
    assert ends == [("done", "stopped at step 137")]
    t, ends = one(cfg, script=lambda t, n: [{"set": {"steps": 40}}] if n == 31 else [])
    assert t.runs["r"].step == 40 and ends == [("done", "finished 40 steps")]
