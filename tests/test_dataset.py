"""ClipDataset items from real mp4 files: the cheaper tensor path gives what the plain one gave."""
import numpy as np
import pytest
import torch

from avssl.config import resolve
from avssl.data.dataset import ClipDataset
from avssl.data.pipeline import clip_spec, logmel_config, make_dataset
from avssl.data.media import decode_clip
from avssl.data.samplers import RandomClipSampler
from avssl.data.transforms import KINETICS_MEAN, KINETICS_STD, Compose, RandomHorizontalFlip, to_tensor_video
from conftest import noise_entries, rng

SEED = 3


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    return noise_entries(tmp_path_factory.mktemp("dataset"))


def test_train_items_match_converting_the_whole_clip_first(entries):
    """Items crop and flip the uint8 clip and normalise while converting; the old order (whole clip
    to float, then crop, flip, normalise), computed here explicitly with the item's generator, gives
    the same clip start, crop, flip and values (float rounding only) and the same log-mel."""
    cfg = resolve("cpu-tiny", "xdc", [])
    spec = clip_spec(cfg)
    ds = make_dataset(cfg, entries, spec, "train", seed=SEED)
    no_flip = Compose([t for t in ds.video_tf.transforms if not isinstance(t, RandomHorizontalFlip)])
    flipped = set()
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i, entry in enumerate(entries):
            item = ds[i]
            rng = np.random.default_rng([SEED, epoch, i])
            start = ds.clips(entry.duration, rng)[0]
            frames, wave = decode_clip(entry.path, start, spec.num_frames, spec.fps, spec.audio_duration,
                                       spec.sample_rate, short_side=spec.short_side)
            video = ds.video_tf(to_tensor_video(frames), rng)
            logmel = ds.spec_tf(ds.logmel(ds.volume(torch.from_numpy(wave), rng))[0], rng)
            assert item["start"] == start
            assert item["video"].shape == (3, spec.num_frames, cfg.video.crop, cfg.video.crop)
            torch.testing.assert_close(item["video"], video, rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(item["audio"], logmel, rtol=0, atol=0)
            rng = np.random.default_rng([SEED, epoch, i])
            ds.clips(entry.duration, rng)
            flipped.add(not torch.allclose(item["video"], no_flip(to_tensor_video(frames), rng), rtol=0, atol=1e-6))
    assert flipped == {True, False}  # both flip decisions were compared


def test_per_clip_tensor_work_runs_on_one_torch_thread(entries):
    """With workers=0 the main process builds the tensors; it does so on one torch thread and
    restores its own count afterwards."""
    seen = []

    def record(x, rng):
        seen.append(torch.get_num_threads())
        return x

    cfg = resolve("cpu-tiny", "xdc", [])
    spec = clip_spec(cfg)
    ds = ClipDataset(entries, spec, RandomClipSampler(spec.duration), video_tf=record, spec_tf=record,
                     logmel=logmel_config(cfg.audio))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        item = ds[0]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1] and item["video"].dtype == torch.float32


@pytest.mark.parametrize("preset_name", ["xdc-paper", "cpu-small"])
def test_dataset_video_tensor_matches_the_straightforward_chain_on_a_decoded_clip(media_files, preset_name):
    """A real decoded clip through a preset's training dataset (crop and flip on uint8, the flip read
    mirrored by the fused conversion, normalise in the same pass) equals the plain computation:
    to float, /255, crop, flip, (x - mean) / std, one step after another on torch tensors."""
    from avssl.config import preset
    from avssl.data.media import decode_video
    from avssl.data.pipeline import clip_spec, make_dataset

    cfg = preset(preset_name)
    spec = clip_spec(cfg)
    ds = make_dataset(cfg, [], spec, "train", seed=0)
    crop = cfg.video.crop
    short_side = max(crop + 8, 1)  # the test file is 96x128: decode at a short side the crop fits in
    frames = decode_video(media_files("long"), 3.3, spec.num_frames, spec.fps, short_side=short_side)
    mean = torch.tensor(KINETICS_MEAN, dtype=torch.float64).view(3, 1, 1, 1)
    std = torch.tensor(KINETICS_STD, dtype=torch.float64).view(3, 1, 1, 1)
    flipped = set()
    for seed in range(8):
        got = ds.video_tensor(frames, rng(seed))
        r = rng(seed)
        x = torch.from_numpy(frames).permute(3, 0, 1, 2).double() / 255
        top = int(r.integers(0, x.shape[-2] - crop + 1))
        left = int(r.integers(0, x.shape[-1] - crop + 1))
        x = x[..., top : top + crop, left : left + crop]
        flip = r.random() < 0.5
        flipped.add(flip)
        want = ((x.flip(-1) if flip else x) - mean) / std
        assert got.dtype == torch.float32 and got.is_contiguous() and got.shape == want.shape
        torch.testing.assert_close(got.double(), want, rtol=0, atol=2e-6)
    assert flipped == {True, False}


class _CollatedInWorker(torch.utils.data.Dataset):
    """One item: collate_clips run inside the worker, with what the test checks about its result."""

    def __len__(self):
        return 1

    def __getitem__(self, i):
        from avssl.data.dataset import collate_clips

        items = [{"video": torch.full((3, 2, 4, 4), j + 0.5), "audio": torch.rand(1, 4, 5), "index": j} for j in range(3)]
        batch = collate_clips(items)
        return {"shared": [batch[k].is_shared() for k in ("video", "audio")],
                "equal": all(torch.equal(batch[k], torch.stack([b[k] for b in items])) for k in ("video", "audio")),
                "index": batch["index"].tolist()}


def test_collate_stacks_into_shared_memory_in_a_worker_only():
    """In a DataLoader worker the batch tensors are stacked straight into shared memory (the batch is
    sent through it; no second copy); in the main process a plain stack. Same values either way."""
    from avssl.data.dataset import collate_clips

    items = [{"video": torch.rand(3, 2, 4, 4), "index": j, "start": 0.5 * j} for j in range(2)]
    batch = collate_clips(items)
    assert torch.equal(batch["video"], torch.stack([b["video"] for b in items])) and not batch["video"].is_shared()
    assert batch["index"].tolist() == [0, 1] and batch["start"].dtype == torch.float32
    (got,) = list(torch.utils.data.DataLoader(_CollatedInWorker(), batch_size=None, num_workers=1))
    assert got["shared"] == [True, True] and got["equal"] and got["index"] == [0, 1, 2]


def test_crisscross_paper_video_tensor_is_its_chain_step_by_step(media_files):
    """crisscross-paper's training chain through the dataset (the multi-scale crop resizing the uint8
    clip and the flip, with the item's generator; then colour jitter, greyscale, blur, cutout and
    normalise in place on the converted crop, with a generator seeded by one draw of the item's) equals
    the same steps run one by one, plainly, on real decoded clips. Within 1e-6: the blur's sums are the
    convolution's, in its order, but conv2d's summation is the backend's."""
    from avssl.data.media import decode_video

    cfg = resolve("crisscross-paper", "crisscross", [])
    spec = clip_spec(cfg)
    ds = make_dataset(cfg, [], spec, "train", seed=0)
    steps = ds.video_tf.transforms
    assert [type(t).__name__ for t in steps[:2]] == ["RandomResizedCrop", "RandomHorizontalFlip"]
    flips = set()
    for seed in range(12):
        # the test file is 96x128; the crop resizes its window to 112 whatever the frame size
        frames = decode_video(media_files("long"), 0.5 + 1.4 * seed, spec.num_frames, spec.fps, short_side=96)
        got_rng, want_rng = rng(seed), rng(seed)
        got = ds.video_tensor(frames, got_rng)
        x = steps[0](torch.from_numpy(frames).permute(3, 0, 1, 2), want_rng).double() / 255
        flip = want_rng.random() < steps[1].p
        flips.add(flip)
        x = (x.flip(-1) if flip else x).float()
        stage = np.random.default_rng(int(want_rng.integers(2**63 - 1)))
        for step in steps[2:]:
            x = step(x, stage)
        assert got.shape == (3, spec.num_frames, 112, 112) and got.is_contiguous()
        torch.testing.assert_close(got, x, rtol=0, atol=1e-6)
        assert got_rng.random() == want_rng.random()
    assert flips == {True, False}
