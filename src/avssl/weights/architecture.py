"""Any avssl encoder from a state dict: infer its architecture, build it, load the weights."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from ..errors import LayoutError
from ..models import create_audio_resnet18, create_r2plus1d_18, create_r3d_18
from .release import _is_release_name, load_xdc_release, verify_hash_in_name
from .files import load_state_dict_file, strict_load
from .layouts import detect_midplanes

def infer_architecture(sd: Mapping[str, torch.Tensor]) -> dict:
    """``{"encoder", "width", "num_classes", ...}`` of a state dict in torchvision/avssl naming:
    R(2+1)D-18 (with its ``midplanes``), R3D-18 or the audio ResNet-18 (with ``in_channels``)."""
    fc = sd.get("fc.weight")
    num_classes = int(fc.shape[0]) if fc is not None and fc.dim() == 2 else None
    if "stem.3.weight" in sd and sd["stem.3.weight"].dim() == 5:
        width = sd["stem.3.weight"].shape[0] / 64
        midplanes = detect_midplanes(sd)
        if midplanes is None:
            raise LayoutError("an R(2+1)D state dict whose mid-planes follow neither torchvision's nor the XDC "
                              "release's rule")
        return {"encoder": "r2plus1d_18", "width": width, "midplanes": midplanes, "num_classes": num_classes}
    if "stem.0.weight" in sd and sd["stem.0.weight"].dim() == 5:
        return {"encoder": "r3d_18", "width": sd["stem.0.weight"].shape[0] / 64, "num_classes": num_classes}
    if "conv1.weight" in sd and sd["conv1.weight"].dim() == 4:
        w = sd["conv1.weight"]
        return {"encoder": "audio_resnet18", "width": w.shape[0] / 64, "in_channels": int(w.shape[1]),
                "num_classes": num_classes}
    raise LayoutError(f"not the state dict of an R(2+1)D-18, R3D-18 or audio ResNet-18 (keys: {sorted(sd)[:4]}...)")


def build_for(arch: Mapping) -> nn.Module:
    """The module :func:`infer_architecture` describes."""
    a = dict(arch)
    name = a.pop("encoder")
    if name == "r2plus1d_18":
        return create_r2plus1d_18(num_classes=a.get("num_classes"), width=a["width"], midplanes=a["midplanes"])
    if name == "r3d_18":
        return create_r3d_18(num_classes=a.get("num_classes"), width=a["width"])
    return create_audio_resnet18(num_classes=a.get("num_classes"), width=a["width"], in_channels=a["in_channels"])


def load_weights(path, *, check_hash: bool = True) -> nn.Module:
    """Any encoder weights file: an XDC release file (by its name), or a plain state dict in
    torchvision/avssl naming (an export, torchvision's own files), whose architecture is read from its
    shapes; loaded weights-only and strictly. A hash prefix in the name (``name-1a2b3c4d.pth``, as
    ``avssl weights export --hash-name`` and torchvision write them) is checked unless ``check_hash`` is
    False."""
    if _is_release_name(path):
        return load_xdc_release(path, check_hash=check_hash)
    if check_hash and Path(path).is_file():
        verify_hash_in_name(path)
    sd = load_state_dict_file(path)
    model = build_for(infer_architecture(sd))
    strict_load(model, sd, path)
    return model
