"""The diffusion family's remedies for memorisation, as the page's remedy panel, the client's
summary and the tests see them: which knobs each one owns, the values that switch it on
(`typical`) and off (`off`), and its source (docs/families.md has what each does here)."""

from __future__ import annotations

from functools import partial

from collapse_lab.trainer.families.diffusion.knobs import DIFF
from collapse_lab.trainer.family import Remedy as _Remedy

_BY_NAME = {k.name: k for k in DIFF}


# one of this family's remedies: trainer/family.py `Remedy` over its knobs
Remedy = partial(_Remedy, table=_BY_NAME)


REMEDIES: dict[str, _Remedy] = {r.name: r for r in (
    Remedy("more_data", "more training points",
           "train on more points of the distribution: with thousands, no point can be "
           "memorised and the model learns the curve",
           "Somepalli et al., CVPR 2023; Kadkhodaie et al., ICLR 2024", ("train_points",),
           typical=dict(train_points=1024), off=dict(train_points=16)),
    Remedy("weight_decay", "weight decay",
           "pulls the weights towards 0: a smoother predictor that cannot fit a spike at each "
           "point", "Loshchilov & Hutter, ICLR 2019 (AdamW)", ("weight_decay",),
           typical=dict(weight_decay=0.1), off=dict(weight_decay=0.0)),
    Remedy("dropout", "dropout", "hidden units dropped at random while training",
           "Srivastava et al., JMLR 2014", ("dropout",),
           typical=dict(dropout=0.2), off=dict(dropout=0.0)),
    Remedy("ema", "EMA of the weights", "the sampler uses a moving average of the weights",
           "Ho et al., NeurIPS 2020", ("ema",), typical=dict(ema=0.999), off=dict(ema=0.0)),
)}
