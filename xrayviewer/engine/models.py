"""Model architectures: a registry of backbones and heads, one network class that exposes what CAM needs.

Every model is a :class:`ChestNet`: ``features(x)`` (the backbone's last feature maps, before the final ReLU,
shape (N, C, h, w)) → ``relu`` → global average pool → ``classifier`` (the head). Parameter names of the
``xrv-densenet121`` + ``linear`` combination equal torchxrayvision's own ``DenseNet`` state dict, so its
pretrained weights load as they are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ChestNet(nn.Module):
    """Backbone features → ReLU → global average pool → head (returns logits)."""

    def __init__(self, features: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.relu = nn.ReLU(inplace=False)  # a module (not F.relu) so Grad-CAM tools can hook its output
        self.classifier = classifier

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, K) and the rectified last feature maps (N, C, h, w) from one pass."""
        maps = self.relu(self.features(x))
        logits = self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(maps, 1), 1))
        return logits, maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K)."""
        return self.forward_with_maps(x)[0]


def _xrv_densenet121() -> tuple[nn.Module, int]:
    import torchxrayvision as xrv  # heavy import, only when a model is built

    net = xrv.models.DenseNet(weights=None, num_classes=1, in_channels=1)
    return net.features, net.classifier.in_features


def _tv_densenet201() -> tuple[nn.Module, int]:
    import torchvision

    net = torchvision.models.densenet201(weights=None)
    old = net.features.conv0
    net.features.conv0 = nn.Conv2d(
        1, old.out_channels, kernel_size=old.kernel_size, stride=old.stride, padding=old.padding, bias=False
    )
    nn.init.kaiming_normal_(net.features.conv0.weight)
    return net.features, net.classifier.in_features


def _tiny_densenet() -> tuple[nn.Module, int]:
    """A two-block torchxrayvision DenseNet for tests and smoke runs (~8k weights), never for diagnosis."""
    import torchxrayvision as xrv

    net = xrv.models.DenseNet(
        weights=None, num_classes=1, in_channels=1, growth_rate=8, block_config=(2, 2), num_init_features=16,
        bn_size=2,
    )
    return net.features, net.classifier.in_features


def _linear_head(in_features: int, num_outputs: int) -> nn.Module:
    return nn.Linear(in_features, num_outputs)


def _mlp_head(in_features: int, num_outputs: int) -> nn.Module:
    """The Keras-style head of the DenseNet201 notebook we replace: (pooled) → BatchNorm → Dense 512 + ReLU →
    Dropout 0.5 → outputs."""
    return nn.Sequential(
        nn.BatchNorm1d(in_features),
        nn.Linear(in_features, 512),
        nn.ReLU(inplace=False),
        nn.Dropout(0.5),
        nn.Linear(512, num_outputs),
    )


#: architecture id -> builder returning (features module, number of feature channels); 1-channel input.
ARCHITECTURES: dict[str, Callable[[], tuple[nn.Module, int]]] = {
    "xrv-densenet121": _xrv_densenet121,
    "tv-densenet201": _tv_densenet201,
    "tiny-densenet": _tiny_densenet,
}

#: head id -> builder(in_features, num_outputs)
HEADS: dict[str, Callable[[int, int], nn.Module]] = {
    "linear": _linear_head,
    "mlp": _mlp_head,
}


def build_model(arch: str, num_outputs: int, head: str = "linear") -> ChestNet:
    """A randomly initialised :class:`ChestNet` (no downloads); load weights separately."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; known: {', '.join(HEADS)}")
    if num_outputs < 1:
        raise ValueError("a model needs at least one output")
    features, channels = ARCHITECTURES[arch]()
    return ChestNet(features, HEADS[head](channels, num_outputs))
