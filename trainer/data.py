"""The dataset registry: every dataset a run can learn, by name, with its help text.

Each entry builds its `Dataset` (trainer/datasets.py, trainer/digits.py), which samples real
batches and defines the modes the metrics count (docs/metrics.md). A dataset depends only on the
knobs named in `DATA_KNOBS`, so the runs of one stack share one dataset object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collapse_lab.trainer import datasets as ds
from collapse_lab.trainer.knobs import ConfigError

DATA_KNOBS = ("dataset", "data", "clusters", "data_scale")  # what a dataset object depends on


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    help: str
    build: Callable[[Any, Path | None], ds.Dataset]  # (cfg, data dir) -> dataset
    modes: int | None = None  # how many modes it has (None: the data decides, e.g. csv)
    mode_word: str = "modes"  # what its modes are called ("classes" for digits)
    kind: str = "2d"  # "2d" points, "image" or "text" (token rows: trainer/language.py)


def _digits(cfg: Any, data_dir: Path | None) -> ds.Dataset:
    from collapse_lab.trainer.digits import Digits  # scikit-learn: imported only when used

    return Digits(data_dir)


def _templates(cfg: Any, data_dir: Path | None) -> ds.Dataset:
    from collapse_lab.trainer.language import TemplateLanguage

    return TemplateLanguage()


def _csv(cfg: Any, data_dir: Path | None) -> ds.Dataset:
    if not cfg.data:
        raise ConfigError("data", "dataset csv needs a file: --data points.csv")
    points, labels = ds.read_labelled_points(cfg.data)
    return ds.PointCloud(points, cfg.clusters, labels=labels)


DATASETS: dict[str, DatasetSpec] = {d.name: d for d in (
    DatasetSpec("ring8", "8 Gaussians on a circle of radius 2 (std 0.02), both × data_scale",
                lambda cfg, _: ds.ring8(cfg.data_scale), modes=8),
    DatasetSpec("grid25", "5×5 Gaussians with spacing 2 (std 0.05), both × data_scale",
                lambda cfg, _: ds.grid25(cfg.data_scale), modes=25),
    DatasetSpec("lines", "5 parallel line segments; each line is a mode",
                lambda cfg, _: ds.Lines(), modes=5),
    DatasetSpec("spiral", "an Archimedean spiral; 8 equal arc-length segments are its modes",
                lambda cfg, _: ds.Spiral(), modes=8),
    DatasetSpec("circle", "a continuous circle of radius 2 (std 0.02); 8 equal arcs are its "
                "modes", lambda cfg, _: ds.Circle(), modes=8),
    DatasetSpec("digits", "scikit-learn's 8×8 handwritten digits; the 10 classes are the modes",
                _digits, modes=10, mode_word="classes", kind="image"),
    DatasetSpec("templates", "a synthetic language of 6 sentence templates with set "
                "probabilities (30 % … 8 %), each making 36–192 sentences; the templates are "
                "the modes", _templates, modes=6, mode_word="templates", kind="text"),
    DatasetSpec("csv", "your own 2-D points (--data FILE.csv, or drawn on the dashboard): a "
                "mode column, or else k-means clusters, gives the modes", _csv),
)}


SCALABLE = ("ring8", "grid25")  # the datasets `data_scale` applies to
# what a generator of points or images can learn (the GAN's and the GA's choices); text datasets
# are for language models
POINTS_OR_IMAGES = tuple(n for n, d in DATASETS.items() if d.kind in ("2d", "image"))
TEXT = tuple(n for n, d in DATASETS.items() if d.kind == "text")


def make_dataset(cfg: Any, data_dir: Path | None = None) -> ds.Dataset:
    spec = DATASETS.get(cfg.dataset)
    if spec is None:
        raise ConfigError("dataset", f"unknown dataset {cfg.dataset!r}; expected one of "
                          + ", ".join(DATASETS))
    return spec.build(cfg, data_dir)


def describe() -> list[dict[str, Any]]:
    return [dict(name=d.name, help=d.help, modes=d.modes, mode_word=d.mode_word, kind=d.kind)
            for d in DATASETS.values()]
