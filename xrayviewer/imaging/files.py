"""Which files are images: one rule for Open, drag & drop, folders, thumbnails, ``predict`` and training.

A file is an image when its suffix is one of :data:`IMAGE_SUFFIXES`, or when it has no suffix and its first
bytes are DICOM's (PACS exports often have no extension). Hidden files (``.name``) are skipped in folders.

Nothing here raises for an odd file-system object: a path too long for the OS, a symbolic-link loop, a FIFO,
a device or a folder named ``x.dcm`` is either skipped in a folder listing or handed on as given, and
:func:`open_regular` says what it is (:func:`os_problem`) when it is opened.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from xrayviewer.imaging.errors import UnreadableImageError

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
    """True for a regular, non-hidden file with an image suffix, or without suffix but DICOM content. A file
    with an image suffix that cannot even be looked at (a path too long for the OS) counts, so that opening
    it says why; a symbolic-link loop, a FIFO or a folder named ``x.dcm`` does not."""
    path = Path(path)
    if path.name.startswith("."):
        return False
    suffix = path.suffix.lower()
    try:
        if not path.is_file():
            return False
    except OSError:  # ENAMETOOLONG and the like: Path.is_file lets them out
        return suffix in IMAGE_SUFFIXES
    return suffix in IMAGE_SUFFIXES or (not suffix and is_dicom(path))


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a path the OS cannot even look up: it is handed on as a file, opening it says why
        return False


def open_dialog_filter() -> str:
    """A file-dialog filter naming every image suffix (extensionless DICOMs: "All files")."""
    patterns = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
    return f"Images ({patterns});;All files (*)"


@dataclass(frozen=True)
class EmptyInput:
    """A folder given as input that yields no image file, and why (``predict`` gives it a row)."""

    path: Path
    reason: str


def find_inputs(paths: Iterable[str | Path], recursive: bool = False) -> list[Path | EmptyInput]:
    """Like :func:`find_images`, with an :class:`EmptyInput` in place of each folder that yields nothing
    (empty, or not listable), so that every input can be accounted for."""
    found: list[Path | EmptyInput] = []
    for raw in paths:
        path = Path(raw)
        if not _is_dir(path):
            found.append(path)
            continue
        problems: list[OSError] = []
        if recursive:
            candidates = [Path(top) / name for top, _, names in os.walk(path, onerror=problems.append)
                          for name in names]
            # hidden folders are skipped like hidden files
            candidates = [p for p in candidates if not any(part.startswith(".")
                                                           for part in p.relative_to(path).parts[:-1])]
        else:
            try:
                candidates = list(path.iterdir())
            except OSError as exc:
                problems.append(exc)
                candidates = []
        images = sorted(p for p in candidates if is_image_file(p))
        if images:
            found.extend(images)
        elif problems and problems[0].filename in (str(path), path):
            found.append(EmptyInput(path, f"folder could not be listed: {os_problem(problems[0])}"))
        else:
            suffixes = ", ".join(IMAGE_SUFFIXES)
            found.append(EmptyInput(path, f"folder holds no image files (looked for {suffixes} and DICOM "
                                          "files without a suffix)"))
    return found


def find_images(paths: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Files given explicitly, as they are; folders contribute their image files sorted by path (their
    sub-folders too when ``recursive``; symbolic links to folders are not followed). Never raises for an odd
    path: one the OS cannot look up is handed on as a file (opening it says why)."""
    return [p for p in find_inputs(paths, recursive) if isinstance(p, Path)]


_FILE_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def os_problem(exc: OSError) -> str:
    """One line for an OS error on a path, naming the cause (never the OS's raw text alone)."""
    code = exc.errno
    if code == errno.ENAMETOOLONG:
        return "path too long for the file system (a name over 255 bytes or a path over 4096)"
    if code == errno.ELOOP:
        return "symbolic link loop: the path never reaches a file"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.ENOTDIR:
        return "file not found (a part of the path is not a folder)"
    if code == errno.ENOENT:
        return "file not found"
    if code == errno.EISDIR:
        return "not a file: a folder"
    return f"file could not be read: {exc.strerror or errno.errorcode.get(code or 0, 'I/O error')}"


def _kind(path: Path) -> int | None:
    try:
        return stat.S_IFMT(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None


def open_regular(path: str | Path) -> tuple[BinaryIO, int]:
    """Open a regular file for reading and return it with its size; ``UnreadableImageError`` naming what the
    path is otherwise. Opened non-blocking and checked with ``fstat`` on the open descriptor, so a FIFO never
    blocks and nothing can be swapped in between the check and the read."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.lexists(path):
            raise UnreadableImageError("broken symbolic link: its target does not exist") from None
        kind = _kind(path)
        if kind is not None and kind != stat.S_IFREG:  # a socket (ENXIO), a folder on Windows (EACCES)...
            raise UnreadableImageError(f"not a file: {_FILE_KINDS.get(kind, 'not a regular file')}") from None
        raise UnreadableImageError(os_problem(exc)) from None
    try:
        info = os.fstat(fd)
        kind = stat.S_IFMT(info.st_mode)
        if kind != stat.S_IFREG:
            raise UnreadableImageError(f"not a file: {_FILE_KINDS.get(kind, 'not a regular file')}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return handle, info.st_size
