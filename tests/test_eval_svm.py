"""Linear SVM: the classifier on known feature sets, then folds end to end on real mp4s."""
import argparse
import json

import numpy as np
import pytest

from avssl.data.manifest import Manifest
from avssl.errors import ConfigError
from avssl.evaluation import svm_eval, svm_probe
from avssl.cli.evaluation import register


def blobs(n=60, classes=3, dim=8, seed=0):
    centres = np.random.default_rng(7).normal(size=(classes, dim)) * 3
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    return centres[y] + 0.3 * rng.normal(size=(n, dim)), y


def test_separable_features_score_near_perfect_with_c_chosen_on_validation():
    (x, y), (tx, ty) = blobs(seed=0), blobs(seed=1)
    r = svm_eval(x, y, tx, ty, cs=(1e-3, 1.0, 100.0))
    assert r["accuracy"] >= 0.95 and r["C"] in (1e-3, 1.0, 100.0)
    assert set(r["sweep"]) == {"0.001", "1.0", "100.0"}
    assert all(set(v) == {"val_accuracy", "test_accuracy"} for v in r["sweep"].values())


def test_shuffled_labels_score_near_chance():
    (x, y), (tx, ty) = blobs(n=150, seed=0), blobs(n=150, seed=1)
    r = svm_eval(x, np.random.default_rng(3).permutation(y), tx, ty, cs=(1.0,))
    assert r["accuracy"] <= 0.5 and r["sweep"] == {}  # chance is 1/3


@pytest.fixture
def two_folds(tiny_world, tmp_path):
    """The tiny world with official-style fold columns: fold 1 = its split, fold 2 = other test videos."""
    m = Manifest.read(tiny_world)
    seen = {}
    for item in m:
        item.meta["split_1"] = item.split
        seen[item.label] = seen.get(item.label, 0) + 1
        item.meta["split_2"] = "test" if seen[item.label] > 4 else "train"
    path = tmp_path / "folds.csv"
    m.write(path)
    return path


def test_every_fold_is_reported_with_the_mean(two_folds, tmp_path):
    r = svm_probe("scratch", two_folds, tmp_path, preset="cpu-tiny", clips=2, cs=(0.1, 10.0), val_fraction=0.25,
                  progress=False)
    assert list(r["folds"]) == ["1", "2"]
    accs = [r["folds"][f]["accuracy"] for f in ("1", "2")]
    assert all(0 <= a <= 1 for a in accs)
    assert r["mean"]["accuracy"] == pytest.approx(np.mean(accs)) and r["std"]["accuracy"] == pytest.approx(np.std(accs))
    assert r["folds"]["2"]["test_videos"] == 8 and r["folds"]["1"]["test_videos"] == 8
    md = (tmp_path / "svm.md").read_text()
    assert "| 1 |" in md and "| 2 |" in md and "**mean**" in md
    assert len(list((tmp_path / "features").iterdir())) == 1  # both folds read one extraction

    only = svm_probe("scratch", two_folds, tmp_path / "one", preset="cpu-tiny", clips=2, cs=(0.1,), folds="2",
                     cache_dir=tmp_path / "features", progress=False)
    assert list(only["folds"]) == ["2"] and only["folds"]["2"]["accuracy"] == pytest.approx(
        svm_probe("scratch", two_folds, tmp_path / "one", preset="cpu-tiny", clips=2, cs=(0.1,), folds="1,2",
                  cache_dir=tmp_path / "features", progress=False)["folds"]["2"]["accuracy"])


def test_unknown_test_labels_fail_before_any_extraction(tiny_world, tmp_path):
    m = Manifest.read(tiny_world)
    next(item for item in m if item.split == "test").label = "never-trained"
    m.write(tmp_path / "bad.csv")
    with pytest.raises(ConfigError, match="never-trained"):
        svm_probe("scratch", tmp_path / "bad.csv", tmp_path / "out", preset="cpu-tiny", progress=False)
    assert not (tmp_path / "out" / "features").exists()


def test_svm_command(tiny_world, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["eval", "svm", "--encoders", "scratch", "--preset", "cpu-tiny", "--data",
                              str(tiny_world), "--out", str(tmp_path), "--clips", "2", "--cs", "0.01,1",
                              "--val-fraction", "0.25", "--no-progress"])
    assert args.func(args) == 0
    assert "Linear SVM" in capsys.readouterr().out
    assert json.loads((tmp_path / "svm.json").read_text())["folds"]["split"]["C"] in (0.01, 1.0)
