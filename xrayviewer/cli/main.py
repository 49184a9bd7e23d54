"""Top-level dispatcher for the ``xrayviewer`` command.

``xrayviewer [FILE ...]`` opens the viewer; ``xrayviewer COMMAND ...`` runs a headless command.
``xrayviewer --train ...`` is the training mode's documented spelling, same as ``xrayviewer train``.
Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their command runs, so ``--help`` and ``predict`` never load Qt.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import sys
from collections.abc import Sequence

from xrayviewer import __version__

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "predict": ("xrayviewer.cli.predict", "score images with an installed model (table or --json lines)"),
    "models": ("xrayviewer.cli.models", "list installed model bundles"),
    "train": ("xrayviewer.cli.train", "train a model bundle headless (same as --train)"),
    "recalibrate": ("xrayviewer.cli.recalibrate", "refit an installed bundle's calibration and thresholds on "
                    "a site's labelled films (weights unchanged)"),
    "selftest": ("xrayviewer.cli.selftest", "check this installation: decoders, models, a synthetic film, "
                 "the window (same as --selftest)"),
}

#: commands that need training's packages (torch …): the lean build says so instead of running them
NEEDS_TRAINING = frozenset({"train", "recalibrate"})

EPILOG = "commands:\n" + "\n".join(f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()) + (
    "\n\n'xrayviewer COMMAND --help' documents each command. "
    "'xrayviewer --train ...' is the same as 'xrayviewer train ...', "
    "'xrayviewer --selftest' as 'xrayviewer selftest'."
)


def _viewer_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xrayviewer",
        description="XRayViewer: read chest X-rays (DICOM, PNG, JPEG) with a DenseNet second opinion.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", help="images or folders to open in the viewer")
    parser.add_argument("--version", action="version", version=f"xrayviewer {__version__}")
    parser.add_argument(
        "--train", action="store_true", help="headless training mode (see 'xrayviewer train --help')"
    )
    parser.add_argument(
        "--selftest", action="store_true", help="check this installation, print a pass/fail table, exit"
    )
    return parser


def _run_command(name: str, argv: Sequence[str]) -> int:
    module_name, text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"xrayviewer {name}", description=text)
    module.add_arguments(parser)
    args = parser.parse_args(list(argv))
    if name in NEEDS_TRAINING:
        from xrayviewer.training.availability import unavailable_reason

        reason = unavailable_reason()
        if reason:
            print(f"xrayviewer {name}: {reason}", file=sys.stderr)
            return 2
    return int(module.run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xrayviewer`` command line; returns the process exit status."""
    multiprocessing.freeze_support()  # the viewer decodes in spawned processes; needed in a PyInstaller build
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return _run_command(argv[0], argv[1:])
    for flag in ("--train", "--selftest"):  # the documented spellings of two commands
        if flag in argv:
            return _run_command(flag.removeprefix("--"), [a for a in argv if a != flag])
    args = _viewer_parser().parse_args(argv)
    from xrayviewer.gui.app import run_viewer  # Qt is imported only when the viewer starts

    return run_viewer(args.files)
