"""Manifests: the list of media files a dataset is made of, with optional labels and splits.

A manifest lives on disk as a CSV with a ``path`` column and optional ``label`` and ``split``
columns; any other column is kept as free-form metadata. Paths are stored relative to the CSV's
folder when the files sit below it, so a dataset folder can be moved together with its manifest.

File names are not always valid UTF-8 (old archives, Windows code pages). Python decodes such names
with ``surrogateescape``; the CSV is read and written with the same error handler, so the original
bytes go back to disk unchanged and the file can still be opened.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from avssl.errors import ConfigError
from avssl.io import atomic_write_text

log = logging.getLogger("avssl.data")

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".flv", ".mpg", ".mpeg"})
AUDIO_EXTENSIONS = frozenset({".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac"})
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS

_COLUMNS = ("path", "label", "split")
# utf-8-sig skips the byte-order mark spreadsheet programs put in front of the header.
_READ_ENCODING, _ERRORS = "utf-8-sig", "surrogateescape"


@dataclass
class ManifestItem:
    """One media file. ``path`` is made absolute; ``label`` and ``split`` are ``None`` when unknown."""

    path: str
    label: str | None = None
    split: str | None = None
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.path = os.path.abspath(os.fspath(self.path))


@dataclass(repr=False)
class Manifest:
    """An ordered list of :class:`ManifestItem`; ``source`` is the CSV or folder it came from."""

    items: list[ManifestItem]
    source: str | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ManifestItem]:
        return iter(self.items)

    def __getitem__(self, index: int) -> ManifestItem:
        return self.items[index]

    def __repr__(self) -> str:
        # The dataclass repr would print every item, which is useless for 300k-file datasets.
        return f"Manifest({len(self.items)} items, source={self.source!r})"

    @classmethod
    def read(cls, csv_path) -> Manifest:
        """Read a manifest CSV; relative paths are resolved against the CSV's folder."""
        csv_path = os.path.abspath(os.fspath(csv_path))
        if not os.path.isfile(csv_path):
            raise ConfigError(f"manifest {csv_path} does not exist or is not a file")
        base = os.path.dirname(csv_path)
        with open(csv_path, newline="", encoding=_READ_ENCODING, errors=_ERRORS) as f:
            rows = csv.reader(f)
            header = [name.strip() for name, _ in zip(next(rows, []), range(1000))]
            if any("\x00" in name for name in header):
                raise ConfigError(f"manifest {csv_path} line 1: the header contains NUL bytes; a manifest is a text CSV "
                                  f"in UTF-8 (this one looks like UTF-16 or a binary file)")
            if not any(header):
                raise ConfigError(f"manifest {csv_path} is empty: expected a header with a 'path' column")
            found = ", ".join(repr(name) for name in header)
            duplicates = sorted(name for name, n in Counter(header).items() if n > 1 and name)
            if duplicates:
                raise ConfigError(f"manifest {csv_path} repeats column(s) {duplicates} in its header ({found})")
            if "path" not in header:
                raise ConfigError(f"manifest {csv_path} has no 'path' column; found columns: {found}")
            items = []
            for row, first in _rows(rows, csv_path):
                if not any(value.strip() for value in row):
                    continue
                _check_row(row, header, csv_path, first, rows.line_num)
                if len(row) > len(header):
                    raise ConfigError(
                        f"{csv_path} line {rows.line_num}: {len(row)} fields but the header has {len(header)}"
                    )
                # Short rows are common when trailing optional columns are left out.
                values = dict(zip(header, row + [""] * (len(header) - len(row))))
                values.pop("", None)  # unnamed columns come from trailing commas in spreadsheets
                path = values.pop("path").strip()
                if not path:
                    raise ConfigError(f"{csv_path} line {rows.line_num}: empty 'path'")
                label = values.pop("label", "").strip() or None
                split = values.pop("split", "").strip() or None
                items.append(ManifestItem(os.path.join(base, path), label, split, values))
        if not items:
            raise ConfigError(f"manifest {csv_path} has a header ({found}) but no rows")
        return cls(items, csv_path)

    def write(self, csv_path) -> None:
        """Write the manifest atomically; paths below the CSV's folder are written relative to it."""
        csv_path = os.path.abspath(os.fspath(csv_path))
        base = os.path.dirname(csv_path)
        meta_columns = list(dict.fromkeys(key for item in self.items for key in item.meta))
        clashes = set(meta_columns) & set(_COLUMNS)
        if clashes:
            raise ConfigError(f"meta keys {sorted(clashes)} clash with the manifest's own columns")
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([*_COLUMNS, *meta_columns])
        for item in self.items:
            writer.writerow(
                [_relative_if_below(item.path, base), item.label or "", item.split or ""]
                + [item.meta.get(key, "") for key in meta_columns]
            )
        atomic_write_text(csv_path, text.getvalue())

    @classmethod
    def from_folder(cls, root, extensions: Iterable[str] = MEDIA_EXTENSIONS, recursive: bool = True) -> Manifest:
        """Every media file under ``root`` (sorted, unlabelled)."""
        root = os.path.abspath(os.fspath(root))
        return cls([ManifestItem(path) for path in find_media_files(root, extensions, recursive)], root)

    @classmethod
    def from_class_folders(cls, root, extensions: Iterable[str] = MEDIA_EXTENSIONS) -> Manifest:
        """Media files in ``root/<class>/...``, labelled with the first-level folder name."""
        root = os.path.abspath(os.fspath(root))
        return _by_class_folder(root, find_media_files(root, extensions, recursive=True))

    def filter_split(self, name: str) -> Manifest:
        """The items whose split is ``name``; a ConfigError lists the splits present if there are none."""
        items = [item for item in self.items if item.split == name]
        if not items:
            present = sorted({item.split for item in self.items if item.split is not None})
            raise ConfigError(f"no items with split {name!r} in {self.source}; splits present: {present or 'none'}")
        return Manifest(items, self.source)

    def labelled(self) -> bool:
        """True when the manifest is non-empty and every item has a label."""
        return bool(self.items) and all(item.label is not None for item in self.items)

    def class_names(self) -> list[str]:
        """The sorted distinct labels."""
        return sorted({item.label for item in self.items if item.label is not None})

    def label_indices(self, class_names: Sequence[str] | None = None) -> list[int]:
        """Each item's label as an index into ``class_names`` (default: this manifest's own classes).

        Pass the training manifest's class names when indexing a test manifest, so that both agree even
        if the test split lacks a class.
        """
        names = list(self.class_names() if class_names is None else class_names)
        index = {name: i for i, name in enumerate(names)}
        out = []
        for item in self.items:
            if item.label not in index:
                what = "has no label" if item.label is None else f"has label {item.label!r}, not among the classes"
                raise ConfigError(f"{item.path} {what} ({len(names)} classes)")
            out.append(index[item.label])
        return out

    def subset(self, indices: Iterable[int]) -> Manifest:
        """The items at ``indices``, in that order."""
        return Manifest([self.items[i] for i in indices], self.source)

    def with_split(self, test_fraction: float, seed: int = 0) -> Manifest:
        """A copy whose ``split`` is ``train`` or ``test``, stratified by label: of each label's n items
        (the unlabelled ones form one group) ``round(test_fraction * n)`` go to test, at least 1 and at
        most n - 1 when n >= 2 (so every class is on both sides), none when n = 1. Which ones is
        decided by ``seed`` and the label alone: the same for every run, and a class added to the
        folder leaves the other classes' splits as they were."""
        if not 0 < test_fraction < 1:
            raise ConfigError(f"the test fraction must be between 0 and 1 (exclusive), got {test_fraction}")
        groups: dict[str | None, list[int]] = {}
        for i, item in enumerate(self.items):
            groups.setdefault(item.label, []).append(i)
        test: set[int] = set()
        for label, members in groups.items():
            n = len(members)
            k = min(max(math.floor(test_fraction * n + 0.5), 1), n - 1)
            order = sorted(members, key=lambda i: self.items[i].path)
            random.Random(f"avssl-split:{seed}:{label}").shuffle(order)
            test.update(order[:k])
        items = [dataclasses.replace(item, split="test" if i in test else "train", meta=dict(item.meta))
                 for i, item in enumerate(self.items)]
        return Manifest(items, self.source)


def _rows(reader, csv_path: str):
    """(row, number of the line it starts on) of a csv reader; a ConfigError naming the line instead of
    csv's own errors (a field over its 128 KiB limit, ...)."""
    first = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            if "field larger than field limit" in str(e):
                raise ConfigError(
                    f"{csv_path} line {first}: a field is longer than {csv.field_size_limit()} characters (128 KiB), "
                    f"more than any path or label; if a quoted field starts there and never closes, an unbalanced "
                    f'double quote (") merged the lines after it into that field') from None
            raise ConfigError(f"{csv_path} line {first}: not valid CSV ({e})") from None
        yield row, first
        first = reader.line_num + 1


def _check_row(row: list[str], header: list[str], csv_path: str, first: int, last: int) -> None:
    """Refuse the values no manifest row can hold: a NUL byte (no file name has one; the file is
    binary or UTF-16), a line break in a path, label or split, or a metadata value whose next lines hold
    field separators (an unbalanced double quote merged rows into one)."""
    for name, value in zip(header + [""] * len(row), row):
        column = f"the {name!r} field" if name else "a field"
        if "\x00" in value:
            raise ConfigError(
                f"{csv_path} line {first}: {column} contains a NUL byte (\\0), which no file name or label can "
                f"hold; is the manifest a text CSV in UTF-8 (not UTF-16, not a binary file)?")
        broken = "\n" in value or "\r" in value
        if broken and name not in _COLUMNS:  # free-form metadata may span lines; merged rows bring their commas
            broken = any("," in line for line in value.replace("\r", "\n").split("\n")[1:])
        if broken:
            unclosed = value.endswith(("\n", "\r"))  # the quote never closed: the field ran to the end of the file
            shown = value.replace("\r", "").rstrip("\n").split("\n")
            where = ("never closes, so the rest of the file became part of that field" if unclosed else
                     f"closes only on line {last}, merging the rows between into one")
            raise ConfigError(
                f"{csv_path} lines {first}-{last}: {column} spans {len(shown)} lines ({shown[0][:60]!r} ... "
                f"{shown[-1][-60:]!r}): a double quote (\") on line {first} opens a quoted field that {where}. "
                f'Remove the stray quote, or write a quote inside a quoted field as two ("")')


def find_media_files(root, extensions: Iterable[str] = MEDIA_EXTENSIONS, recursive: bool = True) -> list[str]:
    """Absolute paths of the files under ``root`` whose extension is in ``extensions``, sorted.

    Matching ignores case. Hidden files and folders are skipped: they hold editor and OS debris such
    as macOS ``._clip.mp4`` resource forks and half-written ``.name.tmp.mp4`` files. Folder symlinks
    are followed (datasets are often assembled from links), each real folder once to avoid cycles.
    """
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise ConfigError(f"{root} does not exist or is not a folder")
    wanted = {ext.lower() if ext.startswith(".") else "." + ext.lower() for ext in extensions}
    found, seen = [], set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        found += [
            os.path.join(folder, name)
            for name in files
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in wanted
        ]
    return sorted(found)


def load_manifest(path_or_folder, extensions: Iterable[str] = MEDIA_EXTENSIONS) -> Manifest:
    """A manifest from a CSV file or a folder of media.

    A folder whose media files all sit in two or more subfolders is read as class folders (label =
    subfolder name); any other folder is scanned flat without labels. A single subfolder is not taken
    as a class, since one class cannot be trained on and such a folder is usually just ``videos/``.
    """
    path = os.path.abspath(os.fspath(path_or_folder))
    if os.path.isfile(path):
        if os.path.splitext(path)[1].lower() in MEDIA_EXTENSIONS:
            raise ConfigError(f"{path} is a media file; expected a manifest CSV or a folder of media")
        return Manifest.read(path)
    paths = find_media_files(path, extensions, recursive=True)
    if not paths:
        raise ConfigError(f"no media files ({', '.join(sorted(extensions))}) found under {path}")
    top = {os.path.relpath(p, path).split(os.sep)[0] for p in paths}
    if len(top) >= 2 and all(os.path.isdir(os.path.join(path, name)) for name in top):
        return _by_class_folder(path, paths)
    return Manifest([ManifestItem(p) for p in paths], path)


def _by_class_folder(root: str, paths: list[str]) -> Manifest:
    """Label each of ``paths`` with its first folder below ``root``; files directly in ``root`` are dropped."""
    items, loose = [], 0
    for path in paths:
        parts = os.path.relpath(path, root).split(os.sep)
        if len(parts) == 1:
            loose += 1
        else:
            items.append(ManifestItem(path, label=parts[0]))
    if loose:
        log.warning("%s: ignored %d media file(s) outside class folders", root, loose)
    return Manifest(items, root)


def _relative_if_below(path: str, base: str) -> str:
    """``path`` relative to ``base`` when it lies inside ``base``, else unchanged."""
    try:
        inside = os.path.commonpath([path, base]) == base
    except ValueError:  # different drives on Windows
        inside = False
    return os.path.relpath(path, base) if inside else path
