"""``avssl demo``, ``avssl sweep``, ``avssl retrain-long`` and ``avssl filters``: the workflows' commands.

    avssl demo --seeds 0,1,2
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..workflows import demo, filters, longclip, sweep
from .parser import add_config_options, add_scratch_options


def register(sub) -> None:
    _add_demo(sub)
    _add_sweep(sub)
    _add_retrain_long(sub)
    _add_filters(sub)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="pretrain and compare methods on the embedded demo world (CPU, about 9 minutes "
                                    "on a 2-core CPU)",
                       description=demo.__doc__.rstrip() + "\n\nThe default methods take about 9 minutes on a "
                                                     "2-core CPU.")
    p.add_argument("--out", default="avssl-demo", help="output folder (default: ./avssl-demo)")
    p.add_argument("--methods", default=",".join(demo.DEFAULT_METHODS),
                   help=f"comma-separated methods (default: {','.join(demo.DEFAULT_METHODS)})")
    add_config_options(p, preset_help="named config of every run (default: the --config file's preset, else demo)",
                       config_help="YAML or JSON file with any part of the config tree, applied to every run over "
                                   "the preset (its method key is ignored: --methods chooses)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    p.add_argument("--seeds", help="several seeds, e.g. 0,1,2: the table shows mean ± std over them")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from ..config import config_layers
    from ..method_names import USER_METHODS

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in methods if m != "scratch" and m not in USER_METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; choose from scratch, {', '.join(USER_METHODS)}")
    args.preset, args.overrides = config_layers(args.preset, args.config, args.overrides, default_preset="demo")
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()] if args.seeds else None
    result = demo.run_demo(args.out, methods, args.preset, args.overrides, args.seed, progress=not args.no_progress,
                      seeds=seeds)
    print()
    print(result["markdown"])
    print()
    print(f"total {result['seconds'] / 60:.1f} min; results in {Path(args.out) / 'results.md'}")
    if result["cluster_report"]:
        print(f"XDC cluster report: {result['cluster_report']}")
    print(f"report with every run's curves: {result['report']}")
    return 1 if result["failed"] else 0


def _csv(cast):
    def parse(text: str):
        try:
            values = [cast(t.strip()) for t in text.split(",") if t.strip()]
        except ValueError:
            values = []
        if not values:
            import argparse

            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return values
    return parse


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="ablations as one command: methods x presets x k x pretraining size x seeds, "
                                     "each run resumable, one results table and plot",
                       description=sweep.__doc__.split("\n\n")[0] + " " + sweep.__doc__.split("\n\n")[1])
    p.add_argument("--methods", type=_csv(str), required=True, help="comma-separated, e.g. scratch,sdc,xdc")
    p.add_argument("--k", dest="ks", type=_csv(int), help="k values for the deep-clustering methods, e.g. 16,32,64 "
                                                          "(default: the preset's)")
    p.add_argument("--seeds", type=_csv(int), default=[0], help="comma-separated seeds (default 0)")
    p.add_argument("--preset", "--presets", dest="presets", type=_csv(str),
                   help="preset(s), comma-separated (default: the --config file's preset, else demo)")
    p.add_argument("--fractions", type=_csv(float), help="pretraining-set fractions, e.g. 0.25,0.5,1: accuracy "
                                                         "against pretraining size")
    p.add_argument("--data", required=True, help="pretraining manifest (its test items are left out)")
    p.add_argument("--eval-data", help="labelled manifest with a split (or folds) to evaluate on (default --data); "
                                       "several, comma-separated, give a column each (named by file stem)")
    p.add_argument("--out", required=True, help="sweep folder (rerun the same command to reuse and resume)")
    p.add_argument("--modalities", type=_csv(str), default=["video"], help="encoders to evaluate (default video)")
    p.add_argument("--finetune", action="store_true", help="also full fine-tuning (XDC Table 5: fc-only vs all)")
    p.add_argument("--finetune-epochs", type=int, default=8, help="epochs of --finetune")
    p.add_argument("--eval-clips", type=int, default=10, help="uniform clips per video in evaluation (default 10)")
    add_config_options(p, preset_help=False,
                       config_help="YAML or JSON file with any part of the config tree, applied to every run over "
                                   "its preset (its method key is ignored: --methods chooses)",
                       set_help="config override for every run, e.g. --set iterations=2 (repeatable; wins over "
                                "--config)")
    p.add_argument("--subset-seed", type=int, default=0, help="seed of the --fractions subsets")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.set_defaults(func=_run_sweep)


def _run_sweep(a) -> int:
    from ..config import config_layers

    bad = set(a.modalities) - {"video", "audio"}
    if bad:
        raise ConfigError(f"--modalities takes video and/or audio, got {sorted(bad)}")
    first, a.overrides = config_layers(a.presets[0] if a.presets else None, a.config, a.overrides,
                                       default_preset="demo")
    a.presets = a.presets or [first]
    r = sweep.sweep(a.data, a.out, methods=a.methods, presets=a.presets, ks=a.ks, fractions=a.fractions, seeds=a.seeds,
              eval_data=a.eval_data, modalities=a.modalities, finetune=a.finetune, overrides=a.overrides,
              eval_clips=a.eval_clips, finetune_epochs=a.finetune_epochs, subset_seed=a.subset_seed,
              progress=not a.no_progress)
    print(r["markdown"])
    print()
    states = ", ".join(f"{n} {s}" for s, n in r["states"].items() if n)
    print(f"{len(r['runs'])} runs ({states}) in {r['seconds'] / 60:.1f} min; results in {Path(a.out) / 'results.md'}, "
          f"plot {r['plot']}")
    return 0


def _add_retrain_long(sub) -> None:
    p = sub.add_parser("retrain-long", help="retrain a run's video encoder on its last pseudo-labels with longer "
                                            "clips (XDC Sec. 6: 32 frames, batch and lr scaled)",
                       description=longclip.__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="finished deep-clustering run directory")
    p.add_argument("--out", required=True, help="new run directory (rerun to reuse or resume it)")
    p.add_argument("--frames", type=int, default=longclip.PAPER_FRAMES, help=f"frames per clip (default {longclip.PAPER_FRAMES})")
    p.add_argument("--batch-size", type=int, help="default: the run's batch x run frames / --frames (32 -> 8)")
    p.add_argument("--lr", type=float, help="default: the run's lr x new batch / run batch (0.01 -> 0.0025)")
    p.add_argument("--data", help="manifest to train on (default: the run's own videos, matched by path)")
    add_config_options(p, preset_help=False,
                       config_help="YAML or JSON file of config values for the retraining, applied like --set values "
                                   "before the --set ones (its method and video.num_frames are left out: the command "
                                   "sets them)",
                       set_help="override another config value of the retraining, e.g. --set optim.max_epochs=10")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.set_defaults(func=_run_retrain_long)


def _run_retrain_long(a) -> int:
    from ..config import load_config_file, tree_overrides

    overrides = list(a.overrides)
    if a.config is not None:
        from_file = tree_overrides(load_config_file(a.config), skip=("method",))
        overrides = [o for o in from_file if not o.startswith("video.num_frames=")] + overrides
    r = longclip.retrain_long(a.run, a.out, frames=a.frames, batch_size=a.batch_size, lr=a.lr, overrides=overrides,
                     data=a.data, progress=not a.no_progress)
    print(f"{r['state']}: {r['method']} video encoder on {'+'.join(r['pseudo_labels'])} pseudo-labels, "
          f"{r['frames']['run']} -> {r['frames']['retrained']} frames ({r['scaling']})")
    print(f"encoders written to {r['encoders']}")
    print(f"fine-tune with the same clip length: {r['finetune']}")
    return 0


def _add_filters(sub) -> None:
    p = sub.add_parser("filters", help="first-layer spatial and temporal filters of video encoders as a PNG "
                                       "(XDC Fig. 3), one row per run",
                       description=filters.__doc__.split("\n\n")[0])
    p.add_argument("--encoders", nargs="+", required=True, metavar="RUN_OR_PT|scratch",
                   help="run directories or encoders.pt files (or 'scratch' with --preset), one row each")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--labels", help="comma-separated row titles (default: run folder and method)")
    add_scratch_options(p, "'scratch'", "architecture of 'scratch'", "video.width=0.5", "seed of 'scratch' weights")
    p.set_defaults(func=_run_filters)


def _run_filters(a) -> int:
    from .evaluation import scratch_source

    labels = [t.strip() for t in a.labels.split(",")] if a.labels else None
    encoders = [scratch_source(a) if str(e) == "scratch" and (a.config or a.overrides) else e for e in a.encoders]
    r = filters.filters(encoders, a.out, labels=labels, preset=a.preset, seed=a.seed)
    for row in r["rows"]:
        t = row["temporal"]
        print(f"{row['label']}: spatial grid {row['spatial'].shape[1]}x{row['spatial'].shape[0]} px"
              + (f", temporal grid {t.shape[1]}x{t.shape[0]} px" if t is not None else ", no temporal layer"))
    print(f"written {r['png']}")
    return 0
