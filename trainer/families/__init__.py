"""The registry of families: one registration line each (docs/families.md).

A run config names its family (`family`, "gan" when absent: every run stored before families
existed is a GAN run). Everything outside trainer/families/ reaches a family through `get` and
the contract of trainer/family.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collapse_lab.trainer.commands import Command, Set, action
from collapse_lab.trainer.families.decoding.family import FAMILY as DECODING
from collapse_lab.trainer.families.diffusion.family import FAMILY as DIFFUSION
from collapse_lab.trainer.families.evolution.family import FAMILY as EVOLUTION
from collapse_lab.trainer.families.gan.family import FAMILY as GAN
from collapse_lab.trainer.families.vae.family import FAMILY as VAE
from collapse_lab.trainer.family import Family
from collapse_lab.trainer.knobs import ConfigError

# ------------------------------------------------------------------ registration: one line each
FAMILIES: dict[str, Family] = {f.name: f for f in (
    GAN,
    EVOLUTION,
    VAE,
    DIFFUSION,
    DECODING,
)}
DEFAULT = "gan"


def get(name: str | None) -> Family:
    """The family called `name` (None: the default); ConfigError naming `family` if unknown."""
    name = DEFAULT if name is None else name
    fam = FAMILIES.get(name) if isinstance(name, str) else None
    if fam is None:
        raise ConfigError("family", f"unknown family {str(name)[:40]!r}; expected one of "
                          + ", ".join(FAMILIES))
    return fam


def of(values: Mapping[str, Any] | Any) -> Family:
    """The family of a config or of a dict of knob values (absent: the default)."""
    if isinstance(values, Mapping):
        return get(values.get("family"))
    return get(getattr(values, "family", None))


def make_config(values: Mapping[str, Any] | None = None) -> Any:
    """A validated run config of the family `values` names, from (possibly string) values."""
    values = dict(values or {})
    return of(values).make_config(values)


def load_state(d: dict[str, Any]) -> Any:
    """A checkpoint's dict -> its family's RunState (a checkpoint without a family: the GAN)."""
    return of(d.get("config") or {}).load(d)


def load_checkpoint(path: Any) -> Any:
    """A checkpoint file -> its family's RunState."""
    import torch

    return load_state(torch.load(path, map_location="cpu", weights_only=False))


def validate_changes(cfg: Any, changes: Mapping[str, Any], *, live: bool) -> dict[str, Any]:
    """A change checked against `cfg` by its family; `family` itself never changes."""
    if "family" in changes and changes["family"] != cfg.family:
        raise ConfigError("family", "a run's family cannot change; start a new run")
    rest = {k: v for k, v in changes.items() if k != "family"}
    return of(cfg).validate_changes(cfg, rest, live=live)


def parse_command(control: Mapping[str, Any], cfg: Any, *, live: bool = True) -> Command:
    """A control body (`{"action": ...}` or `{"set": {...}}`) checked against the run's config
    `cfg`: the one place a change is validated (trainer/commands.py). Raises ConfigError naming
    the field."""
    if "set" in control:
        changes = control["set"]
        if not isinstance(changes, Mapping) or not changes:
            raise ConfigError("set", "expected an object of knob values, at least one")
        return Set(validate_changes(cfg, changes, live=live))
    return action(control.get("action", ""), control.get("n", 1), control.get("part", "both"),
                  of(cfg).parts)


def stack_key(cfg: Any) -> tuple:
    """Runs with equal keys can share one engine: same family, same step shape."""
    return (cfg.family, *of(cfg).stack_key(cfg))


def knob(name: str, family: str | None = None) -> Any:
    """A knob by name: of `family`, or of the first family that has it."""
    fams = [get(family)] if family else list(FAMILIES.values())
    for f in fams:
        if name in f.knobs:
            return f.knobs[name]
    raise ConfigError(name, "unknown knob; expected one of "
                      + ", ".join(sorted({n for f in fams for n in f.knobs})))


def all_knobs() -> dict[str, Any]:
    """Every knob of every family by name (a name two families share is one knob: the first
    family's description, its choices the union of theirs and its range the widest, so the
    door — the CLI's flags, the API's request model — lets through what any family accepts, and
    the run's family then checks its own)."""
    import dataclasses

    out: dict[str, Any] = {}
    for f in FAMILIES.values():
        for n, k in f.knobs.items():
            if n not in out:
                out[n] = k
                continue
            first = out[n]
            if first.choices and k.choices:
                extra = tuple(c for c in k.choices if c not in first.choices)
                if extra:
                    out[n] = first = dataclasses.replace(first, choices=first.choices + extra)
            if first.lo is not None and k.lo is not None and first.hi is not None \
                    and k.hi is not None and (k.lo < first.lo or k.hi > first.hi):
                out[n] = dataclasses.replace(first, lo=min(first.lo, k.lo),
                                             hi=max(first.hi, k.hi))
    return out
