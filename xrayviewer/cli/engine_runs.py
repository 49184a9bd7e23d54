"""What the commands that run the training engine (`train`, `recalibrate`) share: the ``--events`` option and
Ctrl-C handling (once: stop at the next batch; twice: abort)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def add_events_option(parser: argparse.ArgumentParser, text: str) -> None:
    """``--events text|json``: progress as ``text`` (the default) or as JSON lines on stdout."""
    parser.add_argument(
        "--events",
        choices=("text", "json"),
        default="text",
        help=f"progress as {text} (default) or JSON lines on stdout",
    )


def install_cancel(cancel: threading.Event) -> None:
    """Ctrl-C (or, on Windows, the CTRL_BREAK_EVENT a parent process sends) sets ``cancel``; a second one
    raises ``KeyboardInterrupt``."""

    def handler(signum, frame):
        if cancel.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        cancel.set()
        print("\nstopping after this batch (Ctrl-C again to abort)...", file=sys.stderr)

    signal.signal(signal.SIGINT, handler)
    if hasattr(signal, "SIGBREAK"):  # Windows: no SIGINT reaches a child there
        signal.signal(signal.SIGBREAK, handler)
