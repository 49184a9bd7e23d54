"""Model bundles: a folder with ``model.json`` (the model card) and ``weights.safetensors``.

The card is the contract between training, the viewer and the installer. Weights are read only from
safetensors (verified against the card's sha256) or, for torchxrayvision's own cached weights, with
``torch.load(weights_only=True)`` and an explicit allow-list: a weight file can never execute code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xrayviewer import __version__
from xrayviewer.engine.paths import models_search_path
from xrayviewer.engine.preprocess import PreprocessRecipe
from xrayviewer.imaging.image import AGE_GROUPS

if TYPE_CHECKING:
    import torch
    from torch import nn

    from xrayviewer.engine.models import ChestNet

CARD_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
TASKS = {"binary": "sigmoid", "multilabel": "sigmoid", "multiclass": "softmax"}  # task -> output activation
ROLES = ("findings", "gate")  # a findings model speaks about a film; the gate decides whether they may
WEAK_AUROC = 0.80  # below it a model flags too many films wrongly to speak unasked (models/README.md)
XRV_CACHE_ENV = "XRAYVIEWER_XRV_CACHE"  # overrides torchxrayvision's ~/.torchxrayvision/models_data/
XRV_WEIGHTS = "densenet121-res224-all"  # the torchxrayvision weights offered when cached (18 findings)


class BundleError(Exception):
    """A bundle is missing, malformed, or its weights do not match its card."""


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to run a model and to judge its output (serialised as ``model.json``).

    ``binary`` has exactly one class (the finding) and one sigmoid output; ``multilabel`` one sigmoid per
    class; ``multiclass`` a softmax over the classes. Scores are ``activation(logits / temperature)``.
    """

    name: str
    version: str
    task: str  # binary | multiclass | multilabel
    classes: list[str]
    architecture: str  # an id in engine.models.ARCHITECTURES
    thresholds: dict[str, float]  # class -> operating threshold on the (calibrated) score
    threshold_method: str  # how the thresholds were chosen, e.g. "Youden J on validation (n=520)"
    preprocessing: PreprocessRecipe = field(default_factory=PreprocessRecipe)
    architecture_args: dict[str, Any] = field(default_factory=lambda: {"head": "linear"})
    output_activation: str = ""  # filled from the task when empty
    temperature: float | None = None  # calibration: logits are divided by it
    metrics: dict[str, Any] = field(default_factory=dict)  # e.g. {"split": "test", "n": 313, "auroc": ...}
    training_data: dict[str, Any] = field(default_factory=dict)  # sources, licences, counts
    training_config: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    limitations: str = ""  # where the model must not be trusted; shown with its results
    views: list[str] = field(default_factory=list)  # ViewPosition values of the training films ([]: unknown)
    age_group: str = ""  # the training patients: child | adult | "" (unknown or mixed)
    negative_classes: list[str] = field(default_factory=list)  # classes meaning "no finding" (e.g. normal)
    engine_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    weights_file: str = WEIGHTS_FILE
    weights_sha256: str = ""  # filled by save_bundle
    weights_dtype: str = "float32"  # storage of floating-point weights: float32 | float16 (loaded as float32)
    role: str = "findings"  # findings | gate (engine.gate: which films the findings models may read)
    gate: dict[str, Any] = field(default_factory=dict)  # role gate: engine.gate.GateSpec fields
    onnx_file: str = ""  # the ONNX graph over the same weights (engine.onnx_backend); "" = none: torch only
    onnx_sha256: str = ""
    onnx_probe: list[float] = field(default_factory=list)  # its logits on onnx_backend.probe_input

    def __post_init__(self) -> None:
        check_types(self)
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if not self.output_activation:
            object.__setattr__(self, "output_activation", TASKS[self.task])
        if self.output_activation != TASKS[self.task]:
            raise ValueError(f"a {self.task} model needs a {TASKS[self.task]} output")
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be a non-empty list of distinct names")
        if self.task == "binary" and len(self.classes) != 1:
            raise ValueError("a binary model names exactly one class (its finding)")
        if set(self.thresholds) != set(self.classes):
            raise ValueError("thresholds must give one value per class")
        if any(not math.isfinite(float(t)) for t in self.thresholds.values()):
            raise ValueError("thresholds must be finite numbers")
        if any(not 0.0 <= float(t) <= 1.0 for t in self.thresholds.values()):
            raise ValueError("thresholds must lie in [0, 1]: they are cut-offs on scores")
        if self.temperature is not None and not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError("temperature must be a finite positive number")
        check_weights_file(self.weights_file)
        check_population(self.classes, self.views, self.age_group, self.negative_classes)
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)} (got {self.role!r})")

    @property
    def input_size(self) -> int:
        """Side of the square model input in pixels."""
        return self.preprocessing.size

    @property
    def head(self) -> str:
        """Head id (``linear`` or ``mlp``)."""
        return str(self.architecture_args.get("head", "linear"))

    def summary(self) -> str:
        """One line for listings: name, version, task, classes, architecture, size, headline metric."""
        shown = ", ".join(self.classes[:4]) + (f" +{len(self.classes) - 4}" if len(self.classes) > 4 else "")
        metric = ""
        auroc = self.metrics.get("auroc")
        if isinstance(auroc, (int, float)):
            metric = f", AUROC {auroc:.3f} ({self.metrics.get('split', '?')} n={self.metrics.get('n', '?')})"
        role = "" if self.role == "findings" else f" ({self.role})"
        return (
            f"{self.name} {self.version}{role}: {self.task} [{shown}] {self.architecture}/{self.head} "
            f"{self.input_size}px {self.preprocessing.geometry}{metric}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``input_size`` included for readers of the file)."""
        data = asdict(self)
        data["preprocessing"] = self.preprocessing.to_dict()
        data["input_size"] = self.input_size
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` for missing or invalid fields."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["preprocessing"] = PreprocessRecipe.from_dict(dict(data.get("preprocessing", {})))
        if "input_size" in data and int(data["input_size"]) != values["preprocessing"].size:
            raise ValueError("input_size disagrees with preprocessing.size")
        thresholds = data.get("thresholds", {})
        if not isinstance(thresholds, dict) or not all(
            isinstance(k, str) and _is_number(v) for k, v in thresholds.items()
        ):
            raise ValueError("thresholds must map each class name to a number")
        values["thresholds"] = {k: float(v) for k, v in thresholds.items()}
        missing = [f.name for f in fields(cls) if f.name not in values and f.name in _REQUIRED]
        if missing:
            raise ValueError(f"missing fields: {', '.join(missing)}")
        return cls(**values)


_REQUIRED = {"name", "version", "task", "classes", "architecture", "thresholds", "threshold_method"}
# The JSON type each card field must have (checked before any value is used: a card is untrusted input);
# views, age_group and negative_classes have their own checks (check_population) with their own wording.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("name", "version", "task", "architecture", "threshold_method", "output_activation",
                     "description", "limitations", "engine_version", "created", "weights_file",
                     "weights_sha256", "weights_dtype", "role", "onnx_file", "onnx_sha256"), (str,)),
    **dict.fromkeys(("thresholds", "architecture_args", "metrics", "training_data", "training_config",
                     "gate"), (dict,)),
    "classes": (list,),
    "onnx_probe": (list,),
    "temperature": (int, float, type(None)),
}
_TYPE_NAMES = {str: "a string", list: "a list", tuple: "a list", dict: "an object", int: "a number",
               float: "a number", type(None): "null"}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_types(card: ModelCard) -> None:
    """Raise ``ValueError`` naming the first card field of the wrong JSON type (``classes`` a list of
    non-empty strings, ``thresholds`` numbers, ``temperature`` a number or null...)."""
    for name, types in _FIELD_TYPES.items():
        value = getattr(card, name)
        if not isinstance(value, types) or isinstance(value, bool):  # JSON true is no number
            wanted = " or ".join(dict.fromkeys(_TYPE_NAMES[t] for t in types))
            raise ValueError(f"{name} must be {wanted} (got {type(value).__name__})")
    if not all(isinstance(c, str) and c.strip() for c in card.classes):
        raise ValueError("classes must be a list of non-empty strings")
    if not all(_is_number(t) for t in card.thresholds.values()):
        raise ValueError("thresholds must be numbers")
    if not isinstance(card.preprocessing, PreprocessRecipe):
        raise ValueError("preprocessing must be a preprocessing recipe")


def check_weights_file(name: str) -> None:
    """``weights_file`` must name a file inside the bundle folder: a plain file name, no folder part."""
    pure = Path(name)
    if (not name or name in (".", "..") or pure.name != name or "/" in name or "\\" in name
            or pure.is_absolute() or ":" in name or "\x00" in name):
        raise ValueError(f"weights_file must be a file name inside the bundle folder (got {name!r})")


_VIEW_CODE = re.compile(r"[A-Z0-9_ ]{1,16}")  # a DICOM Code String such as AP, PA, LL


def check_population(classes: list[str], views: object, age_group: object, negative_classes: object) -> None:
    """Raise ``ValueError`` unless the card's population fields are valid: ``views`` distinct DICOM
    ViewPosition codes, ``age_group`` one of ``imaging.image.AGE_GROUPS`` or "", ``negative_classes``
    distinct classes of the model that leave at least one finding."""
    if not isinstance(views, (list, tuple)) or not all(
        isinstance(v, str) and _VIEW_CODE.fullmatch(v) for v in views
    ):
        raise ValueError(
            f'views must be a list of DICOM ViewPosition codes such as "AP", "PA" (upper case; got {views!r})'
        )
    if len(set(views)) != len(views):
        raise ValueError(f"views must be distinct (got {views!r})")
    if age_group not in ("", *AGE_GROUPS):
        raise ValueError(f"age_group must be one of {', '.join(AGE_GROUPS)} or empty (got {age_group!r})")
    if not isinstance(negative_classes, (list, tuple)) or len(set(negative_classes)) != len(negative_classes):
        raise ValueError(f"negative_classes must be a list of distinct classes (got {negative_classes!r})")
    unknown = [c for c in negative_classes if c not in classes]
    if unknown:
        raise ValueError(f"negative_classes {unknown} are not among the classes {classes}")
    if classes and len(negative_classes) == len(classes):
        raise ValueError("negative_classes must leave at least one class that is a finding")


@dataclass(frozen=True)
class Bundle:
    """A model card and where its files are; ``source`` says which search folder it came from."""

    card: ModelCard
    path: Path  # the bundle folder (or the cached file for a torchxrayvision import)
    source: str = "custom"

    @property
    def name(self) -> str:
        """The card's name."""
        return self.card.name

    @property
    def weights_path(self) -> Path:
        """The weight file."""
        return self.path / self.card.weights_file if self.path.is_dir() else self.path


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


STORAGE_DTYPES = ("float32", "float16")  # torch dtype names


def stored(value: torch.Tensor, weights_dtype: str) -> torch.Tensor:
    """``value`` as ``save_bundle`` stores it: floating tensors in ``weights_dtype`` unless that overflows
    (the first BatchNorm's running variance of xrv-scaled inputs is ~3e6, beyond float16's 65504): then
    float32."""
    import torch

    if not value.is_floating_point():
        return value
    narrow = value.to(getattr(torch, weights_dtype))
    return narrow if bool(torch.isfinite(narrow).all()) or not bool(torch.isfinite(value).all()) else value


def round_to_storage(model: nn.Module, weights_dtype: str) -> None:
    """Round ``model``'s floating weights in place to what ``save_bundle`` stores, so that metrics computed
    afterwards are exactly what the saved bundle reproduces."""
    import torch

    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.copy_(stored(value, weights_dtype))


def save_bundle(directory: str | Path, model: nn.Module, card: ModelCard) -> Bundle:
    """Write ``weights.safetensors`` (floating tensors as ``card.weights_dtype``) and ``model.json`` (with the
    weights' sha256) into ``directory``."""
    from safetensors.torch import save_file

    if card.weights_dtype not in STORAGE_DTYPES:
        allowed = ", ".join(STORAGE_DTYPES)
        raise BundleError(f"weights_dtype must be one of {allowed} (got {card.weights_dtype!r})")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / card.weights_file
    dtype = card.weights_dtype
    state = {k: stored(v.detach(), dtype).to("cpu").contiguous() for k, v in model.state_dict().items()}
    # one metadata key: safetensors writes its metadata map in hash order, so two keys came out in either
    # order from run to run and the same weights got two sha256s (same seed, same model, other digest)
    save_file(state, str(weights), metadata={"model": f"{card.name} {card.version}"})
    card = replace(card, weights_sha256=sha256_of(weights), **_graph_fields(model, state, directory, card))
    return write_card(directory, card)


def _graph_fields(model: nn.Module, state: dict, directory: Path, card: ModelCard) -> dict[str, Any]:
    """Write the bundle's ONNX graph over the stored weights (``engine.onnx_backend``); its card fields.
    None when onnx is not installed: the bundle then runs on torch only."""
    import copy
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        return {"onnx_file": "", "onnx_sha256": "", "onnx_probe": []}
    from xrayviewer.engine.onnx_backend import write_graph

    reference = copy.deepcopy(model).cpu()  # exactly what a loader of the stored weights gets
    reference.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    name, probe = write_graph(reference, directory, card.weights_file, card.input_size)
    return {"onnx_file": name, "onnx_sha256": sha256_of(directory / name), "onnx_probe": probe}


def add_graph(bundle: Bundle) -> Bundle:
    """Give a bundle written before bundles carried ONNX graphs its graph (the weights stay as they are;
    needs torch and onnx)."""
    from xrayviewer.engine.onnx_backend import write_graph

    card = bundle.card
    name, probe = write_graph(load_model(bundle), bundle.path, card.weights_file, card.input_size)
    graph = {"onnx_file": name, "onnx_sha256": sha256_of(bundle.path / name), "onnx_probe": probe}
    return write_card(bundle.path, replace(card, **graph))


def write_card(directory: str | Path, card: ModelCard) -> Bundle:
    """(Re)write ``model.json`` in ``directory``; the weights and their recorded sha256 stay as they are."""
    directory = Path(directory)
    (directory / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return Bundle(card=card, path=directory)


def read_bundle(directory: str | Path, source: str = "custom") -> Bundle:
    """The bundle in ``directory`` (card parsed and validated; weights not read yet)."""
    directory = Path(directory)
    card_path = directory / CARD_FILE
    if not card_path.is_file():
        raise BundleError(f"{directory}: no {CARD_FILE} (not a model bundle)")
    try:
        card = ModelCard.from_dict(json.loads(card_path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        raise BundleError(f"{card_path}: invalid model card ({exc})") from None
    return Bundle(card=card, path=directory, source=source)


def scan_bundles(extra_dirs: Iterable[str | Path] = (), include_xrv: bool = True,
                 ) -> tuple[list[Bundle], list[BundleError]]:
    """Bundles on the search path (later folders override same-named earlier ones; torchxrayvision's cached
    weights come last unless ``include_xrv`` is false: looking for them imports torchxrayvision) and the
    broken ones."""
    found: dict[str, Bundle] = {}
    problems: list[BundleError] = []
    for index, folder in enumerate(models_search_path(extra_dirs)):
        source = ("package", "user")[index] if index < 2 else "custom"
        if (folder / CARD_FILE).is_file():
            bundle_dirs = [folder]
        else:
            bundle_dirs = sorted(p.parent for p in folder.glob(f"*/{CARD_FILE}"))
        for bundle_dir in bundle_dirs:
            try:
                bundle = read_bundle(bundle_dir, source)
            except BundleError as exc:
                problems.append(exc)
                continue
            found[bundle.name] = bundle
    xrv = xrv_cached_bundle() if include_xrv else None
    if xrv is not None and xrv.name not in found:
        found[xrv.name] = xrv
    return list(found.values()), problems


def by_role(bundles: Iterable[Bundle], role: str = "findings") -> list[Bundle]:
    """The bundles of one role (``findings``: what the sidebar and ``predict`` run; ``gate``)."""
    return [b for b in bundles if b.card.role == role]


def is_weak(card: ModelCard) -> bool:
    """Whether the card's own test AUROC is below ``WEAK_AUROC``: a hint, not a second opinion; the viewer
    runs such a model only once the user turns it on (Model menu)."""
    auroc = card.metrics.get("auroc")
    return _is_number(auroc) and float(auroc) < WEAK_AUROC


def by_strength(bundles: Iterable[Bundle]) -> list[Bundle]:
    """Bundles by the test AUROC their cards state, highest first (a weak model is never first); the search
    order among equals and for cards that state none."""
    return sorted(bundles, key=lambda b: -float(b.card.metrics.get("auroc") or 0.0))


def find_bundles(extra_dirs: Iterable[str | Path] = (), role: str = "findings") -> list[Bundle]:
    """Valid bundles of ``role`` on the search path (see :func:`scan_bundles`)."""
    return by_role(scan_bundles(extra_dirs)[0], role)


def load_bundle(path_or_name: str | Path, extra_dirs: Iterable[str | Path] = ()) -> Bundle:
    """A bundle folder (or its ``model.json``), or the installed bundle with that name."""
    path = Path(path_or_name)
    if path.name == CARD_FILE and path.is_file():
        path = path.parent
    if path.is_dir():
        return read_bundle(path)
    bundles = find_bundles(extra_dirs)
    for bundle in bundles:
        if bundle.name == str(path_or_name):
            return bundle
    known = ", ".join(b.name for b in bundles) or "none installed"
    hint = f"; {xrv_missing_message()}" if str(path_or_name) == f"xrv-{XRV_WEIGHTS}" else ""
    raise BundleError(f"no model bundle named or at {str(path_or_name)!r} (installed: {known}){hint}")


def load_model(bundle: Bundle) -> ChestNet:
    """The card's network with the bundle's weights, in eval mode on the CPU; refuses tampered weights."""
    from xrayviewer.engine.models import build_model

    card = bundle.card
    weights = bundle.weights_path if bundle.source == "torchxrayvision" else verified_weights(bundle)
    try:
        model = build_model(card.architecture, len(card.classes), **card.architecture_args)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{bundle.name}: {exc}") from None
    state = _read_xrv_state(weights) if bundle.source == "torchxrayvision" else _read_safetensors(bundle)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise BundleError(f"{bundle.name}: weights do not fit {card.architecture}: {first}") from None
    model.eval()
    _probe(bundle, model)
    return model


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a link loop
        return False


def _probe(bundle: Bundle, model: nn.Module) -> None:
    """Refuse weights that cannot give finite scores: non-finite tensors, or a non-finite output for a
    mid-grey probe image (a NaN in a weight with a matching digest would otherwise score every film NaN)."""
    import torch

    for key, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise BundleError(f"{bundle.name}: weights hold non-finite values (NaN or infinity) in {key}: "
                              "refusing to load them")
    size = bundle.card.input_size
    with torch.inference_mode():
        out = model(torch.zeros(1, 1, size, size))
    if not bool(torch.isfinite(out).all()):
        raise BundleError(f"{bundle.name}: the model's output on a probe image is not finite: refusing to "
                          "load it")


def verified_weights(bundle: Bundle) -> Path:
    """The bundle's weight file, once it is inside the bundle folder and matches the sha256 of its card;
    every reader of the weights (torch, the ONNX graph's external data) goes through here."""
    weights = bundle.weights_path
    if bundle.path.is_dir() and not _inside(weights, bundle.path):
        raise BundleError(f"{bundle.name}: weight file {bundle.card.weights_file} lies outside the bundle "
                          "folder (a link out of it?): refusing to load it")
    if not weights.is_file():
        raise BundleError(f"{bundle.name}: weight file {weights} is missing")
    actual = sha256_of(weights)
    if actual != bundle.card.weights_sha256:
        raise BundleError(
            f"{bundle.name}: {weights.name} does not match the sha256 in {CARD_FILE} "
            f"(expected {bundle.card.weights_sha256[:12] or 'none'}…, found {actual[:12]}…): "
            "the file was changed or damaged; refusing to load it"
        )
    return weights


def _read_safetensors(bundle: Bundle) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = bundle.weights_path
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{bundle.name}: unreadable weights ({exc})") from None


# ---- torchxrayvision's own pretrained weights, offered when its cache file is on disk (never downloaded)


def xrv_cache_dir() -> Path:
    """torchxrayvision's weight cache (``~/.torchxrayvision/models_data``), or ``$XRAYVIEWER_XRV_CACHE``."""
    override = os.environ.get(XRV_CACHE_ENV)
    return Path(override) if override else Path.home() / ".torchxrayvision" / "models_data"


def xrv_cached_bundle() -> Bundle | None:
    """torchxrayvision's ``densenet121-res224-all`` as a bundle if its weight file is cached; else None."""
    if not xrv_cache_dir().is_dir():  # checked first: importing torchxrayvision costs seconds
        return None
    import torchxrayvision as xrv

    info = xrv.models.model_urls[XRV_WEIGHTS]
    weights = xrv_cache_dir() / info["weights_url"].rsplit("/", 1)[-1]
    if not weights.is_file():
        return None
    card = ModelCard(
        name=f"xrv-{XRV_WEIGHTS}",
        version=f"torchxrayvision {xrv.__version__}",
        task="multilabel",
        classes=list(info["labels"]),
        architecture="xrv-densenet121",
        thresholds={c: float(t) for c, t in zip(info["labels"], info["op_threshs"], strict=True)},
        threshold_method="torchxrayvision op_threshs (published operating points)",
        preprocessing=PreprocessRecipe(size=int(info["input_resolution"]), geometry="center_crop"),
        description=info["description"],
        training_data={"sources": "NIH, PadChest, CheXpert, MIMIC-CXR, Google, OpenI, Kaggle RSNA"},
        weights_file=weights.name,
    )
    return Bundle(card=card, path=weights, source="torchxrayvision")


def xrv_missing_message() -> str:
    """What to do when torchxrayvision's weights are wanted but not cached (we never download)."""
    return (
        f"torchxrayvision's {XRV_WEIGHTS} weights are not on this computer (looked in {xrv_cache_dir()}); "
        "XRayViewer never downloads: copy the file there from a machine that has it"
    )


def _read_xrv_state(weights: Path) -> dict:
    import collections

    import torch
    import torchxrayvision as xrv
    from torch import nn

    mods = xrv.models
    allowed = [
        mods.DenseNet,
        mods._DenseBlock,
        mods._DenseLayer,
        mods._Transition,
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.ReLU,
        nn.MaxPool2d,
        nn.AvgPool2d,
        nn.Linear,
        nn.Sequential,
        collections.OrderedDict,
        set,
    ]
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means: not a file we accept
        raise BundleError(f"{weights}: not loadable as plain weights ({str(exc).splitlines()[0]})") from None
    if isinstance(obj, nn.Module):
        for module in obj.modules():  # pickles from older torch lack this attribute (as torchxrayvision does)
            if not hasattr(module, "_non_persistent_buffers_set"):
                module._non_persistent_buffers_set = set()
        obj = obj.state_dict()
    state = obj
    return {k: v for k, v in state.items() if k != "op_threshs"}
