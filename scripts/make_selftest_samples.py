"""Write the selftest's synthetic films into resources/selftest/ (``xrayviewer --selftest`` reads them).

A drawn chest phantom (no patient data: every identifying tag says SYNTHETIC), 320×256, 12-bit, saved as a
JPEG 2000 lossless DICOM, an RLE lossless DICOM and a 16-bit PNG. Deterministic: rerunning it rewrites the
same pixels. Run from the repository root: ``.venv/bin/python scripts/make_selftest_samples.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from pydicom import Dataset
from pydicom.uid import JPEG2000Lossless, RLELossless

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "resources" / "selftest"
DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
UID_ROOT = "1.2.826.0.1.3680043.10.1499.7."  # fixed UIDs: the files are the same on every run


def phantom(rows: int = 320, cols: int = 256) -> np.ndarray:
    """A 12-bit frontal chest phantom: soft tissue, two darker lungs, a spine and a heart shadow."""
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    picture = np.full((rows, cols), 600.0, np.float32)
    body = ((x - cols / 2) / (cols * 0.46)) ** 2 + ((y - rows * 0.55) / (rows * 0.52)) ** 2 < 1
    picture[body] = 2600
    for side in (-1, 1):
        dx, dy = (x - cols / 2 - side * cols * 0.2) / (cols * 0.15), (y - rows * 0.48) / (rows * 0.3)
        lung = dx**2 + dy**2
        picture[lung < 1] = 1300
    picture[np.abs(x - cols / 2) < cols * 0.04] = 3600  # spine
    heart = ((x - cols * 0.56) / (cols * 0.14)) ** 2 + ((y - rows * 0.62) / (rows * 0.13)) ** 2 < 1
    picture[heart] = 3000
    for rib in range(6):  # faint ribs over the lungs
        picture[np.abs(y - rows * (0.28 + 0.075 * rib) - 0.04 * np.abs(x - cols / 2)) < 2.5] += 350
    picture = cv2.GaussianBlur(picture, (0, 0), 2.0)
    noise = np.random.default_rng(7).normal(0, 40, picture.shape)
    return np.clip(picture + noise, 0, 4095).astype(np.uint16)


def dataset(pixels: np.ndarray, number: int) -> Dataset:
    """A DX chest PA dataset around ``pixels`` whose identifying tags all say SYNTHETIC."""
    ds = Dataset()
    ds.SOPClassUID = DX_STORAGE
    ds.SOPInstanceUID = f"{UID_ROOT}{number}"
    ds.StudyInstanceUID = f"{UID_ROOT}100"
    ds.SeriesInstanceUID = f"{UID_ROOT}200"
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientName = "SELFTEST^SYNTHETIC"
    ds.PatientID = "SYNTHETIC"
    ds.PatientAge = "040Y"
    ds.StudyDescription = "XRayViewer selftest phantom (synthetic, not a patient)"
    ds.set_pixel_data(pixels, "MONOCHROME2", 12)
    return ds


def main() -> int:
    """Write selftest-j2k.dcm, selftest-rle.dcm and selftest.png; print their sizes."""
    OUT.mkdir(parents=True, exist_ok=True)
    pixels = phantom()
    for number, (name, syntax) in enumerate((("selftest-j2k.dcm", JPEG2000Lossless),
                                             ("selftest-rle.dcm", RLELossless)), start=1):
        ds = dataset(pixels, number)
        ds.compress(syntax)
        ds.save_as(OUT / name, enforce_file_format=True)
    cv2.imwrite(str(OUT / "selftest.png"), (pixels.astype(np.uint32) * 16).astype(np.uint16))
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
