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


# ------------------------------------------------- cheaper CPU paths (in place, shifted sums) on real clips


def _decoded(media_files, start=1.3, num_frames=3, short_side=40):
    """A real decoded clip as a float (3, T, H, W) tensor in [0, 1] (the "long" test file: 96x128 noise)."""
    from avssl.data.media import decode_video

    return to_tensor_video(decode_video(media_files("long"), start, num_frames, 25.0, short_side=short_side))


def _luma_ref(x):
    # the weights rounded to float32 (as Python scalars they multiply float32 tensors in float32)
    return 0.299 * x[0:1] + 0.587 * x[1:2] + 0.114 * x[2:3]


def _jitter_ref(x, r, strength, hue, p):
    """ColorJitter written out: the applies draw, the op order, one factor per op, clamped after each."""
    if not r.random() < p:
        return x, False
    for op in r.permutation(4):
        if op == 3:
            x = torch.einsum("oc,cthw->othw", _hue_matrix(r.uniform(-hue, hue)).float(), x)
        else:
            f = float(r.uniform(1 - strength, 1 + strength))
            x = [f * x, f * x + (1 - f) * _luma_ref(x).mean(), f * x + (1 - f) * _luma_ref(x)][op]
        x = x.clamp(0, 1)
    return x, True


def test_grayscale_is_the_luma_sum_bit_for_bit_on_a_decoded_clip(media_files):
    """The grey level is built channel by channel without a clip-sized temporary: the same float32
    products added in the same order as ``0.299 r + 0.587 g + 0.114 b``, bit for bit."""
    x = _decoded(media_files)
    out = RandomGrayscale(p=1.0)(x, rng())
    assert out.is_contiguous() and torch.equal(out, _luma_ref(x).expand_as(x))


@pytest.mark.parametrize("seed", range(10))
def test_color_jitter_in_place_equals_the_plain_ops_on_a_decoded_clip(media_files, seed):
    """Both entries (``__call__``, which leaves its input alone, and ``apply_``, which overwrites it) give
    the written-out jitter bit for bit with the same draws, applied or not (p = 0.5)."""
    x = _decoded(media_files, start=0.4 + 0.9 * seed)
    jitter = ColorJitter(0.4, 0.4, 0.4, 0.2, p=0.5)
    want_rng, call_rng, inplace_rng = rng(seed), rng(seed), rng(seed)
    want, applied = _jitter_ref(x.clone(), want_rng, 0.4, 0.2, 0.5)
    before = x.clone()
    got = jitter(x, call_rng)
    assert torch.equal(x, before) and torch.equal(got, want)
    y = x.clone()
    got = jitter.apply_(y, inplace_rng)
    assert torch.equal(got, want) and (applied or got is y)  # (y is overwritten unless the hue op came first)
    assert want_rng.random() == call_rng.random() == inplace_rng.random()


def test_color_jitter_seeds_cover_both_outcomes():
    assert {rng(seed).random() < 0.5 for seed in range(10)} == {True, False}


def _blur_ref(x, kernel_size, sigma):
    """The separable Gaussian in float64 numpy: kernel exp(-o^2 / 2 sigma^2) / its sum, frames
    reflect-padded (no edge repeat), a weighted sum of shifted rows, then of shifted columns."""
    r = kernel_size // 2
    o = np.arange(-r, r + 1)
    k = np.exp(-(o**2) / (2.0 * sigma**2))
    k /= k.sum()
    a = np.pad(x.numpy().astype(np.float64), [(0, 0), (0, 0), (r, r), (r, r)], mode="reflect")
    h, w = x.shape[-2:]
    rows = sum(k[i] * a[:, :, i : i + h, :] for i in range(2 * r + 1))
    return torch.from_numpy(sum(k[i] * rows[:, :, :, i : i + w] for i in range(2 * r + 1)))


@pytest.mark.parametrize("chunk_bytes", [1, 4 * 40 * 50 * 2, None], ids=["plane", "two_planes", "default"])
def test_blur_shifted_sums_match_the_gaussian_on_decoded_clips(media_files, monkeypatch, chunk_bytes):
    """The CPU blur (a multiply-add per tap over shifted views, a few planes at a time) against the
    float64 reference and against the two reflect-padded convolutions it replaced (``_blur_conv``), on
    real clips, with the same draws, blurred or not (p = 0.5). Within 1e-6, float rounding: the sums
    are the convolution's, in its order, and were equal bit for bit on the machine this was written
    on (AVX-512, torch 2.13), but conv2d's summation is up to the backend."""
    from avssl.data.transforms import colour

    if chunk_bytes is not None:  # planes per pass: one, two (of 9: a short last pass; padded 40x50 float32), or the default
        monkeypatch.setattr(colour, "_BLUR_CHUNK_BYTES", chunk_bytes)
    blur = GaussianBlur(11, p=0.5)
    outcomes = set()
    for seed in range(8):
        x = _decoded(media_files, start=0.3 + 1.1 * seed, short_side=30)  # (3, 3, 30, 40)
        got_rng, want_rng = rng(seed), rng(seed)
        got = blur(x, got_rng)
        applied = want_rng.random() < 0.5
        outcomes.add(applied)
        if not applied:
            assert got is x
        else:
            sigma = want_rng.uniform(0.1, 2.0)
            assert got.shape == x.shape and got.is_contiguous()
            torch.testing.assert_close(got.double(), _blur_ref(x, 11, sigma), rtol=0, atol=1e-6)
            offsets = torch.arange(-5, 6, dtype=torch.float32)
            kernel = torch.exp(-(offsets**2) / (2.0 * sigma**2))
            torch.testing.assert_close(got, colour._blur_conv(x, kernel / kernel.sum()), rtol=0, atol=1e-6)
        assert got_rng.random() == want_rng.random()
    assert outcomes == {True, False}


@pytest.mark.parametrize("seed", range(6))
def test_cutout_and_normalize_in_place_equal_their_copies(media_files, seed):
    """``apply_`` (what transform_video calls on the clip it owns) blanks the same squares with the same
    fill (p = 0.5: both outcomes over the seeds) and normalises to the same values, bit for bit, as
    the copying calls, which leave their input alone; Normalize is ``(x - mean) / std`` written out."""
    x = _decoded(media_files, start=0.5 + seed)
    before = x.clone()
    cutout = Cutout(12, num=2, p=0.5)
    want = cutout(x, rng(seed))
    assert torch.equal(x, before)
    y = x.clone()
    got_rng, want_rng = rng(seed), rng(seed)
    got = cutout.apply_(y, got_rng)
    assert got is y and torch.equal(got, want)
    cutout(x, want_rng)
    assert got_rng.random() == want_rng.random()
    mean, std = torch.tensor(KINETICS_MEAN).view(3, 1, 1, 1), torch.tensor(KINETICS_STD).view(3, 1, 1, 1)
    y = x.clone()
    got = Normalize().apply_(y)
    assert got is y and torch.equal(got, (x - mean) / std) and torch.equal(Normalize()(x), got)


def test_cutout_seeds_cover_both_outcomes():
    assert {rng(seed).random() < 0.5 for seed in range(6)} == {True, False}


@pytest.mark.parametrize("sigma", [0.12, 0.15, 0.22, 0.29, 0.36, 0.38])
def test_blur_with_zero_and_subnormal_taps_stays_the_gaussian(media_files, sigma):
    """Sigmas whose outer taps are 0 or subnormal in float32 (the shifted sums leave out taps under
    2^-103, whose products are subnormal and slow): within 1e-6 of the float64 reference and of the
    convolution, which keeps them (they were equal bit for bit where this was written: the products
    left out vanish in any sum over ~1e-22)."""
    from avssl.data.transforms import colour

    x = _decoded(media_files, start=2.2, short_side=30)
    got = GaussianBlur(11, sigma=(sigma, sigma), p=1.0)(x, rng())
    torch.testing.assert_close(got.double(), _blur_ref(x, 11, sigma), rtol=0, atol=1e-6)
    offsets = torch.arange(-5, 6, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2.0 * sigma**2))
    assert kernel.min() < 2.0**-103  # the case this is about (0.38: a normal tap, most of its products subnormal)
    torch.testing.assert_close(got, colour._blur_conv(x, kernel / kernel.sum()), rtol=0, atol=1e-6)
