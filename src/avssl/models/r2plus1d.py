"""R(2+1)D-18 video encoder (Tran et al., CVPR 2018), the XDC visual backbone.

Two mid-plane conventions exist for the (2+1)D factorisation, and state dicts of one
do not load into the other:

* ``"torchvision"``: ``torchvision.models.video.r2plus1d_18`` computes the mid-planes once
  per block from the block's (inplanes, planes) and reuses them for both convolutions.
* ``"xdc"``: the Caffe2 VMZ models, and the XDC release converted from them, compute
  them per convolution from that convolution's own (in, out) channels (see
  facebookresearch/VMZ#89). The two differ only in the second conv of the first block
  of stages 2-4 (e.g. ``layer2.0.conv2``: 288 instead of 230 mid-planes).
"""
from __future__ import annotations

from typing import Mapping, Union

from torch import nn

from avssl.errors import ConfigError

from .video_resnet import ConvSpec, VideoResNet, block_conv_specs, check_width, conv_bn_relu, scale_channels

MidplanesArg = Union[str, Mapping[str, int]]
MIDPLANE_LAYOUTS = ("torchvision", "xdc")


def factorized_midplanes(in_planes: int, out_planes: int) -> int:
    """Mid-planes that give a (2+1)D conv ~the parameters of a full 3x3x3 conv.

    From Tran et al.: M = floor(t*d^2*N_in*N_out / (d^2*N_in + t*N_out)) with t=d=3.
    """
    return (in_planes * out_planes * 27) // (in_planes * 9 + 3 * out_planes)


class Conv2Plus1D(nn.Sequential):
    """Spatial (1x3x3) conv -> BN -> ReLU -> temporal (3x1x1) conv, torchvision layout."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1):
        super().__init__(
            *conv_bn_relu(nn.Conv3d(in_planes, midplanes, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
                                    bias=False), midplanes),
            nn.Conv3d(midplanes, out_planes, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
        )
        self.midplanes = midplanes


class R2Plus1dStem(nn.Sequential):
    """Factorised 7x7 spatial then 3x1x1 temporal stem (45 mid-planes at width 1)."""

    def __init__(self, width: float = 1.0, in_channels: int = 3):
        mid, out = scale_channels(45, width), scale_channels(64, width)
        super().__init__(
            *conv_bn_relu(nn.Conv3d(in_channels, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False), mid),
            *conv_bn_relu(nn.Conv3d(mid, out, (3, 1, 1), stride=1, padding=(1, 0, 0), bias=False), out),
        )


def resolve_midplanes(midplanes: MidplanesArg, width: float = 1.0) -> dict[str, int]:
    """Mid-planes of every block conv, keyed by module name (``"layer2.0.conv2"``).

    ``midplanes`` is ``"torchvision"``, ``"xdc"``, or a dict of per-conv overrides on top
    of the torchvision rule (useful for checkpoints from other ports).
    """
    specs = block_conv_specs(width)
    if isinstance(midplanes, str):
        if midplanes == "torchvision":
            return {s.name: factorized_midplanes(s.block_in, s.block_out) for s in specs}
        if midplanes == "xdc":
            return {s.name: factorized_midplanes(s.in_planes, s.out_planes) for s in specs}
        raise ConfigError(f"midplanes must be one of {MIDPLANE_LAYOUTS} or a dict, got {midplanes!r}")
    if not isinstance(midplanes, Mapping):
        raise ConfigError(f"midplanes must be one of {MIDPLANE_LAYOUTS} or a dict, got {midplanes!r}")
    table = resolve_midplanes("torchvision", width)
    unknown = sorted(set(midplanes) - set(table))
    if unknown:
        raise ConfigError(f"unknown conv names in midplanes override: {unknown}; valid names: {sorted(table)}")
    for name, m in midplanes.items():
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ConfigError(f"midplanes[{name!r}] must be a positive int, got {m!r}")
    table.update(midplanes)
    return table


def create_r2plus1d_18(
    num_classes: int | None = None,
    width: float = 1.0,
    midplanes: MidplanesArg = "torchvision",
) -> VideoResNet:
    """Build R(2+1)D-18; input (B, 3, T, H, W), output (B, out_dim) or (B, num_classes).

    Args:
        num_classes: adds ``fc = Linear(out_dim, num_classes)`` and returns logits.
        width: channel multiplier (0.25 -> 16 base channels) for small CPU runs.
        midplanes: ``"torchvision"``, ``"xdc"`` (official XDC/Caffe2 release layout), or a
            ``{"layerN.B.convK": int}`` override; see the module docstring.
    """
    width = check_width(width)
    table = resolve_midplanes(midplanes, width)

    def make_conv(spec: ConvSpec) -> nn.Module:
        return Conv2Plus1D(spec.in_planes, spec.out_planes, table[spec.name], spec.stride)

    return VideoResNet(R2Plus1dStem(width), make_conv, width=width, num_classes=num_classes)
