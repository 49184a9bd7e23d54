"""Recalibrate instead of retrain: a site's own labelled films refit an installed bundle's temperature and
thresholds without touching its weights (``xrayviewer recalibrate``, the wizard's recalibration pages).

Operating points drift between sites, scanners and model versions (torchxrayvision issue #175; the Lunit
version study): a model whose ranking (AUC) still holds at a new site can sit at a different sensitivity
there. The site's films are scored by the bundle exactly as the viewer scores them (``imaging.open_image``
then ``engine.preprocess.preprocess``, float32), the temperature is refitted on them
(``engine.calibration.fit_temperature``) and the thresholds chosen on the recalibrated scores
(``training.metrics.choose_threshold``: the card's rule, or a sensitivity the site picks). The result is a
new version of the bundle with the same weights file (same sha256) and a card that records the site data,
the rule and the before/after numbers. Sensitivity and specificity of the new operating point are also
measured out of fold (two folds by patient: each film judged by a temperature and thresholds fitted on the
other half), since numbers measured on the films they were fitted on are optimistic.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from xrayviewer.engine.bundle import Bundle, BundleError, load_bundle, load_model, write_card
from xrayviewer.engine.calibration import fit_temperature, probabilities
from xrayviewer.training.config import THRESHOLD_RULES, ConfigError, DataConfig
from xrayviewer.training.events import CacheProgress, Callback, Message, RunFinished
from xrayviewer.training.metrics import (
    choose_threshold,
    label_array,
    labels_of,
    one_vs_rest,
    scored_classes,
)
from xrayviewer.training.run_records import new_run_dir
from xrayviewer.training.sources import DatasetError, Sample, read_samples

RULES = ("card", *THRESHOLD_RULES)
RESULT_FILE = "recalibration.json"
PLOT_FILE = "plots/reliability_before_after.png"


@dataclass
class RecalConfig:
    """What a recalibration needs (a JSON/TOML ``--config`` of ``xrayviewer recalibrate`` has these keys)."""

    bundle: str = ""  # installed bundle name or folder
    data: DataConfig = field(default_factory=DataConfig)  # the site's labelled films (splits are ignored)
    negative: str = "normal"  # binary bundles: the site label that means "no finding"
    rule: str = "card"  # card (the bundle's own rule) | youden | sensitivity
    target_sensitivity: float = 0.9  # rule "sensitivity"
    description: str = ""  # the site data in words, recorded in the card
    version: str = ""  # version of the new bundle; "" = "<old>+site<YYYYMMDD>"
    out: str = "runs"  # parent of the recalibration folder
    seed: int = 0  # the out-of-fold estimate's patient folds
    batch_size: int = 16

    def validate(self) -> None:
        """Raise ConfigError for values that cannot work."""
        if not self.bundle:
            raise ConfigError("give the bundle to recalibrate (--bundle NAME or folder)")
        if bool(self.data.folders) == bool(self.data.csv):
            raise ConfigError("give exactly one source of site films: --data DIR or --csv FILE")
        if self.rule not in RULES:
            raise ConfigError(f"rule must be one of {', '.join(RULES)} (got {self.rule!r})")
        if not 0 < self.target_sensitivity < 1:
            raise ConfigError(f"target_sensitivity must lie between 0 and 1 (got {self.target_sensitivity})")

    def resolved(self) -> dict[str, Any]:
        """Plain data (what the recalibration folder records)."""
        return asdict(self)


def recal_config_from_dict(values: dict[str, Any]) -> RecalConfig:
    """A RecalConfig from nested values (unknown keys are errors, as in training configs)."""
    from xrayviewer.training.config import _apply

    config = RecalConfig()
    _apply(config, values, "")
    return config


@dataclass
class RecalResult:
    """What a recalibration produced."""

    status: str  # completed | cancelled
    out_dir: Path
    bundle_dir: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def card_rule(bundle: Bundle) -> tuple[str, float]:
    """The threshold rule the bundle was made with: (youden | sensitivity, target sensitivity). Read from
    its training config, else from its threshold method's words; Youden J when neither says."""
    card = bundle.card
    evaluation = card.training_config.get("eval", {}) if isinstance(card.training_config, dict) else {}
    rule = evaluation.get("threshold") if isinstance(evaluation, dict) else None
    target = evaluation.get("target_sensitivity", 0.9) if isinstance(evaluation, dict) else 0.9
    if rule in THRESHOLD_RULES:
        return rule, float(target)
    match = re.search(r"sensitivity\s*>=\s*([0-9.]+)", card.threshold_method)
    if match:
        return "sensitivity", float(match.group(1))
    return "youden", 0.9


def _rule_words(rule: str, target: float) -> str:
    return "Youden J" if rule == "youden" else f"sensitivity >= {target:g}"


def site_classes(bundle: Bundle, negative: str) -> list[str]:
    """The class list the site films are read with: binary [negative, finding], else the card's classes."""
    card = bundle.card
    return [negative, card.classes[0]] if card.task == "binary" else list(card.classes)


def score_logits(
    bundle: Bundle, samples: list[Sample], batch_size: int, emit: Callback, cancel: threading.Event
) -> tuple[np.ndarray | None, list[int], list[tuple[str, str]]]:
    """Logits (N, K) of the readable films, their indices and the unreadable ones with reasons; None when
    cancelled. Images go through ``open_image`` and ``preprocess`` in float32, as in the viewer."""
    import torch

    from xrayviewer.engine.preprocess import preprocess
    from xrayviewer.imaging import ImageError, open_image

    model = load_model(bundle)
    recipe = bundle.card.preprocessing
    kept: list[int] = []
    unreadable: list[tuple[str, str]] = []
    out: list[np.ndarray] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        if pending:
            with torch.inference_mode():
                out.append(model(torch.from_numpy(np.stack(pending))).float().numpy())
            pending.clear()

    for i, sample in enumerate(samples):
        if cancel.is_set():
            return None, kept, unreadable
        try:
            tensor, _ = preprocess(open_image(sample.path), recipe)
        except (ImageError, OSError) as exc:
            unreadable.append((str(sample.path), (str(exc).strip().splitlines() or [type(exc).__name__])[0]))
        else:
            pending.append(tensor.astype(np.float32))
            kept.append(i)
            if len(pending) >= batch_size:
                flush()
        if (i + 1) % 8 == 0 or i + 1 == len(samples):
            emit(CacheProgress(i + 1, len(samples)))
    flush()
    width = 1 if bundle.card.task == "binary" else len(bundle.card.classes)
    logits = np.concatenate(out) if out else np.zeros((0, width), np.float32)
    return logits, kept, unreadable


def _scores(task: str, logits: np.ndarray, temperature: float) -> np.ndarray:
    p = probabilities(task, logits, temperature)
    return p[:, 0] if task == "binary" else p


def thresholds_for(
    task: str, classes: list[str], y: np.ndarray, p: np.ndarray, rule: str, target: float
) -> list[float]:
    """One threshold per scored class on scores ``p`` by ``rule``."""
    return [
        choose_threshold(*one_vs_rest(task, y, p, k), rule, target)
        for k in range(len(scored_classes(task, classes)))
    ]


def operating_point(yk: np.ndarray, pk: np.ndarray, threshold: float) -> dict[str, Any]:
    """Sensitivity and specificity of the decision ``score >= threshold`` (None when a side is absent)."""
    decided = pk >= threshold
    pos, neg = yk == 1, yk == 0
    return {
        "threshold": float(threshold),
        "sensitivity": float(decided[pos].mean()) if pos.any() else None,
        "specificity": float((~decided[neg]).mean()) if neg.any() else None,
        "positives": int(pos.sum()),
        "negatives": int(neg.sum()),
    }


def calibration_error(yk: np.ndarray, pk: np.ndarray, bins: int = 10) -> float | None:
    """Expected calibration error over equal-count bins: mean |observed rate - mean score|, weighted."""
    if len(yk) == 0:
        return None
    order = np.argsort(pk)
    parts = np.array_split(order, min(bins, len(order)))
    return float(sum(len(b) * abs(yk[b].mean() - pk[b].mean()) for b in parts if len(b)) / len(order))


def _state(
    task: str, classes: list[str], y: np.ndarray, p: np.ndarray, thresholds: list[float], temperature: float
) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    per_class = {}
    for k, name in enumerate(scored_classes(task, classes)):
        yk, pk = one_vs_rest(task, y, p, k)
        point = operating_point(yk, pk, thresholds[k])
        point["calibration_error"] = calibration_error(yk, pk)
        point["brier"] = float(np.mean((pk - yk) ** 2)) if len(yk) else None
        point["auc"] = float(roc_auc_score(yk, pk)) if len(np.unique(yk)) == 2 else None
        per_class[name] = point
    return {"temperature": float(temperature), "per_class": per_class}


def _folds(samples: list[Sample], seed: int) -> np.ndarray:
    """Fold 0 or 1 for each sample, whole patients together (seeded)."""
    patients = sorted({s.patient for s in samples})
    rng = np.random.default_rng(seed)
    rng.shuffle(patients)
    fold_of = {p: i % 2 for i, p in enumerate(patients)}
    return np.array([fold_of[s.patient] for s in samples])


def out_of_fold(
    task: str,
    classes: list[str],
    y: np.ndarray,
    logits: np.ndarray,
    folds: np.ndarray,
    rule: str,
    target: float,
) -> dict[str, Any] | None:
    """Sensitivity and specificity when each half's films are judged by the temperature and thresholds
    fitted on the other half (None when a half lacks a class)."""
    names = scored_classes(task, classes)
    decided = np.zeros((len(y), len(names)), dtype=bool)
    for fold in (0, 1):
        fit, judge = folds != fold, folds == fold
        y_fit = y[fit]
        if any(len(np.unique(labels_of(task, y_fit, k))) < 2 for k in range(len(names))):
            return None
        temperature = fit_temperature(task, logits[fit], y_fit)
        p_fit, p_judge = _scores(task, logits[fit], temperature), _scores(task, logits[judge], temperature)
        thresholds = thresholds_for(task, classes, y_fit, p_fit, rule, target)
        for k in range(len(names)):
            column = p_judge if task == "binary" else p_judge[:, k]
            decided[judge, k] = column >= thresholds[k]
    per_class = {}
    for k, name in enumerate(names):
        yk = labels_of(task, y, k)
        dk = decided[np.isfinite(y[:, k]), k] if task == "multilabel" else decided[:, k]
        pos, neg = yk == 1, yk == 0
        per_class[name] = {
            "sensitivity": float(dk[pos].mean()) if pos.any() else None,
            "specificity": float((~dk[neg]).mean()) if neg.any() else None,
        }
    return {"folds": 2, "by": "patient", "per_class": per_class}


def plot_before_after(
    task: str,
    classes: list[str],
    y: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    temperatures: tuple[float, float],
    path: Path,
) -> None:
    """Reliability diagrams of the scores before and after recalibration, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.calibration import calibration_curve

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), sharey=True)
    for ax, p, title, t in zip(axes, (before, after), ("Before", "After"), temperatures, strict=True):
        ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
        for k, name in enumerate(scored_classes(task, classes)):
            yk, pk = one_vs_rest(task, y, p, k)
            if len(np.unique(yk)) < 2:
                continue
            bins = int(np.clip(len(yk) // 10, 3, 10))
            observed, predicted = calibration_curve(yk, pk, n_bins=bins, strategy="quantile")
            ece = calibration_error(yk, pk)
            ax.plot(predicted, observed, "o-", label=f"{name} (calibration error {ece:.3f})")
        ax.set(
            title=f"{title} (temperature {t:.2f})", xlabel="score the model gives", xlim=(0, 1), ylim=(0, 1)
        )
        ax.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel("fraction of films that are positive")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _new_version(old: str) -> str:
    base = old.split("+site", 1)[0]
    return f"{base}+site{datetime.now().strftime('%Y%m%d')}"


def recalibrate(
    config: RecalConfig, callbacks: list[Callback] | None = None, cancel: threading.Event | None = None
) -> RecalResult:
    """Score the site films, refit temperature and thresholds, write the new bundle version with its
    report into a new folder under ``config.out``. Raises ConfigError / DatasetError / BundleError before
    anything is written."""
    callbacks, cancel = list(callbacks or []), cancel or threading.Event()

    def emit(event) -> None:
        for callback in callbacks:
            callback(event)

    config.validate()
    bundle = load_bundle(config.bundle)
    card = bundle.card
    if bundle.source == "torchxrayvision" or not bundle.path.is_dir():
        raise BundleError(
            f"{card.name} is not a bundle folder: only bundles with model.json can be recalibrated"
        )
    task = card.task
    classes = site_classes(bundle, config.negative)
    data = copy.deepcopy(config.data)
    data.split_column, data.patient_scope, data.limit_per_class = "", "global", 0
    samples, _, dropped = read_samples(data, classes, task)
    emit(Message("info", f"scoring {len(samples)} site images with {card.name} {card.version}"))
    logits, kept, unreadable = score_logits(bundle, samples, config.batch_size, emit, cancel)
    out_dir = new_run_dir(config.out, f"{card.name}-recal")
    if logits is None:
        emit(RunFinished("cancelled", str(out_dir)))
        return RecalResult("cancelled", out_dir)
    for path, why in unreadable:
        emit(Message("warning", f"skipped unreadable image {path}: {why}"))
    samples = [samples[i] for i in kept]
    if not samples:
        raise DatasetError("none of the site images could be read")
    from xrayviewer.training.data import targets_for

    y = label_array(task, targets_for(task, classes, samples))
    names = scored_classes(task, classes)
    for k, name in enumerate(names):
        if len(np.unique(labels_of(task, y, k))) < 2:
            raise DatasetError(
                f"the site images need both films with and without “{name}” to refit its threshold"
            )
    rule, target = card_rule(bundle) if config.rule == "card" else (config.rule, config.target_sensitivity)
    if config.rule == "sensitivity":
        target = config.target_sensitivity
    t_before = float(card.temperature or 1.0)
    p_before = _scores(task, logits, t_before)
    thr_before = [float(card.thresholds[c]) for c in names]
    t_after = fit_temperature(task, logits, y)
    p_after = _scores(task, logits, t_after)
    thr_after = thresholds_for(task, classes, y, p_after, rule, target)
    before = _state(task, classes, y, p_before, thr_before, t_before)
    after = _state(task, classes, y, p_after, thr_after, t_after)
    oof = out_of_fold(task, classes, y, logits, _folds(samples, config.seed), rule, target)
    counts = {c: int(sum(c in s.labels for s in samples)) for c in classes}
    version = config.version.strip() or _new_version(card.version)
    words = _rule_words(rule, target)
    record = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "from_version": card.version,
        "weights_sha256": card.weights_sha256,
        "site_data": config.description,
        "source": Path(config.data.folders or config.data.csv).name,
        "n": len(samples),
        "counts": counts,
        "unreadable": len(unreadable),
        "dropped": dropped,
        "rule": words,
        "rule_source": "the card's rule" if config.rule == "card" else "chosen by the site",
        "before": before,
        "after": after,
        "out_of_fold": oof,
    }
    new_card = replace(
        card,
        version=version,
        temperature=t_after,
        thresholds=dict(zip(names, thr_after, strict=True)),
        threshold_method=f"{words} on site data (n={len(samples)}), calibrated scores; recalibrated from "
        f"version {card.version}",
        training_data={
            **card.training_data,
            "recalibrations": [*card.training_data.get("recalibrations", []), record],
        },
        created=datetime.now().astimezone().isoformat(timespec="seconds"),
    )
    bundle_dir = out_dir / "bundle"
    bundle_dir.mkdir(parents=True)
    shutil.copy2(bundle.weights_path, bundle_dir / card.weights_file)
    write_card(bundle_dir, new_card)
    plot_before_after(task, classes, y, p_before, p_after, (t_before, t_after), out_dir / PLOT_FILE)
    with open(out_dir / "predictions.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "labels", *(f"{c} before" for c in names), *(f"{c} after" for c in names)])
        for i, s in enumerate(samples):
            b = np.atleast_1d(p_before[i]) if task == "binary" else p_before[i]
            a = np.atleast_1d(p_after[i]) if task == "binary" else p_after[i]
            writer.writerow([s.path, "|".join(s.labels), *(f"{v:.6f}" for v in b), *(f"{v:.6f}" for v in a)])
    summary = {
        **record,
        "name": card.name,
        "version": version,
        "classes": names,
        "task": task,
        "config": config.resolved(),
        "bundle": str(bundle_dir),
        "plot": str(out_dir / PLOT_FILE),
    }
    (out_dir / RESULT_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    emit(RunFinished("completed", str(out_dir), str(bundle_dir)))
    return RecalResult("completed", out_dir, bundle_dir, summary)
