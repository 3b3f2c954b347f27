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

Usage: ``avssl eval clusters --run runs/xdc --out runs/xdc/report --iteration all``
"""
from __future__ import annotations

import html
import json
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .. import seeds
from ..clustering.metrics import cluster_size_stats, label_report
from ..config import PretrainConfig
from ..data.dataset import logmel_config
from ..data.logmel import LogMelSpectrogram
from ..data.media import decode_audio, decode_video, probe
from ..io import atomic_write_text, load_array
from ..errors import ConfigError, MediaError
from ..runs import clustering_names, read_run_videos
from .splits import open_manifest, pct, write_report

log = logging.getLogger("avssl.evaluation")

CELL = 96  # pixels of one frame in the grid
CAPTION = 220  # width of the caption column
TSNE_POINTS = 2000  # t-SNE on more videos takes minutes and shows no more


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


# --- pictures ------------------------------------------------------------------------------------

def middle_frame(path: str, size: int = CELL) -> Image.Image:
    """The frame in the middle of a video, as a ``size`` x ``size`` image (grey with a note if none)."""
    try:
        info = probe(path)
        if not info.has_video:
            return _placeholder(size, size, "no video")
        mid = (info.video_duration or info.duration) / 2
        frame = decode_video(path, mid, 1, info.fps or 30.0, short_side=size)[0]
        return Image.fromarray(frame).resize((size, size))
    except MediaError as e:
        log.warning("cluster grid: %s", e)
        return _placeholder(size, size, "unreadable")


def logmel_image(path: str, audio_cfg, width: int = CELL, height: int = CELL // 2) -> Image.Image:
    """Log-mel of the audio window in the middle of a file, low frequencies at the bottom."""
    try:
        info = probe(path)
        dur = info.audio_duration or info.duration
        start = max(0.0, (dur - audio_cfg.duration) / 2)
        wave = decode_audio(path, start, audio_cfg.duration, audio_cfg.sample_rate)
    except MediaError as e:
        log.warning("cluster grid: %s", e)
        return _placeholder(width, height, "no audio")
    import matplotlib

    with torch.no_grad():
        spec = LogMelSpectrogram(logmel_config(audio_cfg))(torch.from_numpy(wave))[0, 0].numpy()
    spec = (spec - spec.min()) / max(float(spec.max() - spec.min()), 1e-6)
    rgb = (matplotlib.colormaps["magma"](spec[::-1])[..., :3] * 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((width, height))


def _placeholder(width: int, height: int, text: str) -> Image.Image:
    img = Image.new("RGB", (width, height), (128, 128, 128))
    ImageDraw.Draw(img).text((4, height // 2 - 6), text, fill=(255, 255, 255))
    return img


def render_grid(rows: list[tuple[str, list[str]]], out_png, title: str, audio_cfg=None, cells_dir=None) -> Path:
    """One row per (caption, video paths): the caption, then each video's middle frame (and its
    log-mel under it when ``audio_cfg`` is given). With ``cells_dir``, each video's picture is also
    written alone, as ``cells_dir/<row>_<column>.png`` (the HTML page shows those, captioned as text)."""
    cols = max((len(p) for _, p in rows), default=1) or 1
    cell_h = CELL + (CELL // 2 if audio_cfg is not None else 0)
    gap, top = 4, 28
    img = Image.new("RGB", (CAPTION + cols * (CELL + gap) + gap, top + len(rows) * (cell_h + gap) + gap), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    draw.text((gap, 8), title, fill="black", font=font)
    for r, (caption, paths) in enumerate(rows):
        y = top + r * (cell_h + gap)
        draw.multiline_text((gap, y + 4), caption, fill="black", font=font, spacing=3)
        for c, path in enumerate(paths):
            x = CAPTION + c * (CELL + gap)
            img.paste(middle_frame(path), (x, y))
            if audio_cfg is not None:
                img.paste(logmel_image(path, audio_cfg), (x, y + CELL))
            if cells_dir is not None:
                Path(cells_dir).mkdir(parents=True, exist_ok=True)
                img.crop((x, y, x + CELL, y + cell_h)).save(Path(cells_dir) / f"{r}_{c}.png")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    img.save(out_png)
    return out_png


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
    atomic_write_text(out / "clusters.html", _html(result, top))
    return write_report(out, "clusters", result, _markdown(result, top))


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
                   f"{_short(concept[0])} ({concept[1]:.2f})")
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


def clip_preview(path: str, out_gif, audio_cfg=None, frames: int = 8, seconds: float = 2.0) -> bool:
    """A short looping GIF of the ``seconds`` in the middle of a clip (``frames`` frames, ``CELL`` pixels;
    with ``audio_cfg`` the log-mel strip under each frame, as in the grid). False when the clip has no
    readable video."""
    try:
        info = probe(path)
        if not info.has_video:
            return False
        duration = info.video_duration or info.duration
        span = min(seconds, duration)
        video = decode_video(path, max(0.0, (duration - span) / 2), frames, frames / max(span, 1e-3),
                             short_side=CELL)
    except MediaError as e:
        log.warning("clip preview: %s", e)
        return False
    strip = logmel_image(path, audio_cfg) if audio_cfg is not None else None
    pictures = []
    for frame in video:
        img = Image.fromarray(frame).resize((CELL, CELL))
        if strip is not None:
            both = Image.new("RGB", (CELL, CELL + strip.height))
            both.paste(img, (0, 0))
            both.paste(strip, (0, CELL))
            img = both
        pictures.append(img)
    out_gif = Path(out_gif)
    out_gif.parent.mkdir(parents=True, exist_ok=True)
    pictures[0].save(out_gif, save_all=True, append_images=pictures[1:], duration=int(1000 * span / frames),
                     loop=0)
    return True


# --- the 2-D picture -----------------------------------------------------------------------------

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
                           label=_short(v, 20) if v is not None else f"no {what}")
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


def _short(text, n: int = 28) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _concepts(c: dict) -> str:
    return ", ".join(f"{lab} ({frac:.2f})" for lab, frac in c["labels"])


def _ranked(stats: dict, top: int) -> list[tuple[str, list[dict]]]:
    clusters = stats["clusters"]
    if len(clusters) <= 2 * top:
        return [("all clusters by purity", clusters)]
    return [(f"top {top} by purity", clusters[:top]), (f"bottom {top} by purity", clusters[-top:])]


def _markdown(result: dict, top: int) -> str:
    lines = [f"# Clusters of {result['run']}", "",
             f"- labels: {result['labels']} ({result['matched_videos']} of {result['videos']} videos labelled)"]
    pages = result.get("iterations") or [{"iteration": result.get("iteration"), "clusterings": result["clusterings"]}]
    if len(pages) > 1:
        lines += ["", "## Every iteration", "", "| iteration | clustering | purity % | NMI | ARI | NMI with previous |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {p['iteration']} | {name} | {pct(s['purity'])} | {s['nmi']:.3f} | {s['ari']:.3f} | "
                  f"{_num(s.get('nmi_previous'))} |" for p in pages for name, s in p["clusterings"].items()]
    for page in pages:
        when = f" (iteration {page['iteration']})" if page["iteration"] is not None else ""
        for name, s in page["clusterings"].items():
            z = s["sizes"]
            lines += ["", f"## {name}{when}", "",
                      f"purity {pct(s['purity'])}%, NMI {s['nmi']:.3f}, ARI {s['ari']:.3f} on {s['scored']} videos; "
                      f"k={z['k']}, sizes {z['min']}-{z['max']}, {z['empty']} empty; grid: {s['grid']}"
                      + (f"; t-SNE: {s['tsne']['picture']}" if "picture" in s.get("tsne", {}) else "")]
            for heading, rows in _ranked(s, top):
                lines += ["", f"### {heading}", "", "| # | cluster | size | concepts (fraction) |", "|---|---|---|---|"]
                lines += [f"| {c['rank']} | {c['cluster']} | {c['size']} | {_concepts(c)} |" for c in rows]
    return "\n".join(lines)


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _clip_link(path: str) -> str:
    """A link to a clip's file (a file: URI, so the page works wherever it is opened from)."""
    try:
        return Path(os.path.abspath(path)).as_uri()
    except ValueError:
        return path


def _grid_html(name: str, s: dict) -> list[str]:
    """The clips nearest each top cluster's centroid: the caption as text, each clip's picture linking
    to its file, under it the file's name and label."""
    e = html.escape
    by_rank = {c["rank"]: c for c in s["clusters"]}
    parts = [f"<h3>The clips nearest the centroids of the top {len(s.get('grid_rows', []))} clusters</h3>",
             "<p class='note'>Point at a picture to play a short looping preview; click it to open the clip.</p>"]
    for row in s.get("grid_rows", []):
        c = by_rank[row["rank"]]
        parts.append(f"<div class='cluster'><p class='caption'><strong>#{c['rank']}: cluster {c['cluster']}</strong> "
                     f"({c['size']} videos), purity {pct(c['purity'])}%: {e(_concepts(c))}</p><div class='clips'>")
        for v in row["videos"]:
            file_name = os.path.basename(v["path"])
            label = v["label"] if v["label"] is not None else "no label"
            moving = (f"<img class='preview' src='{e(v['preview'])}' alt='{e(file_name)}' loading='lazy'>"
                      if v.get("preview") else "")
            parts.append(f"<figure><a href='{e(_clip_link(v['path']))}' title='{e(v['path'])}'>"
                         f"<img class='still' src='{e(v['picture'])}' alt='{e(file_name)}'>{moving}</a>"
                         f"<figcaption>{e(file_name)}<br>{e(str(label))}</figcaption></figure>")
        parts.append("</div></div>")
    parts.append(f"<details><summary>The same clips as one picture ({e(s['grid'])})</summary>"
                 f"<img src='{e(s['grid'])}' alt='{e(name)} clusters'></details>")
    return parts


def _tsne_html(name: str, s: dict) -> list[str]:
    e = html.escape
    t = s.get("tsne") or {}
    if "picture" not in t:
        return [f"<p class='note'>No t-SNE picture: {e(str(t.get('skipped', 'not made')))}.</p>"]
    return [f"<h3>Features in 2-D (t-SNE)</h3><p>{t['points']} of the {t['clustered']} clustered videos "
            f"({e(t['features'])}, seed {t['seed']}): coloured by cluster on the left and by label on the right; "
            f"videos close together have similar features.</p>",
            f"<img src='{e(t['picture'])}' alt='t-SNE of the {e(name)} features'>"]


def _html(result: dict, top: int) -> str:
    """The report page; with several iterations, a table of all of them and one section each, with links (and,
    where scripts run, only the chosen iteration shown) to move between them."""
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>avssl clusters</title><style>"
             "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
             ".clips{display:flex;flex-wrap:wrap;gap:6px}figure{margin:0;width:100px;font-size:11px}"
             "figcaption{overflow-wrap:anywhere}"
             "figure img{display:block;border:1px solid #ccc}.caption{margin:1em 0 .3em}.note{color:#555}"
             "figure img.preview{display:none}figure:hover img.preview{display:block}"
             "figure:hover img.still:not(:only-child){display:none}"
             "nav.iterations a{margin-right:.6em}nav.iterations a.here{font-weight:bold}"
             "img{max-width:100%}</style></head><body>",
             f"<h1>Clusters of {e(result['run'])}</h1>",
             f"<p>Labels: {e(result['labels'])} ({result['matched_videos']} of {result['videos']} videos).</p>"]
    pages = result.get("iterations")
    if not pages:
        if result.get("iteration") is not None:
            parts.append(f"<p>The clustering of iteration {result['iteration']}.</p>")
        parts += _clusterings_html(result["clusterings"], top, 2)
        parts.append("</body></html>")
        return "\n".join(parts)
    ids = [f"iteration-{p['iteration']}" for p in pages]
    parts += ["<h2>Every iteration</h2><table><tr><th>iteration</th><th>clustering</th><th>purity %</th><th>NMI</th>"
              "<th>ARI</th><th>NMI with the previous iteration</th></tr>"]
    parts += [f"<tr><td><a href='#{i}'>{p['iteration']}</a></td><td>{e(name)}</td><td>{pct(s['purity'])}</td>"
              f"<td>{s['nmi']:.3f}</td><td>{s['ari']:.3f}</td><td>{_num(s.get('nmi_previous'))}</td></tr>"
              for i, p in zip(ids, pages) for name, s in p["clusterings"].items()]
    parts.append("</table>")
    for n, (i, page) in enumerate(zip(ids, pages)):
        links = " ".join(f"<a href='#{j}'{' class=here' if j == i else ''}>{p['iteration']}</a>"
                         for j, p in zip(ids, pages))
        step = (f"<a href='#{ids[n - 1]}'>&larr; previous</a>" if n else "") + \
               (f" <a href='#{ids[n + 1]}'>next &rarr;</a>" if n + 1 < len(ids) else "")
        parts += [f"<section class='iteration' id='{i}'><h2>Iteration {page['iteration']}</h2>",
                  f"<nav class='iterations'>Iteration: {links} &nbsp; {step}</nav>",
                  *_clusterings_html(page["clusterings"], top, 3), "</section>"]
    parts.append("<script>(function(){var ids=%s;function show(){var h=location.hash.slice(1);"
                 "if(ids.indexOf(h)<0)h=ids[ids.length-1];ids.forEach(function(i){"
                 "document.getElementById(i).style.display=i==h?'':'none';});}"
                 "window.addEventListener('hashchange',show);show();})();</script>" % json.dumps(ids))
    parts.append("</body></html>")
    return "\n".join(parts)


def _clusterings_html(clusterings: dict, top: int, level: int) -> list[str]:
    e = html.escape
    parts = []
    for name, s in clusterings.items():
        z = s["sizes"]
        previous = f"; NMI with the previous iteration {s['nmi_previous']:.3f}" if "nmi_previous" in s else ""
        parts += [f"<h{level}>{e(name)}</h{level}>",
                  f"<p>purity {pct(s['purity'])}%, NMI {s['nmi']:.3f}, ARI {s['ari']:.3f} on {s['scored']} videos; "
                  f"k={z['k']}, sizes {z['min']}&ndash;{z['max']}, {z['empty']} empty{previous}</p>",
                  *_grid_html(name, s), *_tsne_html(name, s)]
        for heading, rows in _ranked(s, top):
            parts.append(f"<h3>{e(heading)}</h3><table><tr><th>#</th><th>cluster</th><th>size</th>"
                         f"<th>concepts (fraction)</th></tr>")
            parts += [f"<tr><td>{c['rank']}</td><td>{c['cluster']}</td><td>{c['size']}</td>"
                      f"<td>{e(_concepts(c))}</td></tr>" for c in rows]
            parts.append("</table>")
    return parts
