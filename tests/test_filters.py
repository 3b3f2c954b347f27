"""First-layer filter pictures (XDC Fig. 3): the right layers, tiles that are the weights, one row per run."""
import numpy as np
from PIL import Image

from avssl.cli import main
from avssl.runs import load_encoders
from avssl.models import build_encoder
from avssl.workflows.filters import first_layer, render_filters, spatial_tiles


def test_r2plus1d_first_layer_is_the_spatial_then_the_temporal_stem_conv():
    enc = build_encoder("r2plus1d_18", width=0.25)
    layer = first_layer(enc)
    assert (layer.spatial_name, layer.temporal_name) == ("stem.0", "stem.3")
    w = enc.stem[0].weight.detach()  # (mid, 3, 1, 7, 7)
    assert layer.spatial.shape == (w.shape[0], 1, 7, 7, 3)
    assert np.array_equal(layer.spatial[2, 0, :, :, 1], w[2, 1, 0].numpy())  # filter 2, green channel
    t = enc.stem[3].weight.detach()  # (out, mid, 3, 1, 1)
    assert layer.temporal.shape == (t.shape[0], t.shape[1], 3)
    assert np.array_equal(layer.temporal[5], t[5, :, :, 0, 0].numpy())
    r3d = first_layer(build_encoder("r3d_18", width=0.25))
    assert r3d.spatial.shape[1:] == (3, 7, 7, 3) and r3d.temporal is None  # 3x7x7 stem, no temporal layer


def test_spatial_tiles_are_each_filter_scaled_to_the_unit_range():
    enc = build_encoder("r2plus1d_18", width=0.125)
    tiles = spatial_tiles(first_layer(enc).spatial)
    w = enc.stem[0].weight.detach().numpy()[0, :, 0].transpose(1, 2, 0)  # (7, 7, 3)
    assert np.allclose(tiles[0], (w - w.min()) / (w.max() - w.min()))
    assert all(t.min() == 0.0 and t.max() == 1.0 for t in tiles)


def test_png_compares_runs_row_by_row(tiny_xdc_run, tmp_path):
    scratch = build_encoder("r2plus1d_18", width=0.125)
    one = render_filters([("scratch", scratch)], tmp_path / "one.png")
    two = render_filters([("scratch", scratch), ("xdc", load_encoders(tiny_xdc_run).modules["video"])], tmp_path / "two.png")
    a, b = np.asarray(Image.open(one["png"]).convert("RGB")), np.asarray(Image.open(two["png"]).convert("RGB"))
    assert b.shape[0] > 1.8 * a.shape[0] and b.shape[1] == a.shape[1]  # one row per run
    assert a.std() > 10 and len(np.unique(a.reshape(-1, 3), axis=0)) > 50  # a picture, not a blank canvas
    assert not np.array_equal(two["rows"][0]["spatial"], two["rows"][1]["spatial"])  # different weights, pictures
    assert two["rows"][1]["temporal"] is not None


def test_filters_command(tiny_xdc_run, tmp_path, capsys):
    out = tmp_path / "filters.png"
    code = main(["filters", "--encoders", str(tiny_xdc_run), "scratch", "--preset", "cpu-tiny", "--labels", "XDC,random",
                 "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert text.startswith("XDC: spatial grid") and "random: spatial grid" in text and f"written {out}" in text
    img = np.asarray(Image.open(out))
    assert img.ndim == 3 and img.std() > 10
