"""What a method may ask the engine for at the start of an iteration (``PretextMethod.begin_iteration``).

    def begin_iteration(self, ctx):
        feats = ctx.features({"video": "video"})            # per-video features of the current encoders
        labels = ctx.cluster("video", *feats["video"], k=64)  # k-means, recorded in the run's clusters/
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .. import seeds
from ..clustering.pseudo_labels import cluster_videos
from ..runs import save_clustering
from .. import distributed
from .cluster_history import keep_iteration
from .extract import extract_features
from .handcrafted import handcrafted_features


class IterationContext:
    """What a method may ask for at the start of an iteration: the run folder (``run_dir``), its usable
    videos in the order of every per-video table (``entries``), features of its slots, k-means of them
    and the manifest's labels."""

    def __init__(self, trainer, iteration: int):
        self.trainer, self.iteration = trainer, iteration
        self.run_dir, self.entries = trainer.run_dir, trainer.entries  # the run folder; its usable videos, in order
        self.log: dict = {"clusters": {}}
        self.times = {"extract": 0.0, "cluster": 0.0}
        self.renewed: list = []  # parameters a method renewed at the end of an epoch (``renew``)

    def features(self, slot_modalities: dict[str, str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-video features {slot: (array (N, D), valid)} from the current encoders (or, in the first
        iteration with ``clustering.init=handcrafted``, hand-crafted features of each slot's modality)."""
        t = self.trainer
        t0 = time.perf_counter()
        out_dir = t.run_dir / "features"
        if not distributed.is_main():  # every rank sums its shard; rank 0 receives the totals
            out_dir = out_dir / f"rank{distributed.rank()}"
        if self.iteration == 0 and t.cfg.clustering.init == "handcrafted":
            feats = handcrafted_features(t.extract_loader(), len(t.entries), slot_modalities, out_dir,
                                         reduce=distributed.reduce_to_main)
        else:
            t.refresh_bn_stats(seeds.extraction_key(self.iteration), encoders_only=True)
            encoders = {s: (t.method.encoders[s], m) for s, m in slot_modalities.items()}
            feats = extract_features(
                encoders, t.extract_loader(), len(t.entries), out_dir, t.device, t.precision,
                progress=t.progress and distributed.is_main(), desc=f"iter {self.iteration} extract",
                on_skip=t.skip_clip, reduce=distributed.reduce_to_main,
            )
        self.times["extract"] += time.perf_counter() - t0
        return feats

    def cluster(self, name: str, x: np.ndarray, valid: np.ndarray, k: int, previous=None) -> np.ndarray:
        """k-means of the valid rows of ``x``; returns labels for all rows (-1 where not valid) and
        records cluster statistics (sizes, NMI with the previous iteration, label diagnostics)."""
        t = self.trainer
        result = self._kmeans(x, valid, k, seeds.kmeans_seed(t.cfg.seed, self.iteration), previous, "cluster")
        if result is None:  # not rank 0: its labels come from rank 0
            return distributed.broadcast_array(None, like_shape=(len(x),))
        self.log["clusters"][name] = result.stats
        t.centroids[name] = torch.from_numpy(result.kmeans.centroids)
        save_clustering(t.run_dir, name, result.labels, result.distances, result.kmeans.centroids)
        # every iteration's clustering, for avssl eval clusters --iteration
        keep_iteration(t.run_dir / "clusters", self.iteration, name, x, np.flatnonzero(valid), seed=t.cfg.seed)
        return distributed.broadcast_array(result.labels)

    def recluster(self, name: str, x: np.ndarray, valid: np.ndarray, k: int, epoch: int,
                  previous=None) -> tuple[np.ndarray, dict]:
        """``cluster`` at the end of ``epoch`` (``clustering.recluster=epoch``): its own k-means seed, and
        nothing written to ``clusters/`` (which keeps the iterations' clusterings). Returns the labels
        and the statistics (the same on every rank)."""
        seed = seeds.recluster_seed(self.trainer.cfg.seed, self.iteration, epoch)
        result = self._kmeans(x, valid, k, seed, previous, "recluster")
        if result is None:
            return distributed.broadcast_array(None, like_shape=(len(x),)), distributed.broadcast_object(None)
        return distributed.broadcast_array(result.labels), distributed.broadcast_object(result.stats)

    def _kmeans(self, x, valid, k: int, seed: int, previous, timer: str):
        """``cluster_videos`` on the run's clustering settings, on rank 0 (None on the others), timed."""
        t = self.trainer
        t0 = time.perf_counter()
        result = None
        if distributed.is_main():  # k-means runs once, on rank 0; every rank gets its labels
            c = t.cfg.clustering
            result = cluster_videos(x, valid, k, seed=seed, niter=c.niter, pca_dim=c.pca_dim,
                                    l2_normalize=c.l2_normalize, gpu=c.gpu, assign=c.assign,
                                    sinkhorn_epsilon=c.sinkhorn_epsilon,
                                    previous=None if previous is None else previous.numpy(),
                                    ground_truth=t.ground_truth)
        self.times[timer] = self.times.get(timer, 0.0) + time.perf_counter() - t0
        return result

    def renew(self, params) -> None:
        """Say that ``params`` were given new values (heads set to new centroids): the engine drops their
        optimiser state (momentum), which belonged to the old ones."""
        self.renewed.extend(params)

    def labels(self) -> np.ndarray | None:
        """Per-video label ids from the manifest (-1 where unlabelled), or None when it has no labels."""
        return self.trainer.ground_truth
