"""Write real media files (H.264 video + AAC audio by default) with PyAV.

Used by the demo-world generator, the benchmarks and the tests, which all need genuine media files
rather than tensors pretending to be decoded video.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def write_av(
    path,
    video: np.ndarray | None = None,
    fps: float = 30.0,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    gop: int | None = None,
    crf: int = 23,
    audio_codec: str = "aac",
) -> Path:
    """Encode ``video`` (uint8, T x H x W x 3, RGB) and/or ``audio`` (float32 in [-1, 1], shape (n,)
    or (channels, n)) into one container at ``path``. Either stream may be omitted. The container
    follows the suffix (.mp4/.m4v/.mov: mp4; else FFmpeg's guess: .mkv Matroska, .webm WebM, which
    takes no H.264, so audio only). ``audio_codec``: an FFmpeg encoder, e.g. "libopus" (48 kHz and
    other Opus rates only) or "vorbis" (FFmpeg's own, experimental, encoder) for downloads-like files.

    ``gop`` sets the keyframe interval (``None``: the encoder's default), which matters for seek cost.
    The file is written to a temporary name and renamed, so a crash never leaves a half-written file.
    """
    path = Path(path)
    if video is None and audio is None:
        raise ValueError("write_av needs video, audio or both")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    fmt = "mp4" if path.suffix.lower() in (".mp4", ".m4v", ".mov") else None
    container = av.open(str(tmp), "w", format=fmt)
    try:
        vstream = astream = None
        if video is not None:
            video = np.asarray(video)
            if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
                raise ValueError(f"video must be uint8 (T, H, W, 3), got {video.dtype} {video.shape}")
            if video.shape[1] % 2 or video.shape[2] % 2:
                raise ValueError(f"H.264 with yuv420p needs even frame sizes, got {video.shape[2]}x{video.shape[1]}")
            vstream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            vstream.width, vstream.height = int(video.shape[2]), int(video.shape[1])
            vstream.pix_fmt = "yuv420p"
            # mbtree=0: x264's macroblock-tree rate control is not deterministic between runs, and the
            # demo world and the tests need the same frames to encode to the same file.
            opts = {"crf": str(crf), "preset": "veryfast", "x264-params": "mbtree=0"}
            if gop is not None:
                opts.update({"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"})
            vstream.options = opts
        if audio is not None:
            audio = np.asarray(audio, dtype=np.float32)
            if audio.ndim == 1:
                audio = audio[None]
            if audio.shape[0] not in _LAYOUTS:
                raise ValueError(f"audio must have 1, 2 or 6 channels, got {audio.shape[0]}")
            astream = container.add_stream(audio_codec, rate=int(sample_rate))
            astream.layout = _LAYOUTS[audio.shape[0]]
            if astream.codec_context.codec.experimental:
                astream.codec_context.options = {"strict": "experimental"}
        if vstream is not None:
            for frame in video:
                for packet in vstream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in vstream.encode():
                container.mux(packet)
        if astream is not None:
            chunk = 1024  # AAC's frame size (PyAV re-chunks for encoders with another one)
            audio = np.clip(audio, -1.0, 1.0)
            for start in range(0, audio.shape[1], chunk):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(audio[:, start : start + chunk]), format="fltp", layout=astream.layout.name
                )
                frame.sample_rate = int(sample_rate)
                frame.pts = start
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    except BaseException:
        container.close()
        tmp.unlink(missing_ok=True)
        raise
    container.close()
    os.replace(tmp, path)
    return path
