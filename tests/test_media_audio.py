"""Audio from real files (data/media/audio.py): resampling from shortly before the window, and the end of
the stream."""
from __future__ import annotations

import av
import numpy as np
import pytest

from avssl.data.media import audio as media_audio, source as media_source
from avssl.data.media import AUDIO_SLACK, decode_audio, decode_clip, decode_full
from avssl.data.prepare import PrepareTarget, prepare_file
from avssl.data.writer import write_av
from avssl.errors import MediaError
from conftest import FPS, _click, _index_video, _tone


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


# --- Opus and Vorbis: the audio of YouTube downloads (.webm/.mkv) ------------------------------------

def _downloads_audio(rate: int, seconds: float = 3.0) -> np.ndarray:
    """Stereo audio whose errors show: the tone pair of the other tests, a 3.1 kHz tone (a 0.5 ms shift
    turns it upside down) and a click every 97 ms."""
    tone = _tone(rate, seconds)
    t = np.arange(tone.size) / rate
    audio = tone + 0.1 * np.sin(2 * np.pi * 3100 * t).astype(np.float32)
    click = _click(rate) * 0.5
    for at in np.arange(0.05, seconds - 0.01, 0.097):
        i = round(at * rate)
        audio[i : i + click.size] += click[: audio.size - i]
    return np.stack([audio, 0.8 * audio[::-1]])


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    """Opus (libopus, 48 kHz) and Vorbis (FFmpeg's encoder, 48 kHz) in Matroska with H.264 video (0.5 s
    GOP), in audio-only WebM, and Opus in mp4 (exact timestamps, for comparison)."""
    root = tmp_path_factory.mktemp("downloads")
    audio, video = _downloads_audio(48000), _index_video(3 * FPS)
    files = {}
    for name, codec, with_video in [("opus.mkv", "libopus", True), ("opus.webm", "libopus", False),
                                    ("opus.mp4", "libopus", True), ("vorbis.mkv", "vorbis", True),
                                    ("vorbis.webm", "vorbis", False)]:
        files[name.replace(".", "_")] = write_av(root / name, video if with_video else None, FPS, audio, 48000,
                                                 gop=FPS // 2, audio_codec=codec)
    return files


def _windows(path, rate: int, starts, monkeypatch):
    """(start, how, window, seeks) for audio-only and (if the file has video) video seeks."""
    seeks = []
    real_seek = media_source.Source.seek

    def seek(self, t, stream):
        seeks.append(t)
        return real_seek(self, t, stream)

    monkeypatch.setattr(media_source.Source, "seek", seek)
    with media_source.Source(path) as src:
        has_video = src.video is not None
    for start in starts:
        seeks.clear()
        yield start, "audio seek", decode_audio(path, start, 0.5, sample_rate=rate), len(seeks)
        if has_video:
            seeks.clear()
            yield start, "video seek", decode_clip(path, start, 1, FPS, 0.5, sample_rate=rate)[1], len(seeks)


@pytest.mark.parametrize("name", ["opus_mp4", "opus_mkv", "opus_webm"])
def test_opus_windows_equal_the_whole_file_decode_after_a_pre_roll(downloads, name, monkeypatch):
    """Opus decoders converge only gradually after a seek (CELT predicts each band's energy from the
    previous frame's): decoding from 10-20 ms before the window (the margin a frame size of 0 at
    opening gave) left errors up to 0.26 (mp4, mkv) and 0.32 (WebM) in these files' audio-seek windows
    and 0.02-0.04 in video-seek ones (50 windows each). avssl decodes OPUS_PREROLL (0.2 s) + 10 ms
    before the window: then at most 6.3e-4 (audio seeks) and 2.5e-5 (video seeks, mostly from an
    earlier keyframe); hence 2e-3, 100 times below the old errors.

    Matroska stores whole milliseconds: Opus packets start at 13.5 + 20k ms (the 6.5 ms pre-skip) and
    are stamped 0.5 ms late, and when resampling starts on the first frame after opening, which the
    decoder trims by the pre-skip and re-stamps rounded, 1 ms late: windows after a seek sit 0, 8 or
    16 samples late at 16 kHz against the whole-file decode (see AudioSink; mp4's timestamps are exact)."""
    path = downloads[name]
    _, whole = decode_full(path, FPS, video=False)
    lags = (0,) if name.endswith("mp4") else (0, 8, 16)
    starts = [*np.linspace(0.0, 2.45, 15), *np.random.default_rng(0).uniform(0.3, 2.45, 10)]
    for start, how, window, seeks in _windows(path, 16000, starts, monkeypatch):
        first = round(start * 16000)
        err = min(np.abs(window - whole[first - lag : first - lag + window.size]).max()
                  for lag in lags if first >= lag)
        assert err <= 2e-3, f"{how} at {start:.3f}: {err:.2e}"
        assert seeks == 1, f"{how} at {start:.3f}: {seeks} seeks"


@pytest.mark.parametrize("name", ["vorbis_mkv", "vorbis_webm"])
def test_vorbis_windows_need_one_seek_and_equal_the_whole_file_decode(downloads, name, monkeypatch):
    """FFmpeg's Vorbis decoder outputs nothing for the first packet after a seek and the continuous
    decode's samples from the next one on (the previous block's overlap is all it needs), so the 10 ms
    margin was exact; but the seek went only 20 ms before the window, and with the withheld packet
    (21.3 ms at 48 kHz) the audio started too late for half the audio-only windows (25 of 50 in the
    WebM file), which then seeked again 1 s further back. avssl now seeks two of the longest packets
    (half the long block, from the header) + 10 ms before the window: one seek.

    At 48 kHz (no resampling) the windows equal the whole-file decode bit for bit once shifted by the
    Matroska rounding: 21.3 ms packets are stamped up to 1/3 ms (16 samples) off."""
    path = downloads[name]
    _, whole = decode_full(path, FPS, video=False, sample_rate=48000)
    starts = [*np.linspace(0.0, 2.45, 15), *np.random.default_rng(0).uniform(0.3, 2.45, 10)]
    for start, how, window, seeks in _windows(path, 48000, starts, monkeypatch):
        first = round(start * 48000)
        err = min(np.abs(window - whole[first - lag : first - lag + window.size]).max()
                  for lag in (-16, 0, 16) if first >= lag)
        assert err == 0, f"{how} at {start:.3f}: {err:.2e}"
        assert seeks == 1, f"{how} at {start:.3f}: {seeks} seeks"
