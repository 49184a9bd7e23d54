"""``xrayviewer --selftest`` (also ``xrayviewer selftest``): check an installation and print a pass/fail
table with timings; exit status 0 when every check passed, 1 otherwise. For the admin after an install
(frozen build) and for developers (from source); see docs/installer.md."""

from __future__ import annotations

import argparse
import os
import sys

from xrayviewer import __version__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the selftest's flags."""
    parser.add_argument("--no-window", action="store_true", help="skip the main-window check (no Qt)")


def training_check() -> str:
    """Training's packages in the full build and from source; the lean build says it has none (a pass)."""
    from xrayviewer.training.availability import missing_training_packages

    missing = missing_training_packages()
    if missing:
        return f"not in this build (the lean viewer build, no {', '.join(missing)}): needs the full build"
    import torch
    import torchxrayvision  # noqa: F401  (its import-time data files must be in the full build)

    return f"torch {torch.__version__}, CUDA {'available' if torch.cuda.is_available() else 'not available'}"


def run(args: argparse.Namespace) -> int:
    """Run every check, print the table; 0 when all passed."""
    from xrayviewer.engine import paths
    from xrayviewer.engine.selftest import SAMPLES, engine_checks, format_table, run_checks

    where = f"frozen build in {paths.app_root()}" if paths.frozen() else f"from source, {sys.executable}"
    print(f"XRayViewer {__version__} selftest ({where})", flush=True)
    checks = engine_checks()
    checks.append(("training", training_check))
    if not args.no_window:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # the admin's screen stays untouched

        def window() -> str:
            from xrayviewer.gui.selftest import check_window

            return check_window(paths.resources_dir() / "selftest" / SAMPLES["RLE DICOM"])

        checks.append(("main window", window))
    results = run_checks(checks)
    print(format_table(results), flush=True)
    return 0 if all(r.ok for r in results) else 1
