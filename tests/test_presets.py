"""Presets: every preset builds, claims are well-formed, and each family's direction holds.

The direction tests train the collapse preset and its remedy twin on the same seed for a short
run and check that the twin covers more modes, with margin. The full claims (≥ 10 seeds, the
preset's own step count) are measured by bench/calibrate_presets.py into docs/presets.md.
"""

from __future__ import annotations

import pytest
import torch

from trainer.config import ConfigError
from trainer.loop import Trainer, run
from trainer.presets import PRESETS, claim_text, describe, from_preset, meets_claim, preset_values


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _final(name: str, steps: int, seed: int, **kw) -> dict:
    cfg = from_preset(name, dict(steps=steps, seed=seed, tick_every=steps, grid_size=8,
                                 device="cpu", **kw))
    return run(Trainer(cfg))


def test_every_preset_builds_and_states_what_to_see():
    for name, p in PRESETS.items():
        cfg = from_preset(name)
        assert cfg.dataset in ("ring8", "grid25", "digits")
        assert len(p.help) > 40, name
        if p.base:
            assert p.base in PRESETS
            base = preset_values(p.base)
            # a twin keeps the collapse preset's data (and so its seeds' real-data stream)
            assert preset_values(name)["dataset"] == base["dataset"]
    assert {"collapse-ring8", "collapse-grid25", "collapse-digits", "wgan-gp-ring8",
            "minibatch-ring8", "unrolled-ring8"} <= set(PRESETS)
    names = [d["name"] for d in describe()]
    assert names == list(PRESETS)


def test_claims():
    assert claim_text("collapse-ring8") == "≤ 3 of 8 modes covered at the end"
    assert claim_text("wgan-gp-ring8") == "≥ 7 of 8 modes covered at the end"
    assert meets_claim("collapse-ring8", {"modes_covered": 3})
    assert not meets_claim("collapse-ring8", {"modes_covered": 4})
    assert meets_claim("wgan-gp-ring8", {"modes_covered": 7})
    assert not meets_claim("wgan-gp-ring8", {"modes_covered": 6})


def test_overrides_win_and_bad_names_are_refused():
    cfg = from_preset("collapse-ring8", {"objective": "wgan-gp", "seed": 3})
    assert (cfg.objective, cfg.seed, cfg.lr_d) == ("wgan-gp", 3, 1e-3)
    with pytest.raises(ConfigError) as e:
        from_preset("no-such-preset")
    assert e.value.field == "preset"


def test_ring8_collapse_covers_fewer_modes_than_its_remedy_twin():
    seed = 1
    collapsed = _final("collapse-ring8", 2000, seed)
    fixed = _final("balanced-ring8", 2000, seed)
    assert collapsed["effective_modes"] < 2.5
    assert fixed["effective_modes"] > collapsed["effective_modes"] + 3
    assert fixed["modes_covered"] >= collapsed["modes_covered"] + 2
