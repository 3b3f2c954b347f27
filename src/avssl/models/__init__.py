"""Encoders: R(2+1)D-18 and ResNet3D-18 for video, ResNet-18 for log-mel audio.

Every encoder has ``out_dim`` (512 at width 1.0), ``features(x) -> (B, out_dim)`` and
``forward(x)``, which returns the pooled feature, or logits when built with
``num_classes`` (then ``fc = Linear(out_dim, num_classes)``, torchvision's key layout).
"""
from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from avssl.errors import ConfigError

from .audio_resnet import AudioResNet, create_audio_resnet18
from .r2plus1d import Conv2Plus1D, create_r2plus1d_18, factorized_midplanes, resolve_midplanes
from .resnet3d import create_r3d_18
from .video_resnet import VideoResNet, scale_channels

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "r2plus1d_18": create_r2plus1d_18,
    "r3d_18": create_r3d_18,
    "audio_resnet18": create_audio_resnet18,
}


def build_encoder(name: str, **kwargs) -> nn.Module:
    """Build an encoder by name (one of ``ENCODERS``) with its builder's keyword arguments."""
    try:
        builder = ENCODERS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown encoder {name!r}; valid names: {', '.join(sorted(ENCODERS))}") from None
    try:
        # Check the options up front so a misspelt key reads as a config problem.
        inspect.signature(builder).bind(**kwargs)
    except TypeError as e:
        raise ConfigError(f"invalid options for encoder {name!r}: {e}") from None
    return builder(**kwargs)


def build_modality_encoder(cfg, modality: str) -> nn.Module:
    """The encoder a config (``PretrainConfig``) asks for, for ``video`` or ``audio`` input."""
    if modality == "video":
        kw = {"width": cfg.video.width}
        if cfg.video.encoder == "r2plus1d_18":
            kw["midplanes"] = cfg.video.midplanes
        return build_encoder(cfg.video.encoder, **kw)
    if modality == "audio":
        return build_encoder(cfg.audio.encoder, width=cfg.audio.width)
    raise ValueError(f"unknown modality {modality!r}")


__all__ = [
    "AudioResNet",
    "Conv2Plus1D",
    "ENCODERS",
    "VideoResNet",
    "build_encoder",
    "build_modality_encoder",
    "create_audio_resnet18",
    "create_r2plus1d_18",
    "create_r3d_18",
    "factorized_midplanes",
    "resolve_midplanes",
    "scale_channels",
]
