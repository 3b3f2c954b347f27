"""The data pipeline in one place: from a config and the usable videos to the batches a loop iterates.

``clip_spec`` (what a clip is), ``make_dataset`` (the clips and augmentation of a mode), ``epoch_order``
(a training epoch's seeded item order) and ``make_loader``, the one DataLoader builder that pretraining,
fine-tuning, feature extraction and the synchronisation accuracy share (workers, collate, pinning).

    spec = clip_spec(cfg)
    dataset = make_dataset(cfg, entries, spec, "test", clips_per_video=10, cache=build_cache(cfg.loader, spec))
    for batch in make_loader(dataset, cfg.loader, device, batch_size=32): ...
"""
from __future__ import annotations

import logging
import os

import torch
from torch.utils.data import DataLoader, RandomSampler, WeightedRandomSampler

from .. import seeds
from .dataset import MODALITIES, ClipDataset, ClipSpec, collate_clips
from .decoded_cache import DecodedCache
from .finish import BatchFinisher, FinishedBatches
from .logmel import LogMelConfig
from .samplers import FixedClipSampler, RandomClipSampler, UniformClipSampler
from .transforms import audio_wave_transform, spectrogram_transform, video_transform
from .views import ViewPlan

log = logging.getLogger("avssl.data")


def num_workers(cfg_loader, device) -> int:
    """DataLoader worker processes: ``loader.workers``, or for -1 (auto) none on a CPU-only machine
    with 2 cores or fewer, where a worker preempts the training threads and every parallel region
    of the step waits for it (BENCHMARKS.md section 4: 2 workers made a demo-preset step 2x slower,
    loading in the main process 1.2x); with more CPU cores a quarter of them, and beside a GPU all
    cores but one, up to 8 either way."""
    if cfg_loader.workers >= 0:
        return cfg_loader.workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if getattr(device, "type", str(device)) == "cpu":
        return 0 if cores <= 2 else min(8, cores // 4)
    return min(8, max(cores - 1, 0))


def build_cache(cfg_loader, spec: ClipSpec) -> DecodedCache | None:
    """The decoded-video cache of a loader config, or None when it is off."""
    if not cfg_loader.decoded_cache:
        return None
    from ..paths import cache_root

    root = cfg_loader.cache_dir or (cache_root() / "decoded")
    return DecodedCache(
        root, fps=spec.fps, short_side=spec.short_side, sample_rate=spec.sample_rate,
        video="video" in spec.modalities, audio="audio" in spec.modalities,
    )


def clip_spec(cfg, modalities=MODALITIES) -> ClipSpec:
    """The clip of a pretraining/evaluation config (``cfg.video``, ``cfg.audio``)."""
    return ClipSpec(
        modalities=tuple(m for m in MODALITIES if m in modalities),
        num_frames=cfg.video.num_frames, fps=cfg.video.fps, short_side=cfg.video.resize,
        audio_duration=cfg.audio.duration, sample_rate=cfg.audio.sample_rate,
    )


def logmel_config(audio_cfg) -> LogMelConfig:
    a = audio_cfg
    return LogMelConfig(
        sample_rate=a.sample_rate, duration=a.duration, n_mels=a.n_mels, n_fft=a.n_fft,
        win_length=a.win_length, hop_length=a.hop_length, num_frames=a.num_frames,
    )


def make_dataset(cfg, entries, spec: ClipSpec, mode: str, seed: int = 0, clips_per_video: int = 1,
                 cache: DecodedCache | None = None, plan: ViewPlan | None = None) -> ClipDataset:
    """A dataset for ``mode``: ``train`` (random jittered clip, augmentation), ``extract`` (fixed clips,
    no augmentation) or ``test`` (``clips_per_video`` uniformly spaced clips, no augmentation). With a
    view ``plan``, items are the plan's windows instead of clips (see ``ClipDataset``)."""
    train = mode == "train"
    if mode == "train":
        clips = RandomClipSampler(spec.duration)
    elif mode == "extract":
        clips = FixedClipSampler(spec.duration, clips_per_video, seed=seed)
    elif mode == "test":
        clips = UniformClipSampler(spec.duration, clips_per_video)
    else:
        raise ValueError(f"unknown dataset mode {mode!r}")
    v, a = cfg.video, cfg.audio
    # No resize here: decoding already scaled the short side to ``spec.short_side`` (in ffmpeg, cheaper).
    vtf = video_transform(train, crop_size=v.crop, resize=None, flip=v.flip and train,
                          color_jitter=v.color_jitter if train else 0.0, grayscale=v.grayscale, blur=v.blur,
                          cutout=v.cutout, multiscale=v.multiscale)
    return ClipDataset(
        entries, spec, clips, video_tf=vtf,
        volume=audio_wave_transform(train, a.volume_jitter),
        spec_tf=spectrogram_transform(train, a.time_mask, a.freq_mask, a.random_crop, a.time_warp),
        logmel=logmel_config(a), cache=cache, seed=seed, plan=plan,
    )


def epoch_order(size: int, num_samples: int, seed: int, key: int, weights=None) -> list[int]:
    """The items (positions in ``range(size)``) a training epoch visits, in order: ``num_samples`` drawn
    uniformly (with replacement only when more than ``size`` are asked for) or by ``weights``, from the
    generator of (seed, epoch key) (``seeds.sampler_seed``), so a resumed run repeats the order."""
    gen = torch.Generator().manual_seed(seeds.sampler_seed(seed, key))
    if weights is not None:
        return list(WeightedRandomSampler(torch.as_tensor(weights), num_samples, generator=gen))
    return list(RandomSampler(range(size), replacement=num_samples > size, num_samples=num_samples, generator=gen))


def batched(order: list[int], batch_size: int, drop_last: bool) -> list[list[int]]:
    """``order`` cut into batches of ``batch_size`` (the last one dropped when short and ``drop_last``)."""
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return batches[:-1] if batches and drop_last and len(batches[-1]) < batch_size else batches


def make_loader(dataset, cfg_loader, device, *, batch_size: int = 1, batches: list[list[int]] | None = None):
    """The batches of ``dataset``: its items in order, ``batch_size`` at a time, or the index lists of
    ``batches`` (a training epoch's order, see :func:`epoch_order`). Worker processes follow
    ``loader.workers`` (:func:`num_workers`); batches are stacked by ``collate_clips``, which lists the
    clips that failed to decode under ``"skipped"``; memory is pinned for a GPU. Where clips are
    finished follows ``loader.finish_on`` (:func:`set_finishing`): in the items, or batched on
    ``device`` (``data.finish``), and then the batches come out on the device."""
    finish = set_finishing(dataset, cfg_loader, device)
    workers = num_workers(cfg_loader, device)
    size = {"batch_sampler": batches} if batches is not None else {"batch_size": batch_size}
    loader = DataLoader(
        dataset, shuffle=False, num_workers=workers, collate_fn=collate_clips,
        pin_memory=getattr(device, "type", str(device)) == "cuda", prefetch_factor=4 if workers else None,
        persistent_workers=False, **size,
    )
    return loader if finish is None else FinishedBatches(loader, finish, device)


def set_finishing(dataset, cfg_loader, device) -> BatchFinisher | None:
    """Decide where the clips of ``dataset`` (a ClipDataset or a Subset of one) are finished, following
    ``loader.finish_on`` (``device``, or ``auto`` with an accelerator, where the chains allow it), and
    set its ``finish_in_items``: returns the finisher of the device, or None when the items are
    finished in the loader (and for datasets that are not ClipDatasets). On a CPU ``auto`` keeps
    finishing in the items, in the loader workers beside the training threads."""
    clips = clip_dataset(dataset)
    if clips is None:
        return None
    where, finish = getattr(cfg_loader, "finish_on", "auto"), None
    if where == "device" or (where == "auto" and getattr(device, "type", str(device)) != "cpu"):
        finish, why_not = BatchFinisher.of(clips)
        if finish is None and where == "device":
            log.info("loader.finish_on=device: clips are finished in the loader instead: %s", why_not)
    clips.finish_in_items = finish is None
    return finish


def clip_dataset(dataset) -> ClipDataset | None:
    """The ClipDataset under ``dataset`` (itself, or the dataset of a Subset), or None."""
    while not isinstance(dataset, ClipDataset) and hasattr(dataset, "dataset"):
        dataset = dataset.dataset
    return dataset if isinstance(dataset, ClipDataset) else None
