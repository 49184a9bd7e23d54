"""The training wizard: a site trains, evaluates and installs its own model from the app, or recalibrates an
installed one on its own films. Every page drives the shared engine (``xrayviewer train`` and
``xrayviewer recalibrate`` in child processes); see docs/wizard.md.

Pages: Data → Task and model → Recipe → Run → Results, or Recalibrate → Before and after. The wizard is a
non-modal window: the viewer stays usable while a model trains, and closing the wizard while a run goes on
only hides it (Model ▸ Training runs shows it again).
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QWidget, QWizard

from xrayviewer.engine.install import bundle_folders
from xrayviewer.gui.wizard.data_page import DataPage
from xrayviewer.gui.wizard.recalibrate_pages import RecalibrateResultPage, RecalibrateSetupPage
from xrayviewer.gui.wizard.recipe_page import RecipePage
from xrayviewer.gui.wizard.results_page import ResultsPage
from xrayviewer.gui.wizard.run_page import RunPage
from xrayviewer.gui.wizard.task_page import TaskPage
from xrayviewer.training.config import TrainConfig
from xrayviewer.training.run_records import RunRecord, RunRecords

DATA, TASK, RECIPE, RUN, RESULTS, RECALIBRATE, RECALIBRATED = range(7)
SIZE = (1200, 740)  # fits a 1280×800 screen with its window frame and a panel


class TrainingWizard(QWizard):
    """Train (or recalibrate) and install a model; ``modelInstalled`` carries the installed bundle."""

    modelInstalled = Signal(object)

    def __init__(
        self,
        parent: QWidget | None = None,
        mode: str = "train",
        records: RunRecords | None = None,
        bundles_lister=bundle_folders,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train a model" if mode == "train" else "Recalibrate a model")
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, False)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.setButtonText(QWizard.WizardButton.FinishButton, "&Close")
        self.setButtonText(QWizard.WizardButton.CancelButton, "Close")
        self.mode = mode
        self.records = records or RunRecords()
        self.data_page = DataPage()
        self.task_page = TaskPage(bundles_lister, self._data_for_task)
        self.recipe_page = RecipePage(self._config_before_recipe, self.data_page)
        self.run_page = RunPage(self.build_config, self.records)
        self.results_page = ResultsPage()
        self.recalibrate_page = RecalibrateSetupPage(bundles_lister)
        self.recalibrated_page = RecalibrateResultPage(self.recalibrate_page)
        for page_id, page in (
            (DATA, self.data_page),
            (TASK, self.task_page),
            (RECIPE, self.recipe_page),
            (RUN, self.run_page),
            (RESULTS, self.results_page),
            (RECALIBRATE, self.recalibrate_page),
            (RECALIBRATED, self.recalibrated_page),
        ):
            self.setPage(page_id, page)
        self.setStartId(DATA if mode == "train" else RECALIBRATE)
        self.currentIdChanged.connect(self._entered)
        self.results_page.installed.connect(self._installed)
        self.recalibrated_page.installed.connect(self.modelInstalled)
        self.resize(*SIZE)
        self.setMinimumSize(940, 620)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self._next_or_finish)

    # -- the configuration the pages describe

    def _config_before_recipe(self) -> TrainConfig:
        config = TrainConfig()
        self.data_page.apply(config)
        self.task_page.apply(config)
        return config

    def build_config(self) -> TrainConfig:
        """The training configuration the pages describe (what ``xrayviewer train --config`` gets)."""
        config = self._config_before_recipe()
        self.recipe_page.apply(config)
        config.validate()
        return config

    # -- navigation

    def nextId(self) -> int:
        """Train: Data → Task → Recipe → Run → Results; recalibrate: its two pages."""
        order = {
            DATA: TASK,
            TASK: RECIPE,
            RECIPE: RUN,
            RUN: RESULTS,
            RESULTS: -1,
            RECALIBRATE: RECALIBRATED,
            RECALIBRATED: -1,
        }
        return order.get(self.currentId(), -1)

    def _data_for_task(self):
        data = self.data_page.source.data_config()
        return self.data_page.report, self.data_page.source.source(), bool(data.csv and data.label_separator)

    def _entered(self, page_id: int) -> None:
        if page_id == RUN:
            self.recipe_page.stop_measuring()
        elif (
            page_id == RESULTS
            and self.run_page.run_dir
            and self.results_page.run_dir != self.run_page.run_dir
        ):
            self.results_page.show_run(self.run_page.run_dir)

    def _next_or_finish(self) -> None:
        if self.currentPage() is not None and self.currentPage().isComplete():
            if self.nextId() == -1:
                self.accept()
            else:
                self.next()

    def open_record(self, record: RunRecord) -> None:
        """Show an earlier run: its Run page (to resume it, or to see why it failed) or, finished, its
        Results (to install it)."""
        self.run_page.load_record(record)
        start = RESULTS if record.finished else RUN
        self.setStartId(start)
        self.restart()
        if start == RESULTS:
            self.results_page.show_run(record.run_dir)

    def _installed(self, bundle) -> None:
        record = self.run_page.record
        if record is not None:
            record.state = "installed"
            with contextlib.suppress(OSError):  # the list of runs is a convenience
                self.records.put(record)
        self.modelInstalled.emit(bundle)

    # -- closing

    def busy(self) -> bool:
        """A training or recalibration process is running."""
        return self.run_page.busy() or self.recalibrated_page.process.running

    def reject(self) -> None:
        """Close (Escape / Close): while a run goes on the wizard is only hidden."""
        if self.busy():
            self.hide()
            return
        self._shutdown()
        super().reject()

    def accept(self) -> None:
        """Finish."""
        self._shutdown()
        super().accept()

    def closeEvent(self, event: QCloseEvent) -> None:
        """The window's close button: as Close."""
        if self.busy():
            event.ignore()
            self.hide()
            return
        self._shutdown()
        super().closeEvent(event)

    def stop_for_quit(self, wait_ms: int = 120_000) -> None:
        """The app is quitting: cancel a run with a checkpoint (resumable later) and wait for it."""
        if self.run_page.busy():
            self.run_page.cancel()
            if not self.run_page.process.wait(wait_ms):
                self.run_page.process.kill()
                self.run_page.process.wait(5000)
        if self.recalibrated_page.process.running:
            self.recalibrated_page.process.kill()
            self.recalibrated_page.process.wait(5000)
        self._shutdown()

    def _shutdown(self) -> None:
        self.recipe_page.stop_measuring()
        self.data_page.inspector.shutdown()
        self.recalibrate_page.inspector.shutdown()
