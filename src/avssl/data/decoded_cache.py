"""Decode each media file once, then serve clips from memory-mapped arrays.

For low-resolution presets trained for many epochs, seeking and decoding every clip every epoch
costs one to two orders of magnitude more than reading it back from a decoded copy (see
shared/notes/measurements.md). An entry is ``root/<key>/`` holding ``video.npy`` (uint8, N x H x W x 3,
frame i on display at i / fps), ``audio.npy`` (float32 mono) and ``meta.json``, or ``error.json``
for a file that cannot be decoded. The key covers the file's identity (absolute path, size,
mtime) and the decode settings, so a changed file or different settings get a fresh entry; old
entries stay on disk until ``root`` is cleared.

Entries are written in a temporary directory and renamed into place, so DataLoader workers and
other processes can share one root: a reader sees a complete entry or none, a crashed writer
leaves only a ``.<key>.*`` temporary directory that is never read (safe to delete), and when two
writers race the first rename wins and the other discards its copy.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from avssl.data.media.decode import decode_full_measured
from avssl.data.media.source import AUDIO_SLACK, EPS, check_positive, check_whole_file_args
from avssl.errors import MediaError

# Part of the key: bump when what an entry holds changes, so old entries are not misread.
_LAYOUT_VERSION = 1
OPENED_MAX = 4096  # opened entries a DecodedCache keeps per process


class DecodedMedia:
    """A decoded file with the clip semantics and errors of ``decode_video`` / ``decode_audio``.

    ``video`` and ``audio`` are read-only memory maps (None for a stream the cache does not keep);
    clips are returned as fresh arrays."""

    def __init__(self, path, meta: dict, video: np.ndarray | None, audio: np.ndarray | None):
        self.path = str(path)
        self.fps: float = meta["fps"]
        self.sample_rate: int = meta["sample_rate"]
        self.duration: float = meta["duration"]
        self.video_end: float | None = meta["video_end"]  # end of the last source frame, in seconds
        self.frame_duration: float | None = meta["frame_duration"]  # of the last source frame
        self.video = video
        self.audio = audio

    def _check_start(self, start: float):
        if not start >= 0:  # also rejects NaN
            raise MediaError(self.path, f"clip start must be >= 0 s, got {start}")

    def video_clip(self, start: float, num_frames: int) -> np.ndarray:
        """Frames ``floor(start * fps) + i`` (uint8, num_frames x H x W x 3). For ``start`` on the
        1/fps grid these are exactly the frames ``decode_video`` returns; off the grid the start is
        rounded down to the grid, since source frames between grid times are not kept. Up to one
        source frame past the end repeats the last frame; further is a MediaError."""
        if self.video is None:
            raise ValueError("this cache was built with video=False")
        check_positive(num_frames=num_frames)
        self._check_start(start)
        clip_end = start + num_frames / self.fps
        if clip_end > self.video_end + self.frame_duration + EPS:
            span = f"[{start:.3f}, {clip_end:.3f}]"
            raise MediaError(self.path, f"clip {span} s exceeds video duration {self.video_end:.3f} s")
        first = math.floor((start + EPS) * self.fps)
        count = len(self.video)
        if first + num_frames <= count:
            return np.array(self.video[first : first + num_frames])
        return self.video[np.minimum(np.arange(first, first + num_frames), count - 1)]

    def audio_clip(self, start: float, duration: float) -> np.ndarray:
        """Samples ``round(start * rate)`` onwards, ``round(duration * rate)`` of them (float32), as
        ``decode_audio`` returns them; up to ``AUDIO_SLACK`` s past the end is zero-padded."""
        if self.audio is None:
            raise ValueError("this cache was built with audio=False")
        check_positive(duration=duration)
        self._check_start(start)
        rate, count = self.sample_rate, len(self.audio)
        first = round(start * rate)
        stop = first + round(duration * rate)
        if (stop - count) / rate > AUDIO_SLACK:
            span = f"[{first / rate:.3f}, {stop / rate:.3f}]"
            raise MediaError(self.path, f"window {span} s exceeds audio duration {count / rate:.3f} s")
        out = np.zeros(stop - first, np.float32)
        have = self.audio[first : min(stop, count)]
        out[: len(have)] = have
        return out


class DecodedCache:
    """Decodes each file once with ``decode_full(path, fps, short_side, sample_rate, video, audio)``
    into ``root`` and hands out memory-mapped :class:`DecodedMedia`."""

    def __init__(
        self,
        root,
        fps: float,
        short_side: int | None,
        sample_rate: int = 16000,
        video: bool = True,
        audio: bool = True,
    ):
        check_whole_file_args("DecodedCache", fps, short_side, sample_rate, video, audio)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.fps, self.short_side, self.sample_rate = float(fps), short_side, int(sample_rate)
        self.video, self.audio = bool(video), bool(audio)
        # Opened entries, so a training epoch does not re-read meta.json and the .npy headers for
        # every clip (about half of an item's time at the small presets). Bounded: each holds two
        # memory maps, and a process may only have so many.
        self._opened: OrderedDict[Path, DecodedMedia] = OrderedDict()

    def entry(self, path) -> Path:
        """The directory that holds (or will hold) ``path`` decoded with this cache's settings."""
        absolute = os.path.abspath(os.fspath(path))
        try:
            st = os.stat(absolute)
        except FileNotFoundError:
            raise MediaError(path, "file not found") from None
        except OSError as e:
            raise MediaError(path, f"cannot access file ({e.strerror})") from None
        identity = [absolute, st.st_size, st.st_mtime_ns, self.fps, self.short_side, self.sample_rate]
        identity += [self.video, self.audio, _LAYOUT_VERSION]
        return self.root / hashlib.sha1(json.dumps(identity).encode()).hexdigest()

    def get(self, path) -> DecodedMedia:
        """The decoded file, decoding it only if no entry exists. A file that failed to decode
        raises the same MediaError again, from its stored error, without decoding."""
        entry = self.entry(path)
        media = self._opened.get(entry)
        if media is not None:
            self._opened.move_to_end(entry)
            return media
        if not entry.is_dir():
            self._build(path, entry)
        error = entry / "error.json"
        if error.exists():
            raise MediaError(path, json.loads(error.read_text())["reason"])
        meta = json.loads((entry / "meta.json").read_text())
        video = np.load(entry / "video.npy", mmap_mode="r") if self.video else None
        audio = np.load(entry / "audio.npy", mmap_mode="r") if self.audio else None
        media = DecodedMedia(path, meta, video, audio)
        self._opened[entry] = media
        if len(self._opened) > OPENED_MAX:
            self._opened.popitem(last=False)
        return media

    def _build(self, path, entry: Path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=self.root))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; the entry may be shared with other users
            try:
                full = decode_full_measured(path, self.fps, self.short_side, self.sample_rate, self.video, self.audio)
            except MediaError as e:
                _write(tmp / "error.json", json.dumps({"reason": e.reason}).encode())
            else:
                if full.video is not None:
                    _write(tmp / "video.npy", full.video)
                if full.audio is not None:
                    _write(tmp / "audio.npy", full.audio)
                ends = [e for e in (full.video_end, full.audio_end) if e is not None]
                meta = {
                    "path": os.path.abspath(os.fspath(path)),
                    "fps": self.fps,
                    "sample_rate": self.sample_rate,
                    "duration": max(ends),
                    "video_end": full.video_end,
                    "frame_duration": full.frame_duration,
                }
                _write(tmp / "meta.json", json.dumps(meta, indent=1).encode())
            try:
                os.rename(tmp, entry)
            except OSError:
                if not entry.is_dir():
                    raise
                # Another worker finished the same entry first; its copy is as good as ours.
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _write(path: Path, data):
    """Write bytes or an array (as .npy) and flush it to disk, so that the entry a rename makes
    visible is complete even after a power loss."""
    with open(path, "wb") as f:
        if isinstance(data, np.ndarray):
            np.save(f, data)
        else:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
