"""The public decoders: probe a header, decode a clip's window or a whole file.

Usage::

    video, audio = decode_clip(path, start=1.0, num_frames=8, fps=25, audio_duration=1.0)
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from avssl.errors import MediaError

from .audio import AudioSink, audio_margins
from .source import SHORTFALL, MediaInfo, Reseek, Source, check_positive, check_whole_file_args, shortfall
from .video import VideoPicker

def probe(path) -> MediaInfo:
    """Read stream properties from the header. Raises MediaError if ``path`` is missing, empty, not
    a media file, has a corrupt header, or has neither an audio nor a video stream."""
    with Source(path) as src:
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
        check_positive(num_frames=num_frames, fps=fps)
        if short_side is not None:
            check_positive(short_side=short_side)
    if audio:
        check_positive(audio_duration=audio_duration, sample_rate=sample_rate)
    if not start >= 0:  # also rejects NaN
        raise MediaError(path, f"clip start must be >= 0 s, got {start}")
    start = float(start)
    with Source(path) as src:
        src.require(video=video, audio=audio)
        make_picker = make_sink = None
        if video:
            make_picker = partial(VideoPicker, src, start, fps, num_frames, short_side)
        if audio:
            first = round(start * sample_rate)
            stop = first + round(audio_duration * sample_rate)  # the length is round(duration * rate) exactly
            make_sink = partial(AudioSink, src, sample_rate, first, stop)
        return decode_window(src, start, make_picker, make_sink)


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
    full = decode_full_measured(path, fps, short_side, sample_rate, video, audio)
    return full.video, full.audio


def decode_window(src: Source, start: float, make_picker, make_sink):
    """Decode a window starting at ``start`` with one seek (repeated further back only if the seek
    index put the demuxer after the data the window needs)."""
    back = 0.0
    while True:
        seek_to = start - back - (audio_margins(src.audio)[1] if make_sink else 0.0)
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
        except Reseek:
            back = max(1.0, 2 * back)


def check_reaches_declared_end(src: Source, picker, sink, packet_ends: dict, reason: str | None) -> None:
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
    if end < declared - max(SHORTFALL, 2 * frame):
        why = shortfall(end, declared, 0.0, reason)
        raise MediaError(src.path, f"data ends at {end:.3f} s{why}")


class FullDecode(NamedTuple):
    """A whole-file decode with the measured stream ends, which the decoded cache needs to
    reproduce the end-of-stream checks of clip decoding."""

    video: np.ndarray | None
    audio: np.ndarray | None
    video_end: float | None  # end of the last source frame, seconds
    frame_duration: float | None  # of the last source frame
    audio_end: float | None


def decode_full_measured(path, fps, short_side, sample_rate, video, audio) -> FullDecode:
    check_whole_file_args("decode_full", fps, short_side, sample_rate, video, audio)
    with Source(path) as src:
        src.require(video=video, audio=audio)
        consumers = {}
        picker = sink = None
        if video:
            picker = consumers[src.video.index] = VideoPicker(src, 0.0, fps, None, short_side)
        if audio:
            sink = consumers[src.audio.index] = AudioSink(src, sample_rate, 0, None)
        packet_ends: dict = {}
        reason = src.pump(consumers, packet_ends)
        frames = picker.finish(reason) if picker else None
        samples = sink.finish(reason) if sink else None
        check_reaches_declared_end(src, picker, sink, packet_ends, reason)
        return FullDecode(
            frames,
            samples,
            picker.video_end if picker else None,
            picker.frame_duration if picker else None,
            sink.audio_end if sink else None,
        )
