"""Writing a demo world: per-clip nuisances, one clip per task (in worker processes), the manifest, and
the cached copy :func:`demo_dataset` hands out.

Usage: ``manifest = demo_dataset()`` or ``generate_demo_world("out/world", DemoWorldConfig(num_classes=4))``
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from avssl import seeds
from avssl.data.writer import write_av
from avssl.errors import ConfigError
from avssl.io import atomic_write_text
from avssl.progress import progress as progress_bar

from .audio import render_audio
from .spec import BACKGROUND_TEXTURES, CLASS_NAMES, CLASSES, NOISES, PALETTE, DemoWorldConfig, event_times
from .video import render_video

# Bump when the generator's output changes, so cached copies made by an older version are not reused.
GENERATOR_VERSION = 4
COMPLETE_MARKER = ".complete"

# ---------------------------------------------------------------------------------------------------
# Per-clip nuisances, all drawn independently of the class.


def _sample_nuisances(rng: np.random.Generator, config: DemoWorldConfig) -> dict:
    """Every class-independent factor of one clip; all of them go into the manifest."""
    short = min(config.width, config.height)
    colours = list(PALETTE)
    background = str(rng.choice(colours))
    return {
        "background": background,
        "background_texture": str(rng.choice(BACKGROUND_TEXTURES)),
        "background_angle": float(rng.uniform(0, np.pi)),
        "background_period": float(rng.uniform(0.12, 0.3) * short),
        "background_contrast": float(rng.uniform(0.1, 0.3)),
        # Any colour but the background's, so the object never vanishes into it.
        "object_colour": str(rng.choice([c for c in colours if c != background])),
        "object_scale": float(rng.uniform(0.85, 1.15)),
        "object_x": float(rng.uniform(-0.1, 0.1) * short),
        "object_y": float(rng.uniform(-0.1, 0.1) * short),
        "camera_vx": float(rng.uniform(-0.25, 0.25) * short),  # px/s
        "camera_vy": float(rng.uniform(-0.25, 0.25) * short),
        # Timing is shared by the two modalities (that is the synchrony) but not tied to the class.
        "tempo": float(rng.uniform(0.9, 1.1)),
        "event_phase": float(rng.uniform(0, 1)),
        # Audio nuisances are milder than the video's (version 4): the soundtrack carries the class, so
        # clustering audio finds it while clustering video finds the background, the situation of XDC.
        "pitch_offset": float(rng.uniform(-2, 2)),  # semitones
        "loudness_db": float(rng.uniform(-30, -12)),  # RMS, dBFS
        "noise": str(rng.choice(NOISES)),
        "snr_db": float(rng.uniform(10, 25)),
        "reverb_s": float(rng.uniform(0.05, 0.3)),
    }


def _make_clip(task: tuple) -> dict:
    """Render and write one clip; returns its manifest row. Seeded by (seed, class, index) alone, so the
    result does not depend on which worker runs it or in what order."""
    config, label, index, split, path = task
    rng = seeds.rng(config.seed, seeds.DEMO_CLIP, label, index)
    spec = CLASSES[label]
    nuis = _sample_nuisances(rng, config)
    events = event_times(spec, nuis["tempo"], nuis["event_phase"], config.duration, rng)
    video = render_video(spec, events, nuis, config)
    audio = render_audio(spec, events, nuis, config, rng)
    write_av(path, video, config.fps, audio, config.sample_rate)
    row = {"path": f"clips/{path.name}", "label": spec.name, "split": split, "class_index": label}
    row.update({key: round(value, 4) if isinstance(value, float) else value for key, value in nuis.items()})
    return row


# ---------------------------------------------------------------------------------------------------
# Public API.


def _validate(config: DemoWorldConfig) -> None:
    if not 1 <= config.num_classes <= len(CLASSES):
        raise ConfigError(f"num_classes must be in 1..{len(CLASSES)}, got {config.num_classes}")
    if config.clips_per_class < 1:
        raise ConfigError(f"clips_per_class must be >= 1, got {config.clips_per_class}")
    if not 0 <= config.test_fraction < 1:
        raise ConfigError(f"test_fraction must be in [0, 1), got {config.test_fraction}")
    if config.width % 2 or config.height % 2 or min(config.width, config.height) < 16:
        raise ConfigError(f"frame size must be even and at least 16 px, got {config.width}x{config.height}")
    if config.duration <= 0 or config.fps <= 0 or config.sample_rate < 8000:
        raise ConfigError("duration and fps must be positive and sample_rate at least 8000")


def _pool_context():
    """fork on Linux: unlike spawn it does not re-run the caller's main script, which breaks scripts that
    lack an ``if __name__ == "__main__"`` guard; the workers only use numpy and PyAV, which are fork-safe.
    Elsewhere (macOS, Windows) fork is unsafe or missing, so spawn."""
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _test_indices(config: DemoWorldConfig, label: int) -> set[int]:
    """Which clips of a class are held out: a seeded, per-class (hence stratified) random subset."""
    n_test = int(round(config.clips_per_class * config.test_fraction))
    order = seeds.rng(config.seed, seeds.DEMO_HELD_OUT, label).permutation(config.clips_per_class)
    return set(order[:n_test].tolist())


def generate_demo_world(out_dir, config: DemoWorldConfig = DemoWorldConfig(), workers: int | None = None,
                        progress: bool = True) -> Path:
    """Write ``out_dir/clips/<class>_<i>.mp4`` and ``out_dir/manifest.csv``; returns the manifest path.

    The manifest has ``path`` (relative to it), ``label`` (the class name), ``split`` and ``class_index``, then one column per
    nuisance value. Output is a function of ``config`` alone. Clips are rendered by ``workers`` processes
    (default 2; 0 or 1 renders in this process). The ``.complete`` marker is written last; whatever an
    earlier, interrupted run left in ``out_dir`` is removed first.
    """
    _validate(config)
    out_dir = Path(out_dir)
    clips_dir = out_dir / "clips"
    manifest = out_dir / "manifest.csv"
    (out_dir / COMPLETE_MARKER).unlink(missing_ok=True)
    shutil.rmtree(clips_dir, ignore_errors=True)
    clips_dir.mkdir(parents=True)

    tasks = []
    for label in range(config.num_classes):
        held_out = _test_indices(config, label)
        for index in range(config.clips_per_class):
            split = "test" if index in held_out else "train"
            tasks.append((config, label, index, split, clips_dir / f"{CLASS_NAMES[label]}_{index:03d}.mp4"))

    workers = 2 if workers is None else workers
    rows = []
    if workers <= 1:
        with progress_bar(total=len(tasks), desc="demo world", unit="clip", enabled=progress) as bar:
            for task in tasks:
                rows.append(_make_clip(task))
                bar.update()
    else:
        # The pool starts before the bar's monitor thread: the forked workers copy a single-threaded process.
        with _pool_context().Pool(workers) as pool, progress_bar(
            total=len(tasks), desc="demo world", unit="clip", enabled=progress
        ) as bar:
            for row in pool.imap_unordered(_make_clip, tasks):
                rows.append(row)
                bar.update()

    rows.sort(key=lambda row: row["path"])
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(manifest, table.getvalue())
    (out_dir / COMPLETE_MARKER).write_text(json.dumps(asdict(config), sort_keys=True) + "\n")
    return manifest


def config_hash(config: DemoWorldConfig) -> str:
    """Short hash naming a cached copy: changes with the config and with the generator version."""
    key = json.dumps({"config": asdict(config), "version": GENERATOR_VERSION}, sort_keys=True)
    return hashlib.sha1(key.encode()).hexdigest()[:10]


def demo_dataset(cache_dir=None, config: DemoWorldConfig = DemoWorldConfig(), progress: bool = True) -> Path:
    """Manifest path of a cached demo world, generated on first use.

    The cache lives in ``cache_dir``, else ``$AVSSL_CACHE_DIR``, else the user cache dir of "avssl", under
    ``demo-world-<config hash>/``. It is (re)generated when its ``.complete`` marker is missing. Generation
    happens in place, so two processes must not create the same copy at the same time.
    """
    if cache_dir is None:
        cache_dir = os.environ.get("AVSSL_CACHE_DIR")
    if cache_dir is None:
        import platformdirs

        cache_dir = platformdirs.user_cache_dir("avssl")
    root = Path(cache_dir) / f"demo-world-{config_hash(config)}"
    if not (root / COMPLETE_MARKER).exists():
        generate_demo_world(root, config, progress=progress)
    return root / "manifest.csv"
