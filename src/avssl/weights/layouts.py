"""The R(2+1)D mid-plane layouts (torchvision, xdc-release, avssl): detect one, convert between them."""
from __future__ import annotations

import re
from typing import Mapping

import torch

from ..errors import LayoutError
from ..models import factorized_midplanes

LAYOUTS = ("torchvision", "xdc-release", "avssl")
_LAYOUT_ALIASES = {"xdc": "xdc-release", "release": "xdc-release", "tv": "torchvision"}

_BLOCK_CONV = re.compile(r"^(layer\d+\.\d+\.conv[12])\.0\.0\.weight$")


def _r2plus1d_convs(sd: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, int, int, int]]:
    """{``layerN.B.convK``: (in, mid, out, block_in)} of every (2+1)D block conv of a state dict."""
    convs = {}
    for key in sd:
        m = _BLOCK_CONV.match(key)
        if m is None or sd[key].dim() != 5:
            continue
        name = m.group(1)
        temporal = sd.get(f"{name}.0.3.weight")
        if temporal is None:
            continue
        convs[name] = (int(sd[key].shape[1]), int(sd[key].shape[0]), int(temporal.shape[0]))
    out = {}
    for name, (cin, mid, cout) in convs.items():
        block = name.rsplit(".", 1)[0]
        block_in = convs.get(f"{block}.conv1", (cin,))[0]
        out[name] = (cin, mid, cout, block_in)
    return out


def _rule(layout: str, cin: int, cout: int, block_in: int, block_out: int) -> int:
    if layout == "torchvision":
        return factorized_midplanes(block_in, block_out)
    return factorized_midplanes(cin, cout)


def detect_midplanes(sd: Mapping[str, torch.Tensor]) -> str | None:
    """``"torchvision"`` or ``"xdc"`` for an R(2+1)D state dict whose mid-planes follow that rule
    (``"torchvision"`` when both rules agree everywhere); None otherwise (not R(2+1)D, or mixed)."""
    convs = _r2plus1d_convs(sd)
    if not convs:
        return None
    for layout in ("torchvision", "xdc"):
        if all(mid == _rule(layout, cin, cout, bin_, _block_out(convs, name)) for name, (cin, mid, cout, bin_) in convs.items()):
            return layout
    return None


def _block_out(convs: dict, name: str) -> int:
    block = name.rsplit(".", 1)[0]
    return convs.get(f"{block}.conv1", convs[name])[2]


def _layout_name(layout: str) -> str:
    layout = _LAYOUT_ALIASES.get(layout, layout)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; one of {LAYOUTS}")
    return layout


def convert_state_dict(sd: Mapping[str, torch.Tensor], src_layout: str, dst_layout: str, *,
                       midplanes: str | None = None, keep_fc: bool | None = None) -> dict[str, torch.Tensor]:
    """Convert a video encoder's state dict between layouts (see the module docstring).

    ``src_layout``/``dst_layout``: ``"torchvision"``, ``"xdc-release"`` (alias ``"xdc"``) or ``"avssl"``.
    An ``"avssl"`` state dict has torchvision's names and either mid-plane rule (read from its shapes);
    ``midplanes`` chooses the rule of an ``"avssl"`` destination (default: keep the source's).
    ``keep_fc``: keep the classifier (default: kept for torchvision, dropped for the release layout and
    avssl, whose encoders have none).

    Widening a (2+1)D conv's mid-planes (torchvision -> release) is exact; narrowing it is refused with
    a LayoutError unless the channels to drop are inert. Audio ResNet-18 and R3D-18 state dicts have
    no mid-planes: avssl <-> torchvision is the identity for them, and they have no release layout.
    """
    src, dst = _layout_name(src_layout), _layout_name(dst_layout)
    sd = {k: v.detach().clone() for k, v in sd.items()}
    convs = _r2plus1d_convs(sd)
    if keep_fc is None:
        keep_fc = dst == "torchvision"
    if not keep_fc:
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    if not convs:
        if "xdc-release" in (src, dst):
            raise LayoutError("the XDC release layout exists for R(2+1)D-18 video encoders only; this state dict "
                              "has no (2+1)D convolutions")
        return sd
    found = detect_midplanes(sd)
    declared = {"torchvision": "torchvision", "xdc-release": "xdc"}.get(src, found)
    if declared is None or found != declared and not (found == "torchvision" and _rules_agree(convs)):
        raise LayoutError(f"the state dict is not in the {src} layout: its mid-planes follow "
                          f"{found or 'neither rule (mixed)'} (layer2.0.conv2 has "
                          f"{convs.get('layer2.0.conv2', (0, '?'))[1]} mid-planes)")
    target = {"torchvision": "torchvision", "xdc-release": "xdc"}.get(dst) or midplanes or declared
    if target not in ("torchvision", "xdc"):
        raise ValueError(f"midplanes must be torchvision or xdc, got {target!r}")
    for name, (cin, mid, cout, block_in) in convs.items():
        want = _rule(target, cin, cout, block_in, _block_out(convs, name))
        if want > mid:
            _widen(sd, name, want)
        elif want < mid:
            _narrow(sd, name, want, src, dst)
    return sd


def _rules_agree(convs: dict) -> bool:
    return all(_rule("torchvision", c, o, b, _block_out(convs, n)) == _rule("xdc", c, o, b, _block_out(convs, n))
               for n, (c, _, o, b) in convs.items())


def _widen(sd: dict, name: str, want: int) -> None:
    """Add inert mid-channels: zero spatial filters, BN with gamma=beta=0 (output 0 whatever the input),
    zero temporal weights. The conv computes exactly the same function."""
    p = f"{name}.0"
    for key, fill in ((f"{p}.0.weight", 0.0), (f"{p}.1.weight", 0.0), (f"{p}.1.bias", 0.0),
                      (f"{p}.1.running_mean", 0.0), (f"{p}.1.running_var", 1.0)):
        t = sd[key]
        pad = torch.full((want - t.shape[0], *t.shape[1:]), fill, dtype=t.dtype)
        sd[key] = torch.cat([t, pad], 0)
    t = sd[f"{p}.3.weight"]
    sd[f"{p}.3.weight"] = torch.cat([t, torch.zeros(t.shape[0], want - t.shape[1], *t.shape[2:], dtype=t.dtype)], 1)


def _narrow(sd: dict, name: str, want: int, src: str, dst: str) -> None:
    p = f"{name}.0"
    temporal = sd[f"{p}.3.weight"]
    dropped = temporal[:, want:]
    if torch.count_nonzero(dropped):
        raise LayoutError(
            f"{name}: cannot convert {src} -> {dst} losslessly: this (2+1)D convolution has {temporal.shape[1]} "
            f"mid-planes and the {dst} layout has {want}; the mid-channels feed a BatchNorm and a ReLU, so no "
            f"narrower factorisation computes the same function, and {int((dropped.abs().sum((0, 2, 3, 4)) > 0).sum())} "
            f"of the {temporal.shape[1] - want} channels that would be dropped are in use. Build the model with "
            f"midplanes='xdc' instead (avssl's create_r2plus1d_18, hubconf r2plus1d_18(midplanes='xdc')), which loads "
            f"these weights exactly")
    for key in (f"{p}.0.weight", f"{p}.1.weight", f"{p}.1.bias", f"{p}.1.running_mean", f"{p}.1.running_var"):
        sd[key] = sd[key][:want].clone()
    sd[f"{p}.3.weight"] = temporal[:, :want].clone()
