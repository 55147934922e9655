"""The binary wire format of docs/protocol.md: encode (worker) and decode (Python client, tests).

A frame is encoded once, in the worker process, and the server forwards the same bytes to every
viewer. Layout (little-endian, every array 4-byte aligned so a browser can view it in place):

    header 32 B | JSON scalars, space-padded to 4 | samples f32 N×D | occupancy f32 K |
    modes u8 N, zero-padded to 4 | value grid f32 GW×GH | manifold f32 M×M×2

Replay bodies are a concatenation of records `u32 length | message`, each message a multiple of
4 bytes long, so every array stays aligned inside the whole replay buffer.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collapse_lab.trainer.registry import SCALAR_NAMES

MAGIC = b"CLAB"
VERSION = 1
FRAME = 1
REAL = 2
FLAG_GRID = 1
FLAG_IMAGES = 2
FLAG_MANIFOLD = 4  # G's image of an M×M latent grid follows the value grid
MAX_MANIFOLD_SIDE = 256
MAX_ARROWS_SIDE = 32  # a vector field sent in the JSON part: at most 32 × 32 arrows
HEADER = struct.Struct("<4sBBHIIIIHHHH")  # 32 bytes
assert HEADER.size == 32

# scalars carried in a frame's JSON part, in this order (docs/protocol.md)
SCALAR_KEYS = SCALAR_NAMES


class ProtocolError(ValueError):
    """A message that is not a valid protocol message; the text says what is wrong."""


@dataclass
class Message:
    """One decoded binary message (frame or real samples)."""

    type: int
    step: int
    config_version: int
    scalars: dict[str, Any]
    samples: np.ndarray  # (N, D) float32
    occupancy: np.ndarray  # (K,) float32
    nearest: np.ndarray  # (N,) uint8 mode index
    hq: np.ndarray  # (N,) bool
    value_grid: np.ndarray | None  # (GH, GW) float32, row 0 at ymin
    images: bool = False
    manifold: np.ndarray | None = None  # (M, M, 2) float32: G(z) over the latent grid, row 0 first
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """A JSON-able view with the big arrays summarized (for `watch --json`)."""
        out = dict(self.scalars)
        out["type"] = "frame" if self.type == FRAME else "real"
        out["step"], out["config_version"] = self.step, self.config_version
        out["occupancy"] = [round(float(v), 5) for v in self.occupancy]
        out["samples"] = dict(n=int(self.samples.shape[0]), dim=int(self.samples.shape[1]),
                              mean=[round(float(v), 4) for v in self.samples.mean(0)[:2]]
                              if len(self.samples) else [])
        if self.value_grid is not None:
            g = self.value_grid
            out["value_grid"] = dict(shape=list(g.shape), min=round(float(g.min()), 5),
                                     max=round(float(g.max()), 5))
        if self.manifold is not None:
            out["manifold"] = dict(side=int(self.manifold.shape[0]),
                                   note=self.scalars.get("manifold_note"))
        return out


def _pad4(n: int) -> int:
    return (-n) % 4


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _pack(kind: int, step: int, version: int, meta: dict[str, Any] | None, samples: np.ndarray,
          occupancy: np.ndarray, modes: np.ndarray, grid: np.ndarray | None,
          images: bool, manifold: np.ndarray | None = None) -> bytes:
    samples = np.ascontiguousarray(samples, dtype="<f4")
    n, d = samples.shape
    occupancy = np.ascontiguousarray(occupancy, dtype="<f4").ravel()
    modes = np.ascontiguousarray(modes, dtype=np.uint8).ravel()
    if modes.shape[0] != n:
        raise ProtocolError(f"modes need one byte per sample: {n} samples, {modes.shape[0]} modes")
    gh = gw = 0
    flags = FLAG_IMAGES if images else 0
    if grid is not None:
        grid = np.ascontiguousarray(grid, dtype="<f4")
        gh, gw = grid.shape
        flags |= FLAG_GRID
    if manifold is not None:
        manifold = np.ascontiguousarray(manifold, dtype="<f4")
        side = manifold.shape[0]
        if manifold.shape != (side, side, 2) or not 2 <= side <= MAX_MANIFOLD_SIDE:
            raise ProtocolError(f"manifold must be (M, M, 2) with M in [2, {MAX_MANIFOLD_SIDE}], "
                                f"got shape {manifold.shape}")
        if meta is None or meta.get("manifold_side") != side:
            raise ProtocolError("a manifold needs manifold_side in the JSON part")
        flags |= FLAG_MANIFOLD
    js = b"" if meta is None else json.dumps(meta, separators=(",", ":"),
                                             allow_nan=False).encode()
    head = HEADER.pack(MAGIC, VERSION, kind, flags, step, version, len(js), n, d,
                       occupancy.shape[0], gw, gh)
    parts = [head, js, b" " * _pad4(len(js)), samples.tobytes(), occupancy.tobytes(),
             modes.tobytes(), b"\0" * _pad4(n)]
    if grid is not None:
        parts.append(grid.tobytes())
    if manifold is not None:
        parts.append(manifold.tobytes())
    return b"".join(parts)


def _sig4(v: float) -> float | None:
    """A float rounded to 4 significant digits (a panel's numbers: small JSON); None if not
    finite."""
    if not math.isfinite(v):
        return None
    return float(f"{v:.4g}")


def panel_json(value: Any, depth: int = 0) -> Any:
    """A family panel's value (docs/families.md, "Panels") as plain JSON: arrays and tensors as
    lists, floats to 4 significant digits, non-finite numbers as null, strings cut at 200
    characters. Its shape is the family's (trainer/family.py `Panel.kind`); the page checks it."""
    if depth > 6:
        raise ProtocolError("a panel's value nests deeper than 6 levels")
    if isinstance(value, dict):
        return {str(k)[:64]: panel_json(v, depth + 1) for k, v in value.items()}
    if hasattr(value, "tolist"):  # numpy array or scalar, torch tensor
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [panel_json(v, depth + 1) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _sig4(value)
    if isinstance(value, str):
        return value[:200]
    raise ProtocolError(f"a panel's value holds a {type(value).__name__}, not JSON")


# a tick's keys that only its frame carries (arrays, pictures and what describes them): the
# worker sends a run's numbers without them and `collapse-lab train --json` prints none of them
FRAME_KEYS = ("samples", "value_grid", "nearest", "hq", "extent", "manifold", "manifold_note",
              "panels", "arrows")


def encode_frame(tick: dict[str, Any], status: str = "running",
                 extra: dict[str, Any] | None = None) -> bytes:
    """A type-1 frame from a trainer tick dict (trainer.loop.Trainer.tick).

    `tick["manifold"]` (M, M, 2), when present, is G's image of an M×M latent grid and
    `tick["manifold_note"]` says which slice of the latent space the grid spans.
    `tick["arrows"]` (A, A, 2), when present, is a vector field over the extent (a family's
    `Frame.arrows`, e.g. a diffusion model's learned score), sent in the JSON part.
    `tick["panels"]`, when present, is the family's panels by key, carried in the JSON part.
    """
    meta = {k: _finite(tick[k]) for k in SCALAR_KEYS if k in tick}
    if tick.get("panels"):
        meta["panels"] = panel_json(tick["panels"])
    if tick.get("extent") is not None:
        meta["extent"] = [float(v) for v in tick["extent"]]
    meta["status"] = status
    if extra:
        meta.update({k: _finite(v) for k, v in extra.items()})
    arrows = tick.get("arrows")
    if arrows is not None:  # a vector field drawn as arrows: (A, A, 2) over the extent
        arrows = np.asarray(arrows, dtype=np.float64)
        side = arrows.shape[0]
        if arrows.shape != (side, side, 2) or not 2 <= side <= MAX_ARROWS_SIDE:
            raise ProtocolError(f"arrows must be (A, A, 2) with A in [2, {MAX_ARROWS_SIDE}], "
                                f"got shape {arrows.shape}")
        flat = np.where(np.isfinite(arrows), arrows, 0.0).ravel()
        meta["arrows"] = {"side": side, "uv": [float(f"{v:.4g}") for v in flat]}
    manifold = tick.get("manifold")
    if manifold is not None:
        manifold = np.asarray(manifold, dtype=np.float32)
        meta["manifold_side"] = int(manifold.shape[0])
        if tick.get("manifold_note"):
            meta["manifold_note"] = str(tick["manifold_note"])[:200]
    samples = np.asarray(tick["samples"], dtype=np.float32)
    images = samples.ndim == 2 and samples.shape[1] > 2
    n = samples.shape[0]
    nearest = np.asarray(tick["nearest"])[:n].astype(np.int64)
    hq = np.asarray(tick["hq"])[:n].astype(bool)
    modes = (nearest & 0x7F).astype(np.uint8) | (hq.astype(np.uint8) << 7)
    grid = tick.get("value_grid")
    return _pack(FRAME, int(tick["step"]), int(tick["config_version"]), meta, samples,
                 np.asarray(tick["occupancy"], dtype=np.float32), modes, grid, images, manifold)


def encode_real(samples: np.ndarray, modes: np.ndarray | None = None, step: int = 0,
                version: int = 0, meta: dict[str, Any] | None = None) -> bytes:
    """A type-2 message: the real samples (N, D) and each one's mode index (hq bit set).
    `meta`, when given, is its JSON part (the dataset preview sends the dataset's description);
    a run's websocket sends none."""
    samples = np.asarray(samples, dtype=np.float32)
    n = samples.shape[0]
    idx = np.zeros(n, np.int64) if modes is None else np.asarray(modes).astype(np.int64)
    packed = (idx & 0x7F).astype(np.uint8) | np.uint8(0x80)
    images = samples.shape[1] > 2
    return _pack(REAL, step, version, meta, samples, np.zeros(0, np.float32), packed, None,
                 images)


def _need(buf: memoryview, off: int, size: int, what: str, kind: str) -> None:
    if off + size > len(buf):
        raise ProtocolError(f"{kind} truncated: {what} need {size} bytes at offset {off}, "
                            f"{max(len(buf) - off, 0)} left")


def decode(data: bytes | bytearray | memoryview) -> Message:
    """Decode one binary message; raise ProtocolError naming what is missing or wrong."""
    buf = memoryview(data)
    if len(buf) < HEADER.size:
        raise ProtocolError(f"message truncated: header needs 32 bytes, got {len(buf)}")
    (magic, ver, kind, flags, step, version, j, n, d, k, gw, gh) = HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise ProtocolError(f"bad magic {bytes(magic)!r}, expected {MAGIC!r}")
    if ver != VERSION:
        raise ProtocolError(f"protocol version {ver}, this decoder reads {VERSION}")
    if kind not in (FRAME, REAL):
        raise ProtocolError(f"unknown message type {kind}, expected 1 (frame) or 2 (real)")
    name = "frame" if kind == FRAME else "real samples"
    off = HEADER.size
    _need(buf, off, j, "json", name)
    try:
        scalars = json.loads(bytes(buf[off:off + j])) if j else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(f"{name} garbled: json part does not parse ({e})") from None
    if not isinstance(scalars, dict):
        raise ProtocolError(f"{name} garbled: json part is not an object")
    off += j + _pad4(j)
    _need(buf, off, 4 * n * d, "samples", name)
    samples = np.frombuffer(buf, "<f4", n * d, off).reshape(n, d)
    off += 4 * n * d
    _need(buf, off, 4 * k, "occupancy", name)
    occ = np.frombuffer(buf, "<f4", k, off)
    off += 4 * k
    _need(buf, off, n, "modes", name)
    modes = np.frombuffer(buf, np.uint8, n, off)
    off += n + _pad4(n)
    grid = None
    if flags & FLAG_GRID:
        _need(buf, off, 4 * gw * gh, "value grid", name)
        grid = np.frombuffer(buf, "<f4", gw * gh, off).reshape(gh, gw)
        off += 4 * gw * gh
    manifold = None
    if flags & FLAG_MANIFOLD:
        side = scalars.get("manifold_side")
        if (not isinstance(side, int) or isinstance(side, bool)
                or not 2 <= side <= MAX_MANIFOLD_SIDE):
            raise ProtocolError(f"{name} garbled: the manifold flag needs manifold_side, an "
                                f"integer in [2, {MAX_MANIFOLD_SIDE}], got {side!r}")
        _need(buf, off, 4 * side * side * 2, "manifold", name)
        manifold = np.frombuffer(buf, "<f4", side * side * 2, off).reshape(side, side, 2)
    return Message(type=kind, step=step, config_version=version, scalars=scalars,
                   samples=samples, occupancy=occ, nearest=modes & 0x7F,
                   hq=(modes & 0x80).astype(bool), value_grid=grid,
                   images=bool(flags & FLAG_IMAGES), manifold=manifold)


def pack_records(messages: list[bytes]) -> bytes:
    """The replay body: `u32 length | message` for each message."""
    out = bytearray()
    for m in messages:
        out += struct.pack("<I", len(m))
        out += m
    return bytes(out)


def unpack_records(data: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(data):
        if off + 4 > len(data):
            raise ProtocolError(f"replay truncated: record length needs 4 bytes at offset {off}")
        (n,) = struct.unpack_from("<I", data, off)
        off += 4
        if off + n > len(data):
            raise ProtocolError(f"replay truncated: record needs {n} bytes at offset {off}, "
                                f"{len(data) - off} left")
        out.append(data[off:off + n])
        off += n
    return out
