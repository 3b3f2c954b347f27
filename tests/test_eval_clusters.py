"""Cluster reports: statistics on a fixture small enough to work out by hand, then pictures and HTML of
runs over real mp4s."""
import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avssl.config import resolve
from avssl.data.manifest import Manifest
from avssl.engine.pretrain import pretrain
from avssl.errors import ConfigError
from avssl.evaluation import cluster_report
from avssl.evaluation.cluster_report import closest, clustering_stats
from avssl.runs import read_run_videos
from avssl.cli.evaluation import register

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


def test_videos_csv_paths_survive_commas_quotes_and_unicode(tmp_path):
    paths = ['/d/a,"b".mp4', "/d/café.mp4"]
    lines = ["index,path,label"] + [f"{i},{json.dumps(p)},{json.dumps(lab)}" for i, (p, lab) in
                                    enumerate(zip(paths, ["x,y", ""]))]
    (tmp_path / "videos.csv").write_text("\n".join(lines) + "\n")
    assert read_run_videos(tmp_path) == (paths, ["x,y", None])


@pytest.fixture
def fake_run(tiny_world, tmp_path):
    """A run directory over the tiny world: the video clustering follows the labels except one video."""
    m = Manifest.read(tiny_world)
    run = tmp_path / "run"
    (run / "clusters").mkdir(parents=True)
    lines = ["index,path,label"] + [f"{i},{json.dumps(it.path)},\"\"" for i, it in enumerate(m)]
    (run / "videos.csv").write_text("\n".join(lines) + "\n")
    resolve("cpu-tiny", "xdc").save(run / "config.json")
    labels = np.unique([it.label for it in m], return_inverse=True)[1]
    video = labels.copy()
    video[0] = (video[0] + 1) % 4
    rng = np.random.default_rng(0)
    for name, a in (("video", video), ("audio", rng.permutation(labels))):
        np.save(run / "clusters" / f"{name}_assignments.npy", a)
        np.save(run / "clusters" / f"{name}_distances.npy", rng.random(len(a)).astype(np.float32))
        np.save(run / "clusters" / f"{name}_centroids.npy", np.zeros((4, 8), np.float32))
    return run, labels, video


def _non_uniform_png(path):
    img = np.asarray(Image.open(path).convert("RGB"))
    return img.size > 0 and img.reshape(-1, 3).std(0).max() > 10


def test_report_of_every_clustering_with_grid_and_html(fake_run, tiny_world, tmp_path):
    run, labels, video = fake_run
    r = cluster_report(run, tiny_world, tmp_path / "out", grid_rows=2, grid_cols=3)
    assert set(r["clusterings"]) == {"audio", "video"}
    v = r["clusterings"]["video"]
    assert v["purity"] == pytest.approx(23 / 24) and v["scored"] == 24 and v["sizes"]["k"] == 4
    out = tmp_path / "out"
    for name in ("video", "audio"):
        assert _non_uniform_png(out / f"{name}_grid.png")
        assert f"src='{name}_grid.png'" in (out / "clusters.html").read_text()
    # the audio grid carries a log-mel strip under each frame
    assert Image.open(out / "audio_grid.png").height > Image.open(out / "video_grid.png").height
    assert "## video" in (out / "clusters.md").read_text()


def test_tsne_picture_and_html_captions_and_clip_links(fake_run, tiny_world, tmp_path):
    """The run's last features in 2-D, coloured by cluster and by label; the HTML page's captions are text and
    each clip's picture links to the clip's file."""
    run, labels, video = fake_run
    rng = np.random.default_rng(1)
    (run / "features").mkdir()
    centres = rng.normal(size=(4, 16)) * 5
    np.save(run / "features" / "video.npy", (centres[labels] + rng.normal(size=(24, 16))).astype(np.float32))
    r = cluster_report(run, tiny_world, tmp_path / "out", clustering="video", grid_rows=2, grid_cols=3)
    t = r["clusterings"]["video"]["tsne"]
    assert (t["points"], t["clustered"], t["features"], t["picture"]) == (24, 24, "features/video.npy",
                                                                         "video_tsne.png")
    picture = Image.open(tmp_path / "out" / "video_tsne.png")
    assert picture.width > 1.5 * picture.height  # two panels: by cluster and by label
    assert _non_uniform_png(tmp_path / "out" / "video_tsne.png")
    page = (tmp_path / "out" / "clusters.html").read_text()
    assert "src='video_tsne.png'" in page and "coloured by cluster" in page
    rows = r["clusterings"]["video"]["grid_rows"]
    assert [len(row["videos"]) for row in rows] == [3, 3]
    for row in rows:
        for v in row["videos"]:
            assert f"href='{Path(v['path']).as_uri()}'" in page  # each clip opens from the page
            assert f"src='{v['picture']}'" in page and _non_uniform_png(tmp_path / "out" / v["picture"])
    top = r["clusterings"]["video"]["clusters"][0]
    assert f"<strong>#1: cluster {top['cluster']}</strong> ({top['size']} videos), purity" in page
    assert top["labels"][0][0] in page  # the concept as text, not only inside a picture

    # a subsample, the same for the same seed; none at all with tsne_points=0; none without features
    a = cluster_report(run, tiny_world, tmp_path / "a", clustering="video", tsne_points=10, seed=3)
    cluster_report(run, tiny_world, tmp_path / "b", clustering="video", tsne_points=10, seed=3)
    assert a["clusterings"]["video"]["tsne"]["points"] == 10
    assert (tmp_path / "a" / "video_tsne.png").read_bytes() == (tmp_path / "b" / "video_tsne.png").read_bytes()
    off = cluster_report(run, tiny_world, tmp_path / "off", clustering="video", tsne_points=0)
    assert "skipped" in off["clusterings"]["video"]["tsne"] and not (tmp_path / "off" / "video_tsne.png").exists()
    audio = cluster_report(run, tiny_world, tmp_path / "audio", clustering="audio")["clusterings"]["audio"]["tsne"]
    assert "no features of 'audio'" in audio["skipped"]
    assert "No t-SNE picture: no features of" in (tmp_path / "audio" / "clusters.html").read_text()


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
        assert _non_uniform_png(tmp_path / "report" / s["grid"])
        assert s["tsne"]["points"] == 24 and _non_uniform_png(tmp_path / "report" / s["tsne"]["picture"])


def test_every_iteration_of_a_real_run_on_one_page(tiny_world, tmp_path, capsys, env):
    """A 2-iteration run keeps each iteration's clustering; ``--iteration all`` reports each (the statistics the
    run logged for that iteration), with its own grid, previews and t-SNE, on a page that moves between them."""
    from PIL import ImageChops

    from conftest import cli, run_cli

    run = tmp_path / "run"
    pretrain(resolve("cpu-tiny", "xdc", ["optim.max_epochs=1", "clustering.k=3"]), tiny_world, run, progress=False)
    assert sorted(p.name for p in (run / "clusters").glob("iter_*")) == ["iter_00", "iter_01"]
    for name in ("video", "audio"):  # the last iteration's copy is the run's last clustering
        assert (np.load(run / "clusters" / "iter_01" / f"{name}_assignments.npy")
                == np.load(run / "clusters" / f"{name}_assignments.npy")).all()
    summaries = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    summaries = [s for s in summaries if s.get("summary")]

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp_path / "report"
    args = parser.parse_args(["eval", "clusters", "--run", str(run), "--out", str(out), "--grid-rows", "2",
                              "--grid-cols", "2", "--iteration", "all"])
    assert args.func(args) == 0
    assert "## Every iteration" in capsys.readouterr().out
    result = json.loads((out / "clusters.json").read_text())
    assert [p["iteration"] for p in result["iterations"]] == [0, 1] and result["iteration"] == 1
    page = (out / "clusters.html").read_text()
    for page_it, summary in zip(result["iterations"], summaries):
        it = page_it["iteration"]
        assert f"<section class='iteration' id='iteration-{it}'>" in page and f"href='#iteration-{it}'" in page
        for name in ("video", "audio"):
            s, logged = page_it["clusterings"][name], summary["clusters"][name]
            # the report of iteration N is iteration N's clustering: the numbers the run logged then
            assert s["purity"] == pytest.approx(logged["vs_labels"]["purity"])
            assert s["nmi"] == pytest.approx(logged["vs_labels"]["nmi"])
            if it == 1:
                assert s["nmi_previous"] == pytest.approx(logged["nmi_previous"])
            assert s["grid"] == f"iter_{it:02d}/{name}_grid.png" and _non_uniform_png(out / s["grid"])
            assert s["tsne"]["picture"] == f"iter_{it:02d}/{name}_tsne.png" and s["tsne"]["points"] == 24
            assert s["tsne"]["features"].startswith("a sample of the features clustered")
            assert _non_uniform_png(out / s["tsne"]["picture"]) and f"src='{s['tsne']['picture']}'" in page
            for row in s["grid_rows"]:
                for v in row["videos"]:
                    gif = Image.open(out / v["preview"])
                    assert v["preview"].startswith(f"iter_{it:02d}/") and gif.n_frames == 8
                    first = gif.convert("RGB")
                    gif.seek(7)  # a moving clip: the preview is not one frame repeated
                    assert ImageChops.difference(first, gif.convert("RGB")).getbbox() is not None
                    assert f"src='{v['preview']}'" in page and f"src='{v['picture']}'" in page
    assert (Image.open(out / "iter_00" / "audio_clips" / "0_0.gif").height
            > Image.open(out / "iter_00" / "video_clips" / "0_0.gif").height)  # the log-mel strip under the frames

    one = cluster_report(run, None, tmp_path / "one", iteration=0, grid_rows=1, grid_cols=1, previews=False)
    assert one["iteration"] == 0 and "iterations" not in one
    assert one["clusterings"]["video"]["purity"] == pytest.approx(summaries[0]["clusters"]["video"]["vs_labels"]["purity"])
    assert one["clusterings"]["video"]["grid"] == "video_grid.png" and not list((tmp_path / "one").rglob("*.gif"))
    assert "The clustering of iteration 0." in (tmp_path / "one" / "clusters.html").read_text()

    # an iteration the run did not keep, or no iteration at all: a clear error from the real command
    for asked, message in (("7", "kept no clustering of iteration 7; it has iterations 0, 1"),
                           ("first", "--iteration must be last, all or an iteration number, got 'first'")):
        p = run_cli(cli("eval", "clusters", "--run", run, "--out", tmp_path / "bad", "--iteration", asked), env,
                    expect=2)
        assert message in p.stderr and "Traceback" not in p.stderr


def test_all_iterations_of_a_run_that_kept_only_its_last(fake_run, tiny_world, tmp_path):
    run, *_ = fake_run  # made without clusters/iter_XX, as runs before this version
    r = cluster_report(run, tiny_world, tmp_path / "out", iteration="all", grid_rows=1, grid_cols=1, tsne_points=0)
    assert "iterations" not in r and set(r["clusterings"]) == {"audio", "video"}
