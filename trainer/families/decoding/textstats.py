"""Diversity of a batch of decoded strings: distinct-n and self-BLEU.

- distinct-n (Li et al. 2016): distinct n-grams over all n-grams of the batch (0 … 1; low =
  the strings repeat each other's phrases).
- self-BLEU (Zhu et al. 2018, Texygen): each string's BLEU-3 (uniform weights, the brevity
  penalty of the closest length, a zero count smoothed to 0.1) against the other strings of the
  batch as references, averaged (0 … 1; 1 = every string is found in the others). A batch of
  one string reads 1: nothing in it differs.
"""

from __future__ import annotations

import math
from collections import Counter


def _grams(words: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def distinct(strings: list[list[int]], n: int) -> float:
    grams = [g for s in strings for g in _grams(s, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(strings: list[list[int]], max_n: int = 3) -> float:
    m = len(strings)
    if m < 2:
        return 1.0
    counts = [[Counter(_grams(s, n)) for s in strings] for n in range(1, max_n + 1)]
    # per n-gram: the largest count in any string, how many strings have it, the next largest:
    # the most any *other* string has is one of the two
    tops: list[dict[tuple[int, ...], tuple[int, int, int]]] = []
    for per in counts:
        t: dict[tuple[int, ...], tuple[int, int, int]] = {}
        for counter in per:
            for g, k in counter.items():
                a, na, b = t.get(g, (0, 0, 0))
                if k > a:
                    t[g] = (k, 1, a)
                elif k == a:
                    t[g] = (a, na + 1, b)
                else:
                    t[g] = (a, na, max(b, k))
        tops.append(t)
    lengths = Counter(len(s) for s in strings)
    total = 0.0
    for i, s in enumerate(strings):
        c = len(s)
        if c == 0:
            continue
        logs = []
        for n, per in enumerate(counts):
            own = per[i]
            grams = sum(own.values())
            if grams == 0:
                continue
            hit = 0
            for g, k in own.items():
                a, na, b = tops[n][g]
                other = b if (k == a and na == 1) else a
                hit += min(k, other)
            logs.append(math.log(hit / grams if hit else 0.1 / grams))
        others = lengths.copy()
        others[c] -= 1
        r = min((abs(length - c), length) for length, k in others.items() if k > 0)[1]
        bp = 1.0 if c >= r else math.exp(1 - r / c)
        total += bp * math.exp(sum(logs) / len(logs)) if logs else 0.0
    return total / m
