"""Where the images come from: class folders, or a CSV table with its columns picked from the header (with a
preview of the first rows). Fills a ``training.config.DataConfig``; ``changed`` when the choice changes."""

from __future__ import annotations

import csv
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QRadioButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from xrayviewer.gui.wizard.common import PathField, why_label
from xrayviewer.training.config import DataConfig
from xrayviewer.training.inspection import KERMANY_PATIENTS, csv_preview, guess_columns

NONE = "(none)"
PATIENT_CHOICES = (
    ("Each image is its own patient", ""),
    ("From the file name, Kermany style (person12_…, IM-0012-…)", KERMANY_PATIENTS),
    ("From the file name, with this pattern:", "custom"),
)
DEBOUNCE_MS = 350


class DataSourceWidget(QWidget):
    """Class folders or a CSV; ``data_config()`` is what the engine reads."""

    changed = Signal()  # the choice settled (debounced): check it
    pending = Signal()  # the choice is being edited: what was checked no longer holds

    def __init__(self, splits: bool = True, parent: QWidget | None = None) -> None:
        """``splits``: the images will be split into train/val/test (training); False for a site's films
        (recalibration uses them all: the split column and "IDs restart in each split" are not offered)."""
        super().__init__(parent)
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.changed)
        self.folder_radio = QRadioButton("&Class folders")
        self.csv_radio = QRadioButton("C&SV table")
        self.folder_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.folder_radio)
        group.addButton(self.csv_radio)
        kinds = QHBoxLayout()
        kinds.addWidget(self.folder_radio)
        kinds.addWidget(self.csv_radio)
        kinds.addStretch(1)

        self.folder = PathField("folder")
        self.patient_choice = QComboBox()
        for text, _ in PATIENT_CHOICES:
            self.patient_choice.addItem(text)
        self.patient_pattern = QLineEdit()
        self.patient_pattern.setPlaceholderText(r"regular expression, e.g. ^(\w+?)_")
        self.patient_pattern.setEnabled(False)
        self.restart_ids = QCheckBox("Patient IDs &restart in each split (train/val/test)")
        folder_page = QWidget()
        folder_form = QFormLayout(folder_page)
        folder_form.setContentsMargins(0, 0, 0, 0)
        folder_label = QLabel("&Folder:")
        folder_label.setBuddy(self.folder.edit)
        folder_form.addRow(folder_label, self.folder)
        folder_form.addRow(
            why_label(
                "One subfolder per class (normal/, pneumonia/ …), optionally inside train/, "
                "val/ and test/ folders."
            )
        )
        patient_label = QLabel("&Patients:")
        patient_label.setBuddy(self.patient_choice)
        row = QHBoxLayout()
        row.addWidget(self.patient_choice, 2)
        row.addWidget(self.patient_pattern, 1)
        folder_form.addRow(patient_label, row)
        if splits:
            folder_form.addRow("", self.restart_ids)
        folder_form.addRow(
            why_label(
                "Splits are drawn by patient, so that no patient is trained on and tested on; name the "
                "patient in each file name if you can."
                if splits
                else "The out-of-fold check keeps each patient's films together; name the patient in each "
                "file name if you can."
            )
        )

        self.csv_file = PathField("file", "CSV tables (*.csv *.tsv);;All files (*)")
        self.image_dir = PathField("folder")
        self.path_column, self.label_column = QComboBox(), QComboBox()
        self.patient_column, self.split_column = QComboBox(), QComboBox()
        self.separator = QLineEdit()
        self.separator.setMaximumWidth(50)
        self.separator.setPlaceholderText("none")
        self.preview = QTableWidget(0, 0)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.setMaximumHeight(150)
        self.preview.verticalHeader().hide()
        self.preview.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.preview.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.preview.setObjectName("preview")
        csv_page = QWidget()
        csv_form = QFormLayout(csv_page)
        csv_form.setContentsMargins(0, 0, 0, 0)
        for text, widget in (("&Table:", self.csv_file), ("I&mages in:", self.image_dir)):
            label = QLabel(text)
            label.setBuddy(widget.edit)
            csv_form.addRow(label, widget)
        self.image_dir.edit.setPlaceholderText("the table's folder")
        columns = QHBoxLayout()
        for text, combo in (
            ("&Image", self.path_column),
            ("&Label", self.label_column),
            ("Pa&tient", self.patient_column),
            ("Spli&t", self.split_column),
        ):
            label = QLabel(text)
            label.setBuddy(combo)
            columns.addWidget(label)
            columns.addWidget(combo, 1)
        csv_form.addRow("Columns:", columns)
        sep_row = QHBoxLayout()
        sep_label = QLabel("Several labels in one cell, separated &by")
        sep_label.setBuddy(self.separator)
        sep_row.addWidget(sep_label)
        sep_row.addWidget(self.separator)
        sep_row.addStretch(1)
        csv_form.addRow("", sep_row)
        self.csv_restart_ids = QCheckBox("Patient IDs restart in each split")
        if splits:
            csv_form.addRow("", self.csv_restart_ids)
        csv_form.addRow(self.preview)

        self.stack = QStackedWidget()
        self.stack.addWidget(folder_page)
        self.stack.addWidget(csv_page)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(kinds)
        box.addWidget(self.stack)

        self.folder_radio.toggled.connect(self._kind_changed)
        self.folder.changed.connect(self._soon)
        self.patient_choice.currentIndexChanged.connect(self._patients_changed)
        self.patient_pattern.editingFinished.connect(self._soon)
        self.restart_ids.toggled.connect(self._soon)
        self.csv_restart_ids.toggled.connect(self._soon)
        self.csv_file.changed.connect(self._csv_changed)
        self.image_dir.changed.connect(self._soon)
        for combo in (self.path_column, self.label_column, self.patient_column, self.split_column):
            combo.currentIndexChanged.connect(self._soon)
        self.separator.editingFinished.connect(self._soon)

    # -- state

    def is_csv(self) -> bool:
        """A CSV table is chosen."""
        return self.csv_radio.isChecked()

    def source(self) -> str:
        """The chosen folder or table ("" when none)."""
        return self.csv_file.text() if self.is_csv() else self.folder.text()

    def data_config(self) -> DataConfig:
        """The engine's data settings for this choice."""
        data = DataConfig()
        if self.is_csv():
            data.csv = self.csv_file.text()
            data.image_dir = self.image_dir.text()
            data.path_column = self._column(self.path_column) or "file"
            data.label_column = self._column(self.label_column) or "label"
            data.patient_column = self._column(self.patient_column)
            data.split_column = self._column(self.split_column)
            data.label_separator = self.separator.text()
        else:
            data.folders = self.folder.text()
            index = self.patient_choice.currentIndex()
            pattern = PATIENT_CHOICES[index][1]
            data.patient_pattern = self.patient_pattern.text().strip() if pattern == "custom" else pattern
        restart = self.csv_restart_ids if self.is_csv() else self.restart_ids
        data.patient_scope = "split" if restart.isChecked() else "global"
        return data

    def set_folder(self, path: str) -> None:
        """Choose class folders at ``path``."""
        self.folder_radio.setChecked(True)
        self.folder.set_text(path)

    def set_csv(self, path: str, image_dir: str = "") -> None:
        """Choose the table at ``path`` (its columns are guessed from the header)."""
        self.csv_radio.setChecked(True)
        self.image_dir.set_text(image_dir, notify=False)
        self.csv_file.set_text(path)

    def set_patient_pattern(self, pattern: str) -> None:
        """Read patient IDs from file names with ``pattern`` ("" = each file its own patient)."""
        known = [p for _, p in PATIENT_CHOICES]
        if pattern in known:
            self.patient_choice.setCurrentIndex(known.index(pattern))
        else:
            self.patient_choice.setCurrentIndex(len(PATIENT_CHOICES) - 1)
            self.patient_pattern.setText(pattern)
        self._soon()

    def _column(self, combo: QComboBox) -> str:
        text = combo.currentText()
        return "" if text in ("", NONE) else text

    # -- reactions

    def _soon(self) -> None:
        self.pending.emit()
        self._timer.start()

    def _kind_changed(self) -> None:
        self.stack.setCurrentIndex(1 if self.is_csv() else 0)
        self._soon()

    def _patients_changed(self, index: int) -> None:
        self.patient_pattern.setEnabled(PATIENT_CHOICES[index][1] == "custom")
        self._soon()

    def _csv_changed(self) -> None:
        path = self.csv_file.text()
        header: list[str] = []
        rows: list[list[str]] = []
        if path and Path(path).is_file():
            try:
                header, rows = csv_preview(path)
            except (OSError, csv.Error, UnicodeDecodeError):
                header, rows = [], []
        guess = guess_columns(header)
        for combo, key, optional in (
            (self.path_column, "path", False),
            (self.label_column, "label", False),
            (self.patient_column, "patient", True),
            (self.split_column, "split", True),
        ):
            combo.blockSignals(True)
            combo.clear()
            if optional:
                combo.addItem(NONE)
            combo.addItems(header)
            if guess[key]:
                combo.setCurrentText(guess[key])
            combo.blockSignals(False)
        if guess["label"] and any(
            "|" in (r[header.index(guess["label"])] if len(r) > header.index(guess["label"]) else "")
            for r in rows
        ):
            self.separator.setText("|")
        self.preview.clear()
        self.preview.setColumnCount(len(header))
        self.preview.setRowCount(len(rows))
        self.preview.setHorizontalHeaderLabels(header)
        for r, row in enumerate(rows):
            for c, value in enumerate(row[: len(header)]):
                self.preview.setItem(r, c, QTableWidgetItem(value))
        self._soon()
