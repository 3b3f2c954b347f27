"""Full fine-tuning (XDC's "all" column, Table 5): the pretrained video or audio encoder plus a new
fully connected layer, all trained on the downstream labels.

The settings come from a named recipe (``recipes.FINETUNE_RECIPES``; explicit arguments win). The
default, ``xdc`` (XDC Supp. C, Tables 11 and 12): SGD momentum 0.9, weight decay 0.005, batch 32,
warm-up / step / total epochs 2/2/8 with gamma 0.01 (other ``epochs`` keep that shape), and Table 11's
epoch size, about 11 clips per training video (``xdc-ucf101``, ``xdc-hmdb51``, ``xdc-esc50``: the
table's 106K, 40K and 20K clips, and Table 12's grid). ``crisscross-*``: CrissCross Table S11 (no
weight decay, multi-step decay over 20 epochs, adaptive max-pooling instead of the final average
pooling). Each training step sees randomly placed, augmented clips of the sampled videos
(``make_dataset(mode="train")``); an epoch draws ``epoch_size`` clips. With several base rates, each
is trained on train minus a validation part (by video) and scored there, and the best one is
retrained on all of train. A test video is predicted from the average softmax of its K=10 uniformly
spaced clips.
"""
from __future__ import annotations

import copy
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import SkipReport, prepare_entries
from ..data.pipeline import batched, build_cache, clip_spec, epoch_order, make_dataset, make_loader
from ..data.probe_index import probe_manifest
from ..engine.device import pick_device
from ..engine.precision import plan_for_encoders
from ..engine.step import train_step
from ..errors import ConfigError, TrainingDiverged
from ..progress import progress as progress_bar
from .features import clip_outputs, load_source, with_frames, with_pool
from .grid_report import BEST_OVER_GRID, REPORTING, best_over_grid
from .linear import clip_accuracy, video_scores
from .recipes import DEFAULT_FINETUNE_RECIPE, FinetuneRecipe, finetune_recipe
from .splits import (
    Fold, carve_validation, check_options, choose, describe_choice, open_manifest, over_folds, report_markdown, resolve_folds,
    write_report,
)

FULL_LRS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.01)  # Table 12, "Full"
DEFAULT_LRS = (0.01,)


class Classifier(nn.Module):
    """An encoder and a new fully connected layer: logits from clips."""

    def __init__(self, encoder: nn.Module, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.fc = nn.Linear(encoder.out_dim, num_classes)

    def forward(self, x):
        return self.fc(self.encoder(x))


class _Run:
    """What every training and evaluation of one call shares: encoder, config, device, settings."""

    def __init__(self, encoder, cfg, modality, epochs, batch_size, epoch_size, test_clips, seed, device, progress,
                 recipe: FinetuneRecipe | None = None):
        if min(epochs, batch_size, epoch_size or 1, test_clips) < 1:
            raise ConfigError("epochs, batch size, epoch size and test clips must be >= 1")
        self.recipe = recipe or finetune_recipe(DEFAULT_FINETUNE_RECIPE)
        self.encoder, self.cfg, self.modality = encoder, cfg, modality
        self.epochs, self.batch_size, self.epoch_size = epochs, batch_size, epoch_size
        self.test_clips, self.seed, self.progress = test_clips, seed, progress
        self.device = pick_device(device)
        # Fine-tuning trains, so it gets the same checked bf16 as pretraining (the known bf16 defects are in
        # weight gradients); layers found wrong are kept in fp32 in the encoder every copy is made from.
        self.precision = plan_for_encoders(cfg, self.device, {modality: (encoder.to(self.device), modality)},
                                           batch_size, memory_format="contiguous").precision
        self.spec = clip_spec(cfg, (modality,))
        self.cache = build_cache(cfg.loader, self.spec)
        self.skips = SkipReport()

    def train(self, entries, num_classes: int, lr: float) -> tuple[Classifier, float]:
        """Fine-tune a fresh copy of the encoder on ``entries``; returns the model and last epoch's loss."""
        with torch.random.fork_rng():  # seeded head, caller's RNG untouched
            torch.manual_seed(self.seed)
            model = Classifier(copy.deepcopy(self.encoder), num_classes).to(self.device)
        r = self.recipe
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=r.momentum, weight_decay=r.weight_decay)
        dataset = make_dataset(self.cfg, entries, self.spec, "train", seed=self.seed, cache=self.cache)
        n = self.epoch_size or max(round(r.clips_per_video * len(entries)), 1)
        self.clips_per_epoch, self.steps = n, 0  # reported: the epoch size and SGD steps of the last training
        model.train()

        def cross_entropy(batch):  # the logits under the run's autocast, the loss in fp32 (as autocast keeps it)
            logits = model(batch[self.modality].to(self.device))
            return F.cross_entropy(logits.float(), batch["label"].to(self.device)), {}

        for epoch in range(self.epochs):
            dataset.set_epoch(epoch)
            order = epoch_order(len(dataset), n, self.seed, epoch)
            loader = make_loader(dataset, self.cfg.loader, self.device,
                                 batches=batched(order, self.batch_size, drop_last=n > self.batch_size))
            steps = max(len(loader), 1)
            loss_sum, steps_done = 0.0, 0
            for step, batch in enumerate(progress_bar(loader, f"finetune lr {lr} epoch {epoch}", enabled=self.progress,
                                                      leave=False, unit="batch")):
                for path, reason in batch["skipped"]:
                    self.skips.add(path, reason)
                if "index" not in batch:
                    continue
                logs = train_step(cross_entropy, batch, opt, r.learning_rate(lr, self.epochs, epoch + step / steps),
                                  device=self.device, precision=self.precision,
                                  diverged=lambda loss: TrainingDiverged(f"fine-tuning loss became {loss} at lr {lr}, "
                                                                         f"epoch {epoch}; try a lower learning rate"))
                loss_sum, steps_done = loss_sum + logs["loss"], steps_done + 1
                self.steps += 1
        return model.eval(), loss_sum / max(steps_done, 1)

    def score(self, model: Classifier, entries) -> dict:
        """Video-level (average softmax of ``test_clips`` uniform clips) and clip-level accuracy."""
        y = np.array([e.label for e in entries])
        with tempfile.TemporaryDirectory(prefix="avssl-finetune-") as tmp:
            table, skips = clip_outputs(nn.Sequential(model, nn.Softmax(dim=1)), self.modality, self.cfg, entries,
                                        self.test_clips, tmp, device=self.device, progress=self.progress,
                                        desc="finetune test")
            probs, video = np.asarray(table.values[table.valid]), table.video[table.valid]
        for path, reason in skips.files:
            self.skips.add(path, reason)
        scores = video_scores(probs, video, y)
        return {"accuracy": scores["accuracy"], "loss": scores["loss"], "clip_accuracy": clip_accuracy(probs, video, y)}


def finetune(encoders, data, out, *, modality: str = "video", folds="all", recipe: str = DEFAULT_FINETUNE_RECIPE,
             lrs=None, epochs: int | None = None, batch_size: int | None = None, epoch_size: int | None = None,
             frames: int | None = None, pool: str | None = None, test_clips: int = 10, val_fraction: float = 0.1,
             preset: str | None = None, seed: int = 0, device="auto", progress: bool = True,
             grid_best: bool = False) -> dict:
    """Fine-tune ``encoders``' ``modality`` encoder with a new fc layer on every requested fold of ``data``;
    writes ``finetune.json`` and ``finetune.md`` into ``out`` and returns the result. ``recipe`` names
    the settings (``recipes.FINETUNE_RECIPES``); ``lrs``, ``epochs``, ``batch_size``, ``epoch_size``
    (clips per epoch), ``frames`` and ``pool`` (avg | max), when given, replace the recipe's. ``grid_best``:
    also train every other rate on all of train and report ``accuracy_best_over_grid``, the best test
    accuracy over the rates (the papers' way; one more fine-tuning per rate)."""
    r = finetune_recipe(recipe)
    lrs = r.lrs if lrs is None else lrs
    epochs = r.epochs if epochs is None else epochs
    batch_size = r.batch_size if batch_size is None else batch_size
    epoch_size = r.epoch_size if epoch_size is None else epoch_size
    pool = pool or r.pool
    if pool not in ("avg", "max"):
        raise ConfigError(f"fine-tuning pools with avg or max, got {pool!r}")
    check_options(epochs=epochs, batch_size=batch_size, val_fraction=val_fraction, choices=len(lrs))
    source = with_pool(with_frames(load_source(encoders, preset, seed), frames or r.frames), pool)
    manifest = open_manifest(data)
    fold_list = resolve_folds(manifest, folds)
    _, encoder = source.encoders.for_modality(modality)
    run = _Run(encoder, source.cfg, modality, epochs, batch_size, epoch_size, test_clips, seed, device, progress, r)
    index = probe_manifest(manifest, progress=progress)
    lrs = [float(lr) for lr in lrs]

    def per_fold(fold: Fold) -> dict:
        classes = list(fold.classes)
        train, skipped_train = prepare_entries(manifest.subset(fold.train), index, run.spec, classes)
        test, skipped_test = prepare_entries(manifest.subset(fold.test), index, run.spec, classes)
        sweep = {}
        if len(lrs) > 1:
            keep, val = carve_validation([e.label for e in train], val_fraction, seed)
            for lr in lrs:
                model, _ = run.train([train[i] for i in keep], len(classes), lr)
                scores = run.score(model, [train[i] for i in val])
                sweep[lr] = {"val_accuracy": scores["accuracy"], "val_loss": scores["loss"]}
        lr = choose(sweep) if sweep else lrs[0]
        model, loss = run.train(train, len(classes), lr)
        steps, clips_per_epoch = run.steps, run.clips_per_epoch
        scores = run.score(model, test)
        if grid_best and sweep:  # the papers' way: every rate trained on all of train and scored on test
            sweep[lr]["test_accuracy"] = scores["accuracy"]
            for other in sweep:
                if other != lr:
                    sweep[other]["test_accuracy"] = run.score(run.train(train, len(classes), other)[0], test)["accuracy"]
        return {"accuracy": scores["accuracy"], "clip_accuracy": scores["clip_accuracy"], "lr": lr,
                BEST_OVER_GRID: best_over_grid(sweep),
                "sweep": {str(k): v for k, v in sweep.items()},
                "train_loss": loss, "train_steps": steps, "clips_per_epoch": clips_per_epoch,
                "train_videos": len(train), "test_videos": len(test),
                "videos_without_features": len(skipped_train) + len(skipped_test)}

    settings = {"recipe": recipe, "lrs": lrs, "epochs": epochs, "batch_size": batch_size,
                "epoch_size": epoch_size or f"{r.clips_per_video:g} clips per training video", "test_clips": test_clips,
                "val_fraction": val_fraction, "pool": pool,
                **({"frames": source.cfg.video.num_frames} if modality == "video" else {}),
                "schedule": r.describe(), **({"reporting": REPORTING} if grid_best and len(lrs) > 1 else {})}
    metrics = ["accuracy", "clip_accuracy", *([BEST_OVER_GRID] if grid_best and len(lrs) > 1 else [])]
    result = {"evaluation": "finetune", "encoders": source.name, "modality": modality, "data": str(manifest.source),
              "settings": settings, **over_folds(fold_list, per_fold, metrics)}
    result["skipped_clips"] = run.skips.to_dict()
    header = {"encoders": source.name, "modality": modality, "data": manifest.source,
              "folds": ", ".join(result["folds"]), **settings}
    md = report_markdown("Full fine-tuning (encoder + new fc)", header, result, metrics,
                         _details)
    return write_report(out, "finetune", result, md)


def _details(r: dict) -> str:
    return (f"{describe_choice('lr', r['lr'], r['sweep'])}; final train loss {r['train_loss']:.3f}; "
            f"{r['train_videos']} train / {r['test_videos']} test videos")
