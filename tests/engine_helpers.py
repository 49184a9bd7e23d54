"""Test helpers: a real-format model bundle with random weights (no trained weights ship yet), and real
engine ``Prediction``s and ``ModelCard``s built by hand.

Batch-norm statistics are re-estimated on the given inputs and the last layer is rescaled so that logits
spread about one unit over them: scores then vary from film to film like a trained model's do (a raw random
DenseNet saturates every score, and a merely re-normalised one barely moves).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from xrayviewer.engine.bundle import Bundle, ModelCard, save_bundle
from xrayviewer.engine.models import build_model
from xrayviewer.engine.predictor import Prediction
from xrayviewer.engine.preprocess import Geometry, PreprocessRecipe


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
