"""What did the clusters of a run learn? Label statistics and pictures of a run's k-means clusterings
(XDC Sec. 5: Table 6, Supp. Tables 14-15 and Figure 2).

For each clustering file of a run (``clusters/<name>_assignments.npy``, one entry per video of
``videos.csv``, -1 = not clustered) and ground-truth labels (a labelled manifest matched by path, or the
labels the run recorded): purity, NMI and ARI; every cluster ranked by purity with its most frequent
labels and their fractions; and a PNG grid with one row per top cluster showing the middle frame of
the videos closest to the centroid (``<name>_distances.npy``). Audio clusterings show the same
videos' frames with a small log-mel image of their middle audio window under each. An HTML page
(``clusters.html``, images as relative files next to it) shows it all.
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

from ..clustering.metrics import cluster_size_stats, label_report
from ..config import PretrainConfig
from ..data.dataset import logmel_config
from ..data.logmel import LogMelSpectrogram
from ..data.media import decode_audio, decode_video, probe
from ..engine.checkpoint import atomic_write_text, load_array
from ..errors import ConfigError, MediaError
from .splits import open_manifest, pct, write_report

log = logging.getLogger("avssl.evaluation")

CELL = 96  # pixels of one frame in the grid
CAPTION = 220  # width of the caption column


# --- reading a run -------------------------------------------------------------------------------

def read_run_videos(run_dir) -> tuple[list[str], list[str | None]]:
    """Paths and labels of ``videos.csv`` (``index,path,label``; path and label are JSON strings, so
    any character survives)."""
    f = Path(run_dir) / "videos.csv"
    if not f.exists():
        raise ConfigError(f"{run_dir} has no videos.csv; is it a pretraining run directory?")
    decoder = json.JSONDecoder()
    paths, labels = [], []
    for line in f.read_text().splitlines()[1:]:
        if not line.strip():
            continue
        rest = line.split(",", 1)[1]
        path, end = decoder.raw_decode(rest)
        label, _ = decoder.raw_decode(rest[end + 1:]) if rest[end + 1:].strip() else ("", 0)
        paths.append(path)
        labels.append(label or None)
    return paths, labels


def clustering_names(run_dir) -> list[str]:
    found = sorted(p.name[: -len("_assignments.npy")] for p in (Path(run_dir) / "clusters").glob("*_assignments.npy"))
    if not found:
        raise ConfigError(f"{run_dir} has no clusters/*_assignments.npy; it holds no clustering")
    return found


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


def render_grid(rows: list[tuple[str, list[str]]], out_png, title: str, audio_cfg=None) -> Path:
    """One row per (caption, video paths): the caption, then each video's middle frame (and its
    log-mel under it when ``audio_cfg`` is given)."""
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
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    img.save(out_png)
    return out_png


# --- the report ----------------------------------------------------------------------------------

def cluster_report(run, data=None, out=None, *, clustering: str | None = None, top: int = 10, grid_rows: int = 6,
                   grid_cols: int = 6, top_labels: int = 5) -> dict:
    """Report every clustering of run directory ``run`` (or only ``clustering``) against the labels of
    manifest ``data`` (default: the labels recorded in the run's videos.csv). Writes ``clusters.json``,
    ``clusters.md``, ``clusters.html`` and ``<name>_grid.png`` into ``out`` (default: ``run/report``)."""
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
    cfg = PretrainConfig.load(run / "config.json") if (run / "config.json").exists() else None
    result = {"run": str(run), "labels": str(data) if data is not None else "videos.csv",
              "matched_videos": sum(lab is not None for lab in labels), "videos": len(paths), "clusterings": {}}
    d = run / "clusters"
    for name in names:
        a = load_array(d / f"{name}_assignments.npy", "cluster assignment array")
        if len(a) != len(paths):
            raise ConfigError(f"{d}/{name}_assignments.npy has {len(a)} entries but videos.csv lists {len(paths)}")
        centroids = d / f"{name}_centroids.npy"
        k = len(load_array(centroids, "centroid array")) if centroids.exists() else int(a.max()) + 1
        stats = clustering_stats(a, labels, k, top_labels)
        dist_file = d / f"{name}_distances.npy"
        dist = load_array(dist_file, "distance array") if dist_file.exists() else np.zeros(len(a))
        rows = []
        for c in stats["clusters"][:grid_rows]:
            concept = c["labels"][0]
            caption = (f"#{c['rank']} cluster {c['cluster']} (n={c['size']})\npurity {pct(c['purity'])}%\n"
                       f"{_short(concept[0])} ({concept[1]:.2f})")
            rows.append((caption, [paths[i] for i in closest(a, dist, c["cluster"], grid_cols)]))
        audio = "audio" in _modalities(cfg, name)
        audio_cfg = (cfg.audio if cfg is not None else PretrainConfig().audio) if audio else None
        title = (f"{name} clustering: top {len(rows)} clusters by purity; the videos nearest each centroid"
                 + ("; log-mel under each frame" if audio else ""))
        grid = render_grid(rows, out / f"{name}_grid.png", title, audio_cfg)
        stats["grid"] = grid.name
        result["clusterings"][name] = stats
    result["page"] = str(out / "clusters.html")
    atomic_write_text(out / "clusters.html", _html(result, top))
    return write_report(out, "clusters", result, _markdown(result, top))


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
    for name, s in result["clusterings"].items():
        z = s["sizes"]
        lines += ["", f"## {name}", "",
                  f"purity {pct(s['purity'])}%, NMI {s['nmi']:.3f}, ARI {s['ari']:.3f} on {s['scored']} videos; "
                  f"k={z['k']}, sizes {z['min']}-{z['max']}, {z['empty']} empty; grid: {s['grid']}"]
        for heading, rows in _ranked(s, top):
            lines += ["", f"### {heading}", "", "| # | cluster | size | concepts (fraction) |", "|---|---|---|---|"]
            lines += [f"| {c['rank']} | {c['cluster']} | {c['size']} | {_concepts(c)} |" for c in rows]
    return "\n".join(lines)


def _html(result: dict, top: int) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>avssl clusters</title><style>"
             "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}</style></head><body>",
             f"<h1>Clusters of {e(result['run'])}</h1>",
             f"<p>Labels: {e(result['labels'])} ({result['matched_videos']} of {result['videos']} videos).</p>"]
    for name, s in result["clusterings"].items():
        z = s["sizes"]
        parts += [f"<h2>{e(name)}</h2>",
                  f"<p>purity {pct(s['purity'])}%, NMI {s['nmi']:.3f}, ARI {s['ari']:.3f} on {s['scored']} videos; "
                  f"k={z['k']}, sizes {z['min']}&ndash;{z['max']}, {z['empty']} empty</p>",
                  f"<img src='{e(s['grid'])}' alt='{e(name)} clusters'>"]
        for heading, rows in _ranked(s, top):
            parts.append(f"<h3>{e(heading)}</h3><table><tr><th>#</th><th>cluster</th><th>size</th>"
                         f"<th>concepts (fraction)</th></tr>")
            parts += [f"<tr><td>{c['rank']}</td><td>{c['cluster']}</td><td>{c['size']}</td>"
                      f"<td>{e(_concepts(c))}</td></tr>" for c in rows]
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
