"""Training configuration: dataclasses with chest X-ray defaults, loaded from TOML and overridden by flags."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from xrayviewer.engine.bundle import STORAGE_DTYPES, TASKS, check_population
from xrayviewer.engine.preprocess import PreprocessRecipe

# the choices this layer implements (training.optimization, training.metrics, training.sources use them)
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "plateau", "constant")
EARLY_STOP_METRICS = ("auc", "loss")
THRESHOLD_RULES = ("youden", "sensitivity")
PATIENT_SCOPES = ("global", "split")  # "split": patient ids are unique only within a given split


class ConfigError(ValueError):
    """The training configuration is invalid; the message says which key and why."""


@dataclass
class DataConfig:
    """Where images and labels come from and how labels map to classes."""

    folders: str = ""  # class-folder root (Kermany layout: [train|val|test/]<class>/*.jpeg)
    csv: str = ""  # CSV with one row per image
    image_dir: str = ""  # CSV paths are relative to this (default: the CSV's folder)
    path_column: str = "file"
    label_column: str = "label"
    label_separator: str = ""  # e.g. "|" for NIH "Finding Labels"
    unknown_column: str = ""  # multilabel CSV: classes whose label this row does not know (label_separator-
    # separated, label_map applies); they count neither as positive nor as negative (partial labels)
    patient_column: str = ""  # patient-level splits and leakage check
    patient_pattern: str = ""  # class folders: regex on the file name whose first group (or match) is the
    # patient id, e.g. "^(person\\d+|IM-\\d+)" for Kermany names; unset: each file is its own patient
    split_column: str = ""  # honour given train/val/test splits
    stratify_column: str = ""  # carve splits stratified by this column, not the labels (a parent task's
    # label column: a fine-tuned model then validates on the same patients as its backbone)
    patient_scope: str = "global"  # "split": patient ids are unique only within a given split (Kermany)
    label_map: dict[str, str] = field(default_factory=dict)  # raw label -> class ("" drops it)
    filename_patterns: dict[str, str] = field(default_factory=dict)  # class -> regex on the file name
    default_class: str = ""  # class for rows none of whose labels map (unset: such rows are dropped)
    limit_per_class: int = 0  # keep at most N training images per class (quick runs); 0 = all
    cache_dir: str = ""  # preprocessed-image cache (default: the per-user cache folder)
    workers: int = 2  # processes decoding images into the cache


@dataclass
class SplitConfig:
    """Patient-level, stratified, seeded split used where the data gives none (or to carve validation)."""

    val_fraction: float = 0.15  # of train, carved by patient when the data has no (or a tiny) val split
    test_fraction: float = 0.15  # only when the data gives no splits at all
    min_given_val: int = 50  # a given val split smaller than this is merged into train and re-carved
    folds: int = 0  # k >= 2: k-fold cross-validation by patient (data without given splits); test = one fold
    fold: int = 0  # which fold is the test split, 0..folds-1


@dataclass
class AugmentConfig:
    """Random transforms applied to preprocessed training tensors only."""

    rotation_deg: float = 10.0
    crop_scale: tuple[float, float] = (0.85, 1.0)  # random resized crop: area fraction
    crop_ratio: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.05  # max translation as a fraction of the image side
    brightness: float = 0.1  # +- fraction of the value range
    contrast: float = 0.1  # +- fraction
    hflip: bool = False  # off by default: laterality matters in chest films
    degrade: float = 0.0  # probability that an image is blurred to a random resolution (see degrade_size):
    # films on disk differ in resolution (NIH copies of 64 px); a model must not learn sharpness for a label
    degrade_size: tuple[float, float] = (32.0, 96.0)  # pixels across the blurred image, drawn uniformly


@dataclass
class ModelConfig:
    """Architecture, head and initialisation."""

    arch: str = "xrv-densenet121"
    head: str = "linear"  # linear | mlp
    init_from: str = ""  # installed bundle name or folder to start from (fine-tuning); "" = random init
    weights_dtype: str = "float32"  # bundle storage: float32 | float16 (half the size; test metrics use the
    # rounded weights, so the card stays exactly reproducible)


@dataclass
class OptimConfig:
    """Optimiser, schedule, two-phase fine-tuning, early stopping."""

    optimizer: str = "adamw"  # adamw | adam | sgd
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"  # cosine | plateau | constant
    warmup_epochs: float = 1.0  # cosine only
    plateau_patience: int = 2
    plateau_factor: float = 0.1
    freeze_epochs: int = 0  # phase 1: backbone frozen, head trained
    unfreeze: str = "all"  # phase 2: "all" or "last:N" backbone blocks
    unfreeze_lr_factor: float = 0.1  # phase-2 learning rate = lr * factor
    grad_clip: float = 1.0  # max gradient norm; 0 = off
    class_weights: bool = True
    early_stop_metric: str = "auc"  # auc | loss (on validation)
    patience: int = 5  # epochs without improvement before stopping; 0 = never


@dataclass
class EvalConfig:
    """How thresholds and uncertainty are derived."""

    threshold: str = "youden"  # youden | sensitivity
    target_sensitivity: float = 0.9
    bootstrap: int = 1000  # resamples for the 95 % AUC confidence interval
    cam_grid: int = 8  # test predictions drawn with CAM overlays in the report


@dataclass
class CardConfig:
    """What the model card says about the data and the model's limits (shown in the app's tooltip)."""

    data_description: str = ""  # e.g. "Kermany et al. 2018 pediatric chest X-rays, Guangzhou, ages 1-5"
    licence: str = ""  # the training data's licence and required citation
    limitations: str = ""  # where the model must not be trusted
    views: list[str] = field(default_factory=list)  # ViewPosition values of the training films, e.g. ["AP"]
    age_group: str = ""  # the training patients: child | adult | "" (unknown or mixed)
    negative_classes: list[str] = field(default_factory=list)  # classes meaning "no finding", e.g. ["normal"]


@dataclass
class TrainConfig:
    """Everything one training run needs; ``resolved()`` is what the run directory records."""

    name: str = "model"
    task: str = "binary"  # binary | multiclass | multilabel
    classes: list[str] = field(default_factory=list)  # binary: [negative, positive]
    epochs: int = 10
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision + channels_last on CUDA
    out: str = "runs"  # parent folder of run directories
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    preprocess: PreprocessRecipe = field(default_factory=lambda: PreprocessRecipe(size=224))
    # the model-input recipe: the same function runs at inference and it is recorded in the bundle's card
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    card: CardConfig = field(default_factory=CardConfig)

    def validate(self) -> None:
        """Raise ConfigError for values that cannot work, before anything is read or trained."""
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)} (got {self.task!r})")
        if bool(self.data.folders) == bool(self.data.csv):
            raise ConfigError("give exactly one data source: data.folders (--data) or data.csv (--csv)")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be >= 1")
        if self.optim.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0 (got {self.optim.lr})")
        from xrayviewer.engine.models import ARCHITECTURES, HEADS  # imports torch: only when validating

        choices = {
            "optim.optimizer": (self.optim.optimizer, OPTIMIZERS),
            "optim.schedule": (self.optim.schedule, SCHEDULES),
            "optim.early_stop_metric": (self.optim.early_stop_metric, EARLY_STOP_METRICS),
            "model.arch": (self.model.arch, tuple(ARCHITECTURES)),
            "model.head": (self.model.head, tuple(HEADS)),
            "model.weights_dtype": (self.model.weights_dtype, STORAGE_DTYPES),
            "eval.threshold": (self.eval.threshold, THRESHOLD_RULES),
            "data.patient_scope": (self.data.patient_scope, PATIENT_SCOPES),
        }
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise ConfigError(f"{key} must be one of {', '.join(allowed)} (got {value!r})")
        if self.optim.unfreeze != "all" and not _is_last_n(self.optim.unfreeze):
            raise ConfigError(f"optim.unfreeze must be 'all' or 'last:N' (got {self.optim.unfreeze!r})")
        if not 0 <= self.split.val_fraction < 1 or not 0 <= self.split.test_fraction < 1:
            raise ConfigError("split fractions must be in [0, 1)")
        low, high = self.augment.degrade_size
        if not 0 <= self.augment.degrade <= 1 or not 8 <= low <= high:
            raise ConfigError("augment.degrade must be in [0, 1], augment.degrade_size [low, high] with 8 <= "
                              f"low <= high (got {self.augment.degrade}, {[low, high]})")
        if self.data.patient_pattern:
            try:
                re.compile(self.data.patient_pattern)
            except re.error as exc:
                raise ConfigError(f"data.patient_pattern is not a valid regular expression ({exc})") from None
        if self.data.unknown_column and (self.task != "multilabel" or not self.data.csv):
            raise ConfigError("data.unknown_column needs a multilabel task read from a CSV")
        if self.split.folds == 1 or self.split.folds < 0:
            raise ConfigError(f"split.folds must be 0 (no cross-validation) or >= 2 (got {self.split.folds})")
        if self.split.folds and not 0 <= self.split.fold < self.split.folds:
            raise ConfigError(f"split.fold must be in 0..{self.split.folds - 1} (got {self.split.fold})")
        self._validate_card()

    def _validate_card(self) -> None:
        card = self.card
        if card.negative_classes and self.task == "binary":
            raise ConfigError("card.negative_classes must be empty for a binary model: its one class is the "
                              "finding, the negative class is implicit")
        if card.negative_classes and not self.classes:
            raise ConfigError("card.negative_classes needs the classes listed (top-level classes = [...])")
        try:
            check_population(self.classes, card.views, card.age_group, card.negative_classes)
        except ValueError as exc:
            raise ConfigError(f"card.{exc}") from None

    def resolved(self) -> dict[str, Any]:
        """The configuration as plain TOML-able data (what the run and the model card record)."""
        return dataclasses.asdict(self)


def _is_last_n(text: str) -> bool:
    head, _, count = text.partition(":")
    return head == "last" and count.isdigit() and int(count) > 0


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {where}{key} (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key} must be a table")
            if current.__dataclass_params__.frozen:  # a value type (PreprocessRecipe): replaced, not edited
                setattr(obj, key, _replaced(current, value, f"{where}{key}."))
            else:
                _apply(current, value, f"{where}{key}.")
        else:
            setattr(obj, key, _coerce(value, current, f"{where}{key}"))


def _replaced(current: Any, values: dict[str, Any], where: str) -> Any:
    """A frozen dataclass with ``values`` applied (its own validation errors become ConfigErrors)."""
    known = {f.name for f in fields(current)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown key {where}{unknown[0]} (known: {', '.join(sorted(known))})")
    coerced = {k: _coerce(v, getattr(current, k), f"{where}{k}") for k, v in values.items()}
    try:
        return dataclasses.replace(current, **coerced)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _coerce(value: Any, current: Any, key: str) -> Any:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false")
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number (got {value!r})")
        return float(value)
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer (got {value!r})")
        return value
    if isinstance(current, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(current):
            raise ConfigError(f"{key} must be a list of {len(current)} numbers")
        return tuple(float(v) for v in value)
    if isinstance(current, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list")
        return [str(v) for v in value]
    if isinstance(current, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table")
        return {str(k): str(v) for k, v in value.items()}
    return str(value)


def config_from_dict(values: dict[str, Any], base_dir: Path | None = None) -> TrainConfig:
    """Build a TrainConfig from nested values; relative data paths are taken from ``base_dir``."""
    config = TrainConfig()
    _apply(config, values, "")
    if base_dir is not None:
        for key in ("folders", "csv", "image_dir", "cache_dir"):
            text = getattr(config.data, key)
            if text and not Path(text).expanduser().is_absolute():
                setattr(config.data, key, str((base_dir / text).resolve()))
        for key in ("init_from",):
            text = getattr(config.model, key)
            if text and ("/" in text or text.startswith(".")) and not Path(text).is_absolute():
                setattr(config.model, key, str((base_dir / text).resolve()))
        if config.out and not Path(config.out).is_absolute() and "out" in values:
            config.out = str((base_dir / config.out).resolve())
    return config


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML config (or a run's resolved ``config.json``); relative paths are relative to the file."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(path.read_text(encoding="utf-8"))
        else:
            with open(path, "rb") as fh:
                values = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid config file ({exc})") from None
    return config_from_dict(values, base_dir=path.resolve().parent)
