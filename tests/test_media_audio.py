"""Audio from real files (data/media/audio.py): resampling from shortly before the window, and the end of
the stream."""
from __future__ import annotations

import av
import numpy as np
import pytest

from avssl.data.media import audio as media_audio, source as media_source
from avssl.data.media import AUDIO_SLACK, decode_audio, decode_clip, decode_full
from avssl.data.prepare import PrepareTarget, prepare_file
from avssl.errors import MediaError
from conftest import FPS


def _audio_from_seek_point(path, start: float, seek_stream: str, rate: int = 16000) -> np.ndarray:
    """The audio of the whole file after decode_clip's seek for a window at ``start``, resampled from
    the seek point on (what decode_clip did before it skipped the audio before the lead-in)."""
    with media_source.Source(path) as src:
        src.seek(start - media_audio.audio_margins(src.audio)[1], getattr(src, seek_stream))
        sink = media_audio.AudioSink(src, rate, 0, None)  # window from 0: no frame counts as early
        src.pump({src.audio.index: sink})
        return sink.finish(None)



@pytest.mark.parametrize("name", ["tone", "longgop_44100_2", "longgop_22050_1", "longgop_48000_2"])
def test_audio_before_the_lead_in_is_skipped_bit_identically(media_files, name):
    """The seek lands on the video keyframe, up to seconds before the window (the whole file here
    with one keyframe); decode_clip resamples only from shortly before the window, and the window's
    samples are bit-identical to resampling everything from the seek point. (A whole-file decode is
    no exact reference here: FFmpeg's AAC encoder codes some bands of these files by perceptual noise
    substitution, and the decoder's noise generator state depends on where decoding started, ~1e-5
    after a seek; which is also why early packets are still decoded, only not resampled.)"""
    path = media_files(name)
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



def test_audio_end_slack_pads_zeros_then_raises(media_files):
    path = media_files("audio_only")  # 3.0 s of tone at 16 kHz
    over = AUDIO_SLACK - 0.01  # within the slack: zero-padded
    tail = decode_audio(path, 2.5, 0.5 + over)
    assert tail.shape == (round((0.5 + over) * 16000),)
    assert np.all(tail[8000:] == 0) and np.abs(tail[7500:8000]).max() > 0.05
    with pytest.raises(MediaError, match=r"window \[2\.500, 3\.050\] s exceeds audio duration 3\.000 s") as err:
        decode_audio(path, 2.5, 0.5 + AUDIO_SLACK + 0.01)
    assert str(path) in str(err.value)



def _remux(src, dst, fmt: str):
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)


@pytest.fixture(scope="module")
def pns_free(media_files, tmp_path_factory):
    """``avssl data prepare`` copies of a 3 s file: 0.5 s GOP without B-frames, mono AAC-LC without
    perceptual noise substitution (so a decode after a seek can equal a continuous one bit for bit),
    at 16 kHz (no resampling) and 44.1 kHz (resampled), and a 32 kHz copy remuxed to Matroska (whose
    millisecond timestamps are exact for 32 ms frames; at 44.1 kHz they place a window after a seek up
    to 0.5 ms off the whole-file decode's samples, the same before and after the lead-in change)."""
    root = tmp_path_factory.mktemp("pns_free")
    files = {f"mp4_{rate // 1000}k": prepare_file(media_files("tone"), root / f"{rate}.mp4",
                                                  PrepareTarget("t", 32, FPS, rate, 0.5))
             for rate in (16000, 32000, 44100)}
    files["mkv_32k"] = root / "32000.mkv"
    _remux(files.pop("mp4_32k"), files["mkv_32k"], "matroska")
    return files


def _audio_packet_starts(path) -> list[float]:
    """Start times of the audio packets on the shared axis (zero at the first video frame)."""
    with media_source.Source(path) as src:
        tb = media_source.time_base_of(src.audio)
        return [media_source.seconds(p.pts, tb) - src.origin
                for p in src.container.demux(src.audio) if p.pts is not None]


@pytest.mark.parametrize("name", ["mp4_16k", "mp4_44k", "mkv_32k"])
def test_windows_equal_the_whole_file_decode_bit_for_bit_without_noise_substitution(pns_free, name):
    """The lead-in is enough: AAC-LC's first frame decoded after a seek is wrong (no MDCT overlap from the
    frame before), every later one is the continuous decode's; the resampler's start-up changes 1-2 ms.
    So one codec frame + 10 ms before the window (mp4/mov; Matroska seeks one frame more) gives every
    window, after an audio-only or a video seek, bit for bit the whole-file decode's samples."""
    path = pns_free[name]
    _, whole = decode_full(path, FPS, video=False)
    packets = _audio_packet_starts(path)
    frame = packets[11] - packets[10]
    # and windows 0.5 ms into a packet two after another: without the 10 ms, the frame decoded wrong
    # would end 0.5 ms before the window, inside the resampler's reach
    late = [packets[i] + 2 * frame + 0.0005 for i in range(10, len(packets) - 2, 3)]
    for start in [*np.arange(0.0, 2.45, 0.049), *(t for t in late if t < 2.45)]:
        window = whole[round(start * 16000):][:8000]
        _, with_video = decode_clip(path, start, 1, FPS, 0.5)
        np.testing.assert_array_equal(decode_audio(path, start, 0.5), window, err_msg=f"audio seek at {start:.3f}")
        np.testing.assert_array_equal(with_video, window, err_msg=f"video seek at {start:.3f}")


@pytest.mark.parametrize("name", ["mp4_16k", "mp4_44k", "mkv_32k"])
def test_aac_in_mp4_seeks_one_codec_frame_and_10_ms_before_the_window(pns_free, name, monkeypatch):
    """The seek's lead-in does not grow back. The per-clip bound (benchmarks/bench_loader_bound.py)
    decodes audio from the packet holding ``start - frame``; in mp4 avssl seeks ``frame + 10 ms`` before
    the window (libavformat's mov reader puts every track at or before the keyframe) and so decodes
    from that packet or the one before it, the latter only when the 10 ms cross a packet boundary.
    (Two frames + 10 ms, as before, always decoded one or two packets more than the bound, and on
    0.5 s GOPs took an earlier keyframe in ~14% of windows.) Matroska keeps the extra frame: its
    reader drops the audio before the keyframe, so the first audio packet can start up to a frame
    after it. In both, no window needs a second seek."""
    path = pns_free[name]
    packets = _audio_packet_starts(path)
    with media_source.Source(path) as src:
        frame = src.audio.codec_context.frame_size / src.audio.codec_context.sample_rate
    seeks, firsts = [], []
    real_seek, real_push = media_source.Source.seek, media_audio.AudioSink.push

    def seek(self, t, stream):
        seeks.append(t)
        return real_seek(self, t, stream)

    def push(self, frame_):
        if not firsts or firsts[-1][0] is not self:
            firsts.append((self, media_source.frame_time(self.src, frame_, self.time_base)))
        return real_push(self, frame_)

    monkeypatch.setattr(media_source.Source, "seek", seek)
    monkeypatch.setattr(media_audio.AudioSink, "push", push)
    lead = frame + 0.01 if name.startswith("mp4") else 2 * frame + 0.01
    extra = []
    for start in np.arange(0.3, 2.3, 0.0437):
        seeks.clear()
        decode_clip(path, start, 4, FPS, 0.5)  # seeks the video stream
        assert seeks == [pytest.approx(start - lead, abs=1e-9)], start
        if name.startswith("mp4"):
            seeks.clear()
            firsts.clear()
            decode_audio(path, start, 0.5)  # seeks the audio stream: decoding starts where the seek lands
            assert seeks == [pytest.approx(start - lead, abs=1e-9)] and len(firsts) == 1, start
            first = min(range(len(packets)), key=lambda i: abs(packets[i] - firsts[0][1]))
            bound = max(i for i, t in enumerate(packets) if t <= start - frame + 1e-9)
            extra.append(bound - first)
    if extra:
        assert set(extra) <= {0, 1} and 0 < sum(extra) < len(extra) / 2, extra
