"""The docs list what the code reports: every metric key and every live knob."""

from pathlib import Path

from collapse_lab.trainer.families.gan.config import LIVE_KNOBS
from collapse_lab.trainer.registry import SCALAR_NAMES

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_metrics_doc_defines_every_reported_key():
    text = (DOCS / "metrics.md").read_text()
    for key in (*SCALAR_NAMES, "occupancy"):
        assert f"`{key}`" in text, key


def test_operations_doc_lists_every_setting_and_serve_has_its_flag():
    import argparse

    from collapse_lab.server.cli import add_setting_flags, setting_flag
    from collapse_lab.server.settings import Settings

    text = (DOCS / "operations.md").read_text()
    p = argparse.ArgumentParser()
    add_setting_flags(p)
    flags = {o for a in p._actions for o in a.option_strings}
    for name in Settings.model_fields:
        assert f"| {name} |" in text, name
        assert setting_flag(name) in flags, name
    rows = [line.split("|")[1].strip() for line in text.split("## Settings")[1].split("##")[0]
            .splitlines() if line.startswith("| ") and not line.startswith("| name")]
    assert set(rows) == set(Settings.model_fields), set(rows) ^ set(Settings.model_fields)


def test_live_changes_doc_covers_every_live_knob():
    text = (DOCS / "live-changes.md").read_text()
    for knob in LIVE_KNOBS:
        assert f"`{knob}`" in text, knob


def test_readme_installs_what_ci_installs():
    """A newcomer's test run installs the extras CI does (else the Ray tests skip for them), the
    way CI does (the strict editable install that scripts/lint.sh's mypy follows)."""
    import re

    root = DOCS.parent
    ci = re.search(r"pip install -q -e '\.\[([^\]]*)\]'( --config-settings editable_mode=strict)",
                   (root / ".ci" / "run").read_text())
    assert ci, ".ci/run installs the project with its extras, strict editable"
    assert f"pip install -e '.[{ci.group(1)}]'{ci.group(2)}" in (root / "README.md").read_text()
