"""imaging.files: the one rule for which files are images (Open, folders, thumbnails, predict, training)."""

import os

import pytest

from xrayviewer.imaging.files import IMAGE_SUFFIXES, find_images, is_dicom, is_image_file, open_dialog_filter

DICOM_HEAD = b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI"


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / ".cache").mkdir()
    for name in ("a/x.png", "a/b/y.dcm", "a/notes.txt", "a/.hidden.png", "a/.cache/z.png", "a/README"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a/b/noext").write_bytes(DICOM_HEAD)  # a PACS export without extension
    (tmp_path / "a/bare").write_bytes(b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100")  # DICOM without preamble
    (tmp_path / "a/folder.dcm").mkdir()  # a directory named like an image
    return tmp_path / "a"


def test_folders_give_their_images_recursively_sorted(tree):
    assert find_images([tree], recursive=True) == [tree / "b/noext", tree / "b/y.dcm", tree / "bare",
                                                   tree / "x.png"]


def test_folders_give_only_their_own_images_without_recursion(tree):
    assert find_images([tree]) == [tree / "bare", tree / "x.png"]


def test_files_given_explicitly_are_kept_as_they_are(tree):
    given = [tree / "notes.txt", tree / "missing.png"]
    assert find_images(given) == given


def test_linked_folders_are_not_followed(tree):
    os.symlink(tree, tree / "b" / "loop")
    assert find_images([tree], recursive=True) == [tree / "b/noext", tree / "b/y.dcm", tree / "bare",
                                                   tree / "x.png"]


def test_the_rule_for_one_file(tree):
    assert is_image_file(tree / "x.png") and is_image_file(tree / "b/noext")
    assert not is_image_file(tree / "README") and not is_image_file(tree / ".hidden.png")
    assert not is_image_file(tree / "folder.dcm") and not is_image_file(tree / "missing.png")
    assert is_dicom(tree / "b/noext") and is_dicom(tree / "bare") and not is_dicom(tree / "README")


def test_the_open_dialog_names_every_suffix():
    text = open_dialog_filter()
    assert all(f"*{s}" in text for s in IMAGE_SUFFIXES) and "All files (*)" in text
