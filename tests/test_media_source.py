"""Opening and probing real H.264/AAC files (data/media/source.py): stream info, time arithmetic, and
clear errors for missing, unreadable, damaged and single-stream files."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from avssl.data.media import source as media_source
from avssl.data.media import MediaInfo, decode_audio, decode_clip, decode_full, decode_video, probe
from avssl.errors import ConfigError, MediaError
from conftest import FPS, frame_indices, raises_naming


def test_probe_reads_streams(media_files):
    info = probe(media_files("tone"))
    assert info.has_video and info.has_audio
    assert (info.fps, info.width, info.height, info.num_frames) == (30.0, 32, 32, 90)
    assert info.video_duration == pytest.approx(3.0)
    assert (info.audio_rate, info.audio_channels) == (44100, 2)
    assert info.audio_duration == pytest.approx(3.0, abs=1e-3)
    assert info.duration == pytest.approx(3.0, abs=1e-3)
    assert MediaInfo.from_dict(info.to_dict()) == info
    with pytest.raises(ConfigError, match="fps"):
        MediaInfo.from_dict({k: v for k, v in info.to_dict().items() if k != "fps"})



def test_probe_single_stream_files(media_files):
    audio = probe(media_files("audio_only"))
    assert not audio.has_video and audio.fps is None and audio.audio_rate == 16000
    video = probe(media_files("video_only"))
    assert not video.has_audio and video.audio_duration is None and video.num_frames == 90



def test_time_base_arithmetic_matches_fractions():
    """Frame times use integer arithmetic instead of Fractions, with the very same float result."""
    rng = np.random.default_rng(0)
    for tb in [Fraction(1, 15360), Fraction(1, 1000), Fraction(1, 44100), Fraction(1001, 30000), Fraction(1, 90000)]:
        for ticks in [0, 1, 512, 1001, *rng.integers(-10**6, 10**12, 200).tolist()]:
            assert media_source.seconds(ticks, (tb.numerator, tb.denominator)) == float(ticks * tb)



@pytest.mark.parametrize("decode", [probe, lambda p: decode_clip(p, 0.0, 4, FPS, 0.2), lambda p: decode_full(p, FPS)])
def test_missing_empty_and_non_media_files(tmp_path, decode):
    raises_naming(tmp_path / "missing.mp4", decode, "file not found")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    raises_naming(empty, decode, "empty file")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    raises_naming(text, decode, "not a readable media file")



def test_truncated_and_header_corrupted_files(media_files, tmp_path):
    data = media_files("tone").read_bytes()
    truncated = tmp_path / "truncated.mp4"  # moov (the index) is at the end: it is cut off
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    raises_naming(truncated, probe, "not a readable media file")
    raises_naming(truncated, lambda p: decode_audio(p, 0.0, 1.0), "not a readable media file")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\0" * 64 + data[64:])
    raises_naming(corrupt, probe, "not a readable media file")



def test_garbage_inside_the_data_never_escapes_as_a_raw_pyav_error(media_files, tmp_path):
    data = bytearray(media_files("tone").read_bytes())
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



def test_missing_streams(media_files):
    audio_only, video_only = media_files("audio_only"), media_files("video_only")
    raises_naming(audio_only, lambda p: decode_video(p, 0.0, 4, FPS), "no video stream")
    raises_naming(audio_only, lambda p: decode_clip(p, 0.0, 4, FPS, 0.1), "no video stream")
    tone = decode_audio(audio_only, 1.0, 0.5)
    assert tone.shape == (8000,) and 0.1 < np.sqrt(np.mean(tone**2)) < 0.5
    raises_naming(video_only, lambda p: decode_audio(p, 0.0, 1.0), "no audio stream")
    video, audio = decode_clip(video_only, 1.0, 4, FPS, 0.1, audio=False)
    assert audio is None and frame_indices(video) == [30, 31, 32, 33]

