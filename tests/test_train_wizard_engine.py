"""The wizard's Qt-free parts: the data check in sentences, patient IDs from file names, JSON events read
back, the run records, installing with a filled-in card, the time estimate and recalibration."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from test_train_run import tiny_config

from xrayviewer.engine import bundle as bundle_mod
from xrayviewer.engine.bundle import load_bundle, read_bundle, sha256_of
from xrayviewer.engine.install import CardText, InstallError, card_problems, install_bundle
from xrayviewer.training import inspection, run_records
from xrayviewer.training.config import ConfigError, TrainConfig, config_from_dict
from xrayviewer.training.events import (
    BatchEnded,
    EpochEnded,
    JsonLines,
    Message,
    RunFinished,
    RunStarted,
    parse_event,
)
from xrayviewer.training.recalibration import RecalConfig, card_rule, recalibrate
from xrayviewer.training.run_records import RunRecord, RunRecords, new_run_dir
from xrayviewer.training.sources import read_folders
from xrayviewer.training.timing import StepTiming, describe_duration, estimate_seconds, time_batches
from xrayviewer.training.trainer import train

CARD = CardText(
    "site-model",
    "1.0",
    "Kermany pediatric films, 40 images, AP",
    "CC BY 4.0 (Kermany 2018)",
    "children aged 1-5, AP films of one hospital only",
)


def class_folders(root: Path, rows: list[dict], per_class: int, layout: str = "") -> Path:
    """Symlink ``per_class`` Kermany films of each label into ``root/[layout/]<label>/``."""
    taken: dict[str, int] = {}
    for row in rows:
        label = row["label"]
        if row["split"] != "train" or taken.get(label, 0) >= per_class:
            continue
        folder = root / layout / label if layout else root / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / row["file"]).symlink_to(row["path"])
        taken[label] = taken.get(label, 0) + 1
    return root


@pytest.fixture(scope="module")
def trained(shared_data, tmp_path_factory):
    """A tiny binary Kermany model (the engine's own run)."""
    return train(tiny_config(shared_data, tmp_path_factory.mktemp("trained"), epochs=1))


# -- the data check


def test_the_dry_run_in_sentences(kermany_rows, tmp_path):
    good = class_folders(tmp_path / "good", kermany_rows, 10)
    report = inspection.dry_run(config_from_dict({"task": "multiclass", "data": {"folders": str(good)}}))
    assert report.usable and report.classes == ["normal", "pneumonia"]
    assert sum(report.images.values()) == 20 and len(report.files) == 20
    assert any("No train/val/test split is given" in n for n in report.notes)
    one = class_folders(tmp_path / "one", [r for r in kermany_rows if r["label"] == "normal"], 5)
    report = inspection.dry_run(config_from_dict({"task": "multiclass", "data": {"folders": str(one)}}))
    assert report.problems == [
        "Only one class was found (“normal”). A model needs images of at least two "
        "classes, each class in its own subfolder (for example normal/ and pneumonia/)."
    ]
    report = inspection.dry_run(
        config_from_dict({"task": "multiclass", "data": {"folders": str(tmp_path / "x")}})
    )
    assert report.problems == [f"The folder {tmp_path / 'x'} does not exist."]
    assert inspection.plain("something odd happened") == "Something odd happened."


def test_patient_ids_from_file_names_find_leakage_between_splits(kermany_rows, tmp_path):
    root = tmp_path / "leaky"
    normal = [r for r in kermany_rows if r["file"].startswith("IM-")][:4]
    for split, row in zip(("train", "train", "test", "val"), normal, strict=True):
        folder = root / split / "normal"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / row["file"]).symlink_to(row["path"])
    same = normal[0]  # a second film of a training patient, in the test split
    (root / "test" / "normal" / f"copy-{same['file']}").symlink_to(same["path"])
    pneumonia = [r for r in kermany_rows if r["label"] == "pneumonia"][:3]
    for split, row in zip(("train", "test", "val"), pneumonia, strict=True):
        folder = root / split / "pneumonia"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / row["file"]).symlink_to(row["path"])
    data = {"folders": str(root), "patient_pattern": r"(IM-\d+)"}
    samples = read_folders(config_from_dict({"data": data}).data, [], False).samples
    assert {s.patient for s in samples if s.path.name.startswith(("IM-", "copy-IM-"))} == {
        r["patient"] for r in normal
    }
    report = inspection.dry_run(config_from_dict({"task": "multiclass", "data": data}))
    assert len(report.problems) == 1 and report.problems[0].startswith(
        f"1 patient has images in more than one split, e.g. {normal[0]['patient']} (test and train)."
    )
    with pytest.raises(ConfigError, match="patient_pattern is not a valid regular expression"):
        config_from_dict({"data": {"folders": str(root), "patient_pattern": "(unclosed"}}).validate()


def test_unreadable_files_are_named_with_their_reason(kermany_rows, tmp_path):
    root = class_folders(tmp_path / "data", kermany_rows, 8)
    (root / "pneumonia" / "broken.jpeg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    report = inspection.dry_run(config_from_dict({"task": "multiclass", "data": {"folders": str(root)}}))
    bad = inspection.check_files([f.path for f in report.files])
    assert [Path(p).name for p, _ in bad] == ["broken.jpeg"] and bad[0][1]
    problems, notes = inspection.readability(report, bad)
    assert problems == [] and notes[0].startswith(
        "1 image cannot be read and will be left out: pneumonia/broken.jpeg: "
    )
    everything = [(f.path, "not an image") for f in report.files[:10]]
    problems, _ = inspection.readability(report, everything)
    assert problems and "10 of 17 images cannot be read" in problems[0]


# -- events, records, install, timing


def test_json_event_lines_read_back_as_the_engine_events(tmp_path):
    events = [
        RunStarted("r", 3, 0, 5, {"train": {"a": 1}}),
        BatchEnded(1, 2, 5, 0.5, 1e-3),
        EpochEnded(1, 3, 0.5, 0.6, None, 1e-3, True, 2.0, 10.0),
        Message("warning", "w"),
        RunFinished("failed", "r", error="boom"),
    ]
    with open(tmp_path / "events.jsonl", "w") as fh:
        sink = JsonLines(fh)
        for event in events:
            sink(event)
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [parse_event(line) for line in lines] == events
    assert parse_event("not json") is None and parse_event('{"event": "nope"}') is None
    assert parse_event('{"event": "batch", "epoch": 1}') is None  # fields missing


def test_run_records_survive_a_restart_and_know_what_can_be_resumed(tmp_path):
    records = RunRecords(tmp_path / "runs.json")
    run = tmp_path / "run1"
    record = RunRecord(
        config_file=str(tmp_path / "c1.json"),
        name="m",
        run_dir=str(run),
        epochs=5,
        epochs_done=2,
        state="cancelled",
    )
    records.put(record)
    assert records.unfinished() == []  # no checkpoint on disk: nothing to offer
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    again = RunRecords(tmp_path / "runs.json").unfinished()
    assert [r.run_dir for r in again] == [str(run)] and again[0].resumable
    assert again[0].describe().startswith("m — stopped after epoch 2 of 5")
    (run / "bundle").mkdir()
    (run / "bundle" / "model.json").write_text("{}")
    assert (
        RunRecords(tmp_path / "runs.json")
        .unfinished()[0]
        .describe()
        .startswith("m — finished, not installed")
    )
    record.state = "installed"
    records.put(record)
    assert records.unfinished() == []
    (tmp_path / "runs.json").write_text("{damaged")
    assert records.load() == []


def test_a_new_run_folder_never_reuses_an_existing_one(tmp_path, monkeypatch):
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 12, 1, 9, 30, 5)

    monkeypatch.setattr(run_records, "datetime", Frozen)
    first = new_run_dir(tmp_path, "site-model-recal")
    assert first == tmp_path / "site-model-recal-20261201-093005" and not first.exists()
    first.mkdir()
    second = new_run_dir(tmp_path, "site-model-recal")
    assert second == tmp_path / "site-model-recal-20261201-093005-2"
    second.mkdir()
    assert new_run_dir(tmp_path, "site-model-recal").name.endswith("-3")


def test_install_needs_the_card_text_and_never_overwrites_silently(trained, no_models_installed):
    assert card_problems(replace(CARD, limitations="", licence="", name="bad name!")) == [
        card_problems(replace(CARD, name="bad name!"))[0],
        card_problems(replace(CARD, licence=""))[0],
        card_problems(replace(CARD, limitations=""))[0],
    ]
    with pytest.raises(InstallError, match="Write the limitations"):
        install_bundle(trained.bundle_dir, replace(CARD, limitations=" "))
    first = install_bundle(trained.bundle_dir, CARD, card_fields={"views": ["AP"], "age_group": "child"})
    assert first.path == no_models_installed / "user-models" / "site-model" and first.source == "user"
    assert first.card.limitations == CARD.limitations and first.card.views == ["AP"]
    assert first.card.training_data["description"] == CARD.data_description
    assert (
        sha256_of(first.weights_path)
        == first.card.weights_sha256
        == read_bundle(trained.bundle_dir).card.weights_sha256
    )
    assert load_bundle("site-model").path == first.path  # the viewer's lookup finds it
    with pytest.raises(InstallError, match=r"Version 1\.0 of “site-model” is installed already"):
        install_bundle(trained.bundle_dir, CARD, replace_existing=True)
    with pytest.raises(InstallError, match="confirm that this one replaces it"):
        install_bundle(trained.bundle_dir, replace(CARD, version="1.1"))
    second = install_bundle(trained.bundle_dir, replace(CARD, version="1.1"), replace_existing=True)
    assert second.card.version == "1.1"
    kept = no_models_installed / "user-models" / ".previous" / "site-model-1.0"
    assert read_bundle(kept).card.version == "1.0"
    assert [b.card.version for b in bundle_mod.find_bundles() if b.name == "site-model"] == ["1.1"]


def test_a_few_timed_batches_give_an_estimate(shared_data, tmp_path):
    config = tiny_config(shared_data, tmp_path)
    timing = time_batches(config, batches=2)
    assert timing.device == "cpu" and timing.batch_size == 4 and timing.train_batch_s > 0
    assert timing.eval_image_s > 0 and timing.hardware.startswith("CPU")
    fixed = StepTiming("cpu", "CPU", 32, 224, "xrv-densenet121", 30.0, 0.5, 2)
    seconds = estimate_seconds(fixed, train_images=320, eval_images=100, epochs=5, decode_s=60, overhead_s=0)
    assert seconds == pytest.approx(5 * (10 * 30 + 50 * 0.5) + 100 * 0.5 + 60)
    assert describe_duration(seconds) == "about 29 min"
    assert describe_duration(40) == "about 40 s" and describe_duration(4 * 3600 + 600) == "about 4 h 10 min"


def test_the_wizard_names_every_architecture_the_engine_builds():
    from xrayviewer.engine.models import ARCHITECTURES
    from xrayviewer.gui.wizard import task_page

    assert list(task_page.ARCHITECTURES) == list(ARCHITECTURES)


# -- recalibration


def test_recalibration_refits_temperature_and_thresholds_and_keeps_the_weights(
    trained, kermany_rows, tmp_path
):
    site = class_folders(tmp_path / "site", kermany_rows[400:], 20)
    before = load_bundle(trained.bundle_dir)
    assert card_rule(before) == ("youden", 0.9)
    config = RecalConfig(
        bundle=str(trained.bundle_dir),
        negative="normal",
        rule="sensitivity",
        target_sensitivity=0.95,
        description="40 Kermany training films as a stand-in site",
        out=str(tmp_path / "out"),
    )
    config.data.folders = str(site)
    result = recalibrate(config)
    assert result.status == "completed"
    after = load_bundle(result.bundle_dir)
    card = after.card
    assert card.weights_sha256 == before.card.weights_sha256 == sha256_of(after.weights_path)
    assert card.name == before.card.name
    assert re.fullmatch(re.escape(before.card.version) + r"\+site\d{8}", card.version)
    assert card.temperature != before.card.temperature and card.threshold_method.startswith(
        "sensitivity >= 0.95 on site data (n=40)"
    )
    record = card.training_data["recalibrations"][-1]
    assert record["n"] == 40 and record["counts"] == {"normal": 20, "pneumonia": 20}
    assert record["site_data"] == config.description and record["rule"] == "sensitivity >= 0.95"
    assert record["after"]["per_class"]["pneumonia"]["sensitivity"] >= 0.95  # on the films it was fitted on
    assert record["before"]["per_class"]["pneumonia"]["threshold"] == before.card.thresholds["pneumonia"]
    assert set(record["out_of_fold"]["per_class"]["pneumonia"]) == {"sensitivity", "specificity"}
    summary = json.loads((result.out_dir / "recalibration.json").read_text())
    assert (
        summary["version"] == card.version
        and (result.out_dir / "plots" / "reliability_before_after.png").stat().st_size > 10_000
    )
    from xrayviewer.engine.predictor import Predictor
    from xrayviewer.imaging import open_image

    film = open_image(next(site.glob("pneumonia/*")))
    old, new = Predictor(before, device="cpu").predict(film), Predictor(after, device="cpu").predict(film)
    logit = np.log(old.scores["pneumonia"] / (1 - old.scores["pneumonia"])) * before.card.temperature
    assert new.scores["pneumonia"] == pytest.approx(1 / (1 + np.exp(-logit / card.temperature)), abs=1e-5)


def test_recalibration_refuses_site_films_without_both_classes(trained, kermany_rows, tmp_path):
    from xrayviewer.training.sources import DatasetError

    site = class_folders(tmp_path / "site", [r for r in kermany_rows if r["label"] == "pneumonia"], 5)
    config = RecalConfig(bundle=str(trained.bundle_dir), out=str(tmp_path / "out"))
    config.data.folders = str(site)
    with pytest.raises(DatasetError, match="normal"):
        recalibrate(config)
    assert not (tmp_path / "out").exists()
    assert TrainConfig().data.patient_pattern == ""


def test_the_same_weights_always_give_the_same_sha256(tmp_path):
    from engine_helpers import make_bundle

    from xrayviewer.engine.bundle import load_model, save_bundle
    from xrayviewer.engine.preprocess import PreprocessRecipe

    rng = np.random.default_rng(0)
    inputs = [(rng.random((1, 64, 64), dtype=np.float32) * 2 - 1) * 1024 for _ in range(2)]
    bundle = make_bundle(tmp_path / "b", inputs, arch="tiny-densenet", recipe=PreprocessRecipe(size=64))
    model = load_model(bundle)
    digests = {save_bundle(tmp_path / f"copy{i}", model, bundle.card).card.weights_sha256 for i in range(8)}
    assert len(digests) == 1  # the file's metadata must not come out in another order now and then


def test_a_large_set_is_test_decoded_on_an_even_sample(kermany_rows, tmp_path):
    root = class_folders(tmp_path / "data", kermany_rows, 30)
    report = inspection.dry_run(config_from_dict({"task": "multiclass", "data": {"folders": str(root)}}))
    sample = inspection.files_to_check(report, limit=20)
    assert len(sample) == 20 and len(set(sample)) == 20 and len(inspection.files_to_check(report)) == 60
    assert {Path(p).parent.name for p in sample} == {"normal", "pneumonia"}
    problems, notes = inspection.readability(report, [], checked=20)
    assert problems == [] and notes == [
        "All 20 images checked can be read (in an even sample of 20 of the 60 "
        "images; training checks the rest and leaves out what it cannot read)."
    ]
    problems, _ = inspection.readability(report, [(p, "not an image") for p in sample[:11]], checked=20)
    assert problems[0].startswith("11 of 20 images cannot be read")
