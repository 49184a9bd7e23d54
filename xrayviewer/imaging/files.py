"""Which files are images: one rule for Open, drag & drop, folders, thumbnails, ``predict`` and training.

A file is an image when its suffix is one of :data:`IMAGE_SUFFIXES`, or when it has no suffix and its first
bytes are DICOM's (PACS exports often have no extension). Hidden files (``.name``) are skipped in folders.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

IMAGE_SUFFIXES = (".dcm", ".dicom", ".dic", ".png", ".jpg", ".jpeg", ".tif", ".tiff")
DICOM_MARKER_OFFSET = 128  # PS3.10 7.1: a 128-byte preamble, then "DICM"
_HEAD_BYTES = DICOM_MARKER_OFFSET + 4
# the first tag of a DICOM stream without preamble: File Meta (0002,xxxx) or Identifying (0008,xxxx) group
_BARE_DICOM_GROUPS = (b"\x02\x00", b"\x08\x00")


def has_dicom_marker(head: bytes) -> bool:
    """True when ``head`` (a file's first 132 bytes) carries the PS3.10 "DICM" marker after the preamble."""
    return head[DICOM_MARKER_OFFSET:_HEAD_BYTES] == b"DICM"


def is_dicom(path: str | Path) -> bool:
    """True when the file starts like DICOM: the "DICM" marker, or a bare stream's first group tag."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return False
    return has_dicom_marker(head) or head[:2] in _BARE_DICOM_GROUPS


def is_image_file(path: str | Path) -> bool:
    """True for a regular, non-hidden file with an image suffix, or without suffix but DICOM content."""
    path = Path(path)
    if path.name.startswith(".") or not path.is_file():
        return False
    suffix = path.suffix.lower()
    return suffix in IMAGE_SUFFIXES or (not suffix and is_dicom(path))


def open_dialog_filter() -> str:
    """A file-dialog filter naming every image suffix (extensionless DICOMs: "All files")."""
    patterns = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
    return f"Images ({patterns});;All files (*)"


def find_images(paths: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Files given explicitly, as they are; folders contribute their image files sorted by path (their
    sub-folders too when ``recursive``; symbolic links to folders are not followed)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            found.append(path)
            continue
        if recursive:
            candidates = [Path(top) / name for top, _, names in os.walk(path) for name in names]
            # hidden folders are skipped like hidden files
            candidates = [p for p in candidates if not any(part.startswith(".")
                                                           for part in p.relative_to(path).parts[:-1])]
        else:
            candidates = list(path.iterdir())
        found.extend(sorted(p for p in candidates if is_image_file(p)))
    return found
