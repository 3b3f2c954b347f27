"""Pictures of a clustering (evaluation/cluster_pictures.py): the grids of a run's clusterings over real mp4s."""
import pytest
from PIL import Image

from avssl.evaluation import cluster_report
from conftest import non_uniform_png


def test_report_of_every_clustering_with_grid_and_html(fake_run, tiny_world, tmp_path):
    run, labels, video = fake_run
    r = cluster_report(run, tiny_world, tmp_path / "out", grid_rows=2, grid_cols=3)
    assert set(r["clusterings"]) == {"audio", "video"}
    v = r["clusterings"]["video"]
    assert v["purity"] == pytest.approx(23 / 24) and v["scored"] == 24 and v["sizes"]["k"] == 4
    out = tmp_path / "out"
    for name in ("video", "audio"):
        assert non_uniform_png(out / f"{name}_grid.png")
        assert f"src='{name}_grid.png'" in (out / "clusters.html").read_text()
    # the audio grid carries a log-mel strip under each frame
    assert Image.open(out / "audio_grid.png").height > Image.open(out / "video_grid.png").height
    assert "## video" in (out / "clusters.md").read_text()

