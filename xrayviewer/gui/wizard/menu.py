"""Model ▸ Train a model… (Ctrl+Shift+T), Recalibrate a model… and Training runs ▸ (unfinished runs, so a
closed app can resume them): opens the wizard, keeps it while a run goes on, and after an install makes the
viewer run the new model on the open film at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QMessageBox

from xrayviewer.training.availability import unavailable_reason
from xrayviewer.training.run_records import RunRecord, RunRecords

if TYPE_CHECKING:
    from xrayviewer.gui.main_window import MainWindow
    from xrayviewer.gui.wizard.wizard import TrainingWizard


class TrainingMenu(QObject):
    """The training entries of the Model menu and the one wizard window they open."""

    def __init__(
        self,
        window: MainWindow,
        menu: QMenu,
        add_action: Callable[..., QAction],
        records: RunRecords | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.records = records or RunRecords()
        self.wizard: TrainingWizard | None = None
        menu.addSeparator()
        self.train_action = add_action(
            menu,
            "&Train a model…",
            self.open_train,
            "Ctrl+Shift+T",
            tip="Train, evaluate and install a model on your own labelled images",
        )
        self.recalibrate_action = add_action(
            menu,
            "Re&calibrate a model…",
            self.open_recalibrate,
            tip="Refit an installed model's calibration and threshold on your own films",
        )
        self.runs_menu = menu.addMenu("Training r&uns")
        self.runs_menu.aboutToShow.connect(self.fill_runs)
        window.installEventFilter(self)

    def _new_wizard(self, mode: str) -> TrainingWizard | None:
        """A wizard for ``mode``, or None after saying why training cannot run here (the lean build)."""
        reason = unavailable_reason()
        if reason:
            QMessageBox.information(self.window, "Training needs the full build", reason)
            return None
        from xrayviewer.gui.wizard.wizard import TrainingWizard

        if self.wizard is not None:
            if self.wizard.busy():  # a run goes on: show it rather than start a second one
                self.show_wizard()
                return self.wizard
            self.wizard.deleteLater()
        wizard = TrainingWizard(self.window, mode=mode, records=self.records)
        wizard.modelInstalled.connect(self._installed)
        self.wizard = wizard
        return wizard

    def show_wizard(self) -> None:
        """Show the wizard window (hidden while its run goes on)."""
        if self.wizard is not None:
            self.wizard.show()
            self.wizard.raise_()
            self.wizard.activateWindow()

    def open_train(self) -> TrainingWizard | None:
        """Model ▸ Train a model… (None where training cannot run: the lean build)"""
        wizard = self._new_wizard("train")
        self.show_wizard()
        return wizard

    def open_recalibrate(self) -> TrainingWizard | None:
        """Model ▸ Recalibrate a model… (None where training cannot run: the lean build)"""
        wizard = self._new_wizard("recalibrate")
        self.show_wizard()
        return wizard

    def open_record(self, record: RunRecord) -> TrainingWizard | None:
        """Model ▸ Training runs ▸ a run: resume it, see its error, or review and install it."""
        current = self.wizard
        if (
            current is not None
            and current.run_page.record is not None
            and (current.run_page.record.config_file == record.config_file)
        ):
            self.show_wizard()
            return current
        wizard = self._new_wizard("train")
        if wizard is None or (wizard is current and wizard.busy()):
            return wizard
        wizard.open_record(record)
        self.show_wizard()
        return wizard

    def fill_runs(self) -> None:
        """The unfinished runs, newest first (the one in progress too)."""
        self.runs_menu.clear()
        live = self.wizard.run_page.record if self.wizard is not None and self.wizard.busy() else None
        if live is not None:
            self.runs_menu.addAction(f"{live.name} — running now", self.show_wizard)
        for record in self.records.unfinished():
            if live is not None and record.config_file == live.config_file:
                continue
            self.runs_menu.addAction(record.describe(), lambda r=record: self.open_record(r))
        if self.runs_menu.isEmpty():
            self.runs_menu.addAction("(no unfinished run)").setEnabled(False)

    def _installed(self, bundle) -> None:
        self.window.refresh_models()
        self.window.statusBar().showMessage(f"Installed {bundle.name} {bundle.card.version}", 8000)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The main window closes: a run in progress is cancelled with a checkpoint (resumable later)."""
        if watched is self.window and event.type() == QEvent.Type.Close and self.wizard is not None:
            if self.wizard.busy():
                self.window.statusBar().showMessage("Stopping the training run (a checkpoint is kept)…")
            self.wizard.stop_for_quit()
            self.wizard.close()
        return False
