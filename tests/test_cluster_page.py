"""The cluster report's pages (evaluation/cluster_page.py): every iteration of a real run on one page."""
import argparse
import json

import numpy as np
import pytest
from PIL import Image

from avssl.cli.evaluation import register
from avssl.config import resolve
from avssl.engine.pretrain import pretrain
from avssl.evaluation import cluster_report
from conftest import non_uniform_png


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
            assert s["grid"] == f"iter_{it:02d}/{name}_grid.png" and non_uniform_png(out / s["grid"])
            assert s["tsne"]["picture"] == f"iter_{it:02d}/{name}_tsne.png" and s["tsne"]["points"] == 24
            assert s["tsne"]["features"].startswith("a sample of the features clustered")
            assert non_uniform_png(out / s["tsne"]["picture"]) and f"src='{s['tsne']['picture']}'" in page
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

