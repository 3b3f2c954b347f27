"""Manifests of the YouTube-sourced datasets from their own CSVs: Kinetics-Sound, VGGSound, AudioSet.

These datasets are distributed as lists of YouTube ids and segments; everyone downloads the clips
themselves, and a growing share of the videos is gone from YouTube. So every builder here returns,
beside the manifest, a :class:`Presence` report: how many listed clips were found under the video
folder, how many are missing (with their ids), per split. Probing the found files (readable, with
audio and video) is ``probe_index.probe_manifest``, cached next to the written manifest, as for
every other layout (``avssl data kinetics-sound|vggsound|audioset`` does both).

Usage::

    avssl data vggsound vggsound.csv --videos ROOT --out vggsound.csv
    avssl data audioset balanced_train_segments.csv eval_segments.csv --videos ROOT \\
        --classes class_labels_indices.csv --out audioset.csv
    avssl data kinetics-sound kinetics400/train.csv kinetics400/validate.csv --videos ROOT --out ks.csv

Clip files are matched by file stem, anywhere below the video folder; the usual download-script
names are accepted: ``<id>_<start:06d>_<end:06d>`` (Kinetics' own), ``<id>_<start>_<end>``,
``<id>_<start:06d>``, ``<id>_<start>``, ``<id>`` and ``Y<id>`` (AudioSet's release of the audio).
"""
from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from dataclasses import dataclass, field

from avssl.data.layouts import _MediaIndex, _folder, _read_table
from avssl.data.manifest import Manifest, ManifestItem
from avssl.errors import ConfigError

log = logging.getLogger("avssl.data")

#: Kinetics-Sound: CrissCross (App. C.1) pretrains on "Kinetics-Sound ... 22K video clips, distributed
#: over 32 action classes" (Arandjelovic and Zisserman 2017) but does not list the classes. These are
#: the Look, Listen and Learn paper's Kinetics-Sounds classes under their Kinetics-400 names ("blowing
#: out" is "blowing out candles", "dribbling ball" "dribbling basketball", "mowing the lawn by pushing
#: lawnmower" "mowing lawn", "stomping" "stomping grapes"); the three without a Kinetics-400 class
#: (fingerpicking, patting, typing) are left out, so 31 classes. Pass ``classes=`` (``--classes FILE``)
#: for another list, e.g. a 32-class one from a released split.
KINETICS_SOUND_CLASSES = (
    "blowing nose", "blowing out candles", "bowling", "chopping wood", "dribbling basketball", "laughing",
    "mowing lawn", "playing accordion", "playing bagpipes", "playing bass guitar", "playing clarinet",
    "playing drums", "playing guitar", "playing harmonica", "playing keyboard", "playing organ", "playing piano",
    "playing saxophone", "playing trombone", "playing trumpet", "playing violin", "playing xylophone",
    "ripping paper", "shoveling snow", "shuffling cards", "singing", "stomping grapes", "tap dancing",
    "tapping guitar", "tapping pen", "tickling",
)

# The split each official AudioSet list belongs to, by the start of its file name.
_AUDIOSET_SPLITS = {"balanced_train": "train", "unbalanced_train": "train", "eval": "test"}


@dataclass
class Presence:
    """What a list names and what the video folder holds: listed, present and missing clips."""

    dataset: str
    listed: int = 0
    present: int = 0
    missing: list[str] = field(default_factory=list)  # clip stems (first candidate name) not found
    by_split: dict[str, list[int]] = field(default_factory=dict)  # split -> [listed, present]

    def add(self, split: str | None, stem: str, found: bool) -> None:
        self.listed += 1
        counts = self.by_split.setdefault(split or "-", [0, 0])
        counts[0] += 1
        if found:
            self.present += 1
            counts[1] += 1
        else:
            self.missing.append(stem)

    def summary(self) -> str:
        """One line per split after the total, e.g. ``VGGSound: 3 of 5 listed clips present (60.0%), 2 missing``."""
        share = 100.0 * self.present / self.listed if self.listed else 0.0
        lines = [f"{self.dataset}: {self.present} of {self.listed} listed clips present ({share:.1f}%), "
                 f"{len(self.missing)} missing"]
        lines += [f"  {split}: {present} of {listed} present" for split, (listed, present) in sorted(self.by_split.items())]
        return "\n".join(lines)

    def write_missing(self, path) -> None:
        """The missing clips' names, one a line (what to download again)."""
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(f"{stem}\n" for stem in self.missing)


def kinetics_sound(csv_paths, video_root, classes=KINETICS_SOUND_CLASSES,
                   val_as_test: bool = False) -> tuple[Manifest, Presence]:
    """Kinetics-Sound: the rows of official Kinetics CSVs (``label,youtube_id,time_start,time_end,split``)
    whose label is one of ``classes``, matched to the downloaded clips below ``video_root``.
    ``val_as_test``: Kinetics' ``val`` split becomes ``test`` (its test labels were never released, so
    downstream evaluations on Kinetics-Sound, e.g. CrissCross Table 2's, report on val)."""
    wanted = {c.strip().lower() for c in classes if c.strip()}
    if not wanted:
        raise ConfigError("kinetics-sound needs at least one class name")
    rows = []
    for path in _paths(csv_paths):
        table = _read_table(path, ("label", "youtube_id", "time_start", "time_end", "split"))
        rows += [row for row in table if row["label"].strip().lower() in wanted]
    seen = {row["label"].strip().lower() for row in rows}
    absent = sorted(wanted - seen)
    if absent:
        log.warning("%d of the %d Kinetics-Sound classes have no row in the CSV(s): %s", len(absent), len(wanted),
                    ", ".join(absent))
    index, presence, items = _MediaIndex(_folder(video_root)), Presence("Kinetics-Sound"), []
    for row in rows:
        start, end = _seconds(row["time_start"], row), _seconds(row["time_end"], row)
        meta = {"youtube_id": row["youtube_id"], "time_start": row["time_start"], "time_end": row["time_end"]}
        split = row["split"] or None
        if val_as_test and split in ("val", "validate", "validation"):
            split = "test"
        _match(index, presence, items, row["youtube_id"], start, end, row["label"], split, meta)
    return _finish(items, presence, video_root, csv_paths)


def vggsound(csv_paths, video_root) -> tuple[Manifest, Presence]:
    """VGGSound from its ``vggsound.csv`` (no header; ``youtube_id,start_seconds,label,split`` with split
    ``train``/``test``); each clip is the 10 s from ``start_seconds``."""
    presence, items = Presence("VGGSound"), []
    index = _MediaIndex(_folder(video_root))
    for path in _paths(csv_paths):
        for number, fields in _csv_rows(path):
            if len(fields) < 4:
                raise ConfigError(f"{path} line {number}: expected youtube_id,start_seconds,label,split; got {fields}")
            if number == 1 and not _is_number(fields[1]):
                continue  # a header line some copies add
            ytid, label, split = fields[0], fields[2], fields[3] or None
            start = _seconds(fields[1], fields)
            meta = {"youtube_id": ytid, "time_start": fields[1], "time_end": f"{start + 10:g}"}
            _match(index, presence, items, ytid, start, start + 10, label, split, meta)
    return _finish(items, presence, video_root, csv_paths)


def audioset(csv_paths, video_root, class_csv=None, split: str | None = None) -> tuple[Manifest, Presence]:
    """AudioSet from its segment lists (``balanced_train_segments.csv``, ``unbalanced_train_segments.csv``,
    ``eval_segments.csv``: ``#`` comment lines, then ``YTID, start_seconds, end_seconds, "labels"``).

    AudioSet is multi-label: the manifest's ``label`` stays empty (it is a pretraining set here) and
    every positive label goes into the ``labels`` meta column, as display names when ``class_csv``
    (``class_labels_indices.csv``: ``index,mid,display_name``) is given, else as ids, joined by ``;``.
    ``split``: train for the train lists and test for eval, unless given."""
    names = _audioset_names(class_csv) if class_csv is not None else {}
    presence, items = Presence("AudioSet"), []
    index = _MediaIndex(_folder(video_root))
    for path in _paths(csv_paths):
        list_split = split or next((s for prefix, s in _AUDIOSET_SPLITS.items()
                                    if os.path.basename(path).startswith(prefix)), None)
        for number, fields in _csv_rows(path, comment="#"):
            if len(fields) < 4:
                raise ConfigError(f"{path} line {number}: expected YTID, start_seconds, end_seconds, \"labels\"; "
                                  f"got {fields}")
            ytid = fields[0]
            start, end = _seconds(fields[1], fields), _seconds(fields[2], fields)
            mids = [m.strip() for m in ",".join(fields[3:]).split(",") if m.strip()]
            meta = {"youtube_id": ytid, "time_start": fields[1], "time_end": fields[2],
                    "labels": ";".join(names.get(m, m) for m in mids), "list": os.path.basename(path)}
            _match(index, presence, items, ytid, start, end, None, list_split, meta)
    return _finish(items, presence, video_root, csv_paths)


def read_class_list(path) -> list[str]:
    """Class names from a text file, one a line (blank lines and ``#`` comments ignored)."""
    if not os.path.isfile(path):
        raise ConfigError(f"class list {path} does not exist")
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise ConfigError(f"class list {path} names no class")
    return names


# --- shared --------------------------------------------------------------------------------------

def clip_stems(ytid: str, start: float, end: float) -> list[str]:
    """The file stems a downloaded clip of ``ytid`` from ``start`` to ``end`` seconds usually has."""
    s, e = int(start), int(end)
    return list(dict.fromkeys([f"{ytid}_{s:06d}_{e:06d}", f"{ytid}_{s}_{e}", f"{ytid}_{start:g}_{end:g}",
                               f"{ytid}_{s:06d}", f"{ytid}_{s}", ytid, f"Y{ytid}"]))


def _match(index: _MediaIndex, presence: Presence, items: list, ytid: str, start: float, end: float, label,
           split, meta: dict) -> None:
    stems = clip_stems(ytid, start, end)
    path = next((index.by_stem[s] for s in stems if s in index.by_stem), None)
    presence.add(split, stems[0], path is not None)
    if path is not None:
        items.append(ManifestItem(path, label or None, split, meta))


def _finish(items: list, presence: Presence, video_root, csv_paths) -> tuple[Manifest, Presence]:
    lists = ", ".join(map(str, _paths(csv_paths)))
    if not presence.listed:
        raise ConfigError(f"{lists} list(s) no clips")
    if not presence.present:
        raise ConfigError(f"none of the {presence.listed} clips listed in {lists} was found under {video_root} "
                          f"(first: {presence.missing[0]}; expected file names like {presence.missing[0]}.mp4)")
    if presence.missing:
        log.warning("%d of %d clips listed in %s are missing under %s (first: %s)", len(presence.missing),
                    presence.listed, lists, video_root, presence.missing[0])
    # One clip listed twice (AudioSet's balanced and unbalanced lists overlap) is one manifest row.
    unique = list({item.path: item for item in items}.values())
    unique.sort(key=lambda item: item.path)
    return Manifest(unique, os.path.abspath(os.fspath(video_root))), presence


def _paths(csv_paths) -> list[str]:
    paths = [csv_paths] if isinstance(csv_paths, (str, os.PathLike)) else list(csv_paths)
    if not paths:
        raise ConfigError("no CSV list given")
    return [os.path.abspath(os.fspath(p)) for p in paths]


def _csv_rows(path: str, comment: str | None = None):
    """(line number, stripped fields) of a headerless CSV; AudioSet's lists put spaces after commas."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as f:
        for number, fields in enumerate(csv.reader(f, skipinitialspace=True), 1):
            fields = [x.strip() for x in fields]
            if not any(fields) or (comment and fields[0].startswith(comment)):
                continue
            yield number, fields


def _seconds(text: str, row) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"bad start/end seconds {text!r} in row {row}") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _audioset_names(path) -> dict[str, str]:
    rows = _read_table(os.fspath(path), ("mid", "display_name"))
    return {row["mid"]: row["display_name"] for row in rows}


def label_counts(manifest: Manifest) -> Counter:
    """Clips per label (for the builder's summary)."""
    return Counter(item.label for item in manifest if item.label)
