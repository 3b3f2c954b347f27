"""Both ways of reporting a grid-swept evaluation: the value chosen on validation (avssl) and the best
test accuracy over the grid (the papers'), labelled, in the JSON and the Markdown."""
import json

import numpy as np
import pytest

from avssl.evaluation import finetune, linear_eval, svm_eval, svm_probe
from avssl.evaluation.grid_report import BEST_OVER_GRID


def blobs(n, seed, dim=8, noise=2.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return rng.normal(size=(n, dim)) * noise + np.eye(3, dim)[y] * 2.0, y


def test_svm_reports_the_best_over_its_grid_beside_the_validated_choice():
    (x, y), (tx, ty) = blobs(60, 0), blobs(60, 1)
    r = svm_eval(x, y, tx, ty, cs=(1e-4, 1e-2, 1.0, 100.0), val_fraction=0.3)
    tests = [s["test_accuracy"] for s in r["sweep"].values()]
    assert r[BEST_OVER_GRID] == max(tests) >= r["accuracy"]
    assert r["accuracy"] == r["sweep"][str(r["C"])]["test_accuracy"]
    assert svm_eval(x, y, tx, ty, cs=(1.0,))[BEST_OVER_GRID] is None  # no grid, nothing to pick from


def test_linear_scores_every_rate_on_test():
    (x, y), (tx, ty) = blobs(60, 2), blobs(30, 3)
    video = np.arange(60)
    r = linear_eval((x, video, y), (tx, np.arange(30), ty), 3, lrs=(0.0001, 0.04), epochs=4, val_fraction=0.3)
    assert set(r["sweep"]) == {"0.0001", "0.04"}
    assert all({"val_accuracy", "test_accuracy"} <= set(s) for s in r["sweep"].values())
    assert r[BEST_OVER_GRID] == max(s["test_accuracy"] for s in r["sweep"].values())
    assert r["accuracy"] == r["sweep"][str(r["lr"])]["test_accuracy"]


def test_reports_label_both_numbers(tiny_world, tmp_path):
    r = svm_probe("scratch", tiny_world, tmp_path / "svm", preset="cpu-tiny", modality="audio", clips=1,
                  cs=(0.01, 1.0), progress=False)
    assert r["mean"][BEST_OVER_GRID] >= r["mean"]["accuracy"]
    md = (tmp_path / "svm" / "svm.md").read_text()
    assert f"| accuracy | {BEST_OVER_GRID} |" in md and "how the papers report" in md
    f = finetune("scratch", tiny_world, tmp_path / "ft", preset="cpu-tiny", modality="audio", lrs=(0.001, 0.05),
                 epochs=1, epoch_size=16, batch_size=8, test_clips=1, grid_best=True, progress=False)
    (fold,) = f["folds"].values()
    assert all("test_accuracy" in s for s in fold["sweep"].values())
    assert fold[BEST_OVER_GRID] == max(s["test_accuracy"] for s in fold["sweep"].values())
    saved = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert saved["mean"][BEST_OVER_GRID] == pytest.approx(fold[BEST_OVER_GRID])
    plain = finetune("scratch", tiny_world, tmp_path / "ft1", preset="cpu-tiny", modality="audio", lrs=(0.001, 0.05),
                     epochs=1, epoch_size=16, batch_size=8, test_clips=1, progress=False)
    assert BEST_OVER_GRID not in plain["mean"]  # off by default: it costs one fine-tuning per rate
