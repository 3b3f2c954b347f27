"""torch.hub entry points of avssl, for a local clone (no network needed):

    import torch
    model = torch.hub.load("/path/to/avssl", "xdc_video", source="local",
                           path="r2plus1d_18_xdc_ig65m_kinetics-f24f6ffb.pth")
    model = torch.hub.load("/path/to/avssl", "r2plus1d_18", source="local", pretrained_path="export.pth")
    model = torch.hub.load("/path/to/avssl", "avssl_encoder", source="local", run="runs/xdc", modality="audio")

Every file is loaded with ``torch.load(weights_only=True)`` and strictly (names and shapes).
"""
import os
import sys

dependencies = ["torch"]

# A clone that is not pip-installed: import avssl from its src/ folder.
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
if os.path.isdir(os.path.join(_SRC, "avssl")) and _SRC not in sys.path:
    sys.path.insert(0, _SRC)


def _finish(model, num_classes):
    if num_classes is not None:
        from torch import nn

        model.fc = nn.Linear(model.out_dim, num_classes)
    return model


def xdc_video(path, num_classes=None, check_hash=True):
    """R(2+1)D-18 video encoder from an official XDC release file (e.g.
    ``r2plus1d_18_xdc_ig65m_kinetics-f24f6ffb.pth``, downloaded beforehand; keep its name, whose hash
    prefix is checked against the file's SHA-256). Returns pooled 512-d features, or logits of a fresh
    randomly initialised ``fc`` when ``num_classes`` is given (as the release's own loader does)."""
    from avssl.weights import load_xdc_release

    return load_xdc_release(path, num_classes=num_classes, check_hash=check_hash)


def r2plus1d_18(pretrained_path=None, midplanes=None, num_classes=None, width=None):
    """R(2+1)D-18 (torchvision module names). Without ``pretrained_path``: random init with
    ``midplanes`` ("torchvision", the default, or "xdc"). With it: the weights of a plain state dict
    (an ``avssl weights export``, torchvision's own file, or a release file), whose width and mid-plane
    layout are read from the file; ``midplanes``/``width``, if given, must agree with it. ``num_classes``
    replaces the classifier with a fresh one."""
    from avssl.models import create_r2plus1d_18

    if pretrained_path is None:
        return create_r2plus1d_18(num_classes=num_classes, width=width or 1.0, midplanes=midplanes or "torchvision")
    return _pretrained(pretrained_path, "r2plus1d_18", num_classes, width=width, midplanes=midplanes)


def r3d_18(pretrained_path=None, num_classes=None, width=None):
    """ResNet3D-18 (torchvision ``r3d_18`` layout), random or from a plain state dict."""
    from avssl.models import create_r3d_18

    if pretrained_path is None:
        return create_r3d_18(num_classes=num_classes, width=width or 1.0)
    return _pretrained(pretrained_path, "r3d_18", num_classes, width=width)


def audio_resnet18(pretrained_path=None, num_classes=None, width=None, in_channels=1):
    """ResNet-18 over (B, 1, mel bins, frames) log-mel spectrograms (torchvision ``resnet18`` names)."""
    from avssl.models import create_audio_resnet18

    if pretrained_path is None:
        return create_audio_resnet18(num_classes=num_classes, width=width or 1.0, in_channels=in_channels)
    return _pretrained(pretrained_path, "audio_resnet18", num_classes, width=width)


def avssl_encoder(run, modality="video", num_classes=None):
    """The ``modality`` encoder of an avssl pretraining run (its directory or ``encoders.pt``)."""
    from avssl.runs import load_encoders

    return _finish(load_encoders(run).for_modality(modality)[1], num_classes)


def _pretrained(path, encoder, num_classes, width=None, midplanes=None):
    from avssl.weights import LayoutError, infer_architecture, load_weights

    model = load_weights(path)
    arch = infer_architecture(model.state_dict())
    wrong = []
    if arch["encoder"] != encoder:
        wrong.append(f"it holds a {arch['encoder']}, not a {encoder}")
    if width is not None and abs(arch["width"] - width) > 1e-9:
        wrong.append(f"its width is {arch['width']}, not {width}")
    if midplanes is not None and arch.get("midplanes") != midplanes:
        wrong.append(f"its mid-planes follow the {arch.get('midplanes')} layout, not {midplanes}")
    if wrong:
        raise LayoutError(f"{path}: " + "; ".join(wrong))
    return _finish(model, num_classes)
