"""`xrayviewer predict`: score image files with an installed model; a table, or JSON Lines with --json.

JSON Lines: exactly one object per input file with the keys ``file``, ``model``, ``version``, ``scores``,
``thresholds``, ``positive``, ``top``, ``cam``, ``ms``, ``error``, ``warnings`` and ``gate`` (``ok``,
``reason``; then ``kind``, ``chest_score``, ``population``, ``population_from``). A file that the
applicability gate refuses (``engine.applicability``: not a projection radiograph, not a chest film, too
small, a colour picture...) is not scored: ``gate.ok`` is false and ``error`` and ``gate.reason`` say why.
Exit status 0 when every file was scored, 2 when some could not be (or when no model is available: never
made-up results).

Every input gives at least one row, whatever it is: a folder without image files gets one row whose
``error`` says so; a path the OS cannot open (too long, a link loop, a FIFO...) gets one naming why. Lines are
strict JSON (no NaN, ever) and pure ASCII: ``file`` keeps a name that is not valid UTF-8 losslessly as
``\\udcXX`` escapes (Python's surrogateescape), so ``os.fsencode(json.loads(line)["file"])`` gives back
the exact bytes of the name.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from xrayviewer.engine.applicability import NO_GATE
from xrayviewer.engine.devices import AUTO_ORDER, DEVICE_CHOICES

if TYPE_CHECKING:
    from xrayviewer.engine.applicability import Applicability
    from xrayviewer.engine.bundle import ModelCard
    from xrayviewer.engine.gate import Gate
    from xrayviewer.engine.predictor import FileResult, Predictor
    from xrayviewer.imaging import XRayImage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """PATH..., --model, --models-dir, --device, --json, --cam-dir, --batch-size."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (recursive)")
    parser.add_argument(
        "--model", metavar="NAME|DIR", help="bundle name or folder (default: best test AUC on its card)"
    )
    parser.add_argument("--models-dir", action="append", default=[], metavar="DIR",
                        help="also look for bundles here (repeatable)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help=f"default: auto ({AUTO_ORDER})")
    parser.add_argument("--json", action="store_true", help="print JSON Lines, one object per file")
    parser.add_argument("--cam-dir", type=Path, metavar="DIR",
                        help="write a Grad-CAM heat map PNG per file here, of the finding the viewer "
                             "shows first (never a negative class such as normal)")
    parser.add_argument("--batch-size", type=int, default=1, metavar="N", help="images per forward pass")
    parser.add_argument("--gate", metavar="NAME|DIR|none", default="",
                        help="the applicability gate bundle (default: the installed one); 'none' skips its "
                             "learned check (header and pixel rules still apply)")
    parser.add_argument("--score-refused", action="store_true",
                        help="score films the gate refuses too, for research (the refusal stays in 'gate')")


def run(args: argparse.Namespace) -> int:
    """Score every file; one line of JSON or one table per file."""
    from xrayviewer.engine.bundle import BundleError, by_strength, find_bundles, load_bundle
    from xrayviewer.engine.paths import models_search_path
    from xrayviewer.engine.predictor import Predictor
    from xrayviewer.imaging.files import find_inputs

    try:
        if args.model:
            bundles = [load_bundle(args.model, args.models_dir)]
        else:
            bundles = by_strength(find_bundles(args.models_dir))  # a weak model is never the first choice
            if not bundles:
                folders = ", ".join(str(p) for p in models_search_path(args.models_dir))
                return _fail(f"no model bundle is installed (searched: {folders}); "
                             "install one or pass --model DIR: no scores without a model")
            if len(bundles) > 1:
                print(f"choosing per film the strongest of {len(bundles)} installed models whose population "
                      "fits it (choose one with --model)", file=sys.stderr)
        predictors = [Predictor(bundle, device=args.device) for bundle in bundles]
        predictors[0].load()  # a broken default model is said now, not after the first film
        gate = _gate(args)
    except (BundleError, ValueError) as exc:
        return _fail(str(exc))
    inputs = find_inputs(args.paths, recursive=True)
    if args.cam_dir:
        args.cam_dir.mkdir(parents=True, exist_ok=True)
    failed = rows = 0
    written: set[Path] = set()
    for result in _results(predictors, inputs, args, gate):
        cam_path, finding = None, None
        if result.prediction is not None and args.cam_dir is not None:
            finding, cam_path = _write_cam(result, args.cam_dir, written)
        failed += result.error is not None
        rows += 1
        card = result.card or bundles[0].card  # files never checked: the first choice
        record = _record(result, card, cam_path, gate is not None)
        if args.json:
            print(json.dumps(record, ensure_ascii=True, allow_nan=False), flush=True)
        else:
            _print_table(record, card.negative_classes, finding)
    if failed and not args.json:
        _say(f"{failed} of {rows} files could not be scored", sys.stderr)
    return 2 if failed else 0


def _results(predictors: list[Predictor], inputs: list, args: argparse.Namespace,
             gate: Gate | None) -> Iterator[FileResult]:
    """Results in input order: the files of each input through ``predict_files`` (each film scored by the
    first of ``predictors`` whose population fits it), a folder that yields no image file as one failed
    result."""
    from xrayviewer.engine.applicability import fitting
    from xrayviewer.engine.predictor import FileResult, predict_files
    from xrayviewer.imaging.files import EmptyInput

    cards = [p.card for p in predictors]

    def choose(image: XRayImage, verdict: Applicability) -> Predictor:
        return predictors[fitting(cards, image, verdict)]

    files: list[Path] = []
    options = {"with_cams": args.cam_dir is not None, "batch_size": max(1, args.batch_size), "gate": gate,
               "score_refused": args.score_refused}
    for item in [*inputs, None]:
        if isinstance(item, Path):
            files.append(item)
            continue
        yield from predict_files(files, choose, **options)
        files = []
        if isinstance(item, EmptyInput):
            yield FileResult(item.path, None, item.reason)


def _say(text: str, stream=None) -> None:
    """Print ``text`` whatever the stream's encoding: what it cannot encode (a file name that is not valid
    UTF-8, say) is written as a backslash escape instead of raising."""
    stream = stream or sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    print(text.encode(encoding, "backslashreplace").decode(encoding, "replace"), file=stream, flush=True)


def _gate(args: argparse.Namespace) -> Gate | None:
    """The gate to run (loaded), or None for ``--gate none`` or when none is installed (said on stderr)."""
    from xrayviewer.engine.bundle import load_bundle
    from xrayviewer.engine.gate import Gate, find_gate

    if args.gate == "none":
        return None
    bundle = load_bundle(args.gate, args.models_dir) if args.gate else find_gate(args.models_dir)
    if bundle is None:
        print("xrayviewer predict: warning: no applicability gate is installed: films are not checked to "
              "be chest films", file=sys.stderr)
        return None
    gate = Gate(bundle, device=args.device)
    gate.load()
    return gate


def _fail(message: str) -> int:
    _say(f"xrayviewer predict: {message}", sys.stderr)
    return 2


def _record(result: FileResult, card: ModelCard, cam_path: Path | None, gated: bool) -> dict:
    """The JSON Lines object for one file (the contract in the module docstring)."""
    prediction = result.prediction
    warnings = list(result.warnings)
    if result.applicability is not None and not gated:
        warnings.append(NO_GATE)
    return {
        "file": str(result.path),
        "model": card.name,
        "version": card.version,
        "scores": {} if prediction is None else {c: round(s, 6) for c, s in prediction.scores.items()},
        "thresholds": dict(card.thresholds),
        "positive": [] if prediction is None else prediction.positive,
        "top": None if prediction is None else prediction.top,
        "cam": None if cam_path is None else str(cam_path),
        "ms": None if prediction is None else round(prediction.timings["total"], 1),
        "error": result.error,
        "warnings": warnings,
        "gate": _gate_record(result.applicability, result.error),
    }


def _gate_record(verdict: Applicability | None, error: str | None) -> dict:
    """``gate``: ``ok`` and ``reason`` (the contract), then what the gate saw: the image ``kind``, its
    ``chest_score``, the ``population`` used for the warnings and where it came from."""
    if verdict is None:  # unreadable: nothing was checked
        return {"ok": False, "reason": error, "kind": None, "chest_score": None, "population": None,
                "population_from": None}
    learned = verdict.gate
    return {
        "ok": not verdict.refused,
        "reason": verdict.refusal or None,
        "kind": None if learned is None else learned.kind,
        "chest_score": None if learned is None else round(learned.chest, 4),
        "population": verdict.population or None,
        "population_from": verdict.population_source or None,
    }


def _write_cam(result: FileResult, folder: Path, written: set[Path]) -> tuple[str, Path]:
    """The heat map the viewer shows first (``engine.cam.explained_finding``, at its strength) blended over
    the displayed picture, as a PNG named after the file; returns (finding, path)."""
    import cv2

    from xrayviewer.engine.cam import blend, compose_overlay, explained_finding
    from xrayviewer.imaging.lut import render

    prediction = result.prediction
    assert prediction is not None and result.image is not None
    choice = explained_finding([prediction])
    assert choice is not None  # one prediction always explains a finding
    finding = choice[1]
    target = folder / f"{result.path.stem}_cam.png"
    count = 1
    while target in written:
        count += 1
        target = folder / f"{result.path.stem}_{count}_cam.png"
    written.add(target)
    rgb = blend(render(result.image), compose_overlay(prediction, finding, alpha=0.5))
    # encoded here and written by Python: OpenCV's imwrite crashes (SIGSEGV) on a file name that is not
    # valid UTF-8, which a film's name, and so its heat map's, may be
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    target.write_bytes(png.tobytes())
    return finding, target


def _print_table(record: dict, negative_classes: list[str], cam_finding: str | None) -> None:
    if record["error"]:
        _say(f"{record['file']}: could not be scored: {record['error']}\n")
        return
    for warning in record["warnings"]:
        _say(f"{record['file']}: warning: {warning}")
    width = max(len(c) for c in record["scores"]) + 2
    lines = [f"{record['file']}  ({record['model']} {record['version']}, {record['ms']:.0f} ms)",
             f"  {'finding':<{width}}{'score':>7}{'threshold':>11}"]
    for name, score in sorted(record["scores"].items(), key=lambda item: -item[1]):
        flag = "  POSITIVE" if name in record["positive"] and name not in negative_classes else ""
        lines.append(f"  {name:<{width}}{score:>7.3f}{record['thresholds'][name]:>11.3f}{flag}")
    if record["cam"]:
        lines.append(f"  heat map ({cam_finding}): {record['cam']}")
    _say("\n".join(lines) + "\n")


