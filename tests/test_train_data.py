"""Training data: config loading, class-folder and CSV sources, label mapping, patient-level splits."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from xrayviewer.engine.preprocess import PreprocessRecipe
from xrayviewer.training.config import (
    ConfigError,
    DataConfig,
    SplitConfig,
    TrainConfig,
    config_from_dict,
    load_config,
)
from xrayviewer.training.gate import load_gate_config
from xrayviewer.training.sources import DatasetError, Sample, read_samples, summarize
from xrayviewer.training.splits import assign_splits, carve, check_no_leakage, patient_leaks

ROOT = Path(__file__).resolve().parents[1]


def _link_folders(tmp_path: Path, rows: list[dict], per_class: int, split_dirs: bool = True) -> Path:
    """A Kermany-style class-folder tree of symlinks to real shared images."""
    root = tmp_path / "folders"
    taken: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["split"], row["label"])
        if taken.get(key, 0) >= per_class:
            continue
        taken[key] = taken.get(key, 0) + 1
        folder = root / (row["split"] if split_dirs else "") / row["label"].upper()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / row["file"]).symlink_to(row["path"])
    return root


def test_example_configs_load_and_validate():
    gate = load_gate_config(ROOT / "configs" / "gate.toml")  # the applicability gate's (training.gate)
    assert Path(gate.table).is_absolute() and gate.chest_pass > 0.99
    for path in sorted((ROOT / "configs").glob("*.toml")):
        if path.name == "gate.toml":
            continue
        config = load_config(path)
        config.validate()
        source = Path(config.data.csv or config.data.folders)
        assert source.is_absolute(), f"{path.name}: data path not resolved against the config file"


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('task = "binary"\n[optim]\nlearning_rate = 0.1\n')
    with pytest.raises(ConfigError, match=r"unknown key optim\.learning_rate"):
        load_config(bad)
    config = TrainConfig(task="regression")
    config.data.csv = "x.csv"
    with pytest.raises(ConfigError, match="task must be one of"):
        config.validate()
    config = TrainConfig()
    with pytest.raises(ConfigError, match="exactly one data source"):
        config.validate()
    config = TrainConfig(task="binary")
    config.data.csv, config.model.arch = "x.csv", "resnet-9000"
    with pytest.raises(ConfigError, match=r"model\.arch must be one of xrv-densenet121"):
        config.validate()


def test_the_preprocess_table_is_the_engine_recipe(tmp_path):
    config = config_from_dict({"preprocess": {"size": 128, "crop": 0.8, "geometry": "center_crop"}})
    assert config.preprocess == PreprocessRecipe(size=128, crop=0.8, geometry="center_crop")
    assert TrainConfig().preprocess == PreprocessRecipe(size=224)
    with pytest.raises(ConfigError, match="geometry 'bogus' is not one of"):
        config_from_dict({"preprocess": {"geometry": "bogus"}})
    with pytest.raises(ConfigError, match=r"unknown key preprocess\.colour"):
        config_from_dict({"preprocess": {"colour": True}})
    with pytest.raises(ConfigError, match=r"preprocess\.size must be an integer"):
        config_from_dict({"preprocess": {"size": "big"}})


def test_class_folders_honour_given_splits(tmp_path, kermany_rows):
    root = _link_folders(tmp_path, kermany_rows, per_class=3)
    samples, classes, dropped = read_samples(DataConfig(folders=str(root)), [], "binary")
    assert classes == ["NORMAL", "PNEUMONIA"]
    summary = summarize(samples, classes, dropped)
    assert summary.counts["train"] == {"NORMAL": 3, "PNEUMONIA": 3}
    assert summary.counts["test"] == {"NORMAL": 3, "PNEUMONIA": 3}
    assert any("train" in line for line in summary.lines())
    assert summary.images == {"train": 6, "val": 6, "test": 6}


def kermany_config(shared_data: Path, **overrides) -> DataConfig:
    """The shared Kermany CSV with its given splits and per-split patient ids."""
    folder = shared_data / "kermany"
    return DataConfig(
        csv=str(folder / "labels.csv"),
        image_dir=str(folder / "images"),
        patient_column="patient",
        split_column="split",
        patient_scope="split",
        **overrides,
    )


def test_csv_label_mapping_multiclass_from_subtype(kermany_rows, shared_data):
    mapping = {"bacteria": "bacterial", "virus": "viral"}
    config = kermany_config(shared_data, label_column="subtype", label_map=mapping)
    samples, _, _ = read_samples(config, ["normal", "bacterial", "viral"], "multiclass")
    by_file = {s.path.name: s for s in samples}
    for row in kermany_rows[:200]:
        expected = {"normal": "normal", "bacteria": "bacterial", "virus": "viral"}[row["subtype"]]
        assert by_file[row["file"]].labels == (expected,)
    assert len(samples) == len(kermany_rows)


def test_filename_patterns_give_the_same_labels_as_the_subtype_column(shared_data, kermany_rows):
    config = DataConfig(
        csv=str(shared_data / "kermany" / "labels.csv"),
        image_dir=str(shared_data / "kermany" / "images"),
        filename_patterns={"bacterial": "bacteria", "viral": "virus"},
        default_class="normal",
    )
    samples, _, _ = read_samples(config, ["normal", "bacterial", "viral"], "multiclass")
    truth = {r["file"]: r["subtype"] for r in kermany_rows}
    names = {"normal": "normal", "bacterial": "bacteria", "viral": "virus"}
    assert all(names[s.labels[0]] == truth[s.path.name] for s in samples)


def test_nih_one_finding_against_no_finding_and_multilabel(shared_data):
    base = dict(
        csv=str(shared_data / "nih" / "labels.csv"),
        label_column="findings",
        label_separator="|",
        patient_column="patient",
    )
    samples, classes, dropped = read_samples(DataConfig(**base), ["No Finding", "Cardiomegaly"], "binary")
    counts = summarize(samples, classes).counts[""]
    assert counts == {"No Finding": 106, "Cardiomegaly": 55}
    assert sum(dropped.values()) == 560 - 161
    multi, _, _ = read_samples(DataConfig(**base), ["Cardiomegaly", "Effusion"], "multilabel")
    assert len(multi) == 560  # rows with neither finding stay as all-negative examples
    assert sum("Cardiomegaly" in s.labels for s in multi) == 55


def test_bad_datasets_give_clear_errors(tmp_path, kermany_rows):
    with pytest.raises(DatasetError, match="data folder not found"):
        read_samples(DataConfig(folders=str(tmp_path / "nope")), [], "binary")
    root = _link_folders(
        tmp_path, [r for r in kermany_rows if r["label"] == "normal"], per_class=4, split_dirs=False
    )
    with pytest.raises(DatasetError, match="only one class"):
        read_samples(DataConfig(folders=str(root)), [], "binary")
    (root / "PNEUMONIA").mkdir()
    with pytest.raises(DatasetError, match="'PNEUMONIA' has no images"):
        read_samples(DataConfig(folders=str(root)), ["NORMAL", "PNEUMONIA"], "binary")
    table = tmp_path / "labels.csv"
    table.write_text("path,diagnosis\na.png,x\n")
    with pytest.raises(DatasetError, match="missing column"):
        read_samples(DataConfig(csv=str(table)), [], "binary")


def _samples(n_patients: int, per_patient: int, positive_every: int) -> list[Sample]:
    return [
        Sample(Path(f"p{p}_{i}.png"), ("pos",) if p % positive_every == 0 else ("neg",), f"p{p}")
        for p in range(n_patients)
        for i in range(per_patient)
    ]


def test_split_is_patient_level_stratified_and_seeded():
    samples = _samples(60, 3, positive_every=4)
    config = SplitConfig(val_fraction=0.2, test_fraction=0.2)
    first = assign_splits(samples, config, seed=7)
    assert first == assign_splits(samples, config, seed=7)
    assert first != assign_splits(samples, config, seed=8)
    assert patient_leaks(first) == {}
    for split in ("val", "test"):
        part = [s for s in first if s.split == split]
        assert 0.15 <= len(part) / len(samples) <= 0.25
        positives = sum(s.labels == ("pos",) for s in part) / len(part)
        assert 0.15 <= positives <= 0.35  # 25 % positives overall: strata kept


def test_cross_validation_folds_partition_patients_and_keep_strata():
    samples = _samples(50, 2, positive_every=5)
    tests: list[set[str]] = []
    for fold in range(5):
        split = assign_splits(samples, SplitConfig(val_fraction=0.2, folds=5, fold=fold), seed=3)
        assert patient_leaks(split) == {}
        test = [s for s in split if s.split == "test"]
        assert len({s.patient for s in test if s.labels == ("pos",)}) == 2  # 10 positive patients, 5 folds
        assert 0.15 <= sum(s.split == "val" for s in split) / (len(samples) - len(test)) <= 0.25
        tests.append({s.patient for s in test})
    assert set.union(*tests) == {s.patient for s in samples}  # every patient is tested once...
    assert sum(map(len, tests)) == 50  # ...and only once
    given = [*samples[:-1], Sample(Path("t.png"), ("pos",), "q", "test")]
    with pytest.raises(DatasetError, match="without given splits"):
        assign_splits(given, SplitConfig(folds=5), seed=0)


def test_leakage_check_finds_a_patient_in_two_splits():
    samples = carve([s for s in _samples(10, 2, 2)], {"val": 0.3}, seed=0)
    assert patient_leaks(samples) == {}
    leaked = [
        *samples,
        Sample(
            Path("extra.png"), ("pos",), samples[0].patient, "test" if samples[0].split != "test" else "train"
        ),
    ]
    assert list(patient_leaks(leaked)) == [samples[0].patient]
    with pytest.raises(DatasetError, match="more than one split"):
        check_no_leakage(leaked)


def test_tiny_given_val_is_merged_and_recarved_by_patient(shared_data):
    config = kermany_config(shared_data)
    samples, _, _ = read_samples(config, ["normal", "pneumonia"], "binary")
    split = assign_splits(samples, SplitConfig(val_fraction=0.1), seed=0)
    counts = {k: sum(s.split == k for s in split) for k in ("train", "val", "test")}
    assert counts["test"] == 313
    assert 0.08 * 5232 < counts["val"] < 0.12 * 5232
    with open(shared_data / "kermany" / "labels.csv", newline="") as fh:
        assert counts["train"] + counts["val"] == sum(r["split"] != "test" for r in csv.DictReader(fh))


def test_subtask_stratified_by_the_parent_label_validates_on_the_parents_patients(shared_data):
    def split_of(path: Path, **data: str) -> dict[str, str]:
        config = load_config(path)
        config.data.csv = str(shared_data / "kermany" / "labels.csv")
        config.data.image_dir = str(shared_data / "kermany" / "images")
        config.data.stratify_column = data.get("stratify_column", config.data.stratify_column)
        samples, _, _ = read_samples(config.data, config.classes, config.task)
        return {s.path.name: s.split for s in assign_splits(samples, config.split, config.seed)}

    parent = split_of(ROOT / "configs" / "kermany-pneumonia.toml")
    parent_val = {name for name, split in parent.items() if split == "val"}
    own_strata = split_of(ROOT / "configs" / "kermany-type.toml", stratify_column="")
    own_val = {name for name, split in own_strata.items() if split == "val"}
    assert sum(parent[name] == "train" for name in own_val) > 100  # stratified by subtype: a different carve
    shared = split_of(ROOT / "configs" / "kermany-type.toml")  # as committed: stratify_column = "label"
    assert {name for name, split in shared.items() if split == "val"} == parent_val
