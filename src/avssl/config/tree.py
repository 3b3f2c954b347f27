"""The config tree as plain data: nested dataclasses, read back from dicts with every key and type
checked, and ``section.key=value`` overrides with suggestions for misspelt keys.

    cfg = apply_overrides(PretrainConfig(), ["optim.lr=0.02"])
"""
from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import ConfigError


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
    time_warp: int = 0  # CrissCross "TW" (Table S2: window 20): SpecAugment's time warp, in frames (0: off)


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
    # iteration: extract features and k-means at the start of every iteration (the papers) | epoch:
    # DeepCluster-v2's way, k-means at the end of every epoch on a per-video memory of the features the
    # training and validation steps computed, heads set to the new centroids (methods/feature_memory.py)
    recluster: str = "iteration"

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


@dataclass
class CrissCrossConfig:
    """CrissCross (Sarkar and Etemad): SimSiam-style intra-modal, synchronous and asynchronous
    cross-modal losses over two audio-visual views of a video."""

    relaxation: str = "mild"  # Sec. 4.3: none | mild (50% overlap) | medium (adjacent) | extreme | mixed
    losses: str = "intra+sync+async"  # Eq. 5; any "+"-joined subset of v1v2, a1a2, intra, sync, async (Table 1)
    projector_dims: Optional[list] = None  # Table S7 (512 -> 2048 -> 2048 -> 2048); None: 4x the encoder's width
    predictor_hidden: Optional[int] = None  # Table S8 (2048 -> 512 -> 2048); None: the encoder's width
    predictor_lr_scale: float = 10.0  # the predictors' constant learning rate, in units of optim.lr (Sec. 4.4)
    common_predictor: bool = False  # Table 3's variant: one predictor for both modalities, fed L2-normalised inputs

    def terms(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.losses.split("+") if t.strip())


@dataclass
class LoaderConfig:
    workers: int = -1  # DataLoader worker processes; -1: auto (data.pipeline.num_workers: none on a 2-core CPU)
    decoded_cache: bool = False  # decode each video once into memory-mapped arrays (small presets)
    cache_dir: Optional[str] = None
    # Where clips are finished (data.finish: flip, float conversion, colour augmentations, normalisation,
    # log-mel and its augmentations): "loader" (each item, in the workers), "device" (on the training
    # device; the loader hands over uint8 crops and waveforms), "auto" (device on an accelerator, loader
    # on a CPU). The same values either way.
    finish_on: str = "auto"  # one of FINISH_ON


FINISH_ON = ("auto", "loader", "device")


WANDB_MODES = ("auto", "online", "offline")


@dataclass
class LoggingConfig:
    """Where a run's numbers go besides ``metrics.jsonl`` (which is always written)."""

    # TensorBoard event files in <run>/tensorboard (avssl.tracking): null (auto) writes them when the
    # tensorboard package is installed (pip install 'avssl[tensorboard]'), true asks for them (a one-line
    # warning when the package is missing), false never.
    tensorboard: Optional[bool] = None
    # wandb (avssl.wandb_tracking; pip install 'avssl[wandb]'): the same scalars as TensorBoard. Mode auto:
    # online when an API key is set up (WANDB_API_KEY, wandb login), offline otherwise; WANDB_MODE wins.
    wandb: bool = False
    wandb_project: str = "avssl"
    wandb_name: Optional[str] = None  # null: the run folder's name
    wandb_mode: str = "auto"  # one of WANDB_MODES


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
        from ..io import atomic_write_text

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


# --- keys: overrides, suggestions, differences ------------------------------------------------------

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
    "loader.finish_on",
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


def check_resumable(saved, cfg, run_dir) -> None:
    """Refuse to resume the run in ``run_dir`` (saved config ``saved``) with ``cfg`` when they differ in
    more than ``RESUME_CHANGEABLE``: one ConfigError naming every differing value, old -> new."""
    refused = config_differences(saved, cfg, ignore=RESUME_CHANGEABLE)
    if refused:
        lines = "\n  ".join(f"{key}: {json.dumps(old)} -> {json.dumps(new)}" for key, old, new in refused)
        raise ConfigError(f"--resume continues {run_dir} with its saved config ({Path(run_dir) / 'config.json'}); "
                          f"these options ask for different values:\n  {lines}\n"
                          f"drop them to resume (only {', '.join(sorted(RESUME_CHANGEABLE))} may change), "
                          f"or start a new run in another --out")
