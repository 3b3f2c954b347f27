"""Balanced pseudo-labels (clustering.assign=sinkhorn): equal cluster sizes where k-means makes unequal ones."""
import json

import numpy as np
import pytest

from avssl.clustering.kmeans import kmeans
from avssl.clustering.sinkhorn import balanced_assignments
from avssl.clustering.metrics import purity
from avssl.config import resolve
from avssl.engine.pretrain import pretrain
from avssl.errors import ConfigError


def blobs(sizes, dim=16, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    x = np.concatenate([c + spread * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes)])
    return x.astype(np.float32), np.repeat(np.arange(len(sizes)), sizes)


def test_equal_separated_clusters_are_recovered_exactly():
    x, truth = blobs([30, 30, 30, 30])
    labels = balanced_assignments(x, np.stack([x[truth == c].mean(0) for c in range(4)]))
    assert purity(labels, truth) == 1.0 and np.array_equal(np.bincount(labels), [30, 30, 30, 30])


def test_one_huge_cluster_is_split_into_equal_parts():
    # 200 points in one blob and 4 x 10 elsewhere, k=8: nearest-centroid labels are unequal (10 to 42);
    # balanced labels give every cluster about 240/8 = 30 (26 to 38).
    x, _ = blobs([200, 10, 10, 10, 10], spread=0.3)
    nearest = kmeans(x, 8, seed=0)
    balanced = kmeans(x, 8, seed=0, assign="sinkhorn", sinkhorn_epsilon=0.05)
    assert np.ptp(nearest.sizes()) > 2 * np.ptp(balanced.sizes())  # measured: 32 vs 12
    assert balanced.sizes().min() >= 20 and balanced.sizes().max() <= 40
    assert np.array_equal(balanced.centroids, nearest.centroids)  # only the labels change
    assert np.isfinite(balanced.distances).all() and balanced.empty == 0


def test_bad_epsilon_is_refused():
    x, truth = blobs([5, 5])
    with pytest.raises(ValueError, match="epsilon"):
        balanced_assignments(x, x[:2], epsilon=0)
    with pytest.raises(ConfigError, match="clustering.assign"):
        resolve("cpu-tiny", "xdc", ["clustering.assign=balanced"])
    with pytest.raises(ConfigError, match="sinkhorn_epsilon"):
        resolve("cpu-tiny", "xdc", ["clustering.sinkhorn_epsilon=0"])


def test_xdc_trains_on_balanced_labels(tiny_world, tmp_path):
    cfg = resolve("cpu-tiny", "xdc", ["iterations=1", "clustering.assign=sinkhorn", "clustering.k=3"])
    pretrain(cfg, tiny_world, tmp_path / "run", progress=False)
    summary = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl") if '"summary"' in line][0]
    for modality in ("video", "audio"):
        sizes = summary["clusters"][modality]["sizes"]
        assert sizes["empty"] == 0 and sizes["max"] - sizes["min"] <= 2  # 24 videos, k=3: 8 each
