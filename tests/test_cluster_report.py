"""The cluster report (evaluation/cluster_report.py): statistics on a fixture small enough to work out by
hand, then reports of runs over real mp4s."""
import argparse
import json
import math

import numpy as np
import pytest

from avssl.cli.evaluation import register
from avssl.config import resolve
from avssl.engine.pretrain import pretrain
from avssl.errors import ConfigError
from avssl.evaluation import cluster_report
from avssl.evaluation.cluster_report import closest, clustering_stats
from conftest import non_uniform_png

# Six videos, two clusters: A = {a, a, b}, B = {b, b, b}.
ASSIGN = np.array([0, 0, 0, 1, 1, 1])
LABELS = ["a", "a", "b", "b", "b", "b"]


def test_purity_nmi_ari_by_hand():
    s = clustering_stats(ASSIGN, LABELS, k=2)
    assert s["purity"] == pytest.approx(5 / 6)  # majorities: 2 of A, 3 of B
    h_c = math.log(2)  # clusters split 3/3
    h_l = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))  # labels split 2/4
    mi = 2 / 6 * math.log(2) + 1 / 6 * math.log(1 / 2) + 3 / 6 * math.log(3 / 2)  # cells (A,a) (A,b) (B,b)
    assert s["nmi"] == pytest.approx(mi / ((h_c + h_l) / 2))
    # ARI: pairs within cells 1 + 3 = 4; rows 3 + 3 = 6; columns 1 + 6 = 7; all pairs 15.
    expected = 6 * 7 / 15
    assert s["ari"] == pytest.approx((4 - expected) / ((6 + 7) / 2 - expected))
    assert [(c["rank"], c["cluster"], c["purity"], c["labels"]) for c in s["clusters"]] == [
        (1, 1, 1.0, [["b", 1.0]]),
        (2, 0, pytest.approx(2 / 3), [["a", pytest.approx(2 / 3)], ["b", pytest.approx(1 / 3)]])]



def test_unassigned_and_unlabelled_videos_are_left_out():
    s = clustering_stats(np.array([0, 0, -1, 1]), ["a", "a", "b", None], k=2)
    assert (s["videos"], s["scored"], s["purity"]) == (4, 2, 1.0)



def test_closest_members_come_first():
    assert closest(ASSIGN, np.array([0.5, 0.1, np.nan, 0.3, 0.2, 0.1]), 0, 5).tolist() == [1, 0, 2]



def test_one_clustering_and_clear_errors(fake_run, tiny_world, tmp_path):
    run, *_ = fake_run
    r = cluster_report(run, tiny_world, tmp_path / "one", clustering="video", grid_rows=1, grid_cols=1)
    assert list(r["clusterings"]) == ["video"]
    with pytest.raises(ConfigError, match="no clustering 'joint'"):
        cluster_report(run, tiny_world, tmp_path / "x", clustering="joint")
    with pytest.raises(ConfigError, match="labelled manifest"):
        cluster_report(run, None, tmp_path / "x")  # this run recorded no labels



def test_clusters_of_a_real_pretraining_run(tiny_world, tmp_path, capsys):
    cfg = resolve("cpu-tiny", "xdc", ["iterations=1", "optim.max_epochs=1"])
    pretrain(cfg, tiny_world, tmp_path / "run", progress=False)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["eval", "clusters", "--run", str(tmp_path / "run"), "--data", str(tiny_world),
                              "--out", str(tmp_path / "report"), "--grid-rows", "2", "--grid-cols", "2"])
    assert args.func(args) == 0
    assert "## audio" in capsys.readouterr().out
    result = json.loads((tmp_path / "report" / "clusters.json").read_text())
    for s in result["clusterings"].values():
        assert 0 <= s["purity"] <= 1 and -1 <= s["ari"] <= 1 and 0 <= s["nmi"] <= 1
        assert non_uniform_png(tmp_path / "report" / s["grid"])
        assert s["tsne"]["points"] == 24 and non_uniform_png(tmp_path / "report" / s["tsne"]["picture"])



def test_all_iterations_of_a_run_that_kept_only_its_last(fake_run, tiny_world, tmp_path):
    run, *_ = fake_run  # made without clusters/iter_XX, as runs before this version
    r = cluster_report(run, tiny_world, tmp_path / "out", iteration="all", grid_rows=1, grid_cols=1, tsne_points=0)
    assert "iterations" not in r and set(r["clusterings"]) == {"audio", "video"}

