"""Shared skeleton of the 18-layer video ResNets (R(2+1)D-18 and ResNet3D-18).

The two video encoders differ only in their stem and in the convolution used inside
each residual block; everything else (stage layout, residual blocks, downsampling
shortcuts, pooling, optional classifier, initialisation) lives here once.

Module names follow ``torchvision.models.video.resnet`` so that state dicts in the
torchvision layout (``stem.*``, ``layerN.B.conv1.0.*``, ``layerN.0.downsample.*``,
``fc.*``) load strictly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from avssl.errors import ConfigError

# Output channels and first-block stride of the four residual stages of every
# ResNet-18 (2D or 3D); width scaling is applied on top of these.
STAGE_PLANES = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
BLOCKS_18 = (2, 2, 2, 2)


def check_width(width: float) -> float:
    """Validate a channel multiplier (a positive finite number)."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not (0 < width < float("inf")):
        raise ConfigError(f"width must be a positive number, got {width!r}")
    return float(width)


def check_num_classes(num_classes: int | None) -> int | None:
    """Validate an optional classifier size (None, or a positive int)."""
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be None or a positive int, got {num_classes!r}")
    return num_classes


def scale_channels(channels: int, width: float) -> int:
    """Channel count after applying the width multiplier.

    Rounds halves up (not Python's round-half-to-even, so 45*0.5 -> 23) and never goes
    below 1, so width=1.0 is the identity and tiny CPU presets (e.g. width=0.25 -> 16
    base channels) stay valid. Every encoder scales its channels through this one
    function, so ``out_dim`` is always ``scale_channels(512, width)``.
    """
    return max(1, math.floor(channels * width + 0.5))


@dataclass(frozen=True)
class ConvSpec:
    """One 3x3(x3) convolution inside a residual block, as the skeleton will build it.

    ``block_in``/``block_out`` are the input/output widths of the enclosing block:
    torchvision derives the R(2+1)D mid-planes of BOTH block convolutions from them,
    whereas the Caffe2/XDC release uses each convolution's own ``in_planes``/``out_planes``.
    """

    name: str  # module path of the block conv, e.g. "layer2.0.conv1"
    in_planes: int
    out_planes: int
    stride: int
    block_in: int
    block_out: int


def block_conv_specs(width: float = 1.0, blocks: Sequence[int] = BLOCKS_18) -> list[ConvSpec]:
    """All block convolutions of a video ResNet in build order (two per BasicBlock)."""
    specs = []
    inplanes = scale_channels(STAGE_PLANES[0], width)
    for stage, (planes, stride, n) in enumerate(zip(STAGE_PLANES, STAGE_STRIDES, blocks), start=1):
        planes = scale_channels(planes, width)
        for b in range(n):
            s = stride if b == 0 else 1
            prefix = f"layer{stage}.{b}"
            specs.append(ConvSpec(f"{prefix}.conv1", inplanes, planes, s, inplanes, planes))
            specs.append(ConvSpec(f"{prefix}.conv2", planes, planes, 1, inplanes, planes))
            inplanes = planes
    return specs


# A conv maker turns a ConvSpec into the nn.Module doing that convolution
# (Conv2Plus1D for R(2+1)D, Conv3DSimple for ResNet3D).
ConvMaker = Callable[[ConvSpec], nn.Module]


def conv_bn_relu(conv: nn.Module, planes: int) -> list[nn.Module]:
    """A 3-D convolution, BatchNorm and ReLU, as consecutive layers of a Sequential: their indices in it
    (0, 1, 2) are the state-dict key names of torchvision's and the XDC release's weights."""
    return [conv, nn.BatchNorm3d(planes), nn.ReLU(inplace=True)]


def init_conv_bn(m: nn.Module) -> None:
    """torchvision's ResNet initialisation of one layer (2-D and 3-D alike): convolutions Kaiming-normal
    (fan-out, ReLU) with zero bias, BatchNorm weight 1 and bias 0; other layers are left alone."""
    if isinstance(m, (nn.Conv2d, nn.Conv3d)):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class BasicBlock(nn.Module):
    """Two-convolution residual block in torchvision's video layout.

    ``conv1 = Sequential(conv, BN, ReLU)`` and ``conv2 = Sequential(conv, BN)``; the
    extra Sequential level is what gives torchvision keys like ``conv1.0.0.weight``
    (first sub-layer of a Conv2Plus1D) and ``conv1.1.weight`` (the block's BN).
    """

    def __init__(self, conv1: nn.Module, conv2: nn.Module, planes: int, downsample: nn.Module | None):
        super().__init__()
        self.conv1 = nn.Sequential(*conv_bn_relu(conv1, planes))
        self.conv2 = nn.Sequential(conv2, nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        return self.relu(out + residual)


class VideoResNet(nn.Module):
    """ResNet skeleton for clips of shape (B, C, T, H, W).

    ``forward`` returns the pooled (B, out_dim) feature, or logits when a classifier
    ``fc`` is present. ``fc`` is None without ``num_classes``; assigning an
    ``nn.Linear(out_dim, k)`` later (e.g. when pseudo-label taxonomies change) adds one.
    """

    def __init__(
        self,
        stem: nn.Module,
        conv_maker: ConvMaker,
        width: float = 1.0,
        num_classes: int | None = None,
        blocks: Sequence[int] = BLOCKS_18,
    ):
        super().__init__()
        width = check_width(width)
        num_classes = check_num_classes(num_classes)
        self.stem = stem
        specs = iter(block_conv_specs(width, blocks))
        for stage, n in enumerate(blocks, start=1):
            layer = []
            for _ in range(n):
                s1, s2 = next(specs), next(specs)
                downsample = None
                if s1.stride != 1 or s1.in_planes != s1.out_planes:
                    # 1x1x1 projection, striding time as well: both R(2+1)D and R3D
                    # downsample T in stages 2-4 (torchvision's get_downsample_stride).
                    downsample = nn.Sequential(
                        nn.Conv3d(s1.in_planes, s1.out_planes, kernel_size=1, stride=s1.stride, bias=False),
                        nn.BatchNorm3d(s1.out_planes),
                    )
                layer.append(BasicBlock(conv_maker(s1), conv_maker(s2), s1.out_planes, downsample))
            setattr(self, f"layer{stage}", nn.Sequential(*layer))
        self.out_dim = scale_channels(STAGE_PLANES[-1], width)
        # Adaptive pooling makes any input size that survives the strides work (e.g. 4x16x16).
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc: nn.Linear | None = nn.Linear(self.out_dim, num_classes) if num_classes else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's video ResNet initialisation (the convention pretrained weights assume)."""
        for m in self.modules():
            init_conv_bn(m)
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled clip feature of shape (B, out_dim), whether or not ``fc`` exists."""
        if x.dim() != 5:
            raise ValueError(f"expected a video batch (B, C, T, H, W), got shape {tuple(x.shape)}")
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return f if self.fc is None else self.fc(f)
