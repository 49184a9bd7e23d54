"""Bad input: every failure is an ImageError subclass with a message a clinician can act on, and no PHI."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest
from imaging_dicoms import PHI, dataset, ramp, write
from pydicom import Dataset
from pydicom.pixels import get_decoder
from pydicom.uid import MPEG2MPML, JPEG2000Lossless, generate_uid

from xrayviewer.imaging import (
    DecoderMissingError,
    ImageError,
    UnreadableImageError,
    UnsupportedImageError,
    open_image,
    reader,
)
from xrayviewer.imaging.dicom import MAX_FRAME_PIXELS


def _non_image(sop_class: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "SR"
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _absurd(rows: int, cols: int, frames: int, syntax: str | None = None) -> Dataset:
    ds = dataset(ramp(rows=4, cols=4), bits_stored=12)
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    if syntax:
        ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * 64])
        ds.file_meta.TransferSyntaxUID = syntax
    return ds


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, type[ImageError], str]]:
    """name → (file, exact error type, words the message must contain)."""
    files = {}

    def add(name: str, data: bytes, error: type[ImageError], words: str) -> None:
        (tmp_path / name).write_bytes(data)
        files[name] = (tmp_path / name, error, words)

    good = write(dataset(ramp(), bits_stored=12), tmp_path / "good.dcm").read_bytes()
    j2k = write(dataset(ramp(), bits_stored=12), tmp_path / "good_j2k.dcm", JPEG2000Lossless).read_bytes()
    add("empty.dcm", b"", UnreadableImageError, "empty")
    add("truncated_pixels.dcm", good[:-1000], UnreadableImageError,
        f"truncated pixel data: expected {32 * 48 * 2} bytes, got {32 * 48 * 2 - 1000}")
    add("truncated_header.dcm", good[:300], UnreadableImageError, "truncated")
    add("truncated_j2k.dcm", j2k[: len(j2k) // 2], UnreadableImageError, "truncated")
    codestream = j2k.index(b"\xff\x4f\xff\x51")  # JPEG 2000 SOC + SIZ markers
    garbled = j2k[: codestream + 4] + bytes(len(j2k) - codestream - 24) + j2k[-20:]  # same lengths
    add("corrupt_j2k.dcm", garbled, UnreadableImageError,
        "pixel data could not be decoded: the file is truncated or corrupt")
    add("notes.dcm", b"Patient Doe^Jane has a cough. Please review.\n" * 20, UnsupportedImageError,
        "not an image")
    add("random.bin", np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        UnsupportedImageError, "not an image")
    add("truncated.png", _png_bytes()[:200], UnreadableImageError, "PNG")
    add("truncated.jpg", _jpeg_bytes()[:-300], UnreadableImageError, "JPEG")
    for name, ds in {
        "report.dcm": _non_image("1.2.840.10008.5.1.4.1.1.88.22"),  # Enhanced SR
        "pdf.dcm": _non_image("1.2.840.10008.5.1.4.1.1.104.1"),  # Encapsulated PDF
        "absurd_size.dcm": _absurd(65535, 65535, 1),
        "absurd_frames.dcm": _absurd(4096, 4096, 100_000),
        "absurd_j2k.dcm": _absurd(60000, 60000, 1, JPEG2000Lossless),
        "mpeg2.dcm": _absurd(16, 16, 1, MPEG2MPML),
    }.items():
        ds.save_as(tmp_path / name, enforce_file_format=True)
        files[name] = (tmp_path / name, *{
            "report.dcm": (UnsupportedImageError, "file is a DICOM Structured Report, not an image"),
            "pdf.dcm": (UnsupportedImageError, "Encapsulated PDF Storage without pixel data, not an image"),
            "absurd_size.dcm": (UnsupportedImageError, "implausible image size (65535 × 65535"),
            "absurd_frames.dcm": (UnsupportedImageError, "100000 frames"),
            "absurd_j2k.dcm": (UnsupportedImageError, "implausible image size"),
            "mpeg2.dcm": (UnsupportedImageError, "MPEG2 Main Profile / Main Level' is not supported"),
        }[name])
    return files


def _png_bytes() -> bytes:
    import cv2

    return cv2.imencode(".png", ramp(high=255, dtype="uint8"))[1].tobytes()


def _jpeg_bytes() -> bytes:
    import cv2

    return cv2.imencode(".jpg", ramp(rows=64, cols=64, high=255, dtype="uint8"))[1].tobytes()


BAD = ["empty.dcm", "truncated_pixels.dcm", "truncated_header.dcm", "truncated_j2k.dcm", "corrupt_j2k.dcm",
       "notes.dcm",
       "random.bin", "truncated.png", "truncated.jpg", "report.dcm", "pdf.dcm", "absurd_size.dcm",
       "absurd_frames.dcm", "absurd_j2k.dcm", "mpeg2.dcm"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory):
    return _bad_files(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("name", BAD)
def test_bad_input_raises_the_exact_error_type(name: str, bad_files) -> None:
    path, error, words = bad_files[name]
    with pytest.raises(ImageError) as caught:
        open_image(path)
    assert type(caught.value) is error
    assert words in str(caught.value)


def test_absurd_size_is_refused_before_decoding(bad_files, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args, **kwargs):
        raise AssertionError("decoder must not run for an absurd header")

    monkeypatch.setattr(pydicom.Dataset, "pixel_array_options", never)
    for name in ("absurd_size.dcm", "absurd_frames.dcm", "absurd_j2k.dcm"):
        with pytest.raises(UnsupportedImageError):
            open_image(bad_files[name][0])
    assert MAX_FRAME_PIXELS < 65535 * 65535


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImageError, match="file not found"):
        open_image(tmp_path / "nowhere.dcm")
    with pytest.raises(UnreadableImageError, match="not a file"):
        open_image(tmp_path)


def test_missing_decoder_says_reinstall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(dataset(ramp(), bits_stored=12), tmp_path / "j2k.dcm", JPEG2000Lossless)
    decoder = get_decoder(JPEG2000Lossless)
    monkeypatch.setattr(type(decoder), "is_available", property(lambda self: False))
    with pytest.raises(DecoderMissingError, match=r"JPEG 2000 .* decoder missing: reinstall"):
        open_image(path)


def test_unexpected_decoder_failure_is_reported_not_raised(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(dataset(ramp(), bits_stored=12), tmp_path / "ok.dcm")

    def broken(_ds, _path):
        raise KeyError("bug deep in a plugin")

    monkeypatch.setattr(reader, "dicom_image", broken)
    with pytest.raises(UnreadableImageError, match=r"could not be read \(KeyError\)"):
        open_image(path)


def test_wrong_extension_is_read_by_content(tmp_path: Path) -> None:
    png_named_dcm = tmp_path / "image.dcm"
    png_named_dcm.write_bytes(_png_bytes())
    assert open_image(png_named_dcm).format == "PNG"
    jpeg_named_png = tmp_path / "image.png"
    jpeg_named_png.write_bytes(_jpeg_bytes())
    assert open_image(jpeg_named_png).format == "JPEG"


def test_no_patient_data_in_logs_warnings_or_errors(bad_files, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture,
                                                    recwarn: pytest.WarningsRecorder) -> None:
    good = write(dataset(ramp(), bits_stored=12), tmp_path / "phi.dcm")
    messages = []
    with caplog.at_level(logging.DEBUG):
        image = open_image(good)
        for name in BAD:
            try:
                open_image(bad_files[name][0])
            except ImageError as exc:
                messages.append(str(exc))
    text = "\n".join([caplog.text, *messages, *(str(w.message) for w in recwarn), repr(image.metadata),
                      repr(image.warnings)])
    assert len(messages) == len(BAD)
    for secret in ("Doe", "Jane", "PID-48213", "19450317", "1945"):
        assert secret not in text
