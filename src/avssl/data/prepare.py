"""A training-ready copy of a dataset: every file re-encoded for the clip decoder, and a manifest that traces back.

    avssl data prepare k400.csv --out /data/k400-xdc --preset xdc-paper --workers 16
    from avssl.cli.data import prepare_target
    from avssl.data.prepare import prepare_dataset
    result = prepare_dataset(load_manifest("k400.csv"), "/data/k400-xdc", prepare_target("xdc-paper"))

Each file becomes an mp4 with H.264 video at the preset's short side (never upscaled) and frame rate
(never raised), a keyframe every ``keyframe_interval`` seconds and no B-frames (a clip decodes at most
that much video before its first frame, in display order), and mono AAC audio at the preset's sample
rate, audio and video interleaved frame by frame (one contiguous read per clip). Frame i of the copy
is the source frame on display at i / fps and audio sample k the source's at k / rate, on the shared
time axis of :mod:`avssl.data.media`, so a clip of the copy is the clip of the original (up to the
re-encoding) and stays in sync.

Resumable: each file carries, in its mp4 ``comment`` tag, the settings and the source's size and
mtime it was made from; a later run keeps every file whose tag matches. Files are written to a
temporary name and renamed, so an interrupted run leaves no half-written copy. Unreadable files and
files shorter than the preset's clip are skipped, logged and counted (``skipped.json``), never fatal.
The new manifest (``manifest.csv``) has the source's columns, paths pointing to the copies and the
original path in ``source_path``.
"""
from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import sys
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from avssl.errors import ConfigError, MediaError

log = logging.getLogger("avssl.data")

# Bump when the copies change for the same settings, so that a resumed run redoes older ones.
PREPARE_VERSION = 1
SOURCE_COLUMN = "source_path"
MANIFEST_NAME = "manifest.csv"
SKIPPED_NAME = "skipped.json"
# A copy whose video or audio ends this much before the source's does is reported, not kept silently.
_EPS = 1e-6


@dataclass(frozen=True)
class PrepareTarget:
    """What a copy looks like: ``short_side`` (None: the source's), ``fps`` (upper bound: a source with
    a lower rate keeps it), mono audio at ``sample_rate``, a keyframe every ``keyframe_interval`` seconds,
    x264 ``crf``; files shorter than ``min_duration`` (the preset's clip) are skipped."""

    preset: str
    short_side: int | None
    fps: float
    sample_rate: int = 16000
    keyframe_interval: float = 0.5
    min_duration: float = 0.0
    crf: int = 23

    def __post_init__(self):
        if self.short_side is not None and self.short_side < 2:
            raise ConfigError(f"short side must be at least 2 pixels, got {self.short_side}")
        if not (self.fps > 0 and self.sample_rate > 0 and self.keyframe_interval > 0):
            raise ConfigError("fps, sample rate and keyframe interval must be positive")
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"crf must be in 0..51, got {self.crf}")

    @classmethod
    def for_clip(cls, preset: str, spec, keyframe_interval: float = 0.5, crf: int = 23) -> "PrepareTarget":
        """The copy that clips of ``spec`` (a :class:`~avssl.data.pipeline.ClipSpec`) want: its short side,
        fps and sample rate, and its clip duration as the shortest usable file. ``preset`` only names it;
        looking a preset up is the caller's (``avssl.cli.data.prepare_target``)."""
        return cls(preset=preset, short_side=spec.short_side, fps=spec.fps, sample_rate=spec.sample_rate,
                   keyframe_interval=keyframe_interval, min_duration=spec.duration, crf=crf)

    def stamp(self, source: str) -> str:
        """The tag a copy of ``source`` made with these settings carries (source size and mtime included)."""
        st = os.stat(source)
        settings = {k: v for k, v in asdict(self).items() if k not in ("preset", "min_duration")}
        return json.dumps({"avssl_prepare": PREPARE_VERSION, **settings, "source_size": st.st_size,
                           "source_mtime_ns": st.st_mtime_ns}, sort_keys=True, separators=(",", ":"))


def default_preset(manifest) -> str:
    """The preset a manifest is meant for when ``--preset`` is not given: ``demo`` for a generated demo
    world (its folder holds the generator's marker), else ``xdc-paper`` (real datasets)."""
    from avssl.data.demo_world import COMPLETE_MARKER

    source = manifest.source
    if source is not None:
        folder = source if os.path.isdir(source) else os.path.dirname(source)
        if os.path.exists(os.path.join(folder, COMPLETE_MARKER)):
            return "demo"
    return "xdc-paper"


@dataclass
class PrepareResult:
    """What a run did: ``manifest`` (the new CSV's path), counts, the skip report and sizes in bytes."""

    manifest: str | None
    prepared: int
    kept: int
    skipped: "SkipReport"  # noqa: F821 - avssl.data.dataset.SkipReport, imported lazily
    source_bytes: int
    output_bytes: int

    def summary(self) -> str:
        ratio = f" ({self.output_bytes / self.source_bytes:.2f}x the source)" if self.source_bytes else ""
        return (f"{self.prepared} file(s) prepared, {self.kept} already prepared and kept, "
                f"{len(self.skipped)} skipped; copies {self.output_bytes / 1e6:.1f} MB{ratio}")


# ----------------------------------------------------------------------------------------- the run


def prepare_dataset(manifest, out_dir, target: PrepareTarget, workers: int | None = None,
                    progress: bool = True, probe_cache=None) -> PrepareResult:
    """Write the copies of ``manifest``'s files under ``out_dir`` (mirroring their folders below the
    files' common folder), ``out_dir/manifest.csv`` and ``out_dir/skipped.json``. ``workers``
    processes encode in parallel (default: every usable core). Files whose copy is already there with
    matching settings are kept. Returns a :class:`PrepareResult`; the skipped files are also logged."""
    from avssl.data.dataset import SkipReport
    from avssl.data.manifest import Manifest, ManifestItem
    from avssl.data.probe_index import _cpu_count, probe_manifest
    from avssl.io import atomic_write_text
    from avssl.progress import progress as progress_bar

    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    workers = workers or _cpu_count()
    out_dir = Path(os.path.abspath(os.fspath(out_dir)))
    out_dir.mkdir(parents=True, exist_ok=True)
    index = probe_manifest(manifest, cache_path=probe_cache, workers=workers, progress=progress)
    outputs = output_paths([item.path for item in manifest], out_dir)
    if any(os.path.abspath(item.path) == outputs[item.path] for item in manifest):
        raise ConfigError(f"--out {out_dir} would overwrite the source files: choose another folder")

    report = SkipReport()
    tasks, plans, seen = [], {}, set()  # plans: source path -> output path, for the files to copy
    for item in manifest:
        if item.path in seen:  # a file listed twice is done once
            continue
        seen.add(item.path)
        reason = _unusable(index, item.path, target)
        if reason is not None:
            report.add(item.path, reason)
            continue
        plans[item.path] = outputs[item.path]
    threads = max(1, _cpu_count() // workers)
    for source, output in plans.items():
        tasks.append((source, output, target, index.infos[source], threads))

    done: dict[str, str] = {}  # source -> "prepared" | "kept"
    with progress_bar(total=len(tasks), desc=f"preparing ({target.preset})", unit="file", enabled=progress) as bar:
        for source, outcome in _run(tasks, workers):
            if outcome in ("prepared", "kept"):
                done[source] = outcome
            else:
                report.add(source, outcome)
            bar.update()

    items = []
    for item in manifest:
        if item.path not in done:
            continue
        meta = dict(item.meta)
        meta.setdefault(SOURCE_COLUMN, item.path)  # a copy of a copy keeps the first original
        items.append(ManifestItem(plans[item.path], item.label, item.split, meta))
    manifest_path = None
    if items:
        manifest_path = str(out_dir / MANIFEST_NAME)
        Manifest(items, manifest_path).write(manifest_path)
    atomic_write_text(out_dir / SKIPPED_NAME, json.dumps(
        {"preset": target.preset, "target": asdict(target), **report.to_dict()}, indent=1, ensure_ascii=True))
    if report:
        log.warning("%s:\n%s", report.summary(), report.details())
    if not items:
        raise MediaError(manifest.source or "manifest", f"no file could be prepared ({report.summary()}); "
                                                       f"details in {out_dir / SKIPPED_NAME}")
    return PrepareResult(
        manifest=manifest_path,
        prepared=sum(v == "prepared" for v in done.values()),
        kept=sum(v == "kept" for v in done.values()),
        skipped=report,
        source_bytes=sum(_size(s) for s in done),
        output_bytes=sum(_size(plans[s]) for s in done),
    )


def output_paths(sources: list[str], out_dir) -> dict[str, str]:
    """Where each source's copy goes: its path below the sources' common folder, under ``out_dir``,
    with the suffix ``.mp4`` (``name.ext.mp4`` where two sources would otherwise meet)."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    sources = list(dict.fromkeys(os.path.abspath(s) for s in sources))
    if not sources:
        return {}
    root = os.path.commonpath([os.path.dirname(s) for s in sources])
    planned = {s: os.path.splitext(os.path.relpath(s, root))[0] + ".mp4" for s in sources}
    taken: dict[str, int] = {}
    for rel in planned.values():
        taken[rel] = taken.get(rel, 0) + 1
    return {s: os.path.join(out_dir, rel if taken[rel] == 1 else os.path.relpath(s, root) + ".mp4")
            for s, rel in planned.items()}


def _unusable(index, path: str, target: PrepareTarget) -> str | None:
    """Why ``path`` cannot be prepared (from the probe index), or None."""
    if path in index.errors:
        return f"unreadable: {index.errors[path]}"
    info = index.infos.get(path)
    if info is None:
        return "unreadable: not probed"
    if not (info.has_video or info.has_audio):
        return "no decodable audio or video stream"
    durations = [d for d in (info.video_duration if info.has_video else None,
                             info.audio_duration if info.has_audio else None, info.duration) if d]
    usable = min(durations) if durations else 0.0
    if usable + _EPS < target.min_duration:
        return f"shorter than a clip ({usable:.2f} s < {target.min_duration:.2f} s)"
    return None


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _pool_context():
    """fork on Linux (no re-run of the caller's script; the workers use only PyAV and numpy), else spawn."""
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _run(tasks: list, workers: int):
    """(source, "prepared" | "kept" | skip reason) for every task, by ``workers`` processes."""
    if workers <= 1 or len(tasks) < 2:
        yield from map(_prepare_task, tasks)
        return
    with _pool_context().Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap_unordered(_prepare_task, tasks)


def _prepare_task(task) -> tuple[str, str]:
    source, output, target, info, threads = task
    try:
        stamp = target.stamp(source)
        if is_prepared(output, stamp):
            return source, "kept"
        prepare_file(source, output, target, info, threads=threads, stamp=stamp)
        return source, "prepared"
    except MediaError as e:
        return source, e.reason
    except OSError as e:  # the source vanished or cannot be read between probing and now
        return source, f"cannot read file ({e.strerror or e})"


def is_prepared(output, stamp: str) -> bool:
    """Whether ``output`` is a complete copy tagged with ``stamp`` (opened, not decoded)."""
    import av

    if not os.path.isfile(output):
        return False
    try:
        with av.open(os.fspath(output), metadata_errors="ignore") as c:
            return c.metadata.get("comment") == stamp
    except av.FFmpegError:
        return False


# ------------------------------------------------------------------------------------- one file


def output_geometry(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """The copy's frame size: short side ``short_side`` (never larger than the source's), the long side
    scaled alike, both rounded to even numbers (H.264 in yuv420p needs them)."""
    def even(x: float) -> int:
        return max(2, 2 * round(x / 2))

    if short_side is None or min(width, height) <= short_side:
        return even(width), even(height)
    if width <= height:
        return even(short_side), even(height * short_side / width)
    return even(width * short_side / height), even(short_side)


def prepare_file(source, output, target: PrepareTarget, info=None, threads: int = 1, stamp: str | None = None):
    """Write the copy of ``source`` at ``output`` (atomically). Raises MediaError when the source
    cannot be decoded to its end."""
    import av

    from avssl.data.media import decode_full, probe

    source, output = os.fspath(source), Path(output)
    info = info or probe(source)
    stamp = stamp or target.stamp(source)
    fps = min(target.fps, info.fps) if (info.has_video and info.fps) else target.fps
    fps = Fraction(fps).limit_denominator(1001)
    audio = None
    if info.has_audio:
        _, audio = decode_full(source, float(fps), sample_rate=target.sample_rate, video=False, audio=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp.mp4")
    try:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            out.metadata["comment"] = stamp
            muxer = _Muxer(out, target, audio, threads)
            if info.has_video:
                width, height = output_geometry(info.width, info.height, target.short_side)
                muxer.add_video(width, height, fps)
                _copy_video(source, muxer, float(fps), info.video_duration)
            muxer.finish()
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return output


class _Muxer:
    """The output container: video frames as they come, audio chunks interleaved up to the video's time."""

    def __init__(self, out, target: PrepareTarget, audio, threads: int):
        import av

        self.av, self.out, self.target, self.threads = av, out, target, threads
        self.video = None
        self.sws = av.video.reformatter.VideoReformatter()  # one swscale context for the file, not one per frame
        self.audio, self.audio_pos = audio, 0
        self.astream = None
        if audio is not None:
            self.astream = out.add_stream("aac", rate=target.sample_rate)
            self.astream.layout = "mono"
            # No perceptual noise substitution: it replaces noisy bands by synthetic noise, a different
            # waveform from the source's.
            self.astream.options = {"aac_pns": "0"}

    def add_video(self, width: int, height: int, fps: Fraction):
        v = self.out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        gop = max(1, round(self.target.keyframe_interval * float(fps)))
        # bf=0: no B-frames, so decode order is display order and a clip's frames need no later ones;
        # sc_threshold=0 and keyint_min=g: keyframes exactly every g frames (seek cost is bounded).
        v.options = {"crf": str(self.target.crf), "preset": "veryfast", "g": str(gop), "keyint_min": str(gop),
                     "sc_threshold": "0", "bf": "0", "threads": str(self.threads)}
        self.video, self.fps = v, fps

    def frame(self, frame, index: int):
        """Encode ``frame`` (any format/size) as output frame ``index``, then the audio up to its end."""
        v = self.video
        out = self.sws.reformat(frame, width=v.width, height=v.height, format="yuv420p", interpolation="BILINEAR",
                                threads=1)
        out.pts, out.time_base = index, 1 / self.fps
        out.pict_type = self.av.video.frame.PictureType.NONE
        for packet in v.encode(out):
            self.out.mux(packet)
        self._audio_until((index + 1) / self.fps)

    def _audio_until(self, t) -> None:
        """Encode the audio up to time ``t`` (None: all of it) in whole AAC frames, the rest at the end."""
        if self.astream is None:
            return
        chunk = 1024  # AAC's frame size
        stop = len(self.audio) if t is None else min(len(self.audio), math.ceil(t * self.target.sample_rate))
        while self.audio_pos < stop and (t is None or self.audio_pos + chunk <= stop):
            part = self.audio[self.audio_pos : self.audio_pos + chunk]
            frame = self.av.AudioFrame.from_ndarray(part.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate, frame.pts = self.target.sample_rate, self.audio_pos
            for packet in self.astream.encode(frame):
                self.out.mux(packet)
            self.audio_pos += part.size

    def finish(self):
        if self.video is not None:
            for packet in self.video.encode():
                self.out.mux(packet)
        self._audio_until(None)
        if self.astream is not None:
            for packet in self.astream.encode():
                self.out.mux(packet)


def _copy_video(source: str, muxer: _Muxer, fps: float, declared_end: float | None) -> None:
    """Feed ``muxer`` output frame i = the source frame on display at i / fps (shared time axis: zero is
    the first video frame, as in :mod:`avssl.data.media`), for every i before the video's end. Video
    data that stops well before ``declared_end`` (the header's duration) is a MediaError (truncated)."""
    import av

    try:
        container = av.open(source, metadata_errors="ignore")
    except av.FFmpegError as e:
        raise MediaError(source, f"not a readable media file ({e})") from None
    with container:
        stream = next(s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic)
        stream.codec_context.thread_type = "AUTO"
        tb = stream.time_base
        origin = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        rate = stream.guessed_rate or stream.average_rate
        grid = float(rate) if rate else None
        half_tick = float(tb) / 2 + _EPS
        nominal = 1 / float(rate) if rate else 1 / fps
        prev = None  # (frame, time, duration)
        index = 0
        try:
            for frame in container.decode(stream):
                t = (float(frame.pts * tb) - origin) if frame.pts is not None else (
                    prev[1] + prev[2] if prev else 0.0)
                if grid and frame.pts is not None:
                    on_grid = round(t * grid) / grid
                    if abs(on_grid - t) <= half_tick:
                        t = on_grid
                duration = float(frame.duration * tb) if frame.duration else nominal
                if prev is None:
                    prev = (frame, min(t, 0.0), duration)  # the first frame also stands in before itself
                while index / fps < t - _EPS:
                    muxer.frame(prev[0], index)
                    index += 1
                prev = (frame, t, duration)
        except av.FFmpegError as e:
            raise MediaError(source, f"video decoding stopped early ({getattr(e, 'strerror', None) or e})") from None
        if prev is None:
            raise MediaError(source, "no decodable video frames")
        end = prev[1] + prev[2]
        if declared_end is not None and end < declared_end - max(0.1, 2 * prev[2]):
            raise MediaError(source, f"video data ends at {end:.3f} s, the header declares {declared_end:.3f} s "
                                     f"(truncated file?)")
        while index / fps < end - _EPS:
            muxer.frame(prev[0], index)
            index += 1


__all__ = ["PrepareTarget", "PrepareResult", "prepare_dataset", "prepare_file", "default_preset",
           "output_paths", "output_geometry", "is_prepared", "SOURCE_COLUMN"]
