"""Linear evaluation (fc-only): the classifier on known feature sets, then end to end on real mp4s."""
import argparse
import json

import numpy as np
import pytest

from avssl.engine.schedule import learning_rate
from avssl.errors import TrainingDiverged
from avssl.evaluation import linear_eval, linear_probe
from avssl.cli.evaluation import register
from avssl.evaluation.linear import table11_optim, video_scores


def blobs(num_videos=48, clips=4, classes=4, dim=16, spread=0.3, seed=0):
    """Clip features around one centre per class (the same centres for every seed): ``(x, video, y)``."""
    centres = np.random.default_rng(123).normal(size=(classes, dim)) * 3
    rng = np.random.default_rng(seed)
    y = np.arange(num_videos) % classes
    video = np.repeat(np.arange(num_videos), clips)
    x = centres[y[video]] + spread * rng.normal(size=(len(video), dim))
    return x.astype(np.float32), video, y


def test_separable_features_score_near_perfect():
    r = linear_eval(blobs(seed=0), blobs(num_videos=24, seed=1), 4, lrs=(0.004, 0.04), epochs=16)
    assert r["accuracy"] >= 0.95 and r["clip_accuracy"] >= 0.95
    assert r["lr"] in (0.004, 0.04) and set(r["sweep"]) == {"0.004", "0.04"}


def test_shuffled_labels_score_near_chance():
    x, video, y = blobs(num_videos=80, seed=0)
    shuffled = np.random.default_rng(1).permutation(y)  # the features no longer tell the label
    test = blobs(num_videos=80, seed=2)
    r = linear_eval((x, video, shuffled), test, 4, lrs=(0.01,), epochs=16)
    assert r["accuracy"] <= 0.45 and r["sweep"] == {}  # chance is 0.25


def test_a_diverging_probe_raises_naming_its_rate_instead_of_reporting_garbage():
    with pytest.raises(TrainingDiverged, match=r"linear classifier's loss became (nan|inf).* at lr 1e\+30"):
        linear_eval(blobs(seed=0), blobs(num_videos=24, seed=1), 4, lrs=(1e30,), epochs=2)


def test_the_schedule_has_table_11s_shape():
    o = table11_optim(0.1, 8)  # exactly we/se/te = 2/2/8, gamma 0.01
    assert (o.warmup_epochs, o.step_epochs, o.max_epochs, o.gamma, o.weight_decay) == (2, 2, 8, 0.01, 0.005)
    assert learning_rate(o, 1.0) == pytest.approx(0.05) and learning_rate(o, 3.0) == pytest.approx(0.1)
    assert learning_rate(o, 5.0) == pytest.approx(1e-3)
    assert learning_rate(table11_optim(0.1, 32), 20) == pytest.approx(1e-3)  # 32 epochs: 8/8/32


def test_video_scores_average_clip_softmax():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    video = np.array([0, 0, 1, 1])  # video 0 averages to (0.55, 0.45), video 1 to (0.45, 0.55)
    s = video_scores(probs, video, np.array([0, 1]))
    assert s["accuracy"] == 1.0 and s["loss"] == pytest.approx(-np.log(0.55))
    assert video_scores(probs, video, np.array([0, 1, 1]))["accuracy"] == pytest.approx(2 / 3)  # no rows: wrong


def test_linear_probe_end_to_end_on_scratch_encoders(tiny_world, tmp_path):
    r = linear_probe("scratch", tiny_world, tmp_path, preset="cpu-tiny", train_clips=3, test_clips=3,
                     lrs=(0.01, 0.04), epochs=8, val_fraction=0.25, progress=False)
    fold = r["folds"]["split"]
    assert 0 <= fold["accuracy"] <= 1 and 0 <= fold["clip_accuracy"] <= 1
    assert (fold["train_videos"], fold["test_videos"], fold["test_clips"]) == (16, 8, 24)
    assert set(fold["sweep"]) == {"0.01", "0.04"} and r["mean"]["accuracy"] == fold["accuracy"]
    assert json.loads((tmp_path / "linear.json").read_text())["folds"]["split"]["lr"] == fold["lr"]
    assert "| split |" in (tmp_path / "linear.md").read_text()


def test_linear_command_on_audio(tiny_world, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["eval", "linear", "--encoders", "scratch", "--preset", "cpu-tiny", "--data",
                              str(tiny_world), "--out", str(tmp_path), "--modality", "audio", "--train-clips", "2",
                              "--test-clips", "2", "--lrs", "0.02", "--epochs", "4", "--no-progress"])
    assert args.func(args) == 0
    assert "Linear evaluation" in capsys.readouterr().out
    assert 0 <= json.loads((tmp_path / "linear.json").read_text())["mean"]["accuracy"] <= 1
    with pytest.raises(SystemExit):  # a usage error, not a traceback
        parser.parse_args(["eval", "linear", "--encoders", "scratch", "--data", "x", "--out", "y", "--lrs", "fast"])
    assert "expected 'paper' or positive numbers" in capsys.readouterr().err
