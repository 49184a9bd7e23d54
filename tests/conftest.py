"""Shared fixtures: where the real public X-ray data lives (../shared/data beside the repo)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    for candidate in (os.environ.get("XRAYVIEWER_SHARED_DATA"), ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "dicom" / "index.csv").exists():
            return Path(candidate)
    return None


SHARED_DATA = _shared_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; skipped locally when absent, an error under CI (never a silent skip)."""
    if SHARED_DATA is None:
        if os.environ.get("CI"):
            pytest.fail("../shared/data not found (set XRAYVIEWER_SHARED_DATA): CI must test on real data")
        pytest.skip("../shared/data not found (set XRAYVIEWER_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def dicom_index(shared_data: Path) -> dict[str, dict[str, str]]:
    """Rows of shared/data/dicom/index.csv keyed by file name."""
    with open(shared_data / "dicom" / "index.csv", newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="session")
def kermany_rows(shared_data: Path) -> list[dict[str, str]]:
    """Rows of shared/data/kermany/labels.csv (with an absolute ``path`` added)."""
    folder = shared_data / "kermany"
    with open(folder / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["path"] = str(folder / "images" / row["file"])
    return rows


@pytest.fixture
def no_models_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Shipped, per-user (``tmp_path/user-models``), environment and torchxrayvision locations all empty."""
    from xrayviewer.engine import bundle, paths

    monkeypatch.setattr(paths, "shipped_models_dir", lambda: tmp_path / "shipped")
    monkeypatch.setattr(paths, "user_models_dir", lambda: tmp_path / "user-models")
    monkeypatch.delenv(paths.MODELS_DIR_ENV, raising=False)
    monkeypatch.setenv(bundle.XRV_CACHE_ENV, str(tmp_path / "no-xrv"))
    return tmp_path
