"""Decoding strings from one run's language model: greedy, beam search, diverse beam search
(Vijayakumar et al. 2016) and sampling with temperature, top-k and top-p (Holtzman et al. 2020).

Every function takes one run's parameters as a stack of one (model.py: tensors (1, ...)) and
decodes a batch at once: the beams of all groups, or all the samples. A string starts after "."
(token 0, the end of the previous sentence) and ends at its first "."; the rows it returns are
padded with "." to the language's length. Each returns (tokens (n, L), log-probability of each
string under the model (n,), untempered).
"""

from __future__ import annotations

import torch

from collapse_lab.trainer.families.decoding import model

END = 0


def _forced_end(logp: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
    """A finished string can only go on with "." at no cost."""
    stay = torch.full_like(logp, -float("inf"))
    stay[..., END] = 0.0
    return torch.where(done[..., None], stay, logp)


@torch.no_grad()
def sample(p: dict[str, torch.Tensor], n: int, length: int, gen: torch.Generator, *,
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """n strings drawn word by word from the model's distribution divided by `temperature`,
    cut to its `top_k` likeliest words (0 = all) and to the smallest set of likeliest words
    whose probabilities add up to `top_p` (1 = all)."""
    dev = p["emb"].device
    hidden = p["w_hh"].shape[1]
    tok = torch.full((1, n), END, dtype=torch.long, device=dev)
    h = torch.zeros(1, n, hidden, device=dev, dtype=p["emb"].dtype)
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    out, lp = [], torch.zeros(n, device=dev, dtype=p["emb"].dtype)
    u = torch.rand(length, n, generator=gen, device=dev, dtype=p["emb"].dtype)
    for t in range(length):
        logp, h = model.step_logits(p, tok, h)
        logp = logp[0]  # (n, V)
        z = logp / temperature
        if top_k and top_k < z.shape[-1]:
            kth = z.topk(top_k, -1).values[:, -1:]
            z = z.masked_fill(z < kth, -float("inf"))
        probs = torch.softmax(z, -1)
        if top_p < 1.0:
            sp, order = probs.sort(-1, descending=True)
            before = sp.cumsum(-1) - sp  # mass of the likelier words
            keep = torch.zeros_like(probs, dtype=torch.bool).scatter(1, order, before < top_p)
            probs = torch.where(keep, probs, torch.zeros_like(probs))
            probs = probs / probs.sum(-1, keepdim=True)
        # inverse-CDF draw with one uniform per string and step: a fixed draw whatever the knobs
        cdf = probs.cumsum(-1)
        nxt = torch.searchsorted(cdf, u[t][:, None] * cdf[:, -1:]).clamp_max(cdf.shape[-1] - 1)
        nxt = nxt[:, 0]
        nxt = torch.where(done, torch.full_like(nxt, END), nxt)
        lp = lp + torch.where(done, torch.zeros_like(lp), logp.gather(1, nxt[:, None])[:, 0])
        done = done | (nxt == END)
        out.append(nxt)
        tok = nxt[None]
    return torch.stack(out, 1), lp


@torch.no_grad()
def beam(p: dict[str, torch.Tensor], width: int, length: int, *, groups: int = 1,
         diversity: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Beam search keeping `width` strings; with `groups` > 1, diverse beam search: the beams
    split into groups searched in turn at each step, a group's candidate word scored down by
    `diversity` nats for every beam of an earlier group that chose it at this step (Hamming
    diversity). Selection uses the penalised score, the strings keep their true log-probability.
    Greedy decoding is a beam of width 1. Returns the surviving beams, likeliest first within
    each group.

    A beam's next-word distribution depends only on its own string, so one model step serves
    every beam of every group at once; only the selection goes group by group."""
    dev = p["emb"].device
    dtype = p["emb"].dtype
    hidden = p["w_hh"].shape[1]
    vocab = p["emb"].shape[1]
    groups = max(1, min(groups, width))
    sizes = [width // groups + (1 if g < width % groups else 0) for g in range(groups)]
    starts = [sum(sizes[:g]) for g in range(groups)]
    tok = torch.zeros(width, 0, dtype=torch.long, device=dev)
    score = torch.full((width,), -float("inf"), device=dev, dtype=dtype)
    score[starts] = 0.0  # one live hypothesis a group: the empty string
    h = torch.zeros(1, width, hidden, device=dev, dtype=dtype)
    last = torch.full((1, width), END, dtype=torch.long, device=dev)
    done = torch.zeros(width, dtype=torch.bool, device=dev)
    for _ in range(length):
        logp, h = model.step_logits(p, last, h)
        logp = _forced_end(logp[0], done)  # (W, V)
        cand = score[:, None] + logp
        chosen = torch.zeros(vocab, device=dev, dtype=dtype)  # this step's words of earlier groups
        picks = []
        for g0, w in zip(starts, sizes, strict=True):
            c, d = cand[g0:g0 + w], done[g0:g0 + w]
            sel = c - diversity * torch.where(d[:, None], torch.zeros_like(c),
                                              chosen[None, :].expand_as(c))
            top = sel.flatten().topk(w).indices
            b, v = top // vocab + g0, top % vocab
            picks.append((b, v))
            live = torch.isfinite(cand[b, v]) & ~done[b]
            chosen = chosen + torch.bincount(v[live], minlength=vocab).to(dtype)
        b = torch.cat([x for x, _ in picks])
        v = torch.cat([y for _, y in picks])
        score = cand[b, v]
        tok = torch.cat([tok[b], v[:, None]], 1)
        h = h[:, b]
        done = done[b] | (v == END)
        last = v[None]
    keep = torch.isfinite(score)
    return tok[keep], score[keep]


def decode(p: dict[str, torch.Tensor], cfg: object, length: int, gen: torch.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The strings a run's decoding knobs ask for (its config: strategy, beam_width, groups,
    diversity, samples, temperature, top_k, top_p)."""
    s = cfg.strategy  # type: ignore[attr-defined]
    c: object = cfg
    if s == "greedy":
        return beam(p, 1, length)
    if s == "beam":
        return beam(p, c.beam_width, length)  # type: ignore[attr-defined]
    if s == "diverse_beam":
        return beam(p, c.beam_width, length, groups=c.groups,  # type: ignore[attr-defined]
                    diversity=c.diversity)  # type: ignore[attr-defined]
    return sample(p, c.samples, length, gen, temperature=c.temperature,  # type: ignore[attr-defined]
                  top_k=c.top_k, top_p=c.top_p)  # type: ignore[attr-defined]
