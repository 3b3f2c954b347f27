"""Streamed per-video means of clip features, kept on disk: feature extraction and hand-crafted
features both average each video's clips this way.

    means = VideoMeans(out_dir, num_videos)
    for batch in loader:
        means.add("video", batch["index"].numpy(), features)
    arrays, valid = means.finish(reduce=distributed.reduce_to_main)

Sums go straight into ``.npy`` files opened as memory maps, so the number of videos is bounded by
disk, not memory.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap


class VideoMeans:
    def __init__(self, out_dir, num_videos: int):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.num_videos = num_videos
        self.sums: dict[str, np.ndarray] = {}
        self.counts = np.zeros(num_videos, dtype=np.int64)

    def array(self, name: str, dim: int) -> np.ndarray:
        """The sums of ``name`` (``<out_dir>/<name>.npy``, (num_videos, dim)), created on first use."""
        if name not in self.sums:
            self.sums[name] = open_memmap(self.out_dir / f"{name}.npy", mode="w+", dtype=np.float32,
                                          shape=(self.num_videos, dim))
        return self.sums[name]

    def add(self, name: str, index: np.ndarray, features: np.ndarray) -> None:
        """Add the features (B, D) of clips of the videos ``index`` (B,) to ``name``'s sums."""
        np.add.at(self.array(name, features.shape[1]), index, features)

    def count(self, index: np.ndarray) -> None:
        """Count one clip of each video in ``index`` (once per batch, whatever the number of names)."""
        np.add.at(self.counts, index, 1)

    def finish(self, reduce=None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """({name: means (num_videos, D)}, valid): ``valid`` marks videos with at least one clip; the
        others stay 0. ``reduce(array)``, when given, first combines the sums and counts of several
        processes, each of which added a shard."""
        if reduce is not None:
            reduce(self.counts)
            for arr in self.sums.values():
                reduce(arr)
        valid = self.counts > 0
        for arr in self.sums.values():
            arr[valid] /= self.counts[valid, None]
        return self.sums, valid
