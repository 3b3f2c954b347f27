"""Hand-crafted features for the first clustering (the XDC paper's untried idea, Supp. A).

Cheap stand-ins for iDT and spectrogram descriptors: for video, where and how much things move
(frame-difference energy on a 4x4 grid) and where the edges are (gradient energy on the same grid);
for audio, the mean and spread of every mel band over time.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .accumulate import VideoMeans


def video_descriptor(video: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) -> (B, 32): motion and edge energy on a 4x4 grid."""
    gray = video.mean(1)  # (B, T, H, W)
    motion = (gray[:, 1:] - gray[:, :-1]).abs().mean(1) if gray.shape[1] > 1 else torch.zeros_like(gray[:, 0])
    gx = (gray[..., :, 1:] - gray[..., :, :-1]).abs().mean(1)
    gy = (gray[..., 1:, :] - gray[..., :-1, :]).abs().mean(1)
    edges = gx[..., :-1, :] + gy[..., :, :-1]
    grid = [F.adaptive_avg_pool2d(m.unsqueeze(1), 4).flatten(1) for m in (motion, edges)]
    return torch.cat(grid, 1)


def audio_descriptor(spec: torch.Tensor) -> torch.Tensor:
    """(B, 1, Q, P) log-mel -> (B, 2Q): per-band mean and standard deviation over time."""
    s = spec[:, 0]
    return torch.cat([s.mean(-1), s.std(-1)], 1)


DESCRIPTORS = {"video": video_descriptor, "audio": audio_descriptor}


@torch.no_grad()
def handcrafted_features(loader, num_videos: int, slot_modalities: dict[str, str], out_dir, reduce=None):
    """Per-video hand-crafted features {slot: (array, valid)}, averaged over each video's clips
    (``reduce`` combines the sums of several processes, as in ``extract_features``)."""
    means = VideoMeans(out_dir, num_videos)
    for batch in loader:
        if "index" not in batch:
            continue
        index = batch["index"].numpy()
        for slot, modality in slot_modalities.items():
            means.add(slot, index, DESCRIPTORS[modality](batch[modality].float()).numpy())
        means.count(index)
    arrays, valid = means.finish(reduce)
    for arr in arrays.values():
        # Standardise each dimension so no descriptor dominates k-means by its scale.
        arr[valid] = (arr[valid] - arr[valid].mean(0)) / (arr[valid].std(0) + 1e-6)
    return {slot: (arrays[slot], valid) for slot in slot_modalities}
