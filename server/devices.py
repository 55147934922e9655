"""What this server's workers can train on, asked once (the answer does not change while the
server runs) so a run asking for a device the machine lacks is refused when it is created."""

from __future__ import annotations

from functools import lru_cache

from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.run_knobs import DEVICES


@lru_cache(maxsize=1)
def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def devices() -> list[str]:
    """The values of the `device` knob this server accepts."""
    return [d for d in DEVICES if d != "cuda" or cuda_available()]


def check_device(value: object) -> None:
    if value == "cuda" and not cuda_available():
        raise ConfigError("device", "this server has no CUDA device; expected one of "
                          + ", ".join(devices()))
