"""An opened media file: its streams, the shared time axis and what its header says.

:class:`Source` opens a container, picks the audio and video streams avssl reads, converts stream
timestamps onto the shared axis (zero at the first video frame) and demuxes/decodes packets into
consumers (:class:`~avssl.data.media.video.VideoPicker`, :class:`~avssl.data.media.audio.AudioSink`).

Usage::

    with Source(path) as src:
        info = src.info()
"""
from __future__ import annotations

import math
import os
import stat
from dataclasses import MISSING, asdict, dataclass, fields
from fractions import Fraction

import av

from avssl.errors import ConfigError, MediaError

# Float tolerance (seconds) when comparing times computed in different ways.
EPS = 1e-6
# How much missing audio at the end of a window is zero-padded rather than reported (about one
# video frame at 25-30 fps; covers rounding of durations and encoder padding).
AUDIO_SLACK = 0.04
# A stream whose data ends this much (or two frames) before the duration its header declares is
# truncated or corrupt; smaller shortfalls are rounding in real-world headers.
SHORTFALL = 0.1


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


class Reseek(Exception):
    """The seek landed after the data a window needs (inexact seek index): seek further back."""


def check_positive(**values):
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def check_whole_file_args(what: str, fps, short_side, sample_rate, video: bool, audio: bool) -> None:
    """The arguments of a whole-file decode (``decode_full``, the decoded cache); ``what`` names the caller."""
    if not (video or audio):
        raise ValueError(f"{what} needs video=True, audio=True or both")
    check_positive(fps=fps, sample_rate=sample_rate)
    if short_side is not None:
        check_positive(short_side=short_side)


def reason_of(err: Exception) -> str:
    """FFmpeg's short message without errno and file name, e.g. 'Invalid data found when processing input'."""
    return getattr(err, "strerror", None) or str(err) or type(err).__name__

class Source:
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
            raise MediaError(self.path, f"not a readable media file ({reason_of(e)})") from None
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
            raise MediaError(self.path, f"seek to {t:.3f} s failed ({reason_of(e)})") from None

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
        time_bases = {s.index: time_base_of(s) for s in streams}
        # A consumer's ``last_tick`` (packet timestamps, its stream's time base): no frame stamped
        # after it is needed. Packets come in decode order (rising dts) and a frame's pts >= its
        # packet's dts, so once a packet's dts passes that tick every needed frame is in the
        # packets sent before: drain the decoder instead of decoding on until the frames threading
        # and B-frame reordering hold back come out (3-4 more frames per clip).
        limits = {i: getattr(c, "last_tick", None) for i, c in pending.items()}
        sent = set()  # streams whose decoder has had a packet (draining an empty one gains nothing)
        # Packets stamped after ``last_tick`` (a B-frame stream's P-frames, sent ahead of the B-frames
        # shown before them) are held back until a packet that may be needed follows: then they are
        # references for it and are sent first, in order; if the stream passes ``last_tick`` first,
        # nothing decoded later can refer to them and they are dropped undecoded. (A frame refers
        # only to frames decoded before it.) Sent anyway, they decoded 0.6-1.3 frames more per clip
        # than needed, whose output lay after every target time.
        held: dict = {}
        try:
            for packet in self.container.demux(streams):
                index = packet.stream.index
                if packet_ends is not None and packet.pts is not None:
                    end = seconds(packet.pts + (packet.duration or 0), time_bases[index]) - self.origin
                    packet_ends[index] = max(end, packet_ends.get(index, -math.inf))
                consumer = pending.get(index)
                if consumer is None:
                    continue
                limit = limits[index]
                if limit is not None and index in sent and packet.dts is not None and packet.dts > limit:
                    held.pop(index, None)
                    for frame in packet.stream.codec_context.decode(None):
                        frame.duration = 0  # as in the drain below: no time base, no unit
                        if consumer.push(frame):
                            break
                    consumer.past_needed()
                    del pending[index]
                    if not pending:
                        break
                    continue
                if (limit is not None and index in sent and packet.dts is not None and packet.pts is not None
                        and packet.pts > limit):  # a dts: one past ``limit`` ends the holding (above)
                    held.setdefault(index, []).append(packet)
                    continue
                sent.add(index)
                if self._send(held.pop(index, ()), consumer) or self._send((packet,), consumer):
                    del pending[index]
                if not pending:
                    break
            # The file ended with packets held: send them, as if they had not been held.
            while held:
                index, packets = held.popitem()
                if index in pending and self._send(packets, pending[index]):
                    del pending[index]
            return None
        except av.FFmpegError as e:
            # The data stops here; drain what the decoders already hold (held packets sent first) so
            # that everything decodable up to the damage is delivered.
            for index, consumer in pending.items():
                try:
                    if self._send(held.get(index, ()), consumer):
                        continue
                except av.FFmpegError:
                    pass
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
            return reason_of(e)

    @staticmethod
    def _send(packets, consumer) -> bool:
        """Decode ``packets`` in order, handing the frames to ``consumer``; True once it has enough."""
        for packet in packets:
            for frame in packet.decode():
                if consumer.push(frame):
                    return True
        return False


def time_base_of(stream) -> tuple[int, int]:
    """``stream.time_base`` as (numerator, denominator), read once per stream: PyAV builds a new
    Fraction on every access, and Fraction arithmetic per frame was a measurable cost."""
    tb = stream.time_base
    return tb.numerator, tb.denominator


def seconds(ticks: int, time_base: tuple[int, int]) -> float:
    # Integer product, then one correctly rounded division: the same float as float(ticks * Fraction).
    return ticks * time_base[0] / time_base[1]


def frame_time(src: Source, frame, time_base: tuple[int, int]) -> float | None:
    """``frame``'s time on the shared axis; ``time_base`` is its stream's (see :func:`time_base_of`)."""
    return None if frame.pts is None else seconds(frame.pts, time_base) - src.origin


def shortfall(end: float, declared: float | None, tolerance: float, reason: str | None) -> str:
    """Why a stream that ended at ``end`` looks truncated or corrupt ('' if it does not)."""
    why = []
    if declared is not None and end < declared - tolerance:
        why.append(f"the header declares {declared:.3f} s (truncated file?)")
    if reason:
        why.append(f"decoding stopped early: {reason}")
    return "; " + "; ".join(why) if why else ""
