"""``avssl data prepare``: a training-ready copy of a dataset, on real mp4 files written here.

A prepared clip must be the original's clip (same frames within codec tolerance, audio in sync), the
copy must have a short GOP without B-frames and mono 16 kHz audio, a second run must keep what the
first wrote, bad inputs must be skipped and reported, and the new manifest must trace back and load.
"""
import json
import os
import shutil

import av
import numpy as np
import pytest

from avssl.cli.data import prepare_target
from avssl.data.manifest import Manifest, load_manifest
from avssl.data.media import decode_clip, decode_full, probe
from avssl.data.prepare import (
    SOURCE_COLUMN, PrepareTarget, is_prepared, output_geometry, output_paths, prepare_dataset,
)
from avssl.data.writer import write_av
from avssl.errors import ConfigError, MediaError
from conftest import cli, run_cli

FPS, SR_IN, SECONDS = 30, 44100, 3.0
FLASH_FRAME = 45  # a white frame at 1.5 s, with a click in the audio at the same time
TARGET = PrepareTarget(preset="test", short_side=48, fps=30.0, sample_rate=16000, keyframe_interval=0.5,
                       min_duration=2.0)


def _content(seed: int):
    """Every frame a different smooth random picture (a wrong frame differs by ~50 grey levels), one
    white flash frame; stereo 44.1 kHz gliding tones (no period, so a shift shows in the correlation)
    with a little noise and a loud click at the flash."""
    rng = np.random.default_rng(seed)
    n, h, w = int(SECONDS * FPS), 96, 128
    coarse = rng.integers(0, 256, size=(n, 7, 9, 3)).astype(np.float32)
    ys, xs = np.linspace(0, 6, h), np.linspace(0, 8, w)
    y0, x0 = np.floor(ys).astype(int).clip(0, 5), np.floor(xs).astype(int).clip(0, 7)
    fy, fx = (ys - y0)[None, :, None, None], (xs - x0)[None, None, :, None]
    c = coarse
    frames = ((c[:, y0][:, :, x0] * (1 - fy) * (1 - fx) + c[:, y0 + 1][:, :, x0] * fy * (1 - fx)
               + c[:, y0][:, :, x0 + 1] * (1 - fy) * fx + c[:, y0 + 1][:, :, x0 + 1] * fy * fx)).astype(np.uint8)
    frames[FLASH_FRAME] = 255
    t = np.arange(int(SECONDS * SR_IN)) / SR_IN
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    glide = np.stack([np.sin(2 * np.pi * (300 * t + 200 * t**2)), np.sin(2 * np.pi * (500 * t + 150 * t**2))])
    audio = (0.3 * glide + 0.01 * rng.standard_normal((2, t.size))) * envelope
    click = int(FLASH_FRAME / FPS * SR_IN)
    audio[:, click : click + 200] = 0.9
    return frames, audio.astype(np.float32)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A manifest of two good videos (default GOP with B-frames; 10-frame GOP), a corrupt file and a
    1 s video (shorter than the 2 s clip), with labels, splits and a metadata column."""
    root = tmp_path_factory.mktemp("prepare_src")
    (root / "a").mkdir()
    (root / "b").mkdir()
    for i, gop in enumerate((None, 10)):
        frames, audio = _content(i)
        write_av(root / "a" / f"clip{i}.mp4", frames, FPS, audio, SR_IN, gop=gop)
    good = (root / "a" / "clip0.mp4").read_bytes()
    (root / "b" / "corrupt.mp4").write_bytes(good[: len(good) // 3])  # the moov atom is at the end: cut off
    frames, audio = _content(7)
    write_av(root / "b" / "short.mp4", frames[:30], FPS, audio[:, :SR_IN], SR_IN)
    rows = ["path,label,split,camera", "a/clip0.mp4,dog,train,c0", "a/clip1.mp4,cat,test,c1",
            "b/corrupt.mp4,dog,train,c2", "b/short.mp4,cat,train,c3"]
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def prepared(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepare_out") / "copy"
    result = prepare_dataset(Manifest.read(dataset / "list.csv"), out, TARGET, workers=2, progress=False)
    return out, result


def _copy_of(out, name):
    return str(out / "a" / name)


@pytest.mark.parametrize("name", ["clip0.mp4", "clip1.mp4"])
def test_prepared_clip_matches_the_original_clip(dataset, prepared, name):
    out, _ = prepared
    source, copy = str(dataset / "a" / name), _copy_of(out, name)
    for start in (0.0, 0.41, 0.9, 1.37):
        a, wa = decode_clip(source, start, 8, FPS, 1.0, 16000, short_side=48)
        b, wb = decode_clip(copy, start, 8, FPS, 1.0, 16000, short_side=48)
        assert a.shape == b.shape == (8, 48, 64, 3)
        diff = np.abs(a.astype(np.int16) - b).mean(axis=(1, 2, 3))
        assert diff.max() < 10, (start, diff)  # re-encoding at crf 23 of content that changes every frame
        # The tolerance tells frames apart: each clip frame is far from its neighbour in the original.
        neighbour = np.abs(a[1:].astype(np.int16) - b[:-1]).mean(axis=(1, 2, 3))
        assert neighbour.min() > 3 * diff.max(), (start, neighbour, diff)
        # Audio: the same samples up to AAC noise, and no shift (cross-correlation peaks at lag 0).
        assert np.abs(wa - wb).mean() < 0.2 * np.abs(wa).mean(), start
        lags = np.arange(-600, 601)
        corr = [np.dot(wa[max(0, k): len(wa) + min(0, k)], wb[max(0, -k): len(wb) - max(0, k)]) for k in lags]
        assert abs(lags[int(np.argmax(corr))]) <= 2, start


def test_flash_and_click_stay_within_one_video_frame(dataset, prepared):
    out, _ = prepared
    video, audio = decode_full(_copy_of(out, "clip1.mp4"), FPS, sample_rate=16000)
    flash = int(np.argmax(video.mean(axis=(1, 2, 3))))
    click = int(np.argmax(np.abs(audio)))
    assert flash == FLASH_FRAME
    assert abs(click / 16000 - flash / FPS) < 1 / FPS, (click / 16000, flash / FPS)


@pytest.mark.parametrize("name", ["clip0.mp4", "clip1.mp4"])
def test_copy_has_a_short_gop_without_b_frames_and_mono_16k_audio(prepared, name):
    out, _ = prepared
    copy = _copy_of(out, name)
    info = probe(copy)
    assert (info.width, info.height, info.fps) == (64, 48, 30.0)
    assert (info.audio_channels, info.audio_rate) == (1, 16000)
    assert abs(info.video_duration - SECONDS) < 1e-3 and abs(info.audio_duration - SECONDS) < 0.07
    with av.open(copy) as c:
        v = c.streams.video[0]
        packets = [p for p in c.demux(v) if p.pts is not None]
        assert all(p.pts == p.dts for p in packets)  # decode order is display order
        keyframes = [i for i, p in enumerate(packets) if p.is_keyframe]
        assert keyframes == list(range(0, len(packets), 15))  # every 0.5 s at 30 fps
        c.seek(0)
        types = {av.video.frame.PictureType(frame.pict_type).name for frame in c.decode(video=0)}
        assert "B" not in types and types <= {"I", "P"}, types
    # The original really had B-frames (so the check above is not vacuous for clip0).
    with av.open(_source_for(out, name)) as c:
        types = {av.video.frame.PictureType(frame.pict_type).name for frame in c.decode(video=0)}
    if name == "clip0.mp4":
        assert "B" in types


def _source_for(out, name):
    rows = Manifest.read(out / "manifest.csv")
    return next(item.meta[SOURCE_COLUMN] for item in rows if item.path.endswith(name))


def test_bad_inputs_are_skipped_and_reported(prepared):
    out, result = prepared
    assert result.prepared == 2 and result.kept == 0
    reasons = dict((os.path.basename(p), r) for p, r in result.skipped.files)
    assert set(reasons) == {"corrupt.mp4", "short.mp4"}
    assert reasons["corrupt.mp4"].startswith("unreadable:"), reasons
    assert "shorter than a clip" in reasons["short.mp4"], reasons
    report = json.loads((out / "skipped.json").read_text())
    assert report["skipped"] == 2 and {os.path.basename(f["path"]) for f in report["files"]} == set(reasons)
    assert not (out / "b").exists() or not any((out / "b").iterdir())


def test_new_manifest_keeps_source_paths_and_loads(dataset, prepared):
    out, result = prepared
    manifest = load_manifest(result.manifest)
    assert [os.path.basename(i.path) for i in manifest] == ["clip0.mp4", "clip1.mp4"]
    assert all(i.path.startswith(str(out)) and os.path.isfile(i.path) for i in manifest)
    assert [i.meta[SOURCE_COLUMN] for i in manifest] == [str(dataset / "a" / "clip0.mp4"),
                                                          str(dataset / "a" / "clip1.mp4")]
    assert [(i.label, i.split, i.meta["camera"]) for i in manifest] == [("dog", "train", "c0"), ("cat", "test", "c1")]
    assert "a/clip0.mp4" in (out / "manifest.csv").read_text()  # relative: the folder can move
    # avssl trains on it: probe, entries, a real dataset item of the cpu-tiny preset.
    from avssl.config import preset
    from avssl.data.dataset import prepare_entries
    from avssl.data.pipeline import clip_spec, make_dataset
    from avssl.data.probe_index import probe_manifest

    cfg = preset("cpu-tiny")
    spec = clip_spec(cfg)
    entries, skipped = prepare_entries(manifest, probe_manifest(manifest, progress=False), spec,
                                       class_names=manifest.class_names())
    assert len(entries) == 2 and not skipped
    item = make_dataset(cfg, entries, spec, "train")[0]
    assert tuple(item["video"].shape) == (3, spec.num_frames, cfg.video.crop, cfg.video.crop)


def test_resume_keeps_finished_files_and_redoes_changed_ones(dataset, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(dataset, src)
    manifest = Manifest.read(src / "list.csv")
    out = tmp_path / "copy"
    first = prepare_dataset(manifest, out, TARGET, workers=1, progress=False)
    assert first.prepared == 2
    stamps = {p: os.stat(p).st_mtime_ns for p in (out / "a" / "clip0.mp4", out / "a" / "clip1.mp4")}
    again = prepare_dataset(manifest, out, TARGET, workers=1, progress=False)
    assert (again.prepared, again.kept, len(again.skipped)) == (0, 2, 2)
    assert {p: os.stat(p).st_mtime_ns for p in stamps} == stamps
    # A changed source, or other settings, is redone; a damaged copy too.
    os.utime(src / "a" / "clip0.mp4", ns=(1, 1))
    (out / "a" / "clip1.mp4").write_bytes(b"not an mp4")
    third = prepare_dataset(manifest, out, TARGET, workers=1, progress=False)
    assert (third.prepared, third.kept) == (2, 0)
    other = PrepareTarget(**{**TARGET.__dict__, "crf": 30})
    assert not is_prepared(out / "a" / "clip0.mp4", other.stamp(str(src / "a" / "clip0.mp4")))
    assert not list(out.rglob(".*.tmp.mp4"))  # no temporary left behind


def test_nothing_preparable_is_a_clear_error(dataset, tmp_path):
    manifest = Manifest.read(dataset / "list.csv").subset([2, 3])
    with pytest.raises(MediaError, match="no file could be prepared"):
        prepare_dataset(manifest, tmp_path / "copy", TARGET, workers=1, progress=False)
    assert json.loads((tmp_path / "copy" / "skipped.json").read_text())["skipped"] == 2


def test_geometry_paths_and_presets():
    assert output_geometry(640, 360, 256) == (456, 256)  # 455.1 rounded to even
    assert output_geometry(360, 640, 256) == (256, 456)
    assert output_geometry(160, 120, 256) == (160, 120)  # never upscaled
    assert output_geometry(162, 121, None) == (162, 120)
    paths = output_paths(["/d/x/a.mp4", "/d/x/a.avi", "/d/y/b.mkv"], "/o")
    assert paths == {"/d/x/a.mp4": "/o/x/a.mp4.mp4", "/d/x/a.avi": "/o/x/a.avi.mp4", "/d/y/b.mkv": "/o/y/b.mp4"}
    t = prepare_target("xdc-paper")
    assert (t.short_side, t.fps, t.sample_rate, t.min_duration) == (256, 30.0, 16000, 2.0)
    with pytest.raises(ConfigError):
        prepare_target("no-such-preset")
    with pytest.raises(ConfigError):
        PrepareTarget(preset="x", short_side=48, fps=30.0, keyframe_interval=0)


def test_cli_prepare_and_resume(dataset, tmp_path, env):
    out = tmp_path / "copy"
    args = cli("data", "prepare", dataset / "list.csv", "--out", out, "--preset", "cpu-tiny", "--workers", "2",
               "--no-progress")
    first = run_cli(args, env)
    assert "2 file(s) prepared, 0 already prepared" in first.stdout and "2 skipped" in first.stdout
    assert "corrupt.mp4" in first.stdout and "Traceback" not in first.stderr
    assert probe(out / "a" / "clip0.mp4").height == 20  # cpu-tiny: short side 20
    second = run_cli(args, env)
    assert "0 file(s) prepared, 2 already prepared and kept" in second.stdout
    bad = run_cli(cli("data", "prepare", dataset / "list.csv", "--out", out, "--preset", "cpu-tinny"), env, expect=2)
    assert "cpu-tinny" in bad.stderr and "Traceback" not in bad.stderr
