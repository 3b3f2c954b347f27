"""ResNet3D-18 video encoder (full 3x3x3 convolutions), torchvision ``r3d_18`` layout.

The XDC supplementary material uses it as an alternative visual backbone.
"""
from __future__ import annotations

from torch import nn

from .video_resnet import ConvSpec, VideoResNet, check_width, conv_bn_relu, scale_channels


class Conv3DSimple(nn.Conv3d):
    """Plain 3x3x3 convolution; strides time as well as space, like torchvision."""

    def __init__(self, in_planes: int, out_planes: int, stride: int = 1):
        super().__init__(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicStem(nn.Sequential):
    """3x7x7 conv (spatial stride 2) -> BN -> ReLU."""

    def __init__(self, width: float = 1.0, in_channels: int = 3):
        out = scale_channels(64, width)
        super().__init__(
            *conv_bn_relu(nn.Conv3d(in_channels, out, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False), out)
        )


def create_r3d_18(num_classes: int | None = None, width: float = 1.0) -> VideoResNet:
    """Build ResNet3D-18; input (B, 3, T, H, W), output (B, out_dim) or (B, num_classes)."""
    width = check_width(width)

    def make_conv(spec: ConvSpec) -> nn.Module:
        return Conv3DSimple(spec.in_planes, spec.out_planes, spec.stride)

    return VideoResNet(BasicStem(width), make_conv, width=width, num_classes=num_classes)
