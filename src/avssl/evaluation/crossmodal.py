"""Cross-modal retrieval on held-out videos: video queries retrieve audio, audio queries retrieve
video (recall@1/5/20), a direct probe of what a cross-modal method has learnt.

Only methods that put both modalities in one embedding space can be asked this: AVTS (its
unit-length sync embeddings) and CrissCross (its projector outputs, queried through its predictors
as in L_sync). XDC and the other deep-clustering methods train each encoder to predict the other
modality's clusters, which never aligns the two feature spaces; for them (and for random encoders)
the report says so instead of ranking incomparable vectors.

Protocol: the videos of the ``split`` part of the manifest (all videos when it has none), K
uniformly spaced audio-visual clips each (frames and audio from the same start); a video's
embedding per modality is the mean over its clips. A ``pair`` hit is the query's own video among
the k nearest of the other modality (chance k/N); with labels, a ``label`` hit is any video of the
query's class.
"""
from __future__ import annotations

from collections import Counter
from math import comb

import numpy as np
import torch

from ..data.dataset import prepare_entries
from ..data.pipeline import clip_spec
from ..data.probe_index import probe_manifest
from ..runs import load_encoders, load_method
from ..engine.device import pick_device
from ..errors import ConfigError
from ..methods import METHODS
from .features import mean_by_video
from .retrieval import RECALL_KS, cross_modal_recall
from .splits import open_manifest, pct, role, write_report
from .sync import embed_clips

DIRECTIONS = {"video_to_audio": "video -> audio", "audio_to_video": "audio -> video"}


def chance(labels, videos: int, ks) -> dict:
    """Expected recall@k of a random ranking: ``pair`` (one right item among ``videos``) and, with labels,
    ``label`` (any of the n items of the query's class, the query's own pair included)."""
    out = {"pair": {f"recall@{k}": min(k, videos) / videos for k in ks}}
    if labels is not None:
        sizes = Counter(labels)
        out["label"] = {f"recall@{k}": float(np.mean([1 - comb(videos - sizes[lab], min(k, videos)) /
                                                      comb(videos, min(k, videos)) for lab in labels]))
                        for k in ks}
    return out


def shared_space(method: str) -> bool:
    """Whether a method's video and audio embeddings are trained to be comparable."""
    return method in METHODS and METHODS[method].supports_sync


def crossmodal(encoders, data, out, *, split: str = "test", clips: int = 3, ks=RECALL_KS, device="auto",
               batch_size: int | None = None, progress: bool = True) -> dict:
    """Cross-modal recall@k of a run (``encoders``: run directory or ``encoders.pt``) on ``data``;
    writes ``crossmodal.json`` and ``crossmodal.md`` into ``out`` and returns the result."""
    if clips < 1:
        raise ConfigError(f"clips must be >= 1, got {clips}")
    manifest = open_manifest(data)
    if str(encoders) == "scratch":
        method_name = "scratch"
    else:
        method_name = load_encoders(encoders).method
    head = [f"# Cross-modal retrieval ({method_name})", "", f"- encoders: {encoders}", f"- data: {manifest.source}"]
    if not shared_space(method_name):
        why = (f"{method_name} has no shared audio-visual embedding: its video and audio encoders are trained to "
               f"predict each other's clusters (or not trained at all), not to place a video and its sound close "
               f"together, so ranking one modality's features by their distance to the other's measures nothing. "
               f"Cross-modal retrieval applies to AVTS and CrissCross runs.")
        result = {"evaluation": "crossmodal", "encoders": str(encoders), "method": method_name, "applicable": False,
                  "reason": why}
        return write_report(out, "crossmodal", result, "\n".join([*head, "", f"**Not applicable.** {why}"]))
    dev = pick_device(device)
    method = load_method(encoders).to(dev)
    cfg = method.cfg
    chosen = [i for i, it in enumerate(manifest) if role(it, "split") == split]
    sub, held_out = manifest.subset(chosen), f"the '{split}' split"
    if not chosen:
        sub, held_out = manifest, f"all videos (the manifest has no '{split}' split)"
    entries, skips = prepare_entries(sub, probe_manifest(sub, progress=progress), clip_spec(cfg))
    if len(entries) < 2:
        raise ConfigError(f"cross-modal retrieval needs at least 2 usable videos, got {len(entries)} ({skips.summary()})")
    video, _, ev, ea = embed_clips(method, cfg, entries, clips, dev, batch_size)
    with torch.no_grad():
        qv, qa = method.sync_query("video", ev), method.sync_query("audio", ea)
    n = len(entries)
    per_video = {name: mean_by_video(t.float().cpu().numpy(), video, n) for name, t in
                 (("video", ev), ("audio", ea), ("video_query", qv), ("audio_query", qa))}
    has = np.logical_and.reduce([h for _, h in per_video.values()])
    x = {name: v[has] for name, (v, _) in per_video.items()}
    label_of = {it.path: it.label for it in sub}
    labels = [label_of[e.path] for e, ok in zip(entries, has) if ok]
    labels = labels if all(lab is not None for lab in labels) else None
    recall = cross_modal_recall(x["video"], x["audio"], labels, ks, x["video_query"], x["audio_query"])
    videos = int(has.sum())
    random = chance(labels, videos, ks)
    result = {"evaluation": "crossmodal", "encoders": str(encoders), "method": method_name, "applicable": True,
              "data": str(manifest.source), "settings": {"split": held_out, "clips": clips, "ks": list(ks)},
              "videos": videos, "skipped": len(skips), **recall, "chance": random}
    cols = [f"R@{k}" for k in ks]
    lines = [*head, f"- held out: {held_out}, {videos} videos, {clips} clip(s) each, embeddings averaged per video",
             "- pair: the query's own video among the k nearest of the other modality; label: a video of its class",
             "", "| query -> gallery | hit | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(ks)]
    for key, title in DIRECTIONS.items():
        for hit, r in recall[key].items():
            lines.append(f"| {title} | {hit} | " + " | ".join(pct(r[f'recall@{k}']) for k in ks) + " |")
    for hit, r in random.items():
        lines.append(f"| chance | {hit} | " + " | ".join(pct(r[f'recall@{k}']) for k in ks) + " |")
    return write_report(out, "crossmodal", result, "\n".join(lines))
