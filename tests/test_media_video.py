"""Video frames from real files (data/media/video.py): the frame on display at each target time, resizing,
the end of the stream, and the cache of filter graphs."""
from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np
import pytest
import torch

from avssl.data.media import video as media_video
from avssl.data.media import decode_full, decode_video
from avssl.errors import MediaError
from conftest import FLASHES, FPS, frame_indices


def test_filter_graphs_are_reused_across_clips_and_files(media_files):
    """Configured RGB graphs are cached per frame format and size; a reused graph converts exactly
    as a fresh one, whichever file and size it converted before."""
    clips = [(media_files("tone"), 0.5, 16), (media_files("fps25"), 1.0, 16), (media_files("tone"), 2.0, 24), (media_files("fps25"), 0.2, 16)]
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



def test_forked_loader_workers_build_their_own_graphs(media_files):
    """A DataLoader worker forked after the parent filled its graph cache starts with an empty one
    (and can exit: a graph with threads could not even be freed in a forked child)."""
    path = media_files("tone")
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



@pytest.mark.parametrize(
    "name,src_fps", [("fps25", Fraction(25)), ("fps2997", Fraction(30000, 1001)), ("fps30_mkv", Fraction(30))]
)
@pytest.mark.parametrize("fps", [30, 16])
def test_odd_frame_rates_pick_the_frame_on_display(media_files, name, src_fps, fps):
    """Target time t shows the last source frame starting at or before t, also when the
    container rounds timestamps (Matroska: frame 2 of 30 fps is stamped 67 ms, not 66.67 ms)."""
    path = media_files(name)
    for start in ["0", "0.37", "1.0"]:
        num_frames = 12
        got = frame_indices(decode_video(path, float(start), num_frames, fps))
        want = [math.floor((Fraction(start) + Fraction(i, fps)) * src_fps) for i in range(num_frames)]
        assert got == want, (start, got, want)
    frames, _ = decode_full(path, fps, audio=False)
    src_frames = 50 if name == "fps25" else 60
    end = src_frames / src_fps
    assert len(frames) == math.ceil(end * fps)  # every target time before the video ends
    assert frame_indices(frames) == [math.floor(Fraction(i, fps) * src_fps) for i in range(len(frames))]



def test_short_side_resizes_keeping_aspect(media_files):
    path = media_files("sync_16000_1")  # 64x48
    assert decode_video(path, 0.0, 2, FPS, short_side=24).shape == (2, 24, 32, 3)
    assert decode_video(path, 0.0, 2, FPS, short_side=25).shape == (2, 25, 33, 3)  # odd sizes are fine
    flash = decode_video(path, FLASHES[0] / FPS, 1, FPS, short_side=12)
    assert flash.shape == (1, 12, 16, 3) and flash.min() > 240



def test_video_end_slack_is_one_source_frame(media_files):
    path = media_files("video_only")  # 90 frames
    clip = decode_video(path, 2.5, 16, FPS)  # ends at 3.0333: one frame past the end
    assert frame_indices(clip) == list(range(75, 90)) + [89]
    with pytest.raises(MediaError, match="exceeds video duration") as err:
        decode_video(path, 2.5, 17, FPS)
    assert str(path) in str(err.value)
    with pytest.raises(MediaError, match="exceeds video duration"):
        decode_video(path, 5.0, 4, FPS)

