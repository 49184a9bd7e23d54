"""Loss with class weights, optimisers, learning-rate schedules and two-phase (frozen backbone) training."""

from __future__ import annotations

import math

import torch
from torch import nn

from xrayviewer.engine.models import ChestNet
from xrayviewer.training.config import TrainConfig


def class_weights(task: str, classes: list[str], targets: torch.Tensor) -> torch.Tensor:
    """Binary/multilabel: pos_weight = negatives / positives per output (among the images that know the
    label); multiclass: N / (K · count)."""
    if task == "multiclass":
        counts = torch.bincount(targets, minlength=len(classes)).float().clamp(min=1)
        return len(targets) / (len(classes) * counts)
    y = targets.reshape(len(targets), -1)
    known = torch.isfinite(y)
    positives = torch.where(known, y, 0.0).sum(0).clamp(min=1)
    return (known.sum(0) - positives).clamp(min=0) / positives


class KnownLabelsBCE(nn.Module):
    """BCE with logits (and pos_weight) averaged over the labels that are known: NaN targets add nothing."""

    def __init__(self, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss over the finite entries of ``target`` (0 when none is)."""
        known = torch.isfinite(target)
        loss = nn.functional.binary_cross_entropy_with_logits(
            logits, torch.where(known, target, 0.0), pos_weight=self.pos_weight, reduction="none"
        )
        return (loss * known).sum() / known.sum().clamp(min=1)


def make_loss(config: TrainConfig, classes: list[str], targets: torch.Tensor) -> nn.Module:
    """BCE with pos_weight over the known labels (binary, multilabel) or class-weighted cross-entropy
    (multiclass)."""
    weight = class_weights(config.task, classes, targets) if config.optim.class_weights else None
    if config.task == "multiclass":
        return nn.CrossEntropyLoss(weight=weight)
    return KnownLabelsBCE(pos_weight=weight)


def loss_value(loss_fn: nn.Module, task: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "binary":
        return loss_fn(logits[:, 0], y)
    return loss_fn(logits, y)


def _backbone_blocks(model: ChestNet) -> list[nn.Module]:
    return [m for m in model.features.children() if any(True for _ in m.parameters())]


def set_phase(model: ChestNet, config: TrainConfig, epoch: int) -> bool:
    """Freeze the backbone during the first ``freeze_epochs`` epochs, then unfreeze all or the last N
    blocks; returns True while frozen."""
    frozen = epoch < config.optim.freeze_epochs
    blocks = _backbone_blocks(model)
    if frozen:
        trainable: list[nn.Module] = []
    elif config.optim.unfreeze == "all" or config.optim.freeze_epochs == 0:
        trainable = blocks
    else:
        trainable = blocks[-int(config.optim.unfreeze.split(":")[1]) :]
    for block in blocks:
        block.requires_grad_(any(block is t for t in trainable))
    return frozen


def freeze_frozen_batchnorm(model: nn.Module) -> None:
    """BatchNorm layers with frozen weights keep their running statistics (eval mode)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
            p.requires_grad for p in module.parameters()
        ):
            module.eval()


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD (momentum, nesterov) over all parameters with weight decay."""
    params, o = list(model.parameters()), config.optim
    if o.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=True
        )
    if o.optimizer == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Cosine schedule with linear warm-up, times ``unfreeze_lr_factor`` once the backbone is unfrozen."""
    o = config.optim
    total = config.epochs * steps_per_epoch
    warmup = max(1, round(o.warmup_epochs * steps_per_epoch)) if o.warmup_epochs > 0 else 0
    if step < warmup:
        factor = (step + 1) / warmup
    else:
        factor = 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    phase2 = o.freeze_epochs > 0 and step >= o.freeze_epochs * steps_per_epoch
    return factor * (o.unfreeze_lr_factor if phase2 else 1.0)


Scheduler = torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int,
                   ) -> Scheduler | None:
    """LambdaLR stepped per batch (cosine), ReduceLROnPlateau stepped per epoch (plateau), or None."""
    if config.optim.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(config, step, steps_per_epoch)
        )
    if config.optim.schedule == "plateau":
        mode = "max" if config.optim.early_stop_metric == "auc" else "min"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, patience=config.optim.plateau_patience, factor=config.optim.plateau_factor
        )
    return None
