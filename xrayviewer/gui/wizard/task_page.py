"""Page 2, Task and model: binary / multi-class / multi-label, the class names and which class means "no
finding", start from scratch or fine-tune an installed bundle (the default when one exists), architecture
and input size, and the model's name."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from xrayviewer.engine.bundle import Bundle
from xrayviewer.engine.preprocess import PreprocessRecipe
from xrayviewer.gui.wizard.common import problems_label, why_label
from xrayviewer.training.config import TrainConfig
from xrayviewer.training.inspection import DataReport

# engine.models.ARCHITECTURES, in words (importing it loads torch; a test checks the two agree)
ARCHITECTURES = {
    "xrv-densenet121": "DenseNet-121 (torchxrayvision layout, 7 M weights): the network of the published "
    "chest models",
    "tv-densenet201": "DenseNet-201 (torchvision, 18 M weights): larger and slower, rarely better on "
    "small data",
    "tiny-densenet": "Tiny DenseNet (8 k weights): for trying the wizard out in seconds, never for reading "
    "films",
}
TASKS = (
    ("binary", "&Binary: one finding against no finding", "One score, P(finding); two classes."),
    ("multiclass", "&Multi-class: exactly one class per image", "Scores that add up to 1 (softmax)."),
    (
        "multilabel",
        "Multi-la&bel: any number of findings per image",
        "One score per finding; needs a table with several labels per cell.",
    ),
)
NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def model_name_for(source: str) -> str:
    """A model name from the data's folder or table name."""
    if not source:
        return "model"
    path = Path(source)
    stem = path.parent.name if path.suffix.lower() in (".csv", ".tsv") else path.name  # a table: its folder
    return NAME_CHARS.sub("-", stem).strip("-._").lower() or "model"


class TaskPage(QWizardPage):
    """What the model says and what it starts from."""

    def __init__(self, bundles_lister, data_source=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Task and model")
        self.setSubTitle("What the model should say about a film, and what it starts from.")
        self._list_bundles = bundles_lister
        self._data_source = data_source  # () -> (DataReport | None, source, several labels per cell)
        self.bundles: list[Bundle] = []
        self.report: DataReport | None = None
        self._source = ""
        self._name_edited = False
        self._start_defaulted = False

        self.task_buttons: dict[str, QRadioButton] = {}
        task_box = QGroupBox("Task")
        task_form = QVBoxLayout(task_box)
        group = QButtonGroup(self)
        for key, text, why in TASKS:
            button = QRadioButton(text)
            group.addButton(button)
            self.task_buttons[key] = button
            row = QHBoxLayout()
            row.addWidget(button)
            row.addWidget(why_label(why), 1)
            task_form.addLayout(row)
            button.toggled.connect(self._changed)

        self.classes = QTableWidget(0, 4)
        self.classes.setHorizontalHeaderLabels(["Label in the data", "Class name", "No finding", "Images"])
        self.classes.verticalHeader().hide()
        header = self.classes.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.classes.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        self.classes.setTabKeyNavigation(False)
        self.classes.itemChanged.connect(self._changed)
        classes_box = QGroupBox("Classes")
        classes_layout = QVBoxLayout(classes_box)
        classes_layout.addWidget(self.classes)
        classes_layout.addWidget(
            why_label(
                "Rename a class by editing its name; give two labels the same name to merge them (bacterial "
                "and viral as “pneumonia”); clear a name to leave that label out. Tick the class that means "
                "“no finding” (for a binary model exactly one: its score is then the other class's)."
            )
        )

        self.scratch = QRadioButton("From &scratch (random weights)")
        self.fine_tune = QRadioButton("&Fine-tune an installed model:")
        start_group = QButtonGroup(self)
        start_group.addButton(self.scratch)
        start_group.addButton(self.fine_tune)
        self.bundle_combo = QComboBox()
        self.bundle_note = why_label("")
        self.arch = QComboBox()
        for key, words in ARCHITECTURES.items():
            self.arch.addItem(key, key)
            self.arch.setItemData(self.arch.count() - 1, words, Qt.ItemDataRole.ToolTipRole)
        self.arch_note = why_label("")
        self.size = QSpinBox()
        self.size.setRange(32, 1024)
        self.size.setSingleStep(32)
        self.size.setValue(224)
        self.size.setSuffix(" px")
        self.name = QLineEdit()
        self.name.textEdited.connect(self._name_typed)
        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        start_row = QVBoxLayout()
        start_row.addWidget(self.fine_tune)
        start_row.addWidget(self.bundle_combo)
        start_row.addWidget(self.bundle_note)
        start_row.addWidget(self.scratch)
        form.addRow("Start:", start_row)
        for text, widget, why in (
            ("&Architecture:", self.arch, self.arch_note),
            (
                "&Input size:",
                self.size,
                why_label(
                    "The side of the square picture the network sees. 224 px is "
                    "the public models' size; 128 px trains about 3× faster on a "
                    "CPU and loses fine detail."
                ),
            ),
            ("&Name:", self.name, why_label("The model's name in the viewer and its run folder's prefix.")),
        ):
            label = QLabel(text)
            label.setBuddy(widget)
            form.addRow(label, widget)
            form.addRow("", why)
        self.problems = problems_label()

        left = QVBoxLayout()
        left.addWidget(task_box)
        left.addWidget(classes_box, 1)
        right = QVBoxLayout()
        right.addWidget(model_box)
        right.addWidget(self.problems)
        right.addStretch(1)
        box = QHBoxLayout(self)
        box.addLayout(left, 1)
        box.addLayout(right, 1)

        self.scratch.toggled.connect(self._start_changed)
        self.bundle_combo.currentIndexChanged.connect(self._start_changed)
        self.arch.currentIndexChanged.connect(self._arch_changed)
        self.size.valueChanged.connect(self._changed)

    # -- filling from the data page

    def set_data(self, report: DataReport, source: str, csv_separator: bool) -> None:
        """The classes the data page found (resets the table when they changed)."""
        labels = list(report.classes)
        if self.report is None or self.report.classes != labels:
            self.classes.blockSignals(True)
            self.classes.setRowCount(len(labels))
            negative_guess = _negative_guess(labels)
            for r, label in enumerate(labels):
                raw = QTableWidgetItem(label)
                raw.setFlags(Qt.ItemFlag.ItemIsEnabled)
                name = QTableWidgetItem(label)
                none = QTableWidgetItem()
                none.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                none.setCheckState(
                    Qt.CheckState.Checked if label == negative_guess else Qt.CheckState.Unchecked
                )
                count = QTableWidgetItem(str(report.total(label)))
                count.setFlags(Qt.ItemFlag.ItemIsEnabled)
                for c, item in enumerate((raw, name, none, count)):
                    self.classes.setItem(r, c, item)
            self.classes.blockSignals(False)
            default = "binary" if len(labels) == 2 else "multilabel" if csv_separator else "multiclass"
            self.task_buttons[default].setChecked(True)
        self.report = report
        self.task_buttons["multilabel"].setEnabled(csv_separator)
        if source != self._source:
            self._source = source
            if not self._name_edited:
                self.name.setText(model_name_for(source))
        self._changed()

    def initializePage(self) -> None:
        """The data page's classes; the installed bundles (fine-tuning is the default when one exists,
        from the bundle whose classes fit the data best)."""
        if self._data_source is not None:
            report, source, several = self._data_source()
            if report is not None:
                self.set_data(report, source, several)
        previous = self.bundle_combo.currentData()
        self.bundles = [b for b in self._list_bundles() if b.path.is_dir()]
        self.bundle_combo.blockSignals(True)
        self.bundle_combo.clear()
        for bundle in self.bundles:
            card = bundle.card
            self.bundle_combo.addItem(
                f"{card.name} {card.version} — {card.task}, {', '.join(card.classes[:3])}, "
                f"{card.architecture} {card.input_size} px",
                str(bundle.path),
            )
        self.bundle_combo.blockSignals(False)
        has = bool(self.bundles)
        self.fine_tune.setEnabled(has)
        self.bundle_combo.setEnabled(has)
        if not has:
            self.scratch.setChecked(True)
            self.bundle_note.setText("No model is installed to start from.")
        else:
            found = self.bundle_combo.findData(previous) if previous is not None else -1
            self.bundle_combo.setCurrentIndex(found if found >= 0 else self._best_bundle())
            if not self._start_defaulted:  # the first visit: fine-tuning, the user's choice after that
                self.fine_tune.setChecked(True)
        self._start_defaulted = True
        if not self.scratch.isChecked() and not self.fine_tune.isChecked():
            self.scratch.setChecked(True)
        self._start_changed()

    def _best_bundle(self) -> int:
        names = set(self.class_names())
        for i, bundle in enumerate(self.bundles):  # same classes first, then same task, then any
            if set(bundle.card.classes) <= names:
                return i
        for i, bundle in enumerate(self.bundles):
            if bundle.card.task == self.task():
                return i
        return 0

    # -- state

    def task(self) -> str:
        """The chosen task."""
        return next((k for k, b in self.task_buttons.items() if b.isChecked()), "binary")

    def class_names(self) -> list[str]:
        """Distinct class names in table order (left-out labels excluded)."""
        names: list[str] = []
        for r in range(self.classes.rowCount()):
            name = self.classes.item(r, 1).text().strip()
            if name and name not in names:
                names.append(name)
        return names

    def negatives(self) -> list[str]:
        """Class names ticked as "no finding"."""
        out: list[str] = []
        for r in range(self.classes.rowCount()):
            name = self.classes.item(r, 1).text().strip()
            if name and self.classes.item(r, 2).checkState() == Qt.CheckState.Checked and name not in out:
                out.append(name)
        return out

    def label_map(self) -> dict[str, str]:
        """Raw label -> class name, for labels renamed or left out."""
        out = {}
        for r in range(self.classes.rowCount()):
            raw, name = self.classes.item(r, 0).text(), self.classes.item(r, 1).text().strip()
            if name != raw:
                out[raw] = name
        return out

    def chosen_bundle(self) -> Bundle | None:
        """The bundle to fine-tune (None: from scratch)."""
        if not self.fine_tune.isChecked() or not self.bundles:
            return None
        index = self.bundle_combo.currentIndex()
        return self.bundles[index] if 0 <= index < len(self.bundles) else None

    def problems_now(self) -> list[str]:
        """Sentences for what keeps this page from being complete."""
        problems = []
        names, negatives, task = self.class_names(), self.negatives(), self.task()
        if len(names) < 2 and task != "multilabel":
            problems.append("Keep at least two classes: a model learns to tell classes apart.")
        if task == "binary":
            if len(names) != 2:
                problems.append(
                    f"A binary model needs exactly two classes; these names give {len(names)} "
                    f"({', '.join(names)}). Merge labels by giving them the same name, or choose "
                    "Multi-class."
                )
            elif len(negatives) != 1:
                problems.append(
                    "Tick exactly one class as “No finding”: the model's score is the other "
                    "class's probability."
                )
        elif negatives and len(negatives) >= len(names):
            problems.append("At least one class must be a finding: untick “No finding” for one.")
        if not self.name.text().strip() or NAME_CHARS.search(self.name.text().strip()):
            problems.append("Give the model a name of letters, digits, '.', '_' or '-'.")
        return problems

    def isComplete(self) -> bool:
        """Next once the classes make a model."""
        return not self.problems_now()

    def apply(self, config: TrainConfig) -> None:
        """Put this page's choices into ``config`` (after the data page's)."""
        task, names, negatives = self.task(), self.class_names(), self.negatives()
        config.task = task
        config.name = self.name.text().strip()
        config.data.label_map = self.label_map()
        if task == "binary" and len(names) == 2 and len(negatives) == 1:
            positive = next(n for n in names if n != negatives[0])
            config.classes = [negatives[0], positive]
            config.card.negative_classes = []
        else:
            config.classes = names
            config.card.negative_classes = [n for n in negatives if n in names]
        bundle = self.chosen_bundle()
        if bundle is not None:
            config.model.init_from = str(bundle.path)
            config.model.arch, config.model.head = bundle.card.architecture, bundle.card.head
            config.preprocess = dataclasses.replace(bundle.card.preprocessing, size=self.size.value())
        else:
            config.model.init_from = ""
            config.model.arch = self.arch.currentData()
            config.preprocess = PreprocessRecipe(size=self.size.value())

    # -- reactions

    def _name_typed(self) -> None:
        self._name_edited = True
        self._changed()

    def _start_changed(self) -> None:
        bundle = self.chosen_bundle()
        self.bundle_combo.setEnabled(self.fine_tune.isChecked() and bool(self.bundles))
        self.arch.setEnabled(bundle is None)
        if bundle is not None:
            card = bundle.card
            index = self.arch.findData(card.architecture)
            if index >= 0:
                self.arch.setCurrentIndex(index)
            self.size.setValue(card.input_size)
            self.bundle_note.setText(
                f"Starts from {card.name}'s weights: its network ({card.architecture}) and input recipe "
                f"({card.input_size} px, {card.preprocessing.geometry}) are kept; its output layer is "
                "replaced when the classes differ. Fine-tuning needs far fewer images than training from "
                "scratch."
            )
        elif self.bundles:
            self.bundle_note.setText("")
        self._arch_changed()

    def _arch_changed(self) -> None:
        self.arch_note.setText(ARCHITECTURES.get(self.arch.currentData(), ""))
        self._changed()

    def _changed(self) -> None:
        self.problems.set_items(self.problems_now())
        self.completeChanged.emit()


def _negative_guess(labels: list[str]) -> str:
    for label in labels:
        if label.lower() in ("normal", "no finding", "no_finding", "negative", "healthy", "none"):
            return label
    return ""
