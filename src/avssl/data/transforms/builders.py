"""The train and evaluation pipelines the datasets use (CrissCross Table S1/S2 values)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from .checks import Compose
from .geometry import CenterCrop, RandomCrop, RandomHorizontalFlip, RandomResizedCrop, ShortSideResize
from .colour import ColorJitter, Cutout, GaussianBlur, KINETICS_MEAN, KINETICS_STD, Normalize, RandomGrayscale
from .audio import FrequencyMask, RandomResizedSpecCrop, TimeMask, VolumeJitter


def video_transform(
    train: bool,
    crop_size: int,
    resize: int | None = None,
    flip: bool = True,
    color_jitter: float = 0.0,
    grayscale: float = 0.0,
    blur: float = 0.0,
    cutout: float = 0.0,
    multiscale: bool = False,
    mean: Sequence[float] = KINETICS_MEAN,
    std: Sequence[float] = KINETICS_STD,
) -> Compose:
    """The video chain used by training and evaluation: float ``(3, T, H, W)`` clip in [0, 1] (from
    :func:`to_tensor_video`) -> normalised float ``(3, T, crop_size, crop_size)``.

    train: [short-side resize], random crop (multi-scale crop if ``multiscale``), flip, then the
    enabled jitters, normalise. eval: [resize], centre crop, normalise.

    ``color_jitter`` is the strength s: brightness, contrast and saturation s, hue s/2 (0.4 gives
    CrissCross Table S1's 0.4/0.4/0.4/0.2), applied with probability 0.8 as in SimCLR, since the
    papers give no probability. ``grayscale``, ``blur`` and ``cutout`` are probabilities (Table S1:
    0.2, 0.5, 1). The blur kernel is ~10% of the crop (SimCLR); the cutout size limit is 20 px at
    CrissCross's 112 px crop, scaled with the crop size.
    """
    steps: list[Callable] = []
    if resize is not None:
        steps.append(ShortSideResize(resize))
    if not train:
        return Compose([*steps, CenterCrop(crop_size), Normalize(mean, std)])

    steps.append(RandomResizedCrop(crop_size) if multiscale else RandomCrop(crop_size))
    if flip:
        steps.append(RandomHorizontalFlip())
    if color_jitter > 0:
        steps.append(ColorJitter(color_jitter, color_jitter, color_jitter, min(0.5, color_jitter / 2), p=0.8))
    if grayscale > 0:
        steps.append(RandomGrayscale(grayscale))
    if blur > 0:
        steps.append(GaussianBlur(max(3, 2 * (crop_size // 20) + 1), p=blur))
    if cutout > 0:
        steps.append(Cutout(max(1, round(crop_size * 20 / 112)), p=cutout))
    steps.append(Normalize(mean, std))
    return Compose(steps)


def audio_wave_transform(train: bool, volume_jitter: float = 0.1) -> VolumeJitter | None:
    """The waveform's one augmentation: a volume jitter when training (the dataset folds its gain into
    the log-mel, ``ClipDataset.audio_tensor``), None otherwise."""
    return VolumeJitter(volume_jitter) if train and volume_jitter > 0 else None


def spectrogram_transform(train: bool, time_mask: int = 0, freq_mask: int = 0, random_crop: bool = False,
                          time_warp: int = 0) -> Compose:
    """Log-mel augmentation when training: the random resized crop if ``random_crop``, a time warp of up
    to ``time_warp`` frames (``time_warp.TimeWarp``, Table S2: 20), then two time masks of up to
    ``time_mask`` frames and two frequency masks of up to ``freq_mask`` bands (CrissCross Table S2: 20
    and 10); identity otherwise."""
    if not train:
        return Compose([])
    steps: list[Callable] = [RandomResizedSpecCrop()] if random_crop else []
    if time_warp > 0:
        from .time_warp import TimeWarp

        steps.append(TimeWarp(time_warp))
    if time_mask > 0:
        steps.append(TimeMask(time_mask, num_masks=2))
    if freq_mask > 0:
        steps.append(FrequencyMask(freq_mask, num_masks=2))
    return Compose(steps)
