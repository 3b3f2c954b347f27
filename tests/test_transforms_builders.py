"""avssl.data.transforms.builders: the video, waveform and spectrogram chains a config asks for."""
import pytest
import torch

from avssl.data.transforms import (
    CenterCrop,
    ColorJitter,
    Cutout,
    FrequencyMask,
    GaussianBlur,
    Normalize,
    RandomGrayscale,
    RandomResizedCrop,
    RandomResizedSpecCrop,
    ShortSideResize,
    TimeMask,
    audio_wave_transform,
    spectrogram_transform,
    video_transform,
)
from conftest import FULL_TRAIN, rng, video

# -------------------------------------------------------------------------------------- builders


@pytest.mark.parametrize("multiscale", [False, True])
@pytest.mark.parametrize("resize", [None, 20])
def test_builders_end_at_the_crop_size(multiscale, resize):
    clip = video(t=3, h=24, w=32)
    for train in (True, False):
        transform = video_transform(train=train, crop_size=16, resize=resize, multiscale=multiscale)
        out = transform(clip, rng())
        assert out.shape == (3, 3, 16, 16) and out.dtype == torch.float32


def test_eval_builder_is_deterministic_resize_centre_crop_normalize():
    clip = video(h=24, w=32)
    transform = video_transform(train=False, crop_size=16, resize=20, color_jitter=0.4, cutout=1.0)
    expected = Normalize()(CenterCrop(16)(ShortSideResize(20)(clip)))
    torch.testing.assert_close(transform(clip, None), expected, rtol=0, atol=0)
    torch.testing.assert_close(transform(clip, rng(1)), expected, rtol=0, atol=0)


def test_train_builder_uses_crisscross_parameters():
    chain = video_transform(True, 112, color_jitter=0.4, grayscale=0.2, blur=0.5, cutout=1.0, multiscale=True)
    steps = {type(t): t for t in chain.transforms}
    assert steps[RandomResizedCrop].scale == (0.08, 1.0)
    jitter = steps[ColorJitter]
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (0.4, 0.4, 0.4, 0.2)
    assert steps[RandomGrayscale].p == 0.2 and steps[GaussianBlur].p == 0.5
    assert steps[Cutout].max_size == 20 and steps[GaussianBlur].kernel_size == 11


def test_train_builder_without_extras_is_crop_flip_normalize():
    names = [type(t).__name__ for t in video_transform(True, 16).transforms]
    assert names == ["RandomCrop", "RandomHorizontalFlip", "Normalize"]


def test_full_pipeline_is_reproducible_and_varies_with_the_seed():
    clip = video()
    outputs = [FULL_TRAIN(clip, rng(seed)) for seed in range(4)]
    torch.testing.assert_close(FULL_TRAIN(clip, rng(0)), outputs[0], rtol=0, atol=0)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.equal(outputs[i], outputs[j])


def test_audio_builders():
    wave, spec = torch.randn(32000), torch.randn(1, 40, 100)
    assert audio_wave_transform(False) is None and audio_wave_transform(True, 0.0) is None
    assert spectrogram_transform(False, 20, 10)(spec, None) is spec
    assert spectrogram_transform(True)(spec, rng()) is spec
    assert not torch.equal(audio_wave_transform(True, 0.2)(wave, rng()), wave)
    masked = spectrogram_transform(True, time_mask=20, freq_mask=10)
    assert [type(t) for t in masked.transforms] == [TimeMask, FrequencyMask]
    assert all(t.num_masks == 2 for t in masked.transforms)
    torch.testing.assert_close(masked(spec, rng(4)), masked(spec, rng(4)), rtol=0, atol=0)
    cropped = spectrogram_transform(True, time_mask=20, freq_mask=10, random_crop=True)
    assert [type(t) for t in cropped.transforms] == [RandomResizedSpecCrop, TimeMask, FrequencyMask]
