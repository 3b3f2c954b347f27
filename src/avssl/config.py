"""Configuration as plain data: nested dataclasses, named presets, ``section.key=value`` overrides.

A run's resolved config is written to its run directory as JSON, so every number that shaped a
result can be read back (and a run resumed with exactly the same settings).
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from .errors import ConfigError


@dataclass
class VideoConfig:
    encoder: str = "r2plus1d_18"  # r2plus1d_18 | r3d_18
    width: float = 1.0  # channel multiplier (1.0 = the paper's network)
    midplanes: str = "torchvision"  # torchvision | xdc (the official XDC release's layout)
    num_frames: int = 8
    fps: float = 30.0
    resize: int = 256  # short side before cropping
    crop: int = 224
    color_jitter: float = 0.0
    flip: bool = True
    # CrissCross's stronger augmentation set (Table 5 / S1); off by default so other methods are unchanged.
    multiscale: bool = False  # multi-scale crop (min area 0.08) instead of a plain random crop
    grayscale: float = 0.0  # probability of grey scale (Table S1: 0.2)
    blur: float = 0.0  # probability of Gaussian blur (Table S1: 0.5)
    cutout: float = 0.0  # probability of one cutout square (Table S1: every clip)


@dataclass
class AudioConfig:
    encoder: str = "audio_resnet18"
    width: float = 1.0
    sample_rate: int = 16000
    duration: float = 2.0  # seconds of audio per clip
    n_mels: int = 40
    num_frames: int = 100
    n_fft: int = 1024
    win_length: int = 640
    hop_length: int = 320
    volume_jitter: float = 0.1
    time_mask: int = 0
    freq_mask: int = 0
    random_crop: bool = False  # CrissCross "RC" (Table S2): BYOL-A's random resized crop of the log-mel


@dataclass
class ClusteringConfig:
    k: int = 256  # clusters of every clustering, unless a per-clustering value below is set
    # Per-modality k (XDC's cluster analysis, Tables 14 and 15: 64 video and 128 audio clusters on
    # Kinetics; the preset xdc-paper-analysis).
    k_video: Optional[int] = None
    k_audio: Optional[int] = None
    k_joint: Optional[int] = None  # CDC's clustering of concatenated features
    clips_per_video: int = 1  # fixed clips whose features are averaged per video before clustering
    pca_dim: Optional[int] = None  # DeepCluster's PCA-whitening (None: off)
    l2_normalize: bool = True
    niter: int = 20
    # DeepCluster's uniform sampling over clusters: with one label table (CDC) by the sampler; when heads
    # predict different tables (SDC, MDC, XDC) by per-video loss weights, each head over its own table's
    # clusters (methods/deep_clustering.py).
    balanced_sampling: bool = False
    init: str = "random"  # random: cluster random encoders' features | handcrafted (first iteration only)
    # nearest: each video takes its nearest k-means centroid (the papers) | sinkhorn: balanced labels,
    # every cluster about n/k videos (SeLaVi's equipartition; clustering/sinkhorn.py)
    assign: str = "nearest"
    sinkhorn_epsilon: float = 0.2  # entropy of the balanced assignment, on standardised scores
    gpu: bool = True  # faiss GPU k-means when available

    def k_for(self, name: str) -> int:
        return getattr(self, f"k_{name}", None) or self.k


@dataclass
class OptimConfig:
    optimizer: str = "sgd"  # sgd | adam
    schedule: str = "step"  # step (warm-up, then x gamma every step_epochs) | cosine (warm-up, cosine to 0)
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 32
    warmup_epochs: int = 10  # Table 9's "we"
    step_epochs: int = 10  # "se": decay the learning rate by gamma every se epochs
    gamma: float = 0.01
    max_epochs: int = 30  # "te"
    epoch_size: Optional[int] = None  # clips per epoch ("es"); None: one pass over the training videos
    # [we, se, te] of the last deep-clustering iteration, which may train longer (XDC Table 10's IG-Kinetics*
    # and IG-Random*: [0, 9, 30]); null: the same warmup_epochs/step_epochs/max_epochs as every iteration.
    last_iteration_epochs: Optional[list] = None
    early_stop: int = 3  # stop after this many consecutive increases of the validation loss (0: off)
    val_fraction: float = 0.05  # training videos held out to measure the pseudo-label validation loss
    # Training clips over which BatchNorm statistics are recomputed with frozen weights after every epoch
    # and before clustering ("precise BN", engine/precise_bn.py), so the eval-mode network matches the
    # weights; 0 keeps the running averages of training.
    precise_bn_clips: int = 256
    clip_grad_norm: Optional[float] = None  # clip the gradient's global L2 norm to this value (None: off)


@dataclass
class AVTSConfig:
    """AVTS (Korbar et al. 2018): contrastive audio-video synchronisation with a two-stage curriculum."""

    # eta of the hinge max(eta - d, 0)^2, on unit-length embeddings (d in [0, 2]): beyond sqrt(2), the
    # distance of unrelated (orthogonal) embeddings, so out-of-sync pairs are pushed apart from the start.
    margin: float = 1.5
    embed_dim: int = 128  # embeddings compared by L2 distance (a linear layer on each encoder)
    # Epochs of stage 1 (easy negatives only) and stage 2 (the mix below); None: optim.max_epochs each.
    # The slides' curriculum is [50, 40]; 0 skips a stage ([0, 90]: the single-stage 75/25 baseline).
    stage_epochs: Optional[list] = None
    hard_fraction: float = 0.25  # of stage 2's negatives: same video, audio not overlapping the frames
    superhard_fraction: float = 0.0  # of stage 2's negatives: same video, overlapping but shifted
    superhard_min_shift: float = 0.5  # seconds a super-hard negative's audio is shifted at least


CRISSCROSS_TERMS = ("v1v2", "a1a2", "intra", "sync", "async")
RELAXATIONS = ("none", "mild", "medium", "extreme", "mixed")


@dataclass
class CrissCrossConfig:
    """CrissCross (Sarkar and Etemad): SimSiam-style intra-modal, synchronous and asynchronous
    cross-modal losses over two audio-visual views of a video."""

    relaxation: str = "mild"  # Sec. 4.3: none | mild (50% overlap) | medium (adjacent) | extreme | mixed
    losses: str = "intra+sync+async"  # Eq. 5; any "+"-joined subset of v1v2, a1a2, intra, sync, async (Table 1)
    projector_dims: Optional[list] = None  # Table S7 (512 -> 2048 -> 2048 -> 2048); None: 4x the encoder's width
    predictor_hidden: Optional[int] = None  # Table S8 (2048 -> 512 -> 2048); None: the encoder's width
    predictor_lr_scale: float = 10.0  # the predictors' constant learning rate, in units of optim.lr (Sec. 4.4)

    def terms(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.losses.split("+") if t.strip())


@dataclass
class LoaderConfig:
    workers: int = -1  # DataLoader worker processes; -1: auto (data.dataset.num_workers: none on a 2-core CPU)
    decoded_cache: bool = False  # decode each video once into memory-mapped arrays (small presets)
    cache_dir: Optional[str] = None


@dataclass
class LoggingConfig:
    """Where a run's numbers go besides ``metrics.jsonl`` (which is always written)."""

    # TensorBoard event files in <run>/tensorboard (avssl.tracking): null (auto) writes them when the
    # tensorboard package is installed (pip install 'avssl[tensorboard]'), true asks for them (a one-line
    # warning when the package is missing), false never.
    tensorboard: Optional[bool] = None


@dataclass
class PretrainConfig:
    method: str = "xdc"
    preset: str = "xdc-paper"
    # Deep-clustering iterations (the paper converged after 5-6). AVTS and CrissCross set their own
    # (AVTS: its 2 curriculum stages; CrissCross: 1) and ignore this value.
    iterations: int = 6
    seed: int = 0
    precision: str = "auto"  # auto (bf16 where the hardware has it natively) | fp32 | bf16 (autocast)
    memory_format: str = "auto"  # of the video path: auto (channels_last_3d with bf16) | contiguous | channels_last_3d
    sync_batchnorm: bool = False  # under torchrun on GPUs: batch statistics over all ranks
    device: str = "auto"
    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    avts: AVTSConfig = field(default_factory=AVTSConfig)
    crisscross: CrissCrossConfig = field(default_factory=CrissCrossConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        return _from_dict(cls, d, "")

    def save(self, path) -> None:
        from .engine.checkpoint import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path) -> "PretrainConfig":
        with open(path) as f:
            return cls.from_dict(json.load(f))


def _from_dict(cls, d: dict, prefix: str, problems: list | None = None):
    """Build ``cls`` from nested dicts, checking every key and value type; one ConfigError for all."""
    top = problems is None
    problems = [] if top else problems
    if not isinstance(d, dict):
        problems.append(f"{prefix.rstrip('.')} is a config section (key=value pairs), got {d!r}")
        return None
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ConfigError("; ".join(f"unknown config key {prefix + u!r}{did_you_mean(prefix + u)}" for u in unknown)
                          + f" (known in {prefix.rstrip('.') or 'the top level'}: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in d.items():
        sub = _section_type(cls, name)
        if sub:
            kwargs[name] = _from_dict(sub, value, f"{prefix}{name}.", problems)
        else:
            expected = _type_problem(known[name].type, value)
            if expected:
                problems.append(f"{prefix}{name} must be {expected}, got {value!r}")
            kwargs[name] = value
    if top and problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return None if problems else cls(**kwargs)


_TYPE_CHECKS = {
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "list": ("a list", lambda v: isinstance(v, (list, tuple))),
    "tuple": ("a list", lambda v: isinstance(v, (list, tuple))),
}


def _type_problem(annotation: str, value) -> str | None:
    """What a value of a field annotated ``annotation`` (a string: annotations are postponed) should
    be, or None when it fits. Unknown annotations accept anything."""
    optional = annotation.startswith("Optional[")
    base = annotation[len("Optional["):-1] if optional else annotation
    if optional and value is None:
        return None
    check = _TYPE_CHECKS.get(base.split("[")[0])
    if check is None or check[1](value):
        return None
    return check[0] + (" or null" if optional else "")


def _section_type(cls, name):
    default = next(f for f in fields(cls) if f.name == name).default_factory
    return default if dataclasses.is_dataclass(default) else None


# --- presets -------------------------------------------------------------------------------------

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
    """The preset of ``avssl demo``: cpu-small at 8x32x32, k=16, and enough SGD steps to learn.

    The budget is counted in steps, not passes: an epoch is 1,920 clips (8 per training video of the
    demo world, ``optim.epoch_size``), 60 steps of 32, so 3 iterations of 3 epochs are 540 steps
    (``supervised``: one run of the same 9 epochs, the step decay after epoch 7). With one pass per
    epoch (7 steps) the supervised video encoder reached 27.5% on the held-out videos, with 360 steps
    67%, with 480-540 steps over 80% (RESULTS.md sections 9 and 10). k is twice the world's 8 classes."""
    cfg = _cpu_small()
    cfg.preset = "demo"
    # The demo world's 64x64 shapes stay recognisable at 32x32 (64x64 clips take 3x longer; RESULTS.md
    # section 6).
    cfg.video.resize, cfg.video.crop = 40, 32
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


def apply_overrides(cfg: PretrainConfig, overrides: list[str]) -> PretrainConfig:
    """Apply ``section.key=value`` strings (values parsed as JSON when possible, else as strings)."""
    d = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = d
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a config section{did_you_mean(key)}")
            node = node[p]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {key!r}{did_you_mean(key)}")
        node[parts[-1]] = value
    return PretrainConfig.from_dict(d)


def validate(cfg: PretrainConfig) -> PretrainConfig:
    """Reject impossible values with one clear message before any work starts."""
    problems = []

    def need(ok: bool, msg: str) -> None:
        if not ok:
            problems.append(msg)

    o, v, a, c = cfg.optim, cfg.video, cfg.audio, cfg.clustering
    need(o.lr > 0, f"optim.lr must be > 0, got {o.lr}")
    need(o.optimizer in ("sgd", "adam"), f"optim.optimizer must be sgd or adam, got {o.optimizer!r}")
    need(o.schedule in ("step", "cosine"), f"optim.schedule must be step or cosine, got {o.schedule!r}")
    need(o.batch_size >= 2, f"optim.batch_size must be >= 2 (BatchNorm needs 2 clips per step), got {o.batch_size}")
    need(o.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {o.weight_decay}")
    need(o.max_epochs >= 1, f"optim.max_epochs must be >= 1, got {o.max_epochs}")
    need(o.warmup_epochs >= 0 and o.step_epochs >= 1, "optim.warmup_epochs must be >= 0 and step_epochs >= 1")
    need(0 < o.gamma <= 1, f"optim.gamma must be in (0, 1], got {o.gamma}")
    need(0 <= o.val_fraction < 0.5, f"optim.val_fraction must be in [0, 0.5), got {o.val_fraction}")
    need(o.early_stop >= 0, "optim.early_stop must be >= 0")
    need(o.precise_bn_clips >= 0, f"optim.precise_bn_clips must be >= 0, got {o.precise_bn_clips}")
    need(o.clip_grad_norm is None or o.clip_grad_norm > 0,
         f"optim.clip_grad_norm must be null (off) or > 0, got {o.clip_grad_norm}")
    need(cfg.iterations >= 1, f"iterations must be >= 1, got {cfg.iterations}")
    need(v.num_frames >= 1 and v.fps > 0, "video.num_frames and video.fps must be positive")
    need(0 < v.crop <= v.resize, f"video.crop ({v.crop}) must be positive and <= video.resize ({v.resize})")
    need(v.width > 0 and a.width > 0, "encoder widths must be > 0")
    need(v.midplanes in ("torchvision", "xdc"), f"video.midplanes must be torchvision or xdc, got {v.midplanes!r}")
    need(a.duration > 0 and a.sample_rate > 0, "audio.duration and audio.sample_rate must be positive")
    for name in ("k", "k_video", "k_audio", "k_joint"):
        val = getattr(c, name)
        need(val is None or val >= 2, f"clustering.{name} must be >= 2, got {val}")
    need(c.clips_per_video >= 1, "clustering.clips_per_video must be >= 1")
    need(cfg.loader.workers >= -1, f"loader.workers must be >= 0, or -1 for auto, got {cfg.loader.workers}")
    need(c.init in ("random", "handcrafted"), f"clustering.init must be random or handcrafted, got {c.init!r}")
    need(c.assign in ("nearest", "sinkhorn"), f"clustering.assign must be nearest or sinkhorn, got {c.assign!r}")
    need(c.sinkhorn_epsilon > 0, f"clustering.sinkhorn_epsilon must be > 0, got {c.sinkhorn_epsilon}")
    need(cfg.precision in ("auto", "fp32", "bf16"), f"precision must be auto, fp32 or bf16, got {cfg.precision!r}")
    need(cfg.memory_format in ("auto", "contiguous", "channels_last_3d"),
         f"memory_format must be auto, contiguous or channels_last_3d, got {cfg.memory_format!r}")
    for name in ("grayscale", "blur", "cutout"):
        need(0 <= getattr(v, name) <= 1, f"video.{name} is a probability in [0, 1], got {getattr(v, name)}")
    _check_every_field(cfg, need)
    _check_method_sections(cfg, need)
    need(cfg.logging.tensorboard in (None, True, False),
         f"logging.tensorboard must be true, false or null (auto), got {cfg.logging.tensorboard!r}")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return cfg


VIDEO_ENCODERS = ("r2plus1d_18", "r3d_18")  # the video builders of models.ENCODERS
AUDIO_ENCODERS = ("audio_resnet18",)
SEED_LIMIT = 2**30  # seeds are combined with iteration numbers for faiss, whose seed is a 32-bit int


def _check_every_field(cfg: PretrainConfig, need) -> None:
    """What validate's first checks leave open: no NaN or infinity in any field, and every field in its
    range or among its choices, so that nothing accepted here fails later in a run."""
    for name, value in _leaves(cfg.to_dict()):
        if isinstance(value, float) and not math.isfinite(value):
            need(False, f"{name} must be a finite number, got {value}")
    o, v, a, c, lo = cfg.optim, cfg.video, cfg.audio, cfg.clustering, cfg.loader
    need(0 <= cfg.seed < SEED_LIMIT, f"seed must be in [0, {SEED_LIMIT - 1}], got {cfg.seed}")
    from .methods import METHODS  # here: the methods import this module

    need(cfg.method in METHODS, f"method must be one of {', '.join(sorted(METHODS))}, got {cfg.method!r}")
    device = _device_problem(cfg.device)
    need(device is None, device or "")
    need(0 <= o.momentum < 1, f"optim.momentum must be in [0, 1), got {o.momentum}")
    need(o.epoch_size is None or o.epoch_size >= o.batch_size,
         f"optim.epoch_size (clips per epoch) must be null (one pass over the training videos) or at least "
         f"optim.batch_size ({o.batch_size}), got {o.epoch_size}")
    last = o.last_iteration_epochs
    need(last is None or (isinstance(last, list) and len(last) == 3
                          and all(isinstance(e, int) and not isinstance(e, bool) for e in last)
                          and last[0] >= 0 and last[1] >= 1 and last[2] >= 1),
         f"optim.last_iteration_epochs must be null or [warmup, step, total] epochs of the last iteration "
         f"(warmup >= 0, step and total >= 1), e.g. [0, 9, 30]; got {last}")
    need(c.niter >= 1, f"clustering.niter (k-means iterations) must be >= 1, got {c.niter}")
    need(c.pca_dim is None or c.pca_dim >= 1, f"clustering.pca_dim must be null (off) or >= 1, got {c.pca_dim}")
    need(v.encoder in VIDEO_ENCODERS, f"video.encoder must be one of {', '.join(VIDEO_ENCODERS)}, got {v.encoder!r}")
    need(a.encoder in AUDIO_ENCODERS, f"audio.encoder must be one of {', '.join(AUDIO_ENCODERS)}, got {a.encoder!r}")
    need(0 <= v.color_jitter <= 1, f"video.color_jitter must be in [0, 1], got {v.color_jitter}")
    need(0 <= a.volume_jitter < 1, f"audio.volume_jitter must be in [0, 1), got {a.volume_jitter}")
    need(0 <= a.time_mask <= a.num_frames, f"audio.time_mask must be in [0, audio.num_frames = {a.num_frames}], "
                                           f"got {a.time_mask}")
    need(0 <= a.freq_mask <= a.n_mels, f"audio.freq_mask must be in [0, audio.n_mels = {a.n_mels}], got {a.freq_mask}")
    need(lo.cache_dir is None or bool(str(lo.cache_dir).strip()), "loader.cache_dir must be null (default) or a folder")
    if all(isinstance(x, int) and not isinstance(x, bool) and x > 0
           for x in (a.sample_rate, a.n_mels, a.num_frames, a.n_fft, a.win_length, a.hop_length)):
        from .data.logmel import LogMelConfig  # its own checks: n_fft even, frames matching the hop...

        try:
            LogMelConfig(sample_rate=a.sample_rate, duration=a.duration, n_mels=a.n_mels, n_fft=a.n_fft,
                         win_length=a.win_length, hop_length=a.hop_length, num_frames=a.num_frames)
        except ConfigError as e:
            need(False, "audio: " + str(e).replace("LogMelConfig.", "audio."))
    else:
        need(False, "audio.sample_rate, n_mels, num_frames, n_fft, win_length and hop_length must be positive integers")


def _leaves(d: dict, prefix: str = ""):
    """(dotted name, value) of every value of a nested config dict, list items included."""
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, name + ".")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                yield f"{name}[{i}]", item
        else:
            yield name, value


def _device_problem(name) -> str | None:
    """Why ``device`` cannot run here (None when it can): an unknown device, or CUDA/MPS absent."""
    if name == "auto":
        return None
    import torch

    try:
        d = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        return f"device must be auto, cpu, cuda or cuda:N, got {name!r}"
    if d.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build of torch" if torch.version.cuda is None else "no usable CUDA GPU"
            return f"device={name} but this machine has {build}; use device=auto or device=cpu"
        if d.index is not None and d.index >= torch.cuda.device_count():
            return f"device={name} but this machine has {torch.cuda.device_count()} CUDA GPU(s) (cuda:0...)"
    elif d.type == "mps":
        if not torch.backends.mps.is_available():
            return f"device={name} but MPS (Apple GPU) is not available here; use device=auto or device=cpu"
    elif d.type != "cpu":
        return f"device must be auto, cpu, cuda, cuda:N or mps, got {name!r}"
    return None


def _check_method_sections(cfg: PretrainConfig, need) -> None:
    """The AVTS and CrissCross sections (checked whatever the method: their defaults are valid)."""
    t, x = cfg.avts, cfg.crisscross
    need(t.margin > 0, f"avts.margin must be > 0, got {t.margin}")
    need(t.embed_dim >= 1, f"avts.embed_dim must be >= 1, got {t.embed_dim}")
    need(t.stage_epochs is None or (isinstance(t.stage_epochs, list) and len(t.stage_epochs) == 2
                                    and all(isinstance(e, int) and e >= 0 for e in t.stage_epochs)
                                    and sum(t.stage_epochs) > 0),
         f"avts.stage_epochs must be null or two epoch counts >= 0 (not both 0), e.g. [50, 40]; got {t.stage_epochs}")
    need(0 <= t.hard_fraction <= 1 and 0 <= t.superhard_fraction <= 1
         and t.hard_fraction + t.superhard_fraction <= 1,
         f"avts.hard_fraction and avts.superhard_fraction must be in [0, 1] with a sum <= 1, "
         f"got {t.hard_fraction} and {t.superhard_fraction}")
    span = max(cfg.video.num_frames / cfg.video.fps, cfg.audio.duration)
    need(t.superhard_min_shift > 0 and (t.superhard_fraction == 0 or t.superhard_min_shift < span),
         f"avts.superhard_min_shift must be in (0, {span:g}) s (shorter than a clip, so shifted windows "
         f"still overlap), got {t.superhard_min_shift}")
    need(x.relaxation in RELAXATIONS, f"crisscross.relaxation must be one of {RELAXATIONS}, got {x.relaxation!r}")
    terms = x.terms()
    need(bool(terms) and set(terms) <= set(CRISSCROSS_TERMS) and len(set(terms)) == len(terms),
         f"crisscross.losses must join distinct terms of {CRISSCROSS_TERMS} with '+', got {x.losses!r}")
    need(x.projector_dims is None or (isinstance(x.projector_dims, list) and len(x.projector_dims) >= 1
                                      and all(isinstance(d, int) and d >= 1 for d in x.projector_dims)),
         f"crisscross.projector_dims must be null or a list of layer sizes, got {x.projector_dims}")
    need(x.predictor_hidden is None or x.predictor_hidden >= 1,
         f"crisscross.predictor_hidden must be null or >= 1, got {x.predictor_hidden}")
    need(x.predictor_lr_scale > 0, f"crisscross.predictor_lr_scale must be > 0, got {x.predictor_lr_scale}")


DEFAULT_PRESET = "cpu-small"  # of ``avssl pretrain`` without --preset


def resolve(preset_name: str | None = None, method: str | None = None, overrides: Sequence[str] = (),
            config_file=None, default_preset: str = DEFAULT_PRESET) -> PretrainConfig:
    """The one merge of every command that builds a config; later steps win:

    1. the preset: ``preset_name``; without it the config file's ``preset`` when that names a preset,
       else ``default_preset``;
    2. ``method``, when given;
    3. the values of ``config_file`` (YAML or JSON, any part of the config tree; a run's
       ``config.json`` is one). Its ``method`` and ``preset`` keys yield to an explicit ``method`` and
       ``preset_name``;
    4. ``overrides``, ``section.key=value`` strings in order (the CLI puts ``--set`` first, then the
       ``--seed`` and ``--iterations`` shortcuts).
    """
    given = [key for key, value in (("method", method), ("preset", preset_name)) if value is not None]
    name, merged = config_layers(preset_name, config_file, overrides, default_preset, skip=given)
    cfg = preset(name)
    if method is not None:
        cfg = replace(cfg, method=method)
    return validate(apply_overrides(cfg, merged))


def config_layers(preset_name: str | None, config_file=None, overrides: Sequence[str] = (),
                  default_preset: str = DEFAULT_PRESET, skip: Sequence[str] = ("method", "preset")) -> tuple:
    """``(preset, overrides)``: the preset to start from (``preset_name``, else the config file's, else
    ``default_preset``) and what goes over it, lowest first: the values of ``config_file`` without its
    top-level keys in ``skip``, then ``overrides``. ``resolve`` merges this pair; commands that resolve
    one config per run with their own method (demo, sweep) pass it on as ``preset`` and ``--set`` values."""
    tree = load_config_file(config_file) if config_file is not None else {}
    return preset_name or file_preset(tree) or default_preset, [*tree_overrides(tree, skip), *overrides]


# --- config files, key suggestions, differences ----------------------------------------------------

def load_config_file(path) -> dict:
    """The config tree of a YAML or JSON file (``.json``: JSON; anything else: YAML, which also reads
    JSON), checked against the config's keys and value types: one ConfigError names every problem.
    Sections nest (``clustering: {k: 64}``); dotted keys (``clustering.k: 64``) work as well."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            tree = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    else:
        import yaml

        try:
            tree = yaml.load(text, Loader=_yaml_loader())
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if tree is None:  # an empty file (or only comments)
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(f"config file {path} must hold a mapping of config keys (e.g. 'optim: {{lr: 0.02}}'), "
                          f"got {type(tree).__name__}")
    problems: list[str] = []
    tree = _nest(tree, "", problems)
    if not problems:
        _check_tree(tree, PretrainConfig, "", problems)
    if problems:
        raise ConfigError(f"config file {path}:\n  " + "\n  ".join(problems))
    return tree


def file_preset(tree: dict) -> str | None:
    """The preset a config tree names, when it is one of PRESETS (a run's config.json names its own)."""
    name = tree.get("preset")
    return name if isinstance(name, str) and name in PRESETS else None


def tree_overrides(tree: dict, skip: Sequence[str] = ()) -> list[str]:
    """A (checked) config tree as ``key=value`` overrides, leaves only, in file order; top-level keys in
    ``skip`` are left out."""
    return [f"{key}={json.dumps(value)}" for key, value in flatten(tree).items() if key.split(".")[0] not in skip]


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"optim": {"lr": 0.1}} -> {"optim.lr": 0.1}; lists are values, not sections."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# What a resumed run may change (``avssl pretrain --resume --set ...``): the learning rate and its
# schedule, gradient clipping, and how the same computation is carried out (the way forward after a
# divergence is a lower learning rate, or fp32). Anything else would make the run a different one.
RESUME_CHANGEABLE = frozenset({
    "optim.lr", "optim.warmup_epochs", "optim.step_epochs", "optim.gamma", "optim.max_epochs", "optim.early_stop",
    "optim.last_iteration_epochs",
    "optim.clip_grad_norm", "iterations", "precision", "memory_format", "device", "loader.workers",
    "logging",  # where the numbers go, not what they are
})


def config_keys() -> list[str]:
    """Every key of the config tree, dotted (sections and their keys)."""
    def walk(cls, prefix):
        for f in fields(cls):
            sub = _section_type(cls, f.name)
            yield prefix + f.name
            if sub is not None:
                yield from walk(sub, f"{prefix}{f.name}.")
    return list(walk(PretrainConfig, ""))


# Names people reach for that the config spells differently (the suggestion's last resort).
_KEY_ALIASES = {"learning_rate": "lr", "epochs": "max_epochs", "wd": "weight_decay", "frames": "num_frames",
                "clusters": "k", "num_clusters": "k", "bs": "batch_size", "optimiser": "optimizer",
                "num_workers": "workers"}


def did_you_mean(key: str, choices: Sequence[str] | None = None) -> str:
    """``"; did you mean clustering.k?"`` for the valid config key (or of ``choices``) nearest ``key``,
    else ``""``: a close spelling in the same section, the same name in another section (``k`` ->
    ``clustering.k``, ``optim.seed`` -> ``seed``), a close spelling of the whole key, a common alias
    (``optim.learning_rate`` -> ``optim.lr``)."""
    if choices is not None:
        match = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
        return f"; did you mean {match[0]}?" if match else ""
    keys = [k for k in config_keys() if k != key]
    section, _, leaf = key.rpartition(".")
    in_section = [k.rpartition(".")[2] for k in keys if k.rpartition(".")[0] == section]
    alias = _KEY_ALIASES.get(leaf.lower().replace("-", "_"))
    match = [f"{section}.{m}" if section else m
             for m in difflib.get_close_matches(leaf, in_section, n=1, cutoff=0.6)]
    match = match or [k for k in keys if k.rpartition(".")[2] == leaf]
    match = match or difflib.get_close_matches(key, keys, n=1, cutoff=0.8)
    match = match or [k for k in keys if alias and k.rpartition(".")[2] == alias]
    if alias and section and f"{section}.{alias}" in match:
        match = [f"{section}.{alias}"]
    return f"; did you mean {' or '.join(match[:3])}?" if match else ""


def config_differences(old, new, ignore: Sequence[str] = ()) -> list[tuple[str, Any, Any]]:
    """``(key, old value, new value)`` for every leaf that differs between two configs (PretrainConfig
    or dict), except the keys in ``ignore`` (dotted keys, or whole top-level sections)."""
    a = flatten(old.to_dict() if isinstance(old, PretrainConfig) else old)
    b = flatten(new.to_dict() if isinstance(new, PretrainConfig) else new)
    keys = list(dict.fromkeys([*a, *b]))
    return [(k, a.get(k), b.get(k)) for k in keys
            if k not in ignore and k.split(".")[0] not in ignore and a.get(k) != b.get(k)]


def preset_summary(name: str) -> str:
    """The first line of the preset function's docstring, without reST markup."""
    doc = (PRESETS[name].__doc__ or "").strip()
    return doc.splitlines()[0].replace("``", "") if doc else ""


def to_yaml(cfg: PretrainConfig, header: str = "") -> str:
    """``cfg`` as YAML in the order of the dataclasses (a valid ``--config`` file), under ``header``
    lines written as comments."""
    import yaml

    body = yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False, width=100)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + body


def _nest(tree: dict, prefix: str, problems: list) -> dict:
    """Dotted keys (``optim.lr: 0.1``) expanded into sections, merged with nested ones."""
    out: dict = {}
    for key, value in tree.items():
        if not isinstance(key, str):
            problems.append(f"{prefix}{key!r}: keys must be strings")
            continue
        if isinstance(value, dict):
            value = _nest(value, f"{prefix}{key}.", problems)
        node, parts = out, key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(f"{prefix}{key}: {part!r} is given both as a value and as a section")
                break
        else:
            last = parts[-1]
            if isinstance(node.get(last), dict) and isinstance(value, dict):
                node[last].update(value)
            elif last in node:
                problems.append(f"{prefix}{key} is given twice")
            else:
                node[last] = value
    return out


def _check_tree(tree: dict, cls, prefix: str, problems: list) -> None:
    """Unknown keys (with the nearest valid one), values where sections belong, and value types."""
    known = {f.name: f for f in fields(cls)}
    for name, value in tree.items():
        key = prefix + name
        if name not in known:
            problems.append(f"unknown key {key!r}{did_you_mean(key)}")
            continue
        sub = _section_type(cls, name)
        if sub is not None:
            if isinstance(value, dict):
                _check_tree(value, sub, f"{key}.", problems)
            else:
                problems.append(f"{key} is a config section (key: value pairs), got {value!r}")
            continue
        expected = _type_problem(known[name].type, value)
        if expected:
            problems.append(f"{key} must be {expected}, got {value!r}")


def _yaml_loader():
    """PyYAML's SafeLoader, reading ``1e-3`` as a number (YAML 1.1 wants ``1.0e-3``, and reads
    ``1e-3`` as a string)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"))
    return Loader
