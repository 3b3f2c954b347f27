"""Feature extraction: run encoders over clips, average per video, write disk-backed arrays.

    feats = extract_features({"video": (encoder, "video")}, loader, len(entries), out_dir, device)

A video with several clips gets the mean of its clips' features (``accumulate.VideoMeans``).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import NothingDecoded
from ..progress import progress as progress_bar
from .accumulate import VideoMeans
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
    means = VideoMeans(out_dir, num_videos)
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
                means.add(name, index, feat.float().cpu().numpy())
            means.count(index)
    finally:
        for n, m in modules.items():
            m.train(was_training[n])
    if reduce is not None:
        for name, (module, _) in encoders.items():  # a rank whose shard decoded nothing still takes part
            means.array(name, module.out_dim)
    for name in encoders:
        if name not in means.sums:  # nothing decoded at all
            raise NothingDecoded(f"feature extraction for {name!r} decoded no clip at all; see the skip report")
    arrays, valid = means.finish(reduce)
    for arr in arrays.values():
        arr.flush()
    return {name: (arrays[name], valid) for name in encoders}
