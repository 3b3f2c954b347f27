"""Late fusion (a+v): the concatenation itself, a case only fusion can solve, and the evaluation end to end
on real mp4 files beside the single-modality numbers."""
import json

import numpy as np
import pytest

from avssl.cli import main
from avssl.config import preset
from avssl.runs import LoadedEncoders, scratch_encoders
from avssl.errors import ConfigError
from avssl.evaluation.fusion import fuse, fusion
from avssl.evaluation.svm import svm_eval


def test_fuse_concatenates_unit_length_halves():
    v = np.array([[3.0, 4.0], [0.0, 2.0]])
    a = np.array([[100.0, 0.0, 0.0], [0.0, 0.0, -5.0]])
    x = fuse(v, a)
    assert x.shape == (2, 5)
    assert np.allclose(x[:, :2], [[0.6, 0.8], [0.0, 1.0]]) and np.allclose(x[:, 2:], [[1, 0, 0], [0, 0, -1]])
    assert np.allclose(np.linalg.norm(x, axis=1), np.sqrt(2))  # neither modality dominates by its scale


def test_fusion_solves_what_neither_modality_can_alone():
    """Four classes: video tells {0,1} from {2,3}, audio tells {0,2} from {1,3}; only both name the class."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    v = np.stack([np.where(y < 2, 1.0, -1.0), np.ones_like(y, dtype=float)], 1) + 0.05 * rng.normal(size=(120, 2))
    a = np.stack([np.where(y % 2 == 0, 1.0, -1.0), np.ones_like(y, dtype=float)], 1) + 0.05 * rng.normal(size=(120, 2))
    train, test = np.arange(120) % 3 != 0, np.arange(120) % 3 == 0
    acc = {name: svm_eval(x[train], y[train], x[test], y[test], cs=(1.0,))["accuracy"]
           for name, x in (("video", v), ("audio", a), ("a+v", fuse(v, a)))}
    assert acc["video"] <= 0.6 and acc["audio"] <= 0.6 and acc["a+v"] == 1.0


@pytest.mark.parametrize("classifier", ["svm", "linear"])
def test_fusion_end_to_end_beside_each_modality(classifier, tiny_world, tmp_path):
    r = fusion("scratch", tiny_world, tmp_path, classifier=classifier, clips=2, preset="cpu-tiny",
               cache_dir=tmp_path.parent / "shared-features", progress=False)
    fold = r["folds"]["split"]
    for branch in ("video", "audio", "a+v"):
        assert 0.0 <= fold[branch] <= 1.0 and branch in r["mean"]
    assert fold["dims"]["a+v"] == fold["dims"]["video"] + fold["dims"]["audio"] == 128
    assert (fold["train_videos"], fold["test_videos"]) == (16, 8)  # the same videos for all three
    md = (tmp_path / "fusion.md").read_text()
    assert "| fold | video | audio | a+v |" in md and classifier in md
    assert json.loads((tmp_path / "fusion.json").read_text())["settings"]["classifier"] == classifier


def test_fusion_needs_both_encoders(tiny_world, tmp_path):
    enc = scratch_encoders(preset("cpu-tiny"))
    video_only = LoadedEncoders(enc.cfg, "xdc-video-video", {"video_a": "video"}, {"video_a": enc.modules["video"]})
    with pytest.raises(ConfigError, match="no audio encoder"):
        fusion(video_only, tiny_world, tmp_path, progress=False)


def test_eval_fusion_command(tiny_world, tmp_path, capsys):
    code = main(["eval", "fusion", "--encoders", "scratch", "--preset", "cpu-tiny", "--data", str(tiny_world),
                 "--out", str(tmp_path), "--clips", "2", "--cs", "0.1,1", "--cache", str(tmp_path.parent /
                                                                                          "shared-features"),
                 "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Late fusion (a+v)" in out and "| split |" in out
