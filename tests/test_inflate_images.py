"""The inflated-image supervised baseline (XDC Tables 1, 3, 5, "Superv ImageNet"): real PNG/JPEG files
written by the test become static clips, decoded back frame by frame, and pretrain ``supervised``."""
import os

import numpy as np
import pytest
from PIL import Image

from avssl.cli import main
from avssl.data.inflate_images import inflate_images
from avssl.data.manifest import load_manifest
from avssl.data.media import probe
from avssl.errors import ConfigError


def write_images(root, per_class=3):
    rng = np.random.default_rng(0)
    for c, colour in enumerate(((220, 30, 30), (30, 30, 220))):
        folder = root / f"n0000{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            img = np.clip(np.array(colour) + rng.integers(-20, 20, (30, 41, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"img{i}.{'png' if i % 2 else 'JPEG'}")
    (root / "n00000" / "broken.jpg").write_bytes(b"not an image")


def test_images_become_static_labelled_clips(tmp_path):
    write_images(tmp_path / "images")
    m, report = inflate_images(tmp_path / "images", tmp_path / "clips", seconds=1.0, fps=10, short_side=20)
    assert (report.images, report.written, len(report.unreadable)) == (7, 6, 1)
    assert sorted({i.label for i in m}) == ["n00000", "n00001"] and len(m) == 6
    info = probe(m[0].path)
    assert info.has_video and info.has_audio and info.width % 2 == 0 and min(info.width, info.height) == 20
    assert info.duration == pytest.approx(1.0, abs=0.15)
    import av

    with av.open(m[0].path) as container:
        frames = [f.to_ndarray(format="rgb24").astype(float) for f in container.decode(video=0)]
    assert len(frames) == 10
    assert max(np.abs(f - frames[0]).mean() for f in frames) < 2.0  # the same picture in every frame
    assert frames[0][..., 0].mean() > 150 > frames[0][..., 2].mean()  # class n00000 is red
    again, report2 = inflate_images(tmp_path / "images", tmp_path / "clips", seconds=1.0, fps=10, short_side=20)
    assert (report2.written, report2.kept) == (0, 6) and [i.path for i in again] == [i.path for i in m]
    with pytest.raises(ConfigError, match="no images in class subfolders"):
        inflate_images(tmp_path / "clips", tmp_path / "x")


def test_inflated_clips_pretrain_the_supervised_baseline(tmp_path, capsys):
    write_images(tmp_path / "images", per_class=4)
    out = tmp_path / "static.csv"
    assert main(["data", "inflate-images", str(tmp_path / "images"), "--videos", str(tmp_path / "clips"),
                 "--out", str(out), "--seconds", "2.5", "--short-side", "20"]) == 0
    assert "8 clips of 2 classes" in capsys.readouterr().out
    assert len(load_manifest(out)) == 8
    assert main(["pretrain", "--method", "supervised", "--preset", "cpu-tiny", "--data", str(out),
                 "--out", str(tmp_path / "run"), "--set", "optim.max_epochs=1", "--iterations", "1",
                 "--no-progress"]) == 0
    assert os.path.isfile(tmp_path / "run" / "encoders.pt")
