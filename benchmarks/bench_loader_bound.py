#!/usr/bin/env python
"""Clips per core: avssl's training sampler against the per-clip bound and a reference loader, on
original and prepared (``avssl data prepare``) files, plus DataLoader worker scaling.

The bound (``bound_clip``) is the work a clip cannot avoid, done the cheapest way PyAV offers:

  - one open and one seek, to the keyframe at or before the earliest sample the clip needs (its first
    video frame, or the audio codec frame before its audio window);
  - video: decode, in decode order, every packet from that keyframe up to the last packet whose frame
    is on display at one of the clip's times (packets are demuxed ahead, not decoded, to know which is
    last; for B-frame streams that includes the references those frames need); then drain the decoder;
  - conversions: each distinct frame on display at a clip time is scaled to the preset's short side
    and converted to RGB in one swscale pass (a kept ``VideoReformatter``), no other frame is converted;
  - audio: decode the packets from one codec frame before the window (the MDCT overlap) to its end,
    skipping earlier ones undecoded, and downmix + resample them in one ``AudioResampler`` to mono
    16 kHz float.

No crop, flip, normalisation or log-mel: those are the model's input pipeline, not loading; the
sampler does them and is still held against the bound (the issue's ratio). The reference loader is
written the way public audio-visual SSL projects load clips: PyAV seeks and decodes the window,
every frame in it goes to a full-size RGB numpy array, frames are picked by index, resized with
``torch.nn.functional.interpolate`` and cropped; audio is decoded after a second seek, averaged over
channels and resampled by linear interpolation in torch (cheaper than the librosa/torchaudio
resamplers those projects use). Variants per clip, interleaved clip by clip in rotating order on one
shared machine, medians over repeats of per-repeat ratios, in wall time and in the process's CPU
time (decoder threads included: clips per core when every core is busy):

  bound      the per-clip limit above
  decode     avssl ``decode_clip`` (the same output as the bound: RGB at the short side, mono 16 kHz)
  sampler    a ``ClipDataset`` item: ``decode_clip`` + crop, flip, normalise, volume jitter, log-mel
             (its time is also split by stage: decode, video tensor, audio tensor)
  sampler_device  the item a loader hands over when clips are finished on the device
             (``loader.finish_on=device``, ``data.finish``): ``decode_clip`` + the uint8 crop and
             its flip, and the waveform times its volume gain; the flip, normalisation and log-mel
             it leaves are timed apart, batched (``finish_cpu_ms_per_clip``: on this CPU; on a GPU
             they take no loading core), crisscross-paper's colour and spectrogram augmentations
             included (clip by clip there). For a chain that cannot be finished there (one that
             does not crop the uint8 clip) it is the sampler.
  reference  the public-project loader (RGB clip cropped, mono 16 kHz audio)

Sets: originals with x264's default long GOP (250, B-frames) and a 1 s GOP (30, B-frames), and the
copies ``avssl data prepare`` makes for each preset (0.5 s GOP, no B-frames, short side and rate of
the preset), whose disk size and preparation time are reported. ``--scaling`` times whole DataLoader
epochs of the sampler with 0, 1, 2 ... workers, alternated epoch by epoch.

    python benchmarks/bench_loader_bound.py --presets xdc-paper,cpu-small --out bound.json --md bound.md
    python benchmarks/bench_loader_bound.py --quick --out /tmp/q.json      # seconds; used by the tests
"""
from __future__ import annotations

import json
import math
import os
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
from torch.utils.data import DataLoader, Dataset

from bench_common import benchmark_parser, code_state, machine_info, write_outputs  # benchmarks/ is on sys.path when run as a script
from bench_loader import ensure_videos

from avssl.config import LoaderConfig, preset
from avssl.data.dataset import collate_clips
from avssl.data.pipeline import clip_spec, make_dataset, set_finishing
from avssl.data.manifest import Manifest, ManifestItem
from avssl.data.media import decode_clip
from avssl.data.prepare import PrepareTarget, prepare_dataset

VARIANTS = ("bound", "decode", "sampler", "sampler_device", "reference")
# One swscale context kept between frames and clips (``VideoFrame.reformat`` builds a new one per call);
# one thread: 8 small frames per clip do not pay for more (and a DataLoader worker has one core).
_SWS = av.video.reformatter.VideoReformatter()
CONTENT_FPS = 30.0


# ---------------------------------------------------------------------------------------- the bound


def bound_clip(path, start: float, num_frames: int, fps: float, audio_duration: float | None,
               sample_rate: int = 16000, short_side: int | None = None) -> dict:
    """The clip's unavoidable work (module docstring). Returns ``frames`` (uint8 (T, H, W, 3)),
    ``audio`` (float32 mono, or None), ``decoded_pts`` (video frame times decoded, seconds on the
    stream's axis, in output order), ``seek_to`` (seconds) and ``audio_packets_decoded``."""
    with av.open(os.fspath(path), metadata_errors="ignore") as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if (audio_duration and c.streams.audio) else None
        v.codec_context.thread_type = "AUTO"  # as avssl's decoder: both decode alike
        vtb = v.time_base
        origin = float(v.start_time * vtb) if v.start_time is not None else 0.0
        targets = [start + i / fps for i in range(num_frames)]
        t_last = targets[-1]
        seek_to = start
        a_from = a_stop = None
        if a is not None:
            ctx = a.codec_context
            overlap = ctx.frame_size / ctx.sample_rate if ctx.frame_size else 0.0
            a_from, a_stop = start - overlap, start + audio_duration
            seek_to = min(seek_to, a_from)
        if seek_to > 0:
            c.seek(math.floor((seek_to + origin) / vtb), backward=True, stream=v)
        ticks = lambda seconds, tb: math.floor((seconds + origin) / tb + 1e-6)  # noqa: E731
        last_tick = ticks(t_last, vtb)
        pending: list = []  # video packets demuxed, not yet known to be needed
        frames: list = []
        need_v, need_a = True, a is not None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate) if a is not None else None
        chunks, a_first, a_packets = [], None, 0
        a_from_tick = ticks(a_from, a.time_base) if a is not None else None

        def decode_video_upto_needed():
            last = max((i for i, p in enumerate(pending) if p.pts is not None and p.pts <= last_tick), default=-1)
            for p in pending[: last + 1]:
                frames.extend(v.codec_context.decode(p))
            frames.extend(v.codec_context.decode(None))  # drain: the frames threading holds back

        for packet in c.demux(*(s for s in (v, a) if s is not None)):
            if packet.stream is v:
                if not need_v:
                    continue
                if packet.dts is None and packet.pts is None:  # flush packet at the end
                    continue
                key = packet.dts if packet.dts is not None else packet.pts
                if key > last_tick:  # no later packet can be on display at a clip time
                    decode_video_upto_needed()
                    need_v = False
                else:
                    pending.append(packet)
            elif need_a:
                if packet.pts is None or packet.pts + (packet.duration or 0) < a_from_tick:
                    continue
                a_packets += 1
                for frame in packet.decode():
                    end = float(frame.pts * a.time_base) - origin + frame.samples / frame.sample_rate
                    if a_first is None:
                        frame, a_first = _grid_start(frame, float(frame.pts * a.time_base) - origin, sample_rate)
                    chunks.extend(x.to_ndarray().reshape(-1) for x in resampler.resample(frame) if x is not None)
                    if end >= a_stop:
                        need_a = False
            if not (need_v or need_a):
                break
        if need_v:
            decode_video_upto_needed()
        frames.sort(key=lambda f: f.pts)
        width, height = _scaled(v.codec_context.width, v.codec_context.height, short_side)
        out, converted = [], {}
        times = [float(f.pts * vtb) - origin for f in frames]
        for t in targets:
            j = max((k for k, ft in enumerate(times) if ft <= t + 1e-6), default=0)
            if j not in converted:
                converted[j] = _SWS.reformat(frames[j], width=width, height=height, format="rgb24",
                                             interpolation="BILINEAR", threads=1).to_ndarray()
            out.append(converted[j])
        audio = None
        if a is not None:
            wave = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
            first = round((start - a_first) * sample_rate)
            n = round(audio_duration * sample_rate)
            audio = np.zeros(n, np.float32)
            seg = wave[max(first, 0): max(first, 0) + n]
            audio[: seg.size] = seg
        return {"frames": np.stack(out), "audio": audio, "decoded_pts": times, "seek_to": seek_to,
                "audio_packets_decoded": a_packets}


def _grid_start(frame, t: float, rate: int):
    """Trim the first audio frame to an input sample whose time is also on the output grid, so the
    resampled samples sit exactly at k / rate (sub-sample phase matters at 44.1 -> 16 kHz); returns
    the frame and its new start time. avssl's decoder does the same (media._AudioSink._start)."""
    rate_in = frame.sample_rate
    period = rate_in // math.gcd(rate_in, rate)
    index = round(t * rate_in)
    skip = -(-index // period) * period - index
    if not skip:
        return frame, t
    array = frame.to_ndarray()
    step = 1 if frame.format.is_planar else len(frame.layout.channels)
    trimmed = av.AudioFrame.from_ndarray(np.ascontiguousarray(array[:, skip * step:]), format=frame.format.name,
                                         layout=frame.layout.name)
    trimmed.sample_rate = rate_in
    return trimmed, (index + skip) / rate_in


def _scaled(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """avssl's decode-time size (media._RGB.size)."""
    if short_side is None:
        return width, height
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


# ------------------------------------------------------------------------------------ the reference


def reference_clip(path, start: float, num_frames: int, fps: float, audio_duration: float, sample_rate: int,
                   short_side: int, crop: int, rng: np.random.Generator):
    """A clip the way public PyAV-based loaders read one (module docstring): (video (3, T, crop, crop)
    float in [0, 1], mono audio float32)."""
    with av.open(os.fspath(path)) as c:
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        end = start + num_frames / fps
        c.seek(int(start / v.time_base), stream=v)
        rgb = []
        for frame in c.decode(v):
            t = frame.time
            if t + 1 / CONTENT_FPS <= start:
                continue
            if t >= end:
                break
            rgb.append(frame.to_ndarray(format="rgb24"))
        idx = np.linspace(0, len(rgb) - 1, num_frames).round().astype(int)
        clip = torch.from_numpy(np.stack([rgb[i] for i in idx])).permute(0, 3, 1, 2).float() / 255
        h, w = clip.shape[-2:]
        size = (short_side, round(w * short_side / h)) if h <= w else (round(h * short_side / w), short_side)
        clip = F.interpolate(clip, size=size, mode="bilinear", align_corners=False)
        y = int(rng.integers(0, clip.shape[-2] - crop + 1))
        x = int(rng.integers(0, clip.shape[-1] - crop + 1))
        clip = clip[..., y: y + crop, x: x + crop].permute(1, 0, 2, 3).contiguous()
        a = c.streams.audio[0]
        c.seek(int(start / a.time_base), stream=a)
        parts, t0 = [], None
        for frame in c.decode(a):
            if frame.time + frame.samples / frame.sample_rate < start:
                continue
            if frame.time > start + audio_duration:
                break
            t0 = frame.time if t0 is None else t0
            parts.append(frame.to_ndarray().reshape(len(frame.layout.channels), -1) if frame.format.is_planar
                         else frame.to_ndarray().reshape(-1, len(frame.layout.channels)).T)
        rate_in = a.codec_context.sample_rate
        wave = torch.from_numpy(np.concatenate(parts, axis=1).mean(axis=0)).float()
        first = max(0, round((start - t0) * rate_in))
        wave = wave[first: first + round(audio_duration * rate_in)]
        wave = F.interpolate(wave[None, None], size=round(audio_duration * sample_rate), mode="linear",
                             align_corners=False)[0, 0]
        return clip, wave.numpy()


# ------------------------------------------------------------------------------------------- sets


class _PairDataset(Dataset):
    """The sampler's item for fixed (path, start) pairs (a ClipDataset item without its random start)."""

    def __init__(self, ds, pairs):
        self.ds, self.pairs = ds, pairs

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        path, start = self.pairs[i]
        return sampler_item(self.ds, path, start, i)


STAGES = ("decode", "video", "audio")


def sampler_item(ds, path: str, start: float, i: int, stages: dict | None = None) -> dict:
    """What ``ClipDataset.__getitem__`` does for a clip at ``start`` (decode, then the transforms);
    adds the seconds of each of ``STAGES`` to ``stages`` when given (decode_clip; crop, flip and
    normalisation to the float clip; volume jitter and log-mel)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng([ds.seed, ds.epoch, i])
    frames, wave = ds._decode(path, start)
    t1 = time.perf_counter()
    item = ds.window("video", frames, rng)
    t2 = time.perf_counter()
    item.update(ds.window("audio", wave, rng))
    if stages is not None:
        for k, dt in zip(STAGES, (t1 - t0, t2 - t1, time.perf_counter() - t2)):
            stages[k] = stages.get(k, 0.0) + dt
    return {**item, "index": i}


def finish_cost(finish, items: list, batch_size: int, repeats: int) -> float:
    """CPU ms per clip of finishing ``items`` (unfinished) in batches of ``batch_size`` on this CPU,
    one torch thread (median over ``repeats``): the work ``sampler_device`` leaves to the device
    (none where the preset's clips cannot be finished there: ``finish`` None)."""
    if finish is None:
        return 0.0
    batches = [collate_clips(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        for _ in range(repeats + 1):  # the first: warm-up
            c = time.process_time()
            for b in batches:
                finish(b, torch.device("cpu"))
            times.append(time.process_time() - c)
    finally:
        torch.set_num_threads(threads)
    return round(1000 * statistics.median(times[1:]) / len(items), 2)


def dir_bytes(paths) -> int:
    return sum(os.path.getsize(p) for p in paths)


def bench_preset(args, root: Path, name: str, originals: dict) -> dict:
    cfg = preset(name)
    spec = clip_spec(cfg)
    # Same (video number, start) pairs on every set: starts drawn once, on the shortest video span.
    rng = np.random.default_rng(0)
    count = len(next(iter(originals.values())))
    starts = [(j % count, float(rng.uniform(0, args.seconds - spec.duration - 0.1)))
              for j in range(count * args.clips_per_video)]
    sets = dict(originals)
    target = PrepareTarget.for_clip(name, spec)
    source_set = next(iter(originals))
    t0 = time.perf_counter()
    manifest = Manifest([ManifestItem(str(p)) for p in originals[source_set]])
    prep = prepare_dataset(manifest, root / f"prepared-{name}", target, workers=args.prepare_workers, progress=False)
    prepare_s = time.perf_counter() - t0
    sets[f"prepared ({target.short_side}p)"] = [Path(i.path) for i in Manifest.read(prep.manifest)]
    ds = make_dataset(cfg, [], spec, "train", seed=0)
    ds_device = make_dataset(cfg, [], spec, "train", seed=0)
    finish = set_finishing(ds_device, LoaderConfig(finish_on="device"), torch.device("cpu"))  # as make_loader does
    nf, fps, adur, sr, side = spec.num_frames, spec.fps, spec.audio_duration, spec.sample_rate, spec.short_side
    results = {"preset": name, "clip": f"{nf}x{cfg.video.crop}x{cfg.video.crop} at {fps:g} fps from short side {side}",
               "finished_on_device": finish is not None,
               "prepare": {"from": source_set, "files": prep.prepared + prep.kept, "wall_s": round(prepare_s, 2),
                           "newly_prepared": prep.prepared, "workers": args.prepare_workers},
               "sets": []}
    for set_name, paths in sets.items():
        pairs = [(str(paths[v]), s) for v, s in starts]
        n = len(pairs)
        decoded_frames = []
        stage_times: dict = {}  # the sampler's stages in the current repeat (reset per repeat below)
        fns = {
            "bound": lambda i: decoded_frames.append(len(bound_clip(pairs[i][0], pairs[i][1], nf, fps, adur, sr,
                                                                    side)["decoded_pts"])),
            "decode": lambda i: decode_clip(pairs[i][0], pairs[i][1], nf, fps, adur, sr, short_side=side),
            "sampler": lambda i: sampler_item(ds, pairs[i][0], pairs[i][1], i, stage_times),
            "sampler_device": lambda i: sampler_item(ds_device, pairs[i][0], pairs[i][1], i),
            "reference": lambda i: reference_clip(pairs[i][0], pairs[i][1], nf, fps, adur, sr, side, cfg.video.crop,
                                                  np.random.default_rng(i)),
        }
        for i in range(n):  # warm-up: page cache, filter graphs, allocators
            for f in fns.values():
                f(i)
        decoded_frames.clear()
        times = {k: [] for k in VARIANTS}
        cpu_times = {k: [] for k in VARIANTS}
        stages = {k: [] for k in STAGES}
        for rep in range(args.repeats):
            per = dict.fromkeys(VARIANTS, 0.0)
            per_cpu = dict.fromkeys(VARIANTS, 0.0)
            stage_times = {}
            for i in range(n):
                shift = (rep + i) % len(VARIANTS)
                order = VARIANTS[shift:] + VARIANTS[:shift]
                for k in order:
                    t, c = time.perf_counter(), time.process_time()
                    fns[k](i)
                    per[k] += time.perf_counter() - t
                    per_cpu[k] += time.process_time() - c
            for k in VARIANTS:
                times[k].append(per[k])
                cpu_times[k].append(per_cpu[k])
            for k in STAGES:
                stages[k].append(stage_times[k])
            print(f"  [{name} / {set_name}] repeat {rep + 1}: "
                  + ", ".join(f"{k} {1000 * per[k] / n:.1f}" for k in VARIANTS) + " ms/clip", flush=True)

        finish_cpu = finish_cost(finish, [sampler_item(ds_device, p, t, i) for i, (p, t) in enumerate(pairs)],
                                 args.batch_size, args.repeats)

        def ratio(num, den, times=times):  # median over repeats of clips/s(num) / clips/s(den) = time(den) / time(num)
            return round(statistics.median(times[den][r] / times[num][r] for r in range(args.repeats)), 3)

        ms = {k: round(1000 * statistics.median(times[k]) / n, 2) for k in VARIANTS}
        results["sets"].append({
            "set": set_name, "clips": n, "repeats": args.repeats, "ms_per_clip": ms,
            "clips_per_s": {k: round(1000 / v, 1) for k, v in ms.items()},
            # the sampler's time by stage (medians over repeats; they need not add up to its median)
            "sampler_stages_ms_per_clip": {k: round(1000 * statistics.median(v) / n, 2) for k, v in stages.items()},
            "bound_frames_decoded_per_clip": round(statistics.mean(decoded_frames), 1),
            "decode_over_bound": ratio("decode", "bound"),
            "sampler_over_bound": ratio("sampler", "bound"),
            "sampler_over_reference": ratio("sampler", "reference"),
            "reference_over_bound": ratio("reference", "bound"),
            # The same ratios in CPU time (the process's, decoder threads included): clips per core
            # when every core runs a worker, and much steadier than wall time on a shared machine.
            "cpu_ms_per_clip": {k: round(1000 * statistics.median(cpu_times[k]) / n, 2) for k in VARIANTS},
            "cpu_decode_over_bound": ratio("decode", "bound", cpu_times),
            "cpu_sampler_over_bound": ratio("sampler", "bound", cpu_times),
            "cpu_reference_over_bound": ratio("reference", "bound", cpu_times),
            "sampler_device_over_bound": ratio("sampler_device", "bound"),
            "cpu_sampler_device_over_bound": ratio("sampler_device", "bound", cpu_times),
            "sampler_device_over_reference": ratio("sampler_device", "reference"),
            "finish_cpu_ms_per_clip": finish_cpu,
            "disk_mb": round(dir_bytes(paths) / 1e6, 2),
        })
    if args.scaling:
        pairs = [(str(sets[k][v]), s) for k in (source_set, list(sets)[-1]) for v, s in starts[:max(4, len(starts) // 2)]]
        results["scaling"] = worker_scaling(args, ds, pairs)
        # The same epochs with clips finished batched in the main process (loader.finish_on=device on
        # this CPU): the workers send uint8 crops and waveforms, a quarter of the bytes.
        if finish is not None:
            results["scaling_finish_on_device"] = worker_scaling(args, ds_device, pairs, finish, torch.device("cpu"))
    return results


def worker_scaling(args, ds, pairs, finish=None, device=None) -> dict:
    """Clips/s of whole DataLoader epochs with each worker count, alternated epoch by epoch; with
    ``finish`` (a ``BatchFinisher``, ``ds`` handing over unfinished clips) every batch is finished on
    ``device`` as ``make_loader`` does for ``loader.finish_on=device``."""
    counts = [int(w) for w in args.scaling.split(",")]
    pin = getattr(device, "type", None) == "cuda"
    loaders = {w: DataLoader(_PairDataset(ds, pairs), batch_size=args.batch_size, num_workers=w, pin_memory=pin,
                             collate_fn=collate_clips, persistent_workers=w > 0) for w in counts}

    def epoch(w):
        for batch in loaders[w]:
            if finish is not None:
                finish(batch, device)
        if pin:
            torch.cuda.synchronize()

    for w in counts:  # first epoch: starts the workers
        epoch(w)
    times = {w: [] for w in counts}
    for rep in range(args.repeats):
        for w in (counts if rep % 2 == 0 else counts[::-1]):
            t = time.perf_counter()
            epoch(w)
            times[w].append(time.perf_counter() - t)
    base = counts[0]
    out = {"clips_per_epoch": len(pairs), "batch_size": args.batch_size,
           "clips_per_s": {str(w): round(len(pairs) / statistics.median(times[w]), 1) for w in counts},
           f"speedup_over_{base}_workers": {str(w): round(statistics.median(
               times[base][r] / times[w][r] for r in range(args.repeats)), 2) for w in counts}}
    del loaders
    return out


# ----------------------------------------------------------------------------------------- report


def markdown(results: dict) -> str:
    lines = ["| preset (clip) | files | decoded frames/clip (bound) | bound clips/s | avssl decode clips/s "
             "| sampler clips/s | reference clips/s | decode / bound | **sampler / bound** (goal >= 0.9) "
             "| **sampler / reference** | disk MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in results["presets"]:
        for s in p["sets"]:
            c = s["clips_per_s"]
            lines.append(f"| {p['preset']} ({p['clip']}) | {s['set']} | {s['bound_frames_decoded_per_clip']} | "
                         f"{c['bound']} | {c['decode']} | {c['sampler']} | {c['reference']} | "
                         f"{s['decode_over_bound']:.2f} | {s['sampler_over_bound']:.2f} | "
                         f"{s['sampler_over_reference']:.2f} | {s['disk_mb']} |")
    lines += ["", "| preset | files | bound ms/clip | sampler ms/clip | sampler: decode | crop, flip, normalise "
              "| volume, log-mel | CPU ms/clip: bound, sampler | CPU decode / bound | **CPU sampler / bound** "
              "| CPU reference / bound | CPU ms/clip: sampler_device | **CPU sampler_device / bound** "
              "| finishing left to the device, CPU ms/clip here |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in results["presets"]:
        for s in p["sets"]:
            ms, st, cpu = s["ms_per_clip"], s["sampler_stages_ms_per_clip"], s["cpu_ms_per_clip"]
            lines.append(f"| {p['preset']} | {s['set']} | {ms['bound']} | {ms['sampler']} | {st['decode']} | "
                         f"{st['video']} | {st['audio']} | {cpu['bound']}, {cpu['sampler']} | "
                         f"{s['cpu_decode_over_bound']:.2f} | {s['cpu_sampler_over_bound']:.2f} | "
                         f"{s['cpu_reference_over_bound']:.2f} | {cpu['sampler_device']} | "
                         f"{s['cpu_sampler_device_over_bound']:.2f} | {s['finish_cpu_ms_per_clip']} |")
    scaling = [p for p in results["presets"] if "scaling" in p]
    if scaling:
        counts = list(scaling[0]["scaling"]["clips_per_s"])
        lines += ["", "| preset | " + " | ".join(f"{w} workers clips/s" for w in counts) + " | speed-up |",
                  "|---|" + "---|" * (len(counts) + 1)]
        for p in scaling:
            for key, where in (("scaling", "items"), ("scaling_finish_on_device", "main process")):
                if key not in p:
                    continue
                sc = p[key]
                speed = next(v for k, v in sc.items() if k.startswith("speedup"))
                lines.append(f"| {p['preset']}, finished in the {where} | "
                             + " | ".join(str(sc["clips_per_s"][w]) for w in counts) + " | "
                             + ", ".join(f"{w}: {speed[w]}x" for w in counts) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = benchmark_parser(__doc__)
    p.add_argument("--workdir", help="keep the generated and prepared videos here and reuse them")
    p.add_argument("--presets", default="xdc-paper,cpu-small")
    p.add_argument("--resolution", default="640x360")
    p.add_argument("--gops", default="default,30", help="GOPs of the originals: 'default' (x264: 250) and/or frames")
    p.add_argument("--videos", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--clips-per-video", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--prepare-workers", type=int, default=2)
    p.add_argument("--scaling", default="", help="DataLoader worker counts to time, e.g. 0,1,2 (empty: none)")
    p.add_argument("--batch-size", type=int, default=4)
    args = p.parse_args(argv)
    if args.quick:
        args.presets, args.resolution, args.gops, args.videos, args.seconds = "cpu-tiny", "96x64", "default", 2, 2.5
        args.clips_per_video, args.repeats, args.scaling, args.batch_size = 2, 2, "0,1", 2
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)  # as in a DataLoader worker
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="avssl-bench-bound-"))
    root.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.resolution.lower().split("x"))
    results = {"benchmark": "loader_bound", "command": " ".join([Path(sys.executable).name, *sys.argv]),
               "machine": machine_info(), "load_average_at_start": os.getloadavg(),
               "code": code_state(["src/avssl/data/media/source.py", "src/avssl/data/media/video.py",
                                   "src/avssl/data/media/audio.py", "src/avssl/data/media/decode.py",
                                   "src/avssl/data/dataset.py", "src/avssl/data/transforms/geometry.py",
                                   "src/avssl/data/transforms/colour.py", "src/avssl/data/logmel.py",
                                   "src/avssl/data/finish.py", "src/avssl/data/prepare.py", "benchmarks/bench_loader_bound.py"]),
               "config": {k: v for k, v in vars(args).items() if k not in ("out", "md")}, "presets": []}
    try:
        originals = {}
        for g in args.gops.split(","):
            gop = None if g == "default" else int(g)
            paths, _ = ensure_videos(root / "videos", width, height, gop, args.videos, args.seconds, CONTENT_FPS)
            originals[f"original GOP {'250' if gop is None else gop}, B-frames"] = paths
        for name in args.presets.split(","):
            print(f"preset {name}", flush=True)
            results["presets"].append(bench_preset(args, root, name, originals))
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    results["load_average_at_end"] = os.getloadavg()
    table = markdown(results)
    results["markdown"] = table
    write_outputs(args, results, table)
    summary = {p["preset"]: {s["set"]: s["sampler_over_bound"] for s in p["sets"]} for p in results["presets"]}
    print("RESULT_JSON " + json.dumps({"benchmark": "loader_bound", "sampler_over_bound": summary}))
    return results


if __name__ == "__main__":
    main()
