"""Recalibrate instead of retrain (pages 6a and 6b): an installed bundle, the site's own labelled films and a
threshold rule; then ``xrayviewer recalibrate --events json`` in a child process refits the temperature and
thresholds without touching the weights, and the page shows reliability before/after, sensitivity and
specificity at the old and the new thresholds, and installs the result as a new version of the bundle."""

from __future__ import annotations

import html
import json
import tempfile
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from xrayviewer.engine.bundle import Bundle
from xrayviewer.gui.wizard.common import PictureLabel, Sentences, column_scroll, problems_label, why_label
from xrayviewer.gui.wizard.data_source import DataSourceWidget
from xrayviewer.gui.wizard.engine_process import EngineProcess
from xrayviewer.gui.wizard.inspector import DataInspector
from xrayviewer.gui.wizard.results_page import Installer
from xrayviewer.training import inspection
from xrayviewer.training.config import TrainConfig
from xrayviewer.training.events import CacheProgress, Message, RunFinished
from xrayviewer.training.inspection import DataReport
from xrayviewer.training.recalibration import PLOT_FILE, RESULT_FILE, RecalConfig, card_rule
from xrayviewer.training.run_records import default_runs_dir

SKIP = "(not used)"


class RecalibrateSetupPage(QWizardPage):
    """Which bundle, which films, which rule."""

    def __init__(self, bundles_lister, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Recalibrate an installed model on your own films")
        self.setSubTitle(
            "A model can rank films well at your site and still sit at another sensitivity than "
            "its card says. Your labelled films refit its calibration and threshold; its weights "
            "stay as they are."
        )
        self._list_bundles = bundles_lister
        self.bundles: list[Bundle] = []
        self.report: DataReport | None = None
        self.unreadable: list[tuple[str, str]] | None = None
        self._generation = 0
        self.bundle_combo = QComboBox()
        self.card_note = why_label("")
        self.source = DataSourceWidget(splits=False)
        self.inspector = DataInspector(self)
        self.status = QLabel("Choose the films.")
        self.status.setWordWrap(True)
        self.data_problems = problems_label()
        self.data_notes = Sentences()
        self.mapping_box = QGroupBox("What your labels mean")
        self.mapping = QFormLayout(self.mapping_box)
        self.mapping_combos: dict[str, QComboBox] = {}
        self.card_rule = QRadioButton("The model's own &rule")
        self.sensitivity_rule = QRadioButton("Reach a &sensitivity of")
        group = QButtonGroup(self)
        group.addButton(self.card_rule)
        group.addButton(self.sensitivity_rule)
        self.card_rule.setChecked(True)
        self.target = QDoubleSpinBox()
        self.target.setRange(0.5, 0.999)
        self.target.setDecimals(3)
        self.target.setSingleStep(0.01)
        self.target.setValue(0.9)
        self.description = QLineEdit()
        self.description.setPlaceholderText(
            "e.g. 180 AP films, St Elsewhere children's ward, 2025, labels from two readers"
        )
        self.problems = problems_label()

        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        label = QLabel("&Model:")
        label.setBuddy(self.bundle_combo)
        model_form.addRow(label, self.bundle_combo)
        model_form.addRow(self.card_note)
        rule_box = QGroupBox("Threshold rule")
        rule = QVBoxLayout(rule_box)
        rule.addWidget(self.card_rule)
        row = QHBoxLayout()
        row.addWidget(self.sensitivity_rule)
        row.addWidget(self.target)
        row.addStretch(1)
        rule.addLayout(row)
        rule.addWidget(
            why_label(
                "Sensitivity: the share of positive films the model flags. A screening site "
                "may want 0.95 and accept more false alarms."
            )
        )
        data_box = QGroupBox("Your labelled films")
        data = QVBoxLayout(data_box)
        data.addWidget(self.source)
        site_label = QLabel("Site &data in words (recorded in the new card):")
        site_label.setBuddy(self.description)
        data.addWidget(site_label)
        data.addWidget(self.description)
        data.addWidget(self.status)
        data.addWidget(self.data_problems)
        data.addWidget(self.data_notes)
        data.addStretch(1)
        left = QVBoxLayout()
        left.addWidget(model_box)
        left.addWidget(data_box, 1)
        right = QVBoxLayout()
        right.addWidget(self.mapping_box)
        right.addWidget(rule_box)
        right.addWidget(self.problems)
        right.addStretch(1)
        box = QHBoxLayout(self)
        box.addLayout(left, 6)
        box.addLayout(right, 5)

        self.bundle_combo.currentIndexChanged.connect(self._bundle_changed)
        self.source.changed.connect(self.recheck)
        self.source.pending.connect(self._pending)
        self.inspector.reportReady.connect(self._report)
        self.inspector.checkFinished.connect(self._checked)
        self.inspector.failed.connect(lambda g, m: self._report(g, DataReport(problems=[m])))
        for signal in (self.card_rule.toggled, self.target.valueChanged, self.description.textChanged):
            signal.connect(self._changed)

    def initializePage(self) -> None:
        """List the installed bundle folders."""
        self.bundles = [b for b in self._list_bundles() if b.path.is_dir()]
        self.bundle_combo.blockSignals(True)
        self.bundle_combo.clear()
        for b in self.bundles:
            self.bundle_combo.addItem(
                f"{b.name} {b.card.version} ({b.source}) — {b.card.task}, {', '.join(b.card.classes[:3])}",
                str(b.path),
            )
        self.bundle_combo.blockSignals(False)
        self._bundle_changed()

    def bundle(self) -> Bundle | None:
        """The bundle to recalibrate."""
        index = self.bundle_combo.currentIndex()
        return self.bundles[index] if 0 <= index < len(self.bundles) else None

    def _bundle_changed(self) -> None:
        bundle = self.bundle()
        if bundle is None:
            self.card_note.setText("No model bundle is installed.")
        else:
            card = bundle.card
            rule, target = card_rule(bundle)
            words = "Youden J (best balance)" if rule == "youden" else f"sensitivity ≥ {target:g}"
            self.card_rule.setText(f"The model's own &rule: {words}")
            thresholds = ", ".join(f"{k} {v:.3f}" for k, v in card.thresholds.items())
            self.card_note.setText(
                f"{card.task}; thresholds {thresholds}; temperature "
                f"{card.temperature or 1.0:.3f}; {card.threshold_method}."
            )
        self._fill_mapping()
        self._changed()

    def _pending(self) -> None:
        self.report, self.unreadable = None, None
        self.completeChanged.emit()

    def recheck(self) -> None:
        """List the site films' labels (in the background)."""
        self.report, self.unreadable = None, None
        self.data_problems.set_items([])
        self.data_notes.set_items([])
        if not self.source.source():
            self.status.setText("Choose the films.")
            self._fill_mapping()
            self._changed()
            return
        self.status.setText("Reading the films…")
        config = TrainConfig(task="multiclass", data=self.source.data_config())
        self._generation = self.inspector.inspect(config, site=True)
        self._changed()

    def _report(self, generation: int, report: DataReport) -> None:
        if generation != self._generation:
            return
        self.report = report
        self.data_problems.set_items(report.problems)
        self.data_notes.set_items(report.notes)
        if report.problems:
            self.status.setText("These films cannot be used yet:")
            self.unreadable = []
        else:
            counts = ", ".join(f"{n} {c}" for c, n in report.counts.get(inspection.SITE, {}).items())
            self.status.setText(
                f"{report.images.get(inspection.SITE, 0)} films ({counts}); test-decoding them…"
            )
        self._fill_mapping()
        self._changed()

    def _checked(self, generation: int, unreadable) -> None:
        if generation != self._generation or self.report is None:
            return
        self.unreadable = list(unreadable)
        problems, notes = inspection.readability(self.report, self.unreadable)
        self.data_problems.set_items(self.report.problems + problems)
        self.data_notes.set_items(self.report.notes + notes)
        counts = ", ".join(f"{n} {c}" for c, n in self.report.counts.get(inspection.SITE, {}).items())
        self.status.setText(f"{len(self.report.files) - len(self.unreadable)} readable films ({counts}).")
        self._changed()

    def _fill_mapping(self) -> None:
        while self.mapping.rowCount():
            self.mapping.removeRow(0)
        self.mapping_combos = {}
        bundle = self.bundle()
        labels = list(self.report.classes) if self.report is not None else []
        if bundle is None or not labels:
            self.mapping.addRow(
                why_label("Once the films are read, say here which of your labels means what.")
            )
            return
        card = bundle.card
        targets = (
            [f"no finding (not {card.classes[0]})", card.classes[0]]
            if card.task == "binary"
            else list(card.classes)
        )
        for target in targets:
            combo = QComboBox()
            combo.addItem(SKIP)
            combo.addItems(labels)
            guess = _guess(target, labels, negative=target.startswith("no finding"))
            if guess:
                combo.setCurrentText(guess)
            combo.currentIndexChanged.connect(self._changed)
            self.mapping_combos[target] = combo
            label = QLabel(f"{target}:")
            label.setBuddy(combo)
            self.mapping.addRow(label, combo)
        self.mapping.addRow(why_label("Labels not chosen here are left out."))

    def recal_config(self) -> RecalConfig:
        """What ``xrayviewer recalibrate`` gets."""
        bundle = self.bundle()
        data = self.source.data_config()
        config = RecalConfig(
            bundle=str(bundle.path) if bundle else "",
            data=data,
            description=self.description.text().strip(),
            out=str(default_runs_dir()),
        )
        if self.sensitivity_rule.isChecked():
            config.rule, config.target_sensitivity = "sensitivity", self.target.value()
        if bundle is not None:
            chosen = {t: c.currentText() for t, c in self.mapping_combos.items() if c.currentText() != SKIP}
            card = bundle.card
            if card.task == "binary":
                negative = next((v for t, v in chosen.items() if t.startswith("no finding")), "normal")
                config.negative = negative
                positive = chosen.get(card.classes[0], "")
                if positive and positive != card.classes[0]:
                    data.label_map[positive] = card.classes[0]
            else:
                data.label_map.update({v: t for t, v in chosen.items() if v != t})
        return config

    def problems_now(self) -> list[str]:
        """What keeps the recalibration from starting, in sentences."""
        problems = []
        bundle = self.bundle()
        if bundle is None:
            problems.append("Install a model first: there is none to recalibrate.")
        if self.report is None or self.unreadable is None:
            return problems
        if self.data_problems.items:
            return problems
        chosen = [c.currentText() for c in self.mapping_combos.values() if c.currentText() != SKIP]
        if len(chosen) < len(self.mapping_combos):
            problems.append(
                "Say which of your labels means each class (both “no finding” and the finding for "
                "a binary model)."
            )
        if len(set(chosen)) != len(chosen):
            problems.append("Each of your labels can mean one class only.")
        if len(self.description.text().strip()) < 10:
            problems.append(
                "Describe your films in a sentence (where, when, which patients): the new card records it."
            )
        return problems

    def _changed(self) -> None:
        ready = self.report is not None and self.unreadable is not None
        self.problems.set_items(self.problems_now() if ready or self.bundle() is None else [])
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        """Next when the films are read and every choice is made."""
        return (
            self.report is not None
            and self.unreadable is not None
            and not self.data_problems.items
            and not self.problems_now()
        )


def _guess(target: str, labels: list[str], negative: bool) -> str:
    if negative:
        for label in labels:
            if label.lower() in ("normal", "no finding", "negative", "healthy", "none"):
                return label
        return ""
    return next((label for label in labels if label.lower() == target.lower()), "")


class RecalibrateResultPage(QWizardPage):
    """Runs the recalibration and shows before and after; installs the new version."""

    installed = Signal(object)  # the installed Bundle

    def __init__(self, setup: RecalibrateSetupPage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Recalibration: before and after")
        self.setSubTitle(
            "The same weights, a refitted temperature and threshold. Numbers measured on the "
            "films they were fitted on are optimistic: the out-of-fold column is the honest one."
        )
        self.setFinalPage(True)
        self.setup = setup
        self.out_dir = ""
        self.error = ""
        self.process = EngineProcess(self)
        self.process.event.connect(self._event)
        self.process.ended.connect(self._ended)
        self.progress = QProgressBar()
        self.progress.setFormat("%v of %m films scored")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.problems = problems_label()
        self.table = QLabel()
        self.table.setWordWrap(True)
        self.plot = PictureLabel("(reliability before and after appears here)")
        self.installer = Installer()
        self.installer.installed.connect(self.installed)
        left = QWidget()
        left_box = QVBoxLayout(left)
        left_box.setContentsMargins(0, 0, 0, 0)
        left_box.addWidget(self.status)
        left_box.addWidget(self.progress)
        left_box.addWidget(self.problems)
        card = QGroupBox("New version (required before installing)")
        QVBoxLayout(card).addWidget(self.installer)
        left_box.addWidget(card)
        left_box.addStretch(1)
        scroll = column_scroll(left)
        numbers = QGroupBox("Operating point on your films")
        QVBoxLayout(numbers).addWidget(self.table)
        plot_box = QGroupBox("Reliability: is a score of 0.7 right 70 % of the time?")
        QVBoxLayout(plot_box).addWidget(self.plot)
        right = QVBoxLayout()
        right.addWidget(numbers)
        right.addWidget(plot_box, 1)
        box = QHBoxLayout(self)
        box.addWidget(scroll, 1)
        box.addLayout(right, 1)
        self._tmp_dir = tempfile.TemporaryDirectory(prefix="xrayviewer-recal-")  # removed with the page
        self._tmp = Path(self._tmp_dir.name)

    def initializePage(self) -> None:
        """Start the recalibration."""
        config = self.setup.recal_config()
        path = self._tmp / "recalibrate.json"
        path.write_text(json.dumps(config.resolved(), indent=2))
        self.out_dir, self.error = "", ""
        self.problems.set_items([])
        self.table.setText("")
        self.plot.set_pixmap(None)
        self.installer.setEnabled(False)
        self.status.setText("Scoring your films with the model (weights unchanged)…")
        self.progress.setRange(0, 0)
        self.progress.show()
        if self.process.running:
            self.process.kill()
            self.process.wait(3000)
        self.process.start(["recalibrate", "--config", str(path), "--events", "json"])

    def cleanupPage(self) -> None:
        """Going back stops a recalibration in progress."""
        if self.process.running:
            self.process.kill()

    def _event(self, event) -> None:
        if isinstance(event, CacheProgress):
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
        elif isinstance(event, Message) and event.level != "info":
            self.status.setText(event.text)
        elif isinstance(event, RunFinished):
            self.out_dir = event.run_dir if event.status == "completed" else ""

    def _ended(self, code: int, crashed: bool, stderr: str) -> None:
        self.progress.hide()
        if code != 0 or not self.out_dir:
            last = (stderr.strip().splitlines() or [f"the recalibration ended with code {code}"])[-1]
            reason = inspection.plain(last.split("error: ", 1)[-1])
            self.error = f"The recalibration failed: {reason}"
            self.problems.set_items([self.error])
            self.status.setText("")
            return
        out = Path(self.out_dir)
        summary = json.loads((out / RESULT_FILE).read_text(encoding="utf-8"))
        counts = ", ".join(f"{n} {c}" for c, n in summary["counts"].items())
        self.status.setText(f"Refitted on {summary['n']} films ({counts}).")
        self.table.setText(comparison_html(summary))
        self.plot.set_file(out / PLOT_FILE)
        self.installer.setEnabled(True)
        self.installer.set_source(str(out / "bundle"))
        self.completeChanged.emit()


def comparison_html(summary: dict) -> str:
    """Old and new operating points side by side (and the out-of-fold estimate)."""

    def pct(v) -> str:
        return "–" if v is None else f"{100 * v:.1f} %"

    rows = [("", "before", "after", "after, out of fold")]
    oof = (summary.get("out_of_fold") or {}).get("per_class", {})
    for name in summary["classes"]:
        b, a = summary["before"]["per_class"][name], summary["after"]["per_class"][name]
        o = oof.get(name, {})
        rows += [
            (f"{name}: threshold", f"{b['threshold']:.3f}", f"{a['threshold']:.3f}", ""),
            ("sensitivity", pct(b["sensitivity"]), pct(a["sensitivity"]), pct(o.get("sensitivity"))),
            ("specificity", pct(b["specificity"]), pct(a["specificity"]), pct(o.get("specificity"))),
            ("calibration error", f"{b['calibration_error']:.3f}", f"{a['calibration_error']:.3f}", ""),
        ]
    rows.append(
        (
            "temperature",
            f"{summary['before']['temperature']:.3f}",
            f"{summary['after']['temperature']:.3f}",
            "",
        )
    )
    body = "".join(
        "<tr>" + "".join(f"<td style='padding-right:14px'>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    rule = html.escape(f"Rule: {summary['rule']} ({summary['rule_source']}).")
    oof_note = (
        ""
        if summary.get("out_of_fold")
        else " Too few films for the out-of-fold check (each half needs both classes)."
    )
    return (
        f"<table>{body}</table><p style='color:#8d9298'>{rule} Out of fold: each half of the patients judged "
        f"with the temperature and threshold fitted on the other half.{html.escape(oof_note)}</p>"
    )
