"""The ``avssl extract`` and ``avssl eval {linear,svm,finetune,retrieval,fusion,crossmodal,clusters,sync}`` commands.

Each handler calls the Python API of the same name, which writes JSON and Markdown into ``--out``,
then prints the Markdown summary.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .parser import add_device_options, add_scratch_options


def _floats(text: str, grid: tuple) -> tuple:
    """``paper`` -> the paper's grid, ``crisscross`` -> CrissCross's C grid (App. E.1), else
    comma-separated numbers."""
    if text.strip().lower() in ("paper", "grid"):
        return grid
    if text.strip().lower() == "crisscross":
        from ..evaluation.recipes import CRISSCROSS_CS

        return CRISSCROSS_CS
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected 'paper' or positive numbers separated by commas, got {text!r}")
    return values


def _ints(text: str) -> tuple:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def _common(p, folds: bool = True, modality: bool = True) -> None:
    _encoder_options(p)
    p.add_argument("--data", required=True, help="labelled manifest CSV (with a split column or split_1.. folds)")
    p.add_argument("--out", required=True, help="output folder (results, and features under <out>/features)")
    if modality:
        p.add_argument("--modality", choices=["video", "audio"], default="video", help="which encoder (default video)")
    if folds:
        p.add_argument("--folds", default="all", help="'all' (default), a fold number or a list like 1,3")
    p.add_argument("--frames", type=int, help="video frames per clip (default: as trained; XDC Sec. 6 fine-tunes "
                                              "with 32, at batch 8 and a quarter of the learning rate)")
    p.add_argument("--audio-seconds", type=float, metavar="S",
                   help="seconds of audio per clip (default: as trained; CrissCross evaluates ESC50 on 5 s and "
                        "DCASE on 1 s, Sec. 4.7)")
    add_device_options(p)


def _encoder_options(p) -> None:
    """--encoders, and how to build 'scratch' (random) encoders: --preset < --config < --set, as avssl pretrain."""
    p.add_argument("--encoders", required=True, metavar="RUN_OR_PT|scratch",
                   help="run directory or encoders.pt of a pretraining run, or 'scratch' (random init of --preset)")
    add_scratch_options(p, "--encoders scratch", "architecture and clip settings of --encoders scratch (e.g. cpu-tiny)",
                        "video.crop=112", "seed of scratch weights and of the evaluation (default 0)")


def _extract_options(p) -> None:
    p.add_argument("--cache", metavar="DIR", help="feature cache shared between commands (default <out>/features)")
    p.add_argument("--extract-batch-size", type=int, help="clips per forward pass (default: the encoder's batch size)")


def register(subparsers) -> None:
    """Add ``extract`` and ``eval`` (with its subcommands) to the ``avssl`` command. Light at import: the
    default grids come from ``grids``, the evaluation modules load when a command runs."""
    from ..evaluation.grids import FC_LRS, FULL_LRS, RECALL_KS, SVM_CS
    from ..evaluation.recipes import DEFAULT_FINETUNE_RECIPE, DEFAULT_SVM_RECIPE, FINETUNE_RECIPES, SVM_RECIPES

    p = subparsers.add_parser("extract", help="features of frozen encoders to .npy + index CSV",
                              description="Features of frozen encoders: the average of K uniformly spaced clips per "
                                          "video (or one row per clip), written as .npy arrays with an index CSV; "
                                          "--dense gives (T, D) clip features over whole videos instead.")
    _encoder_options(p)
    p.add_argument("--data", required=True, help="manifest CSV or folder of videos")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--modality", choices=["video", "audio", "both"], default="video", help="which encoder(s)")
    p.add_argument("--clips", type=int, default=10, help="uniformly spaced clips per video (default 10)")
    p.add_argument("--level", choices=["video", "clip"], default="video",
                   help="one row per video (the clips' average) or one per clip")
    add_device_options(p)
    _extract_options(p)
    d = p.add_argument_group("dense features for temporal localization (XDC Sec. 7): one (T, D) .npy per video "
                             "+ index.csv; --clips and --level do not apply")
    d.add_argument("--dense", action="store_true", help="a clip every --stride seconds over each whole video")
    d.add_argument("--stride", type=float, default=1.0, help="seconds between clip starts (default 1)")
    d.add_argument("--clip-len", type=int, help="video frames per clip (default: as the encoder was trained)")
    d.add_argument("--max-memory-mb", type=float, default=512,
                   help="decoded frames held at once, per video (default 512; long videos are decoded in chunks)")
    p.set_defaults(func=_run_extract)

    ev = subparsers.add_parser("eval", help="downstream evaluation: linear, svm, finetune, retrieval, fusion, "
                                                 "crossmodal, clusters, sync",
                               description="Downstream evaluation of pretrained (or random, 'scratch') encoders. "
                                           "Every evaluation writes <name>.json and a readable <name>.md into --out "
                                           "and prints the Markdown.")
    sub = ev.add_subparsers(dest="eval_command", metavar="EVALUATION", required=True)

    p = sub.add_parser("linear", help="fc-only: linear classifier on frozen clip features (XDC Table 5)",
                       description="The XDC paper's fc-only protocol: a linear classifier on frozen clip features, "
                                   "the learning rate chosen from Table 12's grid on a validation split carved from "
                                   "the training videos (never on test); a test video's prediction averages "
                                   "--test-clips uniformly spaced clips. Reports each fold and the mean.")
    _common(p)
    _extract_options(p)
    p.add_argument("--train-clips", type=int, default=10, help="uniform clips per training video (default 10)")
    p.add_argument("--test-clips", type=int, default=10, help="uniform clips averaged per test video (default 10)")
    p.add_argument("--lrs", type=lambda t: _floats(t, FC_LRS), default=FC_LRS,
                   help="learning rates, chosen on validation ('paper' = Table 12 fc-only grid, the default)")
    p.add_argument("--epochs", type=int, default=32, help="epochs on features (default 32 = Table 11 shape x4)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size")
    p.add_argument("--val-fraction", type=float, default=0.1, help="training videos held out to choose the lr")
    p.add_argument("--pool", choices=["avg", "max", "crisscross"], default="avg",
                   help="pooling of the final convolution map: avg (as trained, default), max, or crisscross "
                        "(CrissCross App. E.1's max-pool windows, flattened)")
    p.set_defaults(func=_run_linear)

    p = sub.add_parser("svm", help="linear SVM on frozen video-level features, C chosen on validation",
                       description="A linear SVM on frozen video-level features (the average of --clips clips), its "
                                   "cost C chosen on a validation split of the training videos (CrissCross App. E).")
    _common(p)
    _extract_options(p)
    p.add_argument("--recipe", choices=list(SVM_RECIPES), default=DEFAULT_SVM_RECIPE,
                   help="named settings (C grid, pooling, clips, audio seconds): avssl (default) or CrissCross "
                        "App. E.1's (crisscross for UCF101/HMDB51, crisscross-esc50, crisscross-dcase); the options "
                        "below replace the recipe's values")
    p.add_argument("--clips", type=int, help="uniform clips averaged per video (default: the recipe's, 10)")
    p.add_argument("--cs", type=lambda t: _floats(t, SVM_CS),
                   help="costs C to sweep ('crisscross' = App. E.1's grid; default: the recipe's)")
    p.add_argument("--pool", choices=["avg", "max", "crisscross"], help="pooling of the final convolution map "
                   "(default: the recipe's; crisscross = App. E.1's max-pool windows, flattened)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="training videos held out to choose C")
    p.set_defaults(func=_run_svm)

    p = sub.add_parser("finetune", help="full fine-tuning of the encoder with a new fc (XDC Tables 11-12)",
                       description="Full fine-tuning of the encoder with a new fc layer (XDC Tables 11-12): warm-up "
                                   "and step decay over --epochs, the learning rate chosen on validation when "
                                   "several are given; test videos average --test-clips clips.")
    _common(p)
    p.add_argument("--recipe", choices=list(FINETUNE_RECIPES), default=DEFAULT_FINETUNE_RECIPE,
                   help="named settings: xdc (default: Table 11's schedule, ~11 clips per training video and "
                        "epoch), xdc-ucf101/hmdb51/esc50 (Table 11's epoch size and Table 12's grid), "
                        "crisscross-{ucf101,hmdb51}-{8,32}f (CrissCross Table S11); the options below replace "
                        "the recipe's values")
    p.add_argument("--lrs", type=lambda t: _floats(t, FULL_LRS),
                   help="base learning rate(s); several are chosen on validation ('paper' = Table 12 Full grid); "
                        "default: the recipe's (xdc: 0.01)")
    p.add_argument("--epochs", type=int, help="total epochs; warm-up and milestones scale with them "
                                              "(default: the recipe's, xdc: 8)")
    p.add_argument("--batch-size", type=int, help="training batch size (default: the recipe's, xdc: 32)")
    p.add_argument("--epoch-size", type=int, help="clips per epoch (default: the recipe's; xdc: 11 per training "
                                                  "video)")
    p.add_argument("--pool", choices=["avg", "max"], help="final pooling: avg (as trained) or max (adaptive "
                                                          "max-pooling, CrissCross App. E.2); default: the recipe's")
    p.add_argument("--test-clips", type=int, default=10, help="uniform clips averaged per test video")
    p.add_argument("--val-fraction", type=float, default=0.1, help="training videos held out to choose the lr")
    p.add_argument("--report-grid-best", action="store_true",
                   help="also fine-tune every other rate on all of train and report the best test accuracy over "
                        "the grid (the papers' way), labelled, beside the validation choice")
    p.set_defaults(func=_run_finetune)

    p = sub.add_parser("retrieval", help="test videos query training videos; recall@k (CrissCross App. E.3)",
                       description="Video retrieval (CrissCross App. E.3): each test video's frozen feature queries "
                                   "the training videos; a hit is a neighbour of the same class; recall@k.")
    _common(p)
    _extract_options(p)
    p.add_argument("--clips", type=int, default=10, help="uniform clips averaged per video")
    p.add_argument("--ks", type=_ints, default=RECALL_KS, help="recall cut-offs (default 1,5,20)")
    p.set_defaults(func=_run_retrieval)

    p = sub.add_parser("fusion", help="late fusion: a+v concatenated frozen features beside v and a alone "
                                      "(CrissCross Table 2)",
                       description="Late fusion (CrissCross Table 2, 'a+v'): the L2-normalised video-level features "
                                   "of both encoders concatenated, classified beside each modality alone; videos "
                                   "with both modalities.")
    _common(p, modality=False)
    _extract_options(p)
    p.add_argument("--classifier", choices=["svm", "linear"], default="svm",
                   help="linear SVM with C chosen on validation (default, CrissCross), or the fc-only classifier")
    p.add_argument("--clips", type=int, default=10, help="uniform clips averaged per video (default 10)")
    p.add_argument("--cs", type=lambda t: _floats(t, SVM_CS), default=SVM_CS, help="SVM costs C to sweep")
    p.add_argument("--lrs", type=lambda t: _floats(t, FC_LRS), default=FC_LRS, help="fc-only learning rates")
    p.add_argument("--val-fraction", type=float, default=0.2, help="training videos held out to choose C or the lr")
    p.set_defaults(func=_run_fusion)

    p = sub.add_parser("crossmodal", help="video queries retrieve audio and audio queries video on held-out videos, "
                                          "recall@k (AVTS and CrissCross runs)",
                       description="Cross-modal retrieval on held-out videos: video queries rank the audio of all "
                                   "videos and audio queries the video, recall@k of the pair and of the label. Needs "
                                   "a run whose method embeds both modalities together (AVTS, CrissCross); other "
                                   "methods are reported as not applicable.")
    p.add_argument("--encoders", required=True, metavar="RUN_OR_PT", help="run directory or encoders.pt")
    p.add_argument("--data", required=True, help="manifest CSV or folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default="test", help="the held-out part (default test; all videos if absent)")
    p.add_argument("--clips", type=int, default=3, help="uniform audio-visual clips per video (default 3)")
    p.add_argument("--ks", type=_ints, default=RECALL_KS, help="recall cut-offs (default 1,5,20)")
    p.add_argument("--batch-size", type=int, help="clips per forward pass (default: the run's batch size)")
    add_device_options(p)
    p.set_defaults(func=_run_crossmodal)

    p = sub.add_parser("clusters", help="purity/NMI/ARI, top and bottom clusters, picture grid and HTML of a run",
                       description="A report on a pretraining run's clusters: purity, NMI and ARI against labels, the "
                                   "top and bottom clusters, a picture grid of the clips nearest each centroid, a "
                                   "t-SNE picture of the features coloured by cluster and by label, and an HTML page "
                                   "whose pictures link to the clips and play a short preview of each; --iteration all "
                                   "shows every iteration's clustering.")
    p.add_argument("--run", required=True, help="pretraining run directory")
    p.add_argument("--data", help="labelled manifest matched by path (default: the labels in the run's videos.csv)")
    p.add_argument("--clustering", help="one clustering (default: every clusters/*_assignments.npy)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--top", type=int, default=10, help="clusters listed at the top and bottom (default 10)")
    p.add_argument("--grid-rows", type=int, default=6, help="top clusters shown in the picture grid")
    p.add_argument("--grid-cols", type=int, default=6, help="videos per cluster in the grid")
    p.add_argument("--tsne-points", type=int, default=2000, metavar="N",
                   help="t-SNE picture of the features of at most N clustered videos (a seeded subsample; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the t-SNE and of its subsample")
    p.add_argument("--iteration", default="last", metavar="last|all|N",
                   help="whose clustering: the run's last (default), iteration N, or all of them (a page that "
                        "moves between iterations)")
    p.add_argument("--no-previews", action="store_true",
                   help="no short looping GIF of each clip in the grid (default: one each, shown on the page)")
    p.set_defaults(func=_run_clusters)

    p = sub.add_parser("sync", help="audio-visual synchronisation accuracy, in sync vs another video's audio "
                                    "(AVTS slides; AVTS and CrissCross runs)",
                       description="AVTS's synchronisation accuracy: tell a clip's frames with their own audio from "
                                   "the frames with another video's audio (chance 50%). The run's method scores each "
                                   "pair, a threshold is chosen on the train videos and accuracy and ROC AUC are "
                                   "reported on the others.")
    p.add_argument("--encoders", required=True, metavar="RUN_OR_PT", help="run directory or encoders.pt")
    p.add_argument("--data", required=True, help="manifest CSV or folder; a split column (train/test) picks the "
                                                 "videos that choose the threshold (train) and report (test)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--clips", type=int, default=3, help="uniformly spaced clips (pairs) per video (default 3)")
    p.add_argument("--fit-fraction", type=float, default=0.5,
                   help="without a train/test split column: videos that choose the threshold (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pairing and of the fit/report split")
    p.add_argument("--batch-size", type=int, help="clips per forward pass (default: the run's batch size)")
    add_device_options(p)
    p.set_defaults(func=_run_sync)

    # The one place every command of this module gets its --out folder: checked (not a file) and locked
    # for the command's duration, so two processes never write one output folder (``runlock``).
    for parser in [subparsers.choices["extract"], *sub.choices.values()]:
        parser.set_defaults(func=_holding_out(parser.get_default("func")))


def _holding_out(handler):
    """``handler(args)`` run while holding the lock of ``args.out`` (created if needed)."""

    def run(a) -> int:
        from ..runlock import RunLock

        with RunLock(a.out):
            return handler(a)

    run.__name__ = run.__qualname__ = getattr(handler, "__name__", "run")
    return run


def _source(a) -> dict:
    return {"preset": a.preset, "seed": a.seed, "device": a.device, "progress": not a.no_progress}


def _encoders(a):
    """``--encoders`` (for ``scratch`` with ``--config`` or ``--set``: random encoders of that config),
    run on ``--frames``-frame clips when that is given."""
    custom = getattr(a, "config", None) is not None or bool(getattr(a, "overrides", None))
    if custom and str(a.encoders) != "scratch":
        from ..errors import ConfigError

        raise ConfigError(f"--config and --set only apply to --encoders scratch; {a.encoders} carries its own settings")
    source = scratch_source(a) if custom else a.encoders
    if getattr(a, "frames", None) is None and getattr(a, "audio_seconds", None) is None:
        return source
    from ..evaluation.features import load_source, with_audio_seconds, with_frames

    return with_audio_seconds(with_frames(load_source(source, a.preset, a.seed), getattr(a, "frames", None)),
                              getattr(a, "audio_seconds", None))


def scratch_source(a):
    """Random ('scratch') encoders of ``--preset``, ``--config`` and ``--set``, merged as ``avssl pretrain``
    merges them (preset < config file < --set), seeded with ``--seed``."""
    from dataclasses import replace

    from ..config import config_layers, resolve
    from ..runs import scratch_encoders
    from ..errors import ConfigError
    from ..evaluation.features import load_source

    if not config_layers(a.preset, a.config, default_preset="")[0]:
        raise ConfigError("--encoders scratch needs --preset NAME, or a --config file that names a preset "
                          "(a run's config.json does)")
    cfg = resolve(a.preset, None, a.overrides, config_file=a.config)
    settings = " + ".join([cfg.preset, *([Path(a.config).name] if a.config else []), *a.overrides])
    return replace(load_source(scratch_encoders(cfg, seed=a.seed)), name=f"scratch ({settings}, seed {a.seed})")


def _extract(a) -> dict:
    return {"cache_dir": a.cache, "extract_batch_size": a.extract_batch_size}


def _print(result: dict) -> int:
    print(Path(result["report"]["markdown"]).read_text())
    return 0


def _run_extract(a) -> int:
    from ..evaluation.features import extract

    encoders = _encoders(a)
    if a.dense:
        from ..evaluation.dense import dense_extract

        return _print(dense_extract(encoders, a.data, a.out, modality=a.modality, stride=a.stride,
                                    clip_len=a.clip_len, max_memory_mb=a.max_memory_mb,
                                    batch_size=a.extract_batch_size, **_source(a)))
    return _print(extract(encoders, a.data, a.out, modality=a.modality, clips=a.clips, level=a.level,
                          cache_dir=a.cache, batch_size=a.extract_batch_size, **_source(a)))


def _run_linear(a) -> int:
    from ..evaluation.linear import linear_probe

    return _print(linear_probe(_encoders(a), a.data, a.out, modality=a.modality, folds=a.folds,
                               train_clips=a.train_clips, test_clips=a.test_clips, lrs=a.lrs, epochs=a.epochs,
                               batch_size=a.batch_size, val_fraction=a.val_fraction, pool=a.pool, **_extract(a),
                               **_source(a)))


def _run_svm(a) -> int:
    from ..evaluation.svm import svm_probe

    return _print(svm_probe(_encoders(a), a.data, a.out, modality=a.modality, folds=a.folds, recipe=a.recipe,
                            clips=a.clips, cs=a.cs, pool=a.pool, audio_seconds=a.audio_seconds,
                            val_fraction=a.val_fraction, **_extract(a), **_source(a)))


def _run_finetune(a) -> int:
    from ..evaluation.finetune import finetune

    return _print(finetune(_encoders(a), a.data, a.out, modality=a.modality, folds=a.folds, recipe=a.recipe,
                           lrs=a.lrs, epochs=a.epochs, batch_size=a.batch_size, epoch_size=a.epoch_size,
                           frames=a.frames, pool=a.pool, test_clips=a.test_clips, val_fraction=a.val_fraction,
                           grid_best=a.report_grid_best, **_source(a)))


def _run_retrieval(a) -> int:
    from ..evaluation.retrieval import retrieval

    return _print(retrieval(_encoders(a), a.data, a.out, modality=a.modality, folds=a.folds, clips=a.clips,
                            ks=a.ks, **_extract(a), **_source(a)))


def _run_fusion(a) -> int:
    from ..evaluation.fusion import fusion

    return _print(fusion(_encoders(a), a.data, a.out, classifier=a.classifier, folds=a.folds, clips=a.clips,
                         cs=a.cs, lrs=a.lrs, val_fraction=a.val_fraction, **_extract(a), **_source(a)))


def _run_crossmodal(a) -> int:
    from ..evaluation.crossmodal import crossmodal

    return _print(crossmodal(a.encoders, a.data, a.out, split=a.split, clips=a.clips, ks=a.ks, device=a.device,
                             batch_size=a.batch_size, progress=not a.no_progress))


def _run_sync(a) -> int:
    from ..evaluation.sync import sync_accuracy

    return _print(sync_accuracy(a.encoders, a.data, a.out, clips=a.clips, fit_fraction=a.fit_fraction, seed=a.seed,
                                device=a.device, batch_size=a.batch_size, progress=not a.no_progress))


def _run_clusters(a) -> int:
    from ..evaluation.cluster_report import cluster_report

    return _print(cluster_report(a.run, a.data, a.out, clustering=a.clustering, top=a.top, grid_rows=a.grid_rows,
                                 grid_cols=a.grid_cols, tsne_points=a.tsne_points, seed=a.seed,
                                 iteration=a.iteration, previews=not a.no_previews))
