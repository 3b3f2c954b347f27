"""The per-video feature memory of ``clustering.recluster=epoch`` (DeepCluster-v2's way of re-clustering).

Instead of an extraction pass and k-means at the start of each iteration, DeepCluster-v2 (Caron et al.
2020, SwAV's paper) keeps the features the training steps compute anyway, one row per video, and runs
k-means on that memory at the end of every epoch; the classification heads then start from the new
centroids (their numbering changes from one clustering to the next, so old head weights mean nothing).

Here a slot's row of a video is the mean of the (L2-normalised, when ``clustering.l2_normalize``)
features its training steps and its validation pass computed in the last epoch that saw it; rows of
videos not seen keep their value. The memory starts from the first iteration's extracted features
(none with ``clustering.init=handcrafted``: rows are then valid once a step saw them).

    mem = FeatureMemory(l2_normalize=True)
    mem.reset({"video": (x, valid)})             # extracted features (N, D)
    mem.add("video", batch["index"], feat)       # in a training or validation step
    mem.finish_epoch()                           # sums over ranks, seen rows replaced
    x, valid = mem.rows("video")                 # what k-means clusters
    w = centroid_weights(x, valid, labels, k)    # (k, D) unit rows: a head's new weights
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed


class FeatureMemory:
    def __init__(self, l2_normalize: bool = True):
        self.l2_normalize = l2_normalize
        self.features: dict[str, torch.Tensor] = {}  # slot -> (N, D) float32 on the CPU
        self.valid: dict[str, torch.Tensor] = {}  # slot -> (N,) bool: rows that hold a feature
        self._sums: dict[str, torch.Tensor] = {}  # this epoch's, on the features' device
        self._counts: dict[str, torch.Tensor] = {}

    def _prepare(self, f: torch.Tensor) -> torch.Tensor:
        f = f.detach().float()
        return F.normalize(f, dim=1) if self.l2_normalize else f

    def ready(self, slots, n: int) -> bool:
        """Whether the memory holds rows of ``n`` videos for each of ``slots``."""
        return all(s in self.features and len(self.features[s]) == n for s in slots)

    def reset(self, feats: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Start from extracted features {slot: (x (N, D), valid)}."""
        self.clear()
        for slot, (x, valid) in feats.items():
            self.features[slot] = self._prepare(torch.from_numpy(np.asarray(x, dtype=np.float32)))
            self.valid[slot] = torch.from_numpy(np.asarray(valid, dtype=bool)).clone()

    def allocate(self, slot: str, n: int, dim: int) -> None:
        """Empty rows (none valid) for ``slot``, when there are no extracted features to start from."""
        self.features[slot] = torch.zeros(n, dim)
        self.valid[slot] = torch.zeros(n, dtype=torch.bool)

    def clear(self) -> None:
        self.features, self.valid, self._sums, self._counts = {}, {}, {}, {}

    def add(self, slot: str, index: torch.Tensor, feat: torch.Tensor) -> None:
        """Remember the features ``feat`` (B, D) of the videos ``index`` (B,) computed by a step."""
        if slot not in self.features:
            return
        f = self._prepare(feat)
        if slot not in self._sums:
            n = len(self.features[slot])
            self._sums[slot] = torch.zeros(n, f.shape[1], device=f.device)
            self._counts[slot] = torch.zeros(n, device=f.device)
        index = index.to(f.device)
        self._sums[slot].index_add_(0, index, f)
        self._counts[slot].index_add_(0, index, torch.ones(len(index), device=f.device))

    def finish_epoch(self) -> dict[str, int]:
        """Replace the rows seen this epoch (on any rank) by the mean of their features; returns the number
        of rows replaced per slot. Every rank takes part (collective)."""
        seen = {}
        for slot in sorted(self.features):
            dim = self.features[slot].shape[1]
            device = self._sums[slot].device if slot in self._sums else torch.device("cpu")
            sums = self._sums.get(slot, torch.zeros(len(self.features[slot]), dim, device=device))
            counts = self._counts.get(slot, torch.zeros(len(self.features[slot]), device=device))
            sums, counts = distributed.all_reduce_tensor(sums).cpu(), distributed.all_reduce_tensor(counts).cpu()
            hit = counts > 0
            mean = sums[hit] / counts[hit, None]
            self.features[slot][hit] = F.normalize(mean, dim=1) if self.l2_normalize else mean
            self.valid[slot] |= hit
            seen[slot] = int(hit.sum())
        self._sums, self._counts = {}, {}
        return seen

    def rows(self, slot: str) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, D) float32, valid (N,)) of ``slot``, as numpy arrays for k-means."""
        return self.features[slot].numpy(), self.valid[slot].numpy()

    def state(self) -> dict:
        return {"features": dict(self.features), "valid": dict(self.valid)}

    def load(self, state: dict) -> None:
        self.clear()
        self.features = {k: v.cpu().float() for k, v in state.get("features", {}).items()}
        self.valid = {k: v.cpu().bool() for k, v in state.get("valid", {}).items()}


def centroid_weights(x: np.ndarray, valid: np.ndarray, labels: np.ndarray, k: int) -> torch.Tensor:
    """(k, D) head weights: per cluster, the mean of the L2-normalised rows of ``x`` labelled with it,
    scaled to unit length (zero for a cluster without rows), as DeepCluster-v2 sets its prototypes."""
    ok = valid & (labels >= 0)
    rows = torch.from_numpy(np.asarray(x[ok], dtype=np.float32))
    rows = F.normalize(rows, dim=1)
    sums = torch.zeros(k, x.shape[1]).index_add_(0, torch.from_numpy(labels[ok].astype(np.int64)), rows)
    return F.normalize(sums, dim=1)
