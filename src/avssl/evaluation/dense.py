"""Dense clip features over whole videos, for temporal action localization (XDC Sec. 7: G-TAD on
THUMOS14 with frozen XDC features in place of TSN's).

Every video becomes a (T, D) array: row n is the feature of the clip starting at n x ``stride``
seconds (snapped to the encoder's frame grid), for every n whose clip fits in the video, so
T = floor((duration - clip) / stride) + 1. Clips are those of evaluation (centre crop, no
augmentation) except that ``clip_len`` may set the number of video frames; an audio clip keeps the
encoder's window (its log-mel has a fixed size) and starts at the clip's first frame, as everywhere
in avssl.

Layout of ``out`` (what G-TAD-style toolkits read: one array per video plus an index):

- ``index.csv``: one row per video: ``video`` (the id naming its files), path, label, split, duration,
  windows (T), stride, clip_frames, clip_seconds, and the feature files relative to ``out``;
- ``video/<id>.npy``, ``audio/<id>.npy``: (T, D) float32 per modality;
- ``av/<id>.npy`` (``modality="both"``): the two concatenated, for one-stream toolkits;
- ``timestamps/<id>.npy``: (T, 2) float64, each clip's start and end in seconds (end = start +
  ``clip_seconds``, the longer of the clip's video and audio windows);
- ``settings.json`` (what the files were made with) and ``dense.json`` / ``dense.md`` (summary).

Memory: a video is never decoded whole. Consecutive clips are grouped into chunks whose decoded
frames and samples fit ``max_memory_mb`` (counting the decoder's transient second copy), each
chunk is decoded with one seek, and clips are cut out of it; features are written per video. So a
two-hour video needs what a two-minute one needs, plus one batch of clips for the encoder.

Resuming: rerunning the same command skips the videos whose files exist; ``out`` made with other
settings is refused.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch

from ..data.dataset import prepare_entries
from ..data.pipeline import clip_spec, make_dataset
from ..data.media import decode_clip
from ..data.probe_index import probe_manifest
from ..data.samplers import DenseClipSampler
from ..io import atomic_save_array, atomic_write_text
from ..engine.precision import autocast
from ..engine.device import pick_device
from ..errors import ConfigError, MediaError
from ..progress import progress as progress_bar
from .features import MODALITIES, load_source, with_frames
from .splits import open_manifest, write_report

DENSE_FORMAT = "avssl-dense-features/1"
# The decoder holds a chunk twice for a moment (its list of frames and the stacked array).
_DECODER_COPIES = 2


def decoded_frame_bytes(info, short_side: int | None) -> int:
    """Bytes of one decoded RGB frame of a probed video after the decode-time resize."""
    w, h = info.width or 1, info.height or 1
    if short_side is not None:
        s = short_side / min(w, h)
        w, h = max(1, round(w * s)), max(1, round(h * s))
    return 3 * w * h


def plan_chunks(frame_starts: np.ndarray, fps: float, clip_seconds: float, max_seconds: float) -> list[tuple[int, int]]:
    """Group consecutive clips (start frames ``frame_starts``) into chunks [n0, n1) whose decoded span,
    from the first clip's start to the last clip's end, is at most ``max_seconds`` (at least one clip)."""
    chunks, n0 = [], 0
    for n in range(1, len(frame_starts) + 1):
        if n == len(frame_starts) or (frame_starts[n] - frame_starts[n0]) / fps + clip_seconds > max_seconds:
            chunks.append((n0, n))
            n0 = n
    return chunks


def iter_windows(path: str, frame_starts: np.ndarray, spec, max_bytes: int, frame_bytes: int):
    """Yield ``(n, frames, wave)`` for every clip n of a video, decoded chunk by chunk: ``frames``
    (num_frames, H, W, 3) uint8 and ``wave`` float32 exactly as ``decode_clip`` gives them for that
    clip's start (None for a modality ``spec`` lacks). The last item is ``(None, peak, chunks)``: the
    most decoded bytes held at once, and the number of chunks."""
    want_v, want_a = "video" in spec.modalities, "audio" in spec.modalities
    fps, sr = spec.fps, spec.sample_rate
    per_second = (fps * frame_bytes if want_v else 0) + (4 * sr if want_a else 0)
    max_seconds = max_bytes / (_DECODER_COPIES * per_second)
    audio_len = round(spec.audio_duration * sr)
    first_sample = np.round(frame_starts / fps * sr).astype(np.int64)
    peak, chunks = 0, plan_chunks(frame_starts, fps, spec.duration, max_seconds)
    for n0, n1 in chunks:
        f0, last = int(frame_starts[n0]), int(frame_starts[n1 - 1])
        frames, wave = decode_clip(path, f0 / fps, last - f0 + spec.num_frames, fps,
                                   (first_sample[n1 - 1] - first_sample[n0] + audio_len) / sr, sr,
                                   short_side=spec.short_side, video=want_v, audio=want_a)
        peak = max(peak, sum(a.nbytes for a in (frames, wave) if a is not None))
        for n in range(n0, n1):
            f = int(frame_starts[n]) - f0
            a = int(first_sample[n] - first_sample[n0])
            yield (n, None if frames is None else frames[f:f + spec.num_frames],
                   None if wave is None else wave[a:a + audio_len])
        del frames, wave
    yield None, peak, len(chunks)


def video_ids(paths: list[str]) -> list[str]:
    """File names without extension; a name shared by several files gets a hash of its path."""
    stems = [Path(p).stem for p in paths]
    counts = {s: stems.count(s) for s in stems}
    return [s if counts[s] == 1 else f"{s}-{hashlib.sha1(p.encode()).hexdigest()[:8]}" for s, p in zip(stems, paths)]


@torch.no_grad()
def dense_extract(encoders, data, out, *, modality: str = "video", stride: float = 1.0, clip_len: int | None = None,
                  max_memory_mb: float = 512, preset: str | None = None, seed: int = 0, device="auto",
                  batch_size: int | None = None, progress: bool = True) -> dict:
    """Dense (T, D) clip features of every video of ``data`` into ``out`` (see the module doc); returns
    the summary written to ``dense.json``."""
    if modality not in (*MODALITIES, "both"):
        raise ConfigError(f"modality must be video, audio or both, got {modality!r}")
    if not (max_memory_mb > 0 and stride > 0):
        raise ConfigError(f"stride and max_memory_mb must be > 0, got {stride} and {max_memory_mb}")
    source = with_frames(load_source(encoders, preset, seed), clip_len)
    cfg = source.cfg
    modalities = MODALITIES if modality == "both" else (modality,)
    spec = clip_spec(cfg, modalities)
    sampler = DenseClipSampler(spec.duration, stride, grid=spec.fps)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"format": DENSE_FORMAT, "encoder": source.key, "encoder_name": source.name,
                "modalities": list(modalities), "stride": stride, "clip_frames": spec.num_frames, "fps": spec.fps,
                "audio_seconds": spec.audio_duration, "clip_seconds": spec.duration, "crop": cfg.video.crop}
    _check_settings(out / "settings.json", settings)
    manifest = open_manifest(data)
    index = probe_manifest(manifest, progress=progress)
    entries, skips = prepare_entries(manifest, index, spec)
    meta = {it.path: it for it in manifest}
    dev = pick_device(device)
    modules = {m: source.encoders.for_modality(m)[1].to(dev).eval() for m in modalities}
    prep = make_dataset(cfg, [], spec, "test")  # the evaluation transforms (centre crop, log-mel)
    budget = int(max_memory_mb * 2 ** 20)
    batch_size = batch_size or cfg.optim.batch_size
    rows, peak, chunks, reused = [], 0, 0, 0
    for entry, vid in progress_bar(list(zip(entries, video_ids([e.path for e in entries]))), "dense features",
                                   enabled=progress, unit="video"):
        files = {m: out / m / f"{vid}.npy" for m in modalities}
        if modality == "both":
            files["av"] = out / "av" / f"{vid}.npy"
        stamps = out / "timestamps" / f"{vid}.npy"
        frame_starts = sampler.frames(entry.duration)
        if all(f.exists() for f in [*files.values(), stamps]):
            reused += 1
        else:
            frame_bytes = decoded_frame_bytes(index.infos[entry.path], spec.short_side) if "video" in modalities else 0
            try:
                feats, used, n_chunks = _video_features(modules, prep, cfg, entry.path, frame_starts, spec,
                                                        budget, frame_bytes, batch_size, dev)
            except MediaError as e:
                skips.add(entry.path, e.reason)
                continue
            peak, chunks = max(peak, used), chunks + n_chunks
            if modality == "both":
                feats["av"] = np.concatenate([feats["video"], feats["audio"]], axis=1)
            for name, f in files.items():
                atomic_save_array(f, feats[name])
            starts = frame_starts / spec.fps
            atomic_save_array(stamps, np.stack([starts, starts + spec.duration], axis=1))
        item = meta[entry.path]
        rows.append({"video": vid, "path": entry.path, "label": item.label or "", "split": item.split or "",
                     "duration": f"{entry.duration:.3f}", "windows": len(frame_starts), "stride": stride,
                     "clip_frames": spec.num_frames, "clip_seconds": f"{spec.duration:.4f}",
                     **{f"{name}_features": str(f.relative_to(out)) for name, f in files.items()},
                     "timestamps": str(stamps.relative_to(out))})
    if not rows:
        raise ConfigError(f"no video of {manifest.source} gave dense features: {skips.summary()}")
    _write_index(out / "index.csv", rows)
    dims = {name: int(np.load(out / rows[0][f"{name}_features"], mmap_mode="r").shape[1]) for name in files}
    windows = [r["windows"] for r in rows]
    parts = ([f"{spec.num_frames} video frames ({spec.video_span:.3f} s)"] if "video" in modalities else []) + \
        ([f"{spec.audio_duration:g} s of audio"] if "audio" in modalities else [])
    result = {"evaluation": "dense", "encoders": source.name, "data": str(manifest.source), "settings": settings,
              "videos": len(rows), "reused": reused, "windows": int(sum(windows)), "dims": dims,
              "max_memory_mb": max_memory_mb, "peak_decoded_mb": peak / 2 ** 20, "chunks": chunks,
              "index": str(out / "index.csv"), "skipped": skips.to_dict()}
    md = [f"# Dense features of {source.name}", "", f"- data: {manifest.source}",
          f"- a clip every {stride:g} s: " + " and ".join(parts) + f"; clip n covers n x {stride:g} s + "
          f"[0, {spec.duration:.3f}] s",
          f"- {len(rows)} videos ({reused} reused), {sum(windows)} clips, T from {min(windows)} to {max(windows)}",
          "- feature sizes: " + ", ".join(f"{k} {v}" for k, v in dims.items()),
          f"- decoded in {chunks} chunks, at most {peak / 2 ** 20:.1f} MiB at once (budget {max_memory_mb:g} MiB "
          f"incl. the decoder's copy)", f"- {skips.summary()}", f"- index: {out / 'index.csv'}"]
    return write_report(out, "dense", result, "\n".join(md))


def _video_features(modules, prep, cfg, path, frame_starts, spec, budget, frame_bytes, batch_size, dev):
    """{modality: (T, D)} for one video, the peak decoded bytes and the number of chunks."""
    feats = {m: None for m in modules}
    pending: list[tuple[int, dict]] = []

    def flush():
        rows = [n for n, _ in pending]
        for m, module in modules.items():
            x = torch.stack([t[m] for _, t in pending]).to(dev)
            with autocast(dev, cfg.precision):
                y = module(x).float().cpu().numpy()
            if feats[m] is None:
                feats[m] = np.zeros((len(frame_starts), y.shape[1]), dtype=np.float32)
            feats[m][rows] = y
        pending.clear()

    for n, frames, wave in iter_windows(path, frame_starts, spec, budget, frame_bytes):
        if n is None:
            peak, chunks = frames, wave
            break
        clip = {}
        if frames is not None:
            clip["video"] = prep.video_tensor(frames, None)
        if wave is not None:
            clip["audio"] = prep.audio_tensor(wave, None)
        pending.append((n, clip))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    return feats, peak, chunks


def _check_settings(path: Path, settings: dict) -> None:
    if path.exists():
        old = json.loads(path.read_text())
        if old != settings:
            diff = sorted(k for k in settings if old.get(k) != settings[k])
            raise ConfigError(f"{path.parent} holds dense features made with other settings ({', '.join(diff)}); "
                              f"choose another --out")
        return
    atomic_write_text(path, json.dumps(settings, indent=2))


def _write_index(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, text.getvalue())
