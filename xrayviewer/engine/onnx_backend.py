"""A bundle's ONNX graph: written with the weights, run by ONNX Runtime without torch.

``model.onnx`` holds the network with two outputs, the logits and the rectified last feature maps (so the CAM
needs no second pass), and no weights of its own: every weight is ONNX external data at its byte offset in
``weights.safetensors`` (float16 tensors are cast to float32 inside the graph), so a bundle carries its
weights once and the sha256 the card states for them covers the graph's weights too. The card records the
graph's own sha256 and the logits it gave on a fixed probe input when it was written; a graph whose file or
probe output differs is refused, and the predictor falls back to torch where torch is installed.

Writing needs torch and onnx (training); running needs onnxruntime and numpy only (the viewer, ``predict``,
the applicability gate, the lean installer).
"""

from __future__ import annotations

import importlib.util
import json
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xrayviewer.engine.cam import HeadParams, head_cams

if TYPE_CHECKING:
    from torch import nn

    from xrayviewer.engine.bundle import Bundle

ONNX_FILE = "model.onnx"
OPSET = 17
MAX_PROBE_DRIFT = 1e-3  # logits on the probe: ONNX Runtime's fp32 kernels agree with torch within ~1e-5
_PREFIX = "model."  # the exporter names the wrapped network's tensors model.<state_dict key>


class OnnxUnavailableError(RuntimeError):
    """The bundle's graph cannot be run here (no onnxruntime, no graph, or it does not match its card)."""


def onnx_runtime_installed() -> bool:
    """Whether onnxruntime is importable."""
    return importlib.util.find_spec("onnxruntime") is not None


def probe_input(size: int) -> np.ndarray:
    """A fixed (1, 1, S, S) input in the model's value range whose logits the card records."""
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    return (1024.0 * np.sin(3.0 * np.add.outer(ramp, ramp**2)))[None, None].astype(np.float32)


# ---------------------------------------------------------------- writing (torch, onnx)


def write_graph(model: nn.Module, directory: Path, weights_file: str, size: int) -> tuple[str, list[float]]:
    """Export ``model`` (a ChestNet) to ``directory/model.onnx`` with its weights linked into
    ``weights_file`` (already written); returns the graph's file name and the probe's logits."""
    import onnx
    import torch

    class LogitsAndMaps(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.model.forward_with_maps(x)

    wrapper = LogitsAndMaps().to("cpu", memory_format=torch.contiguous_format).eval()
    buffer = _export(wrapper, size)
    graph = onnx.load_from_string(buffer)
    _link_weights(graph, directory / weights_file)
    path = directory / ONNX_FILE
    onnx.save(graph, str(path))
    with torch.inference_mode():
        probe = wrapper(torch.from_numpy(probe_input(size)))[0][0]
    return ONNX_FILE, [float(v) for v in probe]


def _export(wrapper: nn.Module, size: int) -> bytes:
    import io

    import torch

    out = io.BytesIO()
    dynamic = {"x": {0: "n"}, "logits": {0: "n"}, "maps": {0: "n"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # no constant folding: folded batch norms would be new tensors, not the ones in the safetensors file
        torch.onnx.export(wrapper, (torch.zeros(1, 1, size, size),), out, input_names=["x"],
                          output_names=["logits", "maps"], dynamic_axes=dynamic, opset_version=OPSET,
                          dynamo=False, do_constant_folding=False)
    return out.getvalue()


def safetensors_layout(path: Path) -> tuple[int, dict[str, dict]]:
    """Where a safetensors file's tensors are: the data section's start and each tensor's header entry."""
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    header.pop("__metadata__", None)
    return 8 + length, header


def _link_weights(graph, weights: Path) -> None:
    """Point every initializer that is a state-dict tensor at its bytes in ``weights`` (float16 ones through
    a Cast to float32 at the graph's start)."""
    import onnx
    from onnx import TensorProto, helper

    start, layout = safetensors_layout(weights)
    dtypes = {"F32": TensorProto.FLOAT, "F16": TensorProto.FLOAT16, "I64": TensorProto.INT64}
    casts = []
    for tensor in graph.graph.initializer:
        entry = layout.get(tensor.name.removeprefix(_PREFIX))
        if entry is None or entry["dtype"] not in dtypes:
            continue
        begin, end = entry["data_offsets"]
        stored = dtypes[entry["dtype"]]
        if stored != tensor.data_type:  # float16 on disk: the graph casts it once
            name = tensor.name
            tensor.name, tensor.data_type = f"{name}::stored", stored
            casts.append(helper.make_node("Cast", [tensor.name], [name], to=TensorProto.FLOAT))
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        del tensor.external_data[:]
        for key, value in (("location", weights.name), ("offset", start + begin), ("length", end - begin)):
            item = tensor.external_data.add()
            item.key, item.value = key, str(value)
    nodes = list(graph.graph.node)
    del graph.graph.node[:]
    graph.graph.node.extend(casts + nodes)


# ---------------------------------------------------------------- running (onnxruntime, numpy)


@dataclass
class BundleGraph:
    """``(logits, maps) = graph(batch)`` and the CAMs of those maps, through ONNX Runtime on the CPU."""

    session: object
    head: HeadParams

    @classmethod
    def open(cls, bundle: Bundle, threads: int) -> BundleGraph:
        """The bundle's graph, checked against its card; raises :class:`OnnxUnavailableError`."""
        from xrayviewer.engine.bundle import sha256_of, verified_weights

        card = bundle.card
        if not onnx_runtime_installed():
            raise OnnxUnavailableError("onnxruntime is not installed")
        if not card.onnx_file or not bundle.path.is_dir():
            raise OnnxUnavailableError("the bundle carries no ONNX graph")
        path = bundle.path / card.onnx_file
        if not path.is_file() or sha256_of(path) != card.onnx_sha256:
            raise OnnxUnavailableError(f"{card.onnx_file} is missing or does not match its card's sha256")
        weights = verified_weights(bundle)  # the graph reads its weights from there (BundleError if tampered)
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # no busy-waiting after a run: it would steal the cores from the CAM step and the UI thread
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own kinds for a damaged or foreign graph
            raise OnnxUnavailableError(f"ONNX Runtime could not open {card.onnx_file} ({exc})") from None
        graph = cls(session, HeadParams.from_state(_head_state(weights), card.head))
        probe = graph(probe_input(card.input_size))[0][0]
        if len(card.onnx_probe) != probe.size or np.abs(probe - card.onnx_probe).max() > MAX_PROBE_DRIFT:
            raise OnnxUnavailableError(f"{card.onnx_file} does not give the logits its card recorded")
        return graph

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N, K) and rectified feature maps (N, C, h, w) for float32 inputs (N, 1, S, S)."""
        logits, maps = self.session.run(None, {"x": np.ascontiguousarray(batch, dtype=np.float32)})
        return logits, maps

    def cams(self, maps: np.ndarray) -> np.ndarray:
        """CAMs (N, K, h, w) of every class (``engine.cam.head_cams``)."""
        return head_cams(maps, self.head)


def _head_state(weights: Path) -> dict[str, np.ndarray]:
    """The classifier's tensors as float32 numpy arrays, read from the (already verified) weight file."""
    from safetensors.numpy import load_file

    state = load_file(str(weights))
    return {k: v.astype(np.float32) for k, v in state.items() if k.startswith("classifier.")}
