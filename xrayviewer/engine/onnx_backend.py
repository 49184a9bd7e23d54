"""Optional ONNX Runtime forward pass for the CPU (install the ``fast`` extra: onnxruntime + onnx).

The network is exported once per weights file with both outputs the CAM needs (logits and the rectified last
feature maps), cached in the per-user cache folder, and checked against torch before use: a session whose
scores differ from the torch model's by more than 1e-4 is refused, and the predictor keeps using torch.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import platformdirs
import torch
from torch import nn

from xrayviewer.engine.models import ChestNet

OPSET = 17
MAX_SCORE_DRIFT = 1e-4


class OnnxUnavailableError(RuntimeError):
    """ONNX Runtime cannot be used here (not installed, export failed, or outputs disagree with torch)."""


def onnx_runtime_installed() -> bool:
    """Whether onnxruntime (to run) and onnx (to export) are importable."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


class _LogitsAndMaps(nn.Module):
    def __init__(self, model: ChestNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_with_maps(x)


class OnnxForward:
    """``(logits, maps) = forward(batch)`` through an ONNX Runtime session on the CPU."""

    def __init__(self, model: ChestNet, size: int, cache_key: str, threads: int,
                 cache_dir: Path | None = None) -> None:
        if not onnx_runtime_installed():
            raise OnnxUnavailableError("onnxruntime/onnx are not installed")
        import onnxruntime

        name = f"{cache_key}-{size}px-opset{OPSET}-torch{torch.__version__}.onnx"
        path = (cache_dir or _cache_dir()) / name
        if not path.is_file():
            _export(model, size, path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # no busy-waiting after a run: it would steal the cores from the CAM step and the UI thread
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a damaged cache file: remove it so the next start re-exports
            path.unlink(missing_ok=True)
            raise OnnxUnavailableError(f"ONNX Runtime could not open the exported model ({exc})") from None
        self._check_against(model, size)

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, maps = self.session.run(None, {"x": batch.contiguous().numpy()})
        return torch.from_numpy(logits), torch.from_numpy(maps)

    def _check_against(self, model: ChestNet, size: int) -> None:
        ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
        probe = torch.from_numpy(1024.0 * np.sin(3.0 * np.add.outer(ramp, ramp ** 2))[None, None])
        with torch.inference_mode():
            expected = torch.sigmoid(model.forward_with_maps(probe)[0])
        drift = (torch.sigmoid(self(probe)[0]) - expected).abs().max().item()
        if drift > MAX_SCORE_DRIFT:
            raise OnnxUnavailableError(f"ONNX Runtime scores differ from torch by {drift:.1e}")


def _cache_dir() -> Path:
    return platformdirs.user_cache_path("xrayviewer", appauthor=False) / "onnx"


def _export(model: ChestNet, size: int, path: Path) -> None:
    """Export a copy (export may run the module) with a dynamic batch axis; written atomically."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    wrapper = _LogitsAndMaps(copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).eval())
    dynamic = {"x": {0: "n"}, "logits": {0: "n"}, "maps": {0: "n"}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, (torch.zeros(1, 1, size, size),), str(tmp), input_names=["x"],
                output_names=["logits", "maps"], dynamic_axes=dynamic,
                opset_version=OPSET, dynamo=False,
            )
        os.replace(tmp, path)
    except Exception as exc:  # the exporter raises many kinds; any means "no ONNX for this model"
        tmp.unlink(missing_ok=True)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OnnxUnavailableError(f"export to ONNX failed ({reason})") from None
