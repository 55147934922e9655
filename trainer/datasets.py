"""Toy distributions with known modes, so that occupancy can be measured.

A dataset samples real batches on the training device and assigns any batch of points to its
nearest mode, with a high-quality flag (see docs/metrics.md for each definition):

- ring8:  8 Gaussians on a circle of radius 2, std 0.02 (WGAN-GP / VEEGAN toy setup).
- grid25: 5×5 Gaussians at {-4,-2,0,2,4}², std 0.05.
- lines:  5 parallel horizontal segments y ∈ {-2..2}, x uniform in [-2, 2], noise std 0.02 across.
- spiral: an Archimedean spiral sampled uniformly in arc length, noise std 0.05; its modes are
          8 segments of equal arc length.
- circle: a circle of radius 2 sampled uniformly in angle, noise std 0.02; its modes are 8 arcs
          of equal length (spread data: no two points need be near each other).
- csv:    a user's 2-D points (standardised); modes are the user's mode labels (a third
          column: blobs drawn on the dashboard) or else k-means clusters.
- digits: scikit-learn's 8×8 digits scaled to [-1, 1]; modes are the 10 classes, judged by a
          small classifier (trainer/digits.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from collapse_lab.trainer.knobs import ConfigError


class Dataset:
    name: str
    dim: int = 2
    kind: str = "2d"  # "2d" or "image"
    mode_names: list[str]
    # what a 2-D dataset's modes are (the metrics and a GA's fitness landscape read them)
    centres: torch.Tensor  # (K, dim)
    stds: torch.Tensor  # (K,): a sample within 3 stds of its mode is high quality
    weights: torch.Tensor  # (K,) mode probabilities (a Gaussian mixture; others have none)

    def __init__(self):
        self.device = torch.device("cpu")

    # -- sampling
    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:  # (n, dim)
        raise NotImplementedError

    # -- modes
    @property
    def num_modes(self) -> int:
        return len(self.mode_names)

    def distances(self, x: torch.Tensor) -> torch.Tensor:  # (N, K) distance to each mode
        raise NotImplementedError

    def assign(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(nearest mode index (N,), high-quality flag (N,)) for samples x (N, dim)."""
        d = self.distances(x)
        dmin, nearest = d.min(dim=1)
        return nearest, dmin <= 3.0 * self.stds[nearest]

    def to(self, device: torch.device | str) -> Dataset:
        """Move to `device`, floating-point tensors in torch's default dtype (float32 unless a
        test asks for float64, where rounding must not decide)."""
        self.device = torch.device(device)
        dtype = torch.get_default_dtype()
        for k, v in list(vars(self).items()):
            if isinstance(v, torch.Tensor):
                setattr(self, k, v.to(device, dtype) if v.is_floating_point() else v.to(device))
        return self

    def extent(self) -> list[float]:
        """[xmin, xmax, ymin, ymax] of the discriminator value grid: the data plus a margin."""
        g = torch.Generator(device="cpu").manual_seed(0)
        pts = self.to_cpu_sample(4000, g)
        r = float(pts.abs().max()) * 1.5 + 0.1
        return [-r, r, -r, r]

    def grid_points(self, n: int) -> tuple[torch.Tensor, list[float]]:
        """An n × n grid over extent(): points (n·n, 2) row by row from ymin, and the extent."""
        ext = self.extent()
        xs = torch.linspace(ext[0], ext[1], n)
        ys = torch.linspace(ext[2], ext[3], n)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # row = y, column = x
        return torch.stack([gx, gy], 2).view(n * n, 2), ext

    def to_cpu_sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        dev = self.device
        self.to("cpu")
        try:
            return self.sample(n, gen)
        finally:
            self.to(dev)

    def describe(self) -> dict:
        """Static facts for the UI and the logs (JSON-able)."""
        d = dict(name=self.name, kind=self.kind, dim=self.dim, num_modes=self.num_modes,
                 mode_names=self.mode_names)
        if self.kind == "2d":
            d["centres"] = self.centres.cpu().tolist()
            d["extent"] = self.extent()
        return d


class GaussianMixture(Dataset):
    """Equal-weight isotropic Gaussians; the nearest centre is the mode."""

    def __init__(self, name: str, centres: torch.Tensor, stds: torch.Tensor,
                 weights: torch.Tensor | None = None):
        super().__init__()
        self.name = name
        self.centres = centres.float()  # (K, 2)
        self.stds = stds.float()  # (K,)
        k = len(centres)
        self.weights = (weights if weights is not None else torch.full((k,), 1.0 / k)).float()
        self.mode_names = [f"({x:.2g}, {y:.2g})" for x, y in centres.tolist()]

    def sample(self, n, gen):
        idx = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        noise = torch.randn(n, 2, generator=gen, device=self.device)
        return self.centres[idx] + noise * self.stds[idx, None]

    def distances(self, x):
        return torch.cdist(x, self.centres)


def ring8(scale: float = 1.0) -> GaussianMixture:
    """`scale` multiplies radius and std together (0.5: PacGAN's ring, radius 1, std 0.01)."""
    # endpoint excluded: linspace(0, 2π, 8) would put two centres on top of each other.
    ang = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    centres = 2.0 * scale * torch.stack([torch.cos(ang), torch.sin(ang)], 1)
    return GaussianMixture("ring8", centres, torch.full((8,), 0.02 * scale))


def grid25(scale: float = 1.0) -> GaussianMixture:
    """`scale` multiplies spacing and std together (1: PacGAN's grid, {-4,-2,0,2,4}², 0.05)."""
    v = torch.arange(-4.0, 5.0, 2.0, dtype=torch.float64) * scale
    centres = torch.cartesian_prod(v, v)
    return GaussianMixture("grid25", centres, torch.full((25,), 0.05 * scale))


class Lines(Dataset):
    """Parallel horizontal segments; a sample's mode is its nearest segment."""

    name = "lines"

    def __init__(self, ys=(-2.0, -1.0, 0.0, 1.0, 2.0), x0=-2.0, x1=2.0, std=0.02):
        super().__init__()
        self.ys = torch.tensor(ys)
        self.x0, self.x1 = x0, x1
        self.stds = torch.full((len(ys),), std)
        self.centres = torch.stack([torch.zeros(len(ys)), self.ys], 1)
        self.mode_names = [f"y={y:g}" for y in ys]

    def sample(self, n, gen):
        idx = torch.randint(len(self.ys), (n,), generator=gen, device=self.device)
        x = self.x0 + (self.x1 - self.x0) * torch.rand(n, generator=gen, device=self.device)
        y = self.ys[idx] + self.stds[idx] * torch.randn(n, generator=gen, device=self.device)
        return torch.stack([x, y], 1)

    def distances(self, x):
        dx = x[:, :1] - x[:, :1].clamp(self.x0, self.x1)  # (N, 1) beyond the segment's ends
        dy = x[:, 1:] - self.ys[None, :]  # (N, K)
        return torch.sqrt(dx**2 + dy**2)


class Spiral(Dataset):
    """Archimedean spiral r ∝ θ, uniform in arc length; modes are 8 equal-length segments."""

    name = "spiral"

    def __init__(self, k: int = 8, std: float = 0.05, pts_per_mode: int = 256):
        super().__init__()
        th = torch.linspace(1.5 * math.pi, 4.5 * math.pi, 20001, dtype=torch.float64)
        curve = self._curve(th)
        seg = (curve[1:] - curve[:-1]).norm(dim=1)
        s = torch.cat([torch.zeros(1, dtype=torch.float64), seg.cumsum(0)])
        self._su, self._th = s / s[-1], th  # arc length fraction -> angle, for interpolation
        u = (torch.arange(k * pts_per_mode, dtype=torch.float64) + 0.5) / (k * pts_per_mode)
        self.curve_pts = self._curve(self._theta(u)).float()  # (K*m, 2), ordered by arc length
        self.k, self.m = k, pts_per_mode
        self.centres = self.curve_pts.view(k, pts_per_mode, 2)[:, pts_per_mode // 2]
        self.stds = torch.full((k,), std)
        self.mode_names = [f"segment {i + 1}" for i in range(k)]

    @staticmethod
    def _curve(th):
        r = th / (4.5 * math.pi) * 3.0
        return torch.stack([r * torch.cos(th), r * torch.sin(th)], 1)

    def _theta(self, u):
        su, th = self._su, self._th
        idx = torch.searchsorted(su, u).clamp(1, len(su) - 1)
        w = (u - su[idx - 1]) / (su[idx] - su[idx - 1])
        return th[idx - 1] + w * (th[idx] - th[idx - 1])

    def sample(self, n, gen):
        u = torch.rand(n, generator=gen, device=self.device, dtype=torch.float64)
        pts = self._curve(self._theta(u)).float()
        return pts + self.stds[0] * torch.randn(n, 2, generator=gen, device=self.device)

    def distances(self, x):
        d = torch.cdist(x, self.curve_pts)  # (N, K*m)
        return d.view(len(x), self.k, self.m).min(dim=2).values


class Circle(Dataset):
    """A continuous circle of radius `radius`, uniform in angle, with radial noise `std`; its
    modes are `k` arcs of equal length, arc j starting at angle 2πj/k. Unlike the ring's tight
    blobs, points of a sample are spread along the whole curve (what memorisation is seen on)."""

    name = "circle"

    def __init__(self, radius: float = 2.0, std: float = 0.02, k: int = 8):
        super().__init__()
        self.radius, self.k = radius, k
        mid = (torch.arange(k, dtype=torch.float64) + 0.5) * (2 * math.pi / k)
        self.centres = radius * torch.stack([torch.cos(mid), torch.sin(mid)], 1).float()
        self.stds = torch.full((k,), std)
        self.mode_names = [f"arc {j + 1}" for j in range(k)]

    def sample(self, n, gen):
        th = 2 * math.pi * torch.rand(n, generator=gen, device=self.device)
        r = self.radius + self.stds[0] * torch.randn(n, generator=gen, device=self.device)
        return torch.stack([r * torch.cos(th), r * torch.sin(th)], 1)

    def distances(self, x):
        """Distance to each arc: radial within the arc's angles, else to its nearer end."""
        width = 2 * math.pi / self.k
        r = x.norm(dim=1, keepdim=True)  # (N, 1)
        th = torch.atan2(x[:, 1:], x[:, :1]) % (2 * math.pi)  # (N, 1)
        start = torch.arange(self.k, device=x.device, dtype=x.dtype)[None] * width  # (1, K)
        off = (th - start) % (2 * math.pi)  # angle past the arc's start, in [0, 2π)
        outside = (off - width).clamp_min(0)  # angle beyond the arc's end
        gap = torch.minimum(outside, (2 * math.pi - off) * (off > width))  # to the nearer end
        # law of cosines: a point at (r, θ) to the end of the arc at (R, θ ± gap)
        d2 = r**2 + self.radius**2 - 2 * r * self.radius * torch.cos(gap)
        return d2.clamp_min(0).sqrt()


class PointCloud(GaussianMixture):
    """A user's 2-D points, standardised. Its modes are the user's own groups when the points
    carry a mode label (blobs drawn on the dashboard), else k-means clusters; each mode has its
    centre (the mean of its points) and its own spread."""

    def __init__(self, points: np.ndarray, k: int, seed: int = 0,
                 labels: np.ndarray | None = None):
        pts = torch.from_numpy(points).float()
        pts = (pts - pts.mean(0)) / pts.std(0).clamp_min(1e-12).max()
        if labels is not None:
            # drawn modes: labels renumbered 0..K-1 in order of their first value
            uniq, lab = np.unique(labels, return_inverse=True)
            labels_t = torch.from_numpy(lab.astype(np.int64))
            k = len(uniq)
            centres = torch.stack([pts[labels_t == j].mean(0) for j in range(k)])
            names = [f"blob {int(u) + 1}" for u in uniq]
        else:
            if k == 0:
                k = choose_k(pts, seed)
            centres, labels_t = kmeans(pts, k, seed)
            names = None
        stds = torch.stack([
            ((pts[labels_t == j] - centres[j]) ** 2).sum(1).mean().div(2).sqrt() for j in range(k)
        ]).clamp_min(1e-3)
        super().__init__("csv", centres, stds)
        if names is not None:
            self.mode_names = names
        self.points = pts  # (N, 2); the empirical distribution is the data

    def sample(self, n, gen):
        idx = torch.randint(len(self.points), (n,), generator=gen, device=self.device)
        return self.points[idx]


def kmeans(x: torch.Tensor, k: int, seed: int, iters: int = 50):
    """Lloyd's algorithm with k-means++ seeding; returns (centres (k, 2), labels (N,))."""
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=g)]
    for _ in range(1, k):
        d2 = torch.cdist(x, centres).min(1).values ** 2
        nxt = torch.multinomial(d2 / d2.sum() if d2.sum() > 0 else torch.ones_like(d2), 1,
                                generator=g)
        centres = torch.cat([centres, x[nxt]])
    for _ in range(iters):
        labels = torch.cdist(x, centres).argmin(1)
        new = torch.stack([x[labels == j].mean(0) if (labels == j).any() else centres[j]
                           for j in range(k)])
        if torch.allclose(new, centres):
            break
        centres = new
    return centres, torch.cdist(x, centres).argmin(1)


def choose_k(x: torch.Tensor, seed: int, k_max: int = 10) -> int:
    """The k in 2..k_max with the best mean silhouette on (a sample of) the points."""
    g = torch.Generator().manual_seed(seed)
    if len(x) > 1500:
        x = x[torch.randperm(len(x), generator=g)[:1500]]
    d = torch.cdist(x, x)
    best, best_k = -2.0, 2
    for k in range(2, min(k_max, len(x) - 1) + 1):
        _, lab = kmeans(x, k, seed)
        onehot = torch.nn.functional.one_hot(lab, k).float()  # (N, k)
        counts = onehot.sum(0)
        mean_to = d @ onehot / counts.clamp_min(1)  # (N, k) mean distance to each cluster
        own = lab[:, None]
        n_own = counts[lab]
        a = mean_to.gather(1, own).squeeze(1) * n_own / (n_own - 1).clamp_min(1)
        other = mean_to.scatter(1, own, float("inf")).masked_fill(counts[None] == 0, float("inf"))
        b = other.min(1).values
        s = torch.where(n_own > 1, (b - a) / torch.maximum(a, b).clamp_min(1e-12), 0.0)
        score = float(s.mean())
        if score > best:
            best, best_k = score, k
    return best_k


MAX_MODE_LABEL = 24  # at most 25 drawn modes, as many as k-means may choose (`clusters`)
MIN_PER_MODE = 5  # points a labelled mode needs for its own spread


def read_points(path: str | Path) -> np.ndarray:
    """Read 2-D points from a CSV (x,y per line; an optional header; '#' comments)."""
    return read_labelled_points(path)[0]


def read_labelled_points(path: str | Path, max_points: int = 1_000_000
                         ) -> tuple[np.ndarray, np.ndarray | None]:
    """Points (N, 2) and, when every row has a third column, their mode labels (N,) from a CSV
    file. Raises ConfigError (field `data`) naming the line of the first bad row."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("data", f"no such file: {p}")
    with p.open(encoding="utf-8", errors="replace") as fh:
        return parse_points(fh, p.name, max_points)


def parse_points(lines: Iterable[str], name: str, max_points: int = 1_000_000
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows `x,y` or `x,y,mode` (mode an integer 0..24; all rows alike); an optional header line;
    blank lines and '#' comments skipped; `,`, `;` or tabs between values."""
    rows: list[tuple[float, float]] = []
    labels: list[int] = []
    width = 0
    for i, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = [t.strip() for t in s.replace(";", ",").replace("\t", ",").split(",")]
        if not rows and not any(_is_number(t) for t in parts):
            if len(parts) not in (2, 3):
                raise ConfigError("data", f"{name} line {i}: expected the columns x,y or "
                                  f"x,y,mode, got {len(parts)} columns")
            continue  # a header line
        if len(parts) not in (2, 3) or (width and len(parts) != width):
            want = f"{width} values like the rows before it" if width else "x,y or x,y,mode"
            raise ConfigError("data", f"{name} line {i}: expected {want}, got {s[:60]!r}")
        width = len(parts)
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise ConfigError("data", f"{name} line {i}: expected two numbers 'x,y', "
                              f"got {s[:60]!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ConfigError("data", f"{name} line {i}: values must be finite, got {s[:60]!r}")
        if width == 3:
            m = parts[2]
            if not (m.isascii() and m.isdigit()) or int(m) > MAX_MODE_LABEL:
                raise ConfigError("data", f"{name} line {i}: mode must be an integer in [0, "
                                  f"{MAX_MODE_LABEL}], got {m[:20]!r}")
            labels.append(int(m))
        rows.append((x, y))
        if len(rows) > max_points:
            raise ConfigError("data", f"{name}: more than {max_points:,} points")
    if len(rows) < 20:
        raise ConfigError("data", f"{name}: need at least 20 points, got {len(rows)}")
    if width == 3:
        counts = np.bincount(np.asarray(labels))
        few = [j for j in range(len(counts)) if 0 < counts[j] < MIN_PER_MODE]
        if few:
            raise ConfigError("data", f"{name}: mode {few[0]} has {counts[few[0]]} points; each "
                              f"mode needs at least {MIN_PER_MODE}")
        return np.asarray(rows, dtype=np.float32), np.asarray(labels, dtype=np.int64)
    return np.asarray(rows, dtype=np.float32), None


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False
