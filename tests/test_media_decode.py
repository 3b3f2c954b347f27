"""Decoding clips and whole files (data/media/decode.py): audio/video sync, one pass equal to separate
decodes, seeking, truncated files and bad arguments."""
from __future__ import annotations

import math
import time

import av
import numpy as np
import pytest

from avssl.data.media import decode_audio, decode_clip, decode_full, decode_video, probe
from conftest import CLICK, FLASHES, FPS, frame_indices, raises_naming


SYNC_FILES = ["sync_8000_1", "sync_16000_1", "sync_16000_2", "sync_44100_2", "sync_48000_1", "sync_48000_2"]



@pytest.mark.parametrize("name", SYNC_FILES + ["sync_8000_2_mkv"])
def test_flash_and_click_line_up(media_files, name):
    """Flash frame and click peak come out at the true time for every source rate and several
    seeks (keyframes every 30 frames, so most starts are mid-GOP). An AAC priming delay handled
    wrongly would shift the click by 1024 source samples (128 ms at 8 kHz, 21 ms at 48 kHz)."""
    path = media_files(name)
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



def test_clip_matches_separate_video_and_audio_decodes(media_files):
    """decode_clip reads both streams in one pass; it must give what the single-stream calls give."""
    path = media_files("sync_44100_2")
    video, audio = decode_clip(path, 1.1234, 8, FPS, 0.5, short_side=24)
    np.testing.assert_array_equal(video, decode_video(path, 1.1234, 8, FPS, short_side=24))
    np.testing.assert_array_equal(audio, decode_audio(path, 1.1234, 0.5))



def test_full_decode_matches_clips(media_files):
    path = media_files("tone")
    video, audio = decode_full(path, FPS, short_side=16)
    assert video.shape == (90, 16, 16, 3) and audio.shape == (48000,)
    assert frame_indices(video) == list(range(90))
    for k in [0, 17, 45, 74]:  # on the 30 fps grid, so the same frames
        v, a = decode_clip(path, k / FPS, 16, FPS, 0.5, short_side=16)
        np.testing.assert_array_equal(v, video[k : k + 16])
        # Same AAC packets and resampler phase; what differs is the few bands FFmpeg's encoder coded by
        # perceptual noise substitution, whose decoder-side noise generator depends on where decoding
        # started (measured at most 8.5e-6 on 40+ windows, 3.3e-5 after an audio-only seek).
        np.testing.assert_allclose(a, audio[round(k / FPS * 16000) :][:8000], atol=1e-3)



def test_late_clip_seeks_instead_of_decoding_from_the_start(media_files):
    """A clip near the end of a 20 s file must cost about one GOP, not the whole stream."""
    path = media_files("long")

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



def _faststart_copy(src, dst):
    """Remux with the index at the front, as streaming-ready files have it."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)



def test_truncated_faststart_file_decodes_up_to_the_cut(media_files, tmp_path):
    """With the index at the front the header promises 3 s but the data stops early: windows
    before the cut decode exactly as from the whole file, later ones raise MediaError."""
    whole = tmp_path / "whole.mp4"
    _faststart_copy(media_files("tone"), whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    assert probe(cut).duration == pytest.approx(3.0, abs=1e-3)
    early_v, early_a = decode_clip(cut, 0.2, 8, FPS, 0.3)
    ref_v, ref_a = decode_clip(whole, 0.2, 8, FPS, 0.3)
    np.testing.assert_array_equal(early_v, ref_v)
    np.testing.assert_array_equal(early_a, ref_a)
    raises_naming(cut, lambda p: decode_video(p, 2.7, 8, FPS), "exceeds video duration .*truncated file")
    raises_naming(cut, lambda p: decode_audio(p, 2.7, 0.25), "exceeds audio duration")
    raises_naming(cut, lambda p: decode_full(p, FPS), "data ends at")



def test_negative_start_and_bad_arguments(media_files):
    path = media_files("tone")
    raises_naming(path, lambda p: decode_video(p, -0.1, 4, FPS), "start must be >= 0")
    raises_naming(path, lambda p: decode_audio(p, -1.0, 0.5), "start must be >= 0")
    with pytest.raises(ValueError, match="num_frames"):
        decode_video(path, 0.0, 0, FPS)
    with pytest.raises(ValueError, match="video=True, audio=True or both"):
        decode_clip(path, 0.0, 4, FPS, 0.1, video=False, audio=False)



@pytest.mark.parametrize("name", ["longgop_44100_2", "tone", "fps2997", "fps30_mkv", "fps25"])
def test_clip_stops_early_with_the_frames_a_full_decode_shows(media_files, name):
    """A clip stops decoding once a packet's dts passes its last target time and drains the decoder
    (Source.pump's early stop); every frame must be the one a straightforward decode of the whole
    file, frame by frame from the start with PyAV, has on display at each target time, with B-frames
    (x264's default GOP), 1 s GOPs, NTSC rates and Matroska's millisecond timestamps."""
    path = media_files(name)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        origin = float(v.start_time * v.time_base)
        times = [float(f.pts * v.time_base) - origin for f in c.decode(v)]
        rate = float(v.average_rate)
        slack = float(v.time_base) / 2 + 1e-6  # timestamps rounded to the time base (Matroska: 1 ms)
    shown = sorted(range(len(times)), key=times.__getitem__)
    full, _ = decode_full(path, rate, audio=False)
    end = max(times) + 1 / rate
    for fps in (rate, 12.5):
        for start in (0.0, 0.37, 0.5, 0.998, 1.0, 1.234, end - 8 / fps - 0.01):
            clip = decode_video(path, start, 8, fps)
            # the last frame whose time is at or before each target
            want = [shown[max(j for j, k in enumerate(shown) if times[k] <= start + i / fps + slack)] for i in range(8)]
            assert frame_indices(clip) == want, (fps, start)
            if fps == rate and abs(start * rate - round(start * rate)) < 1e-9:
                np.testing.assert_array_equal(clip, full[round(start * rate):][:8])


class _CountingPacket:
    """A demuxed packet whose ``decode`` calls are counted (per stream type)."""

    def __init__(self, packet, counts):
        self._packet, self._counts = packet, counts

    def __getattr__(self, name):
        return getattr(self._packet, name)

    def decode(self):
        if self._packet.size:
            self._counts[self._packet.stream.type] = self._counts.get(self._packet.stream.type, 0) + 1
        return self._packet.decode()


@pytest.fixture(scope="module")
def gop30_bframes(tmp_path_factory):
    """3 s of moving texture at 30 fps with a 1 s GOP and B-frames, AAC-LC 44.1 kHz stereo in mp4."""
    from avssl.data.writer import write_av

    n, h, w = 90, 72, 128
    y, x = np.mgrid[0:h, 0:w]
    frames = np.stack([np.stack([(x * 5 + 3 * i) % 256, (y * 7 + 2 * i) % 256, ((x + y) * 3 + i) % 256], -1)
                       for i in range(n)]).astype(np.uint8)
    t = np.arange(3 * 44100) / 44100
    audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 700 * t)]).astype(np.float32)
    path = tmp_path_factory.mktemp("gop30") / "gop30_b.mp4"
    write_av(path, frames, FPS, audio, 44100, gop=FPS)
    return str(path)


def test_clip_decodes_no_video_packet_after_its_last_needed_one(gop30_bframes, monkeypatch):
    """On a 1 s GOP B-frame file, a clip sends the video decoder exactly the packets from the seek's
    keyframe to the last one (in decode order) stamped at or before its last target time: P-frames
    sent ahead of B-frames and stamped after every target are decoded only when such a frame follows
    (as its reference), not when the stream passes the clip first (they used to be: 0.6-1.3 frames
    more per clip on the loader benchmark's 1 s GOP files). The frames are those of a plain decode."""
    from avssl.data.media import source as media_source
    from avssl.data.media.audio import audio_margins

    path = gop30_bframes
    with av.open(path) as c:
        v = c.streams.video[0]
        packets = [(float(p.pts * v.time_base), p.is_keyframe) for p in c.demux(v) if p.pts is not None]
    assert any(a[0] > b[0] for a, b in zip(packets, packets[1:])), "test setup: the file has B-frames"

    counts: dict = {}
    opened = media_source.Source._open

    def counting_open(self):
        opened(self)
        demux = self.container.demux
        self.container = type("Counting", (), {
            "__getattr__": lambda _, name, c=self.container: getattr(c, name),
            "demux": lambda _, *a, **k: (_CountingPacket(p, counts) for p in demux(*a, **k)),
        })()

    monkeypatch.setattr(media_source.Source, "_open", counting_open)
    with media_source.Source(path) as src:
        lead_in = audio_margins(src.audio)[1]
    extra_before = 0
    for num_frames, fps in ((8, 30.0), (8, 16.0), (5, 7.0)):
        for start in (0.05, 0.4, 0.61, 1.02, 1.3, 1.5, 1.77, 2.0, 2.2):
            for with_audio in (False, True):
                counts.clear()
                video, _ = decode_clip(path, start, num_frames, fps, 0.5, audio=with_audio)
                monkeypatch.setattr(media_source.Source, "_open", opened)  # a plain decode to compare with
                plain, _ = decode_clip(path, start, num_frames, fps, 0.5, audio=with_audio)
                monkeypatch.setattr(media_source.Source, "_open", counting_open)
                assert np.array_equal(video, plain)
                seek_to = start - (lead_in if with_audio else 0.0)
                key = max(t for t, k in packets if k and t <= max(seek_to, 0) + 1e-6)
                first = next(i for i, (t, k) in enumerate(packets) if k and t == key)
                t_last = start + (num_frames - 1) / fps + 1e-6
                last = max(i for i, (t, _) in enumerate(packets) if t <= t_last)
                assert counts.get("video") == last + 1 - first, (num_frames, fps, start, with_audio)
                extra_before += sum(t > t_last for t, _ in packets[first : last + 1])
    assert extra_before > 0, "test setup: some clips need P-frames stamped after their last frame"
