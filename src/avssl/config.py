"""Configuration as plain data: nested dataclasses, named presets, ``section.key=value`` overrides.

A run's resolved config is written to its run directory as JSON, so every number that shaped a
result can be read back (and a run resumed with exactly the same settings).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Optional

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
    k_video: Optional[int] = None
    k_audio: Optional[int] = None
    k_joint: Optional[int] = None  # CDC's clustering of concatenated features
    clips_per_video: int = 1  # fixed clips whose features are averaged per video before clustering
    pca_dim: Optional[int] = None  # DeepCluster's PCA-whitening (None: off)
    l2_normalize: bool = True
    niter: int = 20
    balanced_sampling: bool = False  # DeepCluster's uniform sampling over clusters
    init: str = "random"  # random: cluster random encoders' features | handcrafted (first iteration only)
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
    early_stop: int = 3  # stop after this many consecutive increases of the validation loss (0: off)
    val_fraction: float = 0.05  # training videos held out to measure the pseudo-label validation loss


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
    unknown = set(d) - set(known)
    if unknown:
        raise ConfigError(f"unknown config key(s) {sorted(prefix + u for u in unknown)}; known: {sorted(known)}")
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
    """The XDC paper's recipe: R(2+1)D-18 + ResNet-18, 8x224x224 clips at 30 fps, 2 s 40x100 log-mel,
    SGD lr 0.01, batch 32, wd 1e-4, Kinetics schedule of Table 10 (we/se/te 10/10/30, gamma 0.01,
    early stop), k=256 (Table 2's best on Kinetics for UCF101)."""
    return PretrainConfig(preset="xdc-paper")


def _paper_audioset() -> PretrainConfig:
    cfg = _paper()
    cfg.preset = "xdc-paper-audioset"
    cfg.optim.max_epochs = 45  # Table 10, AudioSet: 10/10/45
    return cfg


def _paper_ig() -> PretrainConfig:
    cfg = _paper()
    cfg.preset = "xdc-paper-ig"
    cfg.optim.warmup_epochs, cfg.optim.step_epochs, cfg.optim.max_epochs = 1, 3, 10  # IG-*: 1/3/10, no e-stop
    cfg.optim.early_stop = 0
    return cfg


def _cpu_small() -> PretrainConfig:
    """Small enough for a laptop CPU: quarter-width networks on 8x64x64 clips, 40x100 log-mel,
    a few short deep-clustering iterations, every video decoded once into a memory-mapped cache.
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
    """For tests and smoke runs: minimal networks and schedules, minutes become seconds."""
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
    """``avssl demo``: cpu-small with a schedule sized so that all seven methods pretrain and evaluate
    well within 15 minutes on 2 cores (5.3 minutes with bf16 on the machine of BENCHMARKS.md), and k
    set to twice the demo world's 8 classes."""
    cfg = _cpu_small()
    cfg.preset = "demo"
    # The demo world's 64x64 shapes stay recognisable at 32x32, which keeps the demo at 5 minutes
    # (64x64 clips take 3x longer; RESULTS.md section 6).
    cfg.video.resize, cfg.video.crop = 40, 32
    cfg.clustering.k = 16
    cfg.optim = OptimConfig(lr=0.1, batch_size=32, warmup_epochs=1, step_epochs=6, gamma=0.1, max_epochs=8,
                            early_stop=3, val_fraction=0.1)
    return cfg


def _crisscross_paper() -> PretrainConfig:
    """CrissCross's recipe (Sec. 4.1, App. D, F, G; Table S10, Kinetics-Sound row): R(2+1)D-18 on 8
    frames of 112x112 at 16 fps, ResNet-18 on 80x200 log-mel of 2 s (``logmel.CRISSCROSS_LOGMEL``),
    the augmentations of Table 5's best row with Table S1/S2 parameters, Adam with a cosine schedule
    from 2e-4 to 0 over 100 epochs, weight decay 1e-4, batch 512, predictors at a constant 10x rate,
    mild relaxation (Fig. 4's best), projector 512-2048-2048-2048 and predictor 2048-512-2048.

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
                          warmup_epochs=0, max_epochs=100, early_stop=0),
        crisscross=CrissCrossConfig(relaxation="mild", projector_dims=[2048, 2048, 2048], predictor_hidden=512,
                                    predictor_lr_scale=10.0),
    )


PRESETS = {
    "xdc-paper": _paper,
    "xdc-paper-audioset": _paper_audioset,
    "xdc-paper-ig": _paper_ig,
    "cpu-small": _cpu_small,
    "cpu-tiny": _cpu_tiny,
    "demo": _demo,
    "crisscross-paper": _crisscross_paper,
}


def preset(name: str) -> PretrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
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
                raise ConfigError(f"override {item!r}: {p!r} is not a config section")
            node = node[p]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {key!r}")
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
    need(o.batch_size >= 1, f"optim.batch_size must be >= 1, got {o.batch_size}")
    need(o.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {o.weight_decay}")
    need(o.max_epochs >= 1, f"optim.max_epochs must be >= 1, got {o.max_epochs}")
    need(o.warmup_epochs >= 0 and o.step_epochs >= 1, "optim.warmup_epochs must be >= 0 and step_epochs >= 1")
    need(0 < o.gamma <= 1, f"optim.gamma must be in (0, 1], got {o.gamma}")
    need(0 <= o.val_fraction < 0.5, f"optim.val_fraction must be in [0, 0.5), got {o.val_fraction}")
    need(o.early_stop >= 0, "optim.early_stop must be >= 0")
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
    need(cfg.precision in ("auto", "fp32", "bf16"), f"precision must be auto, fp32 or bf16, got {cfg.precision!r}")
    need(cfg.memory_format in ("auto", "contiguous", "channels_last_3d"),
         f"memory_format must be auto, contiguous or channels_last_3d, got {cfg.memory_format!r}")
    for name in ("grayscale", "blur", "cutout"):
        need(0 <= getattr(v, name) <= 1, f"video.{name} is a probability in [0, 1], got {getattr(v, name)}")
    _check_method_sections(cfg, need)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return cfg


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


def resolve(preset_name: str, method: str | None = None, overrides: list[str] = ()) -> PretrainConfig:
    cfg = preset(preset_name)
    if method is not None:
        cfg = replace(cfg, method=method)
    return validate(apply_overrides(cfg, list(overrides)))
