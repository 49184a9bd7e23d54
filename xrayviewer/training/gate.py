"""Fit the applicability gate (``engine.gate``) on a trained backbone, and measure it.

On the frozen pooled features of a backbone bundle (``configs/pretrain-staged.toml``'s run):

1. image kinds: one-vs-rest logistic regressions, chest films (and re-encoded copies of them) against the
   generated non-chest images of ``training.gate_negatives``;
2. ``adult``: a logistic regression on chest films of children (Kermany) and adults (NIH, covid), on the
   originals and on copies resized and re-encoded at random, so that the resolution or encoding a data set
   happens to have cannot stand for the age;
3. the chest films' feature mean and (Ledoit-Wolf) precision matrix for the Mahalanobis distance.

Thresholds come from validation (films and negatives of validation patients and sources): the chest score
and the distance each keep ``chest_pass`` of the validation films, the adult threshold flags at most
``child_flag`` of the validation children. The test split is measured once, after that, per image kind and
per copy type, and written into the card, ``gate-report.md`` and thumbnail sheets of what the gate got wrong.

    .venv/bin/python -m xrayviewer.training.gate --config configs/gate.toml
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tomllib
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from xrayviewer.engine.bundle import (
    ModelCard,
    load_bundle,
    load_model,
    round_to_storage,
    save_bundle,
    sha256_of,
    write_card,
)
from xrayviewer.engine.devices import hardware_description, pick_device
from xrayviewer.engine.gate import ADULT, CHEST, KIND_REASONS, OOD_FILE, Gate
from xrayviewer.engine.preprocess import preprocess
from xrayviewer.imaging import ImageError, XRayImage, open_image
from xrayviewer.imaging.lut import render, to_uint8
from xrayviewer.imaging.raster import read_raster
from xrayviewer.training.cache import preload
from xrayviewer.training.gate_negatives import KINDS, generate
from xrayviewer.training.metrics import bootstrap_auc_ci

CLASSES = [CHEST, *KINDS, ADULT]


@dataclass
class GateConfig:
    """What ``fit_gate`` needs; paths relative to the config file."""

    backbone: str  # the backbone bundle folder
    table: str  # runs/tables/staged.csv (scripts/stage_tables.py)
    image_dir: str  # the shared data folder the table's paths are relative to
    negatives: str  # folder of the generated non-chest images (made when empty)
    out: str = "runs"  # the run folder is made below it; the bundle is its gate/ folder
    name: str = "gate"
    per_kind: int = 600
    seed: int = 0
    chest_pass: float = 0.998  # share of validation chest films each of the two tests keeps
    child_flag: float = 0.02  # largest share of validation children's films called adult
    adult_keep: float = 0.995  # share of validation adults' films the adult threshold must keep calling adult
    features: str = ""  # a previous run's features.npz to reuse (same backbone and images): refits in minutes
    copies: int = 1  # re-encoded copies per film (for fitting and for measuring)
    batch_size: int = 64
    regularisation: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0])  # C values tried on val


def load_gate_config(path: str | Path) -> GateConfig:
    """Read a TOML gate config; relative paths are relative to the file."""
    path = Path(path)
    with open(path, "rb") as fh:
        values = tomllib.load(fh)
    known = {f.name for f in fields(GateConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]} in {path} (known: {', '.join(sorted(known))})")
    for key in ("backbone", "table", "image_dir", "negatives", "out"):
        if key in values and not Path(values[key]).is_absolute():
            values[key] = str((path.parent / values[key]).resolve())
    return GateConfig(**values)


# ---------------------------------------------------------------- the images


@dataclass
class Item:
    """One image the gate is fitted or measured on."""

    path: Path
    split: str
    kind: str  # CHEST or a negative kind
    copy: str = "original"  # original | a description of the re-encoded copy
    dataset: str = ""  # kermany | nih | nih-extra | covid | negatives
    adult: int = -1  # 1 adult, 0 child, -1 not a film


def chest_items(config: GateConfig) -> list[Item]:
    """Every staged film with its split, data set and age group."""
    with open(config.table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [Item(Path(config.image_dir) / r["file"], r["split"], CHEST, dataset=r["dataset"],
                 adult=int(r["age_group"] == "adult")) for r in rows]


def negative_items(config: GateConfig, films: list[Item]) -> list[Item]:
    """The generated non-chest images (generated first when the folder has no table)."""
    folder = Path(config.negatives)
    table = folder / "negatives.csv"
    if not table.is_file():
        by_split: dict[str, list[Path]] = defaultdict(list)
        for item in films:
            by_split[item.split].append(item.path)
        generate(folder, dict(by_split), config.per_kind, config.seed)
    with open(table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [Item(folder / r["file"], r["split"], r["kind"], dataset="negatives") for r in rows]


def reencoded(path: Path, rng: np.random.Generator) -> tuple[XRayImage, str]:
    """A copy of a film as another site might store it: resized (long side 64-1024 px, log-uniform; sometimes
    squashed square), saved as JPEG (quality 20-95) or PNG, read back through ``imaging``."""
    picture = to_uint8(render(open_image(path)))
    rows, cols = picture.shape
    side = int(np.rint(np.exp(rng.uniform(np.log(64), np.log(1024)))))  # log-uniform: small copies are common
    squash = rng.random() < 0.3
    scale = side / max(rows, cols)
    size = (side, side) if squash else (max(16, round(cols * scale)), max(16, round(rows * scale)))
    small = cv2.resize(picture, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if rng.random() < 0.6:
        quality = int(rng.integers(20, 96))
        ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        described, fmt = f"{side} px JPEG q{quality}", "JPEG"
    else:
        ok, data = cv2.imencode(".png", small)
        described, fmt = f"{side} px PNG", "PNG"
    assert ok
    return read_raster(path, data.tobytes(), fmt), described + (" squashed" if squash else "")


# ---------------------------------------------------------------- features


@torch.no_grad()
def features_of(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features (N, C) and the backbone head's logits (N, K) for model inputs (N, 1, S, S)."""
    pooled, logits = [], []
    for start in range(0, len(inputs), batch_size):
        z, maps = model.forward_with_maps(inputs[start : start + batch_size].float())
        pooled.append(maps.mean(dim=(2, 3)).numpy())
        logits.append(z.numpy())
    return np.concatenate(pooled), np.concatenate(logits)


def model_inputs(items: list[Item], card: ModelCard, config: GateConfig) -> tuple[list[Item], torch.Tensor]:
    """Cached model inputs of the files (unreadable ones dropped), then one re-encoded copy per film."""
    loaded = preload([i.path for i in items], card.preprocessing, workers=2)
    kept = [items[k] for k in loaded.kept]
    rng = np.random.default_rng(config.seed + 1)
    copies, tensors = [], []
    for item in [i for i in kept if i.kind == CHEST] * config.copies:
        try:
            image, described = reencoded(item.path, rng)
        except ImageError:
            continue
        copies.append(replace(item, copy=described))
        tensors.append(torch.from_numpy(preprocess(image, card.preprocessing)[0]))
    if not tensors:
        return kept, loaded.images
    return kept + copies, torch.cat([loaded.images, torch.stack(tensors)])


# ---------------------------------------------------------------- fitting


def _logistic(x: np.ndarray, y: np.ndarray, c: float, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=2000,
                                                              random_state=seed)).fit(x, y)


def _as_linear(pipeline) -> tuple[np.ndarray, float]:
    """(w, b) on raw features equal to a StandardScaler → LogisticRegression pipeline."""
    scaler, model = pipeline[0], pipeline[1]
    w = model.coef_[0] / scaler.scale_
    return w, float(model.intercept_[0] - np.dot(w, scaler.mean_))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def fit_heads(x: np.ndarray, items: list[Item], config: GateConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Weights (K, C) and biases (K,) of the gate head, and what was chosen (C per head) on validation."""
    from sklearn.metrics import log_loss

    train = np.array([i.split == "train" for i in items])
    val = np.array([i.split == "val" for i in items])
    weights, biases, chosen = [], [], {}
    for name in CLASSES:
        if name == ADULT:
            rows = np.array([i.adult >= 0 for i in items])
            y = np.array([max(i.adult, 0) for i in items])
        else:
            rows = np.ones(len(items), bool)
            y = np.array([int(i.kind == name) for i in items])
        best = None
        for c in config.regularisation:
            pipeline = _logistic(x[train & rows], y[train & rows], c, config.seed)
            loss = log_loss(y[val & rows], pipeline.predict_proba(x[val & rows])[:, 1], labels=[0, 1])
            if best is None or loss < best[0]:
                best = (loss, c, pipeline)
        assert best is not None
        w, b = _as_linear(best[2])
        weights.append(w)
        biases.append(b)
        chosen[name] = {"C": best[1], "val_log_loss": round(best[0], 4)}
    return np.array(weights), np.array(biases), chosen


def fit_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Ledoit-Wolf precision matrix of the chest films' features."""
    from sklearn.covariance import LedoitWolf

    estimate = LedoitWolf().fit(x)
    return estimate.location_.astype(np.float32), estimate.precision_.astype(np.float32)


# ---------------------------------------------------------------- the run


def fit_gate(config: GateConfig) -> Path:
    """Fit, measure and write the gate bundle; returns the run folder."""
    started = datetime.now()
    run_dir = Path(config.out) / f"{config.name}-{started:%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True)
    backbone = load_bundle(config.backbone)
    model = load_model(backbone)
    items, x = _features(config, backbone, model)
    np.savez_compressed(run_dir / "features.npz", x=x.astype(np.float32),
                        items=json.dumps([{**asdict(i), "path": str(i.path)} for i in items]),
                        backbone=backbone.card.weights_sha256)
    print(f"gate: {len(items)} images ({sum(i.kind == CHEST for i in items)} chest films and copies)",
          file=sys.stderr)
    weights, biases, chosen = fit_heads(x, items, config)
    network = load_model(backbone)
    network.classifier = torch.nn.Linear(x.shape[1], len(CLASSES))
    with torch.no_grad():
        network.classifier.weight.copy_(torch.from_numpy(weights))
        network.classifier.bias.copy_(torch.from_numpy(biases))
    round_to_storage(network, backbone.card.weights_dtype)  # measure exactly what the bundle will hold
    head = network.classifier
    scores = _sigmoid(x @ head.weight.detach().numpy().T.astype(np.float64) + head.bias.detach().numpy())
    is_chest = np.array([i.kind == CHEST for i in items])
    train = np.array([i.split == "train" for i in items])
    mean, precision = fit_statistics(x[train & is_chest])
    distances = _mahalanobis(x, mean, precision)
    thresholds, fitted = choose_thresholds(scores, distances, items, config)
    bundle_dir = run_dir / "gate"
    saved = save_bundle(bundle_dir, network, gate_card(config, backbone, thresholds, fitted, chosen, started))
    from safetensors.numpy import save_file

    save_file({"mean": mean, "precision": precision}, str(bundle_dir / OOD_FILE))
    measured = measure(scores, distances / fitted["ood_threshold"], items, thresholds)
    section = {"ood_threshold": fitted["ood_threshold"], "ood_file": OOD_FILE,
               "ood_sha256": sha256_of(bundle_dir / OOD_FILE), "fitted": fitted}
    bundle = write_card(bundle_dir, replace(saved.card, metrics=measured["card"], gate=section))
    Gate(bundle, device="cpu")  # the engine reads what was written
    write_gate_report(run_dir, measured, items, scores, distances / fitted["ood_threshold"], thresholds)
    (run_dir / "metrics.json").write_text(json.dumps(measured, indent=2, default=float) + "\n")
    print(f"gate bundle: {bundle_dir}\nreport: {run_dir / 'gate-report.md'}", file=sys.stderr)
    return run_dir


def _features(config: GateConfig, backbone, model: torch.nn.Module) -> tuple[list[Item], np.ndarray]:
    """The images and their pooled features: computed, or read from ``config.features`` when it was made
    with the same backbone weights."""
    if config.features:
        saved = np.load(config.features)
        if str(saved["backbone"]) != backbone.card.weights_sha256:
            raise ValueError(f"{config.features} was made with other backbone weights")
        items = [Item(**{**row, "path": Path(row["path"])}) for row in json.loads(str(saved["items"]))]
        return items, saved["x"]
    films = chest_items(config)
    items, inputs = model_inputs(films + negative_items(config, films), backbone.card, config)
    return items, features_of(model, inputs, config.batch_size)[0]


def _mahalanobis(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    centred = x.astype(np.float64) - mean
    return np.sqrt(np.maximum(np.einsum("nc,cd,nd->n", centred, precision.astype(np.float64), centred), 0))


def choose_thresholds(scores: np.ndarray, distances: np.ndarray, items: list[Item],
                      config: GateConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Chest score and distance limits keeping ``chest_pass`` of the validation films (originals and
    copies). The adult threshold lies between the score that calls at most ``child_flag`` of the validation
    children adult and the one that still calls ``adult_keep`` of the validation adults adult: halfway in
    logit space when they leave room (the widest margin on both sides), else the children's bound."""
    val_chest = np.array([i.split == "val" and i.kind == CHEST for i in items])
    chest = CLASSES.index(CHEST)
    t_chest = float(np.quantile(scores[val_chest, chest], 1 - config.chest_pass))
    d_max = float(np.quantile(distances[val_chest], config.chest_pass))
    adult_scores = scores[:, CLASSES.index(ADULT)]
    children = np.array([i.split == "val" and i.adult == 0 for i in items])
    adults = np.array([i.split == "val" and i.adult == 1 for i in items])
    low = float(np.quantile(adult_scores[children], 1 - config.child_flag))
    high = float(np.quantile(adult_scores[adults], 1 - config.adult_keep))
    t_adult = float(_sigmoid(0.5 * (_logit(low) + _logit(high)))) if high > low else low
    thresholds = {name: 0.5 for name in CLASSES} | {CHEST: t_chest, ADULT: t_adult}
    fitted = {
        "ood_threshold": d_max,
        "rule": (f"chest score and Mahalanobis distance each keep {config.chest_pass:.1%} of the validation "
                 f"chest films (originals and re-encoded copies, n={int(val_chest.sum())}); adult threshold "
                 f"halfway (logit) between calling {config.child_flag:.0%} of the validation children adult "
                 f"(n={int(children.sum())}) and {config.adult_keep:.1%} of the validation adults "
                 f"(n={int(adults.sum())})"),
        "adult_bounds": [low, high],
    }
    return thresholds, fitted


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


def _passes(scores: np.ndarray, ratio: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    return (scores[:, CLASSES.index(CHEST)] >= thresholds[CHEST]) & (ratio <= 1.0)


def measure(scores: np.ndarray, ratio: np.ndarray, items: list[Item], thresholds: dict[str, float]) -> dict:
    """Test-split results: refusal per image kind, chest films passed per data set and copy type, adults
    and children called adult, the adult head's AUC."""
    test = np.array([i.split == "test" for i in items])
    passed = _passes(scores, ratio, thresholds)
    kinds = {}
    for kind in [CHEST, *KINDS]:
        rows = test & np.array([i.kind == kind for i in items])
        kept = float(passed[rows].mean()) if rows.any() else None
        share = kept if kind == CHEST or kept is None else 1 - kept
        key = "passed" if kind == CHEST else "refused"
        kinds[kind] = {"n": int(rows.sum()), key: None if share is None else round(share, 4)}
    chest_rows = test & np.array([i.kind == CHEST for i in items])
    by_group = {}
    for dataset in sorted({i.dataset for i in items if i.kind == CHEST}):
        for copy in ("original", "copy"):
            original = copy == "original"
            rows = chest_rows & np.array([i.dataset == dataset and (i.copy == "original") == original
                                          for i in items])
            adult_called = scores[rows & passed, CLASSES.index(ADULT)] >= thresholds[ADULT]
            by_group[f"{dataset} {copy}"] = {
                "n": int(rows.sum()), "passed": round(float(passed[rows].mean()), 4),
                "called_adult": round(float(adult_called.mean()), 4) if adult_called.size else None,
            }
    adults = np.array([i.adult for i in items])
    known = chest_rows & (adults >= 0)
    auc_ci = bootstrap_auc_ci(adults[known], scores[known, CLASSES.index(ADULT)], 500, 0)
    from sklearn.metrics import roc_auc_score

    flagged = {}
    for group, value in (("adults", 1), ("children", 0)):
        rows = chest_rows & passed & (adults == value)
        flagged[f"{group} called adult"] = round(float(
            (scores[rows, CLASSES.index(ADULT)] >= thresholds[ADULT]).mean()), 4)
    others = test & ~np.array([i.kind == CHEST for i in items])
    card = {
        "split": "test",
        "n": int(test.sum()),
        "chest_films_passed": kinds[CHEST]["passed"],
        "non_chest_refused": round(float(1 - passed[others].mean()), 4),
        "refused_per_kind": {k: v["refused"] for k, v in kinds.items() if k != CHEST},
        "adult_auroc": round(float(roc_auc_score(adults[known], scores[known, CLASSES.index(ADULT)])), 4),
        "adult_auroc_ci95": [round(v, 4) for v in auc_ci] if auc_ci else None,
        **flagged,
        "by_group": by_group,
    }
    return {"kinds": kinds, "by_group": by_group, "card": card}


def gate_card(config: GateConfig, backbone, thresholds: dict[str, float], fitted: dict, chosen: dict,
              started: datetime) -> ModelCard:
    """The gate's model card (metrics and the statistics' digest are filled in after measuring)."""
    kinds = ", ".join(KINDS)
    return ModelCard(
        name=config.name,
        version=started.strftime("%Y.%m.%d"),
        task="multilabel",
        classes=list(CLASSES),
        architecture=backbone.card.architecture,
        architecture_args=dict(backbone.card.architecture_args),
        thresholds=thresholds,
        threshold_method=fitted["rule"],
        preprocessing=backbone.card.preprocessing,
        training_data={
            "backbone": f"{backbone.name} {backbone.card.version} (weights sha256 "
                        f"{backbone.card.weights_sha256[:12]}…)",
            "chest films": "every staged film (runs/tables/staged.csv) and one re-encoded copy of each "
                           "(resized to 64-1024 px, JPEG q20-95 or PNG, some squashed square)",
            "non-chest images": f"{config.per_kind} per kind ({kinds}) from scikit-image, scikit-learn, "
                                "matplotlib and pydicom sample data, generated pages, charts, screenshots "
                                "and slices, and parts / rotations of our films; split by source",
            "heads": chosen,
            "hardware": hardware_description(pick_device("cpu")),
            "fit_seconds": round((datetime.now() - started).total_seconds(), 1),
        },
        training_config={k: v for k, v in asdict(config).items()},
        description="Applicability gate: is this a frontal chest radiograph, and a child's or an adult's? "
                    "Kinds it refuses: " + "; ".join(f"{k}: {v}" for k, v in KIND_REASONS.items()),
        limitations="Fitted on generated and sample non-chest images, not on real photographs of every kind "
                    "nor on radiographs of other body parts (it has seen none: the header's body part and "
                    "the feature distance stand in for those); child/adult from anatomy learned on one "
                    "children's hospital and adult NIH and covid films.",
        role="gate",
        weights_dtype=backbone.card.weights_dtype,
    )


# ---------------------------------------------------------------- the report


def _sheet(items: list[Item], path: Path, captions: list[str], side: int = 112, columns: int = 8) -> None:
    """Thumbnails with captions in a grid PNG (nothing written for no items)."""
    if not items:
        return
    tiles = []
    for item, caption in zip(items, captions, strict=True):
        try:
            picture = to_uint8(render(open_image(item.path)))
        except ImageError:
            picture = np.zeros((side, side), np.uint8)
        tile = cv2.resize(picture, (side, side), interpolation=cv2.INTER_AREA)
        tile = cv2.cvtColor(tile, cv2.COLOR_GRAY2BGR)
        tile = cv2.copyMakeBorder(tile, 0, 28, 0, 0, cv2.BORDER_CONSTANT, value=(20, 20, 20))
        for line, text in enumerate(caption.split("\n")[:2]):
            cv2.putText(tile, text[:22], (2, side + 11 + 12 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.32,
                        (230, 230, 230), 1, cv2.LINE_AA)
        tiles.append(tile)
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    cv2.imwrite(str(path), np.vstack(rows))


def write_gate_report(run_dir: Path, measured: dict, items: list[Item], scores: np.ndarray, ratio: np.ndarray,
                      thresholds: dict[str, float]) -> None:
    """``gate-report.md`` with the tables, plus sheets of refused test films and passed test non-films."""
    test = [k for k, i in enumerate(items) if i.split == "test"]
    passed = _passes(scores, ratio, thresholds)
    refused_films = [k for k in test if items[k].kind == CHEST and not passed[k]]
    passed_others = [k for k in test if items[k].kind != CHEST and passed[k]]

    def caption(k: int) -> str:
        return f"{items[k].dataset} {items[k].kind}\nchest {scores[k, 0]:.2f} dist {ratio[k]:.2f}"

    for name, wrong in (("refused_films.png", refused_films), ("passed_non_films.png", passed_others)):
        _sheet([items[k] for k in wrong[:64]], run_dir / name, [caption(k) for k in wrong[:64]])
    out = io.StringIO()
    out.write("# Applicability gate: test split\n\n| image kind | n | passed / refused |\n|---|---:|---:|\n")
    for kind, row in measured["kinds"].items():
        value = row.get("passed", row.get("refused"))
        shown = "–" if value is None else f"{'passed' if kind == CHEST else 'refused'} {value:.1%}"
        out.write(f"| {kind} | {row['n']} | {shown} |\n")
    out.write("\n| films (test) | n | passed | called adult |\n|---|---:|---:|---:|\n")
    for group, row in measured["by_group"].items():
        adult = "–" if row["called_adult"] is None else f"{row['called_adult']:.1%}"
        out.write(f"| {group} | {row['n']} | {row['passed']:.1%} | {adult} |\n")
    out.write(f"\nRefused test films: {len(refused_films)} (refused_films.png); passed test non-films: "
              f"{len(passed_others)} (passed_non_films.png).\n\n")
    counts = Counter(items[k].copy for k in refused_films)
    out.write("Refused films by copy type: " + ", ".join(f"{c}: {n}" for c, n in counts.most_common(12)))
    (run_dir / "gate-report.md").write_text(out.getvalue(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """``python -m xrayviewer.training.gate --config configs/gate.toml``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    fit_gate(load_gate_config(args.config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
