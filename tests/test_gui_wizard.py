"""The training wizard driven like a user, on real Kermany films at 64 px with the tiny DenseNet (seconds):
choose the folder, see the counts, start, watch progress, finish, install, and the viewer runs the new model
on the open film; cancel and resume (also after the app was closed); bad folders; a run that crashes; the
same bundle as `xrayviewer train`; recalibration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gui_helpers import WAIT_MS, make_window
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QWizard
from pytestqt.exceptions import TimeoutError as WaitTimeout
from test_train_wizard_engine import CARD, class_folders

from xrayviewer.engine.bundle import read_bundle
from xrayviewer.engine.install import install_bundle
from xrayviewer.gui.main_window import MainWindow
from xrayviewer.gui.wizard.wizard import DATA, RECALIBRATED, RESULTS, RUN, SIZE, TASK, TrainingWizard
from xrayviewer.gui.workers import load_predictor
from xrayviewer.training.checkpoints import load_checkpoint
from xrayviewer.training.run_records import RUNS_FILE_ENV, RunRecords

ROOT = Path(__file__).resolve().parents[1]
RUN_MS = 240_000  # a tiny run takes ~10 s; a busy 2-core CI machine gets room


@pytest.fixture
def home(no_models_installed, tmp_path, monkeypatch):
    """Per-user folders under tmp_path (models, run records, image cache); nothing installed."""
    monkeypatch.setenv(RUNS_FILE_ENV, str(tmp_path / "data" / "training-runs.json"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the children's preprocessed-image cache
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return tmp_path


@pytest.fixture
def films(kermany_rows, tmp_path):
    """normal/ and pneumonia/ with 10 real films each (symlinks)."""
    return class_folders(tmp_path / "films", kermany_rows, 10)


def click(qtbot, wizard: QWizard, which=QWizard.WizardButton.NextButton) -> None:
    button = wizard.button(which)
    assert button.isEnabled(), f"{button.text()} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def to_run_page(qtbot, wizard: TrainingWizard, folder: Path, epochs: int = 2, patience: int = 5) -> None:
    """Data → Task (tiny DenseNet, 64 px, from scratch) → Recipe (a quick one) → Run."""
    wizard.data_page.source.set_folder(str(folder))
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=WAIT_MS * 2)
    click(qtbot, wizard)
    assert wizard.currentId() == TASK
    task = wizard.task_page
    task.scratch.setChecked(True)
    task.arch.setCurrentIndex(task.arch.findData("tiny-densenet"))
    task.size.setValue(64)
    click(qtbot, wizard)
    recipe = wizard.recipe_page
    recipe.epochs.setValue(epochs)
    recipe.batch.setValue(4)
    recipe.bootstrap.setValue(50)
    recipe.cams.setValue(2)
    recipe.patience.setValue(patience)
    click(qtbot, wizard)
    assert wizard.currentId() == RUN


class StallMeter:
    """The longest gap between ticks of a 5 ms timer: how long the UI thread was busy at a stretch."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._last = time.perf_counter()
        self.timer = QTimer(interval=5)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def stop(self) -> float:
        self.timer.stop()
        return self.longest


def test_train_in_the_wizard_install_and_the_viewer_runs_it_at_once(qtbot, home, films, kermany_rows):
    window = make_window(qtbot, home, load_predictor)  # the real bundle lookup: nothing installed yet
    film = next(films.glob("pneumonia/*"))
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.open_paths([str(film)])
    qtbot.waitUntil(lambda: window.session.findings_complete, timeout=WAIT_MS)
    assert window.predictions == {}  # no model installed: no second opinion
    qtbot.keyClick(
        window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    wizard = window.menus.training.wizard
    assert wizard is not None and wizard.isVisible() and wizard.currentId() == DATA
    qtbot.addWidget(wizard)

    wizard.data_page.source.set_folder(str(films))
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=WAIT_MS * 2)
    page = wizard.data_page
    assert page.cell("All images", "All") == "20" and page.cell("normal", "Unreadable") == "0"
    total = sum(
        int(page.cell(c, s)) for c in ("normal", "pneumonia") for s in ("Training", "Validation", "Test")
    )
    assert total == 20 and int(page.cell("pneumonia", "Test")) >= 1
    qtbot.waitUntil(lambda: page.thumbs.count == {"normal": 6, "pneumonia": 6}, timeout=WAIT_MS)
    assert "No train/val/test split is given" in page.notes.plain()

    click(qtbot, wizard)
    task = wizard.task_page
    assert task.task() == "binary" and task.negatives() == ["normal"] and task.name.text() == "films"
    assert task.scratch.isChecked()  # nothing installed to fine-tune from
    task.arch.setCurrentIndex(task.arch.findData("tiny-densenet"))
    task.size.setValue(64)
    click(qtbot, wizard)
    recipe = wizard.recipe_page
    recipe.epochs.setValue(2)
    recipe.batch.setValue(4)
    recipe.bootstrap.setValue(50)
    recipe.cams.setValue(2)
    qtbot.waitUntil(lambda: "on this CPU" in recipe.estimate.text(), timeout=WAIT_MS * 2)
    assert "per batch of 4" in recipe.estimate.text()
    click(qtbot, wizard)

    run = wizard.run_page
    epochs_seen: list[int] = []
    run.process.event.connect(
        lambda e: epochs_seen.append(e.epoch) if type(e).__name__ == "EpochEnded" else None
    )
    meter, started = StallMeter(), time.monotonic()
    with qtbot.waitSignal(run.runEnded, timeout=RUN_MS) as ended:
        qtbot.mouseClick(run.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: run.epoch_bar.value() > 0 and run.state == "running", timeout=RUN_MS)
    stall, took = meter.stop(), time.monotonic() - started
    assert ended.args == ["completed"], run.log.toPlainText()[-2000:]
    assert epochs_seen == [1, 2] and sorted(run.curves.val_loss) == [1, 2]
    assert "epoch 2/2" in run.log.toPlainText() and run.overall.value() == 1000
    # a run on the UI thread would hold it for the whole run; the stall is printed (pytest -s) against the
    # ≤ 50 ms goal, not asserted: a timed bound fails on a busy machine, not on a bad design
    assert stall < took / 2, f"the UI thread was busy for {stall * 1000:.0f} ms of a {took:.1f} s run"
    print(f"longest UI stall during the run: {stall * 1000:.1f} ms")

    click(qtbot, wizard)
    assert wizard.currentId() == RESULTS
    results = wizard.results_page
    metrics = results.metrics_label.text()
    assert "AUC, pneumonia" in metrics and "95 % interval" in metrics and "Sensitivity" in metrics
    assert all(
        results.plots[f].has_picture()
        for f in ("roc_test.png", "confusion_test.png", "reliability_test.png", "cam_grid.png")
    )
    installer = results.installer
    assert not installer.button.isEnabled() and "Describe the training data" in installer.problems.plain()
    installer.form.description.setPlainText(CARD.data_description)
    installer.form.licence.setText(CARD.licence)
    installer.form.limitations.setPlainText(CARD.limitations)
    installer.form.views["AP"].setChecked(True)
    assert installer.button.isEnabled()
    with qtbot.waitSignal(window.findingsComplete, timeout=WAIT_MS):
        qtbot.mouseClick(installer.button, Qt.MouseButton.LeftButton)
    installed = read_bundle(home / "user-models" / "films")
    assert installed.card.limitations == CARD.limitations and installed.card.views == ["AP"]
    assert "films" in window.predictions and window.predictions["films"].scores["pneumonia"] >= 0
    window.menus.model_menu.aboutToShow.emit()
    assert any(a.text().startswith("films v") for a in window.menus.model_menu.actions())
    assert RunRecords().unfinished() == []  # installed: no longer offered under Training runs

    # the same configuration through `xrayviewer train` gives the same weights, bit for bit
    config = run.record.config_file
    assert json.loads(Path(config).read_text())["model"]["arch"] == "tiny-densenet"
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "xrayviewer",
            "train",
            "--config",
            config,
            "--out",
            str(home / "cli"),
            "--events",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    end = json.loads(cli.stdout.splitlines()[-1])
    wizard_card = read_bundle(Path(run.run_dir) / "bundle").card
    assert read_bundle(end["bundle"]).card.weights_sha256 == wizard_card.weights_sha256
    wizard.close()


def test_cancel_keeps_a_checkpoint_and_a_new_session_resumes_it(qtbot, home, films):
    window = make_window(qtbot, home, load_predictor, bundles=[])
    wizard = window.menus.training.open_train()
    qtbot.addWidget(wizard)
    to_run_page(qtbot, wizard, films, epochs=12, patience=0)
    run = wizard.run_page
    run.process.event.connect(
        lambda e: run.cancel() if type(e).__name__ == "BatchEnded" and e.epoch == 2 else None
    )
    with qtbot.waitSignal(run.runEnded, timeout=RUN_MS) as ended:
        qtbot.mouseClick(run.start_button, Qt.MouseButton.LeftButton)
        assert not wizard.button(QWizard.WizardButton.BackButton).isEnabled()  # not while it runs
        qtbot.keyClick(wizard, Qt.Key.Key_Escape)  # closing the wizard only hides it: the run goes on
        assert not wizard.isVisible() and wizard.busy()
        menu = window.menus.training.runs_menu
        menu.aboutToShow.emit()
        (live,) = [a for a in menu.actions() if a.text() == "films — running now"]
        live.trigger()
        assert wizard.isVisible() and wizard.currentId() == RUN
    assert ended.args == ["cancelled"], run.log.toPlainText()[-2000:]
    qtbot.waitUntil(lambda: not run.process.running, timeout=WAIT_MS)
    state = load_checkpoint(Path(run.run_dir) / "checkpoints" / "last.pt")
    assert state["epoch"] >= 1 and (state["epoch"], state["step"]) < (12, 0)
    assert (
        run.resume_button.isVisible()
        and not run.cancel_button.isVisible()
        and not run.start_button.isVisible()
    )
    assert "checkpoint is saved" in run.outcome.text() and not wizard.busy()
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    wizard.close()
    window.close()

    # the app was closed: a new window lists the run under Model ▸ Training runs and resumes it
    settings = QSettings(str(home / "settings-2.ini"), QSettings.Format.IniFormat)
    again = MainWindow(settings, load_predictor, lambda: [])
    qtbot.addWidget(again)
    again.show()
    menu = again.menus.training.runs_menu
    menu.aboutToShow.emit()
    (entry,) = [a for a in menu.actions() if a.isEnabled()]
    assert entry.text().startswith("films — stopped after epoch")
    entry.trigger()
    resumed = again.menus.training.wizard
    qtbot.addWidget(resumed)
    assert resumed.currentId() == RUN and resumed.run_page.resume_button.isVisible()
    assert sorted(resumed.run_page.curves.val_loss) == list(range(1, state["epoch"] + 1))
    with qtbot.waitSignal(resumed.run_page.runEnded, timeout=RUN_MS) as ended:
        qtbot.mouseClick(resumed.run_page.resume_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["completed"], resumed.run_page.log.toPlainText()[-2000:]
    assert f"resuming at epoch {state['epoch'] + 1}" in resumed.run_page.log.toPlainText()
    assert (Path(resumed.run_page.run_dir) / "bundle" / "model.json").is_file()
    assert resumed.button(QWizard.WizardButton.NextButton).isEnabled()
    resumed.close()


def test_bad_folders_say_what_is_wrong_on_the_data_page(qtbot, home, kermany_rows, tmp_path):
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.data_page
    next_button = wizard.button(QWizard.WizardButton.NextButton)

    def check(folder: Path) -> str:
        page.source.set_folder(str(folder))
        try:
            qtbot.waitUntil(page.checked, timeout=WAIT_MS * 2)
        except WaitTimeout:
            raise AssertionError(f"{folder.name}: no answer; the page says {page.status.text()!r}") from None
        return page.problems.plain() + "\n" + page.notes.plain()

    one = class_folders(tmp_path / "one", [r for r in kermany_rows if r["label"] == "normal"], 6)
    assert "Only one class was found (“normal”)" in check(one) and not next_button.isEnabled()

    broken = class_folders(tmp_path / "broken", kermany_rows, 10)
    for i in range(2):
        (broken / "pneumonia" / f"scan{i}.jpeg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    text = check(broken)
    assert "2 images cannot be read and will be left out: pneumonia/scan0.jpeg: " in text
    assert next_button.isEnabled() and page.cell("pneumonia", "Unreadable") == "2"

    mostly = tmp_path / "mostly-broken"
    for label in ("normal", "pneumonia"):
        (mostly / label).mkdir(parents=True)
        for i in range(4):
            (mostly / label / f"film{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    (mostly / "normal" / "real.jpeg").symlink_to(kermany_rows[0]["path"])
    assert "8 of 9 images cannot be read" in check(mostly) and not next_button.isEnabled()

    leaky = class_folders(tmp_path / "leaky", kermany_rows, 8, layout="train")
    for label in ("normal", "pneumonia"):
        train_films = sorted((leaky / "train" / label).iterdir())
        (leaky / "test" / label).mkdir(parents=True)
        for path in train_films[:3]:  # the same patients' films again, in the test split
            (leaky / "test" / label / f"x{path.name}").symlink_to(path.resolve())
    page.source.set_patient_pattern(r"(person\d+|IM-\d+)")
    text = check(leaky)
    assert "patients have images in more than one split" in text and not next_button.isEnabled()
    assert "put each patient's images in one split only" in text


@pytest.mark.parametrize("how", ["error", "kill"])
def test_a_run_that_crashes_shows_the_error_and_keeps_the_log(qtbot, home, films, tmp_path, monkeypatch, how):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('XRAYVIEWER_TEST_FAIL_AT'):\n"
        "    import xrayviewer.training.data as data\n"
        "    original, seen = data.SplitData.batch, []\n"
        "    def batch(self, index, device):\n"
        "        seen.append(1)\n"
        "        if len(seen) == int(os.environ['XRAYVIEWER_TEST_FAIL_AT']):\n"
        "            if os.environ['XRAYVIEWER_TEST_FAIL_HOW'] == 'kill':\n"
        "                os.kill(os.getpid(), 9)\n"
        "            raise OSError('image person9_bacteria_39.jpeg could not be decoded: truncated file')\n"
        "        return original(self, index, device)\n"
        "    data.SplitData.batch = batch\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ["PYTHONPATH"]]))
    monkeypatch.setenv("XRAYVIEWER_TEST_FAIL_AT", "6")  # epoch 2, after epoch 1's checkpoint
    monkeypatch.setenv("XRAYVIEWER_TEST_FAIL_HOW", how)
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    to_run_page(qtbot, wizard, films, epochs=3)
    run = wizard.run_page
    with qtbot.waitSignal(run.runEnded, timeout=RUN_MS) as ended:
        qtbot.mouseClick(run.start_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["failed"]
    shown = run.problems.plain()
    if how == "error":
        assert shown.startswith(
            "The run failed: Image person9_bacteria_39.jpeg could not be decoded: truncated file."
        )
        assert "Traceback" in run.log.toPlainText()
    else:
        assert shown.startswith("The run failed: The training process stopped unexpectedly")
    assert "checkpoint is kept" in shown and run.resume_button.isVisible()
    assert "epoch 1/3" in run.log.toPlainText() and not wizard.busy()
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    (record,) = RunRecords().load()
    assert record.state == "failed" and record.resumable
    later = TrainingWizard()  # another session: Model ▸ Training runs opens the failed run
    qtbot.addWidget(later)
    later.open_record(record)
    later.show()
    assert later.currentId() == RUN and later.run_page.problems.plain() == shown
    assert later.run_page.resume_button.isVisible() and later.run_page.phase.text() == "Failed."


def test_recalibrate_an_installed_model_and_install_the_new_version(qtbot, home, films, shared_data):
    from test_train_run import tiny_config

    from xrayviewer.training.trainer import train

    trained = train(tiny_config(shared_data, home / "trained", epochs=1))
    original = install_bundle(trained.bundle_dir, CARD)
    window = make_window(qtbot, home, load_predictor)
    wizard = window.menus.training.open_recalibrate()
    qtbot.addWidget(wizard)
    setup = wizard.recalibrate_page
    assert setup.bundle() is not None and setup.bundle().name == "site-model"
    setup.source.set_folder(str(films))
    qtbot.waitUntil(lambda: setup.unreadable is not None, timeout=WAIT_MS * 2)
    assert setup.mapping_combos["pneumonia"].currentText() == "pneumonia"
    assert setup.mapping_combos["no finding (not pneumonia)"].currentText() == "normal"
    assert not setup.isComplete() and "Describe your films" in setup.problems.plain()
    setup.sensitivity_rule.setChecked(True)
    setup.target.setValue(0.95)
    setup.description.setText("20 Kermany films standing in for a site's own")
    assert setup.isComplete()
    result = wizard.recalibrated_page
    click(qtbot, wizard)
    assert wizard.currentId() == RECALIBRATED
    qtbot.waitUntil(lambda: result.installer.isEnabled() or bool(result.error), timeout=RUN_MS)
    assert not result.error and "after, out of fold" in result.table.text() and result.plot.has_picture()
    new = read_bundle(Path(result.out_dir) / "bundle").card
    assert new.weights_sha256 == original.card.weights_sha256 and new.version.startswith("1.0+site")
    result.installer.confirm = lambda title, text: "Replace it with version" in text
    assert result.installer.button.isEnabled()
    qtbot.mouseClick(result.installer.button, Qt.MouseButton.LeftButton)
    installed = read_bundle(home / "user-models" / "site-model")
    assert installed.card.version == new.version and installed.card.thresholds == new.thresholds
    assert read_bundle(home / "user-models" / ".previous" / "site-model-1.0").card.version == "1.0"
    assert "recalibrated from version 1.0" in installed.card.threshold_method
    wizard.close()


def test_every_page_fits_a_1280_by_800_screen_and_the_wizard_opens_from_the_keyboard(qtbot, home):
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    assert SIZE[0] <= 1280 and SIZE[1] <= 760
    for page_id in wizard.pageIds():
        hint = wizard.page(page_id).minimumSizeHint()
        assert hint.width() <= SIZE[0] - 40 and hint.height() <= SIZE[1] - 150, (page_id, hint)
    assert wizard.minimumSizeHint().width() <= 1280 and wizard.minimumSizeHint().height() <= 800
    screen = QApplication.primaryScreen().availableGeometry()
    assert wizard.width() <= max(1280, screen.width())


def test_every_input_on_every_page_takes_the_keyboard(qtbot, home):
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QAbstractSpinBox,
        QComboBox,
        QLineEdit,
        QPlainTextEdit,
        QTabWidget,
        QWidget,
    )

    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    inputs = (
        QAbstractButton,
        QAbstractSpinBox,
        QComboBox,
        QLineEdit,
        QPlainTextEdit,
        QAbstractItemView,
        QTabWidget,
    )
    for page_id in wizard.pageIds():
        page = wizard.page(page_id)
        for widget in page.findChildren(QWidget):
            if not isinstance(widget, inputs) or type(widget).__name__ in ("QScrollBar", "QTabBar"):
                continue
            if widget.objectName() == "preview":  # the CSV's first rows: shown, never edited
                continue
            if isinstance(widget.parent(), QLineEdit | QAbstractSpinBox | QAbstractItemView):
                continue  # parts of another input: a line edit's clear button, a table's header
            assert widget.focusPolicy() & Qt.FocusPolicy.TabFocus, (page_id, type(widget).__name__)
    wizard.show()
    page = wizard.data_page
    page.source.folder.edit.setFocus()
    qtbot.keyClicks(page.source.folder.edit, str(home / "nowhere"))
    qtbot.keyClick(page.source.folder.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(page.checked, timeout=WAIT_MS)
    assert "does not exist" in page.problems.plain()
