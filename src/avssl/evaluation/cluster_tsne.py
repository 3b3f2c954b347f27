"""The 2-D picture of a clustering: t-SNE of the clustered videos' features, coloured by cluster and label.

Usage: ``tsne_report(run, cfg, "video", assignments, labels, out)`` -> ``{"picture": "video_tsne.png", ...}``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import seeds
from ..config import PretrainConfig
from .cluster_pictures import short_text

TSNE_POINTS = 2000  # t-SNE on more videos takes minutes and shows no more


def clustering_features(run, cfg: PretrainConfig | None, name: str, n: int,
                        rows: np.ndarray | None = None) -> tuple[np.ndarray | None, str]:
    """The per-video features the run's last ``name`` clustering was computed from (``features/<slot>.npy``
    of each of its slots, L2-normalised and side by side, as CDC clusters them), of the videos at ``rows``
    (default: all; only those are read), and where they came from; ``(None, why not)`` when the run has
    none of ``n`` rows."""
    from ..methods import METHODS

    method = METHODS.get(cfg.method) if cfg is not None else None
    slots = list(getattr(method, "clusterings", {}).get(name) or [name])
    parts = []
    for slot in slots:
        f = Path(run) / "features" / f"{slot}.npy"
        try:
            x = np.load(f, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            return None, f"no features of {slot!r} in the run ({f}: {e.__class__.__name__})"
        if x.ndim != 2 or len(x) != n:
            return None, f"{f} holds an array of shape {x.shape}, not one row per video ({n})"
        x = np.asarray(x if rows is None else x[rows], dtype=np.float32)
        parts.append(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
    return np.concatenate(parts, axis=1), " + ".join(f"features/{s}.npy" for s in slots)


def tsne_2d(x: np.ndarray, seed: int = 0, max_points: int = TSNE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, xy)``: at most ``max_points`` rows of ``x`` (a subsample drawn with ``seed``, in order) and
    their 2-D t-SNE coordinates (after PCA to 50 dimensions when there are more)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    rows = np.arange(len(x))
    if len(rows) > max_points:
        rows = np.sort(seeds.rng(seed, seeds.REPORT_SAMPLE).choice(len(x), max_points, replace=False))
    data = np.asarray(x[rows], dtype=np.float32)
    perplexity = float(min(30.0, (len(rows) - 1) / 3))  # t-SNE needs fewer neighbours than points
    # One thread: each of t-SNE's 1,000 steps is small, and OpenMP threads waiting for each other at every
    # step made 24 points take 11 s instead of 0.06 s on a busy 2-core machine (2,000 points: 7 s).
    with threadpool_limits(1):
        if data.shape[1] > 50 and len(rows) > 50:
            data = PCA(50, random_state=seed).fit_transform(data)
        xy = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed).fit_transform(data)
    return rows, xy


def tsne_picture(xy: np.ndarray, clusters, labels, out_png, title: str) -> Path:
    """The points ``xy`` coloured by cluster, and (a second panel) by label when some have one."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [("cluster", list(clusters))]
    if any(lab is not None for lab in labels):
        panels.append(("label", list(labels)))
    fig = Figure(figsize=(5.6 * len(panels), 5.0))
    FigureCanvasAgg(fig)
    for i, (what, values) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        names = sorted({v for v in values if v is not None}, key=lambda v: (str(type(v)), v))
        cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
        for j, v in enumerate([*names, None]):
            mask = np.array([val == v if v is not None else val is None for val in values], dtype=bool)
            if mask.any():
                colour = cmap(j % cmap.N) if v is not None else (0.7, 0.7, 0.7, 1.0)
                ax.scatter(xy[mask, 0], xy[mask, 1], s=12, color=colour, linewidths=0,
                           label=short_text(v, 20) if v is not None else f"no {what}")
        ax.set_title(f"coloured by {what} ({len(names)} {what}s)", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if len(names) <= 20:  # beyond that a legend hides more than it tells
            ax.legend(fontsize=6, markerscale=1.2, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.suptitle(title, fontsize=10)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100, bbox_inches="tight")
    return out_png


def tsne_report(run, cfg, name: str, assignments: np.ndarray, labels, out, max_points: int = TSNE_POINTS,
                seed: int = 0, sample_dir=None) -> dict:
    """``<name>_tsne.png`` of the clustered videos, and what it shows (or why it was left out). Features: the
    run's last (``features/``), or with ``sample_dir`` (an ``iter_XX`` folder) the sample of the features that
    iteration clustered (``engine.cluster_history``)."""
    if max_points <= 0:
        return {"skipped": "not asked for (tsne_points=0)"}
    valid = np.flatnonzero(np.asarray(assignments) >= 0)
    if sample_dir is not None:
        from ..engine.cluster_history import sample_features

        kept = sample_features(sample_dir, name)
        if kept is None:
            return {"skipped": f"no sample of the features in {sample_dir}"}
        keep = (kept[0] >= 0) & (kept[0] < len(assignments))
        keep[keep] = np.asarray(assignments)[kept[0][keep]] >= 0
        rows, feats = kept[0][keep], kept[1][keep]
        if len(rows) > max_points:
            pick = np.sort(seeds.rng(seed, seeds.REPORT_SAMPLE).choice(len(rows), max_points, replace=False))
            rows, feats = rows[pick], feats[pick]
        chosen, source = rows, f"a sample of the features clustered ({Path(sample_dir).name})"
        x = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        if len(chosen) < 4:
            return {"skipped": f"{len(chosen)} clustered videos are too few for t-SNE"}
    else:
        if len(valid) < 4:
            return {"skipped": f"{len(valid)} clustered videos are too few for t-SNE"}
        chosen = valid
        if len(valid) > max_points:  # drawn before reading: only these videos' features are loaded
            chosen = np.sort(seeds.rng(seed, seeds.REPORT_SAMPLE).choice(valid, max_points, replace=False))
        x, source = clustering_features(run, cfg, name, len(assignments), chosen)
        if x is None:
            return {"skipped": source}
    _, xy = tsne_2d(x, seed, max_points)
    picture = tsne_picture(xy, [int(assignments[i]) for i in chosen], [labels[i] for i in chosen],
                           Path(out) / f"{name}_tsne.png",
                           f"{name} clustering: t-SNE of {len(chosen)} of {len(valid)} clustered videos ({source})")
    return {"picture": picture.name, "points": int(len(chosen)), "clustered": int(len(valid)), "features": source,
            "seed": seed}
