"""The installer: what build_installer.spec keeps and prunes (scripts/installer/spec_helpers.py), and — marked
slow — the lean build itself: built by scripts/build-installer.sh, unpacked from its archive, its frozen
``--selftest`` passing, and its frozen ``predict --json`` on real shared films giving the scores of the
unfrozen app within 1e-4.

The built archive is cached in ``$XRAYVIEWER_CI_CACHE`` (default ``~/.cache/xrayviewer-ci``) under a hash of
everything that goes into it (the spec, pyproject.toml, the build scripts, xrayviewer/, models/,
resources/): CI builds again only when one of them changed (about 2 minutes; 20 s when cached).
``XRAYVIEWER_REBUILD_INSTALLER=1`` ignores the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "installer"))
import spec_helpers  # noqa: E402

# ---------------------------------------------------------------------------------------- spec helpers


def test_qt_plugins_are_recognised_wherever_pyinstaller_puts_them():
    assert spec_helpers.plugin_of("PySide6/Qt/plugins/platforms/libqxcb.so") == ("platforms", "qxcb")
    assert spec_helpers.plugin_of("PySide6/plugins/imageformats/qjpeg.dll") == ("imageformats", "qjpeg")
    assert spec_helpers.plugin_of("PySide6/Qt/lib/libQt6Core.so.6") is None


@pytest.mark.parametrize(("folder", "name", "kept"), [
    ("platforms", "qxcb", True), ("platforms", "qwayland", True), ("platforms", "qoffscreen", True),
    ("platforms", "qeglfs", False), ("platforms", "qvnc", False), ("imageformats", "qjpeg", True),
    ("imageformats", "qpdf", False), ("styles", "qmodernwindowsstyle", True),
    ("sqldrivers", "qsqlite", False), ("qmltooling", "qmldbg_debugger", False),
])
def test_only_the_plugins_the_viewer_loads_are_kept(folder, name, kept):
    assert spec_helpers.plugin_kept(folder, name) is kept


def test_pruning_drops_plugins_and_the_libraries_only_they_link():
    binaries = [
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "/src/libqxcb.so", "BINARY"),
        ("PySide6/Qt/plugins/platforms/libqeglfs.so", "/src/libqeglfs.so", "BINARY"),
        ("libQt6XcbQpa.so.6", "/src/libQt6XcbQpa.so.6", "BINARY"),
        ("libQt6EglFSDeviceIntegration.so.6", "/src/libQt6EglFS.so.6", "BINARY"),
        ("libQt6Core.so.6", "/src/libQt6Core.so.6", "BINARY"),
    ]
    links = {
        "/src/libqxcb.so": {"libQt6XcbQpa.so.6", "libQt6Core.so.6"},
        "/src/libqeglfs.so": {"libQt6EglFSDeviceIntegration.so.6", "libQt6Core.so.6"},
    }
    datas = [("PySide6/Qt/translations/qt_de.qm", "/src/qt_de.qm", "DATA"),
             ("models/x/model.json", "/m", "DATA")]
    kept, kept_datas = spec_helpers.prune(binaries, datas, "lean", linked=lambda src: links.get(src, set()))
    assert [entry[0] for entry in kept] == ["PySide6/Qt/plugins/platforms/libqxcb.so", "libQt6XcbQpa.so.6",
                                            "libQt6Core.so.6"]
    assert kept_datas == [("models/x/model.json", "/m", "DATA")]  # Qt's translations go


def test_the_lean_build_drops_matplotlib_fonts_the_full_build_keeps_them():
    datas = [("matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf", "/f", "DATA"),
             ("matplotlib/mpl-data/matplotlibrc", "/rc", "DATA")]
    assert spec_helpers.prune([], datas, "lean", linked=lambda src: set())[1] == datas[1:]
    assert spec_helpers.prune([], datas, "full", linked=lambda src: set())[1] == datas


def test_only_libraries_auditwheel_did_not_vendor_are_stripped(tmp_path):
    for name in ("libpython3.11.so.1.0", "_libjpeg.cpython-311-x86_64-linux-gnu.so",
                 "numpy.libs/libscipy_openblas64_-32a4b2a6.so", "libavcodec-c4204469.so.62.28.101",
                 "cv2/cv2.abi3.so", "base_library.zip", "models/x/model.onnx"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "libfoo.so").symlink_to(tmp_path / "libpython3.11.so.1.0")
    names = sorted(p.relative_to(tmp_path).as_posix() for p in spec_helpers.strippable(tmp_path))
    assert names == ["_libjpeg.cpython-311-x86_64-linux-gnu.so", "cv2/cv2.abi3.so", "libpython3.11.so.1.0"]


def test_bundles_are_shipped_without_their_training_reports(tmp_path):
    bundle = tmp_path / "models" / "pneumonia"
    bundle.mkdir(parents=True)
    for name in ("model.json", "model.onnx", "weights.safetensors", "report.html", "roc.png"):
        (bundle / name).write_text("x")
    (tmp_path / "models" / "README.md").write_text("x")
    (tmp_path / "models" / "notes").mkdir()  # not a bundle: no model.json
    (tmp_path / "models" / "notes" / "weights.safetensors").write_text("x")
    shipped = {(Path(src).name, dest) for src, dest in spec_helpers.model_files(tmp_path / "models")}
    assert shipped == {("README.md", "models"), ("model.json", "models/pneumonia"),
                       ("model.onnx", "models/pneumonia"), ("weights.safetensors", "models/pneumonia")}


def test_the_lean_check_finds_torch_scipy_and_cuda_libraries(tmp_path):
    internal = tmp_path / "_internal"
    (internal / "onnxruntime").mkdir(parents=True)
    (internal / "numpy.libs").mkdir()
    assert spec_helpers.forbidden_in(tmp_path) == []
    (internal / "torch" / "lib").mkdir(parents=True)
    (internal / "scipy-1.15.dist-info").mkdir()
    (internal / "libcudnn.so.9").write_text("x")
    assert spec_helpers.forbidden_in(tmp_path) == ["libcudnn.so.9", "scipy", "torch"]


def test_models_and_resources_resolve_frozen_and_from_source(tmp_path, monkeypatch):
    from xrayviewer.engine import paths

    assert not paths.frozen() and paths.app_root() == ROOT
    assert paths.shipped_models_dir() == ROOT / "models" and (paths.resources_dir() / "dark.qss").is_file()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "_internal"), raising=False)
    assert paths.frozen() and paths.app_root() == tmp_path / "_internal"
    assert paths.shipped_models_dir() == tmp_path / "_internal" / "models"
    assert paths.resources_dir() == tmp_path / "_internal" / "resources"
    assert paths.models_search_path()[0] == tmp_path / "_internal" / "models"
    assert not paths.user_models_dir().is_relative_to(tmp_path)  # per user, never inside the installation


# ------------------------------------------------------------------------------ the built lean installer

KEY_INPUTS = ("build_installer.spec", "pyproject.toml", "scripts/build-installer.sh", "scripts/installer",
              "xrayviewer", "models", "resources")


def installer_key() -> str:
    """A hash of every file the lean installer is built from (sources, bundles, spec, build scripts)."""
    digest = hashlib.sha256()
    for name in KEY_INPUTS:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(file.relative_to(ROOT).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:20]


def _user_dirs(base: Path) -> dict[str, str]:
    """XDG folders under ``base``: the apps write their settings, logs and models there, not in ~."""
    return {f"XDG_{kind}_HOME": str(base / kind.lower()) for kind in ("CONFIG", "DATA", "CACHE", "STATE")}


@pytest.fixture(scope="module")
def lean_archive(tmp_path_factory) -> Path:
    """dist/xrayviewer-<version>-linux-x86_64.tar.gz of this checkout: from the cache, or built now."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the Linux installer is built on Linux")
    cache = Path(os.environ.get("XRAYVIEWER_CI_CACHE", Path.home() / ".cache" / "xrayviewer-ci"))
    cached = cache / "installer" / installer_key()
    archives = sorted(cached.glob("xrayviewer-*-linux-*.tar.gz"))
    if archives and os.environ.get("XRAYVIEWER_REBUILD_INSTALLER") != "1":
        return archives[0]
    dist = tmp_path_factory.mktemp("dist")
    # the build venv is kept in the cache (reinstalled when pyproject.toml changes); PyInstaller's work
    # files go with it
    build = ["bash", str(ROOT / "scripts" / "build-installer.sh"), "--no-deb", "--dist", str(dist),
             "--build-dir", str(cache / "build")]
    done = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, timeout=1500,
                          env={**os.environ, **_user_dirs(dist / "home")})
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    built = sorted(dist.glob("xrayviewer-*-linux-*.tar.gz"))
    assert len(built) == 1, list(dist.iterdir())
    if cached.parent.is_dir():  # one archive per key is plenty: drop the older ones
        shutil.rmtree(cached.parent)
    cached.mkdir(parents=True)
    return Path(shutil.copy2(built[0], cached / built[0].name))


@pytest.fixture(scope="module")
def frozen_app(lean_archive, tmp_path_factory) -> Path:
    """The ``xrayviewer`` executable unpacked from the archive (the contract: one folder holding it)."""
    target = tmp_path_factory.mktemp("installed")
    with tarfile.open(lean_archive) as archive:
        tops = {Path(name).parts[0] for name in archive.getnames()}
        archive.extractall(target, filter="tar")
    assert tops == {lean_archive.name.removesuffix(".tar.gz")}
    app = target / tops.pop() / "xrayviewer"
    assert app.is_file() and os.access(app, os.X_OK)
    return app


def _installed_files(app: Path) -> set[Path]:
    return {p for p in app.parent.rglob("*") if "__pycache__" not in p.parts}


@pytest.mark.slow
def test_the_frozen_selftest_passes_and_writes_nothing_into_the_installation(frozen_app, tmp_path):
    before = _installed_files(frozen_app)
    env = {**os.environ, **_user_dirs(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([str(frozen_app), "--selftest"], capture_output=True, text=True, timeout=300,
                          env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "(frozen build in" in done.stdout and "selftest passed" in done.stdout
    for check in ("decoders", "model pneumonia", "model gate", "read JPEG 2000 DICOM", "read RLE DICOM",
                  "inference + heat map", "main window"):
        assert any(line.startswith(check) and " PASS " in line for line in done.stdout.splitlines()), check
    assert "lean viewer build" in done.stdout  # no torch inside
    assert _installed_files(frozen_app) == before
    assert f"settings {tmp_path / 'config' / 'XRayViewer'}" in done.stdout  # the per-user settings file


def _predict(command: list[str], films: list[str], model: str, env: dict) -> dict[str, dict]:
    args = ["predict", "--json", "--device", "cpu", "--model", model, "--score-refused", *films]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode in (0, 2), done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {Path(row["file"]).name: row for row in rows}


@pytest.mark.slow
def test_frozen_predict_gives_the_unfrozen_scores(frozen_app, shared_data, kermany_rows, tmp_path):
    films = [row["path"] for row in kermany_rows[:2] + kermany_rows[-2:]]
    films += [str(shared_data / "dicom" / name) for name in (
        "nema_rg1_cr_chest_mono1_j2k_lossy.dcm",  # JPEG 2000, 15-bit MONOCHROME1
        "siim_cr_chest_pa_jpegbaseline.dcm",      # JPEG baseline
        "nonchest_jpegls_signed_16.dcm",          # JPEG-LS, refused (not a chest film) with the same words
    )]
    env = {**os.environ, **_user_dirs(tmp_path), "OMP_WAIT_POLICY": "PASSIVE"}
    for model in ("pneumonia", "pneumonia-type", "cardiomegaly"):
        frozen = _predict([str(frozen_app)], films, model, env)
        source = _predict([sys.executable, "-m", "xrayviewer"], films, model, env)
        assert frozen.keys() == source.keys() == {Path(f).name for f in films}
        scored = 0
        for name, want in source.items():
            got = frozen[name]
            assert got["error"] == want["error"] and got["model"] == want["model"] == model, name
            if want["scores"]:
                scored += 1
                assert got["scores"].keys() == want["scores"].keys()
                for finding, score in want["scores"].items():
                    assert abs(got["scores"][finding] - score) <= 1e-4, (model, name, finding)
                assert got["positive"] == want["positive"] and got["top"] == want["top"]
        assert scored >= 6, model
