"""Tracked runs: a training loop of the user's own logs to Collapse Lab (docs/tracking.md).

This module is the part the server and the offline writer of `collapse_lab.track("folder/")`
share, free of any web framework:

- the **wire format** of what a tracking client sends (`pack` / `unpack`): a JSON part and named
  little-endian arrays, bounded in count, rank and size;
- the **knobs** a loop declares (`KnobSpec`, `parse_knobs`, `validate_set`): the values the
  dashboard may change while the loop runs, each checked against the type and range the loop gave;
- the **measure** (`Measure`): collapse measured from the logged samples with the mode metrics
  of trainer/metrics.py, the modes coming from known centres, from class ids the client computed,
  or from k-means bins fit once on a real batch (with NDB and precision/recall), and the samples
  drawn as 2-D points, images, or a fixed 2-D projection of longer vectors.

Everything a client sends is hostile until checked: `unpack` refuses a message whose parts do not
add up, `parse_knobs` and `Measure` bound every list, name and number.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collapse_lab.server.protocol import encode_frame, encode_real
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.registry import SCALAR_NAMES

MAGIC = b"CLTR"
WIRE_VERSION = 1
MAX_MESSAGE = 1 << 20  # bytes of one client message (the websocket's own limit)
MAX_ARRAYS = 4
MAX_ROWS = 4096  # samples in one log, real samples at the start
MAX_DIM = 4096  # numbers per sample (a 64×64 image)
MAX_MODES = 127  # mode indices travel in 7 bits (docs/protocol.md)
MAX_KNOBS = 32
MAX_SCALARS = 32
MAX_CHOICES = 32
FRAME_IMAGES = 64  # images drawn in a frame (the grid); the metrics use every sample
FRAME_POINTS = 2048  # points drawn in a frame
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
SCALAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]{0,63}$")
DTYPES = {"f4": np.float32, "i4": np.int32, "u1": np.uint8}
# what a loop's scalars are called on the charts: the usual names of a GAN loop's losses
ALIASES = {"d_loss": "loss_d", "g_loss": "loss_g", "loss_D": "loss_d", "loss_G": "loss_g"}
# tick names a loop may not set itself (the server measures them)
RESERVED = frozenset(SCALAR_NAMES) - {"loss_d", "loss_g", "grad_norm_d", "grad_norm_g"} | {
    "occupancy", "ndb", "ndb_k", "precision", "recall", "tracked"}
PR_FAKE, PR_REAL = 512, 1024  # samples precision/recall compare at most (the cost of a tick)
KNN = 3  # neighbours for the manifold radii of precision/recall (Kynkäänniemi et al. 2019)
NDB_Z = 1.959963984540054  # two-sided 5 % (Richardson & Weiss 2018)
_HEAD = struct.Struct("<4sBxxxI")  # magic, version, pad, json length


class WireError(ValueError):
    """A tracking message that does not follow the wire format; the text says what is wrong."""


# ---------------------------------------------------------------------------- wire format
def pack(meta: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """A client message: header | JSON (space-padded to 4) | each array, zero-padded to 4."""
    arrays = arrays or {}
    blobs, desc = [], []
    for name, a in arrays.items():
        code = {np.dtype(np.float32): "f4", np.dtype(np.int32): "i4",
                np.dtype(np.uint8): "u1"}[np.dtype(a.dtype)]
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        desc.append([name, code, list(a.shape)])
        b = a.tobytes()
        blobs.append(b + b"\0" * (-len(b) % 4))
    js = json.dumps(dict(meta, arrays=desc), separators=(",", ":"), allow_nan=False).encode()
    js += b" " * (-len(js) % 4)
    return b"".join([_HEAD.pack(MAGIC, WIRE_VERSION, len(js)), js, *blobs])


def unpack(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of a client message; WireError naming what is wrong."""
    if len(data) > MAX_MESSAGE:
        raise WireError(f"message of {len(data)} bytes; at most {MAX_MESSAGE}")
    if len(data) < _HEAD.size:
        raise WireError(f"message of {len(data)} bytes is shorter than its header")
    magic, version, n = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise WireError(f"bad magic {magic!r}, expected {MAGIC!r}")
    if version != WIRE_VERSION:
        raise WireError(f"wire version {version}; this server reads {WIRE_VERSION}")
    off = _HEAD.size
    if off + n > len(data):
        raise WireError(f"json part of {n} bytes runs past the message")
    try:
        meta = json.loads(data[off:off + n])
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WireError("json part does not parse") from None
    if not isinstance(meta, dict):
        raise WireError("json part is not an object")
    off += n
    desc = meta.pop("arrays", [])
    if not isinstance(desc, list) or len(desc) > MAX_ARRAYS:
        raise WireError(f"arrays: a list of at most {MAX_ARRAYS}")
    arrays: dict[str, np.ndarray] = {}
    for d in desc:
        if (not isinstance(d, list) or len(d) != 3 or not isinstance(d[0], str)
                or d[1] not in DTYPES or not isinstance(d[2], list) or not 1 <= len(d[2]) <= 2
                or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= 1 << 20
                           for s in d[2])):
            raise WireError("arrays: each is [name, 'f4' | 'i4' | 'u1', shape of rank 1 or 2]")
        name, code, shape = d
        if name not in ("samples", "labels", "confident", "centres", "real"):
            raise WireError(f"arrays: unknown array {name[:40]!r}")
        count = math.prod(shape)
        size = count * np.dtype(DTYPES[code]).itemsize
        if off + size > len(data):
            raise WireError(f"array {name} needs {size} bytes at offset {off}, "
                            f"{len(data) - off} left")
        arrays[name] = np.frombuffer(data, DTYPES[code], count, off).reshape(shape)
        off += size + (-size % 4)
    if off != len(data):
        raise WireError(f"{len(data) - off} bytes after the last array")
    return meta, arrays


# ---------------------------------------------------------------------------- knobs
@dataclass(frozen=True)
class KnobSpec:
    """One value a tracked loop lets the dashboard change."""

    name: str
    type: str  # float | int | bool | choice
    value: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(name=self.name, type=self.type, value=self.value,
                                   help=self.help)
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.choices:
            out["choices"] = list(self.choices)
        return out

    def allowed(self) -> str:
        if self.type == "bool":
            return "true or false"
        if self.type == "choice":
            return "one of " + ", ".join(self.choices)
        kind = "an integer" if self.type == "int" else "a number"
        if self.min is not None and self.max is not None:
            return f"{kind} in [{self.min:g}, {self.max:g}]"
        if self.min is not None:
            return f"{kind} ≥ {self.min:g}"
        if self.max is not None:
            return f"{kind} ≤ {self.max:g}"
        return kind

    def check(self, v: Any) -> Any:
        """The value `v` as this knob holds it; ConfigError naming the knob and what it takes."""
        bad = ConfigError(self.name, f"expected {self.allowed()}, got {str(v)[:60]}")
        if self.type == "bool":
            if not isinstance(v, bool):
                raise bad
            return v
        if self.type == "choice":
            if not isinstance(v, str) or v not in self.choices:
                raise bad
            return v
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise bad
        if self.type == "int":
            if isinstance(v, float) and not v.is_integer():
                raise bad
            v = int(v)
        else:
            v = float(v)
            if not math.isfinite(v):
                raise bad
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max):
            raise bad
        return v


def _bound(x: Any, what: str) -> float | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        raise ConfigError(what, "expected a finite number")
    return float(x)


def parse_knobs(raw: Any) -> dict[str, KnobSpec]:
    """The knobs a loop declared, from their wire form `{name: {type, value, min?, max?,
    choices?, help?}}`; ConfigError naming the knob at fault."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > MAX_KNOBS:
        raise ConfigError("knobs", f"expected at most {MAX_KNOBS} knobs by name")
    out: dict[str, KnobSpec] = {}
    for name, d in raw.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ConfigError("knobs", f"knob name {str(name)[:50]!r}: letters, digits and _ "
                              "(at most 40), not starting with a digit")
        if not isinstance(d, dict) or d.get("type") not in ("float", "int", "bool", "choice"):
            raise ConfigError(name, "expected {type: float | int | bool | choice, value, ...}")
        choices: tuple[str, ...] = ()
        if d["type"] == "choice":
            cs = d.get("choices")
            if (not isinstance(cs, list) or not 1 <= len(cs) <= MAX_CHOICES
                    or not all(isinstance(c, str) and 0 < len(c) <= 64 for c in cs)):
                raise ConfigError(name, f"choices: 1 to {MAX_CHOICES} strings of at most 64 "
                                  "characters")
            choices = tuple(cs)
        lo, hi = _bound(d.get("min"), name), _bound(d.get("max"), name)
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(name, f"min {lo:g} is above max {hi:g}")
        text = d.get("help", "")
        spec = KnobSpec(name, d["type"], None, lo, hi, choices,
                        text[:200] if isinstance(text, str) else "")
        out[name] = KnobSpec(name, spec.type, spec.check(d.get("value")), lo, hi, choices,
                             spec.help)
    return out


def validate_set(specs: dict[str, KnobSpec], changes: Any) -> dict[str, Any]:
    """A live change to a tracked run's knobs, checked against what its loop declared."""
    if not isinstance(changes, dict) or not changes:
        raise ConfigError("set", "expected an object of knob values")
    out = {}
    for name, v in changes.items():
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(specs) or "none"
            raise ConfigError(str(name)[:40], f"not a knob this loop declared (it declared: "
                              f"{known})")
        out[name] = spec.check(v)
    return out


def clean_scalars(raw: Any) -> dict[str, float | None]:
    """A log's scalars: at most MAX_SCALARS, named as tick names go, numbers only (non-finite
    ones become None); the usual loss names take the charts' names; measured names dropped."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, float | None] = {}
    for k, v in list(raw.items())[:MAX_SCALARS]:
        if not isinstance(k, str) or not SCALAR.match(k):
            continue
        k = ALIASES.get(k, k)
        if k in RESERVED or isinstance(v, bool) or not isinstance(v, int | float):
            continue
        out[k] = float(v) if math.isfinite(v) else None
    return out


# ---------------------------------------------------------------------------- the measure
def _float_rows(a: np.ndarray | None, what: str) -> np.ndarray | None:
    if a is None:
        return None
    if a.ndim != 2 or not 1 <= a.shape[0] <= MAX_ROWS or not 1 <= a.shape[1] <= MAX_DIM:
        raise ConfigError(what, f"expected rows × numbers (1–{MAX_ROWS} rows of 1–{MAX_DIM}), "
                          f"got shape {list(a.shape)}")
    if a.dtype != np.float32:
        raise ConfigError(what, "expected float32 numbers")
    if not np.isfinite(a).all():
        raise ConfigError(what, "holds NaN or infinite numbers")
    return np.array(a, dtype=np.float32)


def _pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the first two principal axes (D × 2) of rows x."""
    mean = x.mean(0)
    xc = x - mean
    if x.shape[0] < 2:
        basis = np.eye(x.shape[1], 2, dtype=np.float32)
    else:
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        basis = vt[:2].T
        if basis.shape[1] < 2:
            basis = np.concatenate([basis, np.zeros((x.shape[1], 1))], 1)
        # fixed signs, so the same data gives the same picture
        basis = basis * np.where(basis[np.abs(basis).argmax(0), range(2)] < 0, -1, 1)
    return mean.astype(np.float32), basis.astype(np.float32)


def _extent(points: np.ndarray) -> list[float]:
    lo, hi = points.min(0), points.max(0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-3) * 1.15
    return [float(centre[0] - half), float(centre[0] + half),
            float(centre[1] - half), float(centre[1] + half)]


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a and b."""
    return np.sqrt(_sq(a, b).numpy())


def _sq(a: np.ndarray, b: np.ndarray) -> Any:
    """Squared distances (a torch tensor), by one matrix product: the cost of a tick is this."""
    import torch

    ta = torch.from_numpy(np.ascontiguousarray(a, np.float32))
    tb = torch.from_numpy(np.ascontiguousarray(b, np.float32))
    return ((ta * ta).sum(1, keepdim=True) - 2 * ta @ tb.T + (tb * tb).sum(1)).clamp_min_(0)


def _knn_radius(d: np.ndarray, k: int) -> np.ndarray:
    """Each row's distance to its k-th nearest other point (d: square distance matrix)."""
    k = min(k, d.shape[1] - 1)
    if k < 1:
        return np.full(d.shape[0], np.inf)
    return np.partition(d, k, axis=1)[:, k]  # column 0 is the point itself (distance 0)


@dataclass
class Measure:
    """How a tracked run's samples are measured and drawn. Built from the run's start message
    (`from_start`), kept in memory; a reconnecting client sends the same start, so a restarted
    server rebuilds the same measure (k-means is seeded)."""

    kind: str  # centres | classes | real | none
    name: str
    num_modes: int
    mode_names: list[str]
    centres: np.ndarray | None = None
    radius: float = math.inf
    real: np.ndarray | None = None
    bins: Any = None  # the fitted k-means (real)
    bin_share: np.ndarray | None = None
    pr_real: np.ndarray | None = None  # the real samples precision/recall compare with
    real_radius: np.ndarray | None = None
    image_shape: list[int] | None = None
    dim: int | None = None
    view: str | None = None  # 2d | image | projection, fixed by the first samples (or the data)
    proj: tuple[np.ndarray, np.ndarray] | None = None
    projection_note: str | None = None
    extent: list[float] | None = None
    prev_occupancy: Any = None
    last: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_start(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Measure:
        name = meta.get("name")
        name = name[:100] if isinstance(name, str) and name.strip() else "tracked run"
        kind = meta.get("modes", "none")
        shape = meta.get("image_shape")
        if shape is not None and not (isinstance(shape, list) and len(shape) == 2 and all(
                isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 64 for s in shape)):
            raise ConfigError("image_shape", "expected [height, width], each 1–64")
        if kind == "centres":
            c = _float_rows(arrays.get("centres"), "modes")
            if c is None or c.shape[0] > MAX_MODES:
                raise ConfigError("modes", f"expected 1–{MAX_MODES} mode centres (K × D)")
            k = c.shape[0]
            std = meta.get("mode_std")
            if std is not None:
                if (isinstance(std, bool) or not isinstance(std, int | float)
                        or not 0 < std < 1e12):
                    raise ConfigError("mode_std", "expected a positive number")
                radius = 3.0 * float(std)
            elif k > 1:
                d = _dist(c, c) + np.eye(k) * 1e300
                radius = float(d.min()) / 4
            else:
                radius = math.inf
            m = cls("centres", name, k, _names(meta.get("mode_names"), k), centres=c,
                    radius=radius, image_shape=shape, dim=c.shape[1])
            m._fix_view(c, "the mode centres")
            return m
        if kind == "classes":
            k = meta.get("num_classes")
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_MODES:
                raise ConfigError("classes", f"expected the number of classes, 1–{MAX_MODES}")
            return cls("classes", name, k, _names(meta.get("mode_names"), k), image_shape=shape)
        if kind == "real":
            real = _float_rows(arrays.get("real"), "real")
            assert real is not None
            if real.shape[0] < 20:
                raise ConfigError("real", "expected at least 20 real samples")
            bins = meta.get("bins")
            if bins is None:
                bins = int(min(50, max(2, real.shape[0] // 20)))
            if (isinstance(bins, bool) or not isinstance(bins, int)
                    or not 2 <= bins <= min(MAX_MODES, real.shape[0] // 2)):
                raise ConfigError("bins", f"expected 2–{min(MAX_MODES, real.shape[0] // 2)} "
                                  "bins (at most half the real samples)")
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=bins, n_init=4, random_state=0).fit(real)
            share = np.bincount(km.labels_, minlength=bins) / real.shape[0]
            ref = real if real.shape[0] <= PR_REAL else real[np.sort(
                np.random.default_rng(0).choice(real.shape[0], PR_REAL, replace=False))]
            m = cls("real", name, bins, [f"bin {i}" for i in range(bins)], real=real, bins=km,
                    bin_share=share, pr_real=ref, real_radius=_knn_radius(_dist(ref, ref), KNN),
                    image_shape=shape, dim=real.shape[1])
            m._fix_view(real, "the real batch")
            return m
        if kind == "none":
            return cls("none", name, 1, ["all"], image_shape=shape)
        raise ConfigError("modes", "expected one of: centres (modes=), classes (classify=), "
                          "real (real=), none")

    def _fix_view(self, x: np.ndarray, source: str) -> None:
        """How samples are drawn, fixed once: 2-D points, square images, or the first two
        principal axes of `x` (stated on the panel)."""
        if self.view is not None:
            return
        d = x.shape[1]
        self.dim = d
        shape = self.image_shape
        if shape is not None and shape[0] == shape[1] and shape[0] * shape[1] == d:
            self.view = "image"
            return
        self.image_shape = None
        if d == 2:
            self.view = "2d"
            pts = x
        elif d == 1:
            self.view = "projection"
            self.proj = (np.zeros(1, np.float32), np.array([[1.0, 0.0]], np.float32))
            self.projection_note = "1-D samples: value along x"
            pts = self.project(x)
        else:
            self.view = "projection"
            self.proj = _pca(x)
            self.projection_note = (f"a fixed 2-D projection: the first two principal axes of "
                                    f"{source} ({d} → 2)")
            pts = self.project(x)
        self.extent = _extent(pts if self.centres is None or self.view != "2d"
                              else np.concatenate([pts, self.centres]))

    def project(self, x: np.ndarray) -> np.ndarray:
        if self.proj is None:
            return x
        mean, basis = self.proj
        return ((x - mean) @ basis).astype(np.float32)

    @property
    def ready(self) -> bool:
        """The picture is fixed (the first samples came, or the data fixed it)."""
        return self.view is not None

    def describe(self) -> dict[str, Any]:
        """The hello's `dataset` of a tracked run."""
        d: dict[str, Any] = dict(name=self.name, kind="image" if self.view == "image" else "2d",
                                 dim=self.dim, num_modes=self.num_modes,
                                 mode_names=self.mode_names, tracked=True, modes=self.kind)
        if self.view == "image" and self.image_shape:
            d["image_shape"] = list(self.image_shape)
        elif self.extent is not None:
            d["extent"] = self.extent
            if self.centres is not None:
                d["centres"] = self.project(self.centres).tolist()
            if self.projection_note:
                d["projection"] = self.projection_note
        return d

    def real_message(self) -> bytes:
        """The type-2 message drawn behind the samples: the real batch (or the centres)."""
        if self.real is not None:
            idx = self.bins.labels_
            x = self.real
            if self.view == "image":
                x, idx = x[:FRAME_IMAGES], idx[:FRAME_IMAGES]
            else:
                x = self.project(x)
            return encode_real(x, idx)
        if self.centres is not None and self.view != "image":
            return encode_real(self.project(self.centres), np.arange(self.num_modes))
        d = self.dim if self.view == "image" and self.dim else 2
        return encode_real(np.zeros((0, d), np.float32))

    # ------------------------------------------------------------------ one log
    def measure(self, samples: np.ndarray, labels: np.ndarray | None,
                confident: np.ndarray | None) -> dict[str, Any]:
        """The mode metrics of one batch, and what a frame draws of it."""
        import torch

        from collapse_lab.trainer.metrics import mode_metrics

        x = _float_rows(samples, "samples")
        assert x is not None
        if self.dim is not None and self.view is not None and x.shape[1] != self.dim:
            raise ConfigError("samples", f"expected samples of {self.dim} numbers (as the run "
                              f"began), got {x.shape[1]}")
        self._fix_view(x, "the first logged samples")
        n = x.shape[0]
        extra: dict[str, Any] = {}
        weights = None
        if self.kind == "centres":
            assert self.centres is not None
            d = _dist(x, self.centres)
            nearest = d.argmin(1)
            hq = d[np.arange(n), nearest] <= self.radius
        elif self.kind == "classes":
            if labels is None or labels.shape != (n,):
                raise ConfigError("labels", f"expected one class id per sample ({n})")
            lab = labels.astype(np.int64)
            ok = (lab >= 0) & (lab < self.num_modes)
            nearest = np.where(ok, lab, 0)
            hq = ok if confident is None or confident.shape != (n,) else ok & (confident > 0)
        elif self.kind == "real":
            assert self.real is not None and self.real_radius is not None
            assert self.pr_real is not None
            nearest = _sq(x, self.bins.cluster_centers_).argmin(1).numpy()  # the nearest bin
            # precision/recall on at most PR_FAKE generated and PR_REAL real samples, by squared
            # distances against squared radii: two passes over an N × M matrix
            f = x[:PR_FAKE]
            d2 = _sq(f, self.pr_real)
            r2 = torch.from_numpy(np.square(self.real_radius).astype(np.float32))
            inside = ((d2 - r2[None, :]).amin(1) <= 0).numpy()
            fake_r2 = torch.from_numpy(np.square(_knn_radius(_dist(f, f), KNN))
                                       .astype(np.float32))
            covered = ((d2 - fake_r2[:, None]).amin(0) <= 0).numpy()
            # a sample is high quality inside the real manifold (the rest by their nearest bin's
            # centre being as close as its real samples are: within the largest real radius)
            hq = np.concatenate([inside, (_sq(x[PR_FAKE:], self.pr_real).amin(1).numpy()
                                          <= float(r2.max()))]) if n > PR_FAKE else inside
            weights = torch.tensor(self.bin_share, dtype=torch.float32)
            counts = np.bincount(nearest, minlength=self.num_modes)
            p_f, p_r, m = counts / n, self.bin_share, self.real.shape[0]
            pool = (p_f * n + p_r * m) / (n + m)
            se = np.sqrt(np.maximum(pool * (1 - pool) * (1 / n + 1 / m), 1e-300))
            ndb = int((np.abs(p_f - p_r) / se > NDB_Z).sum())
            extra = dict(ndb=ndb, ndb_k=ndb / self.num_modes, precision=float(inside.mean()),
                         recall=float(covered.mean()))
        else:
            nearest = np.zeros(n, np.int64)
            hq = np.ones(n, bool)
        mm = mode_metrics(torch.from_numpy(np.asarray(nearest, np.int64)),
                          torch.from_numpy(np.asarray(hq, bool)), self.num_modes,
                          self.prev_occupancy, weights)
        self.prev_occupancy = mm["occupancy"]
        out: dict[str, Any] = {k: float(v) for k, v in mm.items() if k != "occupancy"}
        out["occupancy"] = [float(v) for v in mm["occupancy"]]
        out.update(extra)
        keep = FRAME_IMAGES if self.view == "image" else FRAME_POINTS
        shown = x[:keep] if self.view == "image" else self.project(x[:keep])
        self.last = dict(samples=shown, nearest=np.asarray(nearest[:keep]),
                         hq=np.asarray(hq[:keep]))
        return out

    def frame(self, tick: dict[str, Any], status: str, extra: dict[str, Any]) -> bytes | None:
        """A frame of `tick` with the latest samples drawn (None before any samples)."""
        if not self.last:
            return None
        t = dict(tick, **self.last)
        if self.view != "image" and self.extent is not None:
            t["extent"] = self.extent
        return encode_frame(t, status, extra)


def _names(raw: Any, k: int) -> list[str]:
    if isinstance(raw, list) and len(raw) == k and all(isinstance(s, str) for s in raw):
        return [s[:40] for s in raw]
    return [str(i) for i in range(k)]


class Series:
    """One tracked run's ticks: each log the client sends becomes a tick (its scalars, and the
    mode metrics when it carried samples), numbered by the loop's own step."""

    def __init__(self, measure: Measure):
        self.measure = measure
        self.last_step: int | None = None
        self.last_time: float | None = None
        self.metrics: dict[str, Any] = {}  # the latest samples' metrics, for frames

    def tick(self, meta: dict[str, Any], arrays: dict[str, np.ndarray],
             version: int) -> dict[str, Any]:
        """The tick of one `log` message; ConfigError naming what is wrong."""
        step, t = meta.get("step"), meta.get("time")
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < 2**31:
            raise ConfigError("step", "expected an integer in [0, 2^31)")
        if self.last_step is not None and step <= self.last_step:
            raise ConfigError("step", f"expected a step after {self.last_step}, got {step}")
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t < 1e9:
            raise ConfigError("time", "expected seconds since the run began")
        tick: dict[str, Any] = dict(step=step, time=round(float(t), 4), config_version=version)
        if self.last_step is not None and self.last_time is not None and t > self.last_time:
            tick["steps_per_sec"] = (step - self.last_step) / (t - self.last_time)
        tick.update(clean_scalars(meta.get("scalars")))
        samples = arrays.get("samples")
        shape = meta.get("image_shape")
        if samples is not None and shape is not None and not self.measure.ready:
            if not (isinstance(shape, list) and len(shape) == 2 and all(
                    isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 64
                    for s in shape)):
                raise ConfigError("image_shape", "expected [height, width], each 1–64")
            self.measure.image_shape = shape
        if samples is not None:
            self.metrics = self.measure.measure(samples, arrays.get("labels"),
                                                arrays.get("confident"))
            tick.update(self.metrics)
        self.last_step, self.last_time = step, float(t)
        return tick

    def frame(self, tick: dict[str, Any], status: str = "running") -> bytes | None:
        """A frame of this tick; a tick without samples shows the latest ones (and their
        metrics)."""
        full = dict(self.metrics, **tick)
        user = {k: v for k, v in tick.items() if k not in SCALAR_NAMES and k != "occupancy"}
        extra = dict(user, tracked=True, value_kind="probability", sent=round(_now(), 3))
        return self.measure.frame(full, status, extra)


def _now() -> float:
    import time

    return time.time()
