"""`xrayviewer train` / `xrayviewer --train`: train a model bundle headless from a TOML config and/or flags.

Ctrl-C once stops at the next batch with a checkpoint saved (continue with ``--resume RUN_DIR``); twice
aborts at once. Exit status: 0 done, 1 the run failed (its train.log says why), 2 bad input (nothing
trained), 130 cancelled.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading

from xrayviewer.cli.engine_runs import add_events_option, install_cancel

EXAMPLE = """example (shared Kermany data, from the repository root):
  xrayviewer train --config configs/kermany-pneumonia.toml --dry-run
  xrayviewer train --config configs/kermany-pneumonia.toml --epochs 12 --out runs
  xrayviewer train --data ~/xrays/pneumonia --classes NORMAL,PNEUMONIA --epochs 5 --img-size 224
  xrayviewer train --resume runs/pneumonia-20260101-120000
  torchrun --nproc_per_node=2 -m xrayviewer train --config configs/kermany-pneumonia.toml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the training flags (a flag overrides the same setting in --config)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLE + "\nFull reference: docs/training.md"
    parser.add_argument(
        "--config", metavar="FILE", help="TOML config (configs/, docs/training.md) or a run's config.json"
    )
    parser.add_argument(
        "--data", metavar="DIR", help="class-folder dataset: DIR/[train|val|test/]CLASS/images"
    )
    parser.add_argument(
        "--csv", metavar="FILE", help="CSV dataset (columns set in the config; defaults file,label)"
    )
    parser.add_argument("--task", choices=("binary", "multiclass", "multilabel"), help="default: binary")
    parser.add_argument(
        "--classes", metavar="A,B,...", help="class names in order; binary: NEGATIVE,POSITIVE"
    )
    parser.add_argument("--epochs", type=int, metavar="N")
    parser.add_argument("--img-size", type=int, metavar="PX", help="model input side in pixels (default 224)")
    parser.add_argument("--batch-size", type=int, metavar="N")
    parser.add_argument("--lr", type=float, metavar="LR", help="learning rate (default 1e-3)")
    parser.add_argument(
        "--arch", metavar="ID", help="xrv-densenet121 (default), tv-densenet201, tiny-densenet"
    )
    parser.add_argument("--device", metavar="DEV", help="auto (default), cpu, cuda, mps")
    parser.add_argument("--seed", type=int, metavar="N", help="fixes splits, initialisation and augmentation")
    parser.add_argument("--out", metavar="DIR", help="parent folder for the run directory (default runs/)")
    parser.add_argument("--name", help="model name (run directory prefix and bundle name)")
    parser.add_argument(
        "--limit-per-class", type=int, metavar="N", help="at most N images per split and class (quick runs)"
    )
    parser.add_argument(
        "--init-from", metavar="BUNDLE", help="installed bundle name or folder to fine-tune from"
    )
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue an interrupted run exactly where it stopped"
    )
    parser.add_argument(
        "--folds",
        type=int,
        metavar="K",
        help="k-fold cross-validation by patient (data without given splits): K runs, test predictions "
        "pooled into crossval.json",
    )
    parser.add_argument("--dry-run", action="store_true", help="check the data, print the summary, exit")
    parser.add_argument(
        "--time-batches",
        type=int,
        metavar="N",
        help="time N training steps of the configured network on synthetic input on the device, print the "
        "seconds per batch (one JSON object with --events json), exit; reads no data",
    )
    add_events_option(parser, "bars")


def _config(args: argparse.Namespace):
    from xrayviewer.training.config import TrainConfig, load_config

    config = load_config(args.config) if args.config else TrainConfig()
    if args.data:
        config.data.folders, config.data.csv = args.data, ""
    if args.csv:
        config.data.csv, config.data.folders = args.csv, ""
    if args.classes:
        config.classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    for flag, target, key in (
        ("task", config, "task"),
        ("epochs", config, "epochs"),
        ("batch_size", config, "batch_size"),
        ("device", config, "device"),
        ("seed", config, "seed"),
        ("out", config, "out"),
        ("name", config, "name"),
        ("lr", config.optim, "lr"),
        ("arch", config.model, "arch"),
        ("init_from", config.model, "init_from"),
        ("limit_per_class", config.data, "limit_per_class"),
    ):
        value = getattr(args, flag)
        if value is not None:
            setattr(target, key, value)
    if args.img_size is not None:
        config.preprocess = dataclasses.replace(config.preprocess, size=args.img_size)
    if args.folds is not None:
        config.split.folds = args.folds
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    """Validate, then dry-run or train; errors in the input print one line and return 2."""
    from xrayviewer.engine.bundle import BundleError
    from xrayviewer.training.config import ConfigError
    from xrayviewer.training.data import inspect_dataset
    from xrayviewer.training.events import JsonLines, ProgressBars
    from xrayviewer.training.sources import DatasetError
    from xrayviewer.training.trainer import TrainingError, train

    try:
        if args.resume:
            if args.dry_run:
                raise ConfigError("--dry-run and --resume do not go together")
            config = None
        else:
            config = _config(args)
            if args.time_batches:
                return _time_batches(config, args.time_batches, args.events)
            if args.dry_run:
                summary = inspect_dataset(config)
                print(
                    f"task {config.task}, classes {', '.join(summary.classes)}, {config.preprocess.size} px "
                    f"{config.preprocess.geometry}, {config.model.arch}/{config.model.head}"
                )
                print("\n".join(summary.lines()))
                return 0
        callbacks = [JsonLines() if args.events == "json" else ProgressBars()]
        cancel = threading.Event()
        install_cancel(cancel)
        if args.folds is not None and config is not None:
            return _cross_validate(config, callbacks, cancel, args.events)
        result = train(config, callbacks, cancel, resume=args.resume)  # type: ignore[arg-type]
    except (ConfigError, DatasetError, TrainingError, BundleError) as exc:
        print(f"xrayviewer train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xrayviewer train: aborted", file=sys.stderr)
        return 130
    except Exception as exc:  # the run broke (out of memory, a disk error...): its log has the traceback
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"xrayviewer train: failed: {reason} (the run folder's train.log has the details)",
              file=sys.stderr)
        return 1
    if result.status == "cancelled":
        return 130
    if args.events == "text":
        print(f"run folder: {result.run_dir}\nmodel bundle: {result.bundle_dir}")
        print(f"report: {result.run_dir / 'report.html'}")
    return 0


def _time_batches(config, batches: int, events: str) -> int:
    import json

    from xrayviewer.training.timing import time_batches

    timing = time_batches(config, max(1, batches))
    if events == "json":
        print(json.dumps({"event": "timing", **timing.to_dict()}), flush=True)
    else:
        print(f"{timing.hardware}: {timing.train_batch_s:.3f} s per training batch of {timing.batch_size} at "
              f"{timing.image_size} px ({timing.arch}), {timing.eval_image_s * 1000:.1f} ms per evaluated "
              "image")
    return 0


def _cross_validate(config, callbacks, cancel: threading.Event, events: str) -> int:
    from xrayviewer.training.crossval import SUMMARY, cross_validate

    result = cross_validate(config, callbacks, cancel)
    if result.status == "cancelled":
        return 130
    if events == "text":
        pooled = result.summary["pooled"]
        for name, values in pooled["per_class"].items():
            low, high = values["auc_ci95"] or (float("nan"), float("nan"))
            print(
                f"{name}: pooled out-of-fold AUC {values['auc']:.3f} (95 % CI {low:.3f}-{high:.3f}), "
                f"{values['positives']} positives in {result.summary['n']} images"
            )
        print(f"cross-validation folder: {result.out_dir}\nsummary: {result.out_dir / SUMMARY}")
    return 0
