"""The videos a run trains on, as recorded in its ``videos.csv``, and the check a resume makes.

A run's per-video state (the pseudo-labels in its checkpoints, ``clusters/*.npy``, the features)
is indexed by each usable video's position. ``videos.csv`` records that order: ``index,path,label``
(path and label as JSON strings, so any character survives) followed by each file's ``size`` and
``mtime_ns`` when it was recorded. Older runs have only the first three columns, which
``runs.read_videos_csv``, the one reader of the file, also reads.

``--resume`` compares the current usable videos with the record before anything is written, and
refuses with the differences (removed, added, reordered or changed files): resuming with another
list would give the saved pseudo-labels to the wrong videos. With ``--allow-data-change`` the run
instead re-maps its per-video tables by path (``remap_rows``): a video still present (unchanged)
keeps its pseudo-label, an added or changed one gets none (-1: it sits out until the next
iteration's clustering labels it), a removed one is dropped.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..runs import read_videos_csv

HEADER = "index,path,label,size,mtime_ns"


class DataChanged(ConfigError):
    """``--resume`` found other videos than the run recorded."""


@dataclass(frozen=True)
class RecordedVideo:
    path: str
    size: int | None = None
    mtime_ns: int | None = None


def stamp(path: str) -> RecordedVideo:
    """``path`` with its current size and modification time (None when it cannot be read)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return RecordedVideo(path)
    return RecordedVideo(path, st.st_size, st.st_mtime_ns)


def format_index(rows: list[tuple[int, RecordedVideo, str]]) -> str:
    """``videos.csv`` for rows (index, stamped video, label name)."""
    lines = [HEADER]
    for index, v, label in rows:
        size = "" if v.size is None else str(v.size)
        mtime = "" if v.mtime_ns is None else str(v.mtime_ns)
        lines.append(f"{index},{json.dumps(v.path)},{json.dumps(label)},{size},{mtime}")
    return "\n".join(lines) + "\n"


def read_index(path) -> list[RecordedVideo] | None:
    """The videos of a ``videos.csv`` in order (sizes and times None for a run recorded without them);
    None when the file does not exist."""
    rows = read_videos_csv(path)
    return None if rows is None else [RecordedVideo(r.path, r.size, r.mtime_ns) for r in rows]


def paths_digest(paths) -> str:
    """A digest of an ordered list of paths (what the per-video tables of a checkpoint are indexed by)."""
    h = hashlib.sha1()
    for p in paths:
        h.update(p.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


@dataclass
class DataChange:
    """How the current usable videos differ from the recorded ones."""

    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    moved: list[tuple[str, int, int]] = field(default_factory=list)  # (path, recorded index, current index)
    changed: list[tuple[str, str]] = field(default_factory=list)  # (path, what changed)
    unstamped: bool = False  # the record has no sizes and times (a run of an older avssl)

    def __bool__(self) -> bool:
        return bool(self.removed or self.added or self.moved or self.changed)

    def counts(self) -> dict:
        return {"removed": len(self.removed), "added": len(self.added), "reordered": len(self.moved),
                "changed": len(self.changed)}

    def describe(self, limit: int = 5) -> str:
        parts = []

        def listing(items, show):
            more = f"\n      ... and {len(items) - limit} more" if len(items) > limit else ""
            return "".join(f"\n      {show(i)}" for i in items[:limit]) + more

        if self.removed:
            parts.append(f"  {len(self.removed)} removed (recorded, no longer usable or in the data):"
                         + listing(self.removed, str))
        if self.added:
            parts.append(f"  {len(self.added)} added (usable now, not recorded):" + listing(self.added, str))
        if self.moved:
            parts.append(f"  {len(self.moved)} at another position (reordered):"
                         + listing(self.moved, lambda m: f"{m[0]}: position {m[1]} -> {m[2]}"))
        if self.changed:
            parts.append(f"  {len(self.changed)} changed since they were recorded:"
                         + listing(self.changed, lambda c: f"{c[0]}: {c[1]}"))
        return "\n".join(parts)


def compare(recorded: list[RecordedVideo], current: list[RecordedVideo]) -> DataChange:
    """The differences between the recorded and the current list of usable videos."""
    rec_pos = {v.path: i for i, v in enumerate(recorded)}
    cur_pos = {v.path: i for i, v in enumerate(current)}
    change = DataChange(unstamped=any(v.size is None for v in recorded))
    change.removed = [v.path for v in recorded if v.path not in cur_pos]
    change.added = [v.path for v in current if v.path not in rec_pos]
    # Reordered: videos present in both whose rank among the common ones differs (an insertion or a
    # removal shifts positions but leaves the order of the others as it was: not a reordering).
    common_rec = [v.path for v in recorded if v.path in cur_pos]
    common_cur = [v.path for v in current if v.path in rec_pos]
    rank = {p: r for r, p in enumerate(common_rec)}
    for r, p in enumerate(common_cur):
        if rank.get(p) != r:
            change.moved.append((p, rec_pos[p], cur_pos[p]))
    for v in current:
        i = rec_pos.get(v.path)
        if i is None:
            continue
        old = recorded[i]
        what = []
        if old.size is not None and v.size is not None and old.size != v.size:
            what.append(f"size {old.size} -> {v.size} bytes")
        if old.mtime_ns is not None and v.mtime_ns is not None and old.mtime_ns != v.mtime_ns:
            what.append("modified " + _when(old.mtime_ns) + " -> " + _when(v.mtime_ns))
        if what:
            change.changed.append((v.path, ", ".join(what)))
    return change


def remap_rows(recorded: list[RecordedVideo], current: list[RecordedVideo], change: DataChange) -> np.ndarray:
    """For each current video, its row in the recorded tables, or -1 (added, or changed since)."""
    rec_pos = {v.path: i for i, v in enumerate(recorded)}
    changed = {p for p, _ in change.changed}
    return np.array([-1 if v.path in changed else rec_pos.get(v.path, -1) for v in current], dtype=np.int64)


def remap(table: np.ndarray, rows: np.ndarray, fill) -> np.ndarray:
    """``table`` (one row per recorded video) re-indexed to the current videos; ``fill`` where none."""
    out = np.full((len(rows), *table.shape[1:]), fill, dtype=table.dtype)
    found = rows >= 0
    out[found] = table[rows[found]]
    return out


def _when(ns: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ns / 1e9).isoformat(sep=" ", timespec="seconds")
