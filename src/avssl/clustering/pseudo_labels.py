"""One clustering of a deep-clustering iteration: k-means of the videos that have features, as labels
of every video (-1 where none), with the statistics a run records about it.

    c = cluster_videos(x, valid, k=64, seed=seeds.kmeans_seed(cfg.seed, iteration))
    c.labels, c.distances, c.stats   # (N,), (N,) (NaN where not valid), {"sizes", "reseeded", ...}
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kmeans import KMeansResult, kmeans
from .metrics import cluster_size_stats, label_report, nmi


@dataclass
class ClusteredVideos:
    labels: np.ndarray  # (N,) int64 cluster of each video, -1 where it had no features
    distances: np.ndarray  # (N,) float32 squared distance to its centroid, NaN where no features
    kmeans: KMeansResult  # of the valid rows
    stats: dict  # sizes, reseeded, objective; nmi_previous and vs_labels when those are known


def cluster_videos(x: np.ndarray, valid: np.ndarray, k: int, *, seed: int, niter: int = 20, pca_dim=None,
                   l2_normalize: bool = True, gpu: bool = False, assign: str = "nearest",
                   sinkhorn_epsilon: float = 0.2, previous: np.ndarray | None = None,
                   ground_truth: np.ndarray | None = None) -> ClusteredVideos:
    """k-means of the valid rows of ``x``; ``previous`` (the last iteration's labels) and ``ground_truth``
    (label ids, -1 where unlabelled) only add statistics: NMI with the previous clustering, purity/NMI/ARI."""
    rows = np.flatnonzero(valid)
    result = kmeans(x[rows] if len(rows) < len(x) else x, k, seed=seed, niter=niter, pca_dim=pca_dim,
                    l2_normalize=l2_normalize, gpu=gpu, assign=assign, sinkhorn_epsilon=sinkhorn_epsilon)
    labels = np.full(len(x), -1, dtype=np.int64)
    labels[rows] = result.assignments
    distances = np.full(len(x), np.nan, dtype=np.float32)
    distances[rows] = result.distances
    stats = {"sizes": cluster_size_stats(result.assignments, k), "reseeded": result.reseeded,
             "objective": result.objective}
    if previous is not None and len(previous) == len(labels):
        both = (labels >= 0) & (previous >= 0)
        stats["nmi_previous"] = nmi(labels[both], previous[both])
    if ground_truth is not None:
        ok = (labels >= 0) & (ground_truth >= 0)
        if ok.any():
            stats["vs_labels"] = label_report(labels[ok], ground_truth[ok])
    return ClusteredVideos(labels, distances, result, stats)
