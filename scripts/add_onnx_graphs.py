"""Give model bundles written before bundles carried ONNX graphs their ``model.onnx`` (weights untouched).

    .venv/bin/python scripts/add_onnx_graphs.py models/*/
"""

from __future__ import annotations

import sys

from xrayviewer.engine.bundle import add_graph, read_bundle


def main(argv: list[str]) -> int:
    """Add a graph to every bundle folder named; prints one line each."""
    for folder in argv:
        bundle = add_graph(read_bundle(folder))
        print(f"{bundle.name}: {bundle.card.onnx_file} sha256 {bundle.card.onnx_sha256[:12]}…")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
