"""Page 3, Recipe: the engine's knobs with their defaults and a one-line why for each, and a measured time
estimate (a few batches timed on the chosen device by ``xrayviewer train --time-batches``)."""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from xrayviewer.engine.devices import DEVICE_CHOICES
from xrayviewer.gui.wizard.common import PathField, Sentences, column_scroll, problems_label, why_label
from xrayviewer.gui.wizard.engine_process import EngineProcess
from xrayviewer.training.config import TrainConfig
from xrayviewer.training.run_records import default_runs_dir
from xrayviewer.training.timing import StepTiming, describe_duration, estimate_seconds

TIMED_BATCHES = 2
FINE_TUNE_LR = 3e-4  # the shipped fine-tuned model's rate (configs/kermany-type.toml)


def _spin(low: int, high: int, value: int, step: int = 1, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


def _dspin(
    low: float, high: float, value: float, step: float, decimals: int = 2, suffix: str = ""
) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


def _combo(items: dict[str, str], value: str) -> QComboBox:
    box = QComboBox()
    for key, text in items.items():
        box.addItem(text, key)
    box.setCurrentIndex(max(0, box.findData(value)))
    return box


class RecipePage(QWizardPage):
    """How the model is trained."""

    def __init__(self, wizard_config, data_page, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Recipe: how it learns")
        self.setSubTitle(
            "The engine's settings, with its defaults. Each says in a line why it is there; the "
            "defaults are a sound start."
        )
        self._wizard_config = wizard_config  # () -> TrainConfig from the pages before this one
        self._data_page = data_page
        self._defaults_for = None  # the init bundle the defaults were last set for
        d = TrainConfig()
        self.epochs = _spin(1, 1000, d.epochs)
        self.batch = _spin(1, 1024, d.batch_size)
        self.lr = QLineEdit(f"{d.optim.lr:g}")
        self.lr.setValidator(QDoubleValidator(1e-8, 10.0, 10))
        self.lr.setMaximumWidth(110)
        self.schedule = _combo(
            {"cosine": "cosine, with warm-up", "plateau": "lower on plateau", "constant": "constant"},
            d.optim.schedule,
        )
        self.freeze = _spin(0, 100, d.optim.freeze_epochs, suffix=" epochs")
        self.unfreeze_factor = _dspin(0.001, 1.0, d.optim.unfreeze_lr_factor, 0.05, 3)
        self.class_weights = QCheckBox("on")
        self.class_weights.setChecked(d.optim.class_weights)
        self.stop_metric = _combo(
            {"auc": "validation AUC", "loss": "validation loss"}, d.optim.early_stop_metric
        )
        self.patience = _spin(0, 100, d.optim.patience, suffix=" epochs")
        self.rotation = _dspin(0, 45, d.augment.rotation_deg, 1, 1, " °")
        self.crop = _dspin(0.3, 1.0, d.augment.crop_scale[0], 0.05)
        self.shift = _dspin(0, 0.3, d.augment.shift, 0.01)
        self.brightness = _dspin(0, 0.5, d.augment.brightness, 0.05)
        self.contrast = _dspin(0, 0.5, d.augment.contrast, 0.05)
        self.hflip = QCheckBox("mirror left–right")
        self.hflip.setChecked(d.augment.hflip)
        self.threshold = _combo(
            {"youden": "best balance (Youden J)", "sensitivity": "reach a sensitivity"}, d.eval.threshold
        )
        self.target = _dspin(0.5, 0.999, d.eval.target_sensitivity, 0.01, 3)
        self.bootstrap = _spin(0, 100000, d.eval.bootstrap, 100)
        self.cams = _spin(0, 64, d.eval.cam_grid)
        self.val_fraction = _dspin(0.05, 0.5, d.split.val_fraction, 0.05)
        self.test_fraction = _dspin(0.05, 0.5, d.split.test_fraction, 0.05)
        self.limit = _spin(0, 1_000_000, 0, 50)
        self.limit.setSpecialValueText("all")
        self.device = _combo(
            {
                k: {
                    "auto": "automatic (GPU if there is one)",
                    "cpu": "CPU",
                    "cuda": "CUDA GPU",
                    "mps": "Apple GPU (MPS)",
                }[k]
                for k in DEVICE_CHOICES
            },
            d.device,
        )
        self.seed = _spin(0, 2**31 - 1, d.seed)
        self.out = PathField("folder")
        self.out.set_text(str(default_runs_dir()), notify=False)

        groups = [
            (
                "Training",
                [
                    (
                        "&Epochs",
                        self.epochs,
                        "Passes over the training images; early stopping ends the run sooner "
                        "when validation stops improving.",
                    ),
                    (
                        "&Batch size",
                        self.batch,
                        "Images per step: larger is faster per image on a GPU; too large runs out of memory.",
                    ),
                    (
                        "&Learning rate",
                        self.lr,
                        "Step size of the optimiser (AdamW): 1e-3 from scratch, 1e-4 to 3e-4 "
                        "when fine-tuning.",
                    ),
                    (
                        "Sc&hedule",
                        self.schedule,
                        "Cosine lowers the rate smoothly to zero; plateau divides it by 10 "
                        "when validation stalls.",
                    ),
                    (
                        "&Two-phase",
                        self.freeze,
                        "Fine-tuning: train only the output layer this many epochs first, "
                        "then the whole network (0 = one phase).",
                    ),
                    (
                        "Phase-2 rate ×",
                        self.unfreeze_factor,
                        "The whole network then learns at this fraction of "
                        "the rate, so it does not forget what it knew.",
                    ),
                    (
                        "Class &weights",
                        self.class_weights,
                        "Count the rarer class more in the loss, so that the "
                        "model does not just say the common one.",
                    ),
                    (
                        "Early stop on",
                        self.stop_metric,
                        "What picks the best epoch (kept in the bundle) and stops the run.",
                    ),
                    (
                        "&Patience",
                        self.patience,
                        "Epochs without improvement before stopping (0 = never stop early).",
                    ),
                ],
            ),
            (
                "Augmentation: random changes to training images",
                [
                    ("&Rotation", self.rotation, "Films are never perfectly straight."),
                    (
                        "Zoom: keep at least",
                        self.crop,
                        "of the area (random crop): patients are framed differently.",
                    ),
                    ("Shift", self.shift, "of the side: the chest is not always centred."),
                    ("Brightness ±", self.brightness, "Exposure differs between films and scanners."),
                    ("Contrast ±", self.contrast, "So does the contrast."),
                    (
                        "Flip",
                        self.hflip,
                        "Off by default: the heart sits on the left, and the model may use it.",
                    ),
                ],
            ),
            (
                "Evaluation",
                [
                    (
                        "T&hreshold",
                        self.threshold,
                        "How the positive/negative cut-off is chosen, on validation, after calibration.",
                    ),
                    (
                        "Target sensitivity",
                        self.target,
                        "For “reach a sensitivity”: the share of positives to catch.",
                    ),
                    (
                        "Bootstrap",
                        self.bootstrap,
                        "Resamples for the 95 % confidence interval of the test AUC.",
                    ),
                    ("Heat maps", self.cams, "Test images drawn with their heat map in the report."),
                ],
            ),
            (
                "Data and computer",
                [
                    (
                        "&Validation share",
                        self.val_fraction,
                        "Patients set aside to choose the epoch, the threshold and the calibration.",
                    ),
                    (
                        "Test share",
                        self.test_fraction,
                        "Patients kept for the final, honest numbers (used only when "
                        "the data has no test split).",
                    ),
                    (
                        "Quick trial: at most",
                        self.limit,
                        "images per class and split (0 = all): to try the recipe out fast.",
                    ),
                    ("&Device", self.device, "Where the training runs; a GPU is 10 to 100 times faster."),
                    (
                        "&Seed",
                        self.seed,
                        "Fixes splits, initial weights and augmentation: the same seed gives the same model.",
                    ),
                    ("&Output folder", self.out, "Run folders (checkpoints, report, bundle) go here."),
                ],
            ),
        ]
        columns = [QVBoxLayout(), QVBoxLayout()]
        for index, (title, rows) in enumerate(groups):
            box = QGroupBox(title)
            form = QFormLayout(box)
            for text, widget, why in rows:
                label = QLabel(text + ":")
                label.setBuddy(widget)
                row = QHBoxLayout()
                row.addWidget(widget)
                why_text = why_label(why)
                why_text.setMinimumWidth(150)
                row.addWidget(why_text, 1)
                form.addRow(label, row)
            columns[0 if index == 0 else 1].addWidget(box)
        for column in columns:
            column.addStretch(1)
        body = QWidget()
        body_box = QHBoxLayout(body)
        body_box.addLayout(columns[0], 1)
        body_box.addLayout(columns[1], 1)
        scroll = column_scroll(body)

        self.estimate = QLabel("The time estimate appears here once a few batches are timed.")
        self.estimate.setWordWrap(True)
        self.measure = QPushButton("&Measure again")
        self.measure.clicked.connect(self.measure_now)
        self.problems = problems_label()
        self.notes = Sentences()
        estimate_box = QGroupBox("Time")
        estimate_row = QHBoxLayout(estimate_box)
        estimate_row.addWidget(self.estimate, 1)
        estimate_row.addWidget(self.measure)
        box = QVBoxLayout(self)
        box.addWidget(scroll, 1)
        box.addWidget(self.problems)
        box.addWidget(estimate_box)

        self.timer = EngineProcess(self)
        self.timer.event.connect(self._timing_event)
        self.timer.ended.connect(self._timing_ended)
        self.timing: StepTiming | None = None
        self._timing_error = ""
        self._measure_soon = QTimer(self, singleShot=True, interval=900)
        self._measure_soon.timeout.connect(self.measure_now)
        self._tmp_dir = tempfile.TemporaryDirectory(prefix="xrayviewer-wizard-")  # removed with the page
        self._tmp = Path(self._tmp_dir.name)
        for widget in (self.batch, self.device):
            (widget.valueChanged if isinstance(widget, QSpinBox) else widget.currentIndexChanged).connect(
                self._timing_inputs_changed
            )
        for widget in (self.epochs, self.limit):
            widget.valueChanged.connect(self._show_estimate)
        self.lr.textChanged.connect(self._check)
        self.threshold.currentIndexChanged.connect(self._check)
        self.schedule.currentIndexChanged.connect(self._check)
        self._check()

    # -- the configuration

    def apply(self, config: TrainConfig) -> None:
        """Put this page's settings into ``config`` (after the pages before it)."""
        config.epochs, config.batch_size = self.epochs.value(), self.batch.value()
        config.seed, config.device = self.seed.value(), self.device.currentData()
        config.out = self.out.text() or str(default_runs_dir())
        o = config.optim
        o.lr = self._lr() or o.lr
        o.schedule, o.freeze_epochs = self.schedule.currentData(), self.freeze.value()
        o.unfreeze_lr_factor = self.unfreeze_factor.value()
        o.class_weights = self.class_weights.isChecked()
        o.early_stop_metric, o.patience = self.stop_metric.currentData(), self.patience.value()
        a = config.augment
        a.rotation_deg, a.crop_scale = self.rotation.value(), (self.crop.value(), 1.0)
        a.shift, a.brightness, a.contrast = self.shift.value(), self.brightness.value(), self.contrast.value()
        a.hflip = self.hflip.isChecked()
        e = config.eval
        e.threshold, e.target_sensitivity = self.threshold.currentData(), self.target.value()
        e.bootstrap, e.cam_grid = self.bootstrap.value(), self.cams.value()
        config.split.val_fraction, config.split.test_fraction = (
            self.val_fraction.value(),
            self.test_fraction.value(),
        )
        config.data.limit_per_class = self.limit.value()

    def _lr(self) -> float | None:
        try:
            value = float(self.lr.text())
        except ValueError:
            return None
        return value if math.isfinite(value) and value > 0 else None

    def _check(self) -> None:
        problems = []
        if self._lr() is None:
            problems.append("The learning rate must be a positive number such as 0.001 or 1e-4.")
        self.target.setEnabled(self.threshold.currentData() == "sensitivity")
        self.problems.set_items(problems)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        """Next once every setting is valid."""
        return self._lr() is not None

    # -- entering the page

    def initializePage(self) -> None:
        """Fine-tuning defaults the first time a bundle is chosen; time a few batches."""
        config = self._wizard_config()
        init = config.model.init_from
        if init != self._defaults_for:
            self._defaults_for = init
            if init:
                self.lr.setText(f"{FINE_TUNE_LR:g}")
            else:
                self.lr.setText(f"{TrainConfig().optim.lr:g}")
        self._timing_inputs_changed()

    def cleanupPage(self) -> None:
        """Going back: stop measuring."""
        self.stop_measuring()

    def stop_measuring(self) -> None:
        """End a timing run in progress."""
        self._measure_soon.stop()
        if self.timer.running:
            self.timer.kill()

    # -- timing

    def _timing_inputs_changed(self) -> None:
        if self.timer.running:  # its answer would be for the old recipe
            self.timer.kill()
        self.timing = None
        self.estimate.setText("Timing a few batches of this recipe…")
        self._measure_soon.start()

    def measure_now(self) -> None:
        """Time a few training steps of this recipe on the chosen device (in a child process)."""
        if self.timer.running:
            self.timer.kill()
            self.timer.wait(2000)
        config = self._wizard_config()
        self.apply(config)
        path = self._tmp / "timing.json"
        path.write_text(json.dumps(config.resolved()))
        self.timing, self._timing_error = None, ""
        self.estimate.setText(
            f"Timing {TIMED_BATCHES + 1} batches of {config.batch_size} at "
            f"{config.preprocess.size} px on the {config.device} device… (on a CPU the "
            "first batches of a large network can take a minute)"
        )
        self.timer.start(
            ["train", "--config", str(path), "--time-batches", str(TIMED_BATCHES), "--events", "json"]
        )

    def _timing_event(self, event) -> None:
        if (
            isinstance(event, dict)
            and event.get("event") == "timing"
            and event.get("batch_size") == self.batch.value()
        ):
            fields = {f.name for f in dataclasses.fields(StepTiming)}
            self.timing = StepTiming(**{k: v for k, v in event.items() if k in fields})
            self._show_estimate()

    def _timing_ended(self, code: int, crashed: bool, stderr: str) -> None:
        if self.timing is not None or self.timer.cancel_requested:
            return
        last = (stderr.strip().splitlines() or [""])[-1]
        reason = last.split("error: ", 1)[-1].split("failed: ", 1)[-1]
        if "memory" in stderr.lower():
            reason = "a batch of this size does not fit in memory: choose a smaller batch size"
        self._timing_error = reason or f"the timing run ended with code {code}"
        self.estimate.setText(f"No time estimate: {self._timing_error}.")

    def estimate_seconds(self) -> float | None:
        """The measured estimate of the whole run (None until timed)."""
        if self.timing is None:
            return None
        report = self._data_page.report
        if report is None:
            return None
        limit = self.limit.value()
        train = sum(min(v, limit) if limit else v for v in report.counts.get("train", {}).values())
        evaluated = sum(
            min(v, limit) if limit else v for s in ("val", "test") for v in report.counts.get(s, {}).values()
        )
        decode = self._data_page.decode_seconds
        return estimate_seconds(self.timing, train, evaluated, self.epochs.value(), decode)

    def _show_estimate(self) -> None:
        seconds = self.estimate_seconds()
        if seconds is None or self.timing is None:
            return
        t = self.timing
        where = (
            "this CPU"
            if t.device == "cpu"
            else f"this GPU ({t.hardware})"
            if t.device.startswith("cuda")
            else t.device
        )
        report = self._data_page.report
        limit = self.limit.value()
        train = sum(min(v, limit) if limit else v for v in report.counts.get("train", {}).values())
        steps = math.ceil(train / max(1, t.batch_size))
        self.estimate.setText(
            f"<b>{describe_duration(seconds).capitalize()} on {where}</b> for {self.epochs.value()} epochs "
            f"(measured: {t.train_batch_s:.2f} s per batch of {t.batch_size}, {steps} batches per epoch, "
            f"plus validation and decoding the images once; {t.hardware}). Early stopping can end it sooner."
        )
