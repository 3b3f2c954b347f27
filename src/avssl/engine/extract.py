"""Feature extraction: run encoders over clips, average per video, write disk-backed arrays.

Features go straight into ``.npy`` files opened as memory maps, so the number of videos is bounded by
disk, not memory; a video with several clips gets the mean of its clips' features.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap

from ..progress import progress as progress_bar
from .precision import autocast


@torch.no_grad()
def extract_features(
    encoders: dict,
    loader,
    num_videos: int,
    out_dir,
    device: torch.device,
    precision: str = "fp32",
    progress: bool = True,
    desc: str = "extract",
    on_skip=None,
    reduce=None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``encoders``: {name: (module, modality)}. Returns {name: (features (num_videos, D), valid)},
    where ``valid`` marks videos with at least one decoded clip; the features of the others are 0.

    ``on_skip(path, reason)`` is called for every clip that failed to decode. ``reduce(array)``, when
    given, combines the per-video sums and counts of several processes (each extracting a shard)
    before the averaging.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sums: dict[str, np.ndarray] = {}
    counts = np.zeros(num_videos, dtype=np.int64)
    modules = {n: m for n, (m, _) in encoders.items()}
    was_training = {n: m.training for n, m in modules.items()}
    for m in modules.values():
        m.eval()
    try:
        for batch in progress_bar(loader, desc, enabled=progress, leave=False, unit="batch"):
            for path, reason in batch.get("skipped", []):
                if on_skip is not None:
                    on_skip(path, reason)
            if "index" not in batch:
                continue
            index = batch["index"].numpy()
            for name, (module, modality) in encoders.items():
                with autocast(device, precision):
                    feat = module(batch[modality].to(device, non_blocking=True))
                feat = feat.float().cpu().numpy()
                if name not in sums:
                    sums[name] = open_memmap(out_dir / f"{name}.npy", mode="w+", dtype=np.float32,
                                             shape=(num_videos, feat.shape[1]))
                np.add.at(sums[name], index, feat)
            np.add.at(counts, index, 1)
    finally:
        for n, m in modules.items():
            m.train(was_training[n])
    if reduce is not None:
        for name, (module, _) in encoders.items():  # a rank whose shard decoded nothing still takes part
            if name not in sums:
                sums[name] = open_memmap(out_dir / f"{name}.npy", mode="w+", dtype=np.float32,
                                         shape=(num_videos, module.out_dim))
        reduce(counts)
        for arr in sums.values():
            reduce(arr)
    valid = counts > 0
    out = {}
    for name in encoders:
        if name not in sums:  # nothing decoded at all
            raise RuntimeError(f"feature extraction for {name!r} decoded no clip at all; see the skip report")
        arr = sums[name]
        arr[valid] /= counts[valid, None]
        arr.flush()
        out[name] = (arr, valid)
    return out
