"""Decode video frames and audio samples from media files into numpy arrays.

Time axis: every ``start``/``duration`` argument and every duration reported here is in seconds on
one axis shared by audio and video, whose zero is the first video frame (the first audio sample in
a file without video). Stream timestamps (including mp4 edit lists and the AAC encoder's priming
delay, which FFmpeg's demuxer and decoder account for) are converted onto that axis, so a flash at
video time t and a click at audio time t land at the same place. Audio before the first video
frame is dropped; audio that starts after it reads as silence up to its first sample.

Every problem with a file (missing, empty, not media, corrupt, truncated, missing a stream, window
past the end) raises :class:`~avssl.errors.MediaError` naming the file; bad arguments raise
``ValueError``.
"""
from __future__ import annotations

import math
import os
import stat
from collections import OrderedDict
from dataclasses import MISSING, asdict, dataclass, fields
from functools import partial
from fractions import Fraction
from typing import NamedTuple

import av
import numpy as np

from avssl.errors import ConfigError, MediaError

# Float tolerance (seconds) when comparing times computed in different ways.
_EPS = 1e-6
# How much missing audio at the end of a window is zero-padded rather than reported (about one
# video frame at 25-30 fps; covers rounding of durations and encoder padding).
AUDIO_SLACK = 0.04
# A stream whose data ends this much (or two frames) before the duration its header declares is
# truncated or corrupt; smaller shortfalls are rounding in real-world headers.
_SHORTFALL = 0.1


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` reads from a file's header. Durations are end times in seconds on the
    shared time axis; ``duration`` is the longer of the usable streams."""

    path: str
    duration: float
    has_video: bool
    has_audio: bool
    fps: float | None
    width: int | None
    height: int | None
    num_frames: int | None
    video_duration: float | None
    audio_rate: int | None
    audio_channels: int | None
    audio_duration: float | None
    # A stream of that kind is present but no decoder knows its codec (then has_video/has_audio is False).
    unsupported_video: bool = False
    unsupported_audio: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "MediaInfo":
        missing = [f.name for f in fields(cls) if f.name not in d and f.default is MISSING]
        if missing:
            raise ConfigError(f"media info is missing {', '.join(missing)}: {d!r}")
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def probe(path) -> MediaInfo:
    """Read stream properties from the header. Raises MediaError if ``path`` is missing, empty, not
    a media file, has a corrupt header, or has neither an audio nor a video stream."""
    with _Source(path) as src:
        return src.info()


def decode_video(path, start: float, num_frames: int, fps: float, short_side: int | None = None) -> np.ndarray:
    """``num_frames`` RGB frames, uint8 (num_frames, H, W, 3): frame i is the source frame on display
    at ``start + i / fps``. ``short_side`` resizes so the shorter side has that many pixels."""
    video, _ = decode_clip(path, start, num_frames, fps, 0.0, short_side=short_side, audio=False)
    return video


def decode_audio(path, start: float, duration: float, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 samples of the window [start, start + duration], ``round(duration *
    sample_rate)`` long, downmixed from any channel layout and resampled from any rate."""
    # num_frames and fps are unused with video=False.
    _, audio = decode_clip(path, start, 1, 1.0, duration, sample_rate=sample_rate, video=False)
    return audio


def decode_clip(
    path,
    start: float,
    num_frames: int,
    fps: float,
    audio_duration: float,
    sample_rate: int = 16000,
    short_side: int | None = None,
    video: bool = True,
    audio: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Video frames as in :func:`decode_video` and the audio window as in :func:`decode_audio`,
    both starting at ``start`` (the audio window begins at the clip's first frame), from one
    opening of the file and one seek. A stream not asked for comes back as ``None``.

    Video: a clip that runs past the end of the video by at most one source frame repeats the last
    frame; further is a MediaError. Audio: a window that runs past the end of the audio by at most
    ``AUDIO_SLACK`` seconds is zero-padded; further is a MediaError.
    """
    if not (video or audio):
        raise ValueError("decode_clip needs video=True, audio=True or both")
    if video:
        _check_positive(num_frames=num_frames, fps=fps)
        if short_side is not None:
            _check_positive(short_side=short_side)
    if audio:
        _check_positive(audio_duration=audio_duration, sample_rate=sample_rate)
    if not start >= 0:  # also rejects NaN
        raise MediaError(path, f"clip start must be >= 0 s, got {start}")
    start = float(start)
    with _Source(path) as src:
        src.require(video=video, audio=audio)
        make_picker = make_sink = None
        if video:
            make_picker = partial(_VideoPicker, src, start, fps, num_frames, short_side)
        if audio:
            first = round(start * sample_rate)
            stop = first + round(audio_duration * sample_rate)  # the length is round(duration * rate) exactly
            make_sink = partial(_AudioSink, src, sample_rate, first, stop)
        return _decode(src, start, make_picker, make_sink)


def decode_full(
    path,
    fps: float,
    short_side: int | None = None,
    sample_rate: int = 16000,
    video: bool = True,
    audio: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The whole file: video uint8 (N, H, W, 3) with frame i the source frame on display at i / fps,
    covering every such time before the video ends; audio float32 mono at ``sample_rate`` from
    time 0 to the end of the audio. A file whose data stops (truncated, corrupt) before the end its
    header declares raises MediaError.

    Fast path: the frame-rate conversion picks source frames before any conversion, so dropped
    frames are never touched, and each kept frame is scaled and converted to RGB in one ffmpeg
    filter-graph pass. (FFmpeg's ``fps`` filter is not used: it rounds timestamps to the nearest
    output tick, which is not the frame-on-display rule that clip decoding follows.)"""
    full = _decode_full(path, fps, short_side, sample_rate, video, audio)
    return full.video, full.audio


# ----------------------------------------------------------------------------------------------
# Internals


class _Reseek(Exception):
    """The seek landed after the data a window needs (inexact seek index): seek further back."""


def _check_positive(**values):
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def _reason(err: Exception) -> str:
    """FFmpeg's short message without errno and file name, e.g. 'Invalid data found when processing input'."""
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


class _Source:
    """An opened container, the streams avssl reads from it, and the shared time origin."""

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise MediaError(self.path, "file not found") from None
        except OSError as e:
            raise MediaError(self.path, f"cannot access file ({e.strerror})") from None
        if stat.S_ISDIR(st.st_mode):
            raise MediaError(self.path, "is a directory, not a media file")
        if st.st_size == 0:
            raise MediaError(self.path, "empty file (0 bytes)")
        self._open()
        try:
            if self.video is None and self.audio is None:
                raise MediaError(self.path, f"unsupported codec: no decoder for the file's "
                                            f"{' and '.join(sorted(self.unsupported))} stream"
                                 if self.unsupported else "no audio or video stream")
            lead = self.video or self.audio
            self.origin = float(lead.start_time * lead.time_base) if lead.start_time is not None else 0.0
            self.used = False  # whether packets were read (a fresh container needs no seek to start at 0)
        except BaseException:
            self.container.close()
            raise

    def _open(self):
        try:
            self.container = av.open(self.path, metadata_errors="ignore")
        except av.FFmpegError as e:
            raise MediaError(self.path, f"not a readable media file ({_reason(e)})") from None
        # Cover art in audio files shows up as a one-frame video stream: not video for us.
        self.video = next(
            (
                s
                for s in self.container.streams.video
                if s.codec_context is not None and not s.disposition & av.stream.Disposition.attached_pic
            ),
            None,
        )
        self.audio = next((s for s in self.container.streams.audio if s.codec_context is not None), None)
        # Streams whose codec no decoder knows (a codec FFmpeg lacks, or a damaged codec id) have no codec context.
        self.unsupported = {s.type for s in self.container.streams if s.type in ("video", "audio")
                            and s.codec_context is None and not s.disposition & av.stream.Disposition.attached_pic}
        if self.video is not None:
            self.video.codec_context.thread_type = "AUTO"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.container.close()

    def require(self, video: bool, audio: bool):
        if video and self.video is None:
            raise MediaError(self.path, "unsupported video codec (no decoder for the file's video stream)"
                             if "video" in self.unsupported else "no video stream")
        if audio and self.audio is None:
            raise MediaError(self.path, "unsupported audio codec (no decoder for the file's audio stream)"
                             if "audio" in self.unsupported else "no audio stream")

    def end_of(self, stream, precise: bool = False) -> float | None:
        """End time of ``stream`` on the shared axis, from the header. ``precise``: only from the
        stream's own duration (mp4 has it exactly), not the container's (the longest stream's,
        sometimes an estimate)."""
        if stream.duration:
            length = float(stream.duration * stream.time_base)
        elif self.container.duration and not precise:
            length = self.container.duration / av.time_base
        else:
            return None
        begin = float(stream.start_time * stream.time_base) - self.origin if stream.start_time is not None else 0.0
        return begin + length

    def declared_container_end(self) -> float | None:
        """The end of the file's data on the shared axis as its header states it, for containers whose
        header stores the exact duration but no per-stream one (Matroska/WebM, the usual format of
        downloaded datasets such as Kinetics); None for other formats, where the container duration
        may be an estimate (from the bit rate, say) and cannot tell a truncated file from a good one."""
        if "matroska" not in (self.container.format.name or "") or not self.container.duration:
            return None
        start = self.container.start_time / av.time_base if self.container.start_time is not None else 0.0
        return start + self.container.duration / av.time_base - self.origin

    def info(self) -> MediaInfo:
        v, a = self.video, self.audio
        fps = vdur = num_frames = None
        if v is not None:
            rate = v.average_rate or v.guessed_rate or v.base_rate
            fps = float(rate) if rate else None
            vdur = self.end_of(v)
            num_frames = v.frames or (round(vdur * fps) if vdur and fps else None)
        adur = self.end_of(a) if a is not None else None
        return MediaInfo(
            path=self.path,
            duration=max(d for d in (vdur, adur, 0.0) if d is not None),
            has_video=v is not None,
            has_audio=a is not None,
            fps=fps,
            width=v.codec_context.width if v is not None else None,
            height=v.codec_context.height if v is not None else None,
            num_frames=num_frames,
            video_duration=vdur,
            audio_rate=a.codec_context.sample_rate if a is not None else None,
            audio_channels=a.codec_context.channels if a is not None else None,
            audio_duration=adur,
            unsupported_video=v is None and "video" in self.unsupported,
            unsupported_audio=a is None and "audio" in self.unsupported,
        )

    def seek(self, t: float, stream):
        """Position the demuxer at the keyframe at or before shared time ``t`` (t <= 0: the start)."""
        if t <= 0:
            if self.used:
                # Seeking to the start lands late in some formats (MPEG-TS): reopen instead.
                self.container.close()
                self._open()
                self.used = False
            return
        target = math.floor((Fraction(t) + Fraction(self.origin)) / stream.time_base)
        try:
            self.container.seek(target, backward=True, stream=stream)
        except av.FFmpegError as e:
            raise MediaError(self.path, f"seek to {t:.3f} s failed ({_reason(e)})") from None

    def pump(self, consumers: dict, packet_ends: dict | None = None) -> str | None:
        """Decode the streams in ``consumers`` (stream index -> consumer) from the current position,
        handing each frame to its consumer until every consumer reports it has enough. Returns None
        when they all had enough or the file ended cleanly, else FFmpeg's reason for stopping early
        (truncated or corrupt data): frames decoded before that point have been delivered.

        ``packet_ends``: if given, also demux the audio/video streams nobody decodes and record in it
        the end time (shared axis) of the last packet of every stream, without decoding them."""
        self.used = True
        pending = dict(consumers)
        wanted = (self.video, self.audio) if packet_ends is not None else ()
        streams = [s for s in (self.video, self.audio) if s is not None and (s.index in pending or s in wanted)]
        time_bases = {s.index: _time_base(s) for s in streams}
        try:
            for packet in self.container.demux(streams):
                if packet_ends is not None and packet.pts is not None:
                    index = packet.stream.index
                    end = _seconds(packet.pts + (packet.duration or 0), time_bases[index]) - self.origin
                    packet_ends[index] = max(end, packet_ends.get(index, -math.inf))
                consumer = pending.get(packet.stream.index)
                if consumer is None:
                    continue
                for frame in packet.decode():
                    if consumer.push(frame):
                        del pending[packet.stream.index]
                        break
                if not pending:
                    break
            return None
        except av.FFmpegError as e:
            # The data stops here; drain what the decoders already hold so that everything
            # decodable up to the damage is delivered.
            for index, consumer in pending.items():
                stream = self.container.streams[index]
                try:
                    for frame in stream.codec_context.decode(None):
                        # Frames decoded without a packet carry no time base, so their duration has
                        # no unit: consumers then use the nominal frame duration.
                        frame.duration = 0
                        if consumer.push(frame):
                            break
                except av.FFmpegError:
                    pass
            return _reason(e)


def _time_base(stream) -> tuple[int, int]:
    """``stream.time_base`` as (numerator, denominator), read once per stream: PyAV builds a new
    Fraction on every access, and Fraction arithmetic per frame was a measurable cost."""
    tb = stream.time_base
    return tb.numerator, tb.denominator


def _seconds(ticks: int, time_base: tuple[int, int]) -> float:
    # Integer product, then one correctly rounded division: the same float as float(ticks * Fraction).
    return ticks * time_base[0] / time_base[1]


def _frame_time(src: _Source, frame, time_base: tuple[int, int]) -> float | None:
    """``frame``'s time on the shared axis; ``time_base`` is its stream's (see :func:`_time_base`)."""
    return None if frame.pts is None else _seconds(frame.pts, time_base) - src.origin


class _GraphCache:
    """Configured filter graphs of this process, least recently used first. Building one costs
    0.4-3.4 ms, as much as converting a clip's frames, so graphs are kept between clips and files.
    A graph is taken out while in use and put back idle (every pushed frame pulled), so a cached
    graph holds no frame and an error mid-use just drops it. A forked child (DataLoader worker)
    starts with an empty cache instead of using copies of its parent's graphs."""

    def __init__(self, size: int):
        self.size, self.pid, self.graphs = size, os.getpid(), OrderedDict()

    def take(self, key):
        if self.pid != os.getpid():
            self.pid, self.graphs = os.getpid(), OrderedDict()
        return self.graphs.pop(key, None)

    def put(self, key, graph):
        self.graphs[key] = graph
        while len(self.graphs) > self.size:
            self.graphs.popitem(last=False)


# Datasets mix a few frame sizes (Kinetics: a handful of common ones); a worker needs one graph each.
_GRAPHS = _GraphCache(16)


class _RGB:
    """Converts decoded frames to RGB, resized so the shorter side is ``short_side``, in one ffmpeg
    filter-graph pass (swscale does scaling and colour conversion together, much faster than
    resizing full-size RGB arrays afterwards)."""

    def __init__(self, short_side: int | None):
        self.short_side = short_side

    def size(self, width: int, height: int) -> tuple[int, int]:
        s = self.short_side
        if s is None:
            return width, height
        if width <= height:
            return s, max(1, round(height * s / width))
        return max(1, round(width * s / height)), s

    def _build(self, frame):
        graph = av.filter.Graph()
        # One thread: no filter or swscale threads per cached graph (their output is identical), and
        # a graph with threads cannot even be freed in a forked child, whose copy lacks the threads.
        graph.threads = 1
        source = graph.add_buffer(
            width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, 1000)
        )
        nodes = [source]
        width, height = self.size(frame.width, frame.height)
        if (width, height) != (frame.width, frame.height):
            nodes.append(graph.add("scale", f"{width}:{height}:flags=bilinear"))
        nodes += [graph.add("format", "rgb24"), graph.add("buffersink")]
        graph.link_nodes(*nodes).configure()
        return graph

    def __call__(self, frame) -> np.ndarray:
        # Everything the conversion depends on (a stream may also change size mid-way).
        key = (frame.width, frame.height, frame.format.name, frame.colorspace, frame.color_range, self.short_side)
        graph = _GRAPHS.take(key) or self._build(frame)
        graph.vpush(frame)
        rgb = graph.vpull().to_ndarray()
        _GRAPHS.put(key, graph)
        return rgb


class _VideoPicker:
    """Collects the frames on display at times ``start + i / fps``: target time t shows the last
    source frame whose timestamp is <= t. Source frames no target needs are never converted.
    ``num_frames=None`` collects every target time before the video ends (whole-file decoding)."""

    def __init__(self, src: _Source, start: float, fps: float, num_frames: int | None, short_side: int | None):
        self.src, self.stream = src, src.video
        self.time_base = _time_base(self.stream)
        self.start, self.fps, self.num_frames = start, fps, num_frames
        self.rgb = _RGB(short_side)
        self.may_reseek = False
        self.frames: list[np.ndarray] = []
        self.prev = None  # [time, duration, VideoFrame, its RGB array or None]
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.default_duration = 1 / float(rate) if rate else 1 / fps
        self.declared_end = src.end_of(self.stream, precise=True)
        # Timestamps are rounded to the stream's time base (1 ms in Matroska/WebM), so a frame
        # stamped 67 ms in 30 fps video is really at 66.67 ms: snap times within half a tick of
        # the frame-rate grid onto it, so that which frame is on display at a target time does
        # not depend on the rounding direction.
        grid_rate = self.stream.guessed_rate or self.stream.average_rate
        self.grid = float(grid_rate) if grid_rate else None
        self.half_tick = float(self.stream.time_base) / 2 + _EPS

    def _target(self, i: int) -> float:
        return self.start + i / self.fps

    def _full(self) -> bool:
        return self.num_frames is not None and len(self.frames) >= self.num_frames

    def _emit_prev_until(self, t: float):
        """Give the previous frame to every pending target time before ``t``."""
        prev = self.prev
        while not self._full() and self._target(len(self.frames)) < t - _EPS:
            if prev[3] is None:
                prev[3] = self.rgb(prev[2])
            self.frames.append(prev[3])

    def _done(self) -> bool:
        """All targets have frames, and the video is known to extend to within one frame of the
        clip's end (so ``finish`` could not fail): nothing more to decode."""
        if self.num_frames is None or len(self.frames) < self.num_frames:
            return False
        last_time, last_duration = self.prev[0], self.prev[1]
        return last_time + 2 * last_duration >= self._target(self.num_frames) - _EPS

    def push(self, frame) -> bool:
        t = _frame_time(self.src, frame, self.time_base)
        if t is None:  # no timestamp: it follows the previous frame
            t = self.prev[0] + self.prev[1] if self.prev is not None else 0.0
        elif self.grid:
            on_grid = round(t * self.grid) / self.grid
            if abs(on_grid - t) <= self.half_tick:
                t = on_grid
        duration = self.default_duration
        if frame.duration:  # in the stream's time base, as the packets it was decoded from
            duration = _seconds(frame.duration, self.time_base)
        entry = [t, duration, frame, None]
        if self.prev is None and t > self.start + _EPS:
            if self.may_reseek:
                raise _Reseek
            if t > self.start + duration + _EPS:
                raise MediaError(
                    self.src.path, f"clip starts at {self.start:.3f} s, before the first video frame at {t:.3f} s"
                )
            self.prev = entry  # less than a frame late: the first frame also stands in before it
        if self.prev is not None:
            self._emit_prev_until(t)
        self.prev = entry
        return self._done()

    def finish(self, reason: str | None) -> np.ndarray:
        """The stream ended (cleanly, or with FFmpeg's ``reason``) or the clip is complete: fill
        the remaining targets, or raise if the video is too short for them."""
        path = self.src.path
        if self.prev is None:
            if self.may_reseek:
                raise _Reseek
            raise MediaError(path, "no decodable video frames" + (f" ({reason})" if reason else ""))
        if self._done():
            return np.stack(self.frames)
        last_time, last_duration = self.prev[0], self.prev[1]
        end = last_time + last_duration
        why = _shortfall(end, self.declared_end, max(_SHORTFALL, 2 * last_duration), reason)
        if self.num_frames is None:
            if why:
                raise MediaError(path, f"video data ends at {end:.3f} s{why}")
            self._emit_prev_until(end)
        else:
            clip_end = self._target(self.num_frames)
            if clip_end > end + last_duration + _EPS:
                span = f"[{self.start:.3f}, {clip_end:.3f}]"
                raise MediaError(path, f"clip {span} s exceeds video duration {end:.3f} s{why}")
            self._emit_prev_until(math.inf)
        self.video_end, self.frame_duration = end, last_duration
        return np.stack(self.frames)


def _shortfall(end: float, declared: float | None, tolerance: float, reason: str | None) -> str:
    """Why a stream that ended at ``end`` looks truncated or corrupt ('' if it does not)."""
    why = []
    if declared is not None and end < declared - tolerance:
        why.append(f"the header declares {declared:.3f} s (truncated file?)")
    if reason:
        why.append(f"decoding stopped early: {reason}")
    return "; " + "; ".join(why) if why else ""


class _AudioSink:
    """Decoded audio, downmixed to mono and resampled to ``rate``, as output samples with global
    indices (sample k is at time k / rate). Resampling starts on an input sample whose time is
    also on the output grid, so a window decoded after a seek has the same samples as the same
    window cut from a whole-file decode."""

    def __init__(self, src: _Source, rate: int, first: int, stop: int | None):
        self.src, self.stream, self.rate = src, src.audio, rate
        self.time_base = _time_base(self.stream)
        self.first, self.stop = first, stop  # window [first, stop) in output samples; stop None: to the end
        self.lead_in = _audio_margins(self.stream)[1]
        # AAC decoders also emit the encoder's padding after the last real sample; a precise
        # stream duration in the header (mp4) says where the real audio ends.
        self.declared_end = src.end_of(self.stream, precise=True)
        self.limit = None if self.declared_end is None else round(self.declared_end * rate)
        self.may_reseek = False
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self.begin = None  # global index of the first resampled sample
        self.skipped_to = None  # end (seconds) of the audio skipped as long before the window
        self.chunks: list[np.ndarray] = []
        self.count = 0

    def _available(self) -> int:
        """Global index one past the last real sample decoded so far."""
        end = self.begin + self.count
        return end if self.limit is None else min(end, self.limit)

    def _done(self) -> bool:
        return self.stop is not None and self.begin is not None and self._available() >= self.stop

    def _add(self, frames):
        for out in frames:
            if out is not None:  # a pass-through resampler flushes as [None]
                samples = out.to_ndarray().reshape(-1)
                self.chunks.append(samples)
                self.count += samples.size

    def _start(self, frame, t: float):
        """Trim the first frame so resampling starts on a shared input/output grid point at or
        after time 0; returns the trimmed frame, or None if the whole frame lies before."""
        rate_in = frame.sample_rate
        g = math.gcd(rate_in, self.rate)
        period = rate_in // g  # input samples between points on both grids
        index = round(t * rate_in)
        aligned = -(-max(index, 0) // period) * period
        skip = aligned - index
        if skip >= frame.samples:
            return None
        self.begin = aligned // period * (self.rate // g)
        if skip:
            array = frame.to_ndarray()
            step = 1 if frame.format.is_planar else len(frame.layout.channels)
            trimmed = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(array[:, skip * step :]), format=frame.format.name, layout=frame.layout.name
            )
            trimmed.sample_rate = rate_in
            frame = trimmed
        return frame

    def _long_before(self, frame, t: float) -> bool:
        """Whether ``frame`` ends so long before the window that resampling can start after it: the
        next frame's first grid point (grid points are 1 / gcd(rates) s apart) still leaves the
        resampler the lead-in of real samples before the window, so the window's samples are the
        same. The decoder has decoded the frame anyway, so its state is unchanged."""
        grid = 1 / math.gcd(frame.sample_rate, self.rate)
        return t + frame.samples / frame.sample_rate < self.first / self.rate - self.lead_in - grid

    def push(self, frame) -> bool:
        if self.begin is None:
            t = _frame_time(self.src, frame, self.time_base)
            stamped = t is not None
            if not stamped:
                t = 0.0
            if self.may_reseek and t > self.first / self.rate - _audio_margins(self.stream)[0] + _EPS:
                raise _Reseek
            # The seek went to the video keyframe, often seconds before the window: skip converting
            # and resampling that audio.
            if stamped and self._long_before(frame, t):
                self.skipped_to = t + frame.samples / frame.sample_rate
                return False
            frame = self._start(frame, t)
            if frame is None:
                return False
        frame.pts = None  # we keep time ourselves; no timestamp-based resampler behaviour
        try:
            self._add(self.resampler.resample(frame))
        except ValueError as e:  # the stream changed rate or layout mid-way
            raise MediaError(self.src.path, f"audio format changes mid-stream ({e})") from None
        return self._done()

    def finish(self, reason: str | None) -> np.ndarray:
        """The stream ended (cleanly, or with FFmpeg's ``reason``) or the window is complete: the
        window's samples, zero-padded where the audio has not started yet or has just ended."""
        path = self.src.path
        if self.begin is None and self.skipped_to is not None:
            # All the audio ended long before the window: no samples, which the checks below report.
            self.begin = math.ceil(self.skipped_to * self.rate - _EPS)
        if self.begin is None:
            if self.may_reseek:
                raise _Reseek
            raise MediaError(path, "no decodable audio" + (f" ({reason})" if reason else ""))
        if not self._done():
            self._add(self.resampler.resample(None))
        available = self._available()
        self.audio_end = available / self.rate
        why = _shortfall(self.audio_end, self.declared_end, _SHORTFALL, reason)
        if self.stop is None:
            if why:
                raise MediaError(path, f"audio data ends at {self.audio_end:.3f} s{why}")
            stop = available
        else:
            stop = self.stop
            if (stop - available) / self.rate > AUDIO_SLACK:
                span = f"[{self.first / self.rate:.3f}, {stop / self.rate:.3f}]"
                raise MediaError(path, f"window {span} s exceeds audio duration {self.audio_end:.3f} s{why}")
        have = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        out = np.zeros(stop - self.first, np.float32)
        lo, hi = max(self.first, self.begin), min(stop, available)
        if hi > lo:
            out[lo - self.first : hi - self.first] = have[lo - self.begin : hi - self.begin]
        return out


def _audio_margins(stream) -> tuple[float, float]:
    """(needed, lead_in) in seconds. ``needed``: audio that must be decoded before a window,
    because AAC-like codecs rebuild a frame from the previous one (MDCT overlap) and the
    resampler needs some history. ``lead_in``: how far before the window to seek, one frame more
    than needed so that a seek landing exactly there still satisfies ``needed``."""
    codec = stream.codec_context
    frame = codec.frame_size / codec.sample_rate if codec.sample_rate else 0.0
    needed = frame + 0.01
    return needed, needed + max(frame, 0.01)


def _decode(src: _Source, start: float, make_picker, make_sink):
    """Decode a window starting at ``start`` with one seek (repeated further back only if the seek
    index put the demuxer after the data the window needs)."""
    back = 0.0
    while True:
        seek_to = start - back - (_audio_margins(src.audio)[1] if make_sink else 0.0)
        src.seek(seek_to, src.video if make_picker else src.audio)
        # Built after the seek, which may have reopened the container.
        picker = make_picker() if make_picker else None
        sink = make_sink() if make_sink else None
        consumers = {}
        if picker:
            consumers[src.video.index] = picker
        if sink:
            consumers[src.audio.index] = sink
        for consumer in consumers.values():
            consumer.may_reseek = seek_to > 0
        try:
            reason = src.pump(consumers)
            # Consumers that stopped early have what they need; finish() checks the others.
            return (
                picker.finish(reason) if picker else None,
                sink.finish(reason) if sink else None,
            )
        except _Reseek:
            back = max(1.0, 2 * back)


def _check_reaches_declared_end(src: _Source, picker, sink, packet_ends: dict, reason: str | None) -> None:
    """A whole-file decode of a file whose header states its duration (Matroska/WebM) but whose
    data, in every stream, stops well before it: truncated (an interrupted download, a full disk).
    Streams without a precise header duration give no per-stream check, so without this such a file
    would decode "successfully" to a shorter video."""
    declared = src.declared_container_end()
    if declared is None:
        return
    reached = [e for e in packet_ends.values() if e is not None]
    if picker is not None:
        reached.append(picker.video_end)
    if sink is not None:
        reached.append(sink.audio_end)
    if not reached:
        return
    end = max(reached)
    frame = picker.frame_duration if picker is not None else 0.0
    if end < declared - max(_SHORTFALL, 2 * frame):
        why = _shortfall(end, declared, 0.0, reason)
        raise MediaError(src.path, f"data ends at {end:.3f} s{why}")


class _FullDecode(NamedTuple):
    """A whole-file decode with the measured stream ends, which the decoded cache needs to
    reproduce the end-of-stream checks of clip decoding."""

    video: np.ndarray | None
    audio: np.ndarray | None
    video_end: float | None  # end of the last source frame, seconds
    frame_duration: float | None  # of the last source frame
    audio_end: float | None


def _decode_full(path, fps, short_side, sample_rate, video, audio) -> _FullDecode:
    if not (video or audio):
        raise ValueError("decode_full needs video=True, audio=True or both")
    _check_positive(fps=fps, sample_rate=sample_rate)
    if short_side is not None:
        _check_positive(short_side=short_side)
    with _Source(path) as src:
        src.require(video=video, audio=audio)
        consumers = {}
        picker = sink = None
        if video:
            picker = consumers[src.video.index] = _VideoPicker(src, 0.0, fps, None, short_side)
        if audio:
            sink = consumers[src.audio.index] = _AudioSink(src, sample_rate, 0, None)
        packet_ends: dict = {}
        reason = src.pump(consumers, packet_ends)
        frames = picker.finish(reason) if picker else None
        samples = sink.finish(reason) if sink else None
        _check_reaches_declared_end(src, picker, sink, packet_ends, reason)
        return _FullDecode(
            frames,
            samples,
            picker.video_end if picker else None,
            picker.frame_duration if picker else None,
            sink.audio_end if sink else None,
        )
