"""``xrayviewer --selftest``: what an admin runs after an install, frozen or from source (no Qt, no torch).

Each check is a name and a function that returns a one-line detail or raises; :func:`run_checks` times them
and never lets one failure stop the others, :func:`format_table` prints the pass/fail table. The checks
here are the Qt-free ones: pydicom's decoders, every bundled model (loaded and run once), the synthetic
films in ``resources/selftest/`` (JPEG 2000 and RLE DICOMs, a PNG), inference with a heat map and the
gate, and the per-user folders (writable, and never inside the installation). ``cli.selftest`` adds the
main window, opened offscreen.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from xrayviewer.engine import paths
from xrayviewer.engine.bundle import Bundle, by_role, by_strength, scan_bundles

#: the synthetic films in resources/selftest/ (scripts/make_selftest_samples.py writes them; no patient data)
SAMPLES = {"JPEG 2000 DICOM": "selftest-j2k.dcm", "RLE DICOM": "selftest-rle.dcm", "PNG": "selftest.png"}
#: transfer syntax -> decoder pydicom must find through pylibjpeg's entry points
DECODERS = {
    "JPEG 2000": "JPEG2000LosslessDecoder",
    "RLE": "RLELosslessDecoder",
    "JPEG baseline": "JPEGBaseline8BitDecoder",
    "JPEG lossless": "JPEGLosslessSV1Decoder",
    "JPEG-LS": "JPEGLSLosslessDecoder",
}


class CheckFailed(Exception):
    """A check's plain-words failure (printed without a traceback)."""


Check = tuple[str, Callable[[], str]]  # (name, function returning a one-line detail; raises on failure)


@dataclass(frozen=True)
class CheckResult:
    """One row of the table."""

    name: str
    ok: bool
    ms: float
    detail: str


def run_checks(checks: Iterable[Check]) -> list[CheckResult]:
    """Run each check, timed; an exception fails that check only (its last line becomes the detail)."""
    results = []
    for name, check in checks:
        start = time.perf_counter()
        try:
            detail, ok = check(), True
        except CheckFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # an unexpected failure: the exception's type and message, no traceback
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            detail, ok = f"{type(exc).__name__}: {exc} ({Path(frame.filename).name}:{frame.lineno})", False
        results.append(CheckResult(name, ok, (time.perf_counter() - start) * 1e3, " ".join(detail.split())))
    return results


def format_table(results: Sequence[CheckResult]) -> str:
    """The pass/fail table with timings and a last line saying how many checks failed."""
    name_width = max([len(r.name) for r in results] + [5])
    lines = [f"{'check':<{name_width}}  result  {'ms':>7}  detail"]
    for r in results:
        lines.append(f"{r.name:<{name_width}}  {'PASS' if r.ok else 'FAIL':<6}  {r.ms:>7.0f}  {r.detail}")
    failed = sum(not r.ok for r in results)
    total = sum(r.ms for r in results) / 1e3
    verdict = "passed" if not failed else "FAILED"
    passed = len(results) - failed
    lines.append(f"selftest {verdict}: {passed} of {len(results)} checks passed in {total:.1f} s")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- the checks


def check_decoders() -> str:
    """pydicom finds pylibjpeg's decoders (through entry points: a frozen build without their metadata
    loses them)."""
    from pydicom.pixels import decoders

    missing = [syntax for syntax, name in DECODERS.items()
               if "pylibjpeg" not in getattr(decoders, name).available_plugins]
    if missing:
        raise CheckFailed(f"pylibjpeg decoder missing for {', '.join(missing)}")
    return f"pylibjpeg decodes {', '.join(DECODERS)}"


def bundled_models() -> list[Bundle]:
    """The bundles shipped with the application (its ``models/``), gate included, strongest first."""
    bundles, problems = scan_bundles(include_xrv=False)
    if problems:
        raise CheckFailed(f"broken bundle: {problems[0]}")
    shipped = [b for b in bundles if b.source == "package"]
    if not by_role(shipped):
        raise CheckFailed(f"no findings model in {paths.shipped_models_dir()}")
    return by_strength(shipped)


def model_check(bundle: Bundle) -> Callable[[], str]:
    """Load the bundle (sha256-verified weights and graph, one warm-up pass): its backend and version."""

    def check() -> str:
        from xrayviewer.engine.predictor import Predictor

        predictor = Predictor(bundle)
        predictor.load()
        note = f" ({predictor.backend_note})" if predictor.backend_note else ""
        return f"v{bundle.card.version} {bundle.card.role}, {predictor.backend} on {predictor.device}{note}"

    return check


def read_check(path: Path) -> Callable[[], str]:
    """Read one synthetic film: its size and value range."""

    def check() -> str:
        from xrayviewer.imaging import ImageError, open_image

        try:
            image = open_image(path)
        except ImageError as exc:
            raise CheckFailed(f"{path}: {exc}") from None
        if not np.isfinite(image.pixels).all() or float(np.ptp(image.pixels)) <= 0:
            raise CheckFailed(f"{path.name}: blank or non-finite pixels")
        return f"{path.name}: {image.shape[1]}×{image.shape[0]} px, {image.format}"

    return check


def inference_check(bundles: Sequence[Bundle], film: Path) -> Callable[[], str]:
    """Run the strongest findings model with its heat map, and the gate, on ``film``."""

    def check() -> str:
        from xrayviewer.engine.cam import explained_finding
        from xrayviewer.engine.gate import Gate
        from xrayviewer.engine.predictor import Predictor
        from xrayviewer.imaging import open_image

        image = open_image(film)
        model = by_role(bundles)[0]
        prediction = Predictor(model).predict(image, with_cams=True)
        scores = np.array(list(prediction.scores.values()))
        if not np.isfinite(scores).all() or not ((scores >= 0) & (scores <= 1)).all():
            raise CheckFailed(f"{model.name}: scores out of [0, 1]: {scores}")
        explained = explained_finding([prediction])
        finding = explained[1] if explained else ""
        cam = prediction.cams.get(finding)
        if cam is None or cam.size == 0 or not np.isfinite(cam).all():
            raise CheckFailed(f"{model.name}: no usable heat map for {finding!r}")
        detail = (f"{model.name}: top {prediction.top} {prediction.scores[prediction.top]:.3f}, heat map of "
                  f"{finding} {cam.shape[1]}×{cam.shape[0]}, {prediction.timings.get('total', 0):.0f} ms")
        gates = by_role(bundles, "gate")
        if gates:
            verdict = Gate(gates[0]).check(image)
            detail += f"; gate: {'chest film' if verdict.ok else 'refused (' + verdict.kind + ')'}"
        return detail

    return check


def user_folders() -> dict[str, Path]:
    """The per-user folders the app writes to (models, logs, cache, data); never the installation."""
    return {
        "models": paths.user_models_dir(),
        "logs": platformdirs.user_log_path("xrayviewer", appauthor=False),
        "cache": platformdirs.user_cache_path("xrayviewer", appauthor=False),
        "data": platformdirs.user_data_path("xrayviewer", appauthor=False),
    }


def check_user_folders(folders: dict[str, Path] | None = None) -> str:
    """Each per-user folder can be created and written, and none lies inside the installation."""
    folders = user_folders() if folders is None else folders
    install = paths.app_root().resolve() if paths.frozen() else None
    for kind, folder in folders.items():
        if install is not None and folder.resolve().is_relative_to(install):
            raise CheckFailed(f"{kind} folder {folder} is inside the installation {install}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".selftest-{time.time_ns()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise CheckFailed(f"{kind} folder {folder} is not writable ({exc.strerror or exc})") from None
    return ", ".join(f"{kind} {folder}" for kind, folder in folders.items())


def engine_checks(samples: Path | None = None) -> list[Check]:
    """The Qt-free checks, in the order they run (models found first: every later check needs them)."""
    samples = paths.resources_dir() / "selftest" if samples is None else samples
    checks: list[Check] = [("decoders", check_decoders)]
    try:
        bundles = bundled_models()
    except CheckFailed as exc:
        failure = str(exc)

        def no_models() -> str:
            raise CheckFailed(failure)

        return [*checks, ("models", no_models), ("user folders", check_user_folders)]
    checks += [(f"model {b.name}", model_check(b)) for b in bundles]
    checks += [(f"read {kind}", read_check(samples / name)) for kind, name in SAMPLES.items()]
    checks.append(("inference + heat map", inference_check(bundles, samples / SAMPLES["JPEG 2000 DICOM"])))
    checks.append(("user folders", check_user_folders))
    return checks
