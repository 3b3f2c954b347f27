"""The per-batch loops of pretraining: one training epoch (its steps are ``step.train_step``, the one
fine-tuning takes too), the validation loss, and precise BN's pass.

    class Pretrainer(RunFolder, Resume, Epochs): ...   # engine.pretrain's trainer runs its epochs here

Each loop takes its batches from ``self.loader`` (``data.pipeline.make_loader``); a training epoch's
order comes from ``data.pipeline.epoch_order``, seeded by (seed, iteration, epoch), so a resumed
run trains on the same batches as an uninterrupted one.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch.utils.data import Subset

from .. import distributed, seeds
from ..data.pipeline import epoch_order, make_loader
from ..progress import progress
from .precise_bn import recompute_bn_stats
from .precision import autocast, batch_to_device
from .schedule import learning_rate
from .step import train_step


@contextmanager
def collecting(method):
    """``method.collecting`` while the block runs (training steps and validation, not precise BN)."""
    method.collecting = True
    try:
        yield
    finally:
        method.collecting = False


class Epochs:
    """Mixed into ``engine.pretrain.Pretrainer``: uses its ``cfg``, ``method``, ``model``, ``device``,
    ``precision``, ``memory_format``, the datasets and their train/validation indices."""

    def loader(self, dataset, batch_size: int = 1, batches=None):
        """The batches of ``dataset`` on this run's loader settings (``data.pipeline.make_loader``)."""
        return make_loader(dataset, self.cfg.loader, self.device, batch_size=batch_size, batches=batches)

    def _epoch(self, it: int, epoch: int, optimizer, o, lr_offset: int = 0) -> dict:
        self.method.train()
        key = seeds.epoch_key(it, epoch)  # seeds clip starts and augmentation of this epoch
        self.train_set.set_epoch(key)
        n = o.epoch_size or len(self.train_indices)
        weights = self.method.sample_weights()
        subset = Subset(self.train_set, self.train_indices.tolist())
        order = epoch_order(len(subset), n, self.cfg.seed, key,
                            weights=None if weights is None else weights[self.train_indices])
        # The order is global (same on every rank); each rank takes its slice of every global batch.
        batches = distributed.shard_batches(order, o.batch_size, drop_last=n > o.batch_size)
        loader = self.loader(subset, batches=batches)
        steps = max(len(loader), 1)
        sums: dict[str, float] = {}
        count = 0
        bar = progress(loader, f"iter {it} epoch {epoch}", enabled=self.progress, leave=False, unit="batch")
        with collecting(self.method):  # a method may keep the features of its steps
            for step, batch in enumerate(bar):
                for path, reason in batch.get("skipped", []):
                    self.skip_clip(path, reason)
                # Every rank must take (or skip) a step together, or DistributedDataParallel would hang.
                if distributed.any_rank(len(batch.get("index", ())) < self.method.min_batch_size):
                    continue
                logs = train_step(
                    self.model, batch_to_device(batch, self.device, self.memory_format), optimizer,
                    learning_rate(o, lr_offset + epoch + step / steps), device=self.device, precision=self.precision,
                    diverged=lambda loss: self._diverged(f"the training loss became {loss} at iteration {it}, "
                                                         f"epoch {epoch}, step {step}"),
                    clip_params=self.method.parameters(), clip_grad_norm=o.clip_grad_norm)
                self._bn_current = False
                count += 1
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix(loss=f"{logs['loss']:.3f}")
        keys = sorted(sums)
        totals = distributed.all_reduce_sum([sums[k] for k in keys])  # averages over every rank's steps
        out = {k: v / max(count * distributed.world_size(), 1) for k, v in zip(keys, totals)}
        out["lr"] = learning_rate(o, lr_offset + epoch)
        out["steps"] = count
        return out

    def refresh_bn_stats(self, key: int, encoders_only: bool = False) -> None:
        """Precise BN: recompute BatchNorm statistics on ``optim.precise_bn_clips`` training clips with
        the current weights, so the eval-mode network (validation, feature extraction, the exported
        encoders) is the one that trained. ``key`` seeds the choice and augmentation of the clips, like an
        epoch's; ``encoders_only`` runs the encoders alone (before clustering, when heads may not exist)."""
        n = self.cfg.optim.precise_bn_clips
        if n == 0 or self._bn_current:
            return
        self.train_set.set_epoch(key)
        gen = seeds.rng(self.cfg.seed, seeds.PRECISE_BN, key + 1)
        chosen = gen.choice(self.train_indices, size=min(n, len(self.train_indices)), replace=False)
        # Every rank runs all the chosen clips in global batches: the same statistics whatever the number
        # of processes (a batch's statistics depend on its composition), at the cost of a few forwards.
        loader = self.loader(Subset(self.train_set, sorted(chosen.tolist())), self.cfg.optim.batch_size)
        size = self.method.min_batch_size

        def batches():
            for batch in loader:
                if len(batch.get("index", ())) >= max(size, 2):  # BatchNorm needs 2 items in train mode
                    yield batch_to_device(batch, self.device, self.memory_format)

        def forward(batch):
            with autocast(self.device, self.precision):
                if encoders_only:
                    for slot in self.method.encoders:
                        self.method.encode(slot, batch)
                else:
                    self.method.loss(batch)

        recompute_bn_stats(self.method, forward, batches())
        self._bn_current = not encoders_only

    @torch.no_grad()
    def _validate(self, parts: dict | None = None) -> float:
        """The validation loss; ``parts`` ({log key: anything}) gets the mean of each of those logs, and of
        every loss term (``loss_*``) the method logs, too: which term rises shows what is memorised."""
        if len(self.val_indices) == 0:
            if parts is not None:
                parts.update({k: float("nan") for k in parts})
            return float("nan")
        self.method.eval()
        total, n = 0.0, 0
        sums: dict[str, float] = {k: 0.0 for k in (parts or {})}
        data = Subset(self.val_set, list(distributed.shard(len(self.val_set))))
        with collecting(self.method):
            for batch in self.loader(data, self.cfg.optim.batch_size):
                if "index" not in batch:
                    continue
                batch = batch_to_device(batch, self.device, self.memory_format)
                with autocast(self.device, self.precision):
                    loss, logs = self.method.loss(batch)
                total += float(loss) * len(batch["index"])
                for k in set(sums) | {k for k in logs if k.startswith("loss_")}:
                    sums[k] = sums.get(k, 0.0) + float(logs.get(k, math.nan)) * len(batch["index"])
                n += len(batch["index"])
        self.method.train()
        keys = sorted(sums)  # the same on every rank: the same method logs the same terms
        total, n, *values = distributed.all_reduce_sum([total, n, *(sums[k] for k in keys)])
        if parts is not None:
            parts.update({k: v / max(n, 1) for k, v in zip(keys, values)})
        return total / max(n, 1)
