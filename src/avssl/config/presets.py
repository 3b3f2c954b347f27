"""The named configs (``avssl presets``) and ``resolve``, the one merge of preset, method, config file and
``--set`` values that every command builds its config with.

    cfg = resolve("cpu-small", "xdc", ["clustering.k=64"])
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from ..errors import ConfigError
from .checks import validate
from .files import load_config_file
from .tree import (
    AVTSConfig, AudioConfig, ClusteringConfig, CrissCrossConfig, LoaderConfig, OptimConfig, PretrainConfig, VideoConfig,
    apply_overrides, did_you_mean, tree_overrides,
)


def _paper() -> PretrainConfig:
    """The XDC paper's Kinetics recipe: R(2+1)D-18 + ResNet-18, 8x224x224 clips, SGD 10/10/30 epochs of 1M clips, k=256.

    Sec. 4.1: R(2+1)D-18 + ResNet-18, 8x224x224 clips at 30 fps (short side 256), 2 s of 40x100
    log-mel. Table 10, "All DCs / Kinetics": epoch size 1M clips (``optim.epoch_size``; Kinetics has
    240K videos, so about 4 clips per video and epoch, each at a random time), batch 32, lr 0.01,
    we/se/te 10/10/30, gamma 0.01, wd 1e-4, early stop (3 rises in a row, Table 9). k=256: Table 2's
    best on Kinetics for UCF101 (74.2); HMDB51's best is 128 (39.0) and ESC50's 64 (78.0). 6
    iterations: "on average 5 to 6 deep clustering iterations" (Sec. 4.2, Study 1). SGD momentum is
    not given in the paper (0.9 here)."""
    cfg = PretrainConfig(preset="xdc-paper")
    cfg.optim.epoch_size = 1_000_000  # Table 10, All DCs, Kinetics: es 1M
    return cfg


def _paper_analysis() -> PretrainConfig:
    """xdc-paper with the cluster analysis's per-modality k: 128 audio clusters, 64 video clusters.

    The clusters of the paper's analysis (Sec. 5, Tables 6, 14 and 15: XDC on Kinetics, last
    iteration) are numbered up to 128 for audio (Table 14's bottom ten are #119-#128) and up to 64 for
    video (Table 15's bottom ten are #55-#64), so that model clustered audio features into k=128 and
    video features into k=64 (``clustering.k_audio``, ``clustering.k_video``). The paper states no
    per-modality k anywhere else; its ablations (Table 2) use one k for both. Everything else is
    xdc-paper (Table 10's Kinetics recipe, 1M clips per epoch)."""
    cfg = _paper()
    cfg.preset = "xdc-paper-analysis"
    cfg.clustering.k_audio, cfg.clustering.k_video = 128, 64  # Tables 14 (#1-#128) and 15 (#1-#64)
    return cfg


def _paper_audioset() -> PretrainConfig:
    """xdc-paper with Table 10's AudioSet recipe: 10/10/45 epochs of 2M clips, early stop, k=256.

    Table 10, "All DCs / AudioSet": epoch size 2M clips, batch 32, lr 0.01, we/se/te 10/10/45, gamma
    0.01, wd 1e-4, early stop. k: Table 2's best after pretraining on AudioSet (2M videos) is 256 for
    UCF101 (84.9) and HMDB51 (48.8) and 128 for ESC50 (85.8); use ``--set clustering.k=128`` for the
    audio task. (On AudioSet-240K the best are 64, 128 and 64.)"""
    cfg = _paper()
    cfg.preset = "xdc-paper-audioset"
    cfg.optim.max_epochs = 45  # Table 10, AudioSet: 10/10/45
    cfg.optim.epoch_size = 2_000_000  # Table 10, AudioSet: es 2M
    return cfg


def _paper_ig() -> PretrainConfig:
    """xdc-paper with Table 10's IG-Kinetics/IG-Random recipe: 1/3/10 epochs of 10M clips, a 0/9/30 last iteration.

    Table 10, "All DCs / IG-Kinetics & IG-Random": epoch size 10M clips, batch 32, lr 0.01, we/se/te
    1/3/10, gamma 0.01, wd 1e-4, no early stop; the last deep-clustering iteration trains 3x longer
    ("IG-Kinetics* & IG-Random*": we/se/te 0/9/30 at the same epoch size,
    ``optim.last_iteration_epochs``). The paper gives no k and no number of iterations for IG (k=256
    and 6 iterations as xdc-paper)."""
    cfg = _paper()
    cfg.preset = "xdc-paper-ig"
    cfg.optim.warmup_epochs, cfg.optim.step_epochs, cfg.optim.max_epochs = 1, 3, 10  # IG-*: 1/3/10, no e-stop
    cfg.optim.early_stop = 0
    cfg.optim.epoch_size = 10_000_000  # Table 10, IG-*: es 10M
    cfg.optim.last_iteration_epochs = [0, 9, 30]  # Table 10, IG-*^*: 0/9/30, 3x longer last iteration
    return cfg


def _avts_paper() -> PretrainConfig:
    """AVTS with the slides' curriculum: 50 epochs of easy negatives, then 40 of 75% easy / 25% hard.

    The slides' "Curriculum learning" table (AVTS-Kinetics accuracy 78.4): stage 1 is epochs 1-50
    with easy negatives only, stage 2 epochs 51-90 with 75% easy and 25% hard negatives
    (``avts.stage_epochs=[50, 40]``, ``avts.hard_fraction=0.25``); no super-hard negatives. The
    epochs are counted through (1-90), and nothing on the slides starts a new optimiser at the switch:
    one optimiser runs through both stages, its state and learning-rate schedule carried over
    (``methods.avts``). No early stop: the stages have fixed lengths.

    The slides give no optimiser, learning rate, batch size, weight decay, epoch size or margin eta.
    This preset keeps xdc-paper's clips (R(2+1)D-18 + ResNet-18, 8x224x224, 2 s of 40x100 log-mel; the
    XDC paper's AVTS rows in Table 7 use R(2+1)D-18) and its SGD values (lr 0.01, momentum 0.9, batch
    32, wd 1e-4) at a constant rate, one pass over the training videos per epoch and avssl's margin
    1.5: avssl's choices, not the slides'."""
    cfg = PretrainConfig(method="avts", preset="avts-paper", iterations=2)
    cfg.avts = AVTSConfig(stage_epochs=[50, 40], hard_fraction=0.25, superhard_fraction=0.0)
    # Not on the slides: constant lr 0.01 (no warm-up, no decay within the 90 epochs), no early stop.
    cfg.optim.warmup_epochs, cfg.optim.step_epochs, cfg.optim.max_epochs = 0, 90, 90
    cfg.optim.early_stop = 0
    return cfg


def _cpu_small() -> PretrainConfig:
    """Small enough for a laptop CPU: quarter-width networks, 8x64x64 clips, 3 short iterations, k=32.

    Quarter-width networks on 8x64x64 clips, 40x100 log-mel, a few short deep-clustering
    iterations, every video decoded once into a memory-mapped cache.
    64x64, not 32x32: on real recordings (RESULTS.md section 5) XDC at 32x32 fell below random
    encoders, because the video encoder could not see the objects both modalities share."""
    return PretrainConfig(
        preset="cpu-small",
        iterations=3,
        video=VideoConfig(width=0.25, resize=72, crop=64),
        audio=AudioConfig(width=0.25),
        clustering=ClusteringConfig(k=32, clips_per_video=2),
        optim=OptimConfig(lr=0.05, batch_size=16, warmup_epochs=1, step_epochs=4, gamma=0.1, max_epochs=5,
                          early_stop=3, val_fraction=0.1),
        loader=LoaderConfig(workers=-1, decoded_cache=True),
    )


def _cpu_tiny() -> PretrainConfig:
    """For tests and smoke runs: 1/8-width networks on 4x16x16 clips, 2 iterations of 2 epochs, k=4."""
    return PretrainConfig(
        preset="cpu-tiny",
        iterations=2,
        video=VideoConfig(width=0.125, num_frames=4, resize=20, crop=16),
        audio=AudioConfig(width=0.125),
        clustering=ClusteringConfig(k=4, clips_per_video=1),
        optim=OptimConfig(lr=0.05, batch_size=8, warmup_epochs=0, step_epochs=10, gamma=0.1, max_epochs=2,
                          early_stop=3, val_fraction=0.2),
        loader=LoaderConfig(workers=0, decoded_cache=True),
    )


def _demo() -> PretrainConfig:
    """The preset of ``avssl demo``: cpu-small at 4x32x32 frames 0.2 s apart, k=16, and enough SGD steps to learn.

    The budget is counted in steps, not passes: an epoch is 1,920 clips (8 per training video of the
    demo world, ``optim.epoch_size``), 60 steps of 32, so 3 iterations of 3 epochs are 540 steps
    (``supervised``: one run of the same 9 epochs, the step decay after epoch 7). k is twice the
    world's 8 classes. Four frames at 5 fps span 0.8 s, two periods of most of the world's motions:
    8 frames at 30 fps (0.27 s, less than one period) left the supervised video encoder at 70% on the
    held-out videos, 4 frames at 5 fps reach about 90% at half the cost of a step (RESULTS.md
    section 11)."""
    cfg = _cpu_small()
    cfg.preset = "demo"
    # The demo world's 64x64 shapes stay recognisable at 32x32 (64x64 clips take 3x longer; RESULTS.md
    # section 6).
    cfg.video.resize, cfg.video.crop = 40, 32
    cfg.video.num_frames, cfg.video.fps = 4, 5.0
    cfg.clustering.k = 16
    cfg.iterations = 3
    cfg.optim = OptimConfig(lr=0.05, batch_size=32, warmup_epochs=1, step_epochs=6, gamma=0.1, max_epochs=3,
                            epoch_size=1920, early_stop=3, val_fraction=0.1)
    return cfg


def _crisscross_paper() -> PretrainConfig:
    """CrissCross's Kinetics-Sound recipe: R(2+1)D-18 + ResNet-18, 8x112x112, Adam + cosine, 100 epochs of 220K clips.

    Sec. 4.1, App. D, F, G; Table S10, Kinetics-Sound row: R(2+1)D-18 on 8
    frames of 112x112 at 16 fps, ResNet-18 on 80x200 log-mel of 2 s (``logmel.CRISSCROSS_LOGMEL``),
    the augmentations of Table 5's best row with Table S1/S2 parameters, Adam (betas 0.9, 0.999) with
    a cosine schedule from 2e-4 to 0 over 100 epochs of 220K clips (es, ``optim.epoch_size``), weight
    decay 1e-4, batch 512, predictors at a constant 2e-3 (10x), mild relaxation (Fig. 4's best),
    projector 512-2048-2048-2048 and predictor 2048-512-2048.

    Mixed precision is bf16 autocast (``precision=auto`` on hardware with native bf16). Not
    reproduced: LARC (the paper wraps Adam in it only at batch 2048) and the AVID variant of
    R(2+1)D-18 (15.4 M parameters; the torchvision layout here has 31.5 M)."""
    return PretrainConfig(
        method="crisscross",
        preset="crisscross-paper",
        iterations=1,
        video=VideoConfig(num_frames=8, fps=16.0, resize=128, crop=112, color_jitter=0.4, flip=True,
                          multiscale=True, grayscale=0.2, blur=0.5, cutout=1.0),
        audio=AudioConfig(n_mels=80, num_frames=200, n_fft=1024, win_length=1024, hop_length=160,
                          volume_jitter=0.2, time_mask=20, freq_mask=10, random_crop=True),
        optim=OptimConfig(optimizer="adam", schedule="cosine", lr=2e-4, weight_decay=1e-4, batch_size=512,
                          warmup_epochs=0, max_epochs=100, epoch_size=220_000, early_stop=0),  # Table S10, KS
        crisscross=CrissCrossConfig(relaxation="mild", projector_dims=[2048, 2048, 2048], predictor_hidden=512,
                                    predictor_lr_scale=10.0),
    )


def _crisscross_paper_audioset() -> PretrainConfig:
    """crisscross-paper with Table S10's AudioSet row: 100 epochs of 3.5M clips, batch 2048, lr 1e-4 to 0.

    Table S10, AudioSet row: batch 2048, epoch size 3.5M clips, 100 epochs, Adam (betas 0.9, 0.999),
    cosine from 1e-4 to 0 for both backbones, predictors at a constant 1e-3 (10x, as
    ``crisscross.predictor_lr_scale``), wd 1e-4. The paper wraps Adam in LARC at batch 2048 (App.
    G.1); LARC is not reproduced. (Table S10's Kinetics400 row ends its cosine at 1e-4 instead of 0,
    which the cosine schedule here, always to 0, cannot express: no preset for it.)"""
    cfg = _crisscross_paper()
    cfg.preset = "crisscross-paper-audioset"
    cfg.optim.lr, cfg.optim.batch_size, cfg.optim.epoch_size = 1e-4, 2048, 3_500_000  # Table S10, AS
    return cfg


PRESETS = {
    "xdc-paper": _paper,
    "xdc-paper-analysis": _paper_analysis,
    "xdc-paper-audioset": _paper_audioset,
    "xdc-paper-ig": _paper_ig,
    "cpu-small": _cpu_small,
    "cpu-tiny": _cpu_tiny,
    "demo": _demo,
    "crisscross-paper": _crisscross_paper,
    "crisscross-paper-audioset": _crisscross_paper_audioset,
    "avts-paper": _avts_paper,
}


def preset(name: str) -> PretrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}{did_you_mean(str(name), PRESETS)} (presets: {', '.join(PRESETS)})")
    return PRESETS[name]()


def preset_summary(name: str) -> str:
    """The first line of the preset function's docstring, without reST markup."""
    doc = (PRESETS[name].__doc__ or "").strip()
    return doc.splitlines()[0].replace("``", "") if doc else ""


DEFAULT_PRESET = "cpu-small"  # of ``avssl pretrain`` without --preset


def resolve(preset_name: str | None = None, method: str | None = None, overrides: Sequence[str] = (),
            config_file=None, default_preset: str = DEFAULT_PRESET,
            check: Callable[[PretrainConfig], PretrainConfig] = validate) -> PretrainConfig:
    """The one merge of every command that builds a config, passed through ``check``; later steps win:

    1. the preset: ``preset_name``; without it the config file's ``preset`` when that names a preset,
       else ``default_preset``;
    2. ``method``, when given;
    3. the values of ``config_file`` (YAML or JSON, any part of the config tree; a run's
       ``config.json`` is one). Its ``method`` and ``preset`` keys yield to an explicit ``method`` and
       ``preset_name``;
    4. ``overrides``, ``section.key=value`` strings in order (the CLI puts ``--set`` first, then the
       ``--seed`` and ``--iterations`` shortcuts).

    ``check`` refuses the merged config's impossible values in one ConfigError: by default the general
    checks (``validate``), which leave a method's own section (``avts.*``, ``crisscross.*``) to the
    method. A command that trains passes ``avssl.methods.validate``, which adds the methods' checks to
    the same message (this layer cannot import the methods).
    """
    given = [key for key, value in (("method", method), ("preset", preset_name)) if value is not None]
    name, merged = config_layers(preset_name, config_file, overrides, default_preset, skip=given)
    cfg = preset(name)
    if method is not None:
        cfg = replace(cfg, method=method)
    return check(apply_overrides(cfg, merged))


def config_layers(preset_name: str | None, config_file=None, overrides: Sequence[str] = (),
                  default_preset: str = DEFAULT_PRESET, skip: Sequence[str] = ("method", "preset")) -> tuple:
    """``(preset, overrides)``: the preset to start from (``preset_name``, else the config file's, else
    ``default_preset``) and what goes over it, lowest first: the values of ``config_file`` without its
    top-level keys in ``skip``, then ``overrides``. ``resolve`` merges this pair; commands that resolve
    one config per run with their own method (demo, sweep) pass it on as ``preset`` and ``--set`` values."""
    tree = load_config_file(config_file) if config_file is not None else {}
    return preset_name or file_preset(tree) or default_preset, [*tree_overrides(tree, skip), *overrides]


def file_preset(tree: dict) -> str | None:
    """The preset a config tree names, when it is one of PRESETS (a run's config.json names its own)."""
    name = tree.get("preset")
    return name if isinstance(name, str) and name in PRESETS else None
