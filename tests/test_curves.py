"""Training curves (avssl.curves) from a real XDC run's metrics.jsonl and from hand-written ones."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from avssl.config import resolve
from avssl.curves import TITLES, curve_data, curves_figure, panel_title, write_curves
from avssl.engine.pretrain import pretrain

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def xdc_two_iterations(tiny_world, tmp_path_factory):
    """A finished cpu-tiny XDC run of 2 iterations x 2 epochs on the tiny labelled world."""
    with pytest.MonkeyPatch.context() as mp:  # the decoded-video cache stays out of the user's cache
        mp.setenv("AVSSL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "avssl-cache"))
        out = tmp_path_factory.mktemp("curves") / "run"
        cfg = resolve("cpu-tiny", "xdc", ["iterations=2", "optim.max_epochs=2"])
        return pretrain(cfg, tiny_world, out, progress=False).run_dir


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _write_metrics(path, records, tail: str = ""):
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return path


def _titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_write_curves_draws_a_png_of_the_real_run(xdc_two_iterations):
    out = write_curves(xdc_two_iterations)
    assert out == xdc_two_iterations / "curves.png"
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(out) as im:
        im.verify()
    with Image.open(out) as im:
        width, height = im.size
        pixels = np.asarray(im.convert("L"))
    assert 800 <= width <= 3000 and 600 <= height <= 3000
    assert pixels.std() > 5  # lines and text on a white background, not a blank canvas
    # No temporary file left next to it.
    assert not [p.name for p in xdc_two_iterations.iterdir() if p.name.startswith(".curves")]


def test_curve_data_holds_exactly_the_logged_values(xdc_two_iterations):
    records = _records(xdc_two_iterations)
    epochs = [r for r in records if not r.get("summary")]
    summaries = [r for r in records if r.get("summary")]
    d = curve_data(xdc_two_iterations)
    e = d["epochs"]
    assert len(epochs) == 4 and len(summaries) == 2
    assert e["loss"] == [r["loss"] for r in epochs]
    assert e["val_loss"] == [r["val_loss"] for r in epochs]
    assert e["lr"] == [r["lr"] for r in epochs]
    assert e["iteration"] == [0, 0, 1, 1] and e["epoch"] == [0, 1, 0, 1]
    assert e["x"] == [1, 2, 3, 4]  # one epoch counter over the whole run
    assert d["boundaries"] == [2.5]  # iteration 1 starts after the 2nd epoch
    assert set(e["acc"]) == {"acc_audio_from_video", "acc_video_from_audio"}
    for key, values in e["acc"].items():
        assert values == [r[key] for r in epochs]
    assert set(e["loss_terms"]) == {"loss_audio_from_video", "loss_video_from_audio"}
    # The validation loss of each term too (which direction memorises its pseudo-labels), summing to the total.
    assert set(e["val_loss_terms"]) == {"val_loss_audio_from_video", "val_loss_video_from_audio"}
    for key, values in e["val_loss_terms"].items():
        assert values == [r[key] for r in epochs] and all(math.isfinite(v) and v > 0 for v in values)
    for i, total in enumerate(e["val_loss"]):
        assert sum(ys[i] for ys in e["val_loss_terms"].values()) == pytest.approx(total, rel=1e-4)
    assert d["method"] == "xdc"
    values = e["loss"] + e["val_loss"]
    assert d["loss_scale"] == ("log" if max(values) / min(values) > 100 else "linear")

    it = d["iterations"]
    assert it["iteration"] == [0, 1]
    assert set(it["clusters"]) == {"video", "audio"}
    for name, c in it["clusters"].items():
        for stat in ("k", "min", "mean", "max", "empty"):
            assert c[stat] == [s["clusters"][name]["sizes"][stat] for s in summaries]
        assert c["k"] == [4, 4] and all(lo <= hi for lo, hi in zip(c["min"], c["max"]))
        assert c["purity"] == [s["clusters"][name]["vs_labels"]["purity"] for s in summaries]
        assert c["nmi"] == [s["clusters"][name]["vs_labels"]["nmi"] for s in summaries]
        # The first clustering has nothing to be compared with; the second has.
        assert math.isnan(c["nmi_previous"][0])
        assert c["nmi_previous"][1] == summaries[1]["clusters"][name]["nmi_previous"]

    # Every other number an epoch logs (e.g. a gradient norm) is a curve of the "other" panel.
    logged = {k for r in epochs for k, v in r.items() if isinstance(v, (int, float))}
    plain = {k for k in logged if not k.startswith(("acc_", "loss_", "val_loss_"))} - {"iteration", "epoch", "loss", "val_loss",
                                                                          "lr", "steps", "time"}
    assert set(e["other"]) == plain
    # ``time`` (each line's wall clock) is bookkeeping, never a curve
    assert all(isinstance(r["time"], float) for r in epochs) and "time" not in e["other"]
    for key, values in e["other"].items():
        expected = [r.get(key, math.nan) for r in epochs]
        assert [None if math.isnan(v) else v for v in values] == [None if math.isnan(v) else v for v in expected]

    unit = sorted(k for k in plain if all(0 <= v <= 1 for v in e["other"][k] if not math.isnan(v)))
    panels = (["loss", "loss_terms", "lr", "acc"] + (["other"] if unit else [])
              + [f"other:{k}" for k in sorted(plain - set(unit))] + ["sizes", "nmi_previous", "vs_labels"])
    assert _titles(curves_figure(d)) == [panel_title(k) for k in panels]


def test_a_validation_loss_of_5e4_next_to_training_losses_of_3_gets_a_log_scale(tmp_path):
    records = [{"iteration": it, "epoch": ep, "loss": loss, "val_loss": val, "lr": lr, "steps": 2,
                "acc_video_from_audio": acc}
               for it, ep, loss, val, lr, acc in [(0, 0, 3.1, 5e4, 0.05, 0.2), (0, 1, 3.0, 12.0, 0.05, 0.3),
                                                  (1, 0, 2.9, 4.0, 0.01, 0.4)]]
    run = _write_metrics(tmp_path / "diverging", records)
    d = curve_data(run)
    assert d["loss_scale"] == "log"
    assert d["epochs"]["val_loss"] == [5e4, 12.0, 4.0]
    fig = curves_figure(d)
    loss_ax = fig.axes[_titles(fig).index(TITLES["loss"])]
    assert loss_ax.get_yscale() == "log"
    # Both lines are drawn and the small training losses lie inside the visible range.
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in loss_ax.get_lines() if not ln.get_label().startswith("_")}
    assert lines == {"training": [3.1, 3.0, 2.9], "validation": [5e4, 12.0, 4.0]}
    lo, hi = loss_ax.get_ylim()
    assert lo <= 2.9 and hi >= 5e4
    assert write_curves(run).read_bytes()[:8] == PNG_SIGNATURE

    # Losses within two decades keep a linear scale.
    calm = _write_metrics(tmp_path / "calm", [{**r, "val_loss": 3.5} for r in records])
    assert curve_data(calm)["loss_scale"] == "linear"
    fig = curves_figure(curve_data(calm))
    assert fig.axes[0].get_yscale() == "linear"


AVTS_RECORDS = [
    {"iteration": 0, "epoch": 0, "hard_fraction": 0.0, "loss": 0.699, "loss_in_sync": 1.38, "loss_out_of_sync": 0.015,
     "superhard_fraction": 0.0, "sync_ranking": 0.44, "lr": 0.05, "steps": 2, "val_loss": 0.72, "grad_norm": 40.0},
    {"iteration": 0, "epoch": 1, "hard_fraction": 0.0, "loss": 0.709, "loss_in_sync": 1.41, "loss_out_of_sync": 0.011,
     "superhard_fraction": 0.0, "sync_ranking": 0.56, "lr": 0.05, "steps": 2, "val_loss": 0.71, "grad_norm": 12.0},
    {"iteration": 0, "summary": True, "clusters": {}, "last_epoch": {"loss": 0.709}, "times": {"train": 0.3}},
    {"iteration": 1, "epoch": 0, "hard_fraction": 0.31, "loss": 0.703, "loss_in_sync": 1.39, "loss_out_of_sync": 0.015,
     "superhard_fraction": 0.0, "sync_ranking": 0.44, "lr": 0.05, "steps": 2, "val_loss": 0.73, "grad_norm": 8.0},
]


def test_an_avts_run_without_clusters_and_an_unfinished_iteration(tmp_path):
    run = _write_metrics(tmp_path / "avts", AVTS_RECORDS, tail='{"iteration": 1, "epoch": 1, "lo')  # killed mid-line
    d = curve_data(run)
    e = d["epochs"]
    assert e["loss"] == [0.699, 0.709, 0.703]  # the half-written line is skipped
    assert e["iteration"] == [0, 0, 1] and d["boundaries"] == [2.5]
    assert e["acc"] == {}
    assert e["loss_terms"] == {"loss_in_sync": [1.38, 1.41, 1.39], "loss_out_of_sync": [0.015, 0.011, 0.015]}
    assert e["other"]["sync_ranking"] == [0.44, 0.56, 0.44] and e["other"]["hard_fraction"] == [0.0, 0.0, 0.31]
    assert d["iterations"] == {"iteration": [0], "clusters": {}}  # iteration 1 has no summary yet
    assert e["other"]["grad_norm"] == [40.0, 12.0, 8.0]
    fig = curves_figure(d)
    # No cluster or accuracy panels; the fractions share a panel, the gradient norm has its own.
    assert _titles(fig) == [TITLES[k] for k in ("loss", "loss_terms", "lr", "other")] + ["grad_norm per epoch"]
    shared = fig.axes[3].get_legend().get_texts()
    assert sorted(t.get_text() for t in shared) == ["hard_fraction", "superhard_fraction", "sync_ranking"]
    png = write_curves(run)
    assert png.read_bytes()[:8] == PNG_SIGNATURE


def test_a_real_run_interrupted_inside_its_second_iteration(xdc_two_iterations, tmp_path):
    records = _records(xdc_two_iterations)
    partial = records[:-2]  # iteration 1: one epoch logged, no summary
    run = _write_metrics(tmp_path / "partial", partial)
    d = curve_data(run)
    assert d["epochs"]["loss"] == [r["loss"] for r in partial if not r.get("summary")]
    assert d["epochs"]["iteration"] == [0, 0, 1]
    assert d["iterations"]["iteration"] == [0]
    assert write_curves(run).exists()


def test_crisscross_negative_losses_and_an_empty_or_missing_file(tmp_path):
    # CrissCross's losses are negative cosine similarities: no log scale.
    records = [{"iteration": 0, "epoch": i, "loss": -0.2 - 0.3 * i, "loss_sync": -0.1 - 0.2 * i,
                "val_loss": -0.25 - 0.3 * i, "lr": 0.05, "steps": 2, "z_std_video": 0.03} for i in range(3)]
    d = curve_data(_write_metrics(tmp_path / "cc", records))
    assert d["loss_scale"] == "linear" and d["boundaries"] == []
    assert d["epochs"]["other"] == {"z_std_video": [0.03, 0.03, 0.03]}
    assert write_curves(tmp_path / "cc").exists()

    # A run whose first epoch has not finished: one "no data" panel.
    empty = _write_metrics(tmp_path / "empty", [])
    fig = curves_figure(curve_data(empty))
    assert _titles(fig) == [TITLES["loss"]]
    assert any("no data" in t.get_text() for t in fig.axes[0].texts)
    assert write_curves(empty).read_bytes()[:8] == PNG_SIGNATURE

    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        curve_data(tmp_path / "nowhere")
