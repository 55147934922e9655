"""The decoding family's remedies for beam collapse, as the page's remedy panel, the client's
summary and the tests see them: which knobs each one owns, the values that switch it on
(`typical`, which includes the `strategy` that selects it) and off (`off`: back to beam
search), and its source. Both are selected by the decoding knob `strategy`, which neither owns:
a remedy's knobs are those that tune it."""

from __future__ import annotations

from functools import partial
from typing import Any

from collapse_lab.trainer.families.decoding.knobs import DECODE
from collapse_lab.trainer.family import Remedy as _Remedy

_BY_NAME = {k.name: k for k in DECODE}


class StrategyRemedy(_Remedy):
    """A decoding strategy as a remedy: its knobs tune the strategy it switches to."""

    def is_on(self, cfg: Any) -> bool:
        """On when the run decodes with this remedy's strategy."""
        return bool(cfg.strategy == self.typical["strategy"])


# one of this family's remedies: trainer/family.py `Remedy` over its knobs
Remedy = partial(StrategyRemedy, table=_BY_NAME)


REMEDIES: dict[str, StrategyRemedy] = {r.name: r for r in (
    Remedy("sampling", "sampling",
           "draw each word from the model's distribution instead of searching for the "
           "likeliest string: at temperature 1 the templates come out in proportion",
           "Holtzman et al., ICLR 2020", ("temperature", "top_k", "top_p", "samples"),
           typical=dict(strategy="sample", temperature=1.0, top_k=0, top_p=1.0),
           off=dict(strategy="beam")),
    Remedy("diverse_beam", "diverse beam search",
           "beams split into groups, each penalised for the words earlier groups chose at the "
           "same step: the groups go different ways",
           "Vijayakumar et al., AAAI 2018 (arXiv 2016)", ("groups", "diversity"),
           typical=dict(strategy="diverse_beam", groups=16, diversity=1.0),
           off=dict(strategy="beam")),
)}
