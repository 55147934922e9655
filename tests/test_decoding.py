"""The decoding family: the template language, the decoders against their definitions, the
diversity measures on known cases, stacked runs against runs alone, checkpoints, live changes,
and beam collapse with its two rescues on small trained models.

The dynamics bounds come from measured runs (docs/presets.md has the ten-seed table at full
length); here two seeds trained 400 steps in one stack — a few seconds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from collapse_lab.trainer import families
from collapse_lab.trainer.data import make_dataset
from collapse_lab.trainer.families.decoding import decode, model, textstats
from collapse_lab.trainer.families.decoding.config import make_config, validate_changes
from collapse_lab.trainer.families.decoding.engine import DecodingEngine, DecState
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.language import TemplateLanguage

BASE = dict(dataset="templates", hidden=32, embed=16, device="cpu")


def engine(*knob_sets: dict) -> DecodingEngine:
    cfgs = [make_config({**BASE, **k}) for k in knob_sets]
    data = make_dataset(cfgs[0])
    return DecodingEngine([DecState.fresh(c) for c in cfgs], data, torch.device("cpu"))


# ---------------------------------------------------------------------------- the language
def test_every_sampled_sentence_traces_to_its_template_in_proportion():
    lang = TemplateLanguage()
    x = lang.sample(20_000, torch.Generator().manual_seed(0))
    k, valid = lang.assign(x)
    assert bool(valid.all())
    share = torch.bincount(k, minlength=6).double() / len(k)
    p = lang.weights.double()
    # four standard errors of a binomial share
    assert bool(((share - p).abs() <= 4 * (p * (1 - p) / len(k)).sqrt()).all())
    assert math.isclose(float(torch.exp(lang.log_prob(x[:1]))),
                        float(p[k[0]] / lang.counts[k[0]]), rel_tol=1e-6)


def test_a_broken_sentence_is_traced_but_not_valid():
    lang = TemplateLanguage()
    ix = lang.index
    good = [ix[w] for w in "the cat sleeps here .".split()] + [0, 0]
    wrong_slot = [ix[w] for w in "the cat here sleeps .".split()] + [0, 0]
    too_long = [ix[w] for w in "the cat sleeps here again .".split()] + [0]
    no_template = [ix[w] for w in "cat the sleeps here .".split()] + [0, 0]
    k, valid = lang.assign(torch.tensor([good, wrong_slot, too_long, no_template]))
    assert valid.tolist() == [True, False, False, False]
    assert k.tolist()[:3] == [0, 0, 0]
    assert lang.decode(good) == "the cat sleeps here"


def test_the_likeliest_templates_sentences_are_each_likelier_than_any_other():
    lang = TemplateLanguage()
    per = lang.weights / lang.counts
    assert int(per.argmax()) == 0 and int(lang.weights.argmax()) == 0


def test_gan_and_evolution_do_not_offer_a_text_dataset_and_decoding_offers_only_text():
    assert "templates" not in families.get("gan").datasets
    assert "templates" not in families.get("evolution").datasets
    assert families.get("decoding").datasets == ("templates",)
    with pytest.raises(ConfigError) as e:
        make_config({"dataset": "ring8"})
    assert e.value.field == "dataset"


# ---------------------------------------------------------------------------- decoders
def trained_params(steps: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    eng = engine({"seed": seed})
    for _ in range(steps):
        eng.step()
    return eng.run_params(0)


def sequence_logprob(p: dict[str, torch.Tensor], tok: torch.Tensor) -> torch.Tensor:
    """Each row's log-probability under the model, up to and including its first "."."""
    x = torch.cat([torch.zeros_like(tok[:, :1]), tok[:, :-1]], 1)[None]
    lp = torch.log_softmax(model.logits(p, x)[0], -1).gather(2, tok[..., None])[..., 0]
    ended = torch.cumsum((tok == 0).int(), 1) - (tok == 0).int()
    return (lp * (ended == 0)).sum(1)


def test_greedy_takes_the_likeliest_word_at_every_step():
    p = trained_params(60)
    tok, lp = decode.beam(p, 1, 7)
    h = torch.zeros(1, 1, p["w_hh"].shape[1])
    last = torch.zeros(1, 1, dtype=torch.long)
    want = []
    for _ in range(7):
        logp, h = model.step_logits(p, last, h)
        nxt = int(logp[0, 0].argmax()) if not want or want[-1] != 0 else 0
        want.append(nxt)
        last = torch.tensor([[nxt]])
    assert tok[0].tolist() == want
    assert torch.allclose(lp, sequence_logprob(p, tok), atol=1e-4)


def test_beam_returns_distinct_strings_with_their_true_log_probability_best_first():
    p = trained_params(60)
    tok, lp = decode.beam(p, 8, 7)
    assert len(tok) == 8 and len({tuple(r) for r in tok.tolist()}) == 8
    assert torch.allclose(lp, sequence_logprob(p, tok), atol=1e-4)
    assert bool((lp[:-1] >= lp[1:] - 1e-6).all())
    greedy = decode.beam(p, 1, 7)[1]
    assert float(lp[0]) >= float(greedy[0]) - 1e-5  # a wider search finds no worse string


def test_diverse_beam_without_penalty_repeats_the_group_search_and_with_it_spreads():
    p = trained_params(150)
    same, _ = decode.beam(p, 8, 7, groups=4, diversity=0.0)
    one, _ = decode.beam(p, 2, 7)
    assert [tuple(r) for r in same.tolist()] == [tuple(r) for r in one.tolist()] * 4
    spread, lp = decode.beam(p, 8, 7, groups=8, diversity=5.0)
    assert len({r[0] for r in spread.tolist()}) >= 6  # 8 groups open with different words
    assert torch.allclose(lp, sequence_logprob(p, spread), atol=1e-4)


def test_sampling_with_top_k_one_or_a_tiny_top_p_is_greedy():
    p = trained_params(60)
    greedy = decode.beam(p, 1, 7)[0][0]
    for kw in (dict(top_k=1), dict(top_p=0.01)):
        tok, lp = decode.sample(p, 32, 7, torch.Generator().manual_seed(1), **kw)
        assert bool((tok == greedy).all()), kw
    tok, lp = decode.sample(p, 64, 7, torch.Generator().manual_seed(1))
    assert torch.allclose(lp, sequence_logprob(p, tok), atol=1e-4)
    assert len({tuple(r) for r in tok.tolist()}) > 1


def test_top_k_draws_only_among_the_k_likeliest_first_words():
    p = trained_params(60)
    logp, _ = model.step_logits(p, torch.zeros(1, 1, dtype=torch.long),
                                torch.zeros(1, 1, p["w_hh"].shape[1]))
    top3 = set(logp[0, 0].topk(3).indices.tolist())
    tok, _ = decode.sample(p, 200, 7, torch.Generator().manual_seed(2), top_k=3,
                           temperature=3.0)
    assert set(tok[:, 0].tolist()) <= top3


# ---------------------------------------------------------------------------- diversity
def test_distinct_n_and_self_bleu_on_known_batches():
    same = [[1, 2, 3, 4]] * 5
    assert textstats.distinct(same, 1) == pytest.approx(4 / 20)
    assert textstats.self_bleu(same) == pytest.approx(1.0)
    apart = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    assert textstats.distinct(apart, 2) == 1.0
    # no shared word: each precision smoothed to 0.1 / count -> far below any shared batch
    assert textstats.self_bleu(apart) < 0.05
    half = [[1, 2, 3, 4], [1, 2, 3, 9]]
    # unigrams 3/4, bigrams 2/3, trigrams 1/2, equal lengths: (3/4 · 2/3 · 1/2)^(1/3)
    assert textstats.self_bleu(half) == pytest.approx((0.75 * (2 / 3) * 0.5) ** (1 / 3))


# ---------------------------------------------------------------------------- engine
def test_stacked_runs_follow_the_series_they_follow_alone():
    knobs = [{"seed": 0}, {"seed": 1, "strategy": "sample", "lm_lr": 1e-3},
             {"seed": 2, "strategy": "diverse_beam"}]
    stack = engine(*knobs)
    alone = [engine(k) for k in knobs]
    for _ in range(12):
        stack.step()
        for e in alone:
            e.step()
    ts = stack.tick()
    for i, e in enumerate(alone):
        for k in model.PARAMS:
            assert torch.allclose(stack.params[k][i], e.params[k][0], atol=1e-5), k
        t = e.tick()[0]
        assert t["lm_loss"] == pytest.approx(ts[i]["lm_loss"], rel=1e-5)
        assert t["occupancy"] == pytest.approx(ts[i]["occupancy"])


def test_a_run_saved_and_loaded_goes_on_with_the_same_series(tmp_path):
    knobs = {"seed": 3, "strategy": "sample"}
    straight, moved = engine(knobs), engine(knobs)
    for _ in range(10):
        straight.step()
        moved.step()
    straight.tick()
    moved.tick()
    moved.export(0).save(tmp_path / "run.pt")
    st = families.load_checkpoint(tmp_path / "run.pt")
    assert isinstance(st, DecState) and st.cfg == moved.cfgs[0] and st.step == 10
    moved = DecodingEngine([st], moved.data, torch.device("cpu"))
    for _ in range(10):
        straight.step()
        moved.step()
    for k in model.PARAMS:
        assert torch.equal(straight.params[k], moved.params[k]), k
    a, b = straight.tick()[0], moved.tick()[0]
    assert a["occupancy"] == b["occupancy"] and a["self_bleu"] == b["self_bleu"]
    assert int(moved.steps[0]) == 20


def test_a_live_change_is_validated_and_applied_at_the_next_tick():
    eng = engine({"seed": 0})
    change = validate_changes(eng.cfgs[0], {"strategy": "sample", "temperature": "0.5"},
                              live=True)
    ev = eng.apply(0, change)
    assert ev.changes == {"strategy": "sample", "temperature": 0.5} and ev.version == 1
    assert eng.tick()[0]["outputs"] == eng.cfgs[0].samples
    eng.apply(0, validate_changes(eng.cfgs[0], {"lm_lr": 1e-4}, live=True))
    assert float(eng.adam.lr[0]) == pytest.approx(1e-4)
    for bad, field, words in (({"hidden": 128}, "hidden", "cannot change"),
                              ({"strategy": "nucleus"}, "strategy", "greedy"),
                              ({"top_p": 1.5}, "top_p", "[0.01, 1]"),
                              ({"strategy": "diverse_beam", "beam_width": 4, "groups": 8},
                               "groups", "at most 4")):
        with pytest.raises(ConfigError) as e:
            validate_changes(eng.cfgs[0], bad, live=True)
        assert e.value.field == field and words in e.value.message


def test_a_tick_reports_the_strings_as_a_text_panel_and_no_points():
    eng = engine({"seed": 0, "strategy": "sample", "samples": 200})
    t = eng.tick(pictures=[0])[0]
    assert t["samples"].shape == (0, 2) and len(t["occupancy"]) == 6
    panel = t["panels"]["strings"]
    assert panel["groups"][-1] == "ungrammatical" and len(panel["groups"]) == 7
    assert 0 < len(panel["items"]) <= 200
    order = [panel["groups"].index(it["group"]) for it in panel["items"]]
    assert order == sorted(order)
    texts = [it["text"] for it in panel["items"]]
    for it in panel["items"]:
        assert it["tag"] in (None, "repeat")
        if it["tag"] == "repeat":
            assert texts.count(it["text"]) >= 2
    assert "panels" not in eng.tick(pictures=[])[0]
    for k in ("lm_loss", "logprob", "distinct_1", "distinct_2", "self_bleu"):
        assert k in t


# ---------------------------------------------------------------------------- dynamics
def test_beam_search_collapses_and_sampling_and_diverse_beams_rescue_it():
    eng = engine({"seed": 0}, {"seed": 1})
    for _ in range(400):
        eng.step()
    for i in range(2):
        p = eng.run_params(i)
        for cfg, lo, hi in ((dict(strategy="beam", beam_width=16), 1, 2),
                            (dict(strategy="sample", samples=128), 6, 6),
                            (dict(strategy="diverse_beam", groups=16, diversity=1.0), 5, 6),
                            (dict(strategy="diverse_beam", groups=16, diversity=0.0), 1, 1)):
            c = eng.cfgs[i].replace(**cfg)
            tok, _ = decode.decode(p, c, 7, torch.Generator().manual_seed(0))
            k, valid = eng.lang.assign(tok)
            held = {int(m) for m, ok in zip(k, valid, strict=True) if ok}
            share = torch.bincount(k[valid], minlength=6).double() / len(k)
            covered = int((share >= 1 / 24).sum())
            assert lo <= covered <= hi, (i, cfg, held, share.tolist())


def test_the_cli_trains_a_decoding_preset_and_lists_the_family(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def cli(*args: str) -> str:
        p = subprocess.run([sys.executable, "-m", "collapse_lab.server.cli", *args],
                           capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stderr
        return p.stdout

    reg = json.loads(cli("options", "--json"))
    fam = {f["name"]: f for f in reg["families"]}["decoding"]
    assert fam["frame"]["samples"] == "" and fam["frame"]["panels"][0]["kind"] == "text"
    assert {r["name"] for r in fam["remedies"]} == {"sampling", "diverse_beam"}
    presets = {p["name"]: p for p in reg["presets"]}
    assert presets["decoding-beam-collapse"]["expect"] == {"metric": "modes_covered",
                                                           "op": "at_most", "value": 2}
    assert presets["decoding-sampling"]["twin_of"] == "decoding-beam-collapse"
    out = json.loads(cli("train", "--preset", "decoding-sampling", "--steps", "40",
                         "--hidden", "32", "--json", "--data-dir", str(tmp_path)))
    assert out["config"]["family"] == "decoding" and out["final"]["step"] == 40
    assert out["final"]["outputs"] == 128 and math.isfinite(out["final"]["lm_loss"])
    # every final number is a registered stat (occupancy: the per-mode shares, a list)
    stats = {s["name"] for s in reg["stats"]}
    assert set(out["final"]) - {"occupancy"} <= stats, set(out["final"]) - stats
    p = subprocess.run([sys.executable, "-m", "collapse_lab.server.cli", "train", "--family",
                        "decoding", "--top-p", "2", "--steps", "1"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert p.returncode == 2 and "--top-p" in p.stderr and "[0.01, 1]" in p.stderr


def test_a_sweep_row_of_a_decoding_preset():
    from collapse_lab.trainer import sweep

    jobs = sweep.jobs_for([("sample", "decoding-sampling", {"hidden": 16, "embed": 8})], [0],
                          steps=20, tick_every=10)
    row = sweep.run_pack(jobs)[0]
    assert row["steps"] == 20 and row["num_modes"] == 6 and row["objective"] == "decoding"
    assert 0 <= row["modes_covered"] <= 6
