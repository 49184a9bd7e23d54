"""`xrayviewer models`: list the installed model bundles, one line each."""

from __future__ import annotations

import argparse
import sys

from xrayviewer.engine.bundle import scan_bundles, xrv_cached_bundle, xrv_missing_message
from xrayviewer.engine.paths import MODELS_DIR_ENV, models_search_path
from xrayviewer.training.availability import training_available


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--models-dir`` adds a folder to the search path."""
    parser.add_argument("--models-dir", action="append", default=[], metavar="DIR",
                        help=f"also look for bundles here (repeatable; also ${MODELS_DIR_ENV})")


def run(args: argparse.Namespace) -> int:
    """Print ``name version: summary  [source] path`` per bundle; exit 2 when none is installed."""
    bundles, problems = scan_bundles(args.models_dir)
    for bundle in bundles:
        print(f"{bundle.card.summary()}  [{bundle.source}] {bundle.path}")
    for problem in problems:
        print(f"unusable bundle: {problem}", file=sys.stderr)
    if xrv_cached_bundle() is None and training_available():  # it runs on torch only: not in the lean build
        print(f"note: {xrv_missing_message()}", file=sys.stderr)
    if not bundles:
        folders = ", ".join(str(p) for p in models_search_path(args.models_dir))
        print(f"no model bundle is installed (searched: {folders})", file=sys.stderr)
        return 2
    return 0
