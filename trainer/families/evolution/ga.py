"""One generation of R genetic algorithms at once: every operator is a tensor op over (R, N, 2).

The populations of a stack share their size N and the landscape; every other setting is a
per-run value (`Params`), so runs that differ in selection, remedies or rates still step
together. The random numbers of a generation come in one fixed-size block per run (`Draws`),
whatever the settings, so a run's series never depends on its settings' history of use or on
the runs beside it, and a live change never shifts its stream.

The generation (docs/families.md):

1. fitness f of every individual; with fitness sharing (Goldberg & Richardson 1987) the
   shared fitness f_i / Σ_j sh(d_ij), sh(d) = 1 − (d/σ_share)^α for d < σ_share, else 0.
2. Generational replacement: 2N parents chosen within each individual's island (or, with the
   migration rate's probability, from the next island round the ring) by tournament (the
   fittest of k drawn at random) or truncation (drawn at random from the best fraction); each
   child is a blend of its two parents with the crossover rate's probability (BLX-α: every
   coordinate drawn uniformly from the parents' interval widened by α on each side), else a
   copy of the first; then Gaussian mutation with the mutation rate's probability.
   Deterministic crowding (Mahfoud 1995) replaces step 2: the population is paired at random
   within islands, each pair makes two children (crossover and mutation as above), each child
   faces the parent it is nearer to (the pairing with the smaller total distance) and replaces
   it only when fitter. There is no selection pressure beyond that contest.
3. Random immigrants (Grefenstette 1992): with the immigrant rate's probability an individual
   of the new population is replaced by a point drawn uniformly over the landscape's extent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

K_MAX = 16  # the largest tournament (the knob's upper bound): candidates drawn per parent


@dataclass
class Params:
    """Per-run values (R,) of one generation."""

    tournament: torch.Tensor  # long, tournament size k
    truncation: torch.Tensor  # fraction of the best that may be parents
    use_truncation: torch.Tensor  # bool: truncation instead of tournament
    crossover: torch.Tensor  # probability a child is a blend of two parents
    alpha: torch.Tensor  # BLX-α widening
    mutation: torch.Tensor  # probability an individual is mutated
    sigma_mut: torch.Tensor  # mutation step std
    share_radius: torch.Tensor  # σ_share; 0 = no sharing
    share_alpha: torch.Tensor  # α of the sharing function
    crowding: torch.Tensor  # bool: deterministic crowding replaces selection
    immigrants: torch.Tensor  # probability an individual is replaced by a random one
    islands: torch.Tensor  # long, number of islands
    migration: torch.Tensor  # probability a parent comes from the next island


@dataclass
class Draws:
    """One generation's random numbers of R runs (fixed shapes for a population of N)."""

    pick: torch.Tensor  # (R, 2N, K_MAX) uniform: candidates / truncation positions
    migrate: torch.Tensor  # (R, 2N) uniform
    cross: torch.Tensor  # (R, N) uniform: crossover coin per child
    blend: torch.Tensor  # (R, N, 2) uniform: blend weights per child and coordinate
    mutate: torch.Tensor  # (R, N) uniform: mutation coin per child
    step: torch.Tensor  # (R, N, 2) normal: mutation steps
    immigrate: torch.Tensor  # (R, N) uniform: immigrant coin
    place: torch.Tensor  # (R, N, 2) uniform: where an immigrant lands
    pair: torch.Tensor  # (R, N) uniform: crowding's random pairing

    @staticmethod
    def draw(n: int, gen: torch.Generator, device: torch.device) -> Draws:
        """One run's block (no runs dimension yet), always in this order."""
        def u(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=gen, device=device)

        return Draws(pick=u(2 * n, K_MAX), migrate=u(2 * n), cross=u(n), blend=u(n, 2),
                     mutate=u(n), step=torch.randn(n, 2, generator=gen, device=device),
                     immigrate=u(n), place=u(n, 2), pair=u(n))

    @staticmethod
    def stack(parts: list[Draws], index: torch.Tensor) -> Draws:
        """Per-stream blocks -> (R, ...) in run order (index: each run's stream)."""
        fields = Draws.__dataclass_fields__
        if len(parts) == 1:
            r = len(index)
            return Draws(**{f: getattr(parts[0], f)[None].expand(
                r, *getattr(parts[0], f).shape) for f in fields})
        return Draws(**{f: torch.stack([getattr(p, f) for p in parts])[index] for f in fields})


Fitness = Callable[[torch.Tensor], torch.Tensor]  # (R, M, 2) -> (R, M)


def shared(f: torch.Tensor, pop: torch.Tensor, p: Params) -> torch.Tensor:
    """Fitness sharing: f_i / Σ_j sh(d_ij) (runs with radius 0 keep f)."""
    if not bool((p.share_radius > 0).any()):
        return f
    d = torch.cdist(pop, pop)  # (R, N, N)
    radius = p.share_radius.clamp_min(1e-9)[:, None, None]
    sh = (1 - (d / radius) ** p.share_alpha[:, None, None]).clamp_min(0.0)
    niche = sh.sum(-1)  # ≥ 1: every individual shares with itself
    on = (p.share_radius > 0)[:, None]
    return torch.where(on, f / niche, f)


def niche_field(points: torch.Tensor, pop: torch.Tensor, p: Params) -> torch.Tensor:
    """Σ_j sh(|x − x_j|) + 1 over the population for points x (R, M, 2): what a newcomer at x
    would divide its fitness by (1 where sharing is off) — for the landscape picture."""
    if not bool((p.share_radius > 0).any()):
        return torch.ones(points.shape[:2], device=points.device, dtype=points.dtype)
    d = torch.cdist(points, pop)  # (R, M, N)
    radius = p.share_radius.clamp_min(1e-9)[:, None, None]
    sh = (1 - (d / radius) ** p.share_alpha[:, None, None]).clamp_min(0.0)
    niche = sh.sum(-1) + 1.0
    return torch.where((p.share_radius > 0)[:, None], niche, torch.ones_like(niche))


def _bounds(b: torch.Tensor, isl: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(first slot, size) of islands b (R, M) for runs of isl (R, 1) islands."""
    first = (b * n + isl - 1) // isl
    nxt = ((b + 1) * n + isl - 1) // isl
    return first, nxt - first


def select(fe: torch.Tensor, p: Params, d: Draws) -> torch.Tensor:
    """2N parent slots (R, 2N): parents of child c are [c] and [N + c]."""
    r, n = fe.shape
    isl = p.islands.clamp(1, n)[:, None]
    child = torch.arange(n, device=fe.device).repeat(2)[None, :]  # (1, 2N)
    home = child * isl // n  # (R, 2N)
    away = (home + 1) % isl
    pool = torch.where(d.migrate < p.migration[:, None], away, home)
    first, size = _bounds(pool, isl, n)
    # tournament: the fittest of k candidates drawn uniformly from the pool
    cand = (first[..., None] + (d.pick * size[..., None]).long()).clamp_max(n - 1)
    score = fe.gather(1, cand.flatten(1)).view(cand.shape)
    ks = torch.arange(K_MAX, device=fe.device)[None, None, :]
    score = torch.where(ks < p.tournament[:, None, None], score,
                        torch.full_like(score, -torch.inf))
    tour = cand.gather(2, score.argmax(-1, keepdim=True))[..., 0]
    if not bool(p.use_truncation.any()):
        return tour
    # truncation: uniformly among the best ⌈τ·size⌉ of the pool
    island = torch.arange(n, device=fe.device)[None, :] * isl // n  # (R, N)
    top = fe.amax(1, keepdim=True).clamp_min(1e-30)
    order = torch.argsort(island.to(fe.dtype) * 4 + (1 - fe / top), dim=1)
    m = torch.ceil(p.truncation[:, None] * size).clamp_min(1).long()
    pos = (first + (d.pick[..., 0] * m).long()).clamp_max(n - 1)
    trunc = order.gather(1, pos)
    return torch.where(p.use_truncation[:, None], trunc, tour)


def _vary(a: torch.Tensor, b: torch.Tensor, p: Params, cross: torch.Tensor,
          blend: torch.Tensor, mutate: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """Children of parents a, b (R, M, 2): BLX-α blend with the crossover rate's probability,
    then Gaussian mutation with the mutation rate's probability."""
    alpha = p.alpha[:, None, None]
    u = -alpha + (1 + 2 * alpha) * blend
    child = torch.where((cross < p.crossover[:, None])[..., None], a + u * (b - a), a)
    hit = (mutate < p.mutation[:, None])[..., None]
    return torch.where(hit, child + p.sigma_mut[:, None, None] * step, child)


def _gather(pop: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return pop.gather(1, idx[..., None].expand(-1, -1, pop.shape[-1]))


def generational(pop: torch.Tensor, fe: torch.Tensor, p: Params, d: Draws) -> torch.Tensor:
    n = pop.shape[1]
    parents = select(fe, p, d)
    a, b = _gather(pop, parents[:, :n]), _gather(pop, parents[:, n:])
    return _vary(a, b, p, d.cross, d.blend, d.mutate, d.step)


def crowding(pop: torch.Tensor, f: torch.Tensor, fit: Fitness, p: Params,
             d: Draws) -> torch.Tensor:
    """Deterministic crowding (Mahfoud 1995): random pairs within islands, two children per
    pair, each child replaces the parent it is matched with only when it is fitter."""
    r, n, _ = pop.shape
    h = n // 2
    isl = p.islands.clamp(1, n)[:, None]
    island = torch.arange(n, device=pop.device)[None, :] * isl // n
    perm = torch.argsort(island.to(pop.dtype) + d.pair, dim=1)  # shuffled within islands
    i1, i2 = perm[:, 0:2 * h:2], perm[:, 1:2 * h:2]  # (R, h)
    p1, p2 = _gather(pop, i1), _gather(pop, i2)
    # both children of a pair share its crossover coin (the coin of its first child)
    cx = d.cross[:, :h]
    c1 = _vary(p1, p2, p, cx, d.blend[:, :h], d.mutate[:, :h], d.step[:, :h])
    c2 = _vary(p2, p1, p, cx, d.blend[:, h:2 * h], d.mutate[:, h:2 * h], d.step[:, h:2 * h])

    def dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x - y).norm(dim=-1)

    straight = dist(p1, c1) + dist(p2, c2) <= dist(p1, c2) + dist(p2, c1)  # (R, h)
    s = straight[..., None]
    k1, k2 = torch.where(s, c1, c2), torch.where(s, c2, c1)  # the challengers of p1 and p2
    fk = fit(torch.cat([k1, k2], 1))  # (R, 2h)
    f1, f2 = f.gather(1, i1), f.gather(1, i2)
    w1 = torch.where((fk[:, :h] > f1)[..., None], k1, p1)
    w2 = torch.where((fk[:, h:] > f2)[..., None], k2, p2)
    out = pop.clone()
    out.scatter_(1, i1[..., None].expand(-1, -1, 2), w1)
    out.scatter_(1, i2[..., None].expand(-1, -1, 2), w2)
    return out


def generation(pop: torch.Tensor, fit: Fitness, p: Params, d: Draws, lo: float,
               hi: float) -> torch.Tensor:
    """The next population of every run (R, N, 2)."""
    f = fit(pop)
    crowd = p.crowding[:, None, None]
    new = None
    if not bool(p.crowding.all()):
        new = generational(pop, shared(f, pop, p), p, d)
    if bool(p.crowding.any()):
        dc = crowding(pop, f, fit, p, d)
        new = dc if new is None else torch.where(crowd, dc, new)
    assert new is not None
    arrive = (d.immigrate < p.immigrants[:, None])[..., None]
    return torch.where(arrive, lo + (hi - lo) * d.place, new)
