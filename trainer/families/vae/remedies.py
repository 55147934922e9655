"""The vae family's remedies for posterior collapse, as the page's remedy panel, the client's
summary and the tests see them: which knobs each one owns, the values that switch it on
(`typical`) and off (`off`), and its source (docs/families.md has what each does here)."""

from __future__ import annotations

from functools import partial

from collapse_lab.trainer.families.vae.knobs import VAE
from collapse_lab.trainer.family import Remedy as _Remedy

_BY_NAME = {k.name: k for k in VAE}


# one of this family's remedies: trainer/family.py `Remedy` over its knobs
Remedy = partial(_Remedy, table=_BY_NAME)


REMEDIES: dict[str, _Remedy] = {r.name: r for r in (
    Remedy("free_bits", "free bits",
           "each latent unit may carry λ nats for free: below λ its KL costs nothing, so the "
           "KL term cannot push it all the way onto the prior",
           "Kingma et al., NeurIPS 2016", ("free_bits",),
           typical=dict(free_bits=0.5), off=dict(free_bits=0.0)),
    Remedy("warmup", "KL warm-up",
           "the KL weight grows from 0 to β: the model first learns to use z, then pays for it",
           "Bowman et al., CoNLL 2016", ("warmup",),
           typical=dict(warmup=2000), off=dict(warmup=0)),
    Remedy("aggressive", "aggressive encoder",
           "encoder-only updates before each joint one, so the posterior keeps up with the "
           "decoder instead of lagging onto the prior",
           "He et al., ICLR 2019", ("aggressive",),
           typical=dict(aggressive=5), off=dict(aggressive=0)),
    Remedy("beta", "smaller β",
           "a smaller weight on the KL term: information in z costs less",
           "Higgins et al., ICLR 2017 (β-VAE)", ("beta",),
           typical=dict(beta=0.5), off=dict(beta=1.0)),
)}
