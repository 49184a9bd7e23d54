"""The training loop: the one engine behind ``xrayviewer train`` and every front end built on it.

``train(config, callbacks, cancel, resume)`` prepares the data (``training.data``), trains with the
configured recipe (``optimization``, ``augment``), checkpoints atomically every epoch and on cancel, then
calibrates on validation, evaluates on val and test, writes the report and the model bundle.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xrayviewer.engine.bundle import (
    BundleError,
    ModelCard,
    load_bundle,
    load_model,
    round_to_storage,
    save_bundle,
)
from xrayviewer.engine.calibration import fit_temperature, probabilities
from xrayviewer.engine.devices import hardware_description, pick_device
from xrayviewer.engine.models import ChestNet, build_model
from xrayviewer.training import distributed as dist_utils
from xrayviewer.training.augment import augment_batch
from xrayviewer.training.checkpoints import (
    BEST,
    LAST,
    CheckpointError,
    load_checkpoint,
    remove_stale_temp_files,
    save_checkpoint,
)
from xrayviewer.training.config import TrainConfig, config_from_dict
from xrayviewer.training.data import PreparedData, prepare_data
from xrayviewer.training.events import (
    BatchEnded,
    Callback,
    EpochEnded,
    Event,
    LogFile,
    Message,
    RunFinished,
    RunStarted,
)
from xrayviewer.training.metrics import (
    choose_threshold,
    evaluate,
    label_array,
    macro_auc,
    one_vs_rest,
    scored_classes,
)
from xrayviewer.training.optimization import (
    freeze_frozen_batchnorm,
    loss_value,
    make_loss,
    make_optimizer,
    make_scheduler,
    set_phase,
)
from xrayviewer.training.run_records import new_run_dir

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
BUNDLE_DIR = "bundle"


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message says why (bad data, bad resume folder...)."""


@dataclass
class RunResult:
    """What a run produced."""

    status: str  # completed | early_stopped | cancelled
    run_dir: Path
    bundle_dir: Path | None = None
    best_epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- model


def build_network(config: TrainConfig, classes: list[str], emit: Callback) -> ChestNet:
    """The configured network, randomly initialised (seeded) or started from an installed bundle."""
    outputs = 1 if config.task == "binary" else len(classes)
    model = build_model(config.model.arch, outputs, head=config.model.head)
    if not config.model.init_from:
        return model
    try:
        source = load_model(load_bundle(config.model.init_from))
    except BundleError as exc:
        raise TrainingError(f"cannot start from {config.model.init_from!r}: {exc}") from None
    own = model.state_dict()
    taken = {k: v for k, v in source.state_dict().items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(taken, strict=False)
    head = sum(k.startswith("classifier.") for k in taken)
    emit(
        Message(
            "info",
            f"initialised {len(taken)}/{len(own)} tensors from {config.model.init_from}"
            + ("" if head else " (new head)"),
        )
    )
    return model


def _adopt_init_bundle(config: TrainConfig, emit: Callback) -> None:
    """Fine-tuning keeps the source bundle's architecture and head (its weights must fit)."""
    if not config.model.init_from:
        return
    try:
        card = load_bundle(config.model.init_from).card
    except BundleError as exc:
        raise TrainingError(f"cannot start from {config.model.init_from!r}: {exc}") from None
    if (card.architecture, card.head) != (config.model.arch, config.model.head):
        emit(Message("info", f"using {card.architecture}/{card.head} from {card.name}"))
        config.model.arch, config.model.head = card.architecture, card.head
    if card.preprocessing != config.preprocess:
        emit(
            Message(
                "warning",
                f"preprocessing differs from {card.name}'s ({card.preprocessing}); "
                "fine-tuning usually keeps the original recipe",
            )
        )


def resolve_device(name: str) -> torch.device:
    """engine.devices.pick_device, with a TrainingError for a device that is not there."""
    try:
        return pick_device(name)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None


def state_digest(model: nn.Module) -> str:
    """sha256 over the model's tensors (ranks must agree; resumed runs must match uninterrupted ones)."""
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- evaluation helpers


@torch.no_grad()
def predict_logits(
    model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int, amp: bool
) -> np.ndarray:
    """Logits (N, K) in eval mode, batch by batch."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device, torch.float32)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            out.append(model(x).float().cpu())
    return torch.cat(out).numpy()


# ---------------------------------------------------------------- the run


class _Cancelled(Exception):
    """Raised inside data preparation when the user cancels before training starts."""


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_folder(run_dir: Path) -> Path:
    """Raise ``TrainingError`` unless the run folder (or, before it exists, the nearest folder above it)
    takes a file: checked by writing one, before any data is prepared. Creates nothing that lasts."""
    folder = _existing_ancestor(run_dir)
    if not folder.is_dir():
        raise TrainingError(f"cannot write the run folder {run_dir}: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise TrainingError(f"cannot write the run folder {run_dir} (in {folder}): "
                            f"{exc.strerror or exc}; choose another --out") from None
    return folder


def checkpoint_bytes(model: nn.Module) -> int:
    """About how much disk a run's checkpoints and bundle take: ``last.pt`` (weights, two optimiser moments),
    ``best.pt`` and the bundle, each briefly twice while it is replaced atomically."""
    weights = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    return 2 * (3 * weights + weights + weights) + (16 << 20)


def check_free_space(run_dir: Path, model: nn.Module) -> None:
    """Raise ``TrainingError`` before any data is prepared when the run folder's disk cannot hold the run's
    checkpoints (:func:`checkpoint_bytes`): better than a disk that fills up in epoch 30."""
    need = checkpoint_bytes(model)
    free = shutil.disk_usage(_existing_ancestor(run_dir)).free
    if free < need:
        raise TrainingError(f"not enough free space for the run folder {run_dir}: {free / 2**20:.1f} MB "
                            f"free, its checkpoints and bundle need about {need / 2**20:.0f} MB")


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved configuration a run directory recorded (for ``--resume``)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise TrainingError(f"{run_dir} is not a training run folder (no {CONFIG_FILE})")
    return config_from_dict(json.loads(path.read_text()))


class Trainer:
    """One training run; ``run()`` returns a RunResult. Construct through :func:`train`."""

    def __init__(
        self,
        config: TrainConfig,
        callbacks: list[Callback],
        cancel: threading.Event,
        run_dir: Path,
        resume: bool,
    ) -> None:
        self.config, self.cancel, self.resume = config, cancel, resume
        self.device = resolve_device(config.device)
        self.ctx = dist_utils.init_distributed(self.device)
        self.run_dir = Path(dist_utils.broadcast(str(run_dir), self.ctx))  # rank 0 names the run
        if self.ctx.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.ctx.local_rank)
            torch.cuda.set_device(self.device)
        self.callbacks = callbacks if self.ctx.is_main else []
        self.amp = config.amp and self.device.type == "cuda"
        self.history: list[dict[str, Any]] = []
        self.best_epoch = 0
        _adopt_init_bundle(config, self.emit)

    def emit(self, event: Event) -> None:
        """Hand an event to every callback (rank 0 only)."""
        for callback in self.callbacks:
            callback(event)

    # -- set-up

    def _prepare(self) -> PreparedData:
        def on_event(event: Event) -> None:
            if self.cancel.is_set():
                raise _Cancelled
            self.emit(event)

        if not self.ctx.is_main:  # rank 0 fills the cache first; the others then read it
            dist_utils.barrier(self.ctx)
        data = prepare_data(self.config, on_event)
        if self.ctx.is_main:
            dist_utils.barrier(self.ctx)
        return data

    def _checkpoint_state(self, epoch: int, step: int, running: float, seen: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "step": step,
            "running_loss": running,
            "seen": seen,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng_torch": torch.get_rng_state(),
            "rng_augment": self.augment_rng.get_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "scaler": self.scaler.state_dict(),
            "phase2_lr_applied": self.phase2_lr_applied,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "config": self.config.resolved(),
        }

    def _save(self, name: str, state: dict[str, Any]) -> None:
        if not self.ctx.is_main:
            return
        try:
            save_checkpoint(self.run_dir / CHECKPOINT_DIR / name, state)
        except CheckpointError as exc:  # a full or read-only disk: stop cleanly, say how to go on
            raise CheckpointError(f"{exc}; make room, then continue with --resume {self.run_dir}") from exc

    def _restore(self) -> tuple[int, int, float, int]:
        remove_stale_temp_files(self.run_dir / CHECKPOINT_DIR)  # a run killed while saving leaves one
        state = load_checkpoint(self.run_dir / CHECKPOINT_DIR / LAST)
        self.model.load_state_dict(state["model"])
        set_phase(self.model, self.config, state["epoch"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_torch"])
        self.augment_rng.set_state(state["rng_augment"])
        if state["rng_cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.best_metric, self.best_epoch = state["best_metric"], state["best_epoch"]
        self.bad_epochs, self.history = state["bad_epochs"], state["history"]
        self.scaler.load_state_dict(state["scaler"])
        self.phase2_lr_applied = state["phase2_lr_applied"]
        return state["epoch"], state["step"], state["running_loss"], state["seen"]

    # -- loop

    def _wrapped(self) -> nn.Module:
        if not self.ctx.enabled:
            return self.model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)

    def _improved(self, value: float) -> bool:
        if self.best_metric is None:
            return True
        return (
            value > self.best_metric
            if self.config.optim.early_stop_metric == "auc"
            else value < self.best_metric
        )

    def _validate(self, data: PreparedData, loss_fn: nn.Module) -> tuple[float, float | None]:
        val = data.splits["val"]
        logits = predict_logits(self.model, val.images, self.device, 2 * self.config.batch_size, self.amp)
        z = torch.as_tensor(logits, device=self.device)
        loss = float(loss_value(loss_fn, self.config.task, z, val.targets.to(self.device)))
        auc = macro_auc(
            self.config.task, data.classes, label_array(self.config.task, val.targets),
            _scores(self.config.task, logits),
        )
        return loss, auc

    def run(self) -> RunResult:
        """Prepare, train, evaluate, report; returns when done, early-stopped or cancelled."""
        config = self.config
        if self.ctx.is_main:  # an unwritable or too small --out fails now, not after data preparation
            check_output_folder(self.run_dir)
            with torch.device("meta"):  # the network's size without its memory
                shape = build_model(config.model.arch, max(1, len(config.classes)), head=config.model.head)
            check_free_space(self.run_dir, shape)
        try:
            data = self._prepare()  # bad data raises here, before the run folder exists
        except _Cancelled:
            self.emit(RunFinished("cancelled", str(self.run_dir)))
            return RunResult("cancelled", self.run_dir)
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / CONFIG_FILE).write_text(json.dumps(config.resolved(), indent=2) + "\n")
            self.callbacks.append(LogFile(self.run_dir / "train.log"))
        try:
            return self._train(data)
        except Exception as exc:  # e.g. out of memory: say so in the log and to a parent process, then raise
            self.emit(Message("error", "".join(traceback.format_exception(exc)).rstrip()))
            reason = _reason(exc)
            self.emit(RunFinished("failed", str(self.run_dir), best_epoch=self.best_epoch, error=reason))
            raise

    def _train(self, data: PreparedData) -> RunResult:
        """Train from the first (or the resumed) epoch, then evaluate and write the bundle."""
        config = self.config
        train = data.splits["train"]
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        self.model = build_network(config, data.classes, self.emit).to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        loss_fn = make_loss(config, data.classes, train.targets).to(self.device)
        per_rank = len(dist_utils.epoch_order(len(train.samples), 0, config.seed, self.ctx))
        steps = math.ceil(per_rank / config.batch_size)
        self.optimizer = make_optimizer(config, self.model)
        self.scheduler = make_scheduler(config, self.optimizer, steps)
        self.augment_rng = torch.Generator().manual_seed(config.seed)
        self.best_metric: float | None = None
        self.best_epoch, self.bad_epochs = 0, 0
        self.scaler = torch.amp.GradScaler(enabled=self.amp)
        self.phase2_lr_applied = False
        start_epoch, start_step, running, seen = 0, 0, 0.0, 0
        if self.resume:
            start_epoch, start_step, running, seen = self._restore()
            self.emit(Message("info", f"resuming at epoch {start_epoch + 1}, step {start_step}"))
        self.emit(RunStarted(str(self.run_dir), config.epochs, start_epoch, steps, data.summary.counts))
        status = "completed"
        for epoch in range(start_epoch, config.epochs):
            frozen = set_phase(self.model, config, epoch)
            if config.optim.schedule != "cosine" and 0 < config.optim.freeze_epochs <= epoch:
                self._apply_phase2_lr()
            net = self._wrapped()
            net.train()
            if frozen:
                freeze_frozen_batchnorm(self.model)
            order = torch.tensor(dist_utils.epoch_order(len(train.samples), epoch, config.seed, self.ctx))
            began = time.perf_counter()
            if start_step == 0:
                running, seen = 0.0, 0
            for step in range(start_step, steps):
                if dist_utils.any_rank(self.cancel.is_set(), self.ctx):
                    net = None  # the DDP wrapper holds the process group: drop it before leaving the group
                    return self._cancelled(self._checkpoint_state(epoch, step, running, seen))
                index = order[step * config.batch_size : (step + 1) * config.batch_size]
                x, y = train.batch(index, self.device)
                loss = self._step(net, loss_fn, augment_batch(x, config.augment, self.augment_rng), y)
                running += loss * len(index)
                seen += len(index)
                self.emit(
                    BatchEnded(
                        epoch + 1, step + 1, steps, running / seen, self.optimizer.param_groups[0]["lr"]
                    )
                )
            start_step = 0
            if self._end_epoch(
                data, loss_fn, epoch, running / max(seen, 1), seen, time.perf_counter() - began
            ):
                status = "early_stopped"
                break
        net = None
        return self._finish(data, status)

    def _cancelled(self, state: dict[str, Any]) -> RunResult:
        """Save the mid-epoch state (``--resume`` continues from it) and end the run."""
        self._save(LAST, state)
        self.emit(Message("info", f"cancelled: checkpoint saved; continue with --resume {self.run_dir}"))
        self.emit(RunFinished("cancelled", str(self.run_dir), best_epoch=self.best_epoch))
        dist_utils.finish(self.ctx)
        return RunResult("cancelled", self.run_dir, best_epoch=self.best_epoch)

    def _end_epoch(
        self, data: PreparedData, loss_fn: nn.Module, epoch: int, train_loss: float, seen: int, seconds: float
    ) -> bool:
        """Validate, step the plateau schedule, keep the best weights, checkpoint, report; True: stop."""
        config = self.config
        dist_utils.sync_buffers(self.model, self.ctx)
        val_loss, val_auc = dist_utils.broadcast(self._validate(data, loss_fn), self.ctx)
        metric = val_loss if config.optim.early_stop_metric == "loss" else val_auc
        if config.optim.schedule == "plateau":
            self.scheduler.step(metric)
        best = self._improved(metric)
        if best:
            self.best_metric, self.best_epoch, self.bad_epochs = metric, epoch + 1, 0
            self._save(BEST, {"epoch": epoch + 1, "metric": metric, "model": self.model.state_dict()})
        else:
            self.bad_epochs += 1
        lr = self.optimizer.param_groups[0]["lr"]
        self.history.append(
            {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_auc": val_auc,
                "lr": lr,
                "seconds": seconds,
            }
        )
        self._save(LAST, self._checkpoint_state(epoch + 1, 0, 0.0, 0))
        rate = seen * self.ctx.world_size / max(seconds, 1e-9)
        self.emit(
            EpochEnded(epoch + 1, config.epochs, train_loss, val_loss, val_auc, lr, best, seconds, rate)
        )
        patience = config.optim.patience
        if patience and self.bad_epochs >= patience and epoch + 1 < config.epochs:
            self.emit(Message("info", f"early stop: no validation improvement for {self.bad_epochs} epochs"))
            return True
        return False

    def _step(self, net: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        """One optimisation step (AMP and channels_last on CUDA, gradient clipping); returns the loss."""
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, enabled=self.amp):
            loss = loss_value(loss_fn, self.config.task, net(x).float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.config.optim.schedule == "cosine":
            self.scheduler.step()
        return float(loss.detach())

    def _apply_phase2_lr(self) -> None:
        """Plateau/constant schedules: lower the learning rate once when the backbone is unfrozen."""
        if not self.phase2_lr_applied:
            for group in self.optimizer.param_groups:
                group["lr"] *= self.config.optim.unfreeze_lr_factor
            self.phase2_lr_applied = True

    # -- after training

    def _finish(self, data: PreparedData, status: str) -> RunResult:
        config = self.config
        digests = dist_utils.gather(state_digest(self.model), self.ctx)
        if not self.ctx.is_main:
            dist_utils.finish(self.ctx)
            return RunResult(status, self.run_dir, best_epoch=self.best_epoch)
        best = load_checkpoint(self.run_dir / CHECKPOINT_DIR / BEST)
        self.model.load_state_dict(best["model"])
        round_to_storage(self.model, config.model.weights_dtype)  # evaluate exactly what the bundle will hold
        self.model.to(self.device)
        task, classes = config.task, data.classes
        logits = {
            name: predict_logits(self.model, part.images, self.device, 2 * config.batch_size, self.amp)
            for name, part in data.splits.items()
            if name != "train"
        }
        labels = {name: label_array(task, data.splits[name].targets) for name in logits}
        temperature = fit_temperature(task, logits["val"], labels["val"])
        scores = {name: _scores(task, z, temperature) for name, z in logits.items()}
        names = scored_classes(task, classes)
        thresholds = [
            choose_threshold(
                *one_vs_rest(task, labels["val"], scores["val"], k),
                config.eval.threshold,
                config.eval.target_sensitivity,
            )
            for k in range(len(names))
        ]
        metrics = {
            name: evaluate(
                task, classes, labels[name], scores[name], thresholds, config.eval.bootstrap, config.seed
            )
            for name in scores
        }
        card = self._card(data, names, thresholds, temperature, metrics)
        bundle = save_bundle(self.run_dir / BUNDLE_DIR, self.model.cpu(), card)
        summary = {
            "status": status,
            "classes": classes,
            "best_epoch": self.best_epoch,
            "early_stop_metric": config.optim.early_stop_metric,
            "best_metric": self.best_metric,
            "temperature": temperature,
            "thresholds": dict(zip(names, thresholds, strict=True)),
            "history": self.history,
            "val": metrics["val"],
            "test": metrics["test"],
            "world_size": self.ctx.world_size,
            "rank_digests": digests,
        }
        (self.run_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        from xrayviewer.training.reports import write_report

        write_report(self.run_dir, bundle, data, summary, scores, labels, self.emit, config.eval.cam_grid)
        test_auc = metrics["test"]["auc_macro"]
        self.emit(RunFinished(status, str(self.run_dir), str(bundle.path), self.best_epoch, test_auc))
        dist_utils.finish(self.ctx)
        return RunResult(status, self.run_dir, bundle.path, self.best_epoch, summary)

    def _card(
        self,
        data: PreparedData,
        names: list[str],
        thresholds: list[float],
        temperature: float,
        metrics: dict[str, Any],
    ) -> ModelCard:
        config, test = self.config, metrics["test"]
        method = (
            "Youden J"
            if config.eval.threshold == "youden"
            else f"sensitivity >= {config.eval.target_sensitivity:g}"
        )
        source = config.data.csv or config.data.folders
        return ModelCard(
            name=config.name,
            version=datetime.now().strftime("%Y.%m.%d"),
            task=config.task,
            classes=names,
            architecture=config.model.arch,
            architecture_args={"head": config.model.head},
            thresholds=dict(zip(names, thresholds, strict=True)),
            threshold_method=f"{method} on validation (n={metrics['val']['n']}), calibrated scores",
            preprocessing=config.preprocess,
            temperature=temperature,
            metrics={
                "split": "test",
                "n": test["n"],
                "auroc": test["auc_macro"],
                "per_class": {k: v for k, v in test["per_class"].items()},
                "accuracy": test["accuracy"],
                "sensitivity": test["recall"],
                "specificity": test["specificity"],
                "precision": test["precision"],
                "f1": test["f1"],
                "confusion_matrix": test["confusion_matrix"],
                "val_auroc": metrics["val"]["auc_macro"],
            },
            training_data={
                "source": Path(source).name,
                "description": config.card.data_description,
                "licence": config.card.licence,
                "hardware": hardware_description(self.device),
                "train_seconds": round(sum(float(h.get("seconds", 0.0)) for h in self.history), 3),
                "epochs_run": len(self.history),
                "classes": data.classes,
                "counts": data.summary.counts,
                "patients": data.summary.patients,
                "unreadable": len(data.summary.unreadable),
            },
            training_config=config.resolved(),
            description=f"{config.task} {', '.join(names)} trained by xrayviewer train (best epoch "
            f"{self.best_epoch})",
            limitations=config.card.limitations,
            views=list(config.card.views),
            age_group=config.card.age_group,
            negative_classes=list(config.card.negative_classes),
            weights_dtype=config.model.weights_dtype,
        )


def _reason(exc: BaseException) -> str:
    """One line for a run that broke: an OS error names the file and the cause (a full disk says so)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" writing {exc.filename}" if exc.filename else ""
        hint = ": make room, then continue with --resume" if exc.errno == errno.ENOSPC else ""
        return f"{exc.strerror}{where}{hint}"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _scores(task: str, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    p = probabilities(task, logits, temperature)
    return p[:, 0] if task == "binary" else p


def train(
    config: TrainConfig | None,
    callbacks: list[Callback] | None = None,
    cancel: threading.Event | None = None,
    resume: str | Path | None = None,
) -> RunResult:
    """Run training. ``resume`` is a run directory: its recorded config and last checkpoint are used
    (``config`` is then ignored). ``cancel.set()`` stops at the next batch with a checkpoint saved.

    Raises ConfigError / DatasetError / TrainingError before training starts for bad input.
    """
    callbacks = list(callbacks or [])
    if resume is not None:
        run_dir = Path(resume)
        config = load_run_config(run_dir)
        if not (run_dir / CHECKPOINT_DIR / LAST).is_file():
            raise TrainingError(f"{run_dir} has no checkpoint to resume from")
    elif config is None:
        raise TrainingError("give a configuration or a run folder to resume")
    else:
        config.validate()
        config = copy.deepcopy(config)
        run_dir = new_run_dir(config.out, config.name)
    trainer = Trainer(config, callbacks, cancel or threading.Event(), run_dir, resume is not None)
    return trainer.run()
