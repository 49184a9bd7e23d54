"""The runs a front end started, remembered across sessions: one JSON file in the per-user data folder.

A record says where the run folder is, the config it was started with, how far it got and how it ended, so
a closed (or crashed) app can offer to resume a cancelled or interrupted run, or to review and install a
finished one. What can be done with a run is read from its folder (``resumable``: ``checkpoints/last.pt``
without a bundle), not trusted from the record. Writes are atomic (temp file + replace).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path

import platformdirs

RUNS_FILE_ENV = "XRAYVIEWER_RUNS_FILE"  # overrides where the records live (tests, portable installs)
STATES = ("starting", "running", "cancelled", "failed", "completed", "installed")


def default_runs_file() -> Path:
    """``<per-user data folder>/training-runs.json`` (or ``$XRAYVIEWER_RUNS_FILE``)."""
    override = os.environ.get(RUNS_FILE_ENV)
    if override:
        return Path(override)
    return platformdirs.user_data_path("xrayviewer", appauthor=False) / "training-runs.json"


def default_runs_dir() -> Path:
    """Where run folders go unless the user picks another place: ``<per-user data folder>/runs``."""
    return default_runs_file().parent / "runs"


def new_run_dir(parent: str | Path, name: str) -> Path:
    """A run folder not yet there: ``<parent>/<name>-<YYYYmmdd-HHMMSS>``, then ``-2``, ``-3``… if taken."""
    base = Path(parent).expanduser() / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    return run_dir


@dataclass
class RunRecord:
    """One run started from a front end."""

    config_file: str  # the configuration the run was started with (JSON, a valid --config)
    name: str
    run_dir: str = ""  # known once the engine has named it (its first event)
    state: str = "starting"  # one of STATES; "running" found at start-up means the app went away mid-run
    epochs: int = 0
    epochs_done: int = 0
    error: str = ""
    started: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))
    updated: str = ""
    history: list[dict] = field(default_factory=list)  # epoch events (for the curves after a resume)

    @property
    def resumable(self) -> bool:
        """The run folder has a checkpoint to continue from and no finished bundle."""
        run = Path(self.run_dir) if self.run_dir else None
        return bool(run) and (run / "checkpoints" / "last.pt").is_file() and not (run / "bundle").is_dir()

    @property
    def finished(self) -> bool:
        """The run wrote its bundle."""
        return bool(self.run_dir) and (Path(self.run_dir) / "bundle" / "model.json").is_file()

    @property
    def unfinished(self) -> bool:
        """Worth offering: resumable, or finished but not installed yet."""
        return self.resumable or (self.finished and self.state != "installed")

    def describe(self) -> str:
        """One line for a menu: name, where it stands, when it started."""
        when = self.started.replace("T", " ")[:16]
        if self.finished:
            what = "finished, not installed" if self.state != "installed" else "installed"
        elif self.resumable:
            how = {"cancelled": "stopped", "failed": "failed", "running": "interrupted"}.get(
                self.state, "stopped"
            )
            what = f"{how} after epoch {self.epochs_done} of {self.epochs}" if self.epochs else how
        else:
            what = self.state
        return f"{self.name} — {what} ({when})"


class RunRecords:
    """The records file: read, update and write back (``path`` defaults to :func:`default_runs_file`)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_runs_file()

    def load(self) -> list[RunRecord]:
        """Every record, oldest first; a missing or damaged file reads as none."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        known = {f.name for f in fields(RunRecord)}
        records = []
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and "config_file" in item and "name" in item:
                try:
                    records.append(RunRecord(**{k: v for k, v in item.items() if k in known}))
                except TypeError:
                    continue
        return records

    def save(self, records: list[RunRecord]) -> None:
        """Write all records atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".runs.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump([asdict(r) for r in records], fh, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put(self, record: RunRecord) -> None:
        """Add ``record`` or replace the one with the same config file."""
        record.updated = datetime.now().isoformat(timespec="seconds")
        records = [r for r in self.load() if r.config_file != record.config_file]
        self.save([*records, record])

    def remove(self, record: RunRecord) -> None:
        """Forget ``record`` (its run folder stays)."""
        self.save([r for r in self.load() if r.config_file != record.config_file])

    def unfinished(self) -> list[RunRecord]:
        """Runs to offer, newest first: resumable ones and finished ones not installed yet."""
        return [r for r in reversed(self.load()) if r.unfinished]
