"""The docs list what the code reports: every metric key and every live knob."""

from pathlib import Path

from collapse_lab.trainer.families.gan.config import LIVE_KNOBS
from collapse_lab.trainer.stats import SCALAR_NAMES

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_metrics_doc_defines_every_reported_key():
    text = (DOCS / "metrics.md").read_text()
    for key in (*SCALAR_NAMES, "occupancy"):
        assert f"`{key}`" in text, key


def test_live_changes_doc_covers_every_live_knob():
    text = (DOCS / "live-changes.md").read_text()
    for knob in LIVE_KNOBS:
        assert f"`{knob}`" in text, knob
