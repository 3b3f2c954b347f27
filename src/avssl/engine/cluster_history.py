"""Every iteration's clustering of a run, kept for the cluster report (``avssl eval clusters --iteration all``).

The files ``clusters/<name>_{assignments,distances,centroids}.npy`` hold the last iteration's clustering.
After each clustering the engine also keeps a copy in ``clusters/iter_XX/``, with a seeded sample of at
most ``SAMPLE`` rows of the features it clustered (``<name>_sample_rows.npy``, the videos' positions in
``videos.csv``, and ``<name>_sample_features.npy``) for that iteration's t-SNE picture.

Usage: ``keep_iteration(run / "clusters", 3, "video", x, rows, seed=0)``; ``iterations(run)`` -> ``{3: Path}``.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from .. import seeds

SAMPLE = 2000  # rows of features kept per clustering and iteration (t-SNE shows no more)
_PARTS = ("assignments", "distances", "centroids")


def iteration_dir(clusters_dir, iteration: int) -> Path:
    return Path(clusters_dir) / f"iter_{iteration:02d}"


def keep_iteration(clusters_dir, iteration: int, name: str, x: np.ndarray, rows: np.ndarray, seed: int = 0) -> Path:
    """Copy the clustering ``name`` just saved in ``clusters_dir`` to its iteration's folder, with a sample of
    the features ``x`` (one row per video) of the clustered rows ``rows``."""
    clusters_dir = Path(clusters_dir)
    d = iteration_dir(clusters_dir, iteration)
    d.mkdir(parents=True, exist_ok=True)
    for part in _PARTS:
        shutil.copyfile(clusters_dir / f"{name}_{part}.npy", d / f"{name}_{part}.npy")
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) > SAMPLE:
        rows = np.sort(seeds.rng(seed, seeds.REPORT_SAMPLE, iteration).choice(rows, SAMPLE, replace=False))
    np.save(d / f"{name}_sample_rows.npy", rows)
    np.save(d / f"{name}_sample_features.npy", np.asarray(x[rows], dtype=np.float32))
    return d


def iterations(run_dir) -> dict[int, Path]:
    """``{iteration: folder}`` of the iterations whose clusterings the run kept, in order."""
    found = {}
    for d in (Path(run_dir) / "clusters").glob("iter_*"):
        m = re.fullmatch(r"iter_(\d+)", d.name)
        if m and d.is_dir() and any(d.glob("*_assignments.npy")):
            found[int(m.group(1))] = d
    return dict(sorted(found.items()))


def sample_features(folder, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(rows, features)`` kept with the clustering ``name`` in an iteration's ``folder``, or None."""
    folder = Path(folder)
    try:
        rows = np.load(folder / f"{name}_sample_rows.npy", allow_pickle=False)
        x = np.load(folder / f"{name}_sample_features.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if rows.ndim != 1 or x.ndim != 2 or len(rows) != len(x):
        return None
    return rows.astype(np.int64), x.astype(np.float32)
