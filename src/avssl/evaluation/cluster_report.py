"""What did the clusters of a run learn? Label statistics and pictures of a run's k-means clusterings
(XDC Sec. 5: Table 6, Supp. Tables 14-15 and Figure 2).

For each clustering file of a run (``clusters/<name>_assignments.npy``, one entry per video of
``videos.csv``, -1 = not clustered) and ground-truth labels (a labelled manifest matched by path, or the
labels the run recorded): purity, NMI and ARI; every cluster ranked by purity with its most frequent
labels and their fractions; and a PNG grid with one row per top cluster showing the middle frame of
the videos closest to the centroid (``<name>_distances.npy``). Audio clusterings show the same
videos' frames with a small log-mel image of their middle audio window under each. A t-SNE picture
(``<name>_tsne.png``) places the videos by their features in 2-D (those the run clustered last, from
``features/``; at most ``tsne_points`` of them, a seeded subsample), coloured by cluster and by label.
An HTML page (``clusters.html``, images as relative files next to it) shows it all, its captions as
text, each clip's frame linking to the clip's file and playing a short looping preview (a GIF) when
pointed at. ``iteration="all"`` reports every iteration's clustering the run kept
(``engine.cluster_history``), each iteration's pictures in ``iter_XX/``, on one page that moves between them.

This module reads the run and computes the statistics; the pictures are drawn by :mod:`.cluster_pictures`
and :mod:`.cluster_tsne`, the pages written by :mod:`.cluster_page`.

Usage: ``avssl eval clusters --run runs/xdc --out runs/xdc/report --iteration all``
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np

from ..clustering.metrics import cluster_size_stats, label_report
from ..config import PretrainConfig
from ..errors import ConfigError
from ..io import atomic_write_text, load_array
from ..runs import clustering_names, read_run_videos
from .cluster_page import report_html, report_markdown
from .cluster_pictures import clip_preview, render_grid, short_text
from .cluster_tsne import TSNE_POINTS, tsne_report
from .splits import open_manifest, pct, write_report

log = logging.getLogger("avssl.evaluation")


# --- reading a run -------------------------------------------------------------------------------

def _modalities(cfg: PretrainConfig | None, name: str) -> set[str]:
    """Which input modalities a clustering's features came from (its method's slots)."""
    from ..methods import METHODS

    method = METHODS.get(cfg.method) if cfg is not None else None
    slots = getattr(method, "clusterings", {}).get(name) if method is not None else None
    if not slots:
        return {"audio"} if "audio" in name else {"video"}
    return {method.slots[s] for s in slots}


# --- statistics ----------------------------------------------------------------------------------

def cluster_table(assignments: np.ndarray, labels, top_labels: int = 5) -> list[dict]:
    """Every non-empty cluster of the labelled points, ranked by purity (ties: larger first):
    ``{"rank", "cluster", "size", "purity", "labels": [[label, fraction], ...]}``."""
    assignments = np.asarray(assignments)
    labels = np.asarray(labels, dtype=object)
    rows = []
    for c in np.unique(assignments):
        counts = Counter(labels[assignments == c].tolist()).most_common()
        size = sum(n for _, n in counts)
        rows.append({"cluster": int(c), "size": size, "purity": counts[0][1] / size,
                     "labels": [[lab, n / size] for lab, n in counts[:top_labels]]})
    rows.sort(key=lambda r: (-r["purity"], -r["size"], r["cluster"]))
    return [{"rank": i + 1, **r} for i, r in enumerate(rows)]


def clustering_stats(assignments: np.ndarray, labels, k: int, top_labels: int = 5) -> dict:
    """Purity/NMI/ARI, cluster sizes and the ranked cluster table of the points that have both an
    assignment (>= 0) and a label."""
    assignments = np.asarray(assignments)
    ok = (assignments >= 0) & np.array([lab is not None for lab in labels], dtype=bool)
    a, lab = assignments[ok], [label for label, keep in zip(labels, ok) if keep]
    if not len(a):
        raise ConfigError("no clustered video has a label; pass a labelled manifest that lists the run's videos")
    return {"videos": int(len(assignments)), "scored": int(ok.sum()), **label_report(a, np.asarray(lab, dtype=object)),
            "sizes": cluster_size_stats(assignments[assignments >= 0], k),
            "clusters": cluster_table(a, lab, top_labels)}


def closest(assignments: np.ndarray, distances: np.ndarray, cluster: int, n: int) -> np.ndarray:
    """Positions of the ``n`` members of ``cluster`` nearest its centroid."""
    members = np.flatnonzero(np.asarray(assignments) == cluster)
    d = np.nan_to_num(np.asarray(distances)[members], nan=np.inf)
    return members[np.argsort(d, kind="stable")[:n]]


# --- the report ----------------------------------------------------------------------------------

def cluster_report(run, data=None, out=None, *, clustering: str | None = None, iteration="last", top: int = 10,
                   grid_rows: int = 6, grid_cols: int = 6, top_labels: int = 5, tsne_points: int = TSNE_POINTS,
                   seed: int = 0, previews: bool = True) -> dict:
    """Report every clustering of run directory ``run`` (or only ``clustering``) against the labels of
    manifest ``data`` (default: the labels recorded in the run's videos.csv). Writes ``clusters.json``,
    ``clusters.md``, ``clusters.html``, ``<name>_grid.png``, ``<name>_clips/`` (the grid's pictures one
    by one, and with ``previews`` a short looping GIF of each clip) and ``<name>_tsne.png`` (t-SNE of at
    most ``tsne_points`` videos, chosen with ``seed``; 0: none) into ``out`` (default: ``run/report``).
    ``iteration``: ``"last"`` (the run's last clustering), an iteration number, or ``"all"`` (every
    iteration the run kept, ``engine.cluster_history``: one ``iter_XX/`` folder of pictures each, and a
    page that moves between them).

    Usage: ``cluster_report("runs/xdc", "data/manifest.csv", "runs/xdc/report", iteration="all")``"""
    run = Path(run)
    out = Path(out) if out is not None else run / "report"
    paths, labels = read_run_videos(run)
    if data is not None:
        manifest = open_manifest(data)
        by_path = {os.path.normpath(it.path): it.label for it in manifest}
        labels = [by_path.get(os.path.normpath(p)) for p in paths]
    if not any(lab is not None for lab in labels):
        raise ConfigError(f"no labels for the videos of {run}: pass a labelled manifest (--data) that lists them")
    names = clustering_names(run)
    if clustering is not None:
        if clustering not in names:
            raise ConfigError(f"{run} has no clustering {clustering!r}; it has {names}")
        names = [clustering]
    shown = report_iterations(run, iteration)
    cfg = PretrainConfig.load(run / "config.json") if (run / "config.json").exists() else None
    result = {"run": str(run), "labels": str(data) if data is not None else "videos.csv",
              "matched_videos": sum(lab is not None for lab in labels), "videos": len(paths)}
    opts = dict(top_labels=top_labels, grid_rows=grid_rows, grid_cols=grid_cols, tsne_points=tsne_points, seed=seed,
                previews=previews)
    pages = []
    for number, folder, prefix in shown:
        done = {}
        for name in names:
            if not (folder / f"{name}_assignments.npy").exists():
                continue  # a clustering this iteration did not make
            done[name] = _one_clustering(run, cfg, name, folder, prefix, paths, labels, out, **opts)
        pages.append({"iteration": number, "clusterings": done})
    if len(pages) > 1:
        _nmi_with_previous(pages, run)
        result["iterations"] = pages
    result["iteration"] = pages[-1]["iteration"]
    result["clusterings"] = pages[-1]["clusterings"]
    result["page"] = str(out / "clusters.html")
    atomic_write_text(out / "clusters.html", report_html(result, top))
    return write_report(out, "clusters", result, report_markdown(result, top))


def report_iterations(run, iteration) -> list[tuple[int | None, Path, str]]:
    """``[(iteration number or None, folder of its clustering files, prefix of its pictures in the report)]``
    for ``iteration``: ``"last"``, ``"all"`` or a number (a clear error for one the run did not keep)."""
    from ..engine.cluster_history import iterations

    run = Path(run)
    kept = iterations(run)
    last = max(kept) if kept else None
    text = str(iteration).strip().lower()
    if text == "last":
        return [(last, run / "clusters", "")]
    if text == "all":
        if not kept:  # a run from before per-iteration files: its last clustering is all there is
            log.warning("%s kept only its last clustering (runs before avssl kept every iteration's)", run)
            return [(None, run / "clusters", "")]
        return [(n, d, f"iter_{n:02d}/") for n, d in kept.items()]
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(f"--iteration must be last, all or an iteration number, got {iteration!r}") from None
    if number in kept:
        return [(number, run / "clusters", "")] if number == last else [(number, kept[number], "")]
    have = f"iterations {', '.join(map(str, kept))}" if kept else "only its last clustering (--iteration last)"
    raise ConfigError(f"{run} kept no clustering of iteration {number}; it has {have}")


def _one_clustering(run, cfg, name, folder, prefix, paths, labels, out, *, top_labels, grid_rows, grid_cols,
                    tsne_points, seed, previews) -> dict:
    """Statistics, grid, previews and t-SNE of the clustering ``name`` in ``folder`` (``run/clusters`` or one
    of its ``iter_XX``); pictures go to ``out/prefix``, their paths in the result are relative to ``out``."""
    d = Path(folder)
    a = load_array(d / f"{name}_assignments.npy", "cluster assignment array")
    if len(a) != len(paths):
        raise ConfigError(f"{d}/{name}_assignments.npy has {len(a)} entries but videos.csv lists {len(paths)}")
    centroids = d / f"{name}_centroids.npy"
    k = len(load_array(centroids, "centroid array")) if centroids.exists() else int(a.max()) + 1
    stats = clustering_stats(a, labels, k, top_labels)
    dist_file = d / f"{name}_distances.npy"
    dist = load_array(dist_file, "distance array") if dist_file.exists() else np.zeros(len(a))
    audio = "audio" in _modalities(cfg, name)
    audio_cfg = (cfg.audio if cfg is not None else PretrainConfig().audio) if audio else None
    target = Path(out) / prefix
    rows, shown = [], []
    for r, c in enumerate(stats["clusters"][:grid_rows]):
        concept = c["labels"][0]
        caption = (f"#{c['rank']} cluster {c['cluster']} (n={c['size']})\npurity {pct(c['purity'])}%\n"
                   f"{short_text(concept[0])} ({concept[1]:.2f})")
        nearest = closest(a, dist, c["cluster"], grid_cols)
        rows.append((caption, [paths[i] for i in nearest]))
        videos = []
        for j, i in enumerate(nearest):
            video = {"path": paths[i], "label": labels[i], "picture": f"{prefix}{name}_clips/{r}_{j}.png"}
            if previews and clip_preview(paths[i], target / f"{name}_clips" / f"{r}_{j}.gif", audio_cfg):
                video["preview"] = f"{prefix}{name}_clips/{r}_{j}.gif"
            videos.append(video)
        shown.append({"rank": c["rank"], "cluster": c["cluster"], "videos": videos})
    title = (f"{name} clustering: top {len(rows)} clusters by purity; the videos nearest each centroid"
             + ("; log-mel under each frame" if audio else ""))
    grid = render_grid(rows, target / f"{name}_grid.png", title, audio_cfg, cells_dir=target / f"{name}_clips")
    stats["grid"], stats["grid_rows"] = prefix + grid.name, shown
    sample = None if d == Path(run) / "clusters" else d
    stats["tsne"] = tsne_report(run, cfg, name, a, labels, target, tsne_points, seed, sample_dir=sample)
    if "picture" in stats["tsne"]:
        stats["tsne"]["picture"] = prefix + stats["tsne"]["picture"]
    return stats


def _nmi_with_previous(pages: list[dict], run) -> None:
    """Each clustering's NMI with its clustering in the iteration before (how much it still changes)."""
    from ..clustering.metrics import nmi

    d = Path(run) / "clusters"
    for before, page in zip(pages, pages[1:]):
        for name, s in page["clusterings"].items():
            if name not in before["clusterings"]:
                continue
            a = load_array(d / f"iter_{page['iteration']:02d}" / f"{name}_assignments.npy", "assignments")
            b = load_array(d / f"iter_{before['iteration']:02d}" / f"{name}_assignments.npy", "assignments")
            both = (a >= 0) & (b >= 0)
            if both.any():
                s["nmi_previous"] = float(nmi(a[both], b[both]))
