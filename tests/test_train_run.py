"""Small real-image training runs (tiny DenseNet, 64 px, 42 Kermany films): outputs, Predictor, resume."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, roc_auc_score

from xrayviewer.cli.main import main
from xrayviewer.engine.bundle import load_bundle, load_model
from xrayviewer.engine.predictor import Predictor
from xrayviewer.imaging import open_image
from xrayviewer.training.checkpoints import load_checkpoint
from xrayviewer.training.config import TrainConfig, config_from_dict
from xrayviewer.training.events import BatchEnded, EpochEnded, Event, Message
from xrayviewer.training.trainer import train


def tiny_config(shared_data: Path, tmp_path: Path, **top) -> TrainConfig:
    """Kermany pneumonia, 7 images per split and class (42), tiny-densenet at 64 px, batch 4."""
    kermany = shared_data / "kermany"
    values = {
        "name": "tiny",
        "task": "binary",
        "classes": ["normal", "pneumonia"],
        "epochs": 2,
        "batch_size": 4,
        "seed": 3,
        "out": str(tmp_path / "runs"),
        "data": {
            "csv": str(kermany / "labels.csv"),
            "image_dir": str(kermany / "images"),
            "patient_column": "patient",
            "split_column": "split",
            "patient_scope": "split",
            "limit_per_class": 7,
            "cache_dir": str(tmp_path / "cache"),
            "workers": 0,
        },
        "split": {"min_given_val": 0, "val_fraction": 0.0},
        "preprocess": {"size": 64},
        "model": {"arch": "tiny-densenet"},
        "eval": {"bootstrap": 50, "cam_grid": 2},
        "card": {"licence": "CC BY 4.0 (Kermany et al. 2018)", "limitations": "pediatric AP films only"},
    }
    values.update(top)
    return config_from_dict(values)


@pytest.fixture(scope="module")
def finished_run(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    events: list[Event] = []
    result = train(tiny_config(shared_data, tmp), [events.append])
    return result, events


def test_run_writes_everything_and_the_bundle_loads_in_the_predictor(finished_run):
    result, events = finished_run
    run = result.run_dir
    assert result.status == "completed"
    for name in (
        "config.json",
        "train.log",
        "metrics.json",
        "report.md",
        "report.html",
        "predictions.csv",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "plots/curves.png",
        "plots/roc_test.png",
        "plots/confusion_test.png",
        "plots/reliability_test.png",
        "plots/cam_grid.png",
    ):
        assert (run / name).is_file(), name
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [1, 2]
    bundle = load_bundle(result.bundle_dir)
    assert bundle.card.classes == ["pneumonia"] and bundle.card.preprocessing.size == 64
    assert bundle.card.temperature and bundle.card.training_data["counts"]["test"] == {
        "normal": 7,
        "pneumonia": 7,
    }
    card = bundle.card
    assert card.limitations == "pediatric AP films only"
    assert card.training_data["licence"].startswith("CC BY 4.0")
    assert card.training_data["hardware"].startswith("CPU") and card.training_data["epochs_run"] == 2
    assert card.training_data["train_seconds"] > 0
    assert sum(map(sum, card.metrics["confusion_matrix"])) == card.metrics["n"] == 14
    with open(run / "predictions.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    predictor = Predictor(bundle, device="cpu")
    for row in rows[:3]:
        prediction = predictor.predict(open_image(row["path"]))
        # training scored float16-cached tensors, the Predictor float32 ones: same model, same recipe
        assert prediction.scores["pneumonia"] == pytest.approx(float(row["pneumonia"]), abs=2e-3)


def test_reported_metrics_equal_sklearn_on_the_saved_predictions(finished_run):
    result, _ = finished_run
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    with open(result.run_dir / "predictions.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    y = np.array([r["labels"] == "pneumonia" for r in rows], int)
    p = np.array([float(r["pneumonia"]) for r in rows])
    assert metrics["test"]["per_class"]["pneumonia"]["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-5)
    threshold = metrics["thresholds"]["pneumonia"]
    expected = confusion_matrix(y, (p >= threshold - 1e-6).astype(int), labels=[0, 1])
    assert metrics["test"]["confusion_matrix"] == expected.tolist()


def test_cancel_mid_epoch_then_resume_matches_an_uninterrupted_run(shared_data, tmp_path, finished_run):
    cancel = threading.Event()

    def stop_in_epoch_two(event: Event) -> None:
        if isinstance(event, BatchEnded) and event.epoch == 2 and event.step == 2:
            cancel.set()

    cancelled = train(tiny_config(shared_data, tmp_path), [stop_in_epoch_two], cancel)
    assert cancelled.status == "cancelled"
    state = load_checkpoint(cancelled.run_dir / "checkpoints" / "last.pt")
    assert (state["epoch"], state["step"]) == (1, 2)  # a loadable checkpoint, mid-epoch
    resumed = train(None, resume=cancelled.run_dir)
    assert resumed.status == "completed"
    straight = load_checkpoint(finished_run[0].run_dir / "checkpoints" / "last.pt")["model"]
    again = load_checkpoint(resumed.run_dir / "checkpoints" / "last.pt")["model"]
    assert straight.keys() == again.keys()
    for key in straight:
        assert torch.equal(straight[key], again[key]), key


def test_cli_errors_before_training_and_dry_run(shared_data, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", "--data", str(tmp_path / "missing"), "--epochs", "1", "--out", str(out)]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert not out.exists()  # nothing written for a run that never started
    one_class = tmp_path / "one" / "NORMAL"
    one_class.mkdir(parents=True)
    for path in sorted((shared_data / "kermany" / "images").glob("IM-00*"))[:3]:
        (one_class / path.name).symlink_to(path)
    assert main(["--train", "--data", str(tmp_path / "one"), "--dry-run"]) == 2
    assert "only one class" in capsys.readouterr().err
    shipped = (Path(__file__).parents[1] / "configs" / "kermany-type.toml").read_text()
    config = tmp_path / "kermany-type.toml"  # the shipped config, pointed at wherever the shared data is
    shipped = shipped.replace('init_from = "', "# ")  # the dry run needs no starting bundle
    config.write_text(shipped.replace("../../shared/data", shared_data.as_posix()))
    assert main(["train", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "bacterial" in out and "test" in out and "313" in out


def test_cli_json_events_and_resume_of_a_finished_run(shared_data, tmp_path, capsys, finished_run):
    config = tiny_config(shared_data, tmp_path, epochs=1)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config.resolved()))
    assert main(["train", "--config", str(path), "--events", "json", "--out", str(tmp_path / "cli")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = {line["event"] for line in lines}
    assert {"run_start", "batch", "epoch", "run_end"} <= kinds
    assert lines[-1]["status"] == "completed" and Path(lines[-1]["bundle"]).is_dir()


def test_a_run_that_breaks_says_failed_to_a_parent_and_in_its_log(shared_data, tmp_path, capsys,
                                                                monkeypatch):
    from xrayviewer.training import trainer

    def out_of_memory(*args):
        raise RuntimeError("DefaultCPUAllocator: not enough memory\nmore detail")

    monkeypatch.setattr(trainer.Trainer, "_step", out_of_memory)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_config(shared_data, tmp_path, epochs=1).resolved()))
    assert main(["train", "--config", str(path), "--events", "json", "--out", str(tmp_path / "cli")]) == 1
    captured = capsys.readouterr()
    end = json.loads(captured.out.splitlines()[-1])
    assert end["event"] == "run_end" and end["status"] == "failed"
    assert end["error"] == "DefaultCPUAllocator: not enough memory"
    assert "failed: DefaultCPUAllocator: not enough memory" in captured.err
    assert "Traceback" not in captured.err
    log = (Path(end["run_dir"]) / "train.log").read_text()
    assert "Traceback" in log and "run failed: DefaultCPUAllocator" in log


def test_multiclass_two_phase_plateau_mlp_head(shared_data, tmp_path):
    config = tiny_config(shared_data, tmp_path, task="multiclass", classes=["normal", "bacterial", "viral"])
    config.data.label_column, config.data.label_map = "subtype", {"bacteria": "bacterial", "virus": "viral"}
    config.data.limit_per_class = 5
    config.model.head = "mlp"
    config.optim.schedule, config.optim.freeze_epochs, config.optim.unfreeze = "plateau", 1, "last:2"
    config.card.views, config.card.age_group, config.card.negative_classes = ["AP"], "child", ["normal"]
    lrs: list[float] = []
    result = train(config, [lambda e: lrs.append(e.lr) if isinstance(e, EpochEnded) else None])
    assert result.status == "completed"
    assert lrs[1] == pytest.approx(lrs[0] * config.optim.unfreeze_lr_factor)  # phase 2 at the lower rate
    first = load_checkpoint(result.run_dir / "checkpoints" / "best.pt")["model"]
    assert first["features.conv0.weight"].abs().sum() > 0
    card = load_bundle(result.bundle_dir).card
    assert (
        card.task == "multiclass" and card.classes == ["normal", "bacterial", "viral"] and card.head == "mlp"
    )
    assert (card.views, card.age_group, card.negative_classes) == (["AP"], "child", ["normal"])
    scores = (
        Predictor(result.bundle_dir, device="cpu")
        .predict(open_image(config.data.image_dir + "/" + "IM-0009-0001.jpeg"))
        .scores
    )
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_multilabel_nih_without_given_splits(shared_data, tmp_path):
    config = tiny_config(shared_data, tmp_path, task="multilabel", classes=["Cardiomegaly", "Effusion"])
    nih = shared_data / "nih"
    config.data.csv, config.data.image_dir = str(nih / "labels.csv"), str(nih / "images")
    config.data.label_column, config.data.label_separator = "findings", "|"
    config.data.split_column, config.data.patient_scope, config.data.limit_per_class = "", "global", 4
    config.split.val_fraction = config.split.test_fraction = 0.25
    config.epochs = 1
    result = train(config)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert set(metrics["test"]["per_class"]) == {"Cardiomegaly", "Effusion"}
    assert np.array(metrics["test"]["confusion_matrix"]).shape == (2, 2, 2)


def test_multilabel_with_unknown_labels_scores_each_class_where_known(shared_data, tmp_path):
    nih = shared_data / "nih"
    with open(nih / "labels.csv", newline="") as fh:
        rows = list({row["patient"]: row for row in csv.DictReader(fh)}.values())[:80]  # one film a patient
    table = tmp_path / "partial.csv"
    with open(table, "w", newline="") as fh:  # every third film does not know its Effusion label
        writer = csv.DictWriter(fh, ["file", "findings", "patient", "unknown"])
        writer.writeheader()
        for i, row in enumerate(rows):
            writer.writerow({"file": row["file"], "findings": row["findings"], "patient": row["patient"],
                             "unknown": "Effusion" if i % 3 == 0 else ""})
    config = tiny_config(shared_data, tmp_path, task="multilabel", classes=["Cardiomegaly", "Effusion"])
    config.data.csv, config.data.image_dir = str(table), str(nih / "images")
    config.data.label_column, config.data.label_separator = "findings", "|"
    config.data.unknown_column, config.data.split_column, config.data.patient_scope = "unknown", "", "global"
    config.data.limit_per_class = 0
    config.split.val_fraction = config.split.test_fraction = 0.25
    config.epochs = 1
    result = train(config)
    with open(result.run_dir / "predictions.csv", newline="") as fh:
        predictions = list(csv.DictReader(fh))
    test_files = {Path(r["path"]).name for r in predictions if r["split"] == "test"}
    unknown = {row["file"] for i, row in enumerate(rows) if i % 3 == 0}
    per_class = json.loads((result.run_dir / "metrics.json").read_text())["test"]["per_class"]
    assert per_class["Cardiomegaly"]["known"] == len(test_files)
    assert per_class["Effusion"]["known"] == len(test_files - unknown) < len(test_files)


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_130(shared_data, tmp_path):
    config = tiny_config(shared_data, tmp_path, epochs=50)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config.resolved()))
    command = [sys.executable, "-m", "xrayviewer", "--train", "--config", str(path), "--events", "json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if json.loads(line)["event"] == "batch":
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-1000:]
    assert "Traceback" not in err
    last = json.loads(out.splitlines()[-1])
    assert (last["event"], last["status"]) == ("run_end", "cancelled")
    (run,) = (tmp_path / "runs").iterdir()
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["epoch"] < 50 and "model" in state


def test_fine_tuning_starts_from_an_installed_bundle(shared_data, tmp_path, finished_run):
    source = finished_run[0].bundle_dir
    config = tiny_config(shared_data, tmp_path, epochs=1)
    config.model.arch, config.model.init_from = "xrv-densenet121", str(source)  # the bundle's arch wins
    config.optim.lr = 1e-12  # (almost) no update: the start must be the source weights
    config.augment.rotation_deg = 0.0
    messages: list[str] = []
    result = train(config, [lambda e: messages.append(e.text) if isinstance(e, Message) else None])
    assert any("initialised" in m and "new head" not in m for m in messages)
    tuned = load_checkpoint(result.run_dir / "checkpoints" / "best.pt")["model"]
    start = load_model(load_bundle(source)).state_dict()
    assert torch.allclose(tuned["classifier.weight"], start["classifier.weight"], atol=1e-6)
    assert load_bundle(result.bundle_dir).card.architecture == "tiny-densenet"
