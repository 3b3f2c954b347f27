"""The ``avssl data`` subcommands: build manifests from folders or official dataset layouts, and probe them.

Handlers return 0 and let avssl's own errors (ConfigError, MediaError) propagate: ``avssl.cli.main``
turns them into one message and an exit code for every command alike.
"""
from __future__ import annotations

import argparse
import functools
from collections import Counter
from typing import TYPE_CHECKING

from avssl.data import layouts
from avssl.data.manifest import Manifest, load_manifest
from avssl.errors import ConfigError

if TYPE_CHECKING:
    from avssl.data.prepare import PrepareTarget

# How many unreadable files `avssl data probe` names; the summary counts all of them.
_SHOW_UNREADABLE = 10


def register(subparsers) -> None:
    """Add the ``data`` command and its subcommands to an argparse ``subparsers`` object."""
    data = subparsers.add_parser("data", help="build dataset manifests and probe media files",
                                 description="Build dataset manifests (CSV: path[,label,split] plus metadata "
                                             "columns) from folders or official dataset layouts, and probe media "
                                             "files.")
    sub = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    p = sub.add_parser("folder", help="manifest of every media file under a folder")
    p.add_argument("root", help="folder to scan (at any depth)")
    p.add_argument("--class-folders", action="store_true", help="label each file with its first-level subfolder")
    p.add_argument("--split-fraction", type=_fraction, default=None, metavar="F",
                   help="write a split column: this fraction of each label's files is 'test', the rest 'train' "
                        "(every label with 2 or more files gets at least one test file); without it, no split")
    p.add_argument("--seed", type=int, default=0, help="which files --split-fraction puts in test")
    _add_out(p, _folder)

    for name, helper in (("ucf101", "ucfTrainTestlist"), ("hmdb51", "testTrainMulti_7030_splits")):
        p = sub.add_parser(name, help=f"{name.upper()} from its video folder and official split lists")
        p.add_argument("root", help="folder of the videos, one subfolder per class")
        p.add_argument("--splits", required=True, metavar="DIR", help=f"the official {helper} folder")
        p.add_argument("--fold", type=int, default=1, help="official fold that sets the split column (default 1)")
        _add_out(p, functools.partial(_split_lists, getattr(layouts, name)))

    p = sub.add_parser("esc50", help="ESC-50 from its repository folder (meta/esc50.csv, audio/)")
    p.add_argument("root", help="the ESC-50 repository folder")
    p.add_argument("--fold", type=int, default=1, help="fold used as the test split (default 1)")
    _add_out(p, _esc50)

    p = sub.add_parser("dcase", help="DCASE acoustic scenes (meta file, evaluation_setup/ folds or class folders)")
    p.add_argument("root", help="the DCASE dataset folder")
    p.add_argument("--fold", type=int, default=None, help="evaluation_setup fold (default: the first one)")
    _add_out(p, _dcase)

    p = sub.add_parser("kinetics", help="Kinetics from an official CSV and the downloaded clips")
    p.add_argument("csv", help="official CSV (label,youtube_id,time_start,time_end,split)")
    p.add_argument("--videos", required=True, metavar="ROOT", help="folder holding the clips, at any depth")
    _add_out(p, _kinetics)

    from . import datasets  # Kinetics-Sound, VGGSound, AudioSet, inflated images

    datasets.register(sub)

    p = sub.add_parser("probe", help="probe every file of a manifest or folder (cached) and summarise")
    p.add_argument("manifest", metavar="MANIFEST_OR_FOLDER", help="manifest CSV or folder of media files")
    p.add_argument("--workers", type=_positive_int, default=None, help="probing processes (default min(8, CPUs))")
    p.set_defaults(func=_probe)

    p = sub.add_parser("prepare", help="training-ready copy of a dataset: re-encoded for a preset, with its manifest",
                       description="Re-encode every file of a manifest for a preset's clips (its short side and "
                                   "frame rate, a keyframe every --keyframe-interval s, no B-frames, mono audio at "
                                   "its sample rate) into --out, in parallel and resumably, and write "
                                   "OUT/manifest.csv (original paths in its source_path column) and "
                                   "OUT/skipped.json (unreadable and too-short files).")
    p.add_argument("manifest", metavar="MANIFEST_OR_FOLDER", help="manifest CSV or folder of media files")
    p.add_argument("--out", required=True, metavar="DIR", help="folder of the copies and their manifest.csv")
    p.add_argument("--preset", default=None, help="preset whose clips the copy is for (default: demo for a demo "
                                                  "world, else xdc-paper); see avssl presets")
    p.add_argument("--workers", type=_positive_int, default=None, help="encoding processes (default: all CPUs)")
    p.add_argument("--keyframe-interval", type=float, default=0.5, metavar="SECONDS",
                   help="seconds between keyframes (default 0.5): the most video a clip decodes before its start")
    p.add_argument("--crf", type=int, default=23, help="x264 quality, 0-51, lower is better and larger (default 23)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare)


def _describe(manifest: Manifest) -> str:
    """One line: item count, classes and split sizes."""
    parts = [f"{len(manifest)} items"]
    classes = manifest.class_names()
    parts.append(f"{len(classes)} classes" if classes else "unlabelled")
    splits = Counter(item.split for item in manifest if item.split is not None)
    if splits:
        parts.append("split " + ", ".join(f"{name} {n}" for name, n in sorted(splits.items())))
    return "; ".join(parts)


def _add_out(parser: argparse.ArgumentParser, build) -> None:
    """Give a manifest-building subcommand its ``--out`` option and a handler that writes the manifest."""
    parser.add_argument("--out", required=True, metavar="MANIFEST.csv", help="where to write the manifest")

    def handler(args) -> int:
        manifest = build(args)
        manifest.write(args.out)
        print(f"{_printable(args.out)}: {_describe(manifest)}")
        return 0

    parser.set_defaults(func=handler)


def _folder(args) -> Manifest:
    if args.class_folders:
        manifest = Manifest.from_class_folders(args.root)
    else:
        manifest = Manifest.from_folder(args.root)
    if not manifest.items:
        raise ConfigError(f"no media files found under {manifest.source}")
    if args.split_fraction is not None:
        manifest = manifest.with_split(args.split_fraction, args.seed)
    return manifest


def _split_lists(builder, args) -> Manifest:
    return builder(args.root, args.splits, fold=args.fold)


def _esc50(args) -> Manifest:
    return layouts.esc50(args.root, fold=args.fold)


def _dcase(args) -> Manifest:
    return layouts.dcase(args.root, fold=args.fold)


def _kinetics(args) -> Manifest:
    return layouts.kinetics(args.csv, args.videos)


def _probe(args) -> int:
    from avssl.data.probe_index import probe_manifest  # PyAV: imported when probing, not to build the parser

    index = probe_manifest(load_manifest(args.manifest), workers=args.workers)
    print(index.format_summary())
    for path, reason in list(index.errors.items())[:_SHOW_UNREADABLE]:
        print(f"  {_printable(path)}: {reason}")
    if len(index.errors) > _SHOW_UNREADABLE:
        print(f"  ... and {len(index.errors) - _SHOW_UNREADABLE} more")
    print(f"probed {index.probed} file(s); cache: {index.cache_path}")
    return 0


def _prepare(args) -> int:
    from avssl.data import prepare  # PyAV: imported when preparing, not to build the parser

    manifest = load_manifest(args.manifest)
    name = args.preset or prepare.default_preset(manifest)
    target = prepare_target(name, keyframe_interval=args.keyframe_interval, crf=args.crf)
    result = prepare.prepare_dataset(manifest, args.out, target, workers=args.workers, progress=not args.no_progress)
    side = f"short side {target.short_side}" if target.short_side else "source size"
    print(f"preset {name}: {side}, <= {target.fps:g} fps, keyframe every {target.keyframe_interval:g} s, "
          f"mono {target.sample_rate} Hz")
    print(result.summary())
    if len(result.skipped):
        print(result.skipped.summary())
        print(result.skipped.details(_SHOW_UNREADABLE))
    print(f"manifest: {_printable(result.manifest)}")
    return 0


def prepare_target(preset_name: str, keyframe_interval: float = 0.5, crf: int = 23) -> PrepareTarget:
    """The :class:`~avssl.data.prepare.PrepareTarget` of a preset's clips (``video.resize``, ``video.fps``,
    ``audio.sample_rate``, clip duration). The preset lookup lives here, not in ``avssl.data``, so that data
    takes plain values and imports nothing from config."""
    from avssl.config import preset  # the presets: imported when preparing, not to build the parser
    from avssl.data.pipeline import clip_spec
    from avssl.data.prepare import PrepareTarget

    spec = clip_spec(preset(preset_name))
    return PrepareTarget.for_clip(preset_name, spec, keyframe_interval=keyframe_interval, crf=crf)


def _printable(path: str) -> str:
    """``path`` with undecodable bytes shown as escapes: printing them raw fails on a UTF-8 terminal."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
