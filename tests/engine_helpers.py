"""Test helpers: a real-format model bundle with random weights (no trained weights ship yet), and real
engine ``Prediction``s and ``ModelCard``s built by hand.

Batch-norm statistics are re-estimated on the given inputs and the last layer is rescaled so that logits
spread about one unit over them: scores then vary from film to film like a trained model's do (a raw random
DenseNet saturates every score, and a merely re-normalised one barely moves).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import save_file

from xrayviewer.engine.bundle import Bundle, ModelCard, load_model, save_bundle, sha256_of, write_card
from xrayviewer.engine.gate import ADULT, CHEST, OOD_FILE
from xrayviewer.engine.models import build_model
from xrayviewer.engine.predictor import Prediction
from xrayviewer.engine.preprocess import Geometry, PreprocessRecipe
from xrayviewer.training.gate_negatives import KINDS


def make_bundle(
    directory: Path,
    inputs: list[np.ndarray],
    *,
    arch: str = "xrv-densenet121",
    head: str = "linear",
    classes: tuple[str, ...] = ("Pneumonia", "Effusion", "Cardiomegaly"),
    task: str = "multilabel",
    recipe: PreprocessRecipe | None = None,
    temperature: float | None = None,
    seed: int = 0,
    logit_offsets: dict[str, float] | None = None,
    card_fields: dict[str, Any] | None = None,
) -> Bundle:
    """Save a randomly initialised ``arch``/``head`` bundle whose BN statistics come from ``inputs``;
    ``logit_offsets`` (class → added to its logit) make a class score high or low, ``card_fields`` are
    further ``ModelCard`` fields (e.g. views, age_group, negative_classes)."""
    torch.manual_seed(seed)
    model = build_model(arch, len(classes), head=head)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average over the calibration batch
    batch = torch.from_numpy(np.stack(inputs))
    model.train()
    with torch.no_grad():
        model(batch)
        model.eval()
        logits = model(batch)
        last = model.classifier if isinstance(model.classifier, torch.nn.Linear) else model.classifier[-1]
        spread = logits.std(dim=0).clamp_min(1e-6) if len(inputs) > 1 else torch.ones(len(classes))
        last.weight.div_(spread[:, None])
        last.bias.copy_((last.bias - logits.mean(dim=0)) / spread)
        for name, offset in (logit_offsets or {}).items():
            last.bias[classes.index(name)] += offset
    card = ModelCard(
        name=directory.name,
        version="0.0-test",
        task=task,
        classes=list(classes),
        architecture=arch,
        architecture_args={"head": head},
        thresholds={c: 0.5 for c in classes},
        threshold_method="fixed 0.5 (untrained test model)",
        preprocessing=recipe or PreprocessRecipe(),
        temperature=temperature,
        metrics={"split": "none", "n": 0},
        training_data={"sources": "none: random weights for tests"},
        **(card_fields or {}),
    )
    return save_bundle(directory, model, card)


def make_prediction(
    model: str,
    scores: dict[str, float],
    positive: list[str] | None = None,
    *,
    thresholds: dict[str, float] | None = None,
    negative: tuple[str, ...] = (),
    cams: dict[str, np.ndarray] | None = None,
    total_ms: float = 12.0,
) -> Prediction:
    """A real engine ``Prediction`` of a 16 × 16 film; ``positive`` defaults to the scores at or above
    their thresholds (0.5 unless given), CAMs only where given."""
    thresholds = thresholds or {c: 0.5 for c in scores}
    return Prediction(
        model=model,
        version="1",
        classes=list(scores),
        scores=scores,
        thresholds=thresholds,
        positive=[c for c in scores if scores[c] >= thresholds[c]] if positive is None else positive,
        top=max(scores, key=scores.__getitem__),
        cams=cams or {},
        geometry=Geometry((16, 16), (0, 0, 16, 16), 4),
        device="cpu",
        timings={"total": total_ms},
        backend="torch",
        negative_classes=list(negative),
    )


def make_card(name: str, classes: tuple[str, ...] | None = None, **fields: Any) -> ModelCard:
    """A real ``ModelCard`` for a model that is never run (classes default to one named after it)."""
    classes = classes or (name,)
    return ModelCard(
        name=name,
        version="1",
        task="binary" if len(classes) == 1 else "multilabel",
        classes=list(classes),
        architecture="tiny-densenet",
        thresholds={c: 0.5 for c in classes},
        threshold_method="fixed",
        **fields,
    )


GATE_CLASSES = [CHEST, *KINDS, ADULT]


def gate_bundle(folder: Path, offsets: dict[str, float], spread: float = 1e-6, name: str = "gate") -> Bundle:
    """A tiny gate whose scores are pinned by logit offsets (every kind not named scores low); ``spread``
    scales the feature precision (tiny: every image is near the training films; large: every image is far)."""
    rng = np.random.default_rng(0)
    inputs = [(rng.random((1, 64, 64), dtype=np.float32) * 2 - 1) * 1024 for _ in range(4)]
    bundle = make_bundle(folder / name, inputs, arch="tiny-densenet", classes=tuple(GATE_CLASSES),
                         recipe=PreprocessRecipe(size=64), card_fields={"role": "gate"})
    model = load_model(bundle)
    with torch.no_grad():  # scores that do not depend on the image: logit = the offset (or -20)
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([offsets.get(c, -20.0) for c in GATE_CLASSES]))
    bundle = save_bundle(bundle.path, model, bundle.card)
    channels = 8 * 2 + 16  # tiny-densenet: its pooled feature width (checked below by the gate itself)
    path = bundle.path / OOD_FILE
    precision = np.eye(channels, dtype=np.float32) * spread
    save_file({"mean": np.zeros(channels, np.float32), "precision": precision}, str(path))
    section = {"ood_threshold": 1.0, "ood_file": OOD_FILE, "ood_sha256": sha256_of(path)}
    return write_card(bundle.path, replace(bundle.card, gate=section))
