"""A run's checkpoint files: `<checkpoint_dir>/<run id>-<step>.pt`, written by its worker.

Which files a run has, which one a resume continues from (the newest whose step the stored series
reaches, so the resumed series has no gap), and removing them: older ones once a newer one's
series is stored, newer ones than the one a resume takes, all of them with the run.
"""

from __future__ import annotations

from pathlib import Path


class Checkpoints:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def prefix(self, run_id: str) -> Path:
        """What the worker names a run's checkpoints from (it adds `-<step>.pt`)."""
        return self.folder / run_id

    def of(self, run_id: str) -> list[tuple[int, Path]]:
        """A run's checkpoint files, oldest first: (step, path)."""
        out = []
        for p in self.folder.glob(f"{run_id}-*.pt"):
            try:
                out.append((int(p.stem.rsplit("-", 1)[1]), p))
            except ValueError:
                continue
        return sorted(out)

    def pick(self, run_id: str, last_stored: int | None) -> tuple[int, Path | None]:
        """The newest checkpoint whose step the stored series (up to `last_stored`) reaches, and
        that step; (0, None) when there is none."""
        for step, path in reversed(self.of(run_id)):
            if last_stored is not None and step <= last_stored:
                return step, path
        return 0, None

    def remove_before(self, run_id: str, step: int) -> None:
        """Older checkpoints than the one at `step` (whose series is stored); newer ones, written
        since, stay."""
        for s, p in self.of(run_id):
            if s < step:
                p.unlink(missing_ok=True)

    def remove_after(self, run_id: str, step: int) -> None:
        """Checkpoints past `step` (written past the stored series: trained again)."""
        for s, p in self.of(run_id):
            if s > step:
                p.unlink(missing_ok=True)

    def remove_all(self, run_id: str) -> None:
        for _, p in self.of(run_id):
            p.unlink(missing_ok=True)
