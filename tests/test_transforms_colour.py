"""avssl.data.transforms.colour: colour jitter, greyscale, blur, cutout and normalisation (also straight
from uint8)."""
import colorsys

import numpy as np
import pytest
import torch

from avssl.data.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    ColorJitter,
    Cutout,
    GaussianBlur,
    Normalize,
    RandomGrayscale,
    to_tensor_video,
)
from avssl.data.transforms.colour import _hue_matrix
from conftest import rng, video

# ---------------------------------------------------------------------------------------- colour


def test_grayscale_makes_channels_equal_bt601_luma():
    x = video()
    out = RandomGrayscale(p=1.0)(x, rng())
    expected = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    for c in range(3):
        torch.testing.assert_close(out[c], expected)
    assert RandomGrayscale(p=0.0)(x, rng()) is x


def test_brightness_scales_every_pixel_by_one_factor_in_range():
    x = 0.1 + 0.4 * video()  # no zeros to divide by, and clear of the clamp at 1
    out = ColorJitter(brightness=0.4)(x, rng(3))
    ratio = out / x
    assert 0.6 <= ratio.min() and ratio.max() <= 1.4
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio.mean().item()))


def test_saturation_and_hue_leave_grey_pixels_alone():
    grey = torch.rand(1, 4, 8, 8).expand(3, 4, 8, 8).contiguous()
    for seed in range(5):
        out = ColorJitter(saturation=0.4, hue=0.5)(grey, rng(seed))
        torch.testing.assert_close(out, grey, atol=1e-5, rtol=0)


def test_hue_shift_keeps_luma_and_changes_colour():
    x = 0.25 + 0.5 * video()  # mid-range colours stay in gamut after a small rotation
    out = ColorJitter(hue=0.05)(x, rng(0))
    luma = lambda v: 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2]  # noqa: E731
    torch.testing.assert_close(luma(out), luma(x), atol=2e-3, rtol=0)
    assert (out - x).abs().max() > 0.01


def test_hue_matrix_turns_colours_the_way_hsv_does():
    # The approximation is not exact, but a small shift must move hue the same way as HSV.
    for rgb in [(0.8, 0.2, 0.2), (0.2, 0.7, 0.3), (0.3, 0.4, 0.9)]:
        hue = colorsys.rgb_to_hsv(*rgb)[0]
        shifted = (_hue_matrix(0.05) @ torch.tensor(rgb, dtype=torch.float64)).clamp(0, 1).tolist()
        turn = (colorsys.rgb_to_hsv(*shifted)[0] - hue + 0.5) % 1.0 - 0.5
        assert 0.02 < turn < 0.08


def test_contrast_moves_pixels_towards_the_clip_mean_grey():
    x = video()
    out = ColorJitter(contrast=0.4)(x, rng(0))
    mean_grey = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).mean()
    factor = ((out - mean_grey) / (x - mean_grey))[(x - mean_grey).abs() > 0.1]
    assert 0.6 <= factor.min() and factor.max() <= 1.4
    torch.testing.assert_close(factor, torch.full_like(factor, factor.mean().item()), atol=1e-4, rtol=0)


def test_color_jitter_probability_zero_is_identity():
    x = video()
    assert ColorJitter(0.4, 0.4, 0.4, 0.2, p=0.0)(x, rng()) is x


def test_blur_keeps_flat_frames_and_smooths_noise():
    flat = torch.full((3, 2, 16, 16), 0.3)
    torch.testing.assert_close(GaussianBlur(5, p=1.0)(flat, rng()), flat)
    noise = video(h=32, w=32)
    assert GaussianBlur(7, sigma=(1.5, 2.0), p=1.0)(noise, rng()).std() < 0.5 * noise.std()


def test_cutout_blanks_one_square_with_the_first_frame_mean():
    x = video(h=30, w=30)
    fill = x[:, 0].mean(dim=(-2, -1))
    for seed in range(10):
        out = Cutout(8, p=1.0)(x, rng(seed))
        changed = (out != x).any(dim=0)  # (T, H, W)
        assert changed.any()
        assert torch.equal(changed, changed[:1].expand_as(changed))  # same hole in every frame
        rows = changed[0].any(dim=1).nonzero().flatten()
        cols = changed[0].any(dim=0).nonzero().flatten()
        height, width = len(rows), len(cols)
        assert height <= 8 and width <= 8
        assert rows[-1] - rows[0] + 1 == height and cols[-1] - cols[0] + 1 == width  # one solid block
        hole = out[:, :, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        torch.testing.assert_close(hole, fill.view(3, 1, 1, 1).expand_as(hole), rtol=0, atol=0)


def test_normalize_numbers():
    mean, std = torch.tensor(KINETICS_MEAN).view(3, 1, 1, 1), torch.tensor(KINETICS_STD).view(3, 1, 1, 1)
    x = mean + std * torch.tensor([0.0, 1.0, -2.0]).view(1, 3, 1, 1)  # (3, T=3, 1, 1)
    out = Normalize()(x.expand(3, 3, 2, 2))
    expected = torch.tensor([0.0, 1.0, -2.0]).view(1, 3, 1, 1).expand(3, 3, 2, 2)
    torch.testing.assert_close(out, expected)
    out = Normalize([0.5] * 3, [0.25] * 3)(torch.ones(3, 1, 1, 1))  # lists are accepted too
    torch.testing.assert_close(out, torch.full((3, 1, 1, 1), 2.0))


def test_normalize_from_uint8_matches_dividing_first_for_every_value():
    clip = np.broadcast_to(np.arange(256, dtype=np.uint8)[None, :, None, None], (1, 256, 1, 3)).copy()
    for normalize in (Normalize(), Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))):
        got = normalize.from_uint8(torch.from_numpy(clip).permute(3, 0, 1, 2))
        torch.testing.assert_close(got, normalize(to_tensor_video(clip)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("chunk_bytes", [1, 12 * 30 * 31 * 2, None], ids=["frame", "two_frames", "default"])
def test_normalize_from_uint8_is_bit_equal_to_multiply_then_add_on_a_decoded_clip(media_files, monkeypatch, chunk_bytes):
    """The frame-by-frame conversion (cast into the output, scale and shift in place) gives exactly the
    values of the plain two-step float32 computation, u * float32(1 / (255 std)) then + float32(-mean /
    std), on crop views of a real decoded clip (pixels 3 bytes apart), mirrored or not."""
    from avssl.data.media import decode_video

    from avssl.data.transforms import colour

    if chunk_bytes is not None:  # frames per pass: one, two (the 30x31 crop), or the default
        monkeypatch.setattr(colour, "_CHUNK_BYTES", chunk_bytes)
    frames = decode_video(media_files("long"), 1.7, 5, 25.0, short_side=40)
    normalize = Normalize()
    scale = torch.tensor([1 / (255 * s) for s in KINETICS_STD], dtype=torch.float32).view(3, 1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(KINETICS_MEAN, KINETICS_STD)], dtype=torch.float32).view(3, 1, 1, 1)
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)
    for crop in (x, x[:, 1:4, 3:33, 5:36], x[:, :1, :17, 2:3]):
        for flip in (False, True):
            src = crop.flip(-1) if flip else crop
            want = src.to(torch.float32) * scale + shift
            got = normalize.from_uint8(crop, flip=flip)
            assert got.dtype == torch.float32 and got.is_contiguous() and got.shape == want.shape
            assert torch.equal(got, want)


def test_normalize_from_uint8_of_a_batch_is_each_clip_normalised(media_files):
    """A (B, 3, T, H, W) batch, as ``data.finish`` hands it over (a channels-last view of stacked uint8
    crops) with a flip per clip or one for all, gives each clip's own conversion bit for bit."""
    from avssl.data.media import decode_video

    frames = decode_video(media_files("long"), 2.1, 4, 25.0, short_side=40)
    crops = torch.stack([torch.from_numpy(frames[:, i : i + 30, i : i + 31].copy()) for i in (0, 3, 7)])
    normalize = Normalize()
    for flips in ([False, True, False], [True, True, True], False, True):
        got = normalize.from_uint8(crops.permute(0, 4, 1, 2, 3), flip=torch.tensor(flips))
        assert got.shape == (3, 3, 4, 30, 31) and got.is_contiguous()
        per_clip = flips if isinstance(flips, list) else [flips] * 3
        for clip, flip, want in zip(crops, per_clip, got):
            assert torch.equal(normalize.from_uint8(clip.permute(3, 0, 1, 2), flip=flip), want)
    with pytest.raises(ValueError, match="2 flips for 3 clips"):
        normalize.from_uint8(crops.permute(0, 4, 1, 2, 3), flip=torch.tensor([True, False]))
