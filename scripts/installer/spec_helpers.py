"""What build_installer.spec keeps and leaves out, in plain Python so that it can be read and tested.

PyInstaller's Qt hooks collect every plugin of each kind QtGui can use (27 platform, input, EGL, SQL, QML …
plugins) and then every Qt library those plugins link (QtQuick, QtQml, QtPdf, QtVirtualKeyboard …), which
XRayViewer never loads. ``prune`` drops the plugins the viewer does not need, then every Qt library that no
kept binary links any more, and Qt's translations (the app is English only).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path, PurePath

# never in any build: test and notebook tools, Tk, the documentation tools
ALWAYS_EXCLUDED = [
    "tkinter", "_tkinter", "pytest", "_pytest", "hypothesis", "IPython", "jupyter_client", "notebook",
    "pytestqt", "pytorch_grad_cam", "import_linter", "grimp", "ruff", "pydoc_data", "lib2to3",
]
# what the lean build leaves out: training and torch inference (the full build has them)
LEAN_EXCLUDED = [
    "torch", "torchvision", "torchxrayvision", "triton", "nvidia", "cuda", "sklearn", "scipy", "skimage",
    "onnx",  # writes graphs (training); running them needs only onnxruntime
    "pandas", "tqdm", "markdown_it", "sympy", "networkx", "imageio", "tifffile", "joblib", "threadpoolctl",
]
# what the full build leaves out: triton is torch.compile's GPU kernel compiler (0.9 GB); XRayViewer never
# compiles (torch imports it only for torch.compile / inductor)
FULL_EXCLUDED = ["triton"]
# packages whose presence in a lean build is a mistake (tests/test_installer.py and the build script check)
LEAN_FORBIDDEN = ("torch", "torchvision", "torchxrayvision", "triton", "nvidia", "sklearn", "scipy",
                  "skimage")

# data the lean build does without: matplotlib only lends it the heat maps' colormap (no text, no fonts)
LEAN_DROPPED_DATA = ("matplotlib/mpl-data/fonts/", "matplotlib/mpl-data/sample_data/")

# files of a model bundle the app reads (not the training reports, plots or predictions a run leaves)
BUNDLE_FILES = ("model.json", "model.onnx", "weights.safetensors", "ood.safetensors")

# Qt plugin folder -> plugin names kept ("*": every one); a folder not named is dropped whole.
QT_PLUGINS_KEPT: dict[str, set[str]] = {
    # X11, Wayland, no screen (the selftest, CI), the minimal one Qt falls back to; Windows; macOS
    "platforms": {"qxcb", "qwayland", "qwayland-egl", "qwayland-generic", "qoffscreen", "qminimal",
                  "qwindows", "qdirect2d", "qcocoa"},
    "platformthemes": {"qxdgdesktopportal"},  # native file dialogs on GNOME/KDE through the portal (D-Bus)
    "platforminputcontexts": {"composeplatforminputcontextplugin", "ibusplatforminputcontextplugin"},
    "xcbglintegrations": {"*"},
    "wayland-decoration-client": {"*"},
    "wayland-graphics-integration-client": {"*"},
    "wayland-shell-integration": {"xdg-shell", "wl-shell-plugin"},
    "imageformats": {"qgif", "qico", "qjpeg", "qsvg", "qtiff", "qwebp", "qicns", "qtga", "qwbmp"},  # not qpdf
    "iconengines": {"*"},
    "styles": {"*"},  # Qt 6 has Fusion built in; Windows/macOS ship qmodernwindowsstyle / qmacstyle here
}

_PLUGIN_DIR = re.compile(r"(?:^|/)(?:PySide6/)?(?:Qt6?/)?plugins/([^/]+)/([^/]+)$")


def model_files(models_dir: Path) -> list[tuple[str, str]]:
    """(source, destination folder) for every bundle file under ``models/`` (and models/README.md)."""
    out = []
    readme = models_dir / "README.md"
    if readme.is_file():
        out.append((str(readme), "models"))
    for card in sorted(models_dir.glob("*/model.json")):
        for name in BUNDLE_FILES:
            path = card.parent / name
            if path.is_file():
                out.append((str(path), f"models/{card.parent.name}"))
    return out


def plugin_of(dest: str) -> tuple[str, str] | None:
    """(plugin folder, plugin name without lib prefix and suffix) when ``dest`` is a Qt plugin."""
    match = _PLUGIN_DIR.search(PurePath(dest).as_posix())
    if not match:
        return None
    return match.group(1), match.group(2).split(".")[0].removeprefix("lib")


def plugin_kept(folder: str, name: str) -> bool:
    """Whether the plugin ``folder/name`` belongs in the build."""
    kept = QT_PLUGINS_KEPT.get(folder)
    return kept is not None and ("*" in kept or name in kept)


def _linked_names(source: str) -> set[str]:
    from PyInstaller.depend import bindepend

    try:
        return {PurePath(name).name for name, _ in bindepend.get_imports(source)}
    except Exception:  # unreadable: keep what it may link
        return {"*"}


def prune(binaries, datas, flavour: str, linked=_linked_names):
    """The binaries and datas TOCs without the unneeded Qt plugins, the libraries that only those plugins
    linked (QtQuick, QtQml, QtPdf, GTK, Cairo, …), and Qt's translations. ``linked(source) -> names`` lists
    the libraries a binary links, transitively (ldd; pefile/otool elsewhere)."""
    kept, dropped = [], []
    for entry in binaries:
        plugin = plugin_of(entry[0])
        (dropped if plugin is not None and not plugin_kept(*plugin) else kept).append(entry)
    candidates: set[str] = set()
    for entry in dropped:
        candidates |= linked(entry[1])
    needed: set[str] = set()
    for entry in kept:
        if PurePath(entry[0]).name not in candidates:
            needed |= linked(entry[1])
    if "*" in needed:  # a kept binary could not be read: drop only the plugins themselves
        candidates = set()
    gone = candidates - needed
    binaries = [e for e in kept if PurePath(e[0]).name not in gone]
    dropped_data = LEAN_DROPPED_DATA if flavour == "lean" else ()
    datas = [e for e in datas if not _translation(e[0]) and not _dropped_plugin_data(e[0])
             and not PurePath(e[0]).as_posix().startswith(dropped_data)
             and not (len(e) > 2 and e[2] == "SYMLINK" and PurePath(e[1]).name in gone)]
    return binaries, datas


def _translation(dest: str) -> bool:
    return "/translations/" in f"/{PurePath(dest).as_posix()}"


def _dropped_plugin_data(dest: str) -> bool:
    plugin = plugin_of(dest)
    return plugin is not None and not plugin_kept(*plugin)


def forbidden_in(folder: Path) -> list[str]:
    """The LEAN_FORBIDDEN packages and CUDA libraries found in a built folder (empty: a good lean build)."""
    found = set()
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        for part in parts:
            name = part.split(".")[0].split("-")[0]
            if name in LEAN_FORBIDDEN:
                found.add(name)
        if path.is_file() and re.match(r"lib(cudnn|cublas|cudart|nccl|cusparse|cufft)", path.name):
            found.add(path.name)
    return sorted(found)


_VENDORED = re.compile(r"-[0-9a-f]{8}[.-]")  # auditwheel's hashed copies (numpy.libs/libscipy_openblas64_-…)


def strippable(folder: Path) -> list[Path]:
    """The shared libraries of a Linux build whose symbols can be stripped: not the ones auditwheel vendored
    (``*.libs/`` or a hashed name): patchelf rewrote those, and strip breaks them ("ELF load command
    address/offset not page-aligned")."""
    found = []
    for path in sorted(folder.rglob("*.so*")):
        if path.is_symlink() or not path.is_file() or any(p.endswith(".libs") for p in path.parts):
            continue
        if not _VENDORED.search(path.name) and re.search(r"\.so(\.[0-9]+)*$", path.name):
            found.append(path)
    return found


def strip_build(folder: Path) -> int:
    """``strip --strip-unneeded`` each :func:`strippable` library; the bytes saved."""
    import subprocess

    before = sum(p.stat().st_size for p in strippable(folder))
    for path in strippable(folder):
        subprocess.run(["strip", "--strip-unneeded", str(path)], check=False, capture_output=True)
    return before - sum(p.stat().st_size for p in strippable(folder))


def _main(argv: list[str]) -> int:
    """``spec_helpers.py check-lean FOLDER``: fail when the lean build holds torch, SciPy, CUDA …;
    ``spec_helpers.py strip FOLDER``: strip the libraries that can be."""
    if len(argv) == 2 and argv[0] == "strip":
        print(f"[strip] {strip_build(Path(argv[1])) / 1e6:.0f} MB of symbols removed")
        return 0
    if len(argv) != 2 or argv[0] != "check-lean":
        print("usage: spec_helpers.py check-lean|strip FOLDER", file=sys.stderr)
        return 2
    found = forbidden_in(Path(argv[1]))
    if found:
        print(f"[check-lean] the lean build holds {', '.join(found)}", file=sys.stderr)
        return 1
    print(f"[check-lean] {argv[1]}: no torch, SciPy, scikit-learn or CUDA")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
