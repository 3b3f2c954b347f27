"""avssl.evaluation.features: frozen features for evaluation (real mp4s, scratch cpu-tiny encoders):
clip and video levels, the feature cache and its key, ``avssl eval extract``."""
import argparse
import csv
import json
import os

import numpy as np
import pytest

from avssl.config import preset, resolve
from avssl.data.dataset import prepare_entries
from avssl.data.pipeline import clip_spec
from avssl.data.manifest import Manifest
from avssl.data.probe_index import probe_manifest
from avssl.runs import scratch_encoders
from avssl.engine.pretrain import pretrain
from avssl.errors import ConfigError
from avssl.evaluation import extract, extract_split_features, load_source
from avssl.cli.evaluation import register
from avssl.evaluation.features import clip_outputs, manifest_clip_features


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One feature cache for the module: the first test extracts, the others reuse."""
    return tmp_path_factory.mktemp("features")


def test_video_level_is_the_mean_of_its_clips_and_splits_partition_the_manifest(tiny_world, cache):
    source = load_source("scratch", preset="cpu-tiny")
    clips = extract_split_features(source, "video", tiny_world, clips=3, level="clip", cache_dir=cache, progress=False)
    videos = extract_split_features(source, "video", tiny_world, clips=3, level="video", cache_dir=cache,
                                    progress=False)
    assert len(videos.paths) == 24 and videos.x.shape == (24, source.encoders.modules["video"].out_dim)
    assert clips.x.shape[0] == 24 * 3 and sorted(set(clips.clip.tolist())) == [0, 1, 2]
    for v in (0, 7, 23):
        np.testing.assert_allclose(videos.x[v], clips.x[clips.video == v].mean(0), rtol=1e-5, atol=1e-6)
    train = extract_split_features(source, "video", tiny_world, "train", clips=3, cache_dir=cache, progress=False)
    test = extract_split_features(source, "video", tiny_world, "test", clips=3, cache_dir=cache, progress=False)
    assert len(train.paths) == 16 and len(test.paths) == 8 and not set(train.paths) & set(test.paths)
    assert sum(p.name.startswith("video-3clips") for p in cache.iterdir()) == 1  # one extraction, four calls


def test_the_cache_key_follows_the_weights_and_the_clip_settings(tiny_world, cache):
    a = load_source("scratch", preset="cpu-tiny", seed=0)
    assert load_source("scratch", preset="cpu-tiny", seed=0).key == a.key
    assert load_source("scratch", preset="cpu-tiny", seed=1).key != a.key
    manifest = Manifest.read(tiny_world)
    t1 = manifest_clip_features(a, "audio", manifest, 2, cache, progress=False)
    t2 = manifest_clip_features(load_source(scratch_encoders(preset("cpu-tiny"), seed=0)), "audio", manifest, 2,
                                cache, progress=False)
    np.testing.assert_array_equal(np.asarray(t1.values), np.asarray(t2.values))  # same weights -> same entry
    assert sum(p.name.startswith("audio-2clips") for p in cache.iterdir()) == 1


def test_clip_outputs_keep_rows_of_entries_in_any_order(tiny_world, tmp_path):
    source = load_source("scratch", preset="cpu-tiny")
    manifest = Manifest.read(tiny_world)
    spec = clip_spec(source.cfg, ("audio",))
    entries, _ = prepare_entries(manifest, probe_manifest(manifest, progress=False), spec)
    module = source.encoders.modules["audio"]
    full, _ = clip_outputs(module, "audio", source.cfg, entries, 2, tmp_path / "full", progress=False)
    picked = [entries[9], entries[2], entries[17]]  # indices 9, 2, 17 at positions 0, 1, 2
    part, _ = clip_outputs(module, "audio", source.cfg, picked, 2, tmp_path / "part", progress=False)
    assert part.paths == [e.path for e in picked] and part.video.tolist() == [0, 0, 1, 1, 2, 2]
    for pos, e in enumerate(picked):
        np.testing.assert_allclose(part.values[part.video == pos], full.values[full.video == e.index], atol=1e-5)


def test_extract_writes_features_and_an_index(tiny_world, cache, tmp_path):
    r = extract("scratch", tiny_world, tmp_path, modality="both", clips=2, level="clip", preset="cpu-tiny",
                cache_dir=cache, progress=False)
    for m in ("video", "audio"):
        x = np.load(tmp_path / f"{m}_features.npy")
        rows = list(csv.DictReader(open(tmp_path / f"{m}_index.csv")))
        assert x.shape[0] == len(rows) == 48 == r["outputs"][m]["rows"]
        assert {row["split"] for row in rows} == {"train", "test"} and {row["clip"] for row in rows} == {"0", "1"}
        assert all(os.path.isfile(row["path"]) for row in rows)
    assert (tmp_path / "extract.md").read_text().startswith("# Features of scratch")


def test_extract_command(tiny_world, cache, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["extract", "--encoders", "scratch", "--preset", "cpu-tiny", "--data", str(tiny_world),
                              "--out", str(tmp_path), "--clips", "3", "--cache", str(cache), "--no-progress"])
    assert args.func(args) == 0
    assert np.load(tmp_path / "video_features.npy").shape[0] == 24
    assert "24 videos" in capsys.readouterr().out


def test_scratch_needs_a_preset_and_only_scratch_takes_one(tmp_path):
    with pytest.raises(ConfigError, match="--preset"):
        load_source("scratch")
    with pytest.raises(ConfigError, match="only applies to --encoders scratch"):
        load_source(tmp_path / "run", preset="cpu-tiny")


def test_a_pretraining_run_is_evaluated_with_its_own_clip_settings(tiny_world, cache, tmp_path):
    cfg = resolve("cpu-tiny", "xdc", ["iterations=1", "optim.max_epochs=1", "video.crop=12"])
    pretrain(cfg, tiny_world, tmp_path / "run", progress=False)
    by_dir, by_file = load_source(tmp_path / "run"), load_source(tmp_path / "run" / "encoders.pt")
    assert by_dir.key == by_file.key != load_source("scratch", preset="cpu-tiny").key
    f = extract_split_features(by_dir, "video", tiny_world, "test", clips=2, cache_dir=cache, progress=False)
    assert f.x.shape == (8, by_dir.encoders.modules["video"].out_dim) and np.isfinite(f.x).all()
    metas = [json.loads((d / "meta.json").read_text()) for d in cache.iterdir()]
    assert [m["crop"] for m in metas if m["encoder"] == by_dir.key] == [12]  # the run's crop, not the preset's
