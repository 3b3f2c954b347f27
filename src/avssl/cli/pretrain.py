"""``avssl pretrain`` and ``avssl presets``: start or resume a run, and show the named configs.

The config is resolved (and refused with one message, the method's own checks included:
``methods.validate``) before the engine and faiss are imported.
"""
from __future__ import annotations

import logging

from .parser import add_config_options


def register(sub) -> None:
    _add_pretrain(sub)
    _add_presets(sub)


def _add_pretrain(sub) -> None:
    from ..config import DEFAULT_PRESET
    from ..method_names import USER_METHODS

    p = sub.add_parser("pretrain", help="pretrain a method on a manifest or folder of videos",
                       description="Self-supervised pretraining. Writes config, checkpoints, metrics and the final "
                                   "encoders (encoders.pt) to --out. The config is built in this order, later steps "
                                   "winning: --preset, --method, --config FILE, --set KEY=VALUE, then --iterations "
                                   "and --seed. With --resume, the run's own config.json is the config: options "
                                   "that ask for a different value are refused.")
    p.add_argument("--method", choices=USER_METHODS, metavar="METHOD",
                   help=f"pretext method, one of {', '.join(USER_METHODS)}; required, except when --config names "
                        "one or --resume finds the run's config.json")
    p.add_argument("--data", help="manifest CSV (path[,label,split]) or a folder of videos; required, except with "
                                  "--resume, which defaults to the videos the run trained on (its videos.csv)")
    p.add_argument("--out", required=True, help="run directory")
    add_config_options(p, preset_help=f"named config to start from (default: the --config file's preset, else "
                                      f"{DEFAULT_PRESET}; with --resume the run's)")
    p.add_argument("--iterations", type=int, help="shortcut for --set iterations=N (applied after --set)")
    p.add_argument("--seed", type=int, help="shortcut for --set seed=N (applied after --set)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, with its saved config (starts a new "
                        "run when --out holds none)")
    p.add_argument("--allow-data-change", action="store_true",
                   help="with --resume: continue although the usable videos differ from those the run recorded "
                        "(videos.csv), matching them by path; a method with pseudo-labels goes back to its last "
                        "finished iteration and clusters the new data first (without this flag such a resume is "
                        "refused, listing the differences)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars, only the log: a line per epoch and a summary per iteration (bars are "
                        "drawn only when the output is a terminal anyway)")
    p.set_defaults(func=_run_pretrain)


def _run_pretrain(args) -> int:
    from pathlib import Path

    from ..config import load_config_file, resolve
    from ..errors import ConfigError
    from ..methods import validate

    overrides = list(args.overrides)
    if args.iterations is not None:
        overrides.append(f"iterations={args.iterations}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    resuming = args.resume and (Path(args.out) / "config.json").exists()
    if resuming:
        cfg = resumed_config(args.out, args.method, args.preset, overrides, args.config)
    else:
        if args.method is None and (args.config is None or "method" not in load_config_file(args.config)):
            raise ConfigError("pretrain needs --method (or a --config file that names one, or --resume of an "
                              f"existing run); methods: {', '.join(_user_methods())}")
        cfg = resolve(args.preset, args.method, overrides, config_file=args.config, check=validate)
    data = args.data
    if data is None:
        if not resuming:
            raise ConfigError("pretrain needs --data: a manifest CSV (path[,label,split]) or a folder of videos")
        data = _run_videos(args.out)
    from ..engine.pretrain import pretrain  # torch and faiss: after the config is known to be right

    result = pretrain(cfg, data, args.out, resume=args.resume, progress=not args.no_progress,
                      allow_data_change=args.allow_data_change)
    from .. import distributed

    if distributed.is_main():
        print(f"encoders written to {result.encoders_path}")
    return 0


def resumed_config(out, method=None, preset=None, overrides=(), config_file=None):
    """The config to resume the run in ``out`` with: its ``config.json``, where ``method``, ``preset``,
    the values of ``config_file`` and ``overrides`` may only repeat what it holds, except the keys of
    ``config.RESUME_CHANGEABLE`` (the learning rate and its schedule, precision, device...). Otherwise one
    ConfigError names every differing value, old -> new."""
    import json
    from pathlib import Path

    from ..config import PretrainConfig, apply_overrides, check_resumable, load_config_file, tree_overrides
    from ..methods import validate

    saved = PretrainConfig.load(Path(out) / "config.json")
    asked = [f"{key}={json.dumps(value)}" for key, value in (("method", method), ("preset", preset)) if value]
    if config_file is not None:
        asked += tree_overrides(load_config_file(config_file))
    cfg = apply_overrides(saved, [*asked, *overrides])
    check_resumable(saved, cfg, out)
    return validate(cfg)


def _run_videos(out):
    """The videos a run trained on (its ``videos.csv``: path and label) as a manifest."""
    from pathlib import Path

    from ..data.manifest import Manifest, ManifestItem
    from ..runs import read_run_videos

    paths, labels = read_run_videos(out)
    logging.getLogger("avssl").info("--resume without --data: the %d videos of %s", len(paths),
                                    Path(out) / "videos.csv")
    return Manifest([ManifestItem(p, label) for p, label in zip(paths, labels)], str(Path(out) / "videos.csv"))


def _user_methods() -> tuple:
    from ..method_names import USER_METHODS

    return USER_METHODS


# --- presets ---------------------------------------------------------------------------------------

def _add_presets(sub) -> None:
    from ..config import PRESETS

    p = sub.add_parser("presets", help="list the named configs, or print one in full (YAML)",
                       description="Without NAME: each preset with one line on what it is for. With NAME: the "
                                   "preset's full config as YAML, which works as --config FILE (edit a copy).")
    p.add_argument("name", nargs="?", metavar="NAME", help=f"preset to print in full: {', '.join(PRESETS)}")
    p.add_argument("--method", choices=_user_methods(), metavar="METHOD",
                   help="show the preset as that method would run it (the config's method field)")
    p.set_defaults(func=_run_presets)


def _run_presets(args) -> int:
    from ..config import PRESETS, preset_summary, resolve, to_yaml

    if args.name is None:
        width = max(map(len, PRESETS))
        for name in PRESETS:
            print(f"{name:<{width}}  {preset_summary(name)}")
        print("\nIn full (YAML, usable as --config FILE): avssl presets NAME")
        return 0
    cfg = resolve(args.name, args.method)
    print(to_yaml(cfg, f"preset {args.name}: {preset_summary(args.name)}\n"
                       f"usable as: avssl pretrain --config FILE ... (any subset of these keys)"), end="")
    return 0
