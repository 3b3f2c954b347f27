"""Between avssl runs and plain files: export an encoder in torchvision's names, import weights as an ``encoders.pt``."""
from __future__ import annotations

import json
import os
from pathlib import Path

from torch import nn

from ..errors import LayoutError
from ..io import atomic_save
from .release import _is_release_name, load_xdc_release, sha256_of, verify_hash_in_name
from .files import load_state_dict_file, strict_load
from .architecture import build_for, infer_architecture

def export_torchvision(source, out_path, *, modality: str = "video", hash_name: bool = False) -> Path:
    """Write an avssl encoder as a plain state dict (names -> tensors, torchvision's names; loadable with
    ``torch.load(weights_only=True)``). ``source``: an ``nn.Module``, a run directory, an ``encoders.pt``,
    or :class:`~avssl.runs.LoadedEncoders`. ``hash_name``: append the SHA-256 prefix to the name as
    the XDC/torchvision releases do (``name-1a2b3c4d.pth``, checked by ``torch.hub`` with
    ``check_hash=True``). Returns the written path.

    An R(2+1)D built with ``midplanes="torchvision"`` gives exactly torchvision's shapes; one built with
    ``midplanes="xdc"`` gives the XDC release's (load it with ``midplanes="xdc"``)."""
    module = _module_of(source, modality)
    sd = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    out_path = Path(out_path)
    atomic_save(sd, out_path)
    if hash_name:
        final = out_path.with_name(f"{out_path.stem}-{sha256_of(out_path)[:8]}{out_path.suffix}")
        os.replace(out_path, final)
        out_path = final
    return out_path


def _module_of(source, modality: str) -> nn.Module:
    if isinstance(source, nn.Module):
        return source
    from ..runs import LoadedEncoders, load_encoders

    loaded = source if isinstance(source, LoadedEncoders) else load_encoders(source)
    return loaded.for_modality(modality)[1]


def import_weights(path, out_dir, *, modality: str | None = None, overrides=(), check_hash: bool = True) -> Path:
    """Turn a weights file into an avssl ``encoders.pt`` in ``out_dir``, so that every evaluation
    (``avssl eval ... --encoders out_dir``) can use it.

    An XDC release file becomes the video encoder of the ``xdc-paper`` preset with ``video.midplanes=
    "xdc"``; a plain state dict becomes the encoder its shapes describe (``modality`` picks video or audio
    where the name does not tell). ``overrides`` (``section.key=value``) change the clip settings that
    evaluation will use, e.g. ``video.crop=112``."""
    from ..config import resolve
    from ..runs import encoders_payload, load_encoders

    path = Path(path)
    source: dict = {"file": str(path.resolve())}
    if _is_release_name(path):
        module = load_xdc_release(path, modality, check_hash=check_hash)
        info = module.release_info
        source.update(info.to_dict())
        arch = {"encoder": "r2plus1d_18", "width": 1.0, "midplanes": "xdc"}
        modality = "video"
        method = f"xdc-release:{info.pretraining}"
    else:
        if check_hash:
            verify_hash_in_name(path)
        sd = {k: v for k, v in load_state_dict_file(path).items() if not k.startswith("fc.")}
        arch = infer_architecture(sd)
        kind = "audio" if arch["encoder"] == "audio_resnet18" else "video"
        if modality not in (None, kind):
            raise LayoutError(f"{path}: holds a {kind} encoder ({arch['encoder']}), not the {modality} encoder "
                              f"asked for")
        modality = kind
        if arch.get("in_channels", 1) != 1:
            raise LayoutError(f"{path}: an audio encoder with {arch['in_channels']} input channels; avssl's log-mel "
                              f"input has 1")
        module = build_for(arch)
        strict_load(module, sd, path)
        source["sha256"] = sha256_of(path)
        method = "imported"
    section = "video" if modality == "video" else "audio"
    base = [f"{section}.encoder={arch['encoder']}", f"{section}.width={json.dumps(float(arch['width']))}"]
    if arch["encoder"] == "r2plus1d_18":
        base.append(f"video.midplanes={arch['midplanes']}")
    cfg = resolve("xdc-paper", "xdc", [*base, *overrides])
    # The overrides must not change the architecture the weights were loaded into.
    if getattr(cfg, section).width != float(arch["width"]) or getattr(cfg, section).encoder != arch["encoder"] or (
            arch["encoder"] == "r2plus1d_18" and cfg.video.midplanes != arch["midplanes"]):
        raise LayoutError(f"{path}: the overrides change the {section} architecture the weights belong to")
    sd = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items() if not k.startswith("fc.")}
    payload = encoders_payload(method, cfg.to_dict(), {modality: modality}, {modality: sd}, source=source)
    out = atomic_save(payload, Path(out_dir) / "encoders.pt")
    load_encoders(out)  # the file must load back (strictly) before we say it is there
    return out
