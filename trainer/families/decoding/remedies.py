"""The decoding family's remedies for beam collapse, as the page's remedy panel, the client's
summary and the tests see them: which knobs each one owns, the values that switch it on
(`typical`, which includes the `strategy` that selects it) and off (`off`: back to beam
search), and its source. Both are selected by the decoding knob `strategy`, which neither owns:
a remedy's knobs are those that tune it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collapse_lab.trainer.families.decoding.knobs import DECODE
from collapse_lab.trainer.knobs import Knob

_BY_NAME = {k.name: k for k in DECODE}


@dataclass(frozen=True)
class Remedy:
    name: str
    label: str
    help: str
    source: str
    knob_names: tuple[str, ...]
    typical: dict[str, Any] = field(default_factory=dict)
    off: dict[str, Any] = field(default_factory=dict)
    structural: bool = False

    @property
    def knobs(self) -> tuple[Knob, ...]:
        return tuple(_BY_NAME[n] for n in self.knob_names)

    def is_on(self, cfg: Any) -> bool:
        """On when the run decodes with this remedy's strategy."""
        return bool(cfg.strategy == self.typical["strategy"])

    def describe(self) -> dict[str, Any]:
        return dict(name=self.name, label=self.label, help=self.help, source=self.source,
                    knobs=list(self.knob_names), typical=self.typical, off=self.off,
                    structural=self.structural, kind="value", stat=None)


REMEDIES: dict[str, Remedy] = {r.name: r for r in (
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
