"""What the GAN's step reports per run (trainer/family.py: `Family.stats`): both losses, each
penalty's weighted term, both gradient norms. A tick reads them beside the common stats and the
mode metrics (trainer/stats.py)."""

from __future__ import annotations

from collapse_lab.trainer.families.gan.remedies import PENALTIES
from collapse_lab.trainer.family import Stat

STEP = (
    Stat("loss_d", "D loss", "loss", "the discriminator's loss, mean over its updates",
         stage="d", fmt=".4f", color="#e4572e"),
    Stat("loss_g", "G loss", "loss", "the generator's loss (without penalty terms)",
         stage="g", fmt=".4f", color="#4c8bf5"),
    *(Stat(p.stat, p.stat_label, "term", f"{p.label}: its weighted term in "
           f"{'D' if p.stage == 'd' else 'G'}'s loss", stage=p.stage, fmt=".4f",
           color=p.color) for p in PENALTIES),
    Stat("grad_norm_d", "‖∇D‖", "norm", "norm of D's gradient in its last update",
         stage="last", color="#9a3412"),
    Stat("grad_norm_g", "‖∇G‖", "norm", "norm of G's gradient in its last update",
         stage="last", color="#1d4ed8"),
)
STEP_NAMES = tuple(s.name for s in STEP)
