"""The t-SNE picture of a clustering (evaluation/cluster_tsne.py), and its captions and clip links on the page."""
from pathlib import Path

import numpy as np
from PIL import Image

from avssl.evaluation import cluster_report
from conftest import non_uniform_png


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
    assert non_uniform_png(tmp_path / "out" / "video_tsne.png")
    page = (tmp_path / "out" / "clusters.html").read_text()
    assert "src='video_tsne.png'" in page and "coloured by cluster" in page
    rows = r["clusterings"]["video"]["grid_rows"]
    assert [len(row["videos"]) for row in rows] == [3, 3]
    for row in rows:
        for v in row["videos"]:
            assert f"href='{Path(v['path']).as_uri()}'" in page  # each clip opens from the page
            assert f"src='{v['picture']}'" in page and non_uniform_png(tmp_path / "out" / v["picture"])
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

