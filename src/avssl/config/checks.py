"""``validate``: every impossible config value, refused with one message before any work starts.

    cfg = validate(cfg)   # ConfigError("invalid configuration: ...") naming each problem

These are the general checks, of every value but the methods' own. A method's own section (``avts.*``,
``crisscross.*``) and the options only some methods honour (``clustering.recluster=epoch``) are checked
by the method (``PretextMethod.config_problems``); ``avssl.methods.validate`` hands their problems to
``validate`` as ``more``, so one message still names them all (``resolve(..., check=methods.validate)``).
"""
from __future__ import annotations

import math
from typing import Sequence

from ..errors import ConfigError
from ..method_names import USER_METHODS
from .tree import FINISH_ON, WANDB_MODES, PretrainConfig


def validate(cfg: PretrainConfig, method_names: Sequence[str] = USER_METHODS,
             more: Sequence[str] = ()) -> PretrainConfig:
    """Reject impossible values with one clear message before any work starts. ``method_names``: the
    methods ``cfg.method`` may name (a workflow that hands the engine its own method names that one);
    ``more``: problems found elsewhere, named in the same message (the method's own checks, which
    ``avssl.methods.validate`` adds: this layer does not know the methods)."""
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
    need(c.recluster in ("iteration", "epoch"), f"clustering.recluster must be iteration or epoch, got {c.recluster!r}")
    need(c.sinkhorn_epsilon > 0, f"clustering.sinkhorn_epsilon must be > 0, got {c.sinkhorn_epsilon}")
    need(cfg.precision in ("auto", "fp32", "bf16"), f"precision must be auto, fp32 or bf16, got {cfg.precision!r}")
    need(cfg.memory_format in ("auto", "contiguous", "channels_last_3d"),
         f"memory_format must be auto, contiguous or channels_last_3d, got {cfg.memory_format!r}")
    for name in ("grayscale", "blur", "cutout"):
        need(0 <= getattr(v, name) <= 1, f"video.{name} is a probability in [0, 1], got {getattr(v, name)}")
    _check_every_field(cfg, need)
    need(cfg.method in method_names, f"method must be one of {', '.join(sorted(method_names))}, got {cfg.method!r}")
    problems.extend(more)
    need(cfg.logging.tensorboard in (None, True, False),
         f"logging.tensorboard must be true, false or null (auto), got {cfg.logging.tensorboard!r}")
    _check_wandb(cfg.logging, need)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return cfg


VIDEO_ENCODERS = ("r2plus1d_18", "r3d_18")  # the video builders of models.ENCODERS
AUDIO_ENCODERS = ("audio_resnet18",)
SEED_LIMIT = 2**30  # seeds are combined with iteration numbers for faiss, whose seed is a 32-bit int


def _check_wandb(lc, need) -> None:
    """The ``logging.wandb*`` values (whether wandb is installed is checked when a run starts:
    ``tracking.check_trackers``, so that a run's config.json stays usable where wandb is not)."""
    need(lc.wandb in (True, False), f"logging.wandb must be true or false, got {lc.wandb!r}")
    need(lc.wandb_mode in WANDB_MODES,
         f"logging.wandb_mode must be one of {', '.join(WANDB_MODES)}, got {lc.wandb_mode!r}")
    need(isinstance(lc.wandb_project, str) and lc.wandb_project.strip() != "",
         f"logging.wandb_project must be a non-empty name, got {lc.wandb_project!r}")


def _check_every_field(cfg: PretrainConfig, need) -> None:
    """What validate's first checks leave open: no NaN or infinity in any field, and every field in its
    range or among its choices, so that nothing accepted here fails later in a run."""
    for name, value in _leaves(cfg.to_dict()):
        if isinstance(value, float) and not math.isfinite(value):
            need(False, f"{name} must be a finite number, got {value}")
    o, v, a, c, lo = cfg.optim, cfg.video, cfg.audio, cfg.clustering, cfg.loader
    need(0 <= cfg.seed < SEED_LIMIT, f"seed must be in [0, {SEED_LIMIT - 1}], got {cfg.seed}")
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
    need(0 <= a.time_warp and 2 * a.time_warp < a.num_frames,
         f"audio.time_warp must be in [0, audio.num_frames / 2 = {a.num_frames / 2:g}), got {a.time_warp}")
    need(lo.cache_dir is None or bool(str(lo.cache_dir).strip()), "loader.cache_dir must be null (default) or a folder")
    need(lo.finish_on in FINISH_ON, f"loader.finish_on must be one of {', '.join(FINISH_ON)}, got {lo.finish_on!r}")
    if all(isinstance(x, int) and not isinstance(x, bool) and x > 0
           for x in (a.sample_rate, a.n_mels, a.num_frames, a.n_fft, a.win_length, a.hop_length)):
        from ..data.logmel import LogMelConfig  # its own checks: n_fft even, frames matching the hop...

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

