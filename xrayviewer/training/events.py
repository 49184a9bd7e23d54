"""Training progress events: dataclasses handed to Python callbacks, JSON lines (``--events json``, for a
parent process such as a GUI), tqdm bars and the run's log file."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TextIO


@dataclass
class Event:
    """Base class; ``kind`` names the event in JSON lines."""

    kind: ClassVar[str] = "event"

    def to_json(self) -> str:
        """One JSON object: {"event": kind, ...fields}."""
        return json.dumps({"event": self.kind, **asdict(self)}, default=str)


@dataclass
class Message(Event):
    """A line for people (info, warning)."""

    kind: ClassVar[str] = "message"
    level: str
    text: str


@dataclass
class CacheProgress(Event):
    """Images decoded and preprocessed into the cache so far."""

    kind: ClassVar[str] = "cache"
    done: int
    total: int


@dataclass
class RunStarted(Event):
    """Training begins (after the data is ready)."""

    kind: ClassVar[str] = "run_start"
    run_dir: str
    epochs: int
    start_epoch: int
    steps_per_epoch: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class BatchEnded(Event):
    """One optimisation step done."""

    kind: ClassVar[str] = "batch"
    epoch: int
    step: int
    steps: int
    loss: float
    lr: float


@dataclass
class EpochEnded(Event):
    """One epoch trained and validated."""

    kind: ClassVar[str] = "epoch"
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_auc: float | None
    lr: float
    best: bool
    seconds: float
    images_per_s: float


@dataclass
class RunFinished(Event):
    """The run ended: status "completed", "early_stopped", "cancelled" or "failed" (``error`` says why)."""

    kind: ClassVar[str] = "run_end"
    status: str
    run_dir: str
    bundle: str = ""
    best_epoch: int = 0
    test_auc: float | None = None
    error: str = ""


Callback = Callable[[Event], None]


class JsonLines:
    """Callback writing every event as one JSON line (``--events json``) for a parent process."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        """Write and flush one line."""
        self.stream.write(event.to_json() + "\n")
        self.stream.flush()


def describe(event: Event) -> str | None:
    """The human line for an epoch summary, a message or the end of a run (None for other events)."""
    if isinstance(event, EpochEnded):
        auc = "n/a" if event.val_auc is None else f"{event.val_auc:.4f}"
        return (
            f"epoch {event.epoch}/{event.epochs}: train loss {event.train_loss:.4f}  val loss "
            f"{event.val_loss:.4f}  val AUC {auc}  lr {event.lr:.2e}  {event.images_per_s:.1f} img/s  "
            f"{event.seconds:.0f} s{'  *best*' if event.best else ''}"
        )
    if isinstance(event, Message):
        return event.text if event.level == "info" else f"{event.level}: {event.text}"
    if isinstance(event, RunStarted):
        return (
            f"training {event.run_dir}: epochs {event.start_epoch + 1}..{event.epochs}, "
            f"{event.steps_per_epoch} steps per epoch"
        )
    if isinstance(event, RunFinished):
        auc = "" if event.test_auc is None else f", test AUC {event.test_auc:.4f}"
        where = f"; bundle {event.bundle}" if event.bundle else ""
        why = f": {event.error}" if event.error else ""
        return f"run {event.status}{why} (best epoch {event.best_epoch}{auc}){where}"
    return None


class LogFile:
    """Callback appending the human lines (see :func:`describe`) to a log file with a timestamp. A write that
    fails (a full disk) stops the log, not the run: ``failed`` keeps the error; the run's own checkpoint
    writes report the disk problem."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.failed: OSError | None = None

    def __call__(self, event: Event) -> None:
        """Append one line for events that have one."""
        line = describe(event)
        if line is None or self.failed is not None:
            return
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(f"{datetime.now().isoformat(timespec='seconds')} {line}\n")
        except OSError as exc:
            self.failed = exc


class ProgressBars:
    """Callback drawing tqdm bars with ETA and running loss on stderr."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._bar: Any = None

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __call__(self, event: Event) -> None:
        """Update the bar for cache filling or the current epoch; print epoch summaries and messages."""
        if isinstance(event, CacheProgress):
            if self._bar is None:
                self._bar = self._tqdm(total=event.total, desc="caching images", unit="img", leave=False)
            self._bar.n = event.done
            self._bar.refresh()
            if event.done >= event.total:
                self._close()
        elif isinstance(event, BatchEnded):
            if self._bar is None:
                self._bar = self._tqdm(
                    total=event.steps, desc=f"epoch {event.epoch}", unit="batch", leave=False
                )
            self._bar.n = event.step
            self._bar.set_postfix(loss=f"{event.loss:.4f}", lr=f"{event.lr:.2e}", refresh=False)
            self._bar.refresh()
        else:
            line = describe(event)
            if line is not None:
                self._close()
                self._tqdm.write(line, file=sys.stderr)


EVENT_KINDS: dict[str, type[Event]] = {
    cls.kind: cls for cls in (Message, CacheProgress, RunStarted, BatchEnded, EpochEnded, RunFinished)
}


def parse_event(line: str) -> Event | None:
    """The event one ``--events json`` line describes (the inverse of :meth:`Event.to_json`); None for a
    line that is not one (blank, or not JSON, or an unknown kind). Unknown fields are ignored."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    cls = EVENT_KINDS.get(str(data.get("event")))
    if cls is None:
        return None
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:  # a required field missing
        return None
