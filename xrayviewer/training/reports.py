"""Run report: matplotlib (Agg) PNG plots, predictions.csv, and report.md / report.html with the numbers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # never a window: this runs headless and in worker threads

import numpy as np
from matplotlib import pyplot as plt
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

from xrayviewer.engine.bundle import Bundle
from xrayviewer.training.events import Callback, Message
from xrayviewer.training.metrics import one_vs_rest, predicted_labels, scored_classes

if TYPE_CHECKING:
    from xrayviewer.training.data import PreparedData

PLOTS = "plots"


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Train/val loss and validation AUC per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_loss.legend()
    ax_auc.plot(epochs, [np.nan if h["val_auc"] is None else h["val_auc"] for h in history], "o-", color="C2")
    ax_auc.set(xlabel="epoch", ylabel="ROC-AUC", title="Validation ROC-AUC (macro)", ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_roc(task: str, classes: list[str], y: np.ndarray, p: np.ndarray, title: str, path: Path) -> None:
    """One ROC curve per scored class (scikit-learn's RocCurveDisplay)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for k, name in enumerate(scored_classes(task, classes)):
        yk, pk = one_vs_rest(task, y, p, k)
        if len(np.unique(yk)) == 2:
            RocCurveDisplay.from_predictions(yk, pk, name=name, ax=ax)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability(
    task: str, classes: list[str], y: np.ndarray, p: np.ndarray, title: str, path: Path, bins: int = 10
) -> None:
    """Reliability diagram of the calibrated scores, one curve per scored class (quantile bins)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for k, name in enumerate(scored_classes(task, classes)):
        yk, pk = one_vs_rest(task, y, p, k)
        if len(np.unique(yk)) == 2:
            CalibrationDisplay.from_predictions(yk, pk, n_bins=bins, strategy="quantile", name=name, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(
    task: str, classes: list[str], y: np.ndarray, pred: np.ndarray, title: str, path: Path
) -> None:
    """Confusion matrix (multilabel: one 2×2 per class)."""
    if task == "multilabel":
        fig, axes = plt.subplots(1, len(classes), figsize=(3.2 * len(classes), 3.2), squeeze=False)
        for k, name in enumerate(classes):
            known = np.isfinite(y[:, k])  # images whose label of this class is unknown are not counted
            ConfusionMatrixDisplay.from_predictions(
                y[known, k].astype(int),
                pred[known, k],
                labels=[0, 1],
                display_labels=["no", "yes"],
                ax=axes[0, k],
                colorbar=False,
            )
            axes[0, k].set_title(name)
    else:
        fig, ax = plt.subplots(figsize=(4 + 0.4 * len(classes), 4 + 0.4 * len(classes)))
        ConfusionMatrixDisplay.from_predictions(
            y, pred, labels=list(range(len(classes))), display_labels=classes, ax=ax, colorbar=False
        )
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_cam_grid(bundle: Bundle, paths: list[Path], truth: list[str], path: Path) -> None:
    """Test images with the heat map the viewer shows first (``engine.cam.explained_finding``, at its
    strength), its score and the true label (uses the Predictor, i.e. exactly what the viewer will show)."""
    from xrayviewer.engine.cam import blend, compose_overlay, explained_finding
    from xrayviewer.engine.predictor import Predictor
    from xrayviewer.imaging.lut import render

    predictor = Predictor(bundle, device="cpu")
    cols = min(4, len(paths))
    rows = -(-len(paths) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, result, label in zip(axes.ravel(), predictor.predict_many(paths), truth, strict=False):
        if result.prediction is None or result.image is None:
            continue
        pred = result.prediction
        choice = explained_finding([pred])
        assert choice is not None  # one prediction always explains a finding
        finding = choice[1]
        ax.imshow(blend(render(result.image), compose_overlay(pred, finding, alpha=0.45)))
        call = "positive" if finding in pred.positive else "below threshold"
        ax.set_title(f"{finding} {pred.scores[finding]:.2f} ({call})\ntrue: {label}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_predictions(
    path: Path, data: PreparedData, scores: dict[str, np.ndarray], names: list[str]
) -> None:
    """``predictions.csv``: split, image path, true labels and the calibrated score of each class."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["split", "path", "labels", *names])
        for split, values in scores.items():
            rows = values.reshape(len(values), -1)
            for sample, row in zip(data.splits[split].samples, rows, strict=True):
                writer.writerow([split, sample.path, "|".join(sample.labels), *(f"{v:.6f}" for v in row)])


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _markdown(
    summary: dict[str, Any], data: PreparedData, plots: list[tuple[str, str]], bundle: Bundle
) -> str:
    card = bundle.card
    lines = [
        f"# Training report: {card.name}",
        "",
        f"Status **{summary['status']}**, best epoch {summary['best_epoch']} "
        f"(validation {summary['early_stop_metric']} {_fmt(summary['best_metric'])}). "
        f"Bundle: `{bundle.path}` ({card.architecture}/{card.head}, {card.input_size} px "
        f"{card.preprocessing.geometry}, equalize {card.preprocessing.equalize}).",
        f"Temperature {summary['temperature']:.3f}; thresholds ({card.threshold_method}): "
        + ", ".join(f"{k} {v:.3f}" for k, v in summary["thresholds"].items()),
        "",
        "## Data",
        "",
        "```",
        *data.summary.lines(),
        "```",
        "",
        "## Metrics",
        "",
        "| split | n | accuracy | precision | recall | specificity | F1 | macro AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split in ("val", "test"):
        m = summary[split]
        lines.append(
            f"| {split} | {m['n']} | {_fmt(m['accuracy'])} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | "
            f"{_fmt(m['specificity'])} | {_fmt(m['f1'])} | {_fmt(m['auc_macro'])} |"
        )
    lines += [
        "",
        "| split | class | ROC-AUC | 95 % CI (bootstrap) | PR-AUC | positives |",
        "|---|---|---|---|---|---|",
    ]
    for split in ("val", "test"):
        for name, c in summary[split]["per_class"].items():
            ci = "–" if not c["auc_ci95"] else f"{c['auc_ci95'][0]:.3f}–{c['auc_ci95'][1]:.3f}"
            lines.append(
                f"| {split} | {name} | {_fmt(c['auc'])} | {ci} | {_fmt(c['pr_auc'])} | {c['positives']} |"
            )
    lines += ["", "## Plots", ""]
    lines += [f"### {title}\n\n![{title}]({file})\n" for title, file in plots]
    return "\n".join(lines) + "\n"


def _html(markdown: str) -> str:
    """A self-contained page rendered from the markdown (markdown-it, tables on)."""
    from markdown_it import MarkdownIt

    style = "body{font-family:sans-serif;max-width:1100px;margin:auto} td,th{border:1px solid #ccc}"
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    head = f"<!doctype html>\n<meta charset='utf-8'>\n<title>Training report</title>\n<style>{style}</style>"
    return f"{head}\n{body}"


def write_report(
    run_dir: Path,
    bundle: Bundle,
    data: PreparedData,
    summary: dict[str, Any],
    scores: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    emit: Callback,
    cam_images: int = 8,
) -> Path:
    """Write plots/, predictions.csv, report.md and report.html into ``run_dir``; returns report.md."""
    folder = run_dir / PLOTS
    folder.mkdir(exist_ok=True)
    task, classes = bundle.card.task, data.classes
    thresholds = list(summary["thresholds"].values())
    plots = [("Loss and validation AUC per epoch", f"{PLOTS}/curves.png")]
    plot_curves(summary["history"], run_dir / plots[0][1])
    for split in ("val", "test"):
        roc = (f"ROC curves ({split})", f"{PLOTS}/roc_{split}.png")
        plot_roc(task, classes, labels[split], scores[split], roc[0], run_dir / roc[1])
        cm = (f"Confusion matrix ({split})", f"{PLOTS}/confusion_{split}.png")
        pred = predicted_labels(task, scores[split], thresholds)
        plot_confusion(task, classes, labels[split], pred, cm[0], run_dir / cm[1])
        rel = (f"Reliability of the calibrated scores ({split})", f"{PLOTS}/reliability_{split}.png")
        plot_reliability(task, classes, labels[split], scores[split], rel[0], run_dir / rel[1])
        plots += [roc, cm, rel]
    if cam_images > 0:
        test = data.splits["test"].samples[:: max(1, len(data.splits["test"].samples) // cam_images)][
            :cam_images
        ]
        try:
            grid = ("Test predictions with CAM", f"{PLOTS}/cam_grid.png")
            plot_cam_grid(
                bundle,
                [s.path for s in test],
                ["|".join(s.labels) or "none" for s in test],
                run_dir / grid[1],
            )
            plots.append(grid)
        except (RuntimeError, ValueError, OSError) as exc:
            emit(Message("warning", f"CAM grid not drawn: {exc}"))
    write_predictions(run_dir / "predictions.csv", data, scores, list(bundle.card.classes))
    markdown = _markdown(summary, data, plots, bundle)
    (run_dir / "report.md").write_text(markdown, encoding="utf-8")
    (run_dir / "report.html").write_text(_html(markdown), encoding="utf-8")
    return run_dir / "report.md"
