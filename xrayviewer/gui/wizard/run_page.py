"""Page 4, Run: ``xrayviewer train --config RUN.json --events json`` in a child process (see
``engine_process``), with overall and per-epoch progress and ETA, live curves and a log. Cancel saves a
checkpoint (the command's own Ctrl-C) and Resume continues it (``--resume RUN_DIR``), now or after the app
was closed (Model ▸ Training runs). A failed run shows the error and keeps the log."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from xrayviewer.gui.wizard.common import GOOD_COLOUR, PROBLEM_COLOUR, problems_label
from xrayviewer.gui.wizard.curves import CurvesWidget
from xrayviewer.gui.wizard.engine_process import EngineProcess
from xrayviewer.training.config import TrainConfig
from xrayviewer.training.events import (
    BatchEnded,
    CacheProgress,
    EpochEnded,
    Message,
    RunFinished,
    RunStarted,
    describe,
)
from xrayviewer.training.inspection import plain
from xrayviewer.training.run_records import RunRecord, RunRecords
from xrayviewer.training.timing import describe_duration

LOG_LINES = 5000
WIZARD_CONFIGS = ".wizard"  # under the output folder: the configs the wizard started runs with


class RunPage(QWizardPage):
    """Start, watch, cancel, resume."""

    runEnded = Signal(str)  # completed | early_stopped | cancelled | failed
    runStarted = Signal(str)  # the run folder

    def __init__(self, build_config, records: RunRecords, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Run: training")
        self.setSubTitle(
            "The engine trains in its own process: the viewer stays usable, and a crash there "
            "cannot take the viewer down. Cancel keeps a checkpoint to resume from."
        )
        self._build_config = build_config  # () -> TrainConfig
        self.records = records
        self.record: RunRecord | None = None
        self.from_record = False  # opened from Model ▸ Training runs (no pages before this one)
        self.config: TrainConfig | None = None
        self.state = "idle"  # idle | running | cancelling | cancelled | failed | completed
        self.status = ""  # the engine's final status
        self.run_dir = ""
        self.bundle_dir = ""
        self.error = ""
        self._ended_event: RunFinished | None = None
        self._epochs = 0
        self._steps = 0
        self._segment: tuple[float, int] | None = None  # (when this epoch's first batch began, steps before)
        self._last_event_at = 0.0
        self._last_batch_at = 0.0
        self._step_s = 0.0
        self._val_s = 0.0
        self._current_epoch = 0

        self.process = EngineProcess(self)
        self.process.event.connect(self._event)
        self.process.stderrLine.connect(self._stderr)
        self.process.ended.connect(self._ended)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.start_button = QPushButton("&Start training")
        self.cancel_button = QPushButton("&Cancel (keep a checkpoint)")
        self.resume_button = QPushButton("&Resume")
        self.kill_button = QPushButton("Stop &now")
        self.kill_button.setToolTip(
            "End the training process at once; the last complete epoch's checkpoint stays and can be resumed."
        )
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self.resume)
        self.kill_button.clicked.connect(self.process.kill)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.cancel_button, self.resume_button, self.kill_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.phase = QLabel("Not started.")
        self.overall = QProgressBar()
        self.overall.setRange(0, 1000)
        self.overall.setFormat("overall %p%")
        self.eta = QLabel("")
        self.epoch_bar = QProgressBar()
        self.epoch_bar.setFormat("epoch %p%")
        self.batch_line = QLabel("")
        self.outcome = QLabel("")
        self.outcome.setWordWrap(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems = problems_label()
        self.curves = CurvesWidget()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setAccessibleName("Training log")
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)

        progress = QGroupBox("Progress")
        p = QVBoxLayout(progress)
        p.addWidget(self.summary)
        p.addLayout(buttons)
        p.addWidget(self.phase)
        p.addWidget(self.overall)
        p.addWidget(self.eta)
        p.addWidget(self.epoch_bar)
        p.addWidget(self.batch_line)
        p.addWidget(self.outcome)
        p.addWidget(self.problems)
        p.addStretch(1)
        curves_box = QGroupBox("Curves")
        QVBoxLayout(curves_box).addWidget(self.curves)
        top = QWidget()
        top_box = QHBoxLayout(top)
        top_box.setContentsMargins(0, 0, 0, 0)
        top_box.addWidget(progress, 4)
        top_box.addWidget(curves_box, 5)
        log_box = QGroupBox("Log")
        QVBoxLayout(log_box).addWidget(self.log)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(log_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        box = QVBoxLayout(self)
        box.addWidget(split)
        self._show_state()

    # -- preparing

    def initializePage(self) -> None:
        """Describe what will run (a fresh run, or the record being resumed)."""
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, self._show_state)  # after the wizard has set up its buttons for this page
        if self.state in ("running", "cancelling") or self.from_record:
            return
        try:
            config = self._build_config()
        except ValueError as exc:  # ConfigError: a setting the pages let through but the engine refuses
            self.problems.set_items([plain(str(exc))])
            return
        if self.state != "idle" and self.config is not None and config.resolved() != self.config.resolved():
            self._reset()  # the settings changed since that run: this is a new one (the old stays listed)
        self.config = config
        self._describe(config)
        self._show_state()

    def _reset(self) -> None:
        self.state, self.status, self.error, self.record = "idle", "", "", None
        self.run_dir = self.bundle_dir = ""
        self._ended_event = None
        self.problems.set_items([])
        self.outcome.setText("")
        self.phase.setText("Not started.")
        self.overall.setValue(0)
        self.epoch_bar.setValue(0)
        self.batch_line.setText("")
        self.eta.setText("")
        self.log.clear()
        self.curves.reset(1)

    def load_record(self, record: RunRecord) -> None:
        """Show an earlier run (from Model ▸ Training runs): resumable, finished or failed."""
        from xrayviewer.training.config import load_config

        self.record = record
        self.from_record = True
        self.run_dir = record.run_dir
        try:
            self.config = (
                load_config(Path(record.run_dir) / "config.json")
                if record.run_dir
                else load_config(record.config_file)
            )
        except Exception:  # a damaged folder: the record still says what it was
            self.config = None
        if self.config is not None:
            self._describe(self.config)
        self._epochs = record.epochs
        self.curves.reset(record.epochs or 1)
        for h in record.history:
            self.curves.add_epoch(h["epoch"], h["train_loss"], h["val_loss"], h.get("val_auc"))
        log = Path(record.run_dir) / "train.log" if record.run_dir else None
        if log is not None and log.is_file():
            self.log.setPlainText(log.read_text(encoding="utf-8", errors="replace")[-200_000:])
        if record.finished:
            self.state, self.status = "completed", "completed"
            self.bundle_dir = str(Path(record.run_dir) / "bundle")
            self.phase.setText("Finished.")
            self.outcome.setText("The model is trained. Next shows the test results and installs it.")
        elif record.resumable and record.state == "failed":
            self.state, self.error = "failed", record.error
            self.phase.setText("Failed.")
            self.problems.set_items([record.error] if record.error else [])
        elif record.resumable:
            self.state = "cancelled"
            self.phase.setText("Cancelled." if record.state == "cancelled" else "Interrupted.")
            self.outcome.setText(
                f"Stopped after epoch {record.epochs_done} of {record.epochs}. Resume "
                "continues exactly where it stopped."
            )
        else:
            self.state = "failed"
            self.error = record.error or "The run did not finish and left no checkpoint."
            self.problems.set_items([self.error])
            self.phase.setText("Failed.")
        self.overall.setValue(int(1000 * record.epochs_done / max(1, record.epochs)))
        self._show_state()

    def _describe(self, config: TrainConfig) -> None:
        start = (
            f"fine-tuned from {Path(config.model.init_from).name}"
            if config.model.init_from
            else ("from scratch")
        )
        self.summary.setText(
            f"<b>{config.name}</b>: {config.task}, classes {', '.join(config.classes) or '(from the data)'}; "
            f"{config.model.arch} at {config.preprocess.size} px, {start}; {config.epochs} epochs of "
            f"batches of {config.batch_size}, learning rate {config.optim.lr:g}; device {config.device}, "
            f"seed {config.seed}."
        )

    # -- actions

    def start(self) -> None:
        """Write the configuration next to the run folders and launch ``xrayviewer train`` on it."""
        if self.process.running:
            return
        try:
            config = self._build_config()
        except ValueError as exc:
            self._fail(plain(str(exc)))
            return
        self.config = config
        self._describe(config)
        out = Path(config.out).expanduser()
        folder = out / WIZARD_CONFIGS
        try:
            folder.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            path = folder / f"{config.name}-{stamp}.json"
            path.write_text(json.dumps(config.resolved(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            self._fail(
                f"The output folder {out} cannot be written ({exc.strerror or exc}): choose another one "
                "on the Recipe page."
            )
            return
        self.record = RunRecord(config_file=str(path), name=config.name, epochs=config.epochs)
        self._save_record()
        self.log.clear()
        self.curves.reset(config.epochs)
        self._launch(["train", "--config", str(path), "--events", "json"])

    def resume(self) -> None:
        """Continue the cancelled or interrupted run from its checkpoint."""
        if self.process.running or self.record is None or not self.record.run_dir:
            return
        self._append(f"--- resuming {self.record.run_dir}")
        self._launch(["train", "--resume", self.record.run_dir, "--events", "json"])

    def _launch(self, args: list[str]) -> None:
        self.state, self.status, self.error, self._ended_event = "running", "", "", None
        self.problems.set_items([])
        self.outcome.setText("")
        self.phase.setText("Starting the training process…")
        self.process.start(args)
        self._show_state()

    def cancel(self) -> None:
        """Stop after the current batch with a checkpoint (exit 130)."""
        if self.process.running and self.state == "running":
            self.state = "cancelling"
            self.phase.setText("Cancelling: finishing the current batch and writing a checkpoint…")
            self.process.cancel()
            self._show_state()

    def busy(self) -> bool:
        """A training process is running."""
        return self.process.running

    # -- events from the child

    def _event(self, event) -> None:
        now = time.perf_counter()
        if isinstance(event, CacheProgress):
            self.phase.setText(
                f"Preparing the images (decoded once, then cached): {event.done} of {event.total}"
            )
            self.epoch_bar.setRange(0, max(1, event.total))
            self.epoch_bar.setValue(event.done)
            self.epoch_bar.setFormat("images %p%")
        elif isinstance(event, RunStarted):
            self.run_dir = event.run_dir
            self._epochs, self._steps = event.epochs, event.steps_per_epoch
            self._current_epoch = event.start_epoch
            self.curves.epochs = event.epochs
            if self.record is not None:
                self.record.run_dir, self.record.epochs, self.record.state = (
                    event.run_dir,
                    event.epochs,
                    "running",
                )
                self.record.epochs_done = event.start_epoch
                self._save_record()
            self.runStarted.emit(event.run_dir)
            self.phase.setText(f"Training: epoch {event.start_epoch + 1} of {event.epochs}")
            self._last_event_at, self._segment = now, None
            self.epoch_bar.setFormat("epoch %p%")
            self._append(describe(event) or "")
        elif isinstance(event, BatchEnded):
            self._batch(event, now)
        elif isinstance(event, EpochEnded):
            self._epoch(event, now)
        elif isinstance(event, Message):
            self._append(describe(event) or event.text)
            if event.text.startswith("early stop"):
                self.phase.setText("Early stop: validation stopped improving. Evaluating the best epoch…")
        elif isinstance(event, RunFinished):
            self._ended_event = event
            self.status = event.status
            self.bundle_dir = event.bundle
            self.run_dir = event.run_dir or self.run_dir
            self._append(describe(event) or "")
            if event.status == "failed":
                self.error = event.error

    def _batch(self, event: BatchEnded, now: float) -> None:
        if self._segment is None or event.epoch != self._current_epoch:  # an epoch (or a resumed one) began
            self._current_epoch = event.epoch
            self._segment = (self._last_event_at or now, event.step - 1)
        began, before = self._segment
        self._step_s = (now - began) / max(1, event.step - before)
        self._last_batch_at = now
        self.epoch_bar.setRange(0, event.steps)
        self.epoch_bar.setValue(event.step)
        self.phase.setText(f"Training: epoch {event.epoch} of {self._epochs}")
        self.batch_line.setText(
            f"batch {event.step} of {event.steps}, running loss {event.loss:.4f}, learning "
            f"rate {event.lr:.2e}"
        )
        epochs = max(1, self._epochs)
        fraction = ((event.epoch - 1) + event.step / max(1, event.steps)) / epochs
        self.overall.setValue(int(1000 * fraction))
        self.curves.set_running(event.epoch - 1 + event.step / max(1, event.steps), event.loss)
        remaining_steps = (event.steps - event.step) + (epochs - event.epoch) * event.steps
        left = remaining_steps * self._step_s + (epochs - event.epoch + 1) * self._val_s
        if self._step_s:
            self.eta.setText(f"{describe_duration(left)} left at most (early stopping can end it sooner)")

    def _epoch(self, event: EpochEnded, now: float) -> None:
        if self._last_batch_at:
            self._val_s = max(0.0, now - self._last_batch_at)
        self._segment, self._last_event_at = None, now
        self.curves.add_epoch(event.epoch, event.train_loss, event.val_loss, event.val_auc)
        self._append(describe(event) or "")
        self.overall.setValue(int(1000 * event.epoch / max(1, event.epochs)))
        if self.record is not None:
            self.record.epochs_done = event.epoch
            self.record.history.append(
                {
                    "epoch": event.epoch,
                    "train_loss": event.train_loss,
                    "val_loss": event.val_loss,
                    "val_auc": event.val_auc,
                }
            )
            self._save_record()
        if event.epoch == event.epochs:
            self.phase.setText("Evaluating the best epoch on validation and test, writing the report…")

    def _stderr(self, line: str) -> None:
        self._append(line)

    def _ended(self, code: int, crashed: bool, stderr: str) -> None:
        end = self._ended_event
        status = end.status if end is not None else ""
        if code == 0 and status in ("completed", "early_stopped"):
            self._finish_ok(status)
        elif (
            status == "cancelled"
            or (code == 130 and not crashed)
            or (self.process.cancel_requested and self._resumable())
        ):
            self.state = "cancelled"
            self._set_record_state("cancelled")
            where = f" in {self.run_dir}" if self.run_dir else ""
            self.phase.setText("Cancelled.")
            self.outcome.setText(
                f"Cancelled: a checkpoint is saved{where}. Resume continues exactly where it "
                "stopped, now or later from Model ▸ Training runs."
                if self._resumable()
                else "Cancelled before training started: nothing to resume."
            )
            self.runEnded.emit("cancelled")
        else:
            self._fail(self._failure_text(code, crashed, stderr))
        self._show_state()

    def _failure_text(self, code: int, crashed: bool, stderr: str) -> str:
        last = (stderr.strip().splitlines() or [""])[-1].strip()
        if self.error:
            reason = self.error
        elif code == 2 and "error: " in last:
            reason = plain(last.split("error: ", 1)[1])
        elif "failed: " in last:
            reason = last.split("failed: ", 1)[1]
        elif crashed or code < 0:
            reason = (
                "the training process stopped unexpectedly (it crashed or was killed, e.g. for lack of "
                "memory)"
            )
        else:
            reason = last or f"the training process ended with code {code}"
        sentence = reason[:1].upper() + reason[1:]
        if not sentence.endswith("."):
            sentence += "."
        if self._resumable():
            sentence += " The last complete epoch's checkpoint is kept: fix the cause, then Resume."
        return f"The run failed: {sentence} The log below keeps the details."

    def _finish_ok(self, status: str) -> None:
        self.state = "completed"
        self.overall.setValue(1000)
        self.eta.setText("")
        self._set_record_state("completed")
        self.phase.setText("Finished." if status == "completed" else "Finished early (early stopping).")
        end = self._ended_event
        auc = "" if end is None or end.test_auc is None else f" Test AUC {end.test_auc:.3f}."
        self.outcome.setText(
            f"<span style='color:{GOOD_COLOUR}'>The model is trained.{auc} Next shows the "
            "test results and installs it.</span>"
        )
        self.runEnded.emit(status)
        self.completeChanged.emit()

    def _fail(self, message: str) -> None:
        self.state = "failed"
        self.error = message
        self.problems.set_items([message])
        self.phase.setText("Failed.")
        self.outcome.setText("")
        if self.record is not None:
            self.record.error = message
        self._set_record_state("failed")
        self.runEnded.emit("failed")
        self._show_state()

    def _resumable(self) -> bool:
        return (
            bool(self.run_dir)
            and (Path(self.run_dir) / "checkpoints" / "last.pt").is_file()
            and not (Path(self.run_dir) / "bundle").is_dir()
        )

    def _set_record_state(self, state: str) -> None:
        if self.record is not None:
            self.record.state = state
            if self.run_dir:
                self.record.run_dir = self.run_dir
            self._save_record()

    def _save_record(self) -> None:
        if self.record is None:
            return
        try:
            self.records.put(self.record)
        except OSError as exc:  # the list of runs is a convenience: a read-only home must not stop a run
            self._append(f"could not remember this run in {self.records.path}: {exc.strerror or exc}")

    def _append(self, line: str) -> None:
        if line:
            self.log.appendPlainText(line)

    # -- buttons and navigation

    def _show_state(self) -> None:
        state = self.state
        running = state in ("running", "cancelling")
        self.start_button.setVisible(state in ("idle", "failed") and not self._resumable())
        self.start_button.setEnabled(not running)
        self.start_button.setText("&Start training" if state == "idle" else "&Start again")
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(state == "running")
        self.kill_button.setVisible(state == "cancelling")
        self.resume_button.setVisible(state in ("cancelled", "failed") and self._resumable())
        colour = PROBLEM_COLOUR if state == "failed" else ""
        self.phase.setStyleSheet(f"color:{colour}" if colour else "")
        self.completeChanged.emit()  # the wizard updates its buttons here, Back included: so after it
        wizard = self.wizard()
        if wizard is not None and wizard.currentPage() is self:  # no going back while the engine runs
            from PySide6.QtWidgets import QWizard

            wizard.button(QWizard.WizardButton.BackButton).setEnabled(not running)

    def isComplete(self) -> bool:
        """Next once the bundle is written."""
        return self.state == "completed" and bool(self.run_dir)

    def validatePage(self) -> bool:
        """Never leave while the engine runs."""
        return not self.process.running
