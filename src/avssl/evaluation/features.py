"""Frozen-encoder features of a manifest's videos, extracted once and shared by every evaluation.

Every video gives K uniformly spaced clips (the test-time protocol of XDC and CrissCross, K=10). The
clip-level features of the WHOLE manifest are cached on disk under a key made of the encoder weights,
the modality, K, the encoder's clip settings (frames, fps, crop, audio window, log-mel) and the files
(path, size, mtime); folds and splits are slices of that one array. So a manifest is extracted once
per encoder, whatever the number of folds or evaluations that read it. Video-level features are the
mean of a video's decoded clips.

Clip settings always come from the encoder's own config: an encoder is evaluated on the clips it
was trained on.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import preset as preset_config
from ..data.dataset import SkipReport, VideoEntry, prepare_entries
from ..data.pipeline import build_cache, clip_spec, logmel_config, make_dataset, make_loader
from ..data.manifest import Manifest
from ..data.probe_index import probe_manifest
from ..runs import LoadedEncoders, load_encoders, scratch_encoders
from ..io import atomic_write_text, process_alive
from ..engine.extract import extract_features
from ..engine.device import pick_device
from ..errors import ConfigError, NothingDecoded
from .splits import Fold, open_manifest, over_folds, report_markdown, resolve_folds, role, write_report

CACHE_FORMAT = "avssl-clip-features/1"
MODALITIES = ("video", "audio")


@dataclass
class EncoderSource:
    """Encoders to evaluate, with ``key`` identifying their weights (for the feature cache)."""

    encoders: LoadedEncoders
    key: str
    name: str  # for reports: the path, or "scratch (preset, seed)"

    @property
    def cfg(self):
        return self.encoders.cfg


def load_source(encoders, preset: str | None = None, seed: int = 0) -> EncoderSource:
    """``"scratch"`` (random init of ``preset``: the paper's lower bound), a run directory or
    ``encoders.pt``, or already loaded encoders."""
    if isinstance(encoders, EncoderSource):
        return encoders
    if isinstance(encoders, LoadedEncoders):
        return EncoderSource(encoders, _weights_key(encoders), f"{encoders.method} encoders (in memory)")
    if str(encoders) == "scratch":
        if preset is None:
            raise ConfigError("--encoders scratch needs --preset NAME (the architecture and clip settings)")
        loaded = scratch_encoders(preset_config(preset), seed=seed)
        return EncoderSource(loaded, _weights_key(loaded), f"scratch ({preset}, seed {seed})")
    if preset is not None:
        raise ConfigError(f"--preset only applies to --encoders scratch; {encoders} carries its own settings")
    loaded = load_encoders(encoders)
    return EncoderSource(loaded, _weights_key(loaded), str(encoders))


def with_frames(source: EncoderSource, frames: int | None) -> EncoderSource:
    """``source`` run on clips of ``frames`` video frames instead of the number it was trained with (XDC
    Sec. 6: 32-frame fine-tuning and inference): the same weights under a new cache key and name."""
    if frames is None or frames == source.cfg.video.num_frames:
        return source
    if frames < 1:
        raise ConfigError(f"the number of frames must be >= 1, got {frames}")
    cfg = replace(source.cfg, video=replace(source.cfg.video, num_frames=int(frames)))
    key = hashlib.sha1(f"{source.key}:frames={frames}".encode()).hexdigest()
    return EncoderSource(replace(source.encoders, cfg=cfg), key, f"{source.name} at {frames} frames")


def with_audio_seconds(source: EncoderSource, seconds: float | None) -> EncoderSource:
    """``source`` run on ``seconds`` of audio instead of the window it was trained with (CrissCross
    Sec. 4.7 / App. E.1: 5 s inputs on ESC50, 1 s on DCASE): the log-mel keeps its hop, so the number of
    frames scales with the duration; the audio encoder pools adaptively over any length."""
    a = source.cfg.audio
    if seconds is None or seconds == a.duration:
        return source
    from ..data.logmel import LogMelConfig

    old_hops = round(a.duration * a.sample_rate) // a.hop_length
    frames = round(seconds * a.sample_rate) // a.hop_length + (a.num_frames - old_hops)
    LogMelConfig(sample_rate=a.sample_rate, duration=float(seconds), n_mels=a.n_mels, n_fft=a.n_fft,
                 win_length=a.win_length, hop_length=a.hop_length, num_frames=frames)  # refuses what cannot work
    cfg = replace(source.cfg, audio=replace(a, duration=float(seconds), num_frames=frames,
                                            time_mask=min(a.time_mask, frames)))
    key = hashlib.sha1(f"{source.key}:audio_seconds={seconds}".encode()).hexdigest()
    return EncoderSource(replace(source.encoders, cfg=cfg), key, f"{source.name} on {seconds:g} s of audio")


POOLS = ("avg", "max", "crisscross")


class _WindowMaxPool(nn.Module):
    """Max-pooling of a final convolution map with a fixed window (CrissCross App. E.1), the window
    clamped to the map where the map is smaller (tiny test inputs), flattened by the encoder."""

    def __init__(self, kernel: tuple, stride: tuple | None = None):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride or kernel)

    def forward(self, x):
        size = x.shape[2:]
        kernel = tuple(min(k, s) for k, s in zip(self.kernel, size))
        pool = F.max_pool3d if len(size) == 3 else F.max_pool2d
        return pool(x, kernel_size=kernel, stride=self.stride)


def pooled(module: nn.Module, modality: str, pool: str) -> nn.Module:
    """``module`` (an encoder) with its final global average pooling replaced: ``avg`` keeps it;
    ``max``: global max pooling (CrissCross's fine-tuning, App. E.2: "adaptive max-pooling");
    ``crisscross``: App. E.1's linear-evaluation features, the final convolution map max-pooled with
    a (1, 4, 4) window for video and a (1, 3) window at stride (1, 2) for audio, then flattened
    (larger than ``out_dim``: e.g. 512 x 3 x 3 for 2 s of 80-mel audio). A copy; ``module`` is unchanged."""
    if pool not in POOLS:
        raise ConfigError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if pool == "avg":
        return module
    m = copy.deepcopy(module)
    video = modality == "video"
    if pool == "max":
        m.avgpool = nn.AdaptiveMaxPool3d(1) if video else nn.AdaptiveMaxPool2d(1)
    else:
        m.avgpool = _WindowMaxPool((1, 4, 4)) if video else _WindowMaxPool((1, 3), (1, 2))
    return m


def with_pool(source: EncoderSource, pool: str | None) -> EncoderSource:
    """``source`` whose encoders end in the pooling ``pool`` (see ``pooled``) instead of global average
    pooling: the same weights under a new cache key and name."""
    if pool in (None, "avg"):
        return source
    modules = {slot: pooled(m, source.encoders.slots[slot], pool) for slot, m in source.encoders.modules.items()}
    key = hashlib.sha1(f"{source.key}:pool={pool}".encode()).hexdigest()
    return EncoderSource(replace(source.encoders, modules=modules), key, f"{source.name}, {pool}-pooled")


def _weights_key(enc: LoadedEncoders) -> str:
    """Hash of the config and every weight: equal keys mean equal features."""
    h = hashlib.sha1(json.dumps([enc.cfg.to_dict(), enc.slots], sort_keys=True).encode())
    for slot in sorted(enc.modules):
        for name, t in sorted(enc.modules[slot].state_dict().items()):
            h.update(f"{slot}.{name}".encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# --- clip-level outputs of any module --------------------------------------------------------------

@dataclass
class ClipTable:
    """Per-clip outputs of a list of videos: row r is clip ``clip[r]`` (starting ``start[r]`` s) of video
    ``paths[video[r]]``; ``valid[r]`` is False when that clip failed to decode."""

    values: np.ndarray  # (R, D)
    video: np.ndarray
    clip: np.ndarray
    start: np.ndarray
    valid: np.ndarray
    paths: list[str]

    def per_video(self) -> tuple[np.ndarray, np.ndarray]:
        """(V, D) mean over each video's decoded clips, and which videos had any."""
        v = self.valid
        return mean_by_video(self.values[v], self.video[v], len(self.paths))


def mean_by_video(values: np.ndarray, video: np.ndarray, num_videos: int) -> tuple[np.ndarray, np.ndarray]:
    """Average rows that belong to the same video (features, or softmax scores); (means, has_rows)."""
    sums = np.zeros((num_videos, values.shape[1]), dtype=np.float64)
    np.add.at(sums, video, values)
    counts = np.bincount(video, minlength=num_videos)
    has = counts > 0
    sums[has] /= counts[has, None]
    return sums.astype(np.float32), has


class _ClipRows:
    """A loader whose batches carry the dataset row (video, clip) as ``index``, so the engine's
    per-video feature averaging (``extract_features``) keeps one row per clip instead.
    ``first_row[entry.index]`` is the row of that video's first clip."""

    def __init__(self, loader, first_row: np.ndarray):
        self.loader, self.first_row = loader, torch.as_tensor(first_row)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if "index" in batch:
                batch["index"] = self.first_row[batch["index"]] + batch["clip"]
            yield batch


def clip_outputs(module, modality: str, cfg, entries: list[VideoEntry], clips: int, out_dir, *,
                 device="auto", batch_size: int | None = None, progress: bool = True,
                 desc: str = "extract") -> tuple[ClipTable, SkipReport]:
    """Run ``module`` on ``clips`` uniformly spaced clips of every entry (no augmentation); the output
    array is written to ``out_dir/features.npy``; the table's ``video`` is a position in ``entries``."""
    spec = clip_spec(cfg, (modality,))
    dataset = make_dataset(cfg, entries, spec, "test", clips_per_video=clips, cache=build_cache(cfg.loader, spec))
    if not len(dataset):
        raise ConfigError(f"no usable videos to run the {modality} encoder on")
    rows = np.array(dataset.items, dtype=np.float64).reshape(-1, 3)  # (position, clip, start), by position
    video = rows[:, 0].astype(np.int64)
    # Batches name a video by entry.index, which need not be its position in ``entries``.
    first_row = np.zeros(max(e.index for e in entries) + 1, dtype=np.int64)
    first_row[[e.index for e in entries]] = np.searchsorted(video, np.arange(len(entries)))
    dev = pick_device(device)
    loader = make_loader(dataset, cfg.loader, dev, batch_size=batch_size or cfg.optim.batch_size)
    skips = SkipReport()
    try:
        out = extract_features({"features": (module.to(dev), modality)},
                               _ClipRows(loader, first_row),
                               len(dataset), out_dir, dev, cfg.precision, progress=progress, desc=desc,
                               on_skip=skips.add)
    except NothingDecoded:
        raise ConfigError(f"no clip of any video could be decoded: {skips.summary()}") from None
    values, valid = out["features"]
    table = ClipTable(values, video, rows[:, 1].astype(np.int64), rows[:, 2], valid, [e.path for e in entries])
    return table, skips


# --- the cached clip features of a manifest --------------------------------------------------------

def manifest_clip_features(source: EncoderSource, modality: str, manifest: Manifest, clips: int, cache_dir, *,
                           device="auto", batch_size=None, progress: bool = True) -> ClipTable:
    """Clip features of every video of ``manifest`` (cached in ``cache_dir``); videos that cannot give a
    clip (unreadable, too short, missing the stream) are absent, and listed in ``skipped.json``."""
    if modality not in MODALITIES:
        raise ConfigError(f"modality must be one of {MODALITIES}, got {modality!r}")
    cfg = source.cfg
    _, module = source.encoders.for_modality(modality)
    spec = clip_spec(cfg, (modality,))
    settings = {
        "format": CACHE_FORMAT, "encoder": source.key, "modality": modality, "clips": clips,
        "clip": asdict(spec), "crop": cfg.video.crop, "logmel": asdict(logmel_config(cfg.audio)),
        "files": _files_digest(manifest),
    }
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    d = Path(cache_dir) / f"{modality}-{clips}clips-{digest}"
    if not (d / "meta.json").exists():
        # Written to a temporary folder and renamed, so an interrupted extraction is never mistaken
        # for a finished one.
        tmp = d.with_name(f".{d.name}.{os.getpid()}.tmp")
        _remove_abandoned(d)
        try:
            index = probe_manifest(manifest, progress=progress)
            entries, skips = prepare_entries(manifest, index, spec)
            table, clip_skips = clip_outputs(module, modality, cfg, entries, clips, tmp, device=device,
                                             batch_size=batch_size, progress=progress, desc=f"{modality} features")
            np.savez(tmp / "rows.npz", video=table.video, clip=table.clip, start=table.start, valid=table.valid)
            atomic_write_text(tmp / "videos.json", json.dumps(table.paths))
            for path, reason in clip_skips.files:
                skips.add(path, reason)
            atomic_write_text(tmp / "skipped.json", json.dumps(skips.to_dict(), indent=2))
            atomic_write_text(tmp / "meta.json", json.dumps({**settings, "encoder_name": source.name}, indent=2))
            os.replace(tmp, d)
        except OSError:
            if not (d / "meta.json").exists():
                raise
            # another process finished the same extraction first: keep theirs
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    rows = np.load(d / "rows.npz")
    return ClipTable(np.load(d / "features.npy", mmap_mode="r"), rows["video"], rows["clip"], rows["start"],
                     rows["valid"], json.loads((d / "videos.json").read_text()))


def _remove_abandoned(d: Path) -> None:
    """Delete the temporary folders of extractions of ``d`` whose process is gone (killed midway)."""
    for tmp in d.parent.glob(f".{d.name}.*.tmp"):
        pid = tmp.name[len(d.name) + 2 : -len(".tmp")]
        if pid.isdigit() and (int(pid) == os.getpid() or not process_alive(int(pid))):
            shutil.rmtree(tmp, ignore_errors=True)


def _files_digest(manifest: Manifest) -> str:
    """Which files, as they are now (size and mtime), so an edited video is re-extracted."""
    h = hashlib.sha1()
    for item in manifest:
        try:
            st = os.stat(item.path)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{item.path}\0{stamp}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


# --- features of a split ---------------------------------------------------------------------------

@dataclass
class Features:
    """Rows of a split at ``clip`` level (one per decoded clip) or ``video`` level (one per video)."""

    x: np.ndarray  # (N, D)
    video: np.ndarray  # (N,) row -> index into ``paths``
    paths: list[str]
    labels: list  # per video: the manifest label, None when unlabelled
    clip: np.ndarray  # (N,) clip number, -1 at video level
    start: np.ndarray  # (N,) seconds, NaN at video level
    missing: int = 0  # items of the split that have no features (see the cache's skipped.json)


def select(table: ClipTable, items, level: str) -> Features:
    """The features of manifest ``items`` from a manifest's clip table; items without any decoded clip
    are left out and counted in ``missing``."""
    if level not in ("clip", "video"):
        raise ConfigError(f"level must be clip or video, got {level!r}")
    items = list(items)
    decoded = np.bincount(table.video[table.valid], minlength=len(table.paths)) > 0
    position = {p: i for i, p in enumerate(table.paths) if decoded[i]}
    keep = [it for it in items if it.path in position]
    old = np.array([position[it.path] for it in keep], dtype=np.int64)
    paths, labels, n = [it.path for it in keep], [it.label for it in keep], len(keep)
    if level == "video":
        means, _ = table.per_video()
        return Features(means[old], np.arange(n), paths, labels, np.full(n, -1), np.full(n, math.nan), len(items) - n)
    new = np.full(len(table.paths), -1, dtype=np.int64)
    new[old] = np.arange(n)
    rows = np.flatnonzero(table.valid & (new[table.video] >= 0))
    return Features(np.asarray(table.values[rows], dtype=np.float32), new[table.video[rows]], paths, labels,
                    table.clip[rows], table.start[rows], len(items) - n)


def extract_split_features(source, modality: str, manifest, split: str | None = None, fold: str = "split",
                           clips: int = 10, level: str = "video", *, cache_dir, **run) -> Features:
    """Features of the items whose ``fold`` column (``split``, ``split_1``, ...) is ``split`` (None: all
    items), from the manifest's cached clip features. ``run``: device, batch_size, progress."""
    manifest = open_manifest(manifest)
    table = manifest_clip_features(load_source(source), modality, manifest, clips, cache_dir, **run)
    items = manifest if split is None else [it for it in manifest if role(it, fold) == split]
    return select(table, items, level)


def evaluate_frozen(name: str, title: str, encoders, data, out, evaluate: Callable[[Features, Features, Fold], dict],
                    metrics: Sequence[str], *, modality: str = "video", level: str = "video", train_clips: int = 10,
                    test_clips: int = 10, folds="all", settings: dict | None = None, details=None,
                    preset: str | None = None, seed: int = 0, cache_dir=None, device="auto", batch_size=None,
                    progress: bool = True) -> dict:
    """The frame shared by the frozen-feature evaluations: check every fold, extract (or reuse) the
    manifest's features, call ``evaluate(train, test, fold)`` per fold, write ``<name>.json/.md``."""
    source = load_source(encoders, preset, seed)
    manifest = open_manifest(data)
    fold_list = resolve_folds(manifest, folds)
    cache = Path(cache_dir) if cache_dir is not None else Path(out) / "features"
    tables = {k: manifest_clip_features(source, modality, manifest, k, cache, device=device, batch_size=batch_size,
                                        progress=progress) for k in dict.fromkeys((train_clips, test_clips))}

    def per_fold(fold: Fold) -> dict:
        train = select(tables[train_clips], (manifest[i] for i in fold.train), level)
        test = select(tables[test_clips], (manifest[i] for i in fold.test), level)
        return {**evaluate(train, test, fold), "train_videos": len(train.paths), "test_videos": len(test.paths),
                "videos_without_features": train.missing + test.missing}

    settings = {"train_clips": train_clips, "test_clips": test_clips, "level": level, **(settings or {})}
    result = {"evaluation": name, "encoders": source.name, "modality": modality, "data": str(manifest.source),
              "settings": settings, **over_folds(fold_list, per_fold, metrics)}
    header = {"encoders": source.name, "modality": modality, "data": manifest.source,
              "folds": ", ".join(result["folds"]), **settings}
    return write_report(out, name, result, report_markdown(title, header, result, metrics, details))


# --- avssl extract -----------------------------------------------------------------------------------

def extract(encoders, data, out, *, modality: str = "video", clips: int = 10, level: str = "video",
            preset: str | None = None, seed: int = 0, cache_dir=None, device="auto", batch_size=None,
            progress: bool = True) -> dict:
    """Write ``<modality>_features.npy`` (one row per video, the mean of ``clips`` uniform clips, or one row
    per clip) and ``<modality>_index.csv`` (row, path, label, split, clip, start) for every item of
    ``data``; ``modality="both"`` writes both. Returns the summary written to ``extract.json``."""
    source = load_source(encoders, preset, seed)
    manifest = open_manifest(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    modalities = MODALITIES if modality == "both" else (modality,)
    split_of = {it.path: it.split or "" for it in manifest}
    result = {"encoders": source.name, "data": str(manifest.source), "clips": clips, "level": level, "outputs": {}}
    lines = [f"# Features of {source.name}", "", f"- data: {manifest.source}",
             f"- {clips} uniformly spaced clips per video, {level} level", ""]
    for m in modalities:
        f = extract_split_features(source, m, manifest, clips=clips, level=level,
                                   cache_dir=cache_dir or out / "features", device=device,
                                   batch_size=batch_size, progress=progress)
        np.save(out / f"{m}_features.npy", f.x)
        text = io.StringIO()
        w = csv.writer(text, lineterminator="\n")
        w.writerow(["row", "path", "label", "split", "clip", "start"])
        for r, v in enumerate(f.video):
            clip, start = ("", "") if level == "video" else (int(f.clip[r]), f"{f.start[r]:.3f}")
            w.writerow([r, f.paths[v], f.labels[v] or "", split_of[f.paths[v]], clip, start])
        atomic_write_text(out / f"{m}_index.csv", text.getvalue())
        result["outputs"][m] = {"features": str(out / f"{m}_features.npy"), "index": str(out / f"{m}_index.csv"),
                                "rows": int(len(f.x)), "dim": int(f.x.shape[1]), "videos": len(f.paths),
                                "videos_without_features": f.missing}
        lines.append(f"- {m}: {len(f.x)} rows x {f.x.shape[1]} from {len(f.paths)} videos "
                     f"({f.missing} without features) -> {m}_features.npy, {m}_index.csv")
    return write_report(out, "extract", result, "\n".join(lines))
