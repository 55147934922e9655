"""R language models trained as one stack, and decoded at each tick by each run's strategy.

Every run of an engine shares the model's size and the batch (`config.stack_key`) and may
differ in its learning rate and every decoding knob. Each run has two random streams of its own
(torch.Generators on the CPU seeded from its seed): one for its initial weights and its training
batches, one for sampling its strings. So a run trained alone, in a stack, or exported and
rebuilt follows one series (tests/test_decoding.py).

A tick decodes a batch of strings from each run's model with its strategy (decode.py), traces
every string to its template (trainer/language.py: its mode; "high quality" = a grammatical
sentence of that template) and reports the project's mode metrics over the batch, the training
loss, distinct-n, self-BLEU and the strings' log-likelihood; on ticks that carry pictures its
`panels` hold the strings grouped by template ("text", docs/families.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from collapse_lab.trainer.commands import ConfigChanged
from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families.decoding import decode, model, textstats
from collapse_lab.trainer.families.decoding.config import make_config, stack_key
from collapse_lab.trainer.family import Restack, save_atomic
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.language import TemplateLanguage
from collapse_lab.trainer.metrics import mode_metrics
from collapse_lab.trainer.stats import tick_fields

STATS = ("lm_loss", "logprob", "distinct_1", "distinct_2", "self_bleu")
METRICS = ("modes_captured", "modes_covered", "hq_fraction", "effective_modes", "reverse_kl",
           "hopping")
FORMAT = 1  # checkpoint format of a decoding run
MAX_ITEMS = 200  # strings a text panel carries (docs/families.md)
UNGRAMMATICAL = "ungrammatical"  # the text panel's group of strings no template makes
DECODE_SEED = 7_919  # the sampling stream's seed is the run's seed plus this


@dataclass
class DecState:
    """One run's whole state apart from any stack: its checkpoint."""

    cfg: Any
    step: int = 0
    version: int = 0
    params: dict[str, torch.Tensor] | None = None  # None = the seed's fresh weights
    m: dict[str, torch.Tensor] | None = None  # Adam's moments
    v: dict[str, torch.Tensor] | None = None
    adam_t: int = 0
    gen: torch.Tensor | None = None  # the training stream's state (after the weights' draws)
    dec_gen: torch.Tensor | None = None  # the sampling stream's state
    prev_occupancy: torch.Tensor | None = None
    elapsed: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fresh(cls, cfg: Any) -> DecState:
        return cls(cfg=cfg)

    def to_dict(self) -> dict[str, Any]:
        return dict(format=FORMAT, config=self.cfg.to_dict(), step=self.step,
                    version=self.version, params=self.params, m=self.m, v=self.v,
                    adam_t=self.adam_t, gen=self.gen, dec_gen=self.dec_gen,
                    prev_occupancy=self.prev_occupancy, elapsed=self.elapsed, saved=time.time())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DecState:
        if d.get("format") != FORMAT:
            raise ValueError(f"decoding checkpoint format {d.get('format')!r}, this version "
                             f"reads {FORMAT}")
        return cls(cfg=make_config(d["config"]), step=int(d["step"]), version=int(d["version"]),
                   params=d["params"], m=d["m"], v=d["v"], adam_t=int(d["adam_t"]),
                   gen=d["gen"], dec_gen=d["dec_gen"], prev_occupancy=d["prev_occupancy"],
                   elapsed=float(d["elapsed"]))

    def save(self, path: Path | str) -> None:
        """Atomically: a reader sees the old file or the new one, never half of one."""
        save_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: Path | str) -> DecState:
        return cls.from_dict(torch.load(path, map_location="cpu", weights_only=False))


def _generators(s: DecState, vocab: int) -> tuple[dict[str, torch.Tensor], torch.Generator,
                                                   torch.Generator]:
    """A state's weights and its two streams (fresh from the seed, or as saved)."""
    g = torch.Generator().manual_seed(s.cfg.seed)
    params = model.init(vocab, s.cfg.embed, s.cfg.hidden, g)  # draws first, from the seed
    if s.params is not None:
        params = s.params
    if s.gen is not None:
        g.set_state(s.gen)
    d = torch.Generator().manual_seed(s.cfg.seed + DECODE_SEED)
    if s.dec_gen is not None:
        d.set_state(s.dec_gen)
    return params, g, d


class DecodingEngine:
    def __init__(self, states: Sequence[DecState], data: Dataset, device: torch.device):
        if not states:
            raise ValueError("an engine needs at least one run")
        if len({stack_key(s.cfg) for s in states}) != 1:
            raise ValueError("the runs of one engine must agree on the step's shape")
        if not isinstance(data, TemplateLanguage):
            raise ConfigError("dataset", f"the decoding family needs a language of templates; "
                              f"{data.name} is {data.kind}")
        self.data: Dataset = data
        self.device = torch.device(device)
        self.lang = data
        self.runs = len(states)
        self.cfgs = [s.cfg for s in states]
        vocab = len(self.lang.vocab)
        dt = torch.get_default_dtype()
        ps, self.gens, self.dec_gens = [], [], []
        for s in states:
            p, g, d = _generators(s, vocab)
            ps.append(p)
            self.gens.append(g)
            self.dec_gens.append(d)
        self.params = {k: torch.stack([p[k] for p in ps]).to(self.device, dt).requires_grad_()
                       for k in model.PARAMS}
        zeros = {k: torch.zeros_like(v[0].detach()) for k, v in self.params.items()}
        self.m = {k: torch.stack([(s.m or zeros)[k].to(self.device, dt) for s in states])
                  for k in model.PARAMS}
        self.v = {k: torch.stack([(s.v or zeros)[k].to(self.device, dt) for s in states])
                  for k in model.PARAMS}
        self.adam = model.Adam(self.params, self.m, self.v,
                               torch.tensor([s.adam_t for s in states], device=self.device,
                                            dtype=dt), self._lr())
        self.steps = np.array([s.step for s in states], dtype=np.int64)
        self.versions = [s.version for s in states]
        self.prev_occupancy = [None if s.prev_occupancy is None
                               else s.prev_occupancy.to(self.device) for s in states]
        self.loss_sum = torch.zeros(self.runs, device=self.device, dtype=dt)
        self.loss_n = [0] * self.runs
        self.last_loss = [math.nan] * self.runs
        now = time.perf_counter()
        self.elapsed0 = [s.elapsed for s in states]
        self.joined = [now] * self.runs
        self.last_tick = [(now, s.step) for s in states]

    def _lr(self) -> torch.Tensor:
        return torch.tensor([c.lm_lr for c in self.cfgs], device=self.device,
                            dtype=torch.get_default_dtype())

    # ------------------------------------------------------------------ live changes
    def apply(self, i: int, changes: dict[str, Any]) -> ConfigChanged:
        """A live change to run i between steps; returns the change event. Raises Restack when
        it alters the step's shape and other runs share this engine."""
        old = self.cfgs[i]
        new = old.replace(**changes)
        if stack_key(new) != stack_key(old) and self.runs > 1:
            raise Restack(i, changes)
        applied = {k: v for k, v in changes.items() if getattr(old, k) != v}
        self.cfgs[i] = new
        self.adam.lr = self._lr()
        if applied:
            self.versions[i] += 1
        return ConfigChanged(step=int(self.steps[i]), version=self.versions[i], changes=applied,
                             config=new.to_dict())

    # ------------------------------------------------------------------ the step
    def batch(self) -> torch.Tensor:
        """Each run's training sentences from its own stream (R, B, L)."""
        b = self.cfgs[0].lm_batch
        return torch.stack([self.lang.sample(b, g) for g in self.gens]).to(self.device)

    def step(self, norms: bool = True, part: str = "both") -> None:
        """One Adam step of every run on a fresh batch: the loss is the sentences' negative
        log-likelihood (nats per sentence, up to and including the first ".")."""
        y = self.batch()  # (R, B, L) targets
        x = torch.cat([torch.zeros_like(y[..., :1]), y[..., :-1]], -1)  # after "."
        logits = model.logits(self.params, x)
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 2), y.flatten(),
                                                reduction="none").view(y.shape)
        ended_before = torch.cumsum((y == 0).to(torch.int8), -1) - (y == 0).to(torch.int8)
        mask = (ended_before == 0).to(nll.dtype)
        loss = (nll * mask).sum(-1).mean(-1)  # (R,)
        loss.sum().backward()
        self.adam.step()
        self.loss_sum += loss.detach()
        for i in range(self.runs):
            self.loss_n[i] += 1
        self.steps += 1

    # ------------------------------------------------------------------ ticks
    def run_params(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i:i + 1].detach() for k, v in self.params.items()}

    @torch.no_grad()
    def tick(self, rows: Sequence[int] | None = None, pictures: Sequence[int] = (),
             manifolds: Sequence[int] = ()) -> dict[int, dict[str, Any]]:
        rows = list(range(self.runs)) if rows is None else list(rows)
        now = time.perf_counter()
        out = {}
        k_modes = self.lang.num_modes
        for i in rows:
            cfg = self.cfgs[i]
            tok, lp = decode.decode(self.run_params(i), cfg, self.lang.length, self.dec_gens[i])
            tok = tok.to(self.device)
            near, valid = self.lang.assign(tok)
            mm = mode_metrics(near, valid, k_modes, self.prev_occupancy[i], self.lang.weights)
            self.prev_occupancy[i] = mm["occupancy"]
            if self.loss_n[i]:
                self.last_loss[i] = float(self.loss_sum[i]) / self.loss_n[i]
                self.loss_sum[i] = 0.0
                self.loss_n[i] = 0
            words = [[t for t in row if t] for row in _until_end(tok.cpu().tolist())]
            own = [self.last_loss[i], float(lp.mean()) if len(lp) else math.nan,
                   textstats.distinct(words, 1), textstats.distinct(words, 2),
                   textstats.self_bleu(words)]
            row = np.array(own + [float(mm[k]) for k in METRICS]
                           + mm["occupancy"].cpu().tolist() + [1.0])
            t = tick_fields(self, i, now, row, STATS, METRICS)
            if not all(math.isfinite(float(self.params[k][i].detach().abs().max()))
                       for k in model.PARAMS):
                t["failed"] = f"the model's weights became NaN/inf at step {t['step']}"
            t["samples"] = np.zeros((0, 2), np.float32)  # no points: the text panel shows them
            t["nearest"] = np.zeros(0, np.int16)
            t["hq"] = np.zeros(0, bool)
            t["outputs"] = len(words)
            if i in set(pictures):
                t["panels"] = dict(strings=self.text_panel(words, near, valid))
            out[i] = t
        return out

    def text_panel(self, words: list[list[int]], near: torch.Tensor, valid: torch.Tensor
                   ) -> dict[str, Any]:
        """The decoded strings grouped by template (an ungrammatical one by itself), each
        tagged "repeat" when the batch has it already (docs/families.md: panel kind "text")."""
        names = list(self.lang.mode_names)
        groups = names + [UNGRAMMATICAL]
        seen: set[tuple[int, ...]] = set()
        items: list[dict[str, Any]] = []
        for w, k, ok in zip(words, near.tolist(), valid.tolist(), strict=True):
            key = tuple(w)
            items.append(dict(text=self.lang.decode(w) or "(empty)",
                              group=names[k] if ok else UNGRAMMATICAL,
                              tag="repeat" if key in seen else None))
            seen.add(key)
        order = {g: j for j, g in enumerate(groups)}
        items.sort(key=lambda it: order[str(it["group"])])
        return dict(items=items[:MAX_ITEMS], groups=groups)

    def elapsed(self, i: int, now: float | None = None) -> float:
        return self.elapsed0[i] + ((now or time.perf_counter()) - self.joined[i])

    # ------------------------------------------------------------------ runs in and out
    def export(self, i: int) -> DecState:
        def one(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {k: v[i].detach().cpu().clone() for k, v in d.items()}

        return DecState(cfg=self.cfgs[i], step=int(self.steps[i]), version=self.versions[i],
                        params=one(self.params), m=one(self.m), v=one(self.v),
                        adam_t=int(self.adam.t[i]), gen=self.gens[i].get_state().clone(),
                        dec_gen=self.dec_gens[i].get_state().clone(),
                        prev_occupancy=self.prev_occupancy[i], elapsed=self.elapsed(i))


def _until_end(rows: list[list[int]]) -> list[list[int]]:
    """Each row up to its first "." (token 0)."""
    out = []
    for r in rows:
        out.append(r[:r.index(0)] if 0 in r else r)
    return out


def build(states: Sequence[DecState], data: Dataset, device: torch.device) -> DecodingEngine:
    return DecodingEngine(states, data, device)
