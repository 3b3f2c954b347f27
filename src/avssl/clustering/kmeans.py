"""k-means for deep clustering: faiss underneath, streamed over disk-backed features.

What this adds to a bare ``faiss.Kmeans`` call, and why:
- DeepCluster's pre-processing (optional PCA-whitening, then L2 normalisation), applied chunk by chunk
  so a memory-mapped feature array never has to be loaded whole;
- training on a seeded subsample of at most ``max_points_per_centroid * k`` rows (what faiss would
  use anyway), assignment of all rows in chunks;
- clusters left empty by the final assignment are re-seeded by splitting the largest cluster, and
  counted, because an empty cluster is a pseudo-class the network can never learn;
- clear errors for k larger than the number of points, and for NaN/inf features.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import faiss
import numpy as np

from .. import seeds
from ..errors import ConfigError
from .sinkhorn import balanced_assignments

log = logging.getLogger("avssl.clustering")

CHUNK_ROWS = 65536


@dataclass
class KMeansResult:
    centroids: np.ndarray  # (k, d') float32, in the pre-processed space
    assignments: np.ndarray  # (N,) int64
    distances: np.ndarray  # (N,) float32, squared distance to the assigned centroid
    objective: float  # sum of squared distances of the training sample after the last iteration
    reseeded: int  # clusters that came out empty and were re-seeded by splitting
    empty: int  # clusters still empty at the end (only possible with many duplicate points)

    @property
    def k(self) -> int:
        return len(self.centroids)

    def sizes(self) -> np.ndarray:
        return np.bincount(self.assignments[self.assignments >= 0], minlength=self.k)


class FeaturePreprocessor:
    """PCA(-whitening) to ``pca_dim`` and L2 normalisation, fitted on a sample and applied per chunk."""

    def __init__(self, dim: int, pca_dim: int | None = None, whiten: bool = True, l2_normalize: bool = True):
        if pca_dim is not None and not 0 < pca_dim <= dim:
            raise ConfigError(f"clustering.pca_dim must be in 1..{dim} (the feature size), got {pca_dim}")
        self.pca = faiss.PCAMatrix(dim, pca_dim, -0.5 if whiten else 0.0) if pca_dim else None
        self.l2_normalize = l2_normalize
        self.out_dim = pca_dim or dim

    def fit(self, sample: np.ndarray) -> "FeaturePreprocessor":
        if self.pca is not None:
            self.pca.train(np.ascontiguousarray(sample, dtype=np.float32))
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """A pre-processed float32 copy of ``x`` (the input, possibly a memmap, is never modified).
        Raises ValueError if ``x`` holds NaN or inf."""
        if self.pca is not None:
            x = self.pca.apply(np.ascontiguousarray(x, dtype=np.float32))
        else:
            x = np.array(x, dtype=np.float32)
        if self.l2_normalize:  # in place, on our own copy: no temporaries the size of x
            norms = np.sqrt(np.einsum("ij,ij->i", x, x))
            # A NaN or inf anywhere makes its row's norm NaN or inf, so checking the norms replaces a
            # pass over x; only then is x checked, since a huge finite row can also overflow its norm.
            if not np.isfinite(norms).all():
                _check_finite(x, "the features to cluster")
            x /= np.maximum(norms, 1e-12)[:, None]
        else:
            _check_finite(x, "the features to cluster")
        return x


def _check_finite(x: np.ndarray, what: str) -> None:
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contains NaN or inf values; the encoder has probably diverged")


def kmeans(
    features,
    k: int,
    seed: int = 0,
    niter: int = 20,
    pca_dim: int | None = None,
    whiten: bool = True,
    l2_normalize: bool = True,
    max_points_per_centroid: int = 256,
    gpu: bool = False,
    assign: str = "nearest",
    sinkhorn_epsilon: float = 0.2,
) -> KMeansResult:
    """Cluster the rows of ``features`` (N x d, an ndarray or a memmap) into ``k`` clusters.

    Deterministic for a given seed. ``gpu=True`` uses faiss's GPU k-means when faiss was built with
    GPU support and a GPU is present (silently the CPU otherwise). ``assign="sinkhorn"`` replaces the
    nearest-centroid labels by balanced ones (:func:`~avssl.clustering.sinkhorn.balanced_assignments`;
    it holds the pre-processed features and an n x k matrix in memory).
    """
    n, dim = features.shape
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if k > n:
        raise ConfigError(f"k-means with k={k} needs at least k points, but there are only {n}; lower k")
    rng = seeds.keyed_rng(seed)
    budget = max_points_per_centroid * k
    if n > budget:  # subsample ourselves, reading only those rows from disk
        rows = np.sort(rng.choice(n, size=budget, replace=False))
        sample = np.asarray(features[rows], dtype=np.float32)
    else:
        sample = np.asarray(features, dtype=np.float32)
    prep = FeaturePreprocessor(dim, pca_dim, whiten, l2_normalize)
    if prep.pca is not None:  # PCA is fitted on the raw sample; otherwise prep() checks it
        _check_finite(sample, "the features to cluster")
    train = prep.fit(sample)(sample)
    use_gpu = gpu and hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0
    km = faiss.Kmeans(
        prep.out_dim, k, niter=niter, seed=seed, verbose=False, gpu=use_gpu,
        max_points_per_centroid=max(max_points_per_centroid, -(-len(train) // k)),
        min_points_per_centroid=1,  # we warn ourselves below, once, in words
    )
    km.train(train)
    del sample, train  # assignment streams over ``features``; the training copy would double the peak
    if n < 39 * k:
        log.debug("k-means: %d points for k=%d is fewer than faiss's recommended 39 per centroid", n, k)
    centroids = np.array(km.centroids, dtype=np.float32)
    assignments, distances = _assign(features, prep, km.index)
    reseeded, empty = _reseed_empty(features, prep, centroids, assignments, distances, rng)
    if reseeded or empty:
        log.info("k-means: re-seeded %d empty clusters, %d still empty", reseeded, empty)
    if assign == "sinkhorn":
        x = prep(features)
        assignments = balanced_assignments(x, centroids, sinkhorn_epsilon)
        distances = ((x - centroids[assignments]) ** 2).sum(1).astype(np.float32)
        empty = int(k - np.count_nonzero(np.bincount(assignments, minlength=k)))
    objective = float(km.obj[-1]) if len(km.obj) else 0.0
    return KMeansResult(centroids, assignments, distances, objective, reseeded, empty)


def _assign(features, prep: FeaturePreprocessor, index) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of every row, computed chunk by chunk so memory stays bounded."""
    n = features.shape[0]
    labels = np.empty(n, dtype=np.int64)
    dists = np.empty(n, dtype=np.float32)
    for start in range(0, n, CHUNK_ROWS):
        chunk = prep(features[start : start + CHUNK_ROWS])  # raises on NaN/inf
        d, i = index.search(chunk, 1)
        labels[start : start + len(chunk)] = i[:, 0]
        dists[start : start + len(chunk)] = d[:, 0]
    return labels, dists


def _reseed_empty(features, prep, centroids, assignments, distances, rng) -> tuple[int, int]:
    """Split the largest cluster for every empty one (DeepCluster's remedy), in place.

    The empty cluster takes the member of the largest cluster that lies farthest from its centroid,
    and that cluster's members move to whichever of the two centroids is nearer. Returns
    (re-seeded, still empty); clusters stay empty only when no cluster has two distinct points.
    """
    k = len(centroids)
    sizes = np.bincount(assignments, minlength=k)
    reseeded = 0
    for empty in np.flatnonzero(sizes == 0):
        donor = int(np.argmax(sizes))
        members = np.flatnonzero(assignments == donor)
        x = prep(features[np.sort(members)]) if len(members) else None
        if x is None or len(members) < 2:
            break
        if np.ptp(x, axis=0).max() == 0:
            break  # the largest cluster is one point repeated: nothing left to split
        far = int(np.argmax(((x - centroids[donor]) ** 2).sum(1)))
        centroids[empty] = x[far]
        d_old = ((x - centroids[donor]) ** 2).sum(1)
        d_new = ((x - centroids[empty]) ** 2).sum(1)
        move = d_new < d_old
        if move.all():  # a stale centroid can make every member prefer the new one: keep the split real
            move[:] = False
        move[far] = True
        moved = np.sort(members)[move]
        assignments[moved] = empty
        distances[moved] = d_new[move]
        for c in (donor, empty):  # centroids follow their new members
            centroids[c] = x[(move if c == empty else ~move)].mean(0)
        sizes[donor] -= len(moved)
        sizes[empty] = len(moved)
        reseeded += 1
    return reseeded, int((sizes == 0).sum())
