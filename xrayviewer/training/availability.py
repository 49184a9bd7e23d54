"""Whether training can run here: the lean installer (and a ``pip install xrayviewer`` without the ``train``
extra) has no torch, so Model ▸ Train a model…, Recalibrate, ``xrayviewer train`` and ``recalibrate`` say so
plainly instead of failing on an import. Checked without importing anything (torch takes seconds)."""

from __future__ import annotations

import importlib.util

#: import name -> distribution to install; what training and recalibration import
TRAINING_PACKAGES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "torchxrayvision": "torchxrayvision",
    "sklearn": "scikit-learn",
    "scipy": "scipy",
}

NEEDS_FULL_BUILD = (
    "Training and recalibration need the full XRayViewer build (with PyTorch); this is the lean viewer "
    "build, which reads films and runs the installed models only. Install the full build, or from source: "
    "pip install 'xrayviewer[train]'."
)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken or blocked package (sys.modules[name] = None)
        return False


def missing_training_packages() -> list[str]:
    """The distributions training needs that are not installed (empty: training can run)."""
    return [dist for module, dist in TRAINING_PACKAGES.items() if not _installed(module)]


def training_available() -> bool:
    """Whether ``xrayviewer train`` / ``recalibrate`` and the wizard can run in this installation."""
    return not missing_training_packages()


def unavailable_reason() -> str:
    """One paragraph for the menu, the dialog and the CLI; "" when training is available."""
    missing = missing_training_packages()
    return f"{NEEDS_FULL_BUILD} (Missing: {', '.join(missing)}.)" if missing else ""
