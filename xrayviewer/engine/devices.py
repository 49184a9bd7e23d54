"""Which device runs the model, and how many CPU threads it may use (torch only where a GPU may be used)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
AUTO_ORDER = "CUDA, then MPS, then CPU"  # what ``auto`` picks, in words (CLI help, viewer menu)


def pick_device(preference: str = "auto") -> torch.device:
    """``auto``: CUDA, then Apple MPS, then CPU; an explicit choice not available is a ``ValueError``."""
    import torch  # here, so that the CLI can offer DEVICE_CHOICES without loading torch

    if preference not in DEVICE_CHOICES:
        raise ValueError(f"device {preference!r} is not one of {', '.join(DEVICE_CHOICES)}")
    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    if preference == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (preference == "cuda" and not cuda) or (preference == "mps" and not mps):
        raise ValueError(f"device {preference!r} was asked for but is not available on this computer")
    return torch.device(preference)


def device_name(preference: str = "auto") -> str:
    """The device :func:`pick_device` would give, as a string ("cpu", "cuda", "mps"), without importing torch
    where none is installed (the lean build): then only the CPU is there."""
    if preference not in DEVICE_CHOICES:
        raise ValueError(f"device {preference!r} is not one of {', '.join(DEVICE_CHOICES)}")
    if preference == "cpu":
        return "cpu"
    try:
        return str(pick_device(preference))
    except ImportError:  # no torch: no GPU to use either
        if preference == "auto":
            return "cpu"
        raise ValueError(f"device {preference!r} needs torch, which is not installed") from None


def usable_cpus() -> int:
    """CPUs this process may run on (honours container/affinity limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def configure_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` or to every usable CPU (torch counts physical cores)."""
    import torch

    threads = max(1, threads or usable_cpus())
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def hardware_description(device: torch.device) -> str:
    """One line for model cards: the accelerator's name, or the CPU model and how many CPUs were usable."""
    import platform

    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{device.type.upper()}: {cpu}, {usable_cpus()} usable CPUs"
