"""The XDC authors' release files: names, hashes, and loading them into R(2+1)D-18."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from ..errors import CheckpointError, LayoutError
from ..models import create_r2plus1d_18
from .files import load_state_dict_file, strict_load

RELEASE_URL = "https://github.com/HumamAlwassel/XDC/releases/download/model_weights/"

# pretraining -> (hash prefix of the official .pth file, description)
RELEASE_FILES: dict[str, tuple[str, str]] = {
    "xdc_ig65m_kinetics": ("f24f6ffb", "XDC pretrained on IG-Kinetics"),
    "xdc_ig65m_random": ("189d23f4", "XDC pretrained on IG-Random"),
    "xdc_audioset": ("f29ffe8f", "XDC pretrained on AudioSet"),
    "fs_kinetics": ("622bdad9", "fully-supervised pretraining on Kinetics"),
    "fs_imagenet": ("ff446670", "fully-supervised pretraining on ImageNet"),
}

_NAME = re.compile(r"^(?P<arch>r2plus1d_18)_(?P<pretraining>[a-z0-9_]+)-(?P<hash>[0-9a-f]+)\.(?P<ext>[A-Za-z0-9]+)$")
_HASH_SUFFIX = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


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
