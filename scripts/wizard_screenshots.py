"""Render the training wizard's pages into docs/ (run under Xvfb at 1280×800 for real X11 rendering):

    Xvfb :99 -screen 0 1280x800x24 &  DISPLAY=:99 .venv/bin/python scripts/wizard_screenshots.py

It drives the wizard as a person would, on the shared Kermany data beside the repository: the data page on
the Kermany table (first with patient IDs taken as global, which shows the leakage message, then with "IDs
restart in each split"), the task page as it opens (fine-tuning the shipped pneumonia model, the default),
then, for a run that finishes in a few minutes on a laptop CPU, the tiny DenseNet at 64 px from scratch:
recipe with its measured estimate, run in progress and finished, results with the card filled in and the
model installed; then recalibration of the shipped pneumonia model on 120 Kermany test films standing in
for a site's own. Per-user folders (models, run records, image cache) go to a temporary folder: nothing is
installed for real. Shots: docs/wizard-*.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DATA = ROOT.parent / "shared" / "data"
KERMANY = DATA / "kermany"


def wait(app, condition, seconds: float = 600.0) -> None:
    """Run the event loop until ``condition()`` (or fail after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting after {seconds:.0f} s")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds: float = 0.4) -> None:
    """Let layouts and repaints finish."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def save(app, widget, name: str) -> None:
    settle(app)
    path = DOCS / name
    widget.grab().toImage().save(str(path), "PNG", 9)
    print(f"{path.relative_to(ROOT)}: {widget.width()}×{widget.height()}, {path.stat().st_size // 1024} KiB")


def site_films(folder: Path, per_class: int) -> Path:
    """Kermany test films, ``per_class`` of each label, as class folders of symlinks (a stand-in site)."""
    import csv

    taken: dict[str, int] = {}
    with open(KERMANY / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            label = row["label"]
            if row["split"] == "test" and taken.get(label, 0) < per_class:
                (folder / label).mkdir(parents=True, exist_ok=True)
                (folder / label / row["file"]).symlink_to(KERMANY / "images" / row["file"])
                taken[label] = taken.get(label, 0) + 1
    return folder


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="xrayviewer-wizard-shots-"))
    os.environ["XRAYVIEWER_RUNS_FILE"] = str(home / "data" / "training-runs.json")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from xrayviewer.engine import paths

    paths.user_models_dir = lambda: home / "user-models"  # type: ignore[assignment]
    from xrayviewer.gui.app import create_application

    app = create_application()
    from PySide6.QtWidgets import QWizard

    from xrayviewer.gui.wizard.wizard import RECALIBRATED, TrainingWizard

    wizard = TrainingWizard()
    wizard.show()
    settle(app, 1.0)
    data = wizard.data_page
    data.source.set_csv(str(KERMANY / "labels.csv"), str(KERMANY / "images"))
    wait(app, data.checked)
    save(app, wizard, "wizard-1-data-leakage.png")
    data.source.csv_restart_ids.setChecked(True)
    wait(app, lambda: not data.checked())
    wait(app, data.checked)
    wait(app, lambda: sum(data.thumbs.count.values()) >= 12, 60)
    save(app, wizard, "wizard-1-data.png")

    wizard.next()
    task = wizard.task_page
    save(app, wizard, "wizard-2-task.png")
    task.scratch.setChecked(True)
    task.arch.setCurrentIndex(task.arch.findData("tiny-densenet"))
    task.size.setValue(64)
    task.name.setText("pneumonia-tiny")
    wizard.next()
    recipe = wizard.recipe_page
    recipe.epochs.setValue(6)
    recipe.bootstrap.setValue(500)
    wait(app, lambda: recipe.timing is not None or "No time" in recipe.estimate.text())
    save(app, wizard, "wizard-3-recipe.png")

    wizard.next()
    run = wizard.run_page
    estimate = recipe.estimate_seconds()
    began = time.monotonic()
    run.start()
    wait(app, lambda: len(run.curves.val_loss) >= 3 and run.epoch_bar.value() > run.epoch_bar.maximum() // 2)
    save(app, wizard, "wizard-4-run.png")
    wait(app, lambda: run.state not in ("running", "cancelling"))
    if run.state != "completed":
        print(run.log.toPlainText()[-3000:], file=sys.stderr)
        return 1
    save(app, wizard, "wizard-4-run-finished.png")
    print(f"the recipe page estimated {estimate or 0:.0f} s; the run took {time.monotonic() - began:.0f} s")

    wizard.next()
    form = wizard.results_page.installer.form
    form.description.setPlainText("Kermany et al. 2018 pediatric chest X-rays, Guangzhou, ages 1-5, AP "
                                  "films; original train/test split, validation drawn from train by patient")
    form.licence.setText("CC BY 4.0, doi:10.17632/rscbjbr9sj.2; cite Kermany et al., Cell 2018")
    form.limitations.setPlainText("A 64 px tiny network trained to show the wizard: not for reading films. "
                                  "Pediatric AP films of one hospital only.")
    form.views["AP"].setChecked(True)
    form.age.setCurrentIndex(form.age.findData("child"))
    wizard.results_page.tabs.setCurrentIndex(3)  # the heat maps: what the model looks at
    save(app, wizard, "wizard-5-results.png")
    wizard.results_page.installer.install()
    wizard.results_page.tabs.setCurrentIndex(0)
    save(app, wizard, "wizard-5-installed.png")
    wizard.close()

    recal = TrainingWizard(mode="recalibrate")
    recal.show()
    settle(app, 1.0)
    setup = recal.recalibrate_page
    index = next(i for i, b in enumerate(setup.bundles) if b.name == "pneumonia")
    setup.bundle_combo.setCurrentIndex(index)
    setup.source.set_folder(str(site_films(home / "site", 60)))
    wait(app, lambda: setup.unreadable is not None)
    setup.sensitivity_rule.setChecked(True)
    setup.target.setValue(0.97)
    setup.description.setText("120 Kermany test films (60 normal, 60 pneumonia) standing in for a site's own")
    save(app, recal, "wizard-6-recalibrate.png")
    recal.next()
    page = recal.page(RECALIBRATED)
    wait(app, lambda: page.installer.isEnabled() or bool(page.error))
    save(app, recal, "wizard-6-recalibrated.png")
    recal.button(QWizard.WizardButton.FinishButton).click()
    return 0


if __name__ == "__main__":
    sys.exit(main())
