"""avssl.data.transforms.geometry: the uint8 clip to a (3, T, H, W) float tensor (with the crop and flip
done on uint8 first), resizes, crops and the flip."""
import numpy as np
import pytest
import torch

from avssl.data.transforms import (
    CenterCrop,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    ShortSideResize,
    to_tensor_video,
    transform_video,
    video_transform,
)
from avssl.data.transforms.geometry import sized_by_uint8_stage, split_chain
from conftest import FULL_TRAIN, rng, uint8_clip, video

# --------------------------------------------------------------------------------- tensor layout


def test_to_tensor_video_layout_and_range():
    clip = uint8_clip(t=3, h=5, w=7)
    clip[1, 2, 4] = (0, 128, 255)
    out = to_tensor_video(clip)
    assert out.shape == (3, 3, 5, 7) and out.dtype == torch.float32 and out.is_contiguous()
    torch.testing.assert_close(out[:, 1, 2, 4], torch.tensor([0.0, 128 / 255, 1.0]))
    torch.testing.assert_close(out, to_tensor_video(torch.from_numpy(clip)), rtol=0, atol=0)


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 8, 8, 3), np.float32), np.zeros((3, 4, 8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8)]
)
def test_to_tensor_video_rejects_other_layouts(bad):
    with pytest.raises(ValueError, match="uint8"):
        to_tensor_video(bad)


def _old_order(clip, transform, generator):
    """What datasets did before transform_video: convert the whole clip, then the chain."""
    x = to_tensor_video(clip)
    return transform(x, generator) if transform is not None else x


@pytest.mark.parametrize(
    "name,transform",
    [
        ("train", video_transform(True, crop_size=16)),  # crop, flip, normalise: all fused
        ("train_no_flip", video_transform(True, crop_size=16, flip=False)),
        ("eval", video_transform(False, crop_size=16)),  # centre crop, normalise
        ("jitter", video_transform(True, crop_size=16, color_jitter=0.4, grayscale=0.5)),  # float work after the flip
        ("full_train", FULL_TRAIN),  # starts with a resize: nothing runs on uint8
        ("flip_only", RandomHorizontalFlip(p=0.5)),
        # RandomResizedCrop resizes the uint8 clip (within a level of the float resize), then every
        # colour step works in place
        ("multiscale", video_transform(True, crop_size=16, multiscale=True, color_jitter=0.4, grayscale=0.5,
                                       blur=0.5, cutout=1.0)),
        ("flip_then_multiscale", Compose([RandomHorizontalFlip(p=0.5), RandomResizedCrop(16), Normalize()])),
        # the flip is deferred into the conversion; a crop after it must see the mirrored clip
        ("flip_then_crop", Compose([RandomHorizontalFlip(p=0.5), RandomCrop(16), Normalize()])),
        ("two_flips", Compose([RandomHorizontalFlip(p=0.5), RandomHorizontalFlip(p=0.5), Normalize()])),
        ("flip_no_normalize", Compose([RandomCrop(16), RandomHorizontalFlip(p=0.5)])),
        ("normalize_only", Normalize()),
        ("none", None),
    ],
)
def test_transform_video_matches_converting_first(name, transform):
    """Cropping and flipping the uint8 clip, then converting and normalising in one pass, gives the
    old order's values (float rounding only), with the same random draws: same crop, same flip. With a
    multi-scale crop, resized as uint8: within a level (1/255) before the later steps, which scale it
    by at most 1.4 per colour factor and 1 / std (4.4) in the normalisation: 0.05."""
    atol = 0.05 if "multiscale" in name else 1e-6
    flips = set()
    for seed in range(12):
        clip = uint8_clip(t=3, h=20, w=27, seed=seed)
        want_rng, got_rng = rng(seed), rng(seed)
        want = _old_order(clip, transform, want_rng)
        got = transform_video(clip, transform, got_rng)
        assert got.dtype == torch.float32 and got.is_contiguous() and got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-6, atol=atol)
        assert got_rng.random() == want_rng.random()  # the generators drew the same numbers
        if name == "train":  # the flip fires for some seeds only: compare with the unflipped crop
            unflipped = video_transform(True, crop_size=16, flip=False)(to_tensor_video(clip), rng(seed))
            flips.add(not torch.allclose(got, unflipped, rtol=0, atol=1e-6))
    assert name != "train" or flips == {True, False}
    # the input clip is left as it was
    clip = uint8_clip(t=3, h=20, w=27)
    transform_video(clip, transform, rng(0))
    np.testing.assert_array_equal(clip, uint8_clip(t=3, h=20, w=27))


def test_split_chain_and_what_makes_clips_stack():
    """The uint8 stage is the leading crops, multi-scale crops and flips; clips stack after it when it crops."""
    train = video_transform(True, crop_size=16, color_jitter=0.4)
    assert [type(s).__name__ for s in split_chain(train)[0]] == ["RandomCrop", "RandomHorizontalFlip"]
    assert [type(s).__name__ for s in split_chain(train)[1]] == ["ColorJitter", "Normalize"]
    multiscale = video_transform(True, crop_size=16, multiscale=True)
    assert [type(s).__name__ for s in split_chain(multiscale)[0]] == ["RandomResizedCrop", "RandomHorizontalFlip"]
    assert sized_by_uint8_stage(train) and sized_by_uint8_stage(multiscale)
    assert sized_by_uint8_stage(video_transform(False, crop_size=16))
    assert not sized_by_uint8_stage(FULL_TRAIN)  # a resize first: nothing runs on uint8
    assert not sized_by_uint8_stage(Compose([RandomHorizontalFlip(), Normalize()])) and not sized_by_uint8_stage(None)


def test_transform_video_checks_its_input():
    with pytest.raises(ValueError, match="uint8"):
        transform_video(np.zeros((4, 8, 8, 3), np.float32), video_transform(False, 8))
    with pytest.raises(ValueError, match="smaller than"):
        transform_video(uint8_clip(h=8, w=8), video_transform(False, 16))
    with pytest.raises(TypeError, match="needs a numpy Generator"):
        transform_video(uint8_clip(), video_transform(True, 16), None)


# -------------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("h, w, expected", [(24, 32, (16, 21)), (40, 20, (32, 16)), (16, 50, (16, 50))])
def test_short_side_resize_shapes(h, w, expected):
    out = ShortSideResize(16)(video(h=h, w=w))
    assert out.shape == (3, 4, *expected)


def test_short_side_resize_keeps_flat_frames_flat():
    x = torch.full((3, 2, 40, 60), 0.25)
    torch.testing.assert_close(ShortSideResize(10)(x), torch.full((3, 2, 10, 15), 0.25))


def test_center_crop_takes_the_centre():
    x = video(h=11, w=15)
    out = CenterCrop(4)(x)
    # Margins 7 and 11: offsets 3 and 5 (rounded down when odd).
    torch.testing.assert_close(out, x[:, :, 3:7, 5:9], rtol=0, atol=0)


def test_random_crop_is_a_window_of_the_input_at_varying_offsets():
    h, w, size = 10, 12, 6
    # Pixel value encodes its (row, column), so a crop's first pixel reveals its offset.
    grid = (torch.arange(h).view(h, 1) * w + torch.arange(w)).float() / (h * w)
    x = grid.expand(3, 2, h, w).contiguous()
    offsets = set()
    for seed in range(60):
        out = RandomCrop(size)(x, rng(seed))
        top, left = divmod(round(out[0, 0, 0, 0].item() * h * w), w)
        torch.testing.assert_close(out, x[:, :, top : top + size, left : left + size], rtol=0, atol=0)
        offsets.add((top, left))
    tops, lefts = zip(*offsets)
    assert set(tops) == set(range(h - size + 1)) and set(lefts) == set(range(w - size + 1))


def test_crops_refuse_frames_smaller_than_the_crop():
    with pytest.raises(ValueError, match="smaller than the 30x30 crop"):
        RandomCrop(30)(video(), rng())


def test_resized_crop_output_and_identity_case():
    x = video(h=24, w=24)
    assert RandomResizedCrop(12)(video(), rng()).shape == (3, 4, 12, 12)
    # Full area at aspect 1 on a square frame: the crop is the frame, resized to its own size.
    torch.testing.assert_close(RandomResizedCrop(24, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, rng()), x)


def test_resized_crop_areas_follow_the_scale_range():
    transform = RandomResizedCrop(8, scale=(0.25, 0.5))
    areas = [np.prod(transform._window(100, 100, rng(seed))[2:]) / 1e4 for seed in range(50)]
    assert min(areas) >= 0.24 and max(areas) <= 0.51


def test_flip_mirrors_columns():
    x = video()
    torch.testing.assert_close(RandomHorizontalFlip(p=1.0)(x, rng()), x.flip(-1), rtol=0, atol=0)
    assert RandomHorizontalFlip(p=0.0)(x, rng()) is x
    flips = sum(torch.equal(RandomHorizontalFlip()(x, rng(s)), x.flip(-1)) for s in range(200))
    assert 70 < flips < 130


@pytest.mark.parametrize("seed", range(10))
def test_resized_crop_of_a_uint8_clip_is_within_a_level_of_the_float_resize(media_files, seed):
    """RandomResizedCrop on the uint8 view of a real decoded clip (as select_pixels runs it) draws the
    same window as on the float clip and resizes it as uint8: every value within 1.5 levels of the
    float resize (torch's uint8 filter rounds its weights and its result), most (84% for seed 0) within half a level."""
    from avssl.data.media import decode_video

    frames = decode_video(media_files("long"), 0.7 + 1.3 * seed, 4, 25.0, short_side=48)  # (4, 48, 64, 3)
    crop = RandomResizedCrop(20) if seed % 2 else RandomResizedCrop(24, scale=(0.5, 1.0), ratio=(0.5, 2.0))
    got_rng, want_rng = rng(seed), rng(seed)
    got = crop(torch.from_numpy(frames).permute(3, 0, 1, 2), got_rng)
    want = crop(to_tensor_video(frames), want_rng)
    assert got.dtype == torch.uint8 and got.shape == want.shape
    diff = (got.double() / 255 - want.double()).abs()
    assert diff.max() <= 1.5 / 255 and (diff <= 0.5 / 255 + 1e-6).double().mean() > 0.75
    assert got_rng.random() == want_rng.random()


def test_resized_crop_of_a_uint8_clip_takes_the_fallback_window_too():
    """When no try fits (an area fraction of 1 with an aspect ratio the frame does not have), the
    centred fallback window is resized the same way."""
    clip = uint8_clip(t=2, h=20, w=40)
    crop = RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(0.9, 1.1))
    got = crop(torch.from_numpy(clip).permute(3, 0, 1, 2), rng(1))
    want = crop(to_tensor_video(clip), rng(1))
    assert (got.double() / 255 - want.double()).abs().max() <= 1.5 / 255
