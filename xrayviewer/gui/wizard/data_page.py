"""Page 1, Data: choose class folders or a CSV; the engine's dry run and a test decode of every file run in
the background and the page shows, per class and split, counts, unreadable files with reasons, class
imbalance, patient leakage and a strip of thumbnails. Next stays disabled until the data is usable."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from xrayviewer.gui.wizard.common import Sentences, grey_qimage, problems_label
from xrayviewer.gui.wizard.data_source import DataSourceWidget
from xrayviewer.gui.wizard.inspector import DataInspector
from xrayviewer.training import inspection
from xrayviewer.training.config import TrainConfig
from xrayviewer.training.inspection import DataReport

SPLIT_TITLES = (("train", "Training"), ("val", "Validation"), ("test", "Test"))
THUMB_HEIGHT = 72


class ThumbnailStrips(QWidget):
    """One row of small pictures per class."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.rows: dict[str, QHBoxLayout] = {}
        self.count: dict[str, int] = {}

    def reset(self, classes: list[str]) -> None:
        """Empty rows for ``classes``."""
        while self.grid.count():
            item = self.grid.takeAt(0)
            widget = item.widget()
            if widget is not None:
                widget.deleteLater()
            elif item.layout() is not None:
                layout = item.layout()
                while layout.count():
                    child = layout.takeAt(0).widget()
                    if child is not None:
                        child.deleteLater()
        self.rows, self.count = {}, {}
        for r, cls in enumerate(classes):
            label = QLabel(cls)
            label.setMinimumWidth(90)
            row = QHBoxLayout()
            row.setSpacing(4)
            row.addStretch(1)
            self.grid.addWidget(label, r, 0)
            self.grid.addLayout(row, r, 1)
            self.rows[cls], self.count[cls] = row, 0

    def add(self, cls: str, pixels) -> None:
        """Append a picture to ``cls``'s row."""
        row = self.rows.get(cls)
        if row is None:
            return
        ratio = self.devicePixelRatioF()
        image = grey_qimage(pixels)
        pixmap = QPixmap.fromImage(image).scaledToHeight(int(THUMB_HEIGHT * ratio))
        pixmap.setDevicePixelRatio(ratio)
        label = QLabel()
        label.setPixmap(pixmap)
        row.insertWidget(self.count[cls], label)
        self.count[cls] += 1


class DataPage(QWizardPage):
    """Where the images come from, checked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Data: the labelled images")
        self.setSubTitle(
            "Choose the images to learn from. They are checked here, before anything is trained: "
            "counts per class and split, unreadable files, imbalance, patients in two splits."
        )
        self.source = DataSourceWidget()
        self.inspector = DataInspector(self)
        self.report: DataReport | None = None
        self.unreadable: list[tuple[str, str]] | None = None
        self.decode_seconds = 0.0  # time the test decode took (a cache-fill estimate for the recipe page)
        self._generation = 0
        self._check_started = 0.0

        self.status = QLabel("Choose a folder or a table.")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.problems = problems_label()
        self.notes = Sentences()
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["Class", "Training", "Validation", "Test", "All", "Unreadable"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.table.setAccessibleName("Images per class and split")
        self.thumbs = ThumbnailStrips()
        thumbs_scroll = QScrollArea()
        thumbs_scroll.setWidget(self.thumbs)
        thumbs_scroll.setWidgetResizable(True)
        thumbs_scroll.setMinimumHeight(2 * THUMB_HEIGHT + 24)

        left = QVBoxLayout()
        source_box = QGroupBox("Source")
        QVBoxLayout(source_box).addWidget(self.source)
        left.addWidget(source_box)
        findings = QGroupBox("What the check found")
        findings_box = QVBoxLayout(findings)
        findings_box.addWidget(self.status)
        findings_box.addWidget(self.progress)
        findings_box.addWidget(self.problems)
        findings_box.addWidget(self.notes)
        findings_box.addStretch(1)
        left.addWidget(findings, 1)
        right = QVBoxLayout()
        counts_box = QGroupBox("Images per class and split")
        QVBoxLayout(counts_box).addWidget(self.table)
        right.addWidget(counts_box, 1)
        samples_box = QGroupBox("Samples per class")
        QVBoxLayout(samples_box).addWidget(thumbs_scroll)
        right.addWidget(samples_box, 1)
        box = QHBoxLayout(self)
        box.addLayout(left, 5)
        box.addLayout(right, 6)

        self.source.changed.connect(self.recheck)
        self.source.pending.connect(self._pending)
        self.inspector.reportReady.connect(self._report_ready)
        self.inspector.checkProgress.connect(self._check_progress)
        self.inspector.checkFinished.connect(self._check_finished)
        self.inspector.thumbnailReady.connect(self._thumbnail_ready)
        self.inspector.failed.connect(self._failed)

    # -- what the engine reads

    def dry_run_config(self) -> TrainConfig:
        """The configuration the dry run uses: this page's data, every label a class."""
        data = self.source.data_config()
        task = "multilabel" if data.csv and data.label_separator else "multiclass"
        return TrainConfig(task=task, data=data)

    def apply(self, config: TrainConfig) -> None:
        """Put this page's choices into ``config``."""
        config.data = self.source.data_config()

    def checked(self) -> bool:
        """The dry run and the test decode have both answered."""
        return self.report is not None and self.unreadable is not None

    def isComplete(self) -> bool:
        """Next is allowed once the data is known to be usable."""
        return self.checked() and not self.problems.items

    # -- checking

    def _pending(self) -> None:
        if self.report is not None or self.unreadable is not None:
            self.report, self.unreadable = None, None
            self.inspector.cancel()
            self.status.setText("…")
            self.completeChanged.emit()

    def recheck(self) -> None:
        """Check the data as now chosen (earlier checks are dropped)."""
        import time

        self.report, self.unreadable = None, None
        self.table.setRowCount(0)
        self.thumbs.reset([])
        self.problems.set_items([])
        self.notes.set_items([])
        self.progress.hide()
        if not self.source.source():
            self.inspector.cancel()
            self.status.setText("Choose a folder or a table.")
            self.completeChanged.emit()
            return
        self.status.setText("Reading the data…")
        self._generation = self.inspector.inspect(self.dry_run_config())
        self._check_started = time.perf_counter()
        self.completeChanged.emit()

    def _report_ready(self, generation: int, report: DataReport) -> None:
        if generation != self._generation:
            return
        self.report = report
        self.problems.set_items(report.problems)
        notes = list(report.notes)
        data = self.source.data_config()
        if (
            report.usable
            and data.folders
            and not data.patient_pattern
            and (inspection.suggest_patient_pattern(report))
        ):
            notes.insert(
                0,
                "The file names look like Kermany's (person12_…, IM-0012-…), which name the patient: "
                "choose Patients “From the file name, Kermany style” so that each patient's images stay in "
                "one split.",
            )
        self.notes.set_items(notes)
        if not report.usable:
            self.status.setText("This data cannot be trained on yet:")
            self.unreadable = []
            self.completeChanged.emit()
            return
        total = len(report.files)
        checking = len(inspection.files_to_check(report))
        which = "every file" if checking == total else f"an even sample of {checking} files"
        self.status.setText(f"{total} images in {len(report.classes)} classes. Test-decoding {which}…")
        self.progress.setRange(0, max(1, checking))
        self.progress.setValue(0)
        self.progress.setFormat("%v of %m files decoded")
        self.progress.show()
        self._fill_table(report, {})
        self.thumbs.reset(report.classes)

    def _check_progress(self, generation: int, done: int, total: int) -> None:
        if generation == self._generation:
            self.progress.setValue(done)

    def _check_finished(self, generation: int, unreadable: list[tuple[str, str]]) -> None:
        import time

        if generation != self._generation or self.report is None:
            return
        self.unreadable = list(unreadable)
        checked = len(inspection.files_to_check(self.report))
        total = len(self.report.files)
        self.decode_seconds = (time.perf_counter() - self._check_started) * total / max(1, checked)
        problems, notes = inspection.readability(self.report, self.unreadable, checked)
        self.problems.set_items(self.report.problems + problems)
        self.notes.set_items(self.notes.items + notes)
        self._fill_table(self.report, inspection.unreadable_counts(self.report, self.unreadable))
        self.progress.hide()
        readable = checked - len(self.unreadable)
        if self.problems.items:
            self.status.setText("This data cannot be trained on yet:")
        else:
            read = f"{readable} of {total} images can be read" if checked == total else f"{total} images"
            self.status.setText(
                f"Ready: {read}, in {len(self.report.classes)} classes. Next chooses the task and the model."
            )
        self.completeChanged.emit()

    def _thumbnail_ready(self, generation: int, cls: str, pixels) -> None:
        if generation == self._generation:
            self.thumbs.add(cls, pixels)

    def _failed(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self.problems.set_items([message])
        self.status.setText("The check could not finish:")
        self.progress.hide()
        self.unreadable = self.unreadable or []
        self.report = self.report or DataReport(problems=[message])
        self.completeChanged.emit()

    def _fill_table(self, report: DataReport, bad: dict[str, dict[str, int]]) -> None:
        rows = [*report.classes, "images", "patients"]
        self.table.setRowCount(len(rows))
        for r, name in enumerate(rows):
            if name == "images":
                values = [report.images.get(s, 0) for s, _ in SPLIT_TITLES]
                unreadable = sum(sum(v.values()) for v in bad.values()) if bad else 0
                title = "All images"
            elif name == "patients":
                values = [report.patients.get(s, 0) for s, _ in SPLIT_TITLES]
                unreadable, title = None, "Patients"
            else:
                values = [report.counts.get(s, {}).get(name, 0) for s, _ in SPLIT_TITLES]
                unreadable = sum(v.get(name, 0) for v in bad.values())
                title = name
            cells = [
                title,
                *map(str, values),
                str(sum(values)),
                "–" if unreadable is None or self.unreadable is None else str(unreadable),
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeRowsToContents()
        height = (
            self.table.horizontalHeader().height()
            + sum(self.table.rowHeight(r) for r in range(len(rows)))
            + 4
        )
        self.table.setMinimumHeight(min(height, 260))

    def cell(self, row_title: str, column: str) -> str:
        """The table's text for a class (or "All images" / "Patients") and a column title (tests)."""
        headers = [self.table.horizontalHeaderItem(c).text() for c in range(self.table.columnCount())]
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).text() == row_title:
                return self.table.item(r, headers.index(column)).text()
        raise KeyError(row_title)
