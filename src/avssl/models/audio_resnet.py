"""ResNet-18 audio encoder over log-mel spectrograms, the XDC audio backbone.

Layout and module names are torchvision's ``resnet18`` (``conv1``, ``bn1``, ``maxpool``,
``layer1..4`` with ``convK``/``bnK``/``downsample``, ``fc``); only ``conv1`` takes
``in_channels`` (1 for a log-mel image of Q mel bins x P frames) instead of RGB.
"""
from __future__ import annotations

import torch
from torch import nn

from avssl.errors import ConfigError

from .video_resnet import (
    BLOCKS_18, STAGE_PLANES, STAGE_STRIDES, check_num_classes, check_width, init_conv_bn, scale_channels,
)


class BasicBlock2d(nn.Module):
    """torchvision's 2D ResNet BasicBlock (3x3 conv, BN, ReLU, 3x3 conv, BN, + shortcut)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class AudioResNet(nn.Module):
    """ResNet-18 for (B, in_channels, Q, P) spectrograms.

    ``forward`` returns the pooled (B, out_dim) feature, or logits when ``fc`` is set
    (None without ``num_classes``; assign an ``nn.Linear(out_dim, k)`` to add one).
    """

    def __init__(self, num_classes: int | None = None, width: float = 1.0, in_channels: int = 1):
        super().__init__()
        width = check_width(width)
        num_classes = check_num_classes(num_classes)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ConfigError(f"in_channels must be a positive int, got {in_channels!r}")
        inplanes = scale_channels(STAGE_PLANES[0], width)
        self.conv1 = nn.Conv2d(in_channels, inplanes, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for stage, (planes, stride, n) in enumerate(zip(STAGE_PLANES, STAGE_STRIDES, BLOCKS_18), start=1):
            planes = scale_channels(planes, width)
            blocks = [BasicBlock2d(inplanes, planes, stride)]
            blocks += [BasicBlock2d(planes, planes) for _ in range(n - 1)]
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
            inplanes = planes
        self.out_dim = inplanes
        # Adaptive pooling: 40x100 (XDC's 2 s of audio) ends at 2x4, 80x200 at 3x7.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Linear | None = nn.Linear(self.out_dim, num_classes) if num_classes else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's ResNet initialisation (fc keeps nn.Linear's default, as there)."""
        for m in self.modules():
            init_conv_bn(m)  # its convolutions have no bias: what it zeroes is not there
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled spectrogram feature of shape (B, out_dim), whether or not ``fc`` exists."""
        if x.dim() != 4:
            raise ValueError(f"expected a spectrogram batch (B, C, Q, P), got shape {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return f if self.fc is None else self.fc(f)


def create_audio_resnet18(num_classes: int | None = None, width: float = 1.0, in_channels: int = 1) -> AudioResNet:
    """Build the audio ResNet-18; input (B, in_channels, Q, P) log-mel, output (B, out_dim) or logits."""
    return AudioResNet(num_classes=num_classes, width=width, in_channels=in_channels)
