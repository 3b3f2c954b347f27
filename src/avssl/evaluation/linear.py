"""Linear evaluation, XDC's "fc-only" transfer (Table 5): a linear classifier on frozen features.

The encoder is frozen, so the classifier trains on cached clip features, not by re-running the
encoder: minutes instead of hours. Protocol (XDC Supp. C, CrissCross App. E.1):

- train rows: K uniformly spaced clips of every training video (K=10 by default);
- features standardised with the training rows' mean and standard deviation;
- SGD, momentum 0.9, weight decay 0.005, batch 32, and Table 11's schedule shape (warm-up 2, step 2,
  total 8 epochs, gamma 0.01) stretched to ``epochs`` (default 32: warm-up 8, x0.01 at 16 and 24),
  because features make an epoch cheap and a few dozen epochs let the smaller rates converge;
- the base learning rate is chosen from Table 12's fc-only grid on a validation part carved from the
  training videos (by video, stratified), never on test; the classifier is then retrained on all of
  train with that rate;
- a test video is predicted by averaging the softmax of its K uniformly spaced clips (top-1 at video
  level); clip-level accuracy is reported too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.preprocessing import StandardScaler
from torch import nn

from ..config import OptimConfig
from ..engine.schedule import learning_rate
from ..engine.step import train_step
from ..errors import ConfigError, TrainingDiverged
from .grid_report import BEST_OVER_GRID, REPORTING, best_over_grid
from .features import Features, evaluate_frozen, load_source, mean_by_video, with_pool
from .splits import Fold, carve_validation, check_options, choose, describe_choice

CPU = torch.device("cpu")  # features are rows in memory: the probe trains on the CPU, in fp32

FC_LRS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.02, 0.04)  # Table 12, "FC only"


def table11_optim(lr: float, epochs: int, batch_size: int = 32) -> OptimConfig:
    """Table 11's schedule stretched to ``epochs``: warm-up for the first quarter, then the rate times
    gamma=0.01 every quarter (exactly 2/2/8 at 8 epochs); SGD momentum 0.9, weight decay 0.005."""
    quarter = epochs / 4
    return OptimConfig(lr=lr, momentum=0.9, weight_decay=0.005, batch_size=batch_size, warmup_epochs=quarter,
                       step_epochs=quarter, gamma=0.01, max_epochs=epochs, early_stop=0)


@dataclass
class LinearClassifier:
    """Standardisation (training statistics) followed by one fully connected layer."""

    scaler: StandardScaler
    fc: nn.Linear

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(self.scaler.transform(x).astype(np.float32))
        return F.softmax(self.fc(z), dim=1).numpy()


def fit_linear(x: np.ndarray, y: np.ndarray, num_classes: int, lr: float, epochs: int = 32,
               batch_size: int = 32, seed: int = 0) -> LinearClassifier:
    """Train a linear classifier on rows ``x`` with labels ``y`` (SGD, Table 11 schedule shape)."""
    scaler = StandardScaler().fit(x)
    xs = torch.from_numpy(scaler.transform(x).astype(np.float32))
    ys = torch.as_tensor(y, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    fc = nn.Linear(x.shape[1], num_classes)
    with torch.random.fork_rng():  # a seeded init that leaves the caller's global RNG alone
        torch.manual_seed(seed)
        fc.reset_parameters()
    o = table11_optim(lr, epochs, batch_size)
    opt = torch.optim.SGD(fc.parameters(), lr=lr, momentum=o.momentum, weight_decay=o.weight_decay)
    steps = max(1, -(-len(xs) // batch_size))

    def loss_fn(rows):
        return F.cross_entropy(fc(xs[rows]), ys[rows]), {}

    for epoch in range(epochs):
        order = torch.randperm(len(xs), generator=gen)
        for step in range(steps):
            train_step(loss_fn, order[step * batch_size:(step + 1) * batch_size], opt,
                       learning_rate(o, epoch + step / steps), device=CPU, precision="fp32",
                       diverged=lambda loss: TrainingDiverged(
                           f"the linear classifier's loss became {loss} at lr {lr}, epoch {epoch} (features that "
                           f"are not finite, or too high a learning rate); try lower --lrs"))
    return LinearClassifier(scaler, fc.eval())


def video_scores(probs: np.ndarray, video: np.ndarray, y_video: np.ndarray) -> dict:
    """``accuracy``: top-1 of the per-video average of clip softmax scores (a video without rows counts
    as wrong); ``loss``: the mean negative log of that average at the true class."""
    if not len(y_video):
        return {"accuracy": float("nan"), "loss": float("nan")}
    mean, has = mean_by_video(probs, video, len(y_video))
    p_true = np.where(y_video >= 0, mean[np.arange(len(y_video)), np.maximum(y_video, 0)], 0.0)
    return {"accuracy": float(np.mean(has & (mean.argmax(1) == y_video))),
            "loss": float(-np.mean(np.log(p_true + 1e-12)))}


def clip_accuracy(probs: np.ndarray, video: np.ndarray, y_video: np.ndarray) -> float:
    """Top-1 of single clips."""
    return float(np.mean(probs.argmax(1) == y_video[video])) if len(probs) else float("nan")


def linear_eval(train: tuple, test: tuple, num_classes: int, lrs=FC_LRS, epochs: int = 32, batch_size: int = 32,
                val_fraction: float = 0.1, seed: int = 0) -> dict:
    """Feature-level linear evaluation. ``train``/``test``: ``(x, video, y)`` with ``x`` (N, D) clip rows,
    ``video`` (N,) each row's video, ``y`` (V,) each video's label (-1: a class the classifier lacks).

    Returns test ``accuracy`` (video level), ``clip_accuracy``, the chosen ``lr``, the ``sweep`` (validation
    and test accuracy of every rate; empty when a single rate is given) and ``accuracy_best_over_grid``, the
    best test accuracy over the rates (the papers' way of reporting; None for a single rate)."""
    if min(epochs, batch_size) < 1:
        raise ConfigError(f"epochs and batch size must be >= 1, got {epochs} and {batch_size}")
    x, video, y = (np.asarray(a) for a in train)
    lrs = [float(lr) for lr in lrs]
    sweep = {}
    if len(lrs) > 1:
        keep, val = carve_validation(y, val_fraction, seed)
        rows_fit, rows_val = np.isin(video, keep), np.isin(video, val)
        renumber = np.full(len(y), -1)
        renumber[val] = np.arange(len(val))
        for lr in lrs:
            clf = fit_linear(x[rows_fit], y[video[rows_fit]], num_classes, lr, epochs, batch_size, seed)
            scores = video_scores(clf.predict_proba(x[rows_val]), renumber[video[rows_val]], y[val])
            sweep[lr] = {"val_accuracy": scores["accuracy"], "val_loss": scores["loss"]}
    lr = choose(sweep) if sweep else lrs[0]
    tx, tvideo, ty = (np.asarray(a) for a in test)
    for other in sweep:  # the papers' way: every rate trained on all of train and scored on test
        if other != lr:
            probs = fit_linear(x, y[video], num_classes, other, epochs, batch_size, seed).predict_proba(tx)
            sweep[other]["test_accuracy"] = video_scores(probs, tvideo, ty)["accuracy"]
    clf = fit_linear(x, y[video], num_classes, lr, epochs, batch_size, seed)
    probs = clf.predict_proba(tx)
    if sweep:
        sweep[lr]["test_accuracy"] = video_scores(probs, tvideo, ty)["accuracy"]
    return {"accuracy": video_scores(probs, tvideo, ty)["accuracy"], BEST_OVER_GRID: best_over_grid(sweep),
            "clip_accuracy": clip_accuracy(probs, tvideo, ty),
            "lr": lr, "sweep": {str(k): v for k, v in sweep.items()}, "train_clips": int(len(x)),
            "test_clips": int(len(tx))}


def labelled(f: Features, fold: Fold) -> tuple:
    """``(x, video, y)`` of a split's features, labels encoded with the fold's training classes."""
    return f.x, f.video, fold.encode(f.labels)


def linear_probe(encoders, data, out, *, modality: str = "video", folds="all", train_clips: int = 10,
                 test_clips: int = 10, lrs=FC_LRS, epochs: int = 32, batch_size: int = 32,
                 val_fraction: float = 0.1, pool: str = "avg", preset: str | None = None, seed: int = 0,
                 cache_dir=None, device="auto", extract_batch_size=None, progress: bool = True) -> dict:
    """Linear evaluation of ``encoders``' ``modality`` encoder on every requested fold of ``data``;
    writes ``linear.json`` and ``linear.md`` into ``out`` and returns the result. ``pool``: the final
    pooling of the features (avg as trained | max | crisscross, ``features.pooled``)."""
    check_options(epochs=epochs, batch_size=batch_size, val_fraction=val_fraction, choices=len(lrs))
    if pool != "avg":
        encoders, preset = with_pool(load_source(encoders, preset, seed), pool), None
    def evaluate(train: Features, test: Features, fold: Fold) -> dict:
        return linear_eval(labelled(train, fold), labelled(test, fold), len(fold.classes), lrs, epochs,
                           batch_size, val_fraction, seed)

    settings = {"lrs": list(lrs), "epochs": epochs, "batch_size": batch_size, "val_fraction": val_fraction,
                "schedule": "Table 11 shape: warm-up epochs/4, x0.01 every epochs/4; SGD m 0.9, wd 0.005",
                "pool": pool, **({"reporting": REPORTING} if len(lrs) > 1 else {})}
    return evaluate_frozen(
        "linear", "Linear evaluation (fc-only, frozen encoder)", encoders, data, out, evaluate,
        ["accuracy", "clip_accuracy", *([BEST_OVER_GRID] if len(lrs) > 1 else [])], modality=modality, level="clip", train_clips=train_clips,
        test_clips=test_clips, folds=folds, settings=settings, details=_details, preset=preset, seed=seed,
        cache_dir=cache_dir, device=device, batch_size=extract_batch_size, progress=progress)


def _details(r: dict) -> str:
    return f"{describe_choice('lr', r['lr'], r['sweep'])}; {r['train_videos']} train / {r['test_videos']} test videos"
