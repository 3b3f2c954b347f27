"""Probe every file of a manifest once, in parallel, and cache the results next to the manifest.

Opening hundreds of thousands of videos one by one takes hours (the usual Kinetics complaint), and
doing it again at every run is pure waste. :func:`probe_manifest` spreads the work over processes
and keeps a JSON cache keyed by path and validated by (size, mtime_ns), so a later call only probes
files that are new or changed.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Iterator

from avssl.data.manifest import Manifest
from avssl.data.media import MediaInfo, probe
from avssl.errors import ConfigError, DiskFullError, MediaError
from avssl.io import atomic_write_text
from avssl.progress import progress as progress_bar

log = logging.getLogger("avssl.data")

# Bump when probe() starts reporting differently, so that old caches are rebuilt rather than trusted.
_CACHE_VERSION = 2  # 2: unsupported codecs are told apart from missing streams


@dataclass
class ProbeIndex:
    """What probing found: ``infos`` for usable files, ``errors`` (path -> reason) for the others.

    ``probed`` counts the files actually opened by the call that built the index (the others came
    from the cache); ``cache_path`` is where the cache lives, ``None`` when there is none.
    """

    infos: dict[str, MediaInfo]
    errors: dict[str, str]
    probed: int = 0
    cache_path: str | None = None

    def summary(self) -> dict:
        """Counts, total hours, duration statistics in seconds and unreadable reasons -> counts."""
        infos = list(self.infos.values())
        durations = sorted(info.duration for info in infos if info.duration is not None)
        with_video = sum(info.has_video for info in infos)
        with_audio = sum(info.has_audio for info in infos)
        return {
            "files": len(self.infos) + len(self.errors),
            "readable": len(self.infos),
            "unreadable": len(self.errors),
            "with_video": with_video,
            "with_audio": with_audio,
            "without_audio": len(infos) - with_audio,
            "without_video": len(infos) - with_video,
            "total_hours": sum(durations) / 3600.0,
            "duration_min": durations[0] if durations else None,
            "duration_median": statistics.median(durations) if durations else None,
            "duration_max": durations[-1] if durations else None,
            "reasons": dict(Counter(self.errors.values()).most_common()),
        }

    def format_summary(self) -> str:
        """The summary as a few human-readable lines."""
        s = self.summary()
        lines = [
            f"{s['files']} files: {s['readable']} readable, {s['unreadable']} unreadable",
            f"{s['with_video']} with video, {s['with_audio']} with audio "
            f"({s['without_video']} without video, {s['without_audio']} without audio)",
        ]
        if s["duration_min"] is not None:
            lines.append(
                f"{s['total_hours']:.2f} hours in total; duration min {s['duration_min']:.2f} s, "
                f"median {s['duration_median']:.2f} s, max {s['duration_max']:.2f} s"
            )
        lines += [f"unreadable ({n}): {reason}" for reason, n in s["reasons"].items()]
        return "\n".join(lines)


def default_cache_path(manifest: Manifest) -> str | None:
    """``<manifest.csv>.probe.json`` next to a CSV manifest, ``<folder>/.avssl_probe.json`` for a
    manifest built from a folder, ``None`` when the manifest has no source."""
    if manifest.source is None:
        return None
    if os.path.isdir(manifest.source):
        return os.path.join(manifest.source, ".avssl_probe.json")
    return manifest.source + ".probe.json"


def probe_manifest(
    manifest: Manifest, cache_path=None, workers: int | None = None, progress: bool = True
) -> ProbeIndex:
    """Probe the manifest's files, reusing the cache at ``cache_path`` (default: :func:`default_cache_path`).

    Only files that are missing from the cache or whose size or mtime changed are probed, by
    ``workers`` processes (default: min(8, usable CPUs)). The cache is rewritten atomically, and an
    unreadable or foreign cache file is ignored with a warning and rebuilt.
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    workers = workers or min(8, _cpu_count())
    cache_path = default_cache_path(manifest) if cache_path is None else os.path.abspath(os.fspath(cache_path))
    cache = _load_cache(cache_path) if cache_path else {}
    paths = list(dict.fromkeys(item.path for item in manifest))
    results: dict[str, MediaInfo | str] = {}  # path -> info, or the reason it is unusable
    todo, stamps = [], {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as e:
            # Not cached: a missing file may well appear before the next run.
            missing = isinstance(e, FileNotFoundError)
            results[path] = "file not found" if missing else f"cannot access file ({e.strerror})"
            continue
        stamps[path] = [st.st_size, st.st_mtime_ns]
        cached = _from_cache(cache.get(path), path, stamps[path])
        if cached is None:
            todo.append(path)
        else:
            results[path] = cached

    if todo:
        log.info("probing %d new or changed of %d files (cache: %s)", len(todo), len(paths), cache_path)
    try:
        with progress_bar(total=len(todo), desc="probing media", unit="file", enabled=progress and bool(todo)) as bar:
            for path, outcome, deterministic in _probe_all(todo, workers):
                results[path] = outcome
                # Unexpected failures (I/O errors on a network share, say) are retried next time.
                if deterministic:
                    cache[path] = _to_cache(outcome, stamps[path])
                bar.update()
    finally:
        # Also on Ctrl-C or an error, so that an interrupted probe resumes where it stopped.
        if cache_path and todo:
            _save_cache(cache_path, cache)

    return ProbeIndex(
        infos={p: results[p] for p in paths if isinstance(results[p], MediaInfo)},
        errors={p: results[p] for p in paths if isinstance(results[p], str)},
        probed=len(todo),
        cache_path=cache_path,
    )


def _probe_one(path: str) -> tuple[str, MediaInfo | str, bool]:
    """(path, info or reason, whether the outcome depends only on the file's content)."""
    try:
        return path, probe(path), True
    except MediaError as e:
        return path, e.reason, True
    except Exception as e:  # noqa: BLE001 - one odd file must not abort a probe of 600k files
        return path, f"{type(e).__name__}: {e}", False


def _probe_all(paths: list[str], workers: int) -> Iterator[tuple[str, MediaInfo | str, bool]]:
    if workers == 1 or len(paths) < 2:
        # Starting processes costs more than probing a handful of files.
        yield from map(_probe_one, paths)
        return
    workers = min(workers, len(paths))
    pool = ProcessPoolExecutor(workers)
    try:
        # Chunks cut inter-process traffic, but stay small enough to keep every worker busy at the end.
        yield from pool.map(_probe_one, paths, chunksize=max(1, min(64, len(paths) // (workers * 8))))
    finally:
        # Without cancel_futures an interrupt would wait for every queued chunk to finish.
        pool.shutdown(cancel_futures=True)


def _from_cache(entry, path: str, stamp: list[int]) -> MediaInfo | str | None:
    """The cached outcome for ``path``, or ``None`` when there is none or it is stale or malformed."""
    if not isinstance(entry, dict) or entry.get("stamp") != stamp:
        return None
    if isinstance(entry.get("error"), str):
        return entry["error"]
    try:
        return MediaInfo.from_dict({**entry["info"], "path": path})
    except (ConfigError, KeyError, TypeError, ValueError):  # written by an older MediaInfo: probe again
        return None


def _to_cache(outcome: MediaInfo | str, stamp: list[int]) -> dict:
    if isinstance(outcome, str):
        return {"stamp": stamp, "error": outcome}
    info = outcome.to_dict()
    info.pop("path", None)  # the key already holds it; dropping it keeps big caches smaller
    return {"stamp": stamp, "info": info}


def _load_cache(cache_path: str) -> dict:
    try:
        with open(cache_path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable probe cache %s (%s); it will be rebuilt", cache_path, e)
        return {}
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION or not isinstance(data.get("files"), dict):
        log.warning("ignoring probe cache %s: not written by this version of avssl; it will be rebuilt", cache_path)
        return {}
    return data["files"]


def _save_cache(cache_path: str, files: dict) -> None:
    # ensure_ascii escapes the surrogates that stand for undecodable bytes in file names, and they
    # come back unchanged on loading.
    text = json.dumps({"version": _CACHE_VERSION, "files": files}, separators=(",", ":"), ensure_ascii=True)
    try:
        atomic_write_text(cache_path, text)
    except (OSError, DiskFullError) as e:
        # A read-only dataset folder must not stop the probe; pass cache_path to put the cache elsewhere.
        log.warning("could not write probe cache %s (%s); results will not be reused", cache_path, e)


def _cpu_count() -> int:
    # sched_getaffinity honours container and taskset limits; cpu_count reports the whole host.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
