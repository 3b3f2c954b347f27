"""``avssl data kinetics-sound|vggsound|audioset|inflate-images``: manifests of the YouTube-sourced sets
(with how many listed clips are present) and of an image folder turned into static clips.

Each builder writes the manifest, then probes the found files with the cached probe
(``probe_index.probe_manifest``, cache ``<manifest>.probe.json``, reused by every later command on
that manifest) and prints what was listed, found, missing and unreadable. ``--missing FILE`` writes
the missing clips' names.

    avssl data vggsound vggsound.csv --videos ROOT --out vggsound.csv --missing vggsound-missing.txt
"""
from __future__ import annotations


def register(sub) -> None:
    """Add the subcommands to the ``avssl data`` subparsers ``sub``."""
    p = sub.add_parser("kinetics-sound", help="Kinetics-Sound (CrissCross's pretraining set) from Kinetics CSVs "
                                              "and the downloaded clips")
    p.add_argument("csv", nargs="+", help="official Kinetics CSV(s) (label,youtube_id,time_start,time_end,split)")
    p.add_argument("--classes", metavar="FILE", help="class names, one a line (default: the 31 Kinetics-400 "
                                                     "classes of Look, Listen and Learn's Kinetics-Sounds)")
    p.add_argument("--val-as-test", action="store_true",
                   help="write Kinetics' val split as test (for downstream evaluation on Kinetics-Sound)")
    _common(p, _kinetics_sound)

    p = sub.add_parser("vggsound", help="VGGSound from vggsound.csv and the downloaded clips")
    p.add_argument("csv", nargs="+", help="vggsound.csv (youtube_id,start_seconds,label,split; no header)")
    _common(p, _vggsound)

    p = sub.add_parser("audioset", help="AudioSet from its segment CSVs (balanced/unbalanced/eval) and the "
                                        "downloaded clips")
    p.add_argument("csv", nargs="+", help="balanced_train_segments.csv, unbalanced_train_segments.csv, "
                                          "eval_segments.csv (any of them)")
    p.add_argument("--classes", metavar="CSV", help="class_labels_indices.csv: labels written as display names")
    p.add_argument("--split", help="split of every clip (default: train for *_train_* lists, test for eval)")
    _common(p, _audioset)

    p = sub.add_parser("inflate-images", help="an image folder (one subfolder per class) as static clips, for "
                                              "the supervised ImageNet baseline (XDC Tables 1, 3, 5)")
    p.add_argument("root", help="image folder: <root>/<class>/<image>.jpg")
    p.add_argument("--videos", required=True, metavar="DIR", help="where the clips are written")
    p.add_argument("--seconds", type=float, default=3.0, help="clip length (the same frame repeated)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the clips")
    p.add_argument("--short-side", type=int, default=256, help="pixels of the image's short side in the clip")
    p.add_argument("--out", required=True, metavar="MANIFEST.csv", help="where to write the manifest")
    p.set_defaults(func=_inflate)


def _common(p, build) -> None:
    p.add_argument("--videos", required=True, metavar="ROOT", help="folder holding the downloaded clips, any depth")
    p.add_argument("--out", required=True, metavar="MANIFEST.csv", help="where to write the manifest")
    p.add_argument("--missing", metavar="FILE", help="write the missing clips' names here, one a line")
    p.add_argument("--no-probe", action="store_true", help="skip probing the found clips (cached; default: probe)")
    p.add_argument("--workers", type=int, default=None, help="probing processes (default min(8, CPUs))")

    def handler(args) -> int:
        manifest, presence = build(args)
        manifest.write(args.out)
        print(f"{args.out}: {len(manifest)} clips")
        print(presence.summary())
        if args.missing:
            presence.write_missing(args.missing)
            print(f"missing clips listed in {args.missing}")
        if not args.no_probe:
            _probe(args.out, args.workers)
        return 0

    p.set_defaults(func=handler)


def _probe(manifest_csv, workers) -> None:
    from avssl.data.manifest import load_manifest
    from avssl.data.probe_index import probe_manifest

    # Probed through the written CSV, so the cache sits where later commands on it look: <csv>.probe.json.
    index = probe_manifest(load_manifest(manifest_csv), workers=workers)
    print(index.format_summary())
    print(f"probed {index.probed} file(s); cache: {index.cache_path}")


def _kinetics_sound(args):
    from avssl.data import youtube_sets

    classes = youtube_sets.read_class_list(args.classes) if args.classes else youtube_sets.KINETICS_SOUND_CLASSES
    return youtube_sets.kinetics_sound(args.csv, args.videos, classes, val_as_test=args.val_as_test)


def _vggsound(args):
    from avssl.data import youtube_sets

    return youtube_sets.vggsound(args.csv, args.videos)


def _audioset(args):
    from avssl.data import youtube_sets

    return youtube_sets.audioset(args.csv, args.videos, class_csv=args.classes, split=args.split)


def _inflate(args) -> int:
    from avssl.data.inflate_images import inflate_images

    manifest, report = inflate_images(args.root, args.videos, seconds=args.seconds, fps=args.fps,
                                      short_side=args.short_side)
    manifest.write(args.out)
    print(f"{args.out}: {len(manifest)} clips of {len(manifest.class_names())} classes")
    print(report.summary())
    return 0
