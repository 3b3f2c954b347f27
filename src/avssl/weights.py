"""Pretrained weights from outside a run: the official XDC release, torchvision's layout, exports.

The XDC authors released R(2+1)D-18 video encoders (github.com/HumamAlwassel/XDC, ``xdc.py``) as
PyTorch state dicts named ``r2plus1d_18_<pretraining>-<first 8 hex digits of the file's SHA-256>.pth``:

=========================  ==========  =================================================
pretraining                hash        what
=========================  ==========  =================================================
``xdc_ig65m_kinetics``     f24f6ffb    XDC pretrained on IG-Kinetics (the paper's best)
``xdc_ig65m_random``       189d23f4    XDC pretrained on IG-Random
``xdc_audioset``           f29ffe8f    XDC pretrained on AudioSet
``fs_kinetics``            622bdad9    fully supervised on Kinetics (baseline)
``fs_imagenet``            ff446670    fully supervised on ImageNet (baseline)
=========================  ==========  =================================================

They are video encoders only (no audio encoder was released), hold the backbone without a
classifier (the release's loader builds a fresh ``fc`` and loads with ``strict=False``), and use
torchvision's module names with the Caffe2 per-convolution mid-planes (``midplanes="xdc"`` of
:func:`avssl.models.create_r2plus1d_18`). The Caffe2 ``.pkl`` files of the same release are plain
Python pickles and are refused.

Loading here is stricter than the release's own loader: the hash prefix in the name must match the
file's SHA-256, the file is read with ``torch.load(weights_only=True)`` (never executing pickled
code), and every tensor must match the architecture by name and shape (only a classifier ``fc`` is
optional, and BatchNorm's ``num_batches_tracked`` counters, which files converted from Caffe2 may lack;
they never affect the output).

Layouts and what converts (:func:`convert_state_dict`):

* avssl <-> torchvision: key-identical (same module names); an avssl R(2+1)D built with
  ``midplanes="torchvision"`` (the default) has torchvision's shapes too, so its state dict loads
  into ``torchvision.models.video.r2plus1d_18`` as is (add ``fc`` or set ``model.fc = Identity()``).
* XDC release <-> torchvision: the same keys, and the same shapes everywhere except the second
  convolution of the first block of stages 2-4, whose (2+1)D factorisation has more mid-planes in
  the release (288/576/1152 instead of 230/460/921). torchvision -> release is exact: the extra
  mid-channels are added as inert zeros, and the network computes the same function.
  Release -> torchvision is NOT possible without changing the network (the mid-channels feed a
  BatchNorm and a ReLU, so no 230-channel factorisation reproduces a trained 288-channel one); it
  is only done when the channels to drop are inert (e.g. a release-layout copy of a torchvision
  model), and refused otherwise.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from .errors import CheckpointError
from .io import atomic_save, load_checkpoint
from .models import create_audio_resnet18, create_r2plus1d_18, create_r3d_18, factorized_midplanes

RELEASE_URL = "https://github.com/HumamAlwassel/XDC/releases/download/model_weights/"

# pretraining -> (hash prefix of the official .pth file, description)
RELEASE_FILES: dict[str, tuple[str, str]] = {
    "xdc_ig65m_kinetics": ("f24f6ffb", "XDC pretrained on IG-Kinetics"),
    "xdc_ig65m_random": ("189d23f4", "XDC pretrained on IG-Random"),
    "xdc_audioset": ("f29ffe8f", "XDC pretrained on AudioSet"),
    "fs_kinetics": ("622bdad9", "fully-supervised pretraining on Kinetics"),
    "fs_imagenet": ("ff446670", "fully-supervised pretraining on ImageNet"),
}

LAYOUTS = ("torchvision", "xdc-release", "avssl")
_LAYOUT_ALIASES = {"xdc": "xdc-release", "release": "xdc-release", "tv": "torchvision"}

_NAME = re.compile(r"^(?P<arch>r2plus1d_18)_(?P<pretraining>[a-z0-9_]+)-(?P<hash>[0-9a-f]+)\.(?P<ext>[A-Za-z0-9]+)$")
_HASH_SUFFIX = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_BLOCK_CONV = re.compile(r"^(layer\d+\.\d+\.conv[12])\.0\.0\.weight$")
_NO_COUNTER = "num_batches_tracked"


class LayoutError(CheckpointError):
    """Weights that do not fit the requested architecture or layout, or cannot be converted to it."""


@dataclass(frozen=True)
class ReleaseInfo:
    """What the name and content of a release file say about it."""

    path: str
    pretraining: str
    description: str
    hash_prefix: str  # from the file name
    sha256: str | None  # of the content (None when the check was skipped)
    official: bool  # the name's hash prefix is the one the XDC authors published for this pretraining
    url: str

    def to_dict(self) -> dict:
        return asdict(self)


# --- the release -----------------------------------------------------------------------------------

def parse_release_name(path) -> tuple[str, str]:
    """``(pretraining, hash_prefix)`` from a release file name; CheckpointError for anything else."""
    name = os.path.basename(os.fspath(path))
    known = ", ".join(f"r2plus1d_18_{p}-{h}.pth" for p, (h, _) in RELEASE_FILES.items())
    m = _NAME.match(name)
    if m is None:
        raise CheckpointError(
            f"{path}: not named like an XDC release file (r2plus1d_18_<pretraining>-<sha256 prefix>.pth); "
            f"the release has {known}. Keep the file's original name (its hash prefix is what verifies it), or "
            f"load a plain state dict with avssl.weights.load_weights")
    pretraining, prefix, ext = m["pretraining"], m["hash"], m["ext"].lower()
    if pretraining not in RELEASE_FILES:
        raise CheckpointError(f"{path}: unknown XDC pretraining {pretraining!r}; the release has "
                              f"{sorted(RELEASE_FILES)} ({known})")
    if ext == "pkl":
        raise CheckpointError(
            f"{path}: this is the release's Caffe2 .pkl file, a plain Python pickle that avssl will not "
            f"unpickle; use the PyTorch file of the same pretraining ({RELEASE_URL}r2plus1d_18_{pretraining}-"
            f"{RELEASE_FILES[pretraining][0]}.pth)")
    if ext not in ("pth", "pt"):
        raise CheckpointError(f"{path}: expected a .pth file, got .{ext}")
    if len(prefix) < 8:
        raise CheckpointError(f"{path}: the hash prefix {prefix!r} in the name is shorter than 8 hex digits, "
                              f"too short to verify the file")
    return pretraining, prefix


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_release_file(path, check_hash: bool = True) -> ReleaseInfo:
    """Parse the name and check its hash prefix against the file's SHA-256 (as ``torch.hub`` does with
    ``check_hash=True``); raises CheckpointError on a mismatch (a corrupt, truncated or renamed file)."""
    path = Path(path)
    pretraining, prefix = parse_release_name(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    digest = None
    if check_hash:
        digest = sha256_of(path)
        if not digest.startswith(prefix):
            raise CheckpointError(
                f"{path}: SHA-256 mismatch: the name says the hash starts with {prefix}, the file's SHA-256 is "
                f"{digest[:len(prefix)]}... ({path.stat().st_size} bytes). The file is corrupt, incomplete or not "
                f"the one its name claims; download it again from {RELEASE_URL}")
    official_prefix, description = RELEASE_FILES[pretraining]
    return ReleaseInfo(str(path), pretraining, description, prefix, digest, prefix.startswith(official_prefix)
                       or official_prefix.startswith(prefix), RELEASE_URL + f"r2plus1d_18_{pretraining}-{official_prefix}.pth")


def release_architecture(num_classes: int | None = None) -> nn.Module:
    """The architecture of the release files: R(2+1)D-18, width 1, per-convolution (Caffe2) mid-planes."""
    return create_r2plus1d_18(num_classes=num_classes, width=1.0, midplanes="xdc")


def load_xdc_release(path, modality: str | None = None, *, keep_fc: bool = False, num_classes: int | None = None,
                     check_hash: bool = True) -> nn.Module:
    """The video encoder of an official XDC release file (see the module docstring), loaded strictly.

    Args:
        path: a release ``.pth`` file with its original name (the name carries the hash prefix).
        modality: ``None`` or ``"video"``; the release has no audio encoder.
        keep_fc: keep a classifier stored in the file (the released files normally hold none).
        num_classes: add a fresh, randomly initialised ``fc`` of this size, as the release's own
            ``xdc_video_encoder(num_classes=...)`` does; cannot be combined with ``keep_fc``.
        check_hash: verify the name's hash prefix against the file's SHA-256 (default).

    Returns the R(2+1)D-18 (``midplanes="xdc"``), in train mode like any freshly built module, with
    the file's :class:`ReleaseInfo` as ``module.release_info``.
    """
    if modality not in (None, "video"):
        raise CheckpointError(f"{path}: the XDC release holds video encoders only (R(2+1)D-18); no {modality} "
                              f"encoder was released")
    if keep_fc and num_classes is not None:
        raise ValueError("pass keep_fc=True or num_classes=N, not both")
    info = verify_release_file(path, check_hash=check_hash)
    sd = load_state_dict_file(path)
    fc = {k: v for k, v in sd.items() if k.startswith("fc.")}
    if keep_fc and not fc:
        raise LayoutError(f"{path}: keep_fc=True, but the file holds no classifier (fc)")
    stored_classes = _fc_classes(fc, path) if fc else None
    if not keep_fc:
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    model = release_architecture(stored_classes if keep_fc else None)
    strict_load(model, sd, path, expected_layout="xdc-release")
    if num_classes is not None:
        model.fc = nn.Linear(model.out_dim, num_classes)
    model.release_info = info
    return model


def _fc_classes(fc: dict, path) -> int:
    w = fc.get("fc.weight")
    if w is None or w.dim() != 2 or set(fc) != {"fc.weight", "fc.bias"}:
        raise LayoutError(f"{path}: malformed classifier entries {sorted(fc)}")
    return int(w.shape[0])


# --- state dict files ------------------------------------------------------------------------------

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


# --- layouts and conversion --------------------------------------------------------------------------

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


# --- any encoder from a state dict -----------------------------------------------------------------

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


def _is_release_name(path) -> bool:
    m = _NAME.match(os.path.basename(os.fspath(path)))
    return m is not None and m["pretraining"] in RELEASE_FILES


def verify_hash_in_name(path) -> bool:
    """torch.hub's convention for any file: a name ending in ``-<hex digits>.<ext>`` (8 or more digits)
    promises that the file's SHA-256 starts with them. Checks it; False when the name makes no promise."""
    m = _HASH_SUFFIX.search(os.path.basename(os.fspath(path)))
    if m is None:
        return False
    digest = sha256_of(path)
    if not digest.startswith(m.group(1)):
        raise CheckpointError(f"{path}: SHA-256 mismatch: the name says the hash starts with {m.group(1)}, the file's "
                              f"SHA-256 is {digest[:len(m.group(1))]}...; the file is corrupt or incomplete")
    return True


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


# --- avssl runs <-> plain files ------------------------------------------------------------------------

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
    from .runs import LoadedEncoders, load_encoders

    loaded = source if isinstance(source, LoadedEncoders) else load_encoders(source)
    return loaded.for_modality(modality)[1]


def import_weights(path, out_dir, *, modality: str | None = None, overrides=(), check_hash: bool = True) -> Path:
    """Turn a weights file into an avssl ``encoders.pt`` in ``out_dir``, so that every evaluation
    (``avssl eval ... --encoders out_dir``) can use it.

    An XDC release file becomes the video encoder of the ``xdc-paper`` preset with ``video.midplanes=
    "xdc"``; a plain state dict becomes the encoder its shapes describe (``modality`` picks video or audio
    where the name does not tell). ``overrides`` (``section.key=value``) change the clip settings that
    evaluation will use, e.g. ``video.crop=112``."""
    from .config import resolve
    from .runs import encoders_payload, load_encoders

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


__all__ = [
    "LAYOUTS", "LayoutError", "RELEASE_FILES", "RELEASE_URL", "ReleaseInfo", "build_for", "convert_state_dict",
    "detect_midplanes", "export_torchvision", "import_weights", "infer_architecture", "load_state_dict_file",
    "load_weights", "load_xdc_release", "parse_release_name", "release_architecture", "sha256_of", "strict_load",
    "verify_hash_in_name", "verify_release_file",
]
