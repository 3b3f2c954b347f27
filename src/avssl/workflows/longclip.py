"""``avssl retrain-long``: XDC Sec. 6's last step before the state-of-the-art comparison. The video
encoder of a finished deep-clustering run is trained again on the run's LAST clustering assignment
(XDC: the audio clusters; SDC: its own video clusters; CDC: the joint ones; MDC: both heads) with
longer clips, e.g. 32 frames instead of 8, and then fine-tuned with that clip length.

Scaling (XDC Supp. C): "when pretraining our R(2+1)D on longer clips (e.g. 32 frames) ... we reduce
the mini-batch size to 8 (instead of 32) and the base learning rate to 0.0025 (instead of 0.01)",
and the same for fine-tuning: batch 8 and a quarter of the rate. Generalised here as: the batch
shrinks by the ratio of clip lengths (run frames / new frames) and the learning rate follows the
batch linearly, so 8 -> 32 frames at batch 32 and lr 0.01 gives exactly the paper's 8 and 0.0025.
Everything else is the run's config (schedule, early stopping, augmentation), and the training is
an ordinary engine run (checkpoints every epoch, resumed by rerunning, ``encoders.pt`` at the end) of
its own method, ``longclip_method.LongClipRetraining``, handed to ``engine.pretrain``: it is not one of the
pretext methods a user can start.

    from avssl.workflows.longclip import retrain_long
    retrain_long("runs/xdc", "runs/xdc-32f", frames=32)
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ..config import PretrainConfig, apply_overrides
from ..data.manifest import Manifest, ManifestItem
from ..errors import ConfigError
from ..runlock import holding_lock

# numpy, torch and the methods are imported where the retraining runs, so avssl --help stays fast.

PAPER_FRAMES = 32
METHOD_NAME = "longclip"  # the config's method field of a retraining run
INPUTS = "longclip_inputs.pt"  # in the new run directory: what the retraining starts from


def scaled_batch_and_lr(batch_size: int, lr: float, old_frames: int, new_frames: int) -> tuple[int, float]:
    """XDC Supp. C's rule for longer clips: batch x old/new frames, learning rate x new batch / old batch."""
    batch = max(1, round(batch_size * old_frames / new_frames))
    return batch, lr * batch / batch_size


def _video_targets(cfg: PretrainConfig, run: Path) -> tuple[list[str], str]:
    """The clusterings whose pseudo-labels trained the run's video encoder."""
    from ..methods import METHODS
    from ..methods.deep_clustering import DeepClusteringMethod

    cls = METHODS.get(cfg.method)
    if cls is None or not issubclass(cls, DeepClusteringMethod):
        raise ConfigError(f"{run} is a {cfg.method} run: long-clip retraining reuses a deep-clustering run's last "
                          f"pseudo-labels (xdc, sdc, mdc, cdc, xdc-video-video)")
    slot = next((s for s, m in cls.slots.items() if m == "video"), None)
    if slot is None:
        raise ConfigError(f"{run}: the {cfg.method} method has no video encoder to retrain")
    return list(cls.targets[slot]), slot


@holding_lock("out")  # one process per output run folder (its pretraining takes the same lock, nested)
def retrain_long(run, out, *, frames: int = PAPER_FRAMES, batch_size: int | None = None, lr: float | None = None,
                 overrides=(), data=None, progress: bool = True) -> dict:
    """Retrain ``run``'s video encoder on its last pseudo-labels with ``frames``-frame clips into ``out``.
    Reuses a finished ``out``, resumes an interrupted one. Returns the summary in ``longclip.json``."""
    import numpy as np
    import torch

    from ..runs import load_encoders
    from ..engine.pretrain import pretrain
    from ..runs import read_run_videos
    from ..io import atomic_save, atomic_write_text, load_array, load_checkpoint
    from ..methods import validate
    from .longclip_method import LongClipRetraining

    run, out = Path(run), Path(out)
    if not (run / "config.json").exists() or not (run / "encoders.pt").exists():
        raise ConfigError(f"{run} is not a finished pretraining run (it needs config.json and encoders.pt)")
    if frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {frames}")
    source = PretrainConfig.load(run / "config.json")
    names, slot = _video_targets(source, run)
    o = source.optim
    bs, rate = scaled_batch_and_lr(o.batch_size, o.lr, source.video.num_frames, frames)
    bs, rate = batch_size or bs, lr or rate
    # the source run's labels are fixed here: nothing is re-clustered, whatever its clustering.recluster
    cfg = replace(source, method=METHOD_NAME, iterations=1, video=replace(source.video, num_frames=frames),
                  clustering=replace(source.clustering, recluster="iteration"),
                  optim=replace(o, batch_size=bs, lr=rate))
    cfg = validate(apply_overrides(cfg, list(overrides)), LongClipRetraining)
    paths, labels = read_run_videos(run)  # in the order of the cluster assignments
    if (out / "encoders.pt").exists():
        state = "reused"
    else:
        resume = (out / "checkpoints" / "last.pt").exists()
        state = "resumed" if resume else "trained"
        if not resume:
            assignments = {n: load_array(run / "clusters" / f"{n}_assignments.npy", "cluster assignment array")
                           for n in names}
            for n, a in assignments.items():
                if len(a) != len(paths):
                    raise ConfigError(f"{run}/clusters/{n}_assignments.npy has {len(a)} rows for {len(paths)} videos")
            weights = load_encoders(run).modules[slot].state_dict()
            out.mkdir(parents=True, exist_ok=True)
            atomic_save({"source": str(run), "video": weights, "paths": paths,
                         "labels": {n: torch.from_numpy(a.astype(np.int64)) for n, a in assignments.items()}},
                        out / INPUTS)
        manifest = data if data is not None else Manifest([ManifestItem(p, lab) for p, lab in zip(paths, labels)],
                                                          str(run / "videos.csv"))
        method = LongClipRetraining(cfg, load_checkpoint(out / INPUTS))
        pretrain(cfg, manifest, out, resume=resume, progress=progress, method=method)
    scale = f"batch {o.batch_size} -> {bs}, lr {o.lr:g} -> {rate:g}"
    result = {"run": str(run), "out": str(out), "state": state, "method": source.method, "pseudo_labels": names,
              "frames": {"run": source.video.num_frames, "retrained": frames},
              "batch_size": bs, "lr": rate, "scaling": scale, "encoders": str(out / "encoders.pt"),
              "finetune": finetune_hint(out, frames, source.video.num_frames)}
    atomic_write_text(out / "longclip.json", json.dumps(result, indent=2) + "\n")
    return result


def finetune_hint(encoders, frames: int, run_frames: int, batch_size: int = 32, lr: float = 0.01) -> str:
    """The fine-tuning command at the same clip length, with Supp. C's batch and rate scaling applied
    to the fine-tuning defaults (batch 32, lr 0.01)."""
    bs, rate = scaled_batch_and_lr(batch_size, lr, run_frames, frames)
    return f"avssl eval finetune --encoders {encoders} --data MANIFEST --out DIR --batch-size {bs} --lrs {rate:g}"
