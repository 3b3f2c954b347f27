import faiss
import numpy as np
import pytest
from numpy.lib.format import open_memmap

from avssl.clustering import kmeans as km
from avssl.clustering.kmeans import kmeans
from avssl.errors import ConfigError


def blobs(n_per=50, k=5, d=16, seed=0, spread=0.1):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 3
    x = np.concatenate([c + spread * rng.normal(size=(n_per, d)) for c in centers]).astype(np.float32)
    y = np.repeat(np.arange(k), n_per)
    return x, y


def test_agrees_with_direct_faiss_call():
    x, _ = blobs(n_per=80, k=6, d=32)
    ours = kmeans(x, 6, seed=3, niter=15, l2_normalize=False)
    ref = faiss.Kmeans(32, 6, niter=15, seed=3, verbose=False, min_points_per_centroid=1)
    ref.train(x)
    _, ref_labels = ref.index.search(x, 1)
    np.testing.assert_array_equal(ours.centroids, ref.centroids)
    np.testing.assert_array_equal(ours.assignments, ref_labels[:, 0])
    assert ours.reseeded == 0 and ours.empty == 0


def test_recovers_separated_blobs_and_is_deterministic():
    x, y = blobs()
    a = kmeans(x, 5, seed=1)
    b = kmeans(x, 5, seed=1)
    np.testing.assert_array_equal(a.assignments, b.assignments)
    # Every true blob maps to exactly one cluster.
    for c in range(5):
        assert len(np.unique(a.assignments[y == c])) == 1
    assert len(np.unique(a.assignments)) == 5


def test_k_larger_than_n_is_a_clear_error():
    x, _ = blobs(n_per=2, k=2)
    with pytest.raises(ConfigError, match="k=10.*only 4"):
        kmeans(x, 10)


def test_nan_features_are_refused():
    x, _ = blobs()
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        kmeans(x, 5)


@pytest.mark.parametrize("opts", [{}, {"l2_normalize": False}, {"pca_dim": 8}])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_refused_in_the_sample_and_in_assignment(opts, bad):
    """NaN/inf is found in the training sample and in rows only the assignment reads (checked on
    the row norms when normalising); a huge but finite row, whose norm overflows, is not refused
    (normalised, it becomes zeros, as before)."""
    x, _ = blobs()
    budget = 10 * 5
    sampled = np.random.default_rng(0).choice(len(x), size=budget, replace=False)  # kmeans's own draw
    outside = int(np.setdiff1d(np.arange(len(x)), sampled)[0])
    for row in (int(sampled[0]), outside):
        y = x.copy()
        y[row, 2] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            kmeans(y, 5, max_points_per_centroid=10, **opts)
    if opts.get("l2_normalize", True):
        y = x.copy()
        y[outside] = 1e30
        assert kmeans(y, 5, max_points_per_centroid=10, **opts).assignments.shape == (len(x),)


def test_empty_clusters_are_reseeded_by_splitting():
    # The training sample holds only 2 distinct points, so faiss leaves clusters without members
    # after assignment; the remedy must split the big clusters so every cluster gets members.
    rng = np.random.default_rng(0)
    base = np.repeat(np.eye(2, 8, dtype=np.float32), 40, axis=0)
    x = base + 0.01 * rng.normal(size=base.shape).astype(np.float32)
    r = kmeans(x, 6, seed=0, l2_normalize=False, max_points_per_centroid=1)
    sizes = r.sizes()
    assert r.empty == 0 and (sizes > 0).all()
    assert sizes.sum() == len(x)
    # Assignments are consistent with the reported distances.
    d = ((x - r.centroids[r.assignments]) ** 2).sum(1)
    np.testing.assert_allclose(d, r.distances, rtol=1e-3, atol=1e-4)


def test_duplicate_points_leave_clusters_empty_and_report_them():
    x = np.ones((20, 4), dtype=np.float32)
    x[10:] = 2.0  # two distinct points only: at most 2 clusters can have members
    r = kmeans(x, 4, seed=0, l2_normalize=False)
    assert r.empty == 2
    assert (r.sizes() > 0).sum() == 2


def test_streams_memmap_and_pca_whitening(tmp_path, monkeypatch):
    x, y = blobs(n_per=300, k=4, d=24)
    mm = open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32, shape=x.shape)
    mm[:] = x
    mm.flush()
    monkeypatch.setattr(km, "CHUNK_ROWS", 100)  # force several assignment chunks
    r = kmeans(np.load(tmp_path / "f.npy", mmap_mode="r"), 4, seed=0, pca_dim=8, max_points_per_centroid=64)
    assert r.centroids.shape == (4, 8)
    for c in range(4):
        assert len(np.unique(r.assignments[y == c])) == 1


def test_pca_dim_larger_than_features_is_an_error():
    x, _ = blobs(d=8)
    with pytest.raises(ConfigError, match="pca_dim"):
        kmeans(x, 3, pca_dim=16)
