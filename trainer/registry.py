"""Everything a user can choose, in one JSON-able description (CLI, /api/options, the UI), and
the presets of every family by name.

`options()` carries `families` (each with its knobs, datasets, stats, frame, remedies and preset
names: trainer/family.py) and, at the top level, the GAN's lists as before (`knobs`,
`objectives`, `remedies`), every dataset, every preset (with its `family` and its claim as
`expect`: metric, op, value) and every stat any family reports.
"""

from __future__ import annotations

from typing import Any

from collapse_lab.trainer import data, families, stats
from collapse_lab.trainer.families.gan import objectives
from collapse_lab.trainer.family import Claim, Preset
from collapse_lab.trainer.knobs import ConfigError, Knob

# every scalar a tick of any family reports, each name once (frames, CSV columns, docs)
SCALARS = stats.merged(list(families.FAMILIES.values()))
SCALAR_NAMES = tuple(s.name for s in SCALARS)


FAMILY_KNOB = Knob("family", "choice", families.DEFAULT, "the kind of model: "
                   + "; ".join(f"{f.name} = {f.help}" for f in families.FAMILIES.values()),
                   group="run", choices=tuple(families.FAMILIES), label="Family")


def knob_list() -> list[Knob]:
    """`family` and every knob of every family, each name once: what the CLI's flags and the
    API's request bodies accept (the run's family then checks its own)."""
    return [FAMILY_KNOB, *families.all_knobs().values()]


def knobs() -> list[dict[str, Any]]:
    return [k.describe() for k in knob_list()]


def allowed(name: str) -> str:
    return next(k.allowed() for k in knob_list() if k.name == name)


def control_label(name: str) -> str:
    return f"{name} (remedy off)"


def presets() -> dict[str, Preset]:
    """Every family's presets by name (names are unique across families)."""
    out: dict[str, Preset] = {}
    for fam in families.FAMILIES.values():
        for name, p in fam.presets().items():
            if name in out:
                raise ValueError(f"preset {name} is declared by two families")
            out[name] = p
    return out


PRESETS = presets()


def preset(name: str) -> Preset:
    ps = presets()
    if name not in ps:
        raise ConfigError("preset", f"unknown preset {name!r}; expected one of "
                          + ", ".join(ps))
    return ps[name]


def preset_family(name: str) -> str:
    """The family a preset belongs to."""
    p = preset(name)
    return getattr(p, "family", None) or families.DEFAULT


def preset_values(name: str) -> dict[str, Any]:
    """The preset's knob values, bases resolved (base first, then the preset's own), with its
    family."""
    p = preset(name)
    values = preset_values(p.base) if p.base else {}
    values.update(p.values)
    values["family"] = preset_family(name)
    return values


def from_preset(name: str | None, overrides: dict[str, Any] | None = None) -> Any:
    """A validated config: the preset's values (if any), then the overrides."""
    values = preset_values(name) if name else {}
    values.update(overrides or {})
    return families.make_config(values)


def claim(name: str) -> Claim | None:
    """A preset's calibrated claim, machine-readable."""
    e = preset(name).expect
    if e is None:
        return None
    if isinstance(e, Claim):
        return e
    metric, op, value = e
    return Claim(metric, op, float(value))


def claim_text(name: str) -> str:
    """The calibrated claim in words, e.g. '≤ 3 of 8 modes covered at the end'."""
    c = claim(name)
    if c is None:
        return "—"
    spec = data.DATASETS.get(preset_values(name).get("dataset", "ring8"))
    k = spec.modes if spec is not None else None
    what = spec.mode_word if spec is not None else "modes"
    op = "≤" if c.op == "at_most" else "≥"
    if c.metric == "effective_modes":
        return f"effective {what} {op} {c.value:g} at the end (of {k})"
    if c.metric == "modes_captured":  # the papers' "modes": nearest mode of a high-quality sample
        return f"{op} {c.value:g} of {k} {what} captured at the end"
    if c.metric == "modes_covered":
        return f"{op} {c.value:g} of {k} {what} covered at the end"
    # a family's own stat: its label and its value as the cards show it ("active units ≤ 1 at
    # the end", "memorised ≥ 50.0 % at the end")
    stat = next((s for s in SCALARS if s.name == c.metric), None)
    if stat is None:
        return f"{c.metric} {op} {c.value:g} at the end"
    return f"{stat.label} {op} {stat.format(c.value)} at the end"


def meets_claim(name: str, final: dict[str, Any]) -> bool:
    """Whether a final tick (or a sweep row) meets the preset's claim."""
    c = claim(name)
    return True if c is None else c.holds(final)


def describe_presets() -> list[dict[str, Any]]:
    # claim_step: the step the claim was calibrated at, the preset's own length; twin_of: the
    # collapse preset a remedy twin rescues (a twin calibrated against its control)
    out = []
    for p in presets().values():
        c = claim(p.name)
        out.append(dict(name=p.name, family=preset_family(p.name), help=p.help,
                        values=preset_values(p.name),
                        twin_of=p.base if getattr(p, "control", None) is not None else None,
                        claim=claim_text(p.name) if c else None,
                        expect=c.describe() if c else None,
                        claim_step=from_preset(p.name).steps if c else None))
    return out


def options() -> dict[str, Any]:
    fams = list(families.FAMILIES.values())
    gan = families.get("gan")
    return dict(
        families=[f.describe() for f in fams],
        datasets=data.describe(),
        objectives=objectives.describe(),
        remedies=[r.describe() for r in gan.remedies],
        presets=describe_presets(),
        knobs=[k.describe() for k in gan.knobs.values()],
        stats=stats.describe(SCALARS),
    )
