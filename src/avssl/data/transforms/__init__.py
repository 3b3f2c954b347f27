"""Video and audio augmentations on plain torch, reproducible through an explicit numpy Generator.

Every transform is a small callable ``t(x, rng) -> x``. Random ones draw all their parameters from
``rng`` once per call, i.e. once per clip, and apply them to every frame: CrissCross (Sec. 4.5)
finds temporally consistent augmentation far better than per-frame randomness (68.1 vs 53.7 top-1).
A dataset that passes a per-sample seeded ``rng`` gets the same augmentation on every run.
Deterministic transforms accept and ignore ``rng``.

Shapes: a decoded clip is uint8 ``(T, H, W, 3)`` (numpy or torch); :func:`to_tensor_video` makes it
float32 ``(3, T, H, W)`` in [0, 1], which every other video transform takes and returns (crops and
flips also take the uint8 ``(3, T, H, W)`` view: :func:`transform_video` crops before converting).
Colour transforms assume [0, 1] values, so they go before :class:`Normalize`. Audio transforms take
a float waveform ``(n,)`` or a log-mel ``(1, Q, P)``.

The parameter values of the builders follow CrissCross Table S1/S2 where the papers give them.
"""
from .checks import Compose
from .geometry import CenterCrop, RandomCrop, RandomHorizontalFlip, RandomResizedCrop, ShortSideResize, to_tensor_video, transform_video
from .colour import ColorJitter, Cutout, GaussianBlur, KINETICS_MEAN, KINETICS_STD, Normalize, RandomGrayscale
from .audio import FrequencyMask, RandomAudioCrop, RandomResizedSpecCrop, TimeMask, VolumeJitter
from .builders import audio_wave_transform, spectrogram_transform, video_transform

__all__ = [
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "Cutout",
    "FrequencyMask",
    "GaussianBlur",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "Normalize",
    "RandomAudioCrop",
    "RandomCrop",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomResizedSpecCrop",
    "ShortSideResize",
    "TimeMask",
    "VolumeJitter",
    "audio_wave_transform",
    "spectrogram_transform",
    "to_tensor_video",
    "transform_video",
    "video_transform",
]
