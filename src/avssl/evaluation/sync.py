"""Audio-visual synchronisation accuracy, the AVTS slides' "AVTS-Kinetics" measure: on held-out
videos, tell an in-sync (frames, audio) pair from an out-of-sync one whose audio comes from another
video ("easy" negatives only, as the slides' evaluation on the Kinetics test set).

Protocol:
- pairs: every video gives ``clips`` uniformly spaced clips (frames and audio from the same start);
  a clip's frames with its own audio is an in-sync pair, with the audio of the same clip of another
  video (a seeded pairing of the videos of a part, never a video with itself) an out-of-sync pair:
  as many of each, so chance is 50%;
- the method scores a pair by a distance (AVTS: L2 between its embeddings; CrissCross: the pair's
  L_sync), and calls it in sync below a threshold. The threshold is chosen to maximise accuracy on
  the pairs of the training videos (``split`` column ``train``; without train and test in that column,
  a seeded ``fit_fraction`` of the videos), and accuracy is reported on the test (other) videos;
- the ROC AUC of the held-out pairs is reported too: the same question without a threshold.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from .. import seeds
from ..data.dataset import prepare_entries
from ..data.pipeline import build_cache, clip_spec, make_dataset, make_loader
from ..data.probe_index import probe_manifest
from ..runs import load_method
from ..engine.precision import autocast
from ..engine.device import pick_device
from ..errors import ConfigError
from .splits import open_manifest, pct, role, write_report


def best_threshold(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """The distance threshold (in sync: distance < threshold) with the highest accuracy on these
    pairs, and that accuracy. Ties go to the smallest threshold."""
    d = np.concatenate([positive, negative])
    is_pos = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    order = np.argsort(d, kind="stable")
    d, is_pos = d[order], is_pos[order]
    # Calling the k smallest distances in sync, k = 0..N: correct = positives among them + negatives after.
    correct = np.concatenate([[0], np.cumsum(is_pos)]) + len(negative) - np.concatenate([[0], np.cumsum(1 - is_pos)])
    k = int(np.argmax(correct))
    lower = d[k - 1] if k > 0 else d[0] - 1.0
    upper = d[k] if k < len(d) else d[-1] + 1.0
    return float((lower + upper) / 2), float(correct[k] / len(d))


def accuracy_at(positive: np.ndarray, negative: np.ndarray, threshold: float) -> float:
    return float((np.sum(positive < threshold) + np.sum(negative >= threshold)) / (len(positive) + len(negative)))


def pair_rows(video: np.ndarray, clip: np.ndarray, videos: np.ndarray, rng: np.random.Generator) -> tuple:
    """Rows of the in-sync pairs of ``videos`` and, for each, the row whose audio makes its
    out-of-sync pair: the same clip (else the first) of the next video in a seeded random order."""
    if len(videos) < 2:
        raise ConfigError("the synchronisation accuracy needs at least 2 videos in each part")
    order = rng.permutation(videos)
    partner = dict(zip(order.tolist(), np.roll(order, -1).tolist()))
    where = {(int(v), int(c)): r for r, (v, c) in enumerate(zip(video, clip))}
    first = {}
    for r, v in enumerate(video):
        first.setdefault(int(v), r)
    rows = np.flatnonzero(np.isin(video, videos))
    other = np.array([where.get((partner[int(video[r])], int(clip[r])), first[partner[int(video[r])]]) for r in rows])
    return rows, other


@torch.no_grad()
def embed_clips(method, cfg, entries, clips, device, batch_size):
    """Per decoded clip: its video position, clip number, and the video and audio embeddings."""
    spec = clip_spec(cfg)
    dataset = make_dataset(cfg, entries, spec, "test", clips_per_video=clips, cache=build_cache(cfg.loader, spec))
    loader = make_loader(dataset, cfg.loader, device, batch_size=batch_size or cfg.optim.batch_size)
    video, clip, ev, ea = [], [], [], []
    for batch in loader:
        if "index" not in batch:
            continue
        with autocast(device, cfg.precision):
            ev.append(method.sync_embed("video", batch["video"].to(device)).float())
            ea.append(method.sync_embed("audio", batch["audio"].to(device)).float())
        video.append(batch["index"].numpy())
        clip.append(batch["clip"].numpy())
    if not ev:
        raise ConfigError("no clip of any video could be decoded for the synchronisation accuracy")
    return np.concatenate(video), np.concatenate(clip), torch.cat(ev), torch.cat(ea)


def sync_accuracy(encoders, data, out, *, clips: int = 3, fit_fraction: float = 0.5, seed: int = 0,
                  device="auto", batch_size: int | None = None, progress: bool = True) -> dict:
    """Synchronisation accuracy of a run's method (``encoders``: run directory or ``encoders.pt``) on
    ``data``; writes ``sync.json`` and ``sync.md`` into ``out`` and returns the result."""
    if clips < 1 or not 0 < fit_fraction < 1:
        raise ConfigError(f"clips must be >= 1 and fit_fraction in (0, 1), got {clips} and {fit_fraction}")
    dev = pick_device(device)
    method = load_method(encoders).to(dev)
    cfg = method.cfg
    manifest = open_manifest(data)
    entries, skips = prepare_entries(manifest, probe_manifest(manifest, progress=progress), clip_spec(cfg))
    if len(entries) < 4:
        raise ConfigError(f"the synchronisation accuracy needs at least 4 usable videos, got {len(entries)} "
                          f"({skips.summary()})")
    split = {item.path: role(item, "split") for item in manifest}
    parts = {r: np.array([e.index for e in entries if split[e.path] == r]) for r in ("train", "test")}
    if len(parts["train"]) < 2 or len(parts["test"]) < 2:  # no usable split column: a seeded one
        perm = seeds.rng(seed, seeds.SYNC_SUBSET).permutation(len(entries))
        n_fit = min(max(int(round(fit_fraction * len(entries))), 2), len(entries) - 2)
        parts = {"train": np.sort(perm[:n_fit]), "test": np.sort(perm[n_fit:])}
        parts_from = f"a seeded {fit_fraction:g} of the videos"
    else:
        parts_from = "the manifest's split column"
    video, clip, ev, ea = embed_clips(method, cfg, entries, clips, dev, batch_size)
    rng = seeds.rng(seed, seeds.SYNC_SHIFTS)
    dist = {}
    with torch.no_grad():
        for name, videos in parts.items():
            rows, other = pair_rows(video, clip, videos, rng)
            r, o = torch.as_tensor(rows, device=ev.device), torch.as_tensor(other, device=ev.device)
            dist[name] = (method.sync_distance(ev[r], ea[r]).float().cpu().numpy(),
                          method.sync_distance(ev[r], ea[o]).float().cpu().numpy())
    threshold, fit_accuracy = best_threshold(*dist["train"])
    pos, neg = dist["test"]
    result = {
        "evaluation": "sync", "encoders": str(encoders), "method": cfg.method, "data": str(manifest.source),
        "settings": {"clips": clips, "negatives": "easy (audio of another video)", "threshold_from": parts_from,
                     "seed": seed},
        "accuracy": accuracy_at(pos, neg, threshold),
        "auc": float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], -np.r_[pos, neg])),
        "threshold": threshold, "fit_accuracy": fit_accuracy,
        "pairs": {"fit": 2 * len(dist["train"][0]), "test": 2 * len(pos)},
        "videos": {"fit": len(parts["train"]), "test": len(parts["test"]), "skipped": len(skips)},
    }
    md = "\n".join([
        f"# Audio-visual synchronisation accuracy ({cfg.method})", "",
        f"- encoders: {encoders}", f"- data: {manifest.source}",
        f"- pairs: in sync vs the audio of another video, {clips} clip(s) per video; chance 50.0",
        f"- threshold {threshold:.4f} chosen on {result['pairs']['fit']} pairs of {len(parts['train'])} videos "
        f"({parts_from}; accuracy there {pct(fit_accuracy)})", "",
        "| held-out videos | pairs | accuracy | ROC AUC |", "|---|---|---|---|",
        f"| {len(parts['test'])} | {result['pairs']['test']} | {pct(result['accuracy'])} | {pct(result['auc'])} |",
    ])
    return write_report(out, "sync", result, md)
