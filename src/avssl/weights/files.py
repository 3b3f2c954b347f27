"""Plain state-dict files: read one (weights only), and load it strictly into a module."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from ..errors import CheckpointError, LayoutError
from ..io import load_checkpoint
from .layouts import detect_midplanes

_NO_COUNTER = "num_batches_tracked"


def load_state_dict_file(path) -> dict[str, torch.Tensor]:
    """A plain state dict (names -> tensors) from a file, loaded weights-only. An avssl ``encoders.pt``
    or pretraining checkpoint is refused with a pointer to the right function."""
    obj = load_checkpoint(path)
    if isinstance(obj, Mapping) and isinstance(obj.get("format"), str) and obj["format"].startswith("avssl-"):
        raise CheckpointError(f"{path}: an avssl run file ({obj['format']}), not a plain state dict; load it with "
                              f"avssl.runs.load_encoders, or turn an encoder of it into a state dict with "
                              f"'avssl weights export'")
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: expected a state dict (a mapping of names to tensors), got "
                              f"{type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"{path}: not a plain state dict: {len(bad)} entr(y/ies) are not name -> tensor "
                              f"(first: {bad[0]!r}: {type(obj[bad[0]]).__name__})")
    return dict(obj)


def strict_load(module: nn.Module, sd: Mapping[str, torch.Tensor], source, expected_layout: str | None = None) -> None:
    """``module.load_state_dict(sd, strict=True)`` with one readable error listing every missing,
    unexpected and mis-shaped tensor. Missing BatchNorm ``num_batches_tracked`` counters (files converted
    from Caffe2 may lack them; they never affect the output) are filled with zeros."""
    expected = module.state_dict()
    full = dict(sd)
    for k, v in expected.items():
        if k.endswith(_NO_COUNTER) and k not in full:
            full[k] = torch.zeros_like(v)
    missing = [k for k in expected if k not in full]
    unexpected = [k for k in full if k not in expected]
    mismatched = [(k, tuple(full[k].shape), tuple(v.shape)) for k, v in expected.items()
                  if k in full and tuple(full[k].shape) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        lines = [f"{source}: the weights do not match the {type(module).__name__} they are loaded into "
                 f"(strict key and shape match):"]
        if mismatched:
            lines.append(f"  {len(mismatched)} shape mismatch(es), e.g. " + "; ".join(
                f"{k}: file {list(a)} vs model {list(b)}" for k, a, b in mismatched[:3]))
        if missing:
            lines.append(f"  {len(missing)} missing, e.g. {missing[:3]}")
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected, e.g. {unexpected[:3]}")
        found = detect_midplanes(sd)
        if expected_layout == "xdc-release" and found == "torchvision":
            lines.append("  the file is in torchvision's mid-plane layout (e.g. layer2.0.conv2 with 230 mid-planes "
                         "instead of the release's 288): it is not an XDC release file; load it with "
                         "avssl.weights.load_weights or torch.hub.load(..., 'r2plus1d_18', pretrained_path=...)")
        elif expected_layout == "torchvision" and found == "xdc":
            lines.append("  the file is in the XDC release's mid-plane layout; build the model with midplanes='xdc'")
        raise LayoutError("\n".join(lines))
    module.load_state_dict(full, strict=True)
