"""A synthetic language whose modes are known: K sentence templates with set probabilities, each
producing many sentences, so every string a language model writes can be traced to its template.

A template is a sequence of slots, each slot a set of words drawn uniformly; the templates start
with different words and every sentence ends with ".", so a string belongs to at most one
template. A string is *valid* (the metrics' "high quality") when it parses as its template in
full; its *mode* is the template its first word opens (docs/families.md, decoding).

Sentences are token-id rows (n, L) of a fixed length `length`, padded with "." after the end:
the first "." ends the sentence.
"""

from __future__ import annotations

import torch

from collapse_lab.trainer.datasets import Dataset

END = "."
ANIMAL = ("cat", "dog", "bird", "fox")
ACT = ("sleeps", "runs", "sings")
ADJ = ("big", "small", "red", "old")
VERB = ("sees", "likes", "chases")
PLACE = ("here", "there", "outside")

# (probability, slots): each slot a tuple of words. The most likely template's sentences are each
# more likely than any other template's sentence (0.30 / 36 against 0.22 / 48), so a search for the
# likeliest strings finds only it; sampling finds every template in proportion.
TEMPLATES: tuple[tuple[float, tuple[tuple[str, ...], ...]], ...] = (
    (0.30, (("the",), ANIMAL, ACT, PLACE)),
    (0.22, (("a",), ADJ, ANIMAL, ACT)),
    (0.16, (("my",), ANIMAL, VERB, ("the",), ANIMAL)),
    (0.13, (("today",), ADJ, ANIMAL, VERB, ("a",), ANIMAL)),
    (0.11, (("now",), ADJ, ANIMAL, ACT, ("again",))),
    (0.08, (("then",), ANIMAL, VERB, ("my",), ADJ, ANIMAL)),
)


def _name(slots: tuple[tuple[str, ...], ...]) -> str:
    names = {ANIMAL: "ANIMAL", ACT: "ACT", ADJ: "ADJ", VERB: "VERB", PLACE: "PLACE"}
    return " ".join(names.get(s, "|".join(s)) for s in slots)


class TemplateLanguage(Dataset):
    """Sentences of K templates (kind "text"): `sample` draws token rows, `assign` traces each
    row to its template with a validity flag."""

    kind = "text"

    def __init__(self, name: str = "templates",
                 templates: tuple[tuple[float, tuple[tuple[str, ...], ...]], ...] = TEMPLATES):
        super().__init__()
        self.name = name
        words: list[str] = [END]
        for _, spec in templates:
            for slot in spec:
                words += [w for w in slot if w not in words]
        self.vocab = words
        self.index = {w: i for i, w in enumerate(words)}
        self.slots = [[[self.index[w] for w in slot] for slot in spec] for _, spec in templates]
        self.length = max(len(s) for s in self.slots) + 1  # every row ends with "."
        self.dim = self.length
        self.mode_names = [_name(spec) for _, spec in templates]
        p = torch.tensor([w for w, _ in templates], dtype=torch.float64)
        self.weights = (p / p.sum()).to(torch.get_default_dtype())
        k, n, o = len(templates), self.length - 1, max(len(x) for t in self.slots for x in t)
        # table[k, j, m]: the m-th word of slot j of template k ("." past the template's end)
        self.table = torch.zeros(k, n, o, dtype=torch.long)
        self.options = torch.ones(k, n, dtype=torch.long)
        for i, ids in enumerate(self.slots):
            for j, word_ids in enumerate(ids):
                self.table[i, j, :len(word_ids)] = torch.tensor(word_ids)
                self.options[i, j] = len(word_ids)
        self.sizes = torch.tensor([len(t) for t in self.slots])  # words per template
        self.first = torch.full((len(words),), -1, dtype=torch.long)  # first word -> template
        for i, ids in enumerate(self.slots):
            assert len(ids[0]) == 1 and self.first[ids[0][0]] < 0, "first words must differ"
            self.first[ids[0][0]] = i
        # how many sentences each template makes; a sentence's probability is p_k / count_k
        self.counts = self.options.prod(1)
        self.stds = torch.zeros(k)
        self.centres = torch.zeros(k, 0)

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """n sentences (n, length) of token ids: a template by its probability, then each slot's
        word uniformly."""
        dev = gen.device  # drawn where the generator lives, whatever device the data is on
        k = torch.multinomial(self.weights.to(dev, torch.float32), n, replacement=True,
                              generator=gen)
        u = torch.rand(n, self.length - 1, generator=gen, device=dev)
        pick = (u * self.options.to(dev)[k]).long().clamp_max(self.table.shape[2] - 1)
        words = self.table.to(dev)[k].gather(2, pick[..., None])[..., 0]  # (n, length - 1)
        return torch.cat([words, torch.zeros(n, 1, dtype=torch.long, device=dev)], 1)

    # ------------------------------------------------------------------ modes
    def assign(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(template (N,), valid (N,)) of token rows x (N, length): the template its first word
        opens (0 when none does; never valid then), and whether the whole row parses as it."""
        x = x.long()
        n = x.shape[0]
        first = self.first.to(x.device)[x[:, 0]]
        k = first.clamp_min(0)
        body = x[:, : self.length - 1]
        table = self.table.to(x.device)[k]  # (N, S, O)
        ok = (table == body[..., None]).any(-1)  # each position's word is allowed by its slot
        pos = torch.arange(self.length - 1, device=x.device)[None]
        inside = pos < self.sizes.to(x.device)[k][:, None]
        ok = torch.where(inside, ok, body == 0)  # past the template's end: "."
        ends = x[torch.arange(n, device=x.device), self.sizes.to(x.device)[k]] == 0
        return k, (first >= 0) & ok.all(1) & ends

    def decode(self, row: torch.Tensor | list[int]) -> str:
        """A token row as text: its words up to the first "." (without it)."""
        out = []
        for t in (row.tolist() if isinstance(row, torch.Tensor) else row):
            if t == 0:
                break
            out.append(self.vocab[t])
        return " ".join(out)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The language's own log-probability of each row (N,): log(p_k / count_k) for a valid
        sentence, -inf otherwise."""
        k, valid = self.assign(x)
        lp = torch.log(self.weights.to(x.device)[k] / self.counts.to(x.device)[k])
        return torch.where(valid, lp, torch.full_like(lp, -float("inf")))

    def entropy(self) -> float:
        """The language's entropy per sentence (nats): the floor of a perfect model's loss."""
        p, c = self.weights.double(), self.counts.double()
        return float(-(p * torch.log(p / c)).sum())

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        raise TypeError("a language has no distances; use assign()")

    def to_cpu_sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return self.sample(n, gen)

    def describe(self) -> dict:
        d = super().describe()
        d.update(vocab=self.vocab, length=self.length,
                 weights=[round(float(w), 4) for w in self.weights])
        return d
