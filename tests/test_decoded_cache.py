"""The decoded cache: same clips as seeking and decoding, one decode per file, safe sharing."""
from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

from avssl.data.decoded_cache import DecodedCache
from avssl.data.media import decode_audio, decode_clip, decode_video
from avssl.data.writer import write_av
from avssl.errors import MediaError

FPS = 30


def _tone(rate: int, seconds: float = 3.0) -> np.ndarray:
    """Tonal audio: FFmpeg's AAC encoder still codes a few of its bands by perceptual noise
    substitution, whose decoder-side random generator makes a decode after a seek differ from a decode
    from the start: at 16 kHz only in windows starting 75-95 ms into the file (1e-5), none below; at
    44.1 kHz by 1e-7."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (220 * t + 100 * t**2)) + 0.2 * np.sin(2 * np.pi * 523 * t)).astype(np.float32)


def _video(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random 64x48 frames (random 8x6 colour grids upscaled), distinct per frame."""
    grid = np.random.default_rng(seed).integers(0, 256, (n, 6, 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(grid, 8, axis=1), 8, axis=2)


def _write(path, rate=16000, channels=1, frames=90, seed=0):
    audio = _tone(rate, frames / FPS)
    write_av(path, _video(frames, seed), FPS, np.stack([audio] * channels), rate, gop=FPS)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache_media")
    return {
        "mono16k": _write(root / "mono16k.mp4"),
        "stereo44k": _write(root / "stereo44k.mp4", rate=44100, channels=2),
    }


@pytest.mark.parametrize("name,audio_atol", [("mono16k", 0.0), ("stereo44k", 1e-3)])
def test_cached_clips_equal_decoded_clips(media, tmp_path, name, audio_atol):
    """Video: identical, since both paths decode the same source frames and scale them with the
    same filter graph. Audio: identical at 16 kHz; at 44.1 kHz noise-substituted bands (see ``_tone``)
    differ slightly after a seek from a decode from the start (resampler phase is aligned)."""
    path = media[name]
    clip = DecodedCache(tmp_path, fps=FPS, short_side=24).get(path)
    assert isinstance(clip.video, np.memmap) and not clip.video.flags.writeable
    assert clip.video.shape == (90, 24, 32, 3) and clip.audio.dtype == np.float32
    assert clip.duration == pytest.approx(3.0, abs=1e-3)
    for k in [0, 17, 45, 74, 75]:  # 75 + 16 frames runs one frame past the end: last frame repeated
        start = k / FPS
        video, audio = decode_clip(path, start, 16, FPS, 0.5, short_side=24)
        np.testing.assert_array_equal(clip.video_clip(start, 16), video)
        np.testing.assert_allclose(clip.audio_clip(start, 0.5), audio, rtol=0, atol=audio_atol)
    # Off the 1/fps grid the cache rounds the start down to the grid.
    np.testing.assert_array_equal(clip.video_clip(0.51, 4), decode_video(path, 15 / FPS, 4, FPS, short_side=24))
    # Audio windows need no grid: any start gives decode_audio's samples.
    np.testing.assert_allclose(clip.audio_clip(1.2345, 0.3), decode_audio(path, 1.2345, 0.3), rtol=0, atol=audio_atol)


def test_cached_clips_raise_like_decoding(media, tmp_path):
    path = media["mono16k"]
    clip = DecodedCache(tmp_path, fps=FPS, short_side=None).get(path)
    for read, decode in [
        (lambda: clip.video_clip(2.6, 16), lambda: decode_video(path, 2.6, 16, FPS)),
        (lambda: clip.audio_clip(2.6, 0.5), lambda: decode_audio(path, 2.6, 0.5)),
        (lambda: clip.video_clip(-0.5, 4), lambda: decode_video(path, -0.5, 4, FPS)),
    ]:
        with pytest.raises(MediaError) as cached:
            read()
        with pytest.raises(MediaError) as decoded:
            decode()
        assert str(cached.value) == str(decoded.value) and str(path) in str(cached.value)
    tail = clip.audio_clip(2.5, 0.53)  # 30 ms past the end: zero-padded, as decode_audio does
    np.testing.assert_array_equal(tail, decode_audio(path, 2.5, 0.53))
    assert np.all(tail[8000:] == 0)


def test_second_get_reads_the_entry_without_decoding(media, tmp_path):
    path = tmp_path / "src.mp4"
    path.write_bytes(media["mono16k"].read_bytes())
    first = DecodedCache(tmp_path / "cache", fps=FPS, short_side=16).get(path)
    entries = os.listdir(tmp_path / "cache")
    assert len(entries) == 1
    # Overwrite the source with garbage of the same size and mtime: the key is unchanged, so a
    # get() that decoded again would now fail.
    st = path.stat()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = DecodedCache(tmp_path / "cache", fps=FPS, short_side=16).get(path)  # a fresh instance: state is on disk
    np.testing.assert_array_equal(again.video, first.video)
    np.testing.assert_array_equal(again.audio, first.audio)
    assert os.listdir(tmp_path / "cache") == entries


def test_opened_entries_are_reused_and_bounded(media, tmp_path, monkeypatch):
    import avssl.data.decoded_cache as dc

    paths = []
    for i in range(3):
        p = tmp_path / f"src{i}.mp4"
        p.write_bytes(media["mono16k"].read_bytes())
        paths.append(p)
    cache = DecodedCache(tmp_path / "cache", fps=FPS, short_side=16)
    first = cache.get(paths[0])
    assert cache.get(paths[0]) is first  # no second read of meta.json and the .npy headers
    monkeypatch.setattr(dc, "OPENED_MAX", 2)
    cache.get(paths[1])
    cache.get(paths[2])
    assert len(cache._opened) == 2
    again = cache.get(paths[0])  # evicted (least recently used), opened anew with the same content
    assert again is not first
    np.testing.assert_array_equal(again.video, first.video)


def test_changed_source_or_settings_get_a_new_entry(media, tmp_path):
    path = tmp_path / "src.mp4"
    _write(path, frames=60, seed=1)
    cache = DecodedCache(tmp_path / "cache", fps=FPS, short_side=None)
    assert len(cache.get(path).video) == 60
    _write(path, frames=90, seed=2)
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))  # a new mtime even on coarse-clock filesystems
    changed = cache.get(path)
    assert len(changed.video) == 90
    np.testing.assert_array_equal(changed.video_clip(1.0, 4), decode_video(path, 1.0, 4, FPS))
    small = DecodedCache(tmp_path / "cache", fps=FPS, short_side=12).get(path)
    assert small.video.shape == (90, 12, 16, 3)
    assert len(os.listdir(tmp_path / "cache")) == 3


def test_decode_errors_are_cached(media, tmp_path):
    """The stored error is raised again without decoding: after the audio-only file is replaced
    by same-size, same-mtime text, a fresh decode would report a different problem."""
    path = tmp_path / "audio_only.mp4"
    write_av(path, None, audio=_tone(16000), sample_rate=16000)
    cache = DecodedCache(tmp_path / "cache", fps=FPS, short_side=16)  # wants video
    with pytest.raises(MediaError, match="no video stream") as first:
        cache.get(path)
    assert str(path) in str(first.value)
    st = path.stat()
    path.write_bytes(b"x" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(MediaError, match="no video stream") as again:
        cache.get(path)
    assert str(again.value) == str(first.value)
    (entry,) = os.listdir(tmp_path / "cache")
    assert os.listdir(tmp_path / "cache" / entry) == ["error.json"]
    with pytest.raises(MediaError, match="file not found"):  # no identity, nothing to cache
        cache.get(tmp_path / "missing.mp4")


def test_audio_only_cache_and_unfinished_entries(media, tmp_path):
    cache = DecodedCache(tmp_path, fps=FPS, short_side=None, video=False)
    # What a writer that crashed mid-way leaves behind: a temporary directory with partial files.
    key = cache.entry(media["mono16k"]).name
    crashed = tmp_path / f".{key}.crashed"
    crashed.mkdir()
    (crashed / "audio.npy").write_bytes(b"\x93NUMPY partial")
    clip = cache.get(media["mono16k"])
    assert clip.video is None and clip.audio.shape == (48000,)
    np.testing.assert_array_equal(clip.audio_clip(1.0, 0.25), decode_audio(media["mono16k"], 1.0, 0.25))
    with pytest.raises(ValueError, match="video=False"):
        clip.video_clip(0.0, 4)


def _get_checksum(root, path) -> float:
    media = DecodedCache(root, fps=FPS, short_side=16).get(path)
    return float(media.video.sum()) + float(media.audio.sum())


def test_concurrent_processes_share_one_entry(media, tmp_path):
    """Processes racing to fill the same entry all get the same data, and one entry remains."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a parent holding decoder threads
    with ctx.Pool(2) as pool:
        sums = pool.starmap(_get_checksum, [(str(tmp_path), str(media["stereo44k"]))] * 4)
    assert len(set(sums)) == 1
    assert len(os.listdir(tmp_path)) == 1  # no temporary directories left behind
    assert _get_checksum(tmp_path, media["stereo44k"]) == sums[0]
