"""Decoding real H.264/AAC files: frame picking, audio/video sync, errors for bad files."""
from __future__ import annotations

import math
import os
import time
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from avssl.data.media import audio as media_audio, source as media_source, video as media_video
from avssl.data.media import (
    AUDIO_SLACK,
    MediaInfo,
    decode_audio,
    decode_clip,
    decode_full,
    decode_video,
    probe,
)
from avssl.data.writer import write_av
from avssl.errors import ConfigError, MediaError

FPS = 30
SECONDS = 3
FLASHES = [10, 37, 55, 80]  # frame indices that are white; each has a click at the same time
CLICK = 0.005  # click length in seconds; its peak is at its centre


def _click(rate: int) -> np.ndarray:
    n = int(CLICK * rate)
    return (0.9 * np.hanning(n) * np.sin(2 * np.pi * 1000 * np.arange(n) / rate)).astype(np.float32)


def _tone(rate: int, seconds: float = SECONDS) -> np.ndarray:
    """Tonal audio: AAC codes it without perceptual noise substitution, whose decoder-side random
    generator would make a decode after a seek differ from a decode from the start."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (220 * t + 100 * t**2)) + 0.2 * np.sin(2 * np.pi * 523 * t)).astype(np.float32)


def _index_video(n: int) -> np.ndarray:
    """32x32 frames showing their index in binary (a 4x4 grid of black/white 8x8 blocks), which
    survives compression and downscaling, so a decoded frame tells which source frame it is."""
    bits = (np.arange(n)[:, None] >> np.arange(16)) & 1
    blocks = np.repeat(np.repeat(bits.reshape(n, 4, 4) * 255, 8, axis=1), 8, axis=2)
    return np.repeat(blocks[..., None], 3, axis=-1).astype(np.uint8)


def _indices(frames: np.ndarray) -> list[int]:
    n, h, w, _ = frames.shape
    blocks = frames.reshape(n, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4, 5)).reshape(n, 16)
    return [int(((b > 128) << np.arange(16)).sum()) for b in blocks]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Writes test files on first use and keeps them for the module."""
    root = tmp_path_factory.mktemp("media")
    made = {}

    def get(name):
        if name not in made:
            made[name] = _make(root, name)
        return made[name]

    return get


def _make(root, name):
    # Matroska stores timestamps in whole milliseconds and AAC priming as a codec delay.
    path = root / (f"{name[:-4]}.mkv" if name.endswith("_mkv") else f"{name}.mp4")
    if name.startswith("sync"):  # sync_<rate>_<channels>[_mkv]
        rate, channels = (int(x) for x in name.split("_")[1:3])
        video = np.zeros((SECONDS * FPS, 48, 64, 3), np.uint8)
        audio = np.zeros((channels, SECONDS * rate), np.float32)
        click = _click(rate)
        for j, f in enumerate(FLASHES):
            video[f] = 255
            at = round(f / FPS * rate)
            audio[j % channels, at : at + click.size] = click  # alternate channels: the downmix needs both
        write_av(path, video, FPS, audio, rate, gop=FPS)
    elif name == "tone":
        write_av(path, _index_video(SECONDS * FPS), FPS, np.stack([_tone(44100), _tone(44100)[::-1]]), 44100, gop=FPS)
    elif name.startswith("longgop"):  # longgop_<rate>_<channels>: x264's default GOP, one keyframe
        rate, channels = (int(x) for x in name.split("_")[1:3])
        audio = np.stack([_tone(rate), _tone(rate)[::-1]])[:channels]
        write_av(path, _index_video(SECONDS * FPS), FPS, audio, rate)
    elif name == "fps30_mkv":
        write_av(path, _index_video(60), 30, gop=30)
    elif name == "fps25":
        write_av(path, _index_video(50), 25, gop=25)
    elif name == "fps2997":
        write_av(path, _index_video(60), Fraction(30000, 1001), gop=30)
    elif name == "audio_only":
        write_av(path, None, audio=_tone(16000), sample_rate=16000)
    elif name == "video_only":
        write_av(path, _index_video(SECONDS * FPS), FPS)
    elif name == "long":  # 20 s with a keyframe every second
        rng = np.random.default_rng(0)
        write_av(path, rng.integers(0, 256, (600, 96, 128, 3), dtype=np.uint8), FPS, gop=FPS)
    else:
        raise KeyError(name)
    return path


# --- probe ------------------------------------------------------------------------------------


def test_probe_reads_streams(files):
    info = probe(files("tone"))
    assert info.has_video and info.has_audio
    assert (info.fps, info.width, info.height, info.num_frames) == (30.0, 32, 32, 90)
    assert info.video_duration == pytest.approx(3.0)
    assert (info.audio_rate, info.audio_channels) == (44100, 2)
    assert info.audio_duration == pytest.approx(3.0, abs=1e-3)
    assert info.duration == pytest.approx(3.0, abs=1e-3)
    assert MediaInfo.from_dict(info.to_dict()) == info
    with pytest.raises(ConfigError, match="fps"):
        MediaInfo.from_dict({k: v for k, v in info.to_dict().items() if k != "fps"})


def test_probe_single_stream_files(files):
    audio = probe(files("audio_only"))
    assert not audio.has_video and audio.fps is None and audio.audio_rate == 16000
    video = probe(files("video_only"))
    assert not video.has_audio and video.audio_duration is None and video.num_frames == 90


# --- audio/video sync -------------------------------------------------------------------------


SYNC_FILES = ["sync_8000_1", "sync_16000_1", "sync_16000_2", "sync_44100_2", "sync_48000_1", "sync_48000_2"]


@pytest.mark.parametrize("name", SYNC_FILES + ["sync_8000_2_mkv"])
def test_flash_and_click_line_up(files, name):
    """Flash frame and click peak come out at the true time for every source rate and several
    seeks (keyframes every 30 frames, so most starts are mid-GOP). An AAC priming delay handled
    wrongly would shift the click by 1024 source samples (128 ms at 8 kHz, 21 ms at 48 kHz)."""
    path = files(name)
    num_frames, out_rate = 16, 16000
    checked = 0
    for start in [0.0, 0.2, 1.1234, 1.7, 2.4]:
        video, audio = decode_clip(path, start, num_frames, FPS, num_frames / FPS, sample_rate=out_rate)
        assert video.shape == (num_frames, 48, 64, 3) and video.dtype == np.uint8
        assert audio.shape == (round(num_frames / FPS * out_rate),) and audio.dtype == np.float32
        in_clip = [f for f in FLASHES if start <= f / FPS < start + (num_frames - 1) / FPS]
        assert len(in_clip) == 1, "test setup: one flash per clip"
        t_true = in_clip[0] / FPS
        brightness = video.mean(axis=(1, 2, 3))
        i = int(np.argmax(brightness))
        # The flash frame is on display from t_true for one frame: the first target time >= t_true.
        assert i == math.ceil((t_true - start) * FPS - 1e-6)
        assert brightness[i] > 200 and np.delete(brightness, i).max() < 30
        peak = int(np.argmax(np.abs(audio)))
        t_click = start + peak / out_rate - CLICK / 2
        assert abs(audio[peak]) > 0.3  # the click survives the downmix whichever channel holds it
        assert abs(t_click - t_true) < 0.002
        assert abs((start + i / FPS) - t_click) < 1 / FPS
        checked += 1
    assert checked == 5


def test_clip_matches_separate_video_and_audio_decodes(files):
    """decode_clip reads both streams in one pass; it must give what the single-stream calls give."""
    path = files("sync_44100_2")
    video, audio = decode_clip(path, 1.1234, 8, FPS, 0.5, short_side=24)
    np.testing.assert_array_equal(video, decode_video(path, 1.1234, 8, FPS, short_side=24))
    np.testing.assert_array_equal(audio, decode_audio(path, 1.1234, 0.5))


def _audio_from_seek_point(path, start: float, seek_stream: str, rate: int = 16000) -> np.ndarray:
    """The audio of the whole file after decode_clip's seek for a window at ``start``, resampled from
    the seek point on (what decode_clip did before it skipped the audio before the lead-in)."""
    with media_source.Source(path) as src:
        src.seek(start - media_audio.audio_margins(src.audio)[1], getattr(src, seek_stream))
        sink = media_audio.AudioSink(src, rate, 0, None)  # window from 0: no frame counts as early
        src.pump({src.audio.index: sink})
        return sink.finish(None)


@pytest.mark.parametrize("name", ["tone", "longgop_44100_2", "longgop_22050_1", "longgop_48000_2"])
def test_audio_before_the_lead_in_is_skipped_bit_identically(files, name):
    """The seek lands on the video keyframe, up to seconds before the window (the whole file here
    with one keyframe); decode_clip resamples only from shortly before the window, and the window's
    samples are bit-identical to resampling everything from the seek point. (A whole-file decode is
    no exact reference: the AAC decoder's output after a seek differs by ~1e-5 from a continuous
    decode, which is also why early packets are still decoded, only not resampled.)"""
    path = files(name)
    for start in [0.0, 0.03, 0.7, 1.5, 2.35]:
        window = slice(round(start * 16000), round(start * 16000) + 8000)
        _, with_video = decode_clip(path, start, 8, FPS, 0.5)
        np.testing.assert_array_equal(with_video, _audio_from_seek_point(path, start, "video")[window])
        alone = decode_audio(path, start, 0.5)
        np.testing.assert_array_equal(alone, _audio_from_seek_point(path, start, "audio")[window])
    if name.startswith("longgop"):  # the skip did happen: resampling began shortly before the window
        with media_source.Source(path) as src:
            src.seek(2.35 - media_audio.audio_margins(src.audio)[1], src.video)
            sink = media_audio.AudioSink(src, 16000, window.start, window.stop)
            src.pump({src.audio.index: sink})
            assert 2.0 < sink.begin / 16000 < 2.35


def test_time_base_arithmetic_matches_fractions():
    """Frame times use integer arithmetic instead of Fractions, with the very same float result."""
    rng = np.random.default_rng(0)
    for tb in [Fraction(1, 15360), Fraction(1, 1000), Fraction(1, 44100), Fraction(1001, 30000), Fraction(1, 90000)]:
        for ticks in [0, 1, 512, 1001, *rng.integers(-10**6, 10**12, 200).tolist()]:
            assert media_source.seconds(ticks, (tb.numerator, tb.denominator)) == float(ticks * tb)


def test_filter_graphs_are_reused_across_clips_and_files(files):
    """Configured RGB graphs are cached per frame format and size; a reused graph converts exactly
    as a fresh one, whichever file and size it converted before."""
    clips = [(files("tone"), 0.5, 16), (files("fps25"), 1.0, 16), (files("tone"), 2.0, 24), (files("fps25"), 0.2, 16)]
    fresh = []
    for path, start, side in clips:
        media_video.GRAPHS.graphs.clear()
        fresh.append(decode_video(path, start, 8, FPS, short_side=side))
    graphs = dict(media_video.GRAPHS.graphs)
    for (path, start, side), want in zip(clips * 2, fresh * 2):
        np.testing.assert_array_equal(decode_video(path, start, 8, FPS, short_side=side), want)
    assert all(media_video.GRAPHS.graphs[key] is graph for key, graph in graphs.items())  # reused, not rebuilt


class _Clips(torch.utils.data.Dataset):
    def __init__(self, path):
        self.path = path

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return decode_video(self.path, 0.5 + i, 8, FPS, short_side=16), len(media_video.GRAPHS.graphs), os.getpid()


def test_forked_loader_workers_build_their_own_graphs(files):
    """A DataLoader worker forked after the parent filled its graph cache starts with an empty one
    (and can exit: a graph with threads could not even be freed in a forked child)."""
    path = files("tone")
    want = [decode_video(path, 0.5 + i, 8, FPS, short_side=16) for i in range(2)]
    assert media_video.GRAPHS.graphs
    ctx = torch.multiprocessing.get_context("fork")
    loader = torch.utils.data.DataLoader(_Clips(path), batch_size=None, num_workers=1, multiprocessing_context=ctx,
                                         timeout=60)
    got = list(loader)
    for (frames, cached, pid), w in zip(got, want):
        assert pid != os.getpid()
        np.testing.assert_array_equal(frames.numpy(), w)
    assert [cached for _, cached, _ in got] == [1, 1]  # the worker's own graph, one per format


# --- frame picking ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,src_fps", [("fps25", Fraction(25)), ("fps2997", Fraction(30000, 1001)), ("fps30_mkv", Fraction(30))]
)
@pytest.mark.parametrize("fps", [30, 16])
def test_odd_frame_rates_pick_the_frame_on_display(files, name, src_fps, fps):
    """Target time t shows the last source frame starting at or before t, also when the
    container rounds timestamps (Matroska: frame 2 of 30 fps is stamped 67 ms, not 66.67 ms)."""
    path = files(name)
    for start in ["0", "0.37", "1.0"]:
        num_frames = 12
        got = _indices(decode_video(path, float(start), num_frames, fps))
        want = [math.floor((Fraction(start) + Fraction(i, fps)) * src_fps) for i in range(num_frames)]
        assert got == want, (start, got, want)
    frames, _ = decode_full(path, fps, audio=False)
    src_frames = 50 if name == "fps25" else 60
    end = src_frames / src_fps
    assert len(frames) == math.ceil(end * fps)  # every target time before the video ends
    assert _indices(frames) == [math.floor(Fraction(i, fps) * src_fps) for i in range(len(frames))]


def test_short_side_resizes_keeping_aspect(files):
    path = files("sync_16000_1")  # 64x48
    assert decode_video(path, 0.0, 2, FPS, short_side=24).shape == (2, 24, 32, 3)
    assert decode_video(path, 0.0, 2, FPS, short_side=25).shape == (2, 25, 33, 3)  # odd sizes are fine
    flash = decode_video(path, FLASHES[0] / FPS, 1, FPS, short_side=12)
    assert flash.shape == (1, 12, 16, 3) and flash.min() > 240


def test_full_decode_matches_clips(files):
    path = files("tone")
    video, audio = decode_full(path, FPS, short_side=16)
    assert video.shape == (90, 16, 16, 3) and audio.shape == (48000,)
    assert _indices(video) == list(range(90))
    for k in [0, 17, 45, 74]:  # on the 30 fps grid, so the same frames
        v, a = decode_clip(path, k / FPS, 16, FPS, 0.5, short_side=16)
        np.testing.assert_array_equal(v, video[k : k + 16])
        # Same AAC packets and resampler phase; only float rounding in the 44.1 kHz decoder differs.
        np.testing.assert_allclose(a, audio[round(k / FPS * 16000) :][:8000], atol=1e-3)


def test_late_clip_seeks_instead_of_decoding_from_the_start(files):
    """A clip near the end of a 20 s file must cost about one GOP, not the whole stream."""
    path = files("long")

    def median_time(fn):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return sorted(times)[2]

    late = median_time(lambda: decode_video(path, 19.0, 8, FPS))
    whole = median_time(lambda: decode_full(path, FPS, audio=False))
    assert late < whole / 3, (late, whole)


# --- ends of streams ----------------------------------------------------------------------------


def test_video_end_slack_is_one_source_frame(files):
    path = files("video_only")  # 90 frames
    clip = decode_video(path, 2.5, 16, FPS)  # ends at 3.0333: one frame past the end
    assert _indices(clip) == list(range(75, 90)) + [89]
    with pytest.raises(MediaError, match="exceeds video duration") as err:
        decode_video(path, 2.5, 17, FPS)
    assert str(path) in str(err.value)
    with pytest.raises(MediaError, match="exceeds video duration"):
        decode_video(path, 5.0, 4, FPS)


def test_audio_end_slack_pads_zeros_then_raises(files):
    path = files("audio_only")  # 3.0 s of tone at 16 kHz
    over = AUDIO_SLACK - 0.01  # within the slack: zero-padded
    tail = decode_audio(path, 2.5, 0.5 + over)
    assert tail.shape == (round((0.5 + over) * 16000),)
    assert np.all(tail[8000:] == 0) and np.abs(tail[7500:8000]).max() > 0.05
    with pytest.raises(MediaError, match=r"window \[2\.500, 3\.050\] s exceeds audio duration 3\.000 s") as err:
        decode_audio(path, 2.5, 0.5 + AUDIO_SLACK + 0.01)
    assert str(path) in str(err.value)


# --- bad files ----------------------------------------------------------------------------------


def _raises_naming(path, fn, match):
    with pytest.raises(MediaError, match=match) as err:
        fn(path)
    assert str(path) in str(err.value) and err.value.path == str(path)


@pytest.mark.parametrize("decode", [probe, lambda p: decode_clip(p, 0.0, 4, FPS, 0.2), lambda p: decode_full(p, FPS)])
def test_missing_empty_and_non_media_files(tmp_path, decode):
    _raises_naming(tmp_path / "missing.mp4", decode, "file not found")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _raises_naming(empty, decode, "empty file")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    _raises_naming(text, decode, "not a readable media file")


def test_truncated_and_header_corrupted_files(files, tmp_path):
    data = files("tone").read_bytes()
    truncated = tmp_path / "truncated.mp4"  # moov (the index) is at the end: it is cut off
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    _raises_naming(truncated, probe, "not a readable media file")
    _raises_naming(truncated, lambda p: decode_audio(p, 0.0, 1.0), "not a readable media file")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\0" * 64 + data[64:])
    _raises_naming(corrupt, probe, "not a readable media file")


def _faststart_copy(src, dst):
    """Remux with the index at the front, as streaming-ready files have it."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)


def test_truncated_faststart_file_decodes_up_to_the_cut(files, tmp_path):
    """With the index at the front the header promises 3 s but the data stops early: windows
    before the cut decode exactly as from the whole file, later ones raise MediaError."""
    whole = tmp_path / "whole.mp4"
    _faststart_copy(files("tone"), whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    assert probe(cut).duration == pytest.approx(3.0, abs=1e-3)
    early_v, early_a = decode_clip(cut, 0.2, 8, FPS, 0.3)
    ref_v, ref_a = decode_clip(whole, 0.2, 8, FPS, 0.3)
    np.testing.assert_array_equal(early_v, ref_v)
    np.testing.assert_array_equal(early_a, ref_a)
    _raises_naming(cut, lambda p: decode_video(p, 2.7, 8, FPS), "exceeds video duration .*truncated file")
    _raises_naming(cut, lambda p: decode_audio(p, 2.7, 0.25), "exceeds audio duration")
    _raises_naming(cut, lambda p: decode_full(p, FPS), "data ends at")


def test_garbage_inside_the_data_never_escapes_as_a_raw_pyav_error(files, tmp_path):
    data = bytearray(files("tone").read_bytes())
    rng = np.random.default_rng(1)
    for offset in (len(data) // 4, len(data) // 2):
        data[offset : offset + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    for decode in (lambda: decode_full(damaged, FPS), lambda: decode_clip(damaged, 1.5, 16, FPS, 0.5)):
        try:
            video, audio = decode()
        except MediaError as e:  # acceptable: named, short reason
            assert str(damaged) in str(e)
        else:  # H.264/AAC decoders conceal some damage: then shapes must still be right
            assert video.ndim == 4 and video.shape[1:] == (32, 32, 3) and audio.ndim == 1


def test_missing_streams(files):
    audio_only, video_only = files("audio_only"), files("video_only")
    _raises_naming(audio_only, lambda p: decode_video(p, 0.0, 4, FPS), "no video stream")
    _raises_naming(audio_only, lambda p: decode_clip(p, 0.0, 4, FPS, 0.1), "no video stream")
    tone = decode_audio(audio_only, 1.0, 0.5)
    assert tone.shape == (8000,) and 0.1 < np.sqrt(np.mean(tone**2)) < 0.5
    _raises_naming(video_only, lambda p: decode_audio(p, 0.0, 1.0), "no audio stream")
    video, audio = decode_clip(video_only, 1.0, 4, FPS, 0.1, audio=False)
    assert audio is None and _indices(video) == [30, 31, 32, 33]


def test_negative_start_and_bad_arguments(files):
    path = files("tone")
    _raises_naming(path, lambda p: decode_video(p, -0.1, 4, FPS), "start must be >= 0")
    _raises_naming(path, lambda p: decode_audio(p, -1.0, 0.5), "start must be >= 0")
    with pytest.raises(ValueError, match="num_frames"):
        decode_video(path, 0.0, 0, FPS)
    with pytest.raises(ValueError, match="video=True, audio=True or both"):
        decode_clip(path, 0.0, 4, FPS, 0.1, video=False, audio=False)
