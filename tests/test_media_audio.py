"""Audio from real files (data/media/audio.py): resampling from shortly before the window, and the end of
the stream."""
from __future__ import annotations

import numpy as np
import pytest

from avssl.data.media import audio as media_audio, source as media_source
from avssl.data.media import AUDIO_SLACK, decode_audio, decode_clip
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
    no exact reference: the AAC decoder's output after a seek differs by ~1e-5 from a continuous
    decode, which is also why early packets are still decoded, only not resampled.)"""
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

