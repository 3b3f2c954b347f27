"""Balanced pseudo-labels by Sinkhorn-Knopp: every cluster gets about the same number of videos.

k-means on a small dataset tends to make a few huge clusters and many tiny ones, and a head trained
on such labels can score well by predicting the big ones. SeLaVi (Asano et al., 2020) instead asks for
an equipartition: the labels maximise the total similarity of videos to their clusters subject to
every cluster holding n/k videos, which the Sinkhorn-Knopp iterations solve approximately on
``exp(score / epsilon)``. Here the scores are the cosine similarities of the (pre-processed) features
to the k-means centroids, standardised so that ``epsilon`` does not depend on how spread they are
(features of a random encoder lie in a narrow cone: their raw cosines differ by little).

Usage::

    labels = balanced_assignments(features, centroids, epsilon=0.2)  # clustering.assign=sinkhorn
"""
from __future__ import annotations

import numpy as np

ITERATIONS = 100  # far more than the few the marginals need on datasets of this size (cheap: n x k)


def balanced_assignments(features: np.ndarray, centroids: np.ndarray, epsilon: float = 0.2,
                         iterations: int = ITERATIONS) -> np.ndarray:
    """Labels (n,) for the rows of ``features`` (n, d) among the rows of ``centroids`` (k, d), with
    cluster sizes pushed towards n/k. Memory: one float64 n x k matrix."""
    if epsilon <= 0:
        raise ValueError(f"the Sinkhorn epsilon must be > 0, got {epsilon}")
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    c = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    scores = (x @ c.T).astype(np.float64)
    scores = (scores - scores.mean()) / max(scores.std(), 1e-12)
    # Log domain: exp(score/epsilon) overflows for small epsilon.
    log_q = scores / epsilon
    n, k = log_q.shape
    for _ in range(iterations):
        log_q -= _logsumexp(log_q, axis=0) - np.log(n / k)  # every cluster: mass n/k
        log_q -= _logsumexp(log_q, axis=1)  # every video: mass 1
    return log_q.argmax(1).astype(np.int64)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    return top + np.log(np.exp(a - top).sum(axis=axis, keepdims=True))
