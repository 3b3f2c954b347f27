"""Retrieval: recall@k on fixtures small enough to work out by hand, then end to end on real mp4s."""
import argparse
import json

import numpy as np
import pytest

from avssl.errors import ConfigError
from avssl.evaluation import cross_modal_recall, recall_at_k, retrieval
from avssl.cli.evaluation import register
from avssl.evaluation.retrieval import nearest

# Four training videos on the unit circle, labels alternating a, b, a, b.
GALLERY = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
GALLERY_LABELS = ["a", "b", "a", "b"]
QUERIES = np.array([
    [1.0, 0.1],  # a: nearest g0 (a)                       -> hit at 1
    [0.9, 0.5],  # b: g0 (a) then g1 (b)                   -> hit at 2
    [-0.2, -1.0],  # a: g3 (b) then g2 (a)                 -> hit at 2
    [5.0, 0.2],  # c: a label no training video has        -> never a hit
])
QUERY_LABELS = ["a", "b", "a", "c"]


def test_nearest_orders_by_cosine_not_by_distance():
    assert nearest(QUERIES, GALLERY, 4).tolist() == [[0, 1, 3, 2], [0, 1, 3, 2], [3, 2, 0, 1], [0, 1, 3, 2]]
    assert nearest(QUERIES * 100, GALLERY, 1).ravel().tolist() == [0, 0, 3, 0]  # scale does not matter


def test_recall_at_k_by_hand():
    r = recall_at_k(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(1, 2, 4, 20))
    assert r == pytest.approx({"recall@1": 1 / 4, "recall@2": 3 / 4, "recall@4": 3 / 4, "recall@20": 3 / 4})


def test_cross_modal_recall_by_hand():
    video = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    audio = np.array([[0.9, 0.1], [0.1, 0.9], [-1.0, -1.0]])
    # v0 -> a0 first, v1 -> a1 first, v2's own pair a2 points the other way: last of three.
    r = cross_modal_recall(video, audio, labels=["x", "y", "x"], ks=(1, 2, 3))
    for direction in ("video_to_audio", "audio_to_video"):
        assert r[direction]["pair"] == pytest.approx({"recall@1": 2 / 3, "recall@2": 2 / 3, "recall@3": 1.0})
    # video -> audio by label: v2 finds a0 (label x) first; audio -> video: a2 finds v0 (x) first.
    assert r["video_to_audio"]["label"]["recall@1"] == 1.0 and r["audio_to_video"]["label"]["recall@1"] == 1.0
    with pytest.raises(ConfigError, match="shared embedding"):
        cross_modal_recall(video, np.zeros((3, 5)))


def test_retrieval_end_to_end_on_scratch_encoders(tiny_world, tmp_path):
    r = retrieval("scratch", tiny_world, tmp_path, preset="cpu-tiny", clips=2, modality="audio", progress=False)
    fold = r["folds"]["split"]
    assert 0 <= fold["recall@1"] <= fold["recall@5"] <= fold["recall@20"] <= 1
    assert fold["recall@20"] == 1.0  # 16 training videos cover every class
    assert (fold["train_videos"], fold["test_videos"]) == (16, 8)


def test_retrieval_command(tiny_world, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["eval", "retrieval", "--encoders", "scratch", "--preset", "cpu-tiny", "--data",
                              str(tiny_world), "--out", str(tmp_path), "--clips", "2", "--ks", "1,3",
                              "--no-progress"])
    assert args.func(args) == 0
    assert "recall@3" in capsys.readouterr().out
    assert set(json.loads((tmp_path / "retrieval.json").read_text())["mean"]) == {"recall@1", "recall@3"}
