"""Builders for small synthetic DICOM files used by the imaging tests (written with pydicom into tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
PHI = {"PatientName": "Doe^Jane", "PatientID": "PID-48213", "PatientBirthDate": "19450317"}


def ramp(rows: int = 32, cols: int = 48, low: int = 0, high: int = 4095, dtype: str = "uint16") -> np.ndarray:
    """A deterministic image whose values sweep low..high (every row a different phase)."""
    values = np.linspace(low, high, rows * cols).reshape(rows, cols)
    return np.rint(values).astype(dtype)


def dataset(pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int | None = None,
            **tags: object) -> Dataset:
    """A DX dataset with patient tags around ``pixels``: 2-D grey, 3-D multi-frame or (rows, cols, 3) RGB."""
    ds = Dataset()
    ds.SOPClassUID = DX_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.set_pixel_data(pixels, photometric, bits_stored or pixels.dtype.itemsize * 8)
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    return ds


def write(ds: Dataset, path: Path, syntax: str | None = None, preamble: bool = True) -> Path:
    """Save ``ds``, compressed to ``syntax`` when given; ``preamble=False`` drops preamble and meta header."""
    if syntax == DeflatedExplicitVRLittleEndian:  # deflate compresses the whole dataset on write
        ds.file_meta.TransferSyntaxUID = syntax
    elif syntax is not None:
        ds.compress(syntax)
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:
        del ds.file_meta
        ds.preamble = None
        pydicom.dcmwrite(path, ds, implicit_vr=False, little_endian=True)
    return path


def film_dicom(film: Path, path: Path, **tags: object) -> Path:
    """A DX DICOM (chest, PA unless ``tags`` say otherwise) holding the 8-bit pixels of a real film file."""
    import cv2

    pixels = cv2.imread(str(film), cv2.IMREAD_GRAYSCALE)
    assert pixels is not None, film
    return write(dataset(pixels, bits_stored=8, **tags), path)


def write_jpeg_baseline(pixels: np.ndarray, path: Path, **tags: object) -> Path:
    """An 8-bit grey DICOM whose pixel data is a JPEG baseline stream encoded by OpenCV (lossless quality)."""
    import cv2

    ok, stream = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    ds = dataset(pixels, **tags)
    ds.PixelData = encapsulate([stream.tobytes()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
    ds.save_as(path, enforce_file_format=True)
    return path

