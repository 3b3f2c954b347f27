"""avssl.data.transforms.checks: what every transform shares: one generator threaded through a chain
(Compose), demanded by every random transform, the same draw for every frame; inputs and parameters
checked with a clear error."""
import pytest
import torch

from avssl.data.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    Cutout,
    GaussianBlur,
    Normalize,
    RandomAudioCrop,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomResizedSpecCrop,
    TimeMask,
    VolumeJitter,
)
from avssl.errors import ConfigError
from conftest import FULL_TRAIN, rng, video


# Every random video transform, configured to always fire.
RANDOM_VIDEO_TRANSFORMS = {
    "random_crop": RandomCrop(16),
    "resized_crop": RandomResizedCrop(16),
    "flip": RandomHorizontalFlip(p=1.0),
    "color_jitter": ColorJitter(0.4, 0.4, 0.4, 0.2, p=1.0),
    "grayscale": RandomGrayscale(p=1.0),
    "blur": GaussianBlur(5, p=1.0),
    "cutout": Cutout(8, p=1.0),
}


def test_video_transforms_reject_channels_last():
    with pytest.raises(ValueError, match=r"\(3, T, H, W\)"):
        CenterCrop(8)(torch.rand(4, 16, 16, 3))


# ------------------------------------------------------------------------ shared random behaviour


@pytest.mark.parametrize("name", [*RANDOM_VIDEO_TRANSFORMS, "full_train"])
def test_same_augmentation_on_every_frame(name):
    transform = FULL_TRAIN if name == "full_train" else RANDOM_VIDEO_TRANSFORMS[name]
    clip = video(same_frames=True)
    for seed in range(5):
        out = transform(clip, rng(seed))
        for t in range(1, out.shape[1]):
            torch.testing.assert_close(out[:, t], out[:, 0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in RANDOM_VIDEO_TRANSFORMS if n not in ("flip", "grayscale")])
def test_same_seed_same_output_other_seed_other_output(name):
    transform = RANDOM_VIDEO_TRANSFORMS[name]
    x = video()
    first = transform(x, rng(1))
    torch.testing.assert_close(transform(x, rng(1)), first, rtol=0, atol=0)
    assert not torch.equal(transform(x, rng(2)), first)


def test_compose_threads_one_rng_through_the_chain():
    x = video()
    crop, jitter = RandomCrop(16), ColorJitter(0.4, 0.4, 0.4, 0.1)
    expected_rng = rng(5)
    expected = jitter(crop(x, expected_rng), expected_rng)
    torch.testing.assert_close(Compose([crop, jitter])(x, rng(5)), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", RANDOM_VIDEO_TRANSFORMS)
def test_random_transforms_demand_a_generator(name):
    with pytest.raises(TypeError, match="numpy Generator"):
        RANDOM_VIDEO_TRANSFORMS[name](video(), None)


# ---------------------------------------------------------------------------------- config checks


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: RandomHorizontalFlip(p=1.5), "p"),
        (lambda: RandomCrop(0), "size"),
        (lambda: RandomResizedCrop(16, scale=(0.5, 0.1)), "scale"),
        (lambda: RandomResizedCrop(16, scale=(0.0, 1.0)), "scale"),
        (lambda: ColorJitter(hue=0.6), "hue"),
        (lambda: ColorJitter(brightness=-0.1), "brightness"),
        (lambda: GaussianBlur(4), "kernel_size"),
        (lambda: Cutout(0), "max_size"),
        (lambda: Normalize(std=(0.2, 0.0, 0.2)), "std"),
        (lambda: VolumeJitter(1.0), "jitter"),
        (lambda: TimeMask(-1), "max_width"),
        (lambda: RandomAudioCrop(0.0), "seconds"),
        (lambda: RandomResizedSpecCrop(time_scale=(0.0, 1.0)), "time_scale"),
        (lambda: RandomResizedSpecCrop(canvas_scale=(0.5, 1.0)), "canvas_scale"),
    ],
)
def test_bad_parameters_raise_config_error(make, field):
    with pytest.raises(ConfigError, match=field):
        make()
