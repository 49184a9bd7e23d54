"""How long a training step takes on a device: a few timed batches of the configured network, loss,
optimiser and augmentation on synthetic input of the configured size (``xrayviewer train --time-batches N``).

Nothing is read from the dataset and nothing is written: it measures the step the trainer runs
(``Trainer._step``: forward, loss, backward, clipping, optimiser step) and an evaluation forward pass, so a
front end can say "about 25 min on this CPU" before a run starts (:func:`estimate_seconds`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from xrayviewer.engine.devices import hardware_description
from xrayviewer.engine.models import build_model
from xrayviewer.training.augment import augment_batch
from xrayviewer.training.config import TrainConfig
from xrayviewer.training.optimization import loss_value, make_loss, make_optimizer


@dataclass
class StepTiming:
    """Measured seconds per training batch and per evaluated image on one device."""

    device: str
    hardware: str
    batch_size: int
    image_size: int
    arch: str
    train_batch_s: float  # one optimisation step on a full batch (median of the timed ones)
    eval_image_s: float  # one image of a validation forward pass
    batches: int  # how many steps were timed (after one untimed warm-up step)

    def to_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def _synthetic_targets(config: TrainConfig, n: int) -> torch.Tensor:
    k = max(2, len(config.classes))
    if config.task == "binary":
        return (torch.arange(n) % 2).float()
    if config.task == "multiclass":
        return torch.arange(n) % k
    return (torch.arange(n * k).reshape(n, k) % 2).float()


def time_batches(config: TrainConfig, batches: int = 3) -> StepTiming:
    """Time ``batches`` training steps (after one warm-up step) and one evaluation pass on the configured
    device, at the configured batch size, input size, architecture and head. Raises ``TrainingError`` for a
    device that is not there; an out-of-memory error propagates (that batch size does not fit)."""
    from xrayviewer.training.trainer import resolve_device

    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    classes = config.classes or ["a", "b"]
    outputs = 1 if config.task == "binary" else max(2, len(classes))
    model = build_model(config.model.arch, outputs, head=config.model.head).to(device)
    amp = config.amp and device.type == "cuda"
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    size, n = config.preprocess.size, config.batch_size
    x_all = torch.rand(n, 1, size, size) * 2048 - 1024  # the engine's input range (xrv scaling)
    y_all = _synthetic_targets(config, n)
    loss_fn = make_loss(config, classes, y_all).to(device)
    optimizer = make_optimizer(config, model)
    scaler = torch.amp.GradScaler(enabled=amp)
    rng = torch.Generator().manual_seed(config.seed)
    model.train()
    durations = []
    for i in range(batches + 1):
        began = time.perf_counter()
        x = augment_batch(x_all.to(device), config.augment, rng)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, enabled=amp):
            loss = loss_value(loss_fn, config.task, model(x).float(), y_all.to(device))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.optim.grad_clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        float(loss.detach())  # waits for the device
        if i:  # the first step pays one-off costs (allocations, kernel selection)
            durations.append(time.perf_counter() - began)
    model.eval()
    began = time.perf_counter()
    with torch.no_grad(), torch.autocast(device.type, enabled=amp):
        float(model(x_all.to(device)).float().sum())
    eval_image = (time.perf_counter() - began) / n
    durations.sort()
    return StepTiming(
        str(device),
        hardware_description(device),
        n,
        size,
        config.model.arch,
        durations[len(durations) // 2],
        eval_image,
        batches,
    )


OVERHEAD_S = 15.0  # starting the engine (imports) and drawing the report's plots, measured on a 2-core CPU


def estimate_seconds(
    timing: StepTiming,
    train_images: int,
    eval_images: int,
    epochs: int,
    decode_s: float = 0.0,
    overhead_s: float = OVERHEAD_S,
) -> float:
    """Seconds a run should take: ``epochs`` × (training batches + validation) + the final evaluation of
    validation and test (``eval_images`` = both) + decoding the images into the cache (``decode_s``, 0 when
    cached) + starting and reporting (``overhead_s``). Early stopping can end a run sooner."""
    steps = math.ceil(train_images / max(1, timing.batch_size))
    val_images = eval_images / 2
    per_epoch = steps * timing.train_batch_s + val_images * timing.eval_image_s
    return epochs * per_epoch + eval_images * timing.eval_image_s + decode_s + overhead_s


def describe_duration(seconds: float) -> str:
    """ "about 40 s", "about 25 min", "about 3 h 10 min": rounded as an estimate should be."""
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"about {round(minutes):.0f} min"
    hours, rest = divmod(round(minutes / 10) * 10, 60)
    return f"about {hours:.0f} h" + (f" {rest:.0f} min" if rest else "")
