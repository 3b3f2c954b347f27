"""Finishing clips on the device (data.finish): on real mp4 files, batches finished that way equal batches
of items finished one by one, bit for bit on the CPU, for plain chains (one batched Normalize) and for
crisscross-paper's augmentations (clip by clip with each window's seeded generator); a chain whose clips
would not stack stays finished in the items; the loader setting is checked."""
import pytest
import torch
from torch.utils.data import Subset

from avssl.config import LoaderConfig, resolve
from avssl.data.dataset import ClipDataset, collate_clips
from avssl.data.finish import BatchFinisher, FinishedBatches
from avssl.data.pipeline import clip_spec, logmel_config, make_dataset, make_loader
from avssl.data.samplers import UniformClipSampler
from avssl.data.transforms import Compose, Normalize, RandomCrop, ShortSideResize
from avssl.data.views import SyncNegatives
from conftest import noise_entries, refused_config

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    return noise_entries(tmp_path_factory.mktemp("finish"), count=4, height=56, width=72)


def batches_both_ways(dataset, finish_on, batch_size=2):
    """The loader's batches with clips finished in the items, then with ``finish_on``, same epoch."""
    finished = list(make_loader(dataset, LoaderConfig(workers=0, finish_on="loader"), CPU, batch_size=batch_size))
    loader = make_loader(dataset, LoaderConfig(workers=0, finish_on=finish_on), CPU, batch_size=batch_size)
    return finished, loader


@pytest.mark.parametrize("name,method,mode", [("cpu-tiny", "xdc", "train"), ("cpu-tiny", "xdc", "test"),
                                              ("crisscross-paper", "crisscross", "train")])
def test_batches_finished_on_the_device_equal_items_finished_one_by_one(entries, name, method, mode):
    """cpu-tiny XDC clips (random crop, flip, volume jitter in training; centre crop for testing): the
    uint8 crops and gained waveforms, normalised and log-mel'd as a batch; crisscross-paper's training
    clips (multi-scale crop on uint8, then colour jitter, greyscale, blur, cutout; log-mel crops and
    masks), finished clip by clip with their seeds: the items' tensors exactly, over two epochs."""
    cfg = resolve(name, method, [])
    ds = make_dataset(cfg, entries, clip_spec(cfg), mode, seed=5, clips_per_video=2)
    for epoch in range(2):
        ds.set_epoch(epoch)
        finished, loader = batches_both_ways(ds, "device")
        assert isinstance(loader, FinishedBatches) and len(loader) == len(finished)
        deferred = list(loader)
        assert not ds.finish_in_items
        assert len(deferred) == len(finished)
        for a, b in zip(finished, deferred):
            assert a.keys() == b.keys()
            for key in a:
                if torch.is_tensor(a[key]):
                    assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
                    assert torch.equal(a[key], b[key]), key
                else:
                    assert a[key] == b[key]
        assert finished[0]["video"].shape[1:] == (3, cfg.video.num_frames, cfg.video.crop, cfg.video.crop)


def test_unfinished_items_are_the_uint8_crop_its_flip_and_the_gained_waveform(entries):
    """What crosses from the workers: a quarter of the float clip's bytes for video, with whether to
    mirror it, and the waveform for audio; finished alone, an item gives the finished item."""
    cfg = resolve("cpu-tiny", "xdc", [])
    spec = clip_spec(cfg)
    ds = make_dataset(cfg, entries, spec, "train", seed=5)
    flips = set()
    for i in range(4):
        ds.finish_in_items = True
        finished = ds[i]
        ds.finish_in_items = False
        raw = ds[i]
        assert raw.keys() == finished.keys() | {"flip_video", "seed_video", "seed_audio"}
        assert raw["seed_video"] == raw["seed_audio"] == -1  # no float-stage or spectrogram augmentation here
        flips.add(raw["flip_video"])
        assert raw["video"].dtype == torch.uint8 and raw["video"].shape == (spec.num_frames, cfg.video.crop, cfg.video.crop, 3)
        assert raw["video"].is_contiguous() and raw["video"].nbytes * 4 == finished["video"].nbytes
        assert raw["audio"].dtype == torch.float32 and raw["audio"].shape == (round(spec.audio_duration * spec.sample_rate),)
        finish, _ = BatchFinisher.of(ds)
        again = finish(collate_clips([raw]), CPU)
        assert not {"flip_video", "seed_video", "seed_audio"} & again.keys()
        assert torch.equal(again["video"][0], finished["video"]) and torch.equal(again["audio"][0], finished["audio"])
    assert flips == {True, False}


def test_view_plans_and_subsets_are_finished_too(entries):
    """AVTS items (several windows, an unused one copied) through a Subset, as pretraining's epochs load them."""
    cfg = resolve("cpu-tiny", "avts", [])
    spec = clip_spec(cfg)
    ds = make_dataset(cfg, entries, spec, "train", seed=2, 
                      plan=SyncNegatives(spec.video_span, spec.audio_duration, hard=0.5))
    subset = Subset(ds, [3, 1, 2])
    finished, loader = batches_both_ways(subset, "device", batch_size=3)
    deferred = list(loader)
    windows = [k for k in finished[0] if k.split("_")[0] in ("video", "audio")]
    assert len(windows) > 2
    for key in windows:
        assert finished[0][key].is_floating_point() and torch.equal(finished[0][key], deferred[0][key]), key


def test_a_chain_whose_clips_would_not_stack_stays_finished_in_the_items(entries, caplog):
    """A video chain that does not crop the uint8 clip (a resize first) leaves clips of each video's own
    size: asked for the device, the loader finishes them in the items and says why."""
    cfg = resolve("cpu-tiny", "xdc", [])
    spec = clip_spec(cfg)
    ds = ClipDataset(entries, spec, UniformClipSampler(spec.duration, 1),
                     video_tf=Compose([ShortSideResize(32), RandomCrop(24), Normalize()]), logmel=logmel_config(cfg.audio))
    assert BatchFinisher.of(ds)[0] is None and "fixed size" in BatchFinisher.of(ds)[1]
    with caplog.at_level("INFO", logger="avssl.data"):
        loader = make_loader(ds, LoaderConfig(workers=0, finish_on="device"), CPU)
    assert not isinstance(loader, FinishedBatches) and ds.finish_in_items
    assert "finished in the loader instead" in caplog.text


def test_auto_finishes_in_the_items_on_a_cpu(entries):
    cfg = resolve("cpu-tiny", "xdc", [])
    ds = make_dataset(cfg, entries, clip_spec(cfg), "test")
    ds.finish_in_items = False  # left over from an earlier loader: make_loader sets it every time
    loader = make_loader(ds, LoaderConfig(workers=0), CPU, batch_size=2)
    assert not isinstance(loader, FinishedBatches) and ds.finish_in_items
    assert next(iter(loader))["video"].dtype == torch.float32


def test_finish_on_is_checked():
    refused_config("xdc", ["loader.finish_on=gpu"], "loader.finish_on must be one of auto, loader, device")


def test_a_run_finished_on_the_device_trains_the_same_encoders(tiny_world, tmp_path):
    """One XDC iteration (extraction, clustering, training epochs, validation, precise BN) with clips
    finished batched (loader.finish_on=device, here on the CPU) ends with the encoders of the run that
    finished them in the items, bit for bit."""
    from avssl.engine.pretrain import pretrain
    from avssl.runs import load_encoders

    runs = {}
    for where in ("loader", "device"):
        cfg = resolve("cpu-tiny", "xdc", ["iterations=1", "precision=fp32", f"loader.finish_on={where}"])
        runs[where] = load_encoders(pretrain(cfg, tiny_world, tmp_path / where, progress=False).run_dir).modules
    for slot, module in runs["loader"].items():
        for (key, a), b in zip(module.state_dict().items(), runs["device"][slot].state_dict().values()):
            assert torch.equal(a, b), f"{slot}.{key}"
