#!/usr/bin/env python
"""Training-sampler throughput against the raw PyAV decode bound, measured in the same run.

For generated 10 s, 30 fps H.264 + AAC (44.1 kHz stereo) videos at 320x240 and 640x360, with the
encoder's default GOP (x264: keyint 250, i.e. keyframes at 0 s and 8.33 s) and a 1 s GOP, the same
list of random (video, start) pairs is timed with the variants below. The per-clip variants are
interleaved clip by clip (all variants on clip 1 in rotating order, then clip 2, ...), so that the
load of other jobs on a shared machine hits them alike; a repeat is one pass over all clips, and
ratios are taken within a repeat, then the median over repeats. The DataLoader variants are whole
epochs, alternated with single-process passes (``raw_pass``, ``sampler_pass``, ``cache_pass``) over
the same items.

  raw            (a) the bound: PyAV opens the file, seeks to the keyframe before the clip, decodes
                 the 8 video frames' span and the 2 s audio window; no conversion, no resampling
  raw_all_audio  the same, but decoding every audio packet from the keyframe on (a looser bound)
  decode_rgb     avssl ``decode_clip`` at full size (RGB conversion + audio resampling, no resize)
  decode         avssl ``decode_clip`` as the xdc-paper sampler calls it (short side 256)
  post           what ``ClipDataset`` does after decoding (to-tensor, crop 224, flip, normalise,
                 volume jitter, log-mel) on pre-decoded arrays of the same clips
  sampler        (b) ``ClipDataset[i]`` of ``make_dataset(preset("xdc-paper"), ..., "train")``
  logmel         (c) the 40x100 log-mel alone on the same 16 kHz waveforms
  cache          the cpu-small path: ``ClipDataset[i]`` reading a ``DecodedCache`` (8x32x32 crops)
  dl_sampler     (d) the xdc-paper dataset through a DataLoader with ``--workers`` processes
  dl_cache       (d) the cpu-small dataset through the same kind of DataLoader
  sampler_t2, logmel_t2   sampler and logmel with 2 torch intra-op threads instead of 1

Single-process variants run with ``--torch-threads`` (default 1) torch intra-op threads, which is what
a DataLoader worker uses (PyTorch sets 1 thread in each worker); the *_t2 variants show what two
threads do to these small per-clip ops on a 2-core machine (on a busy machine: a lot, see
BENCHMARKS.md).

Goals (issue): sampler >= 0.8 x raw clips/s; log-mel <= 5% of the raw decode time per clip.

    python benchmarks/bench_loader.py --out loader.json --md loader.md
    python benchmarks/bench_loader.py --quick --out /tmp/q.json      # seconds; used by the tests
"""
from __future__ import annotations

import cProfile
import dataclasses
import json
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from avssl.config import preset
from bench_common import benchmark_parser, code_state, machine_info as common_machine_info, write_outputs  # benchmarks/ is on sys.path when run as a script
from avssl.data.dataset import collate_clips, prepare_entries
from avssl.data.pipeline import clip_spec, logmel_config, make_dataset
from avssl.data.decoded_cache import DecodedCache
from avssl.data.logmel import LogMelSpectrogram
from avssl.data.manifest import Manifest, ManifestItem
from avssl.data.media import decode_clip, probe
from avssl.data.probe_index import ProbeIndex
from avssl.data.writer import write_av

GOALS = {"sampler_over_raw_min": 0.8, "logmel_over_decode_max": 0.05}
CONTENT_VERSION = 1  # bump when the generated videos change, so a --workdir is regenerated
VARIANTS = ("raw", "raw_all_audio", "decode_rgb", "decode", "post", "sampler", "logmel", "cache",
            "dl_sampler", "dl_cache", "sampler_t2", "logmel_t2")


# ------------------------------------------------------------------------------------------ machine


def machine_info() -> dict:
    return {**common_machine_info(), "torch_threads_default": torch.get_num_threads(),
            "ffmpeg_libavcodec": ".".join(map(str, av.library_versions.get("libavcodec", ()))) or None}


# ------------------------------------------------------------------------------------ test videos


def make_content(width: int, height: int, seconds: float, fps: float, seed: int):
    """A panning smooth colour-noise texture with fine detail, a moving inverted disc and film
    grain (so the encoder has real work: motion, texture, noise), plus 44.1 kHz stereo audio
    (a gliding tone, an amplitude-modulated tone and noise)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    pan = max(1, width // 200)  # pixels per frame
    big_w, big_h = width + pan * n + 8, height + 64
    coarse = torch.from_numpy(rng.standard_normal((1, 3, big_h // 16 + 2, big_w // 16 + 2)).astype(np.float32))
    fine = torch.from_numpy(rng.standard_normal((1, 3, big_h // 4 + 2, big_w // 4 + 2)).astype(np.float32))
    tex = F.interpolate(coarse, size=(big_h, big_w), mode="bicubic", align_corners=False)[0] * 40
    tex += F.interpolate(fine, size=(big_h, big_w), mode="bilinear", align_corners=False)[0] * 15
    tex = (tex + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    frames = np.empty((n, height, width, 3), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    radius2 = (min(width, height) // 8) ** 2
    for t in range(n):
        y0 = int(32 + 24 * np.sin(4 * np.pi * t / n))
        f = tex[y0 : y0 + height, pan * t : pan * t + width].astype(np.int16)
        cx = int(width / 2 + width / 3 * np.cos(2 * np.pi * t / 90))
        cy = int(height / 2 + height / 3 * np.sin(2 * np.pi * t / 70))
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < radius2
        f[disc] = 255 - f[disc]
        f += rng.integers(-4, 5, size=f.shape, dtype=np.int16)
        frames[t] = np.clip(f, 0, 255)
    sr = 44100
    ts = np.arange(int(round(seconds * sr))) / sr
    left = 0.3 * np.sin(2 * np.pi * (220 + 110 * np.sin(2 * np.pi * 0.3 * ts)) * ts)
    right = 0.3 * np.sin(2 * np.pi * 330 * ts) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * ts))
    audio = np.stack([left, right]) + 0.05 * rng.standard_normal((2, ts.size))
    return frames, audio.astype(np.float32), sr


def ensure_videos(root: Path, width: int, height: int, gop: int | None, count: int, seconds: float, fps: float):
    """Generate (or reuse, if generated with the same parameters) ``count`` videos; returns paths
    and the seconds spent generating + encoding (0 when reused)."""
    folder = root / f"{width}x{height}_gop{gop or 'default'}"
    params = {"v": CONTENT_VERSION, "w": width, "h": height, "gop": gop, "n": count, "s": seconds, "fps": fps}
    stamp = folder / "params.json"
    paths = [folder / f"video{i:02d}.mp4" for i in range(count)]
    if stamp.exists() and json.loads(stamp.read_text()) == params and all(p.exists() for p in paths):
        return paths, 0.0
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    for i, p in enumerate(paths):
        frames, audio, sr = make_content(width, height, seconds, fps, seed=1000 * width + i)
        write_av(p, frames, fps=fps, audio=audio, sample_rate=sr, gop=gop)
    stamp.write_text(json.dumps(params))
    return paths, time.perf_counter() - t0


# --------------------------------------------------------------------------------------- variants


def raw_decode(path: str, start: float, num_frames: int, fps: float, audio_duration: float,
               skip_early_audio: bool = True) -> int:
    """The bound: open, seek (keyframe at or before ``start``), decode video until the frame on
    display at the last target time is known and audio until the window is covered. Frames are
    decoded and dropped: no RGB conversion, no resampling, no copies. Returns video frames decoded.

    Video has to be decoded from the keyframe on. Audio packets are independent but for the
    codec's overlap with the previous frame: ``skip_early_audio`` leaves undecoded the audio
    packets that end before the window's start minus avssl's own lead-in (one codec frame + 10 ms,
    ``media._audio_margins``); without it every audio packet from the keyframe on is decoded."""
    with av.open(path, metadata_errors="ignore") as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        v.codec_context.thread_type = "AUTO"  # as avssl's decoder does, so both decode alike
        v0 = float(v.start_time * v.time_base) if v.start_time is not None else 0.0
        a0 = float(a.start_time * a.time_base) if a.start_time is not None else 0.0
        if start > 0:
            c.seek(int((start + v0) / v.time_base), backward=True, stream=v)
        v_last = start + (num_frames - 1) / fps  # need a frame with time > this (or the end)
        a_stop = start + audio_duration
        ctx = a.codec_context
        a_from = start - (ctx.frame_size / ctx.sample_rate + 0.01 if ctx.frame_size else 0.0)
        a_from_pts = int((a_from + a0) / a.time_base)  # compared in stream ticks: no Fractions per packet
        need_v = need_a = True
        decoded = 0
        for packet in c.demux(v, a):
            if packet.stream is v:
                if not need_v:
                    continue
                for frame in packet.decode():
                    decoded += 1
                    if frame.time is not None and frame.time - v0 > v_last:
                        need_v = False
            else:
                if not need_a:
                    continue
                if skip_early_audio and packet.pts is not None and packet.pts + packet.duration < a_from_pts:
                    continue
                for frame in packet.decode():
                    if frame.time is not None and frame.time - a0 + frame.samples / frame.sample_rate >= a_stop:
                        need_a = False
            if not (need_v or need_a):
                break
        return decoded


def post_decode(ds, frames: np.ndarray, wave: np.ndarray, rng: np.random.Generator):
    """What ``ClipDataset.__getitem__`` does after decoding, on pre-decoded arrays."""
    return ds.video_tensor(frames, rng), ds.audio_tensor(wave, rng)


def dataloader(ds, workers: int, batch_size: int):
    return DataLoader(
        ds, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate_clips,
        persistent_workers=workers > 0,
    )


def run_loader_epoch(loader) -> int:
    n = 0
    for batch in loader:
        n += len(batch.get("index", ()))
        if batch["skipped"]:
            raise RuntimeError(f"clips failed to decode: {batch['skipped'][:3]}")
    return n


# ------------------------------------------------------------------------------------------ sets


def bench_set(args, root: Path, width: int, height: int, gop: int | None) -> dict:
    label = f"{width}x{height} gop={gop or 'default'}"
    paths, gen_s = ensure_videos(root / "videos", width, height, gop, args.videos, args.seconds, 30.0)
    cfg, small = preset("xdc-paper"), preset("cpu-small")
    spec, small_spec = clip_spec(cfg), clip_spec(small)
    manifest = Manifest([ManifestItem(str(p)) for p in paths])
    index = ProbeIndex({str(p): probe(p) for p in paths}, {})
    entries, skipped = prepare_entries(manifest, index, spec)
    if skipped:
        raise RuntimeError(f"videos skipped: {skipped.summary()}")
    # clips_per_video copies of each video, each copy getting its own random start (the dataset seeds
    # its random choices per item), so one epoch is a list of len(entries) (video, start) pairs.
    entries = [dataclasses.replace(e, index=j) for j, e in enumerate(entries * args.clips_per_video)]
    ds = make_dataset(cfg, entries, spec, "train", seed=0)
    pairs = []
    for i, e in enumerate(entries):
        rng = np.random.default_rng([ds.seed, ds.epoch, i])  # ClipDataset's per-item generator
        pairs.append((e.path, ds.clips(e.duration, rng)[0]))
    n = len(pairs)

    # cpu-small: decoded cache, built once here (the build cost is reported, amortised over epochs).
    cache_root = root / "cache"
    shutil.rmtree(cache_root, ignore_errors=True)
    cache = DecodedCache(cache_root, fps=small_spec.fps, short_side=small_spec.short_side,
                         sample_rate=small_spec.sample_rate)
    t0 = time.perf_counter()
    for p in paths:
        cache.get(p)
    cache_build_s = (time.perf_counter() - t0) / len(paths)
    ds_small = make_dataset(small, entries, small_spec, "train", seed=0, cache=cache)

    # Inputs of the post / logmel variants: the same clips, decoded once up front.
    decoded = [decode_clip(p, s, spec.num_frames, spec.fps, spec.audio_duration, spec.sample_rate,
                           short_side=spec.short_side) for p, s in pairs]
    logmel = LogMelSpectrogram(logmel_config(cfg.audio))
    waves = [torch.from_numpy(np.ascontiguousarray(w)) for _, w in decoded]

    frames_decoded = [0] * n
    nf, fps, adur, sr = spec.num_frames, spec.fps, spec.audio_duration, spec.sample_rate

    def c_raw(i):
        frames_decoded[i] = raw_decode(pairs[i][0], pairs[i][1], nf, fps, adur)

    def c_raw_all_audio(i):
        raw_decode(pairs[i][0], pairs[i][1], nf, fps, adur, skip_early_audio=False)

    def c_decode_rgb(i):
        decode_clip(pairs[i][0], pairs[i][1], nf, fps, adur, sr, short_side=None)

    def c_decode(i):
        decode_clip(pairs[i][0], pairs[i][1], nf, fps, adur, sr, short_side=spec.short_side)

    def c_post(i):
        post_decode(ds, decoded[i][0], decoded[i][1], np.random.default_rng([0, 0, i]))

    def c_sampler(i):
        ds[i]

    def c_logmel(i):
        logmel(waves[i])

    def c_cache(i):
        ds_small[i]

    def with_threads(fn, k):
        def run(i):
            before = torch.get_num_threads()
            torch.set_num_threads(k)
            try:
                fn(i)
            finally:
                torch.set_num_threads(before)
        return run

    per_clip_fns = {
        "raw": c_raw, "raw_all_audio": c_raw_all_audio, "decode_rgb": c_decode_rgb, "decode": c_decode,
        "post": c_post, "sampler": c_sampler,
        "logmel": c_logmel, "cache": c_cache,
        "sampler_t2": with_threads(c_sampler, 2), "logmel_t2": with_threads(c_logmel, 2),
    }

    def v_sampler():
        for i in range(n):
            ds[i]

    def v_cache():
        for i in range(n):
            ds_small[i]

    # The sampler really samples the pairs timed for the bound, and decodes every clip.
    for i in (0, n - 1):
        item = ds[i]
        assert isinstance(item, dict) and abs(item["start"] - pairs[i][1]) < 1e-9, item
        assert tuple(item["video"].shape) == (3, spec.num_frames, cfg.video.crop, cfg.video.crop)
        assert tuple(item["audio"].shape) == (1, cfg.audio.n_mels, cfg.audio.num_frames)
        small_item = ds_small[i]
        assert isinstance(small_item, dict), small_item
        assert tuple(small_item["video"].shape) == (3, small_spec.num_frames, small.video.crop, small.video.crop)

    skip = set(filter(None, args.skip.split(",")))
    if skip - set(VARIANTS) or skip & {"raw", "sampler", "logmel"}:
        raise SystemExit(f"--skip: raw, sampler and logmel are always timed; others: {VARIANTS}")
    clip_variants = tuple(v for v in per_clip_fns if v not in skip)
    pass_variants = ()
    if "dl_sampler" not in skip:
        pass_variants += ("raw_pass", "sampler_pass", "dl_sampler")
    if "dl_cache" not in skip and "cache" not in skip:
        pass_variants += ("cache_pass", "dl_cache")
    for i in range(n):  # warm-up: page cache, filter graphs, allocators, thread pools
        for name in clip_variants:
            per_clip_fns[name](i)

    # Per-clip variants, interleaved clip by clip (rotating order) so that the load of other
    # processes on this shared machine hits every variant alike; one repeat = one pass over all clips.
    times: dict[str, list[float]] = {k: [] for k in (*VARIANTS, "raw_pass", "sampler_pass", "cache_pass")}
    clip_times = {k: np.zeros((args.repeats, n)) for k in clip_variants}
    for rep in range(args.repeats):
        for i in range(n):
            shift = (rep + i) % len(clip_variants)
            order = clip_variants[shift:] + clip_variants[:shift]
            if (rep + i) % 2:
                order = order[::-1]
            for name in order:
                t0 = time.perf_counter()
                per_clip_fns[name](i)
                clip_times[name][rep, i] = time.perf_counter() - t0
        for name in clip_variants:
            times[name].append(float(clip_times[name][rep].sum()))
        print(f"  [{label}] repeat {rep + 1}/{args.repeats}: "
              + ", ".join(f"{k} {1000 * times[k][-1] / n:.1f}" for k in clip_variants) + " ms/clip", flush=True)

    # DataLoader epochs against single-process passes over the same items, alternating pass by pass.
    workers, bs = args.workers, args.batch_size
    dl_first_epoch_s = None
    if pass_variants:
        dl_xdc, dl_small = dataloader(ds, workers, bs), dataloader(ds_small, workers, bs)
        t0 = time.perf_counter()
        assert run_loader_epoch(dl_xdc) == n  # also starts the persistent workers
        dl_first_epoch_s = time.perf_counter() - t0
        assert run_loader_epoch(dl_small) == n
        def v_raw():
            for i in range(n):
                raw_decode(pairs[i][0], pairs[i][1], nf, fps, adur)

        pass_fns = {"raw_pass": v_raw, "sampler_pass": v_sampler, "cache_pass": v_cache,
                    "dl_sampler": lambda: run_loader_epoch(dl_xdc), "dl_cache": lambda: run_loader_epoch(dl_small)}
        for rep in range(args.repeats):
            order = pass_variants if rep % 2 == 0 else pass_variants[::-1]
            for name in order:
                t0 = time.perf_counter()
                pass_fns[name]()
                times[name].append(time.perf_counter() - t0)
            print(f"  [{label}] DataLoader repeat {rep + 1}/{args.repeats}: "
                  + ", ".join(f"{k} {1000 * times[k][-1] / n:.1f}" for k in pass_variants) + " ms/clip", flush=True)
        del dl_xdc, dl_small  # stops the persistent workers

    profile = profile_top(v_sampler, args.profile_top)

    def ms(name):
        return 1000 * statistics.median(times[name]) / n if times[name] else None

    def paired(num, den, digits):  # median over repeats of time(num) / time(den)
        if not (times[num] and times[den]):
            return None
        return round(statistics.median(a / b for a, b in zip(times[num], times[den])), digits)

    def diff(a, b):
        return None if a is None or b is None else round(a - b, 2)

    per_clip = {k: ms(k) for k in VARIANTS}  # dl_*: per clip of an epoch
    pc = per_clip
    result = {
        "set": label,
        "resolution": f"{width}x{height}",
        "gop": gop or "default",
        "keyframes_s": keyframe_times(paths[0]),
        "videos": len(paths),
        "clips": n,
        "repeats": args.repeats,
        "generate_s": round(gen_s, 2),
        "ms_per_clip": {k: None if v is None else round(v, 3) for k, v in pc.items()},
        "clips_per_s": {k: None if v is None else round(1000 / v, 2) for k, v in pc.items()},
        "raw_frames_decoded_per_clip": round(statistics.mean(frames_decoded), 1),
        "raw_pass_ms_per_clip": ms("raw_pass"),
        "sampler_pass_ms_per_clip": ms("sampler_pass"),
        # the same ratio from whole passes alternating with each other (no per-clip interleaving)
        "sampler_over_raw_passes": paired("raw_pass", "sampler_pass", 3),
        "cache_pass_ms_per_clip": ms("cache_pass"),
        # per-clip ratio spread: quartiles over clips of time(sampler) / time(raw), medians over repeats
        "sampler_time_over_raw_time_quartiles": [
            round(float(q), 2)
            for q in np.percentile(np.median(clip_times["sampler"] / clip_times["raw"], axis=0), [25, 50, 75])
        ],
        # (b) / (a) in clips/s is time(a) / time(b)
        "sampler_over_raw": paired("raw", "sampler", 3),
        "sampler_over_raw_all_audio": paired("raw_all_audio", "sampler", 3),
        "logmel_over_decode": paired("logmel", "raw", 4),
        "logmel_over_avssl_decode": paired("logmel", "decode", 4),
        "sampler_t2_over_sampler": paired("sampler", "sampler_t2", 3),
        "logmel_t2_over_logmel": paired("logmel", "logmel_t2", 3),
        "cache_over_raw": paired("raw", "cache", 2),
        # DataLoader speed-ups against single-process passes timed alternately with them
        "dl_sampler_over_sampler": paired("sampler_pass", "dl_sampler", 3),
        "dl_cache_over_cache": paired("cache_pass", "dl_cache", 3),
        "breakdown_ms_per_clip": {
            "raw_decode": round(pc["raw"], 2),
            "rgb_and_audio_resample_and_python": diff(pc["decode_rgb"], pc["raw"]),
            "resize_to_short_side_256": diff(pc["decode"], pc["decode_rgb"]),
            "post_transforms_and_logmel": None if pc["post"] is None else round(pc["post"], 2),
            "unaccounted": diff(diff(pc["sampler"], pc["decode"]), pc["post"]),
        },
        "cache_build_s_per_video": round(cache_build_s, 3),
        "dl_workers": workers,
        "dl_batch_size": bs,
        "dl_first_epoch_s": round(dl_first_epoch_s, 3),
        "sampler_profile_top": profile,
    }
    result["goal_sampler_met"] = result["sampler_over_raw"] >= GOALS["sampler_over_raw_min"]
    result["goal_logmel_met"] = result["logmel_over_decode"] <= GOALS["logmel_over_decode_max"]
    return result


def keyframe_times(path) -> list[float]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return [round(float(p.pts * v.time_base), 2) for p in c.demux(v) if p.is_keyframe and p.pts is not None]


def profile_top(fn, top: int) -> list[dict]:
    """cProfile one pass of ``fn``: the ``top`` functions by own time (C calls included)."""
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _) in stats.stats.items():
        where = func if file == "~" else f"{Path(file).name}:{line}({func})"
        rows.append({"function": where, "calls": nc, "tottime_s": round(tt, 4), "cumtime_s": round(ct, 4),
                     "share_of_total": round(tt / total, 3) if total else None})
    rows.sort(key=lambda r: -r["tottime_s"])
    return rows[:top]


# ----------------------------------------------------------------------------------------- report


def _f(value, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def markdown(results: dict) -> str:
    lines = [
        "| set | raw decode ms/clip (frames decoded) | avssl decode ms | sampler ms | sampler clips/s "
        "| **sampler / raw** (goal >= 0.8) | log-mel ms | **log-mel / decode** (goal <= 0.05) "
        "| cpu-small cache clips/s | DataLoader x%d xdc clips/s | DataLoader x%d cache clips/s |"
        % (results["config"]["workers"], results["config"]["workers"]),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["sets"]:
        m, c = r["ms_per_clip"], r["clips_per_s"]
        lines.append(
            f"| {r['set']} | {m['raw']:.1f} ({r['raw_frames_decoded_per_clip']}) | {_f(m['decode'], '.1f')} | "
            f"{m['sampler']:.1f} | {c['sampler']:.1f} | {r['sampler_over_raw']:.2f} "
            f"{'met' if r['goal_sampler_met'] else 'MISSED'} | {m['logmel']:.2f} | {r['logmel_over_decode']:.3f} "
            f"{'met' if r['goal_logmel_met'] else 'MISSED'} | {_f(c['cache'], '.0f')} | {_f(c['dl_sampler'], '.1f')} | "
            f"{_f(c['dl_cache'], '.0f')} |"
        )
    lines += ["", "Breakdown of the sampler, ms per clip (medians; see the variants in the script's docstring):", "",
              "| set | raw decode | + RGB, audio resample, Python | + resize to 256 | transforms + log-mel "
              "| unaccounted | sampler |",
              "|---|---|---|---|---|---|---|"]
    for r in results["sets"]:
        b = r["breakdown_ms_per_clip"]
        lines.append(
            f"| {r['set']} | {b['raw_decode']:.1f} | {_f(b['rgb_and_audio_resample_and_python'], '.1f')} | "
            f"{_f(b['resize_to_short_side_256'], '.1f')} | {_f(b['post_transforms_and_logmel'], '.1f')} | "
            f"{_f(b['unaccounted'], '.1f')} "
            f"| {r['ms_per_clip']['sampler']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = benchmark_parser(__doc__)
    p.add_argument("--workdir", help="keep the generated videos here and reuse them (default: a temp dir, removed)")
    p.add_argument("--resolutions", default="320x240,640x360")
    p.add_argument("--gops", default="default,30", help="'default' (x264: 250) and/or keyframe intervals")
    p.add_argument("--videos", type=int, default=8, help="videos per resolution and GOP")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--clips-per-video", type=int, default=6, help="random clips per video per pass")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the dl_* variants")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--skip", default="", help="comma-separated variants not to time (their numbers become null)")
    p.add_argument("--profile-top", type=int, default=15)
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads of the single-process variants (a DataLoader worker uses 1)")
    args = p.parse_args(argv)
    if args.quick:
        args.resolutions, args.gops, args.videos, args.seconds = "96x64", "default", 2, 2.5
        args.clips_per_video, args.repeats, args.batch_size, args.profile_top = 2, 1, 2, 5
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    machine = machine_info()
    torch.set_num_threads(args.torch_threads)
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="avssl-bench-loader-"))
    root.mkdir(parents=True, exist_ok=True)
    results = {
        "benchmark": "loader",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "code": code_state([f"src/avssl/data/{name}.py"
                            for name in ("media/source", "media/video", "media/audio", "media/decode", "dataset",
                                         "logmel", "decoded_cache", "transforms/geometry", "transforms/colour",
                                         "transforms/audio", "transforms/builders")]),
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "md")},
        "goals": GOALS,
        "sets": [],
    }
    try:
        for res in args.resolutions.split(","):
            width, height = (int(v) for v in res.lower().split("x"))
            for g in args.gops.split(","):
                gop = None if g == "default" else int(g)
                print(f"set {width}x{height} gop={g}", flush=True)
                results["sets"].append(bench_set(args, root, width, height, gop))
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
        else:
            shutil.rmtree(root / "cache", ignore_errors=True)
    sets = results["sets"]
    results["summary"] = {
        "sampler_over_raw": {r["set"]: r["sampler_over_raw"] for r in sets},
        "logmel_over_decode": {r["set"]: r["logmel_over_decode"] for r in sets},
        "goal_sampler_met_all": all(r["goal_sampler_met"] for r in sets),
        "goal_logmel_met_all": all(r["goal_logmel_met"] for r in sets),
    }
    table = markdown(results)
    results["markdown"] = table
    write_outputs(args, results, table)
    print("RESULT_JSON " + json.dumps({k: results[k] for k in ("benchmark", "summary")}))
    return results


if __name__ == "__main__":
    main()
