"""Installing a model bundle into the per-user models folder, with the card a person filled in.

The viewer finds a bundle in ``user_models_dir()/<name>/`` on the next film (``engine.bundle.find_bundles``);
a bundle named like a shipped one replaces it there. An installed bundle of the same name is never
overwritten silently: the caller must say ``replace=True`` (after asking), and the old one is kept under
``<models>/.previous/<name>-<version>/`` (not searched). The weights file is copied unchanged, so its sha256
(recorded in the card) still matches.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from xrayviewer.engine import paths
from xrayviewer.engine.bundle import (
    CARD_FILE,
    Bundle,
    BundleError,
    by_role,
    read_bundle,
    scan_bundles,
    write_card,
)

NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
VERSION_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,39}")
PREVIOUS = ".previous"


class InstallError(ValueError):
    """The bundle cannot be installed as asked; the message is a sentence saying what to change."""


@dataclass(frozen=True)
class CardText:
    """What a person writes into the card before a model may be installed."""

    name: str
    version: str
    data_description: str
    licence: str
    limitations: str


def card_problems(text: CardText) -> list[str]:
    """Sentences for every field that keeps the bundle from being installed (empty: it may be)."""
    problems = []
    if not NAME_RULE.fullmatch(text.name.strip()):
        problems.append(
            "Give the model a name: letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (it becomes its folder name)."
        )
    if not VERSION_RULE.fullmatch(text.version.strip()):
        problems.append("Give a version such as 2026.12.01 or 1.1 (letters, digits, '.', '_', '+', '-').")
    if len(text.data_description.strip()) < 10:
        problems.append(
            "Describe the training data: where the images come from, which patients and views "
            "(at least a sentence). The viewer shows it with every finding."
        )
    if len(text.licence.strip()) < 3:
        problems.append(
            "Say under which licence the training data may be used (e.g. “CC BY 4.0, cite "
            "Kermany et al. 2018” or “internal use, hospital X”)."
        )
    if len(text.limitations.strip()) < 10:
        problems.append(
            "Write the limitations: where the model must not be trusted (other ages, views, "
            "scanners, findings it never saw). The viewer shows them under its findings."
        )
    return problems


def installed_named(name: str) -> list[Bundle]:
    """Installed findings bundles named ``name`` (shipped, per-user or elsewhere on the search path)."""
    return [b for b in bundle_folders() if b.name == name]


def target_dir(name: str) -> Path:
    """Where a bundle named ``name`` is installed: ``user_models_dir()/<name>``."""
    return paths.user_models_dir() / name


def conflict(text: CardText) -> str:
    """A sentence when installing would replace an installed bundle of the same name ("" when not);
    installing the very same version again is refused by :func:`install_bundle`."""
    existing = read_installed(text.name.strip())
    if existing is not None:
        return (
            f"A model named “{existing.name}” (version {existing.card.version}) is installed already: "
            f"installing replaces it (it is kept in {PREVIOUS}/)."
        )
    shipped = [b for b in installed_named(text.name.strip()) if b.source == "package"]
    if shipped:
        return (
            f"“{text.name}” is also the name of a model shipped with the viewer (version "
            f"{shipped[0].card.version}): yours will be used instead of it."
        )
    return ""


def read_installed(name: str) -> Bundle | None:
    """The bundle in the per-user folder ``<models>/<name>`` (None when there is none or it is broken)."""
    folder = target_dir(name)
    if not (folder / CARD_FILE).is_file():
        return None
    try:
        return read_bundle(folder, "user")
    except BundleError:
        return None


def install_bundle(
    source: str | Path, text: CardText, replace_existing: bool = False, card_fields: dict | None = None
) -> Bundle:
    """Copy the bundle folder ``source`` into the per-user models folder as ``text.name`` with the card
    text applied; returns the installed bundle. Raises ``InstallError`` (a sentence) when a card field is
    missing, when that name is installed and ``replace_existing`` is false, or when it is installed with
    the same version. ``card_fields``: other card fields to set (e.g. views, age_group)."""
    problems = card_problems(text)
    if problems:
        raise InstallError(" ".join(problems))
    try:
        bundle = read_bundle(source)
    except BundleError as exc:
        raise InstallError(f"The trained model cannot be read: {exc}") from None
    name, version = text.name.strip(), text.version.strip()
    existing = read_installed(name)
    if existing is not None:
        if existing.card.version == version:
            raise InstallError(
                f"Version {version} of “{name}” is installed already: give this one another version."
            )
        if not replace_existing:
            raise InstallError(
                f"A model named “{name}” (version {existing.card.version}) is installed "
                "already: confirm that this one replaces it, or choose another name."
            )
    card = bundle.card
    training_data = {
        **card.training_data,
        "description": text.data_description.strip(),
        "licence": text.licence.strip(),
    }
    try:
        card = replace(
            card,
            name=name,
            version=version,
            limitations=text.limitations.strip(),
            training_data=training_data,
            **(card_fields or {}),
        )
    except (ValueError, TypeError) as exc:
        raise InstallError(f"The card cannot take these values: {exc}") from None
    models = paths.user_models_dir()
    models.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=models))
    try:
        shutil.copy2(bundle.weights_path, staging / card.weights_file)
        write_card(staging, card)
        read_bundle(staging)  # the card as written must read back
        final = target_dir(name)
        if final.exists():  # the installed one (or a folder without a readable card): kept aside
            label = existing.card.version if existing is not None else f"unreadable-{staging.name[-8:]}"
            backup = models / PREVIOUS / f"{name}-{label}"
            if backup.exists():
                shutil.rmtree(backup)
            backup.parent.mkdir(parents=True, exist_ok=True)
            final.rename(backup)
        staging.rename(final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InstallError(f"The model could not be copied into {models}: {exc.strerror or exc}.") from None
    return read_bundle(final, "user")


def bundle_folders(role: str = "findings") -> list[Bundle]:
    """Installed bundles that are folders (what can be fine-tuned or recalibrated), in search order;
    torchxrayvision's cached weights are left out (looking for them imports torchxrayvision: seconds on a
    UI thread)."""
    return by_role(scan_bundles(include_xrv=False)[0], role)
