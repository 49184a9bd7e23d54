"""`xrayviewer predict` (being built: see the issue tracker)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Say clearly that the command is not available yet."""
    print("xrayviewer predict: not available in this build yet", file=sys.stderr)
    return 2
