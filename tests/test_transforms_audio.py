"""avssl.data.transforms.audio: volume jitter, waveform crops, time and frequency masks, spectrogram crops."""
import pytest
import torch

from avssl.data.transforms import FrequencyMask, RandomAudioCrop, RandomResizedSpecCrop, TimeMask, VolumeJitter
from conftest import rng

# ----------------------------------------------------------------------------------------- audio


def test_volume_jitter_applies_one_gain_in_range():
    wave = torch.linspace(-1, 1, 101)
    gains = []
    for seed in range(50):
        out = VolumeJitter(0.1)(wave, rng(seed))
        gain = out[-1].item()
        torch.testing.assert_close(out, wave * gain)
        gains.append(gain)
    assert 0.9 <= min(gains) < 0.93 and 1.07 < max(gains) <= 1.1


def test_random_audio_crop_returns_a_window():
    wave = torch.arange(16000 * 3, dtype=torch.float32)
    starts = set()
    for seed in range(20):
        out = RandomAudioCrop(2.0, sample_rate=16000)(wave, rng(seed))
        assert out.shape == (32000,)
        torch.testing.assert_close(out, wave[int(out[0]) : int(out[0]) + 32000], rtol=0, atol=0)
        starts.add(int(out[0]))
    assert len(starts) > 15
    with pytest.raises(ValueError, match="fewer than"):
        RandomAudioCrop(4.0)(wave, rng())


@pytest.mark.parametrize("mask, axis", [(TimeMask, -1), (FrequencyMask, -2)])
def test_masks_touch_at_most_the_stated_width(mask, axis):
    spec = torch.randn(1, 40, 100)
    widths = []
    for seed in range(40):
        out = mask(max_width=10, num_masks=1)(spec, rng(seed))
        changed = (out != spec).movedim(axis, -1).reshape(-1, spec.shape[axis]).any(dim=0)
        idx = changed.nonzero().flatten()
        if len(idx):
            assert idx[-1] - idx[0] + 1 == len(idx)  # one contiguous band
            band = out.movedim(axis, -1)[..., idx[0] : idx[-1] + 1]
            torch.testing.assert_close(band, torch.full_like(band, spec.mean().item()))  # whole band, mean fill
        widths.append(len(idx))
    assert max(widths) == 10 and min(widths) < 10


def test_two_masks_change_at_most_twice_the_width():
    spec = torch.randn(1, 80, 200)
    for seed in range(20):
        out = TimeMask(20, num_masks=2)(spec, rng(seed))
        assert (out != spec).any(dim=-2).sum() <= 40


def test_masks_do_not_modify_their_input():
    spec = torch.randn(1, 8, 20)
    copy = spec.clone()
    TimeMask(5, 2)(spec, rng())
    FrequencyMask(5, 2)(spec, rng())
    torch.testing.assert_close(spec, copy, rtol=0, atol=0)


def test_spectrogram_random_crop_keeps_the_shape_and_varies():
    spec = torch.randn(1, 40, 100)
    crop = RandomResizedSpecCrop()
    outs = [crop(spec, rng(s)) for s in range(3)]
    assert all(o.shape == spec.shape for o in outs)
    torch.testing.assert_close(crop(spec, rng(1)), outs[1], rtol=0, atol=0)
    assert not torch.allclose(outs[0], outs[1])
    # scale 1 everywhere and no canvas margin: the window is the whole spectrogram, resized to itself
    whole = RandomResizedSpecCrop(freq_scale=(1.0, 1.0), time_scale=(1.0, 1.0), canvas_scale=(1.0, 1.0))
    torch.testing.assert_close(whole(spec, rng()), spec)


def test_spectrogram_random_crop_fills_the_margin_with_the_mean():
    spec = torch.zeros(1, 8, 20)
    spec[..., 10:] = 2.0  # mean 1
    crop = RandomResizedSpecCrop(freq_scale=(1.0, 1.0), time_scale=(1.5, 1.5), canvas_scale=(1.0, 1.5))
    out = crop(spec, rng())  # the whole canvas: the spectrogram squeezed between two bands of the mean
    assert out[..., 0].mean() == pytest.approx(1.0) and out[..., -1].mean() == pytest.approx(1.0)
