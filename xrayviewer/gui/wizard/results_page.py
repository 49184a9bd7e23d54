"""Page 5, Results: the engine's report (test metrics with confidence intervals, confusion matrix, ROC,
reliability, heat maps), the card a person must fill in (name, version, data description, licence,
limitations) and Install, which copies the bundle into the per-user models folder; the viewer runs it on the
open film at once."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from xrayviewer.engine.bundle import Bundle, read_bundle
from xrayviewer.engine.install import (
    CardText,
    InstallError,
    card_problems,
    conflict,
    install_bundle,
    read_installed,
)
from xrayviewer.gui.wizard.common import GOOD_COLOUR, PictureLabel, column_scroll, problems_label, why_label

VIEWS = ("AP", "PA", "LL")
PLOTS = (
    ("ROC", "roc_test.png"),
    ("Confusion matrix", "confusion_test.png"),
    ("Reliability", "reliability_test.png"),
    ("Heat maps", "cam_grid.png"),
    ("Curves", "curves.png"),
)


def confirm_box(parent: QWidget, title: str, text: str) -> bool:
    """Ask a yes/no question (tests replace it)."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


class CardForm(QWidget):
    """Name, version and the card text required before a bundle may be installed."""

    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QLineEdit()
        self.version = QLineEdit()
        self.description = QPlainTextEdit()
        self.licence = QLineEdit()
        self.limitations = QPlainTextEdit()
        for edit in (self.description, self.limitations):
            edit.setTabChangesFocus(True)
            edit.setFixedHeight(60)
        self.description.setPlaceholderText(
            "Where the images come from: hospital or public set, years, "
            "patients (ages), views, how the labels were made."
        )
        self.licence.setPlaceholderText("e.g. CC BY 4.0, cite Kermany et al. 2018 — or: internal use only")
        self.limitations.setPlaceholderText(
            "Where the model must not be trusted: other ages, views, scanners, findings it never saw."
        )
        self.views = {v: QCheckBox(v) for v in VIEWS}
        self.age = QComboBox()
        for text, key in (("unknown or mixed", ""), ("children", "child"), ("adults", "adult")):
            self.age.addItem(text, key)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        name_row = QHBoxLayout()
        name_row.addWidget(self.name, 1)
        version_label = QLabel("&Version:")
        version_label.setBuddy(self.version)
        name_row.addWidget(version_label)
        name_row.addWidget(self.version, 1)
        name_label = QLabel("&Name:")
        name_label.setBuddy(self.name)
        form.addRow(name_label, name_row)
        for text, widget in (
            ("&Data:", self.description),
            ("&Licence:", self.licence),
            ("Li&mitations:", self.limitations),
        ):
            label = QLabel(text)
            label.setBuddy(widget)
            form.addRow(label, widget)
        population = QHBoxLayout()
        for box in self.views.values():
            population.addWidget(box)
        age_label = QLabel("  &Patients:")
        age_label.setBuddy(self.age)
        population.addWidget(age_label)
        population.addWidget(self.age, 1)
        form.addRow("Views:", population)
        form.addRow(
            why_label(
                "Views and age group let the viewer warn when a film lies outside what the model "
                "was trained on."
            )
        )
        for edit in (self.name, self.version, self.licence):
            edit.textChanged.connect(self.edited)
        for text in (self.description, self.limitations):
            text.textChanged.connect(self.edited)

    def fill(
        self,
        name: str,
        version: str,
        description: str,
        licence: str,
        limitations: str,
        views: list[str],
        age_group: str,
    ) -> None:
        """Pre-fill the fields."""
        self.name.setText(name)
        self.version.setText(version)
        self.description.setPlainText(description)
        self.licence.setText(licence)
        self.limitations.setPlainText(limitations)
        for view, box in self.views.items():
            box.setChecked(view in views)
        self.age.setCurrentIndex(max(0, self.age.findData(age_group)))

    def text(self) -> CardText:
        """The fields as the installer takes them."""
        return CardText(
            self.name.text().strip(),
            self.version.text().strip(),
            self.description.toPlainText().strip(),
            self.licence.text().strip(),
            self.limitations.toPlainText().strip(),
        )

    def population(self) -> dict:
        """views and age_group card fields."""
        return {
            "views": [v for v, box in self.views.items() if box.isChecked()],
            "age_group": self.age.currentData(),
        }


class Installer(QWidget):
    """The card form, its problems in sentences and the Install button; ``installed`` with the bundle."""

    installed = Signal(object)  # the installed Bundle

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = ""
        self.form = CardForm()
        self.problems = problems_label()
        self.conflict = QLabel()
        self.conflict.setWordWrap(True)
        self.done = QLabel()
        self.done.setWordWrap(True)
        self.button = QPushButton("&Install")
        self.button.setToolTip("Copy the model into your models folder; the viewer runs it on the open film")
        self.button.clicked.connect(self.install)
        self.confirm: Callable[[str, str], bool] = lambda title, text: confirm_box(self, title, text)
        self.bundle: Bundle | None = None
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.form)
        box.addWidget(self.problems)
        box.addWidget(self.conflict)
        row = QHBoxLayout()
        row.addWidget(self.button)
        row.addStretch(1)
        box.addLayout(row)
        box.addWidget(self.done)
        self.form.edited.connect(self._refresh)

    def set_source(self, bundle_dir: str) -> None:
        """The bundle folder to install; the form is pre-filled from its card."""
        self.source = bundle_dir
        self.bundle = None
        self.done.setText("")
        card = read_bundle(bundle_dir).card
        version = card.version
        installed = read_installed(card.name)
        n = 2
        while installed is not None and installed.card.version == version:
            version = f"{card.version}.{n}"
            n += 1
        self.form.fill(
            card.name,
            version,
            str(card.training_data.get("description", "")),
            str(card.training_data.get("licence", "")),
            card.limitations,
            card.views,
            card.age_group,
        )
        self._refresh()

    def _refresh(self) -> None:
        text = self.form.text()
        problems = card_problems(text)
        self.problems.set_items(problems)
        self.conflict.setText(conflict(text) if not problems else "")
        self.button.setEnabled(not problems and bool(self.source))

    def install(self) -> Bundle | None:
        """Install as filled in (asking before replacing an installed bundle of the same name)."""
        text = self.form.text()
        problems = card_problems(text)
        if problems:
            self.problems.set_items(problems)
            return None
        existing = read_installed(text.name)
        replace_it = False
        if existing is not None and existing.card.version != text.version:
            question = (
                f"A model named “{text.name}” (version {existing.card.version}) is installed. Replace "
                f"it with version {text.version}? The old one is kept in the models folder's .previous "
                "folder."
            )
            if not self.confirm("Replace the installed model?", question):
                self.problems.set_items(["Not installed: choose another name, or confirm the replacement."])
                return None
            replace_it = True
        try:
            bundle = install_bundle(
                self.source, text, replace_existing=replace_it, card_fields=self.form.population()
            )
        except InstallError as exc:
            self.problems.set_items([str(exc)])
            return None
        self.bundle = bundle
        self.problems.set_items([])
        self.conflict.setText("")
        self.button.setEnabled(False)  # done; editing the card (a new version) enables it again
        self.done.setText(
            f"<span style='color:{GOOD_COLOUR}'>Installed “{html.escape(bundle.name)}” version "
            f"{html.escape(bundle.card.version)} in {html.escape(str(bundle.path))}. The viewer "
            "runs it on the open film now and on every film from now on; it is listed in the "
            "Model menu.</span>"
        )
        self.installed.emit(bundle)
        return bundle


class ResultsPage(QWizardPage):
    """What the run measured, and installing the model."""

    installed = Signal(object)  # Bundle

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Results")
        self.setSubTitle(
            "Measured on the test images, which the model never saw while training. Fill in the "
            "card, then install."
        )
        self.setFinalPage(True)
        self.run_dir = ""
        self.metrics_label = QLabel()
        self.metrics_label.setWordWrap(True)
        self.report_button = QPushButton("Open the full &report")
        self.report_button.clicked.connect(self.open_report)
        self.installer = Installer()
        self.installer.installed.connect(self._installed)
        self.tabs = QTabWidget()
        self.plots: dict[str, PictureLabel] = {}
        for title, file in PLOTS:
            picture = PictureLabel("(not drawn)")
            picture.setToolTip("Double-click to open it full size")
            self.plots[file] = picture
            self.tabs.addTab(picture, title)
        metrics_box = QGroupBox("Test metrics")
        m = QVBoxLayout(metrics_box)
        m.addWidget(self.metrics_label)
        m.addStretch(1)
        m.addWidget(self.report_button)
        card = QWidget()
        card_box = QVBoxLayout(card)
        card_box.setContentsMargins(0, 0, 0, 0)
        card_group = QGroupBox("Model card (required before installing)")
        QVBoxLayout(card_group).addWidget(self.installer)
        card_box.addWidget(card_group)
        card_box.addStretch(1)
        scroll = column_scroll(card)
        scroll.setMinimumWidth(360)
        box = QHBoxLayout(self)
        box.addWidget(metrics_box, 3)
        box.addWidget(self.tabs, 5)
        box.addWidget(scroll, 4)

    def show_run(self, run_dir: str) -> None:
        """Fill the page from a finished run folder."""
        self.run_dir = run_dir
        run = Path(run_dir)
        try:
            metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.metrics_label.setText(f"The run's metrics cannot be read: {exc}")
            metrics = None
        if metrics is not None:
            self.metrics_label.setText(metrics_html(metrics))
        for file, picture in self.plots.items():
            picture.set_file(run / "plots" / file)
        self.installer.set_source(str(run / "bundle"))

    def open_report(self) -> None:
        """The run's report.html in the browser."""
        report = Path(self.run_dir) / "report.html"
        if report.is_file():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(report)))

    def _installed(self, bundle: Bundle) -> None:
        self.installed.emit(bundle)
        self.completeChanged.emit()


def metrics_html(metrics: dict) -> str:
    """The test metrics as a small table, AUC with its bootstrap 95 % interval."""
    test, val = metrics.get("test", {}), metrics.get("val", {})
    rows = []
    per_class = test.get("per_class", {})
    for name, c in per_class.items():
        ci = c.get("auc_ci95")
        rows.append((f"AUC, {name}", _num(c.get("auc"))))
        rows.append(("   95 % interval", f"{ci[0]:.3f} – {ci[1]:.3f}" if ci else "–"))
        rows.append(("   positives", str(c.get("positives", "?"))))
    mean = " (mean)" if len(per_class) > 1 else ""
    rows += [
        (f"Sensitivity{mean}", _pct(test.get("recall"))),
        (f"Specificity{mean}", _pct(test.get("specificity"))),
        ("Accuracy", _pct(test.get("accuracy"))),
        ("Precision", _pct(test.get("precision"))),
        ("F1", _num(test.get("f1"))),
        ("Test images", str(test.get("n", "?"))),
        ("Validation AUC", _num(val.get("auc_macro"))),
        *((f"Threshold, {k}", f"{v:.3f}") for k, v in metrics.get("thresholds", {}).items()),
        ("Temperature", _num(metrics.get("temperature"))),
        (
            "Best epoch",
            f"{metrics.get('best_epoch', '?')} of {len(metrics.get('history', []))} epochs run"
            + (" (early stop)" if metrics.get("status") == "early_stopped" else ""),
        ),
    ]
    body = "".join(
        f"<tr><td style='padding-right:12px; white-space:pre'>{html.escape(k)}</td>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    note = (
        "<p style='color:#8d9298'>Sensitivity and specificity at the threshold chosen on validation. "
        "A small test set gives a wide interval.</p>"
    )
    return f"<table>{body}</table>{note}"
