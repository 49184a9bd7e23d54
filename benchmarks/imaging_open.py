"""Time open_image + render on the shared DICOM corpus against pydicom's bare decode (best of N runs).

Run: .venv/bin/python benchmarks/imaging_open.py [--repeat 3] [--data ../shared/data]
Prints per file: pydicom dcmread+pixel_array ms, open_image ms, render ms, and open_image / pydicom ratio.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pydicom

from xrayviewer.imaging import open_image
from xrayviewer.imaging.lut import render


def best_ms(fn, repeat: int) -> float:
    """Fastest of ``repeat`` calls, in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    print(f"{'file':48s} {'pydicom ms':>10s} {'open ms':>8s} {'render ms':>9s} {'open/pydicom':>12s}")
    totals = [0.0, 0.0]
    for path in sorted((args.data / "dicom").glob("*.dcm")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bare = best_ms(lambda p=path: pydicom.dcmread(p).pixel_array, args.repeat)
        ours = best_ms(lambda p=path: open_image(p), args.repeat)
        image = open_image(path)
        shown = best_ms(lambda im=image: render(im), args.repeat)
        totals[0] += bare
        totals[1] += ours
        print(f"{path.name:48s} {bare:10.1f} {ours:8.1f} {shown:9.1f} {ours / bare:12.2f}")
    print(f"{'total':48s} {totals[0]:10.1f} {totals[1]:8.1f} {'':9s} {totals[1] / totals[0]:12.2f}")


if __name__ == "__main__":
    main()
