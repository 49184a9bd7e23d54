"""Inference speed at 224 px, batch 1, on this machine's CPU: ours beside torchxrayvision + pytorch-grad-cam.

Prints medians (ms) of: forward, forward + CAM for every class, for
  - the reference: torchxrayvision DenseNet121 forward, and pytorch-grad-cam GradCAM for one class,
  - ours: eager fp32, channels_last fp32 (the torch path), channels_last + bf16 autocast, and the bundle's
    own ONNX graph in ONNX Runtime fp32 with numpy CAMs (the default, and the only path without torch),
then how far each fast path's scores drift from fp32 eager on real films (must stay within 1e-3 to be used),
and file in → scores + CAMs (+ the top class's CAM on the source grid) through ``Predictor``.

Run: .venv/bin/python benchmarks/inference.py [--repeats 20] [--data ../shared/data]
The model is a random-init DenseNet121 with batch-norm statistics taken from real films, so its scores
move like a trained model's; speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchxrayvision as xrv
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from xrayviewer.engine.bundle import ModelCard, save_bundle
from xrayviewer.engine.cam import cam_to_image, linear_cams
from xrayviewer.engine.devices import configure_cpu_threads
from xrayviewer.engine.models import build_model
from xrayviewer.engine.onnx_backend import BundleGraph
from xrayviewer.engine.predictor import Predictor
from xrayviewer.engine.preprocess import PreprocessRecipe, preprocess
from xrayviewer.imaging import open_image

CLASSES = list(xrv.models.DenseNet.targets)  # 18 findings, like torchxrayvision's own models


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in ms after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def films(data: Path, n: int = 6) -> list[Path]:
    """A few real films: Kermany test (224 px) and NIH (512 px)."""
    kermany = sorted((data / "kermany" / "images").glob("IM-*.jpeg"))[: n // 2]
    nih = sorted((data / "nih" / "images").glob("*.png"))[: n - len(kermany)]
    return [*kermany, *nih]


def calibrated_model(inputs: torch.Tensor):
    """DenseNet121 (ours) with BN statistics from ``inputs``, in eval mode."""
    torch.manual_seed(0)
    model = build_model("xrv-densenet121", len(CLASSES))
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None
    model.train()
    with torch.no_grad():
        model(inputs)
    return model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    if not (args.data / "kermany").is_dir():
        print(f"shared data not found at {args.data} (use --data)", file=sys.stderr)
        return 2
    threads = configure_cpu_threads()
    load = Path("/proc/loadavg").read_text()[:14] if Path("/proc/loadavg").exists() else "?"
    print(f"torch {torch.__version__}, {threads} CPU threads, load average {load}")
    paths = films(args.data)
    recipe = PreprocessRecipe()
    inputs = torch.from_numpy(np.stack([preprocess(open_image(p), recipe)[0] for p in paths]))
    model = calibrated_model(inputs)
    x = inputs[:1].clone()
    r = args.repeats

    # reference: torchxrayvision's DenseNet with the same weights, pytorch-grad-cam for one class
    reference = xrv.models.DenseNet(weights=None, num_classes=len(CLASSES)).eval()
    reference.load_state_dict(model.state_dict())
    for module in reference.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    with torch.inference_mode():
        ref_forward = median_ms(lambda: reference(x), r)
    with GradCAM(model=reference, target_layers=[reference.features[-1]]) as gradcam:
        target = [ClassifierOutputTarget(0)]
        ref_cam = median_ms(lambda: gradcam(input_tensor=x, targets=target), max(3, r // 4))

    weight = model.classifier.weight.detach().numpy()

    def ours(m, batch, autocast: bool, cams: bool):
        if isinstance(m, BundleGraph):  # numpy in, numpy out: no torch on this path
            logits, maps = m(batch.numpy())
            if cams:
                m.cams(maps)
            return torch.sigmoid(torch.from_numpy(logits))
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            logits, maps = m.forward_with_maps(batch)
            scores = torch.sigmoid(logits.float())
            if cams:
                linear_cams(maps.float().numpy(), weight)
        return scores

    cl_model = calibrated_model(inputs).to(memory_format=torch.channels_last)
    cl_x = x.contiguous(memory_format=torch.channels_last)
    variants = [
        ("ours eager fp32", model, x, False),
        ("ours channels_last fp32", cl_model, cl_x, False),
        ("ours channels_last bf16 autocast", cl_model, cl_x, True),
    ]
    tmp = tempfile.TemporaryDirectory()
    card = ModelCard(name="bench", version="0", task="multilabel", classes=CLASSES,
                     architecture="xrv-densenet121", thresholds={c: 0.5 for c in CLASSES},
                     threshold_method="none (benchmark)")
    bundle = save_bundle(Path(tmp.name) / "bench", model, card)  # writes the bundle's ONNX graph too
    variants.append(("ours ONNX Runtime fp32 (bundle graph)", BundleGraph.open(bundle, threads), x, False))
    rows = []
    for label, m, batch, autocast in variants:
        fwd = median_ms(lambda m=m, b=batch, a=autocast: ours(m, b, a, False), r)
        both = median_ms(lambda m=m, b=batch, a=autocast: ours(m, b, a, True), r)
        rows.append((label, fwd, both))

    print(f"\n{'224 px, batch 1':<44}{'forward ms':>12}{'fwd+CAM ms':>12}")
    print(f"{'torchxrayvision + pytorch-grad-cam (1 class)':<44}{ref_forward:>12.1f}{ref_cam:>12.1f}")
    for label, fwd, both in rows:
        print(f"{label + ' (18 CAMs)':<44}{fwd:>12.1f}{both:>12.1f}")
    best = min(both for _, _, both in rows[1:2] + rows[3:])
    print(f"speed-up of our fastest exact fwd+CAM over the reference: x{ref_cam / best:.1f}")

    # accuracy of the fast paths against fp32 eager on real films
    with torch.inference_mode():
        exact = torch.sigmoid(model(inputs))
    for label, m, batch, autocast in variants[1:]:
        whole = inputs.contiguous(memory_format=torch.channels_last) if batch is cl_x else inputs
        drift = (ours(m, whole, autocast, False) - exact).abs().max().item()
        verdict = "ok" if drift <= 1e-3 else "too far: not used"
        print(f"max |score - fp32 eager| over {len(paths)} real films, {label}: {drift:.2e} ({verdict})")

    # file in -> scores + CAMs out, through the product's Predictor
    with tmp:
        predictor = Predictor(bundle, device="cpu")
        predictor.load()
        print(f"Predictor backend: {predictor.backend} {predictor.backend_note}")
        for path in (paths[0], paths[-1]):
            def file_to_cam(path=path):
                prediction = predictor.predict(open_image(path))
                cam_to_image(prediction.cams[prediction.top], prediction.geometry)
                return prediction

            total = median_ms(file_to_cam, r)
            parts = file_to_cam().timings
            detail = ", ".join(f"{k} {v:.1f}" for k, v in parts.items() if k != "total")
            shape = "x".join(map(str, open_image(path).shape))
            print(f"file in -> scores + CAMs ({path.suffix[1:]}, {shape}): {total:.1f} ms  ({detail})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
