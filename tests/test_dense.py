"""Dense clip features for temporal localization on real mp4 files: the sampler's grid, the layout a
localization toolkit reads, chunked decoding identical to clip-by-clip decoding, and the memory bound
on a long-ish video."""
import csv
import math
import tracemalloc

import numpy as np
import pytest

from avssl.cli import main
from avssl.config import resolve
from avssl.data.pipeline import clip_spec
from avssl.data.media import decode_clip
from avssl.data.samplers import DenseClipSampler
from avssl.data.writer import write_av
from avssl.runs import scratch_encoders
from avssl.errors import ConfigError
from avssl.evaluation.dense import dense_extract, iter_windows, plan_chunks

LONG_SECONDS, SIDE, FPS = 30, 128, 30


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """30 s of 128x128 video whose every frame differs (a moving ramp, brightness = frame number) + audio."""
    t = np.arange(LONG_SECONDS * FPS)
    x = np.arange(SIDE)
    ramp = (x[None, None, :] + 3 * t[:, None, None]) % 256  # (T, 1, W)
    video = np.empty((len(t), SIDE, SIDE, 3), dtype=np.uint8)
    video[..., 0] = ramp
    video[..., 1] = (t % 256)[:, None, None]
    video[..., 2] = x[None, :, None]
    sr = 16000
    audio = 0.3 * np.sin(2 * np.pi * 440 * np.arange(LONG_SECONDS * sr) / sr).astype(np.float32)
    path = tmp_path_factory.mktemp("long") / "long_video.mp4"
    write_av(path, video, FPS, audio, sr, gop=60)
    (path.parent / "manifest.csv").write_text("path,label,split\nlong_video.mp4,walk,test\n")
    return path


def big_frames_encoders():
    """cpu-tiny networks reading 128-pixel decoded frames, so whole-video decoding would be large."""
    return scratch_encoders(resolve("cpu-tiny", overrides=["video.resize=128", "video.crop=32"]), seed=0)


def test_dense_sampler_covers_the_video_at_a_fixed_stride_on_the_frame_grid():
    s = DenseClipSampler(8 / 30, 0.5, grid=30)
    starts = s(10.0)
    assert len(starts) == math.floor((10.0 - 8 / 30) / 0.5) + 1 == 20
    assert np.allclose(np.diff(starts), 0.5) and starts[0] == 0.0
    assert starts[-1] + 8 / 30 <= 10.0
    assert s.frames(10.0).tolist() == list(range(0, 300, 15))
    odd = DenseClipSampler(0.2, 0.25, grid=30)(2.0)  # 7.5 frames: starts snap to the nearest frame
    assert all(abs(v * 30 - round(v * 30)) < 1e-9 for v in odd) and all(abs(v - 0.25 * i) <= 1 / 60 + 1e-9
                                                                  for i, v in enumerate(odd))
    with pytest.raises(ConfigError, match="shorter than one frame"):
        DenseClipSampler(0.2, 0.01, grid=30)


def test_chunks_hold_at_most_the_budget_and_every_clip_once():
    starts = np.arange(0, 900, 30)
    chunks = plan_chunks(starts, 30.0, 4 / 30, 5.0)
    assert [n for a, b in chunks for n in range(a, b)] == list(range(30))
    assert all((starts[b - 1] - starts[a]) / 30 + 4 / 30 <= 5.0 for a, b in chunks)
    assert plan_chunks(starts, 30.0, 4 / 30, 0.01) == [(n, n + 1) for n in range(30)]  # never less than a clip


def test_chunked_decoding_gives_exactly_the_clips_of_clip_by_clip_decoding(long_video):
    cfg = big_frames_encoders().cfg
    spec = clip_spec(cfg)
    starts = DenseClipSampler(spec.duration, 0.1, grid=spec.fps).frames(LONG_SECONDS)
    frame_bytes = SIDE * SIDE * 3
    got = list(iter_windows(str(long_video), starts, spec, 8 * 2 ** 20, frame_bytes))
    *windows, (_, peak, chunks) = got
    assert [n for n, _, _ in windows] == list(range(len(starts)))
    assert 1 < chunks < len(starts) / 5  # chunks of several overlapping clips
    assert 0 < peak <= 8 * 2 ** 20 / 2  # the budget counts the decoder's second copy
    for n in (0, 1, 6, 7, 8, 9, 150, len(starts) - 1):  # across chunk boundaries too
        frames, wave = decode_clip(long_video, starts[n] / spec.fps, spec.num_frames, spec.fps, spec.audio_duration,
                                   short_side=spec.short_side)
        assert np.array_equal(windows[n][1], frames)
        assert np.array_equal(windows[n][2], wave)


def test_long_video_stays_within_the_memory_budget(long_video, tmp_path):
    enc = big_frames_encoders()
    whole = LONG_SECONDS * FPS * SIDE * SIDE * 3  # 44 MB decoded at once
    tracemalloc.start()  # numpy registers its buffers with tracemalloc: decoded frames are counted
    try:
        r = dense_extract(enc, long_video.parent / "manifest.csv", tmp_path, modality="video", stride=0.25,
                          max_memory_mb=4, progress=False)
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r["peak_decoded_mb"] <= 2.0  # half of the 4 MiB budget: the decoder holds a chunk twice
    assert 10 < r["chunks"] < 120
    assert traced_peak < whole / 4
    x = np.load(tmp_path / "video" / "long_video.npy")
    t = np.load(tmp_path / "timestamps" / "long_video.npy")
    clip = 4 / 30
    assert len(x) == math.floor((LONG_SECONDS - clip) / 0.25) + 1 == 120
    assert np.allclose(t[:, 0], np.round(np.arange(120) * 0.25 * 30) / 30) and np.allclose(t[:, 1] - t[:, 0], clip)
    assert np.isfinite(x).all() and x.std(axis=0).max() > 0  # clips of a changing video differ


def test_dense_features_of_a_manifest_in_the_layout_of_a_localization_toolkit(tiny_world, tmp_path):
    r = dense_extract("scratch", tiny_world, tmp_path, modality="both", stride=0.25, preset="cpu-tiny",
                      progress=False)
    rows = list(csv.DictReader(open(tmp_path / "index.csv")))
    assert len(rows) == r["videos"] == 24 and r["reused"] == 0
    clip = 2.0  # the longer of 4 frames and the 2 s audio window
    for row in rows[:3]:
        t = np.load(tmp_path / row["timestamps"])
        v, a, av = (np.load(tmp_path / row[f"{m}_features"]) for m in ("video", "audio", "av"))
        assert len(t) == len(v) == len(a) == len(av) == int(row["windows"]) == math.floor((2.5 - clip) / 0.25) + 1
        assert np.array_equal(av, np.concatenate([v, a], axis=1))
        assert np.allclose(t[:, 1] - t[:, 0], clip) and np.all(np.diff(t[:, 0]) > 0)
    assert r["dims"] == {"video": 64, "audio": 64, "av": 128}
    again = dense_extract("scratch", tiny_world, tmp_path, modality="both", stride=0.25, preset="cpu-tiny",
                          progress=False)
    assert again["reused"] == 24
    with pytest.raises(ConfigError, match="other settings"):
        dense_extract("scratch", tiny_world, tmp_path, modality="both", stride=0.5, preset="cpu-tiny", progress=False)


def test_extract_dense_command(tiny_world, tmp_path, capsys):
    code = main(["extract", "--encoders", "scratch", "--preset", "cpu-tiny", "--data", str(tiny_world), "--out",
                 str(tmp_path), "--dense", "--stride", "0.1", "--clip-len", "8", "--modality", "video",
                 "--no-progress"])
    assert code == 0
    assert "a clip every 0.1 s: 8 video frames (0.267 s);" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "index.csv")))
    assert {r["clip_frames"] for r in rows} == {"8"}
    # 8 frames at 30 fps = 0.267 s; a start every 3 frames up to 2.5 - 0.267 s
    assert {int(r["windows"]) for r in rows} == {math.floor((2.5 - 8 / 30) / 0.1 + 1e-6) + 1}
