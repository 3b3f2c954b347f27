"""The pretraining engine shared by every method.

One run = the method's iterations x (method.begin_iteration, then method.max_epochs(iteration)
epochs of training on method.loss). For the deep-clustering methods an iteration is the paper's
deep-clustering iteration: extract features, k-means, route pseudo-labels, reset heads, train until
the pseudo-label validation loss stops improving. AVTS's iterations are its curriculum stages and
CrissCross has one; they have nothing to do at the start of an iteration, but their items are
several windows of a video, which the method's view plan for the iteration (``data.views``) sets.

    result = pretrain(resolve("cpu-small", "xdc"), "videos.csv", "runs/xdc")   # result.encoders_path

What the run directory holds is ``avssl.runs``'s to say; the parts of the trainer that keep it
(``run_folder``) and resume it (``resume``) are mixed into ``Pretrainer`` from their own modules, as
are the per-batch loops of an epoch, validation and precise BN (``epochs``).

Every random choice is derived from (seed, iteration, epoch, item), never from hidden global state,
so an interrupted run resumed from its last checkpoint ends where an uninterrupted one would.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from .. import seeds
from ..config import PretrainConfig
from ..data.dataset import SkipReport, prepare_entries
from ..data.pipeline import build_cache, clip_spec, make_dataset
from ..data.manifest import Manifest, load_manifest
from ..data.probe_index import probe_manifest
from ..errors import ConfigError, TrainingDiverged
from ..runs import CHECKPOINT_FORMAT, encoders_payload
from ..methods import build_method, validate
from ..progress import epoch_line, iteration_line
from ..runlock import check_output_folder
from ..tracking import Trackers, check_trackers, open_trackers
from .. import distributed
from .device import pick_device
from .epochs import Epochs
from ..io import atomic_save
from .iteration import IterationContext
from .resume import Resume
from .run_folder import RunFolder
from .guards import weight_problems
from .precision import plan_for_encoders, to_memory_format
from .schedule import build_optimizer
from .stopping import new_stopper, stopped_groups, update_stopper

log = logging.getLogger("avssl.pretrain")


@dataclass
class RunResult:
    run_dir: Path
    encoders_path: Path
    history: list[dict]


class Pretrainer(RunFolder, Resume, Epochs):
    """Runs a pretraining job. ``data`` is a manifest CSV, a folder, or a Manifest."""

    tracker: Trackers | None = None  # TensorBoard event files and wandb of the run (rank 0, while ``run`` runs)

    def __init__(self, cfg: PretrainConfig, data, run_dir, resume: bool = False, progress: bool = True,
                 allow_data_change: bool = False, method=None):
        self.cfg = validate(cfg, None if method is None else type(method))  # the method's own checks too
        check_trackers(self.cfg)  # wandb asked for but not installed: refused before anything is written
        self.run_dir = check_output_folder(run_dir)
        self.allow_data_change = allow_data_change  # --resume re-maps a run onto changed data (datarecord.py)
        self._writing = False  # whether the run has begun writing (then an abort still writes skipped.json)
        self.device = pick_device(cfg.device)
        distributed.init(self.device.type)
        if self.device.type == "cuda" and distributed.active():
            self.device = torch.device("cuda", distributed.local_rank())
        self.progress = progress and distributed.is_main()  # one set of progress bars, not one per rank
        self.skips = SkipReport()
        self.centroids: dict[str, torch.Tensor] = {}  # of the current iteration's clusterings
        self._resume = resume
        self.resume_changes: dict = {}
        if resume:
            self._check_resume_config()  # may turn _resume off when there is nothing to resume
        torch.manual_seed(cfg.seed)
        self.method = (build_method(cfg) if method is None else method).to(self.device)
        # bf16 only as far as it is checked right on this machine, at the shapes of a training step
        encoders = {s: (e, self.method.slots[s]) for s, e in self.method.encoders.items()}
        self.precision_plan = plan_for_encoders(cfg, self.device, encoders,
                                                max(cfg.optim.batch_size // distributed.world_size(), 1),
                                                agree=distributed.broadcast_object)
        self.precision, self.memory_format = self.precision_plan.precision, self.precision_plan.memory_format
        to_memory_format(self.method, self.memory_format)
        self._bn_current = False  # whether BatchNorm statistics were recomputed since the last step
        self.manifest = data if isinstance(data, Manifest) else load_manifest(data)
        self.spec = clip_spec(cfg, self.method.modalities)
        self.iterations = self.method.num_iterations()
        # The view plan of every iteration (None: plain clips); videos must be long enough for all.
        self.plans = [self.method.view_plan(it) for it in range(self.iterations)]
        need = max([p.min_duration for p in self.plans if p is not None], default=None)
        if not distributed.is_main():
            distributed.barrier()  # wait for rank 0's probe, then read its cache
        index = probe_manifest(self.manifest, progress=self.progress)
        if distributed.is_main():
            distributed.barrier()
        classes = self.manifest.class_names() if self.manifest.labelled() else None
        self.entries, self.skips = prepare_entries(self.manifest, index, self.spec, classes, min_duration=need)
        self._check_data()
        labels = np.array([e.label for e in self.entries])
        self.ground_truth = labels if (labels >= 0).any() else None
        self.cache = build_cache(cfg.loader, self.spec)
        perm = seeds.keyed_rng(cfg.seed).permutation(len(self.entries))
        n_val = int(round(cfg.optim.val_fraction * len(self.entries)))
        n_val = min(max(n_val, 1 if cfg.optim.val_fraction > 0 else 0), len(self.entries) - 1)
        self.val_indices = np.sort(perm[:n_val])
        self.train_indices = np.sort(perm[n_val:])
        self.train_set = make_dataset(cfg, self.entries, self.spec, "train", seed=cfg.seed, cache=self.cache,
                                      plan=self.plans[0])
        self.extract_set = make_dataset(cfg, self.entries, self.spec, "extract", seed=cfg.seed,
                                        clips_per_video=cfg.clustering.clips_per_video, cache=self.cache)
        self.val_set = make_dataset(cfg, [self.entries[i] for i in self.val_indices], self.spec, "extract",
                                    seed=cfg.seed, clips_per_video=1, cache=self.cache, plan=self.plans[0])

    # --- set-up checks -------------------------------------------------------------------------
    def _check_data(self) -> None:
        n = len(self.entries)
        if n == 0:
            raise ConfigError(f"no usable videos in {self.manifest.source}: {self.skips.summary()}")
        self.method.check_data(self.entries, self.manifest)  # e.g. supervised: labels needed
        for name in getattr(self.method, "clusterings", {}):
            k = self.cfg.clustering.k_for(name)
            if k > n:
                raise ConfigError(f"clustering {name!r} asks for k={k} clusters but only {n} usable videos "
                                  f"are available; lower clustering.k")
        if n < 2:
            raise ConfigError("pretraining needs at least 2 usable videos")

    # --- loaders -----------------------------------------------------------------------------
    def extract_loader(self):
        """This rank's share of the extraction clips."""
        self.extract_set.set_epoch(0)
        data = self.extract_set
        if distributed.active():
            data = Subset(data, list(distributed.shard(len(data))))
        return self.loader(data, self.cfg.optim.batch_size)

    def skip_clip(self, path: str, reason: str) -> None:
        log.warning("skipped a clip of %s: %s", path, reason)
        self.skips.add(path, reason)

    # --- checkpoints -------------------------------------------------------------------------
    def _state(self, iteration, epoch, optimizer, stopper, done) -> dict:
        return {
            "format": CHECKPOINT_FORMAT, "config": self.cfg.to_dict(), "iteration": iteration,
            "epoch": epoch, "iteration_done": done, "method": self.method.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else {},
            "stopper": dict(stopper), "metrics_lines": self._metric_lines(),
            "centroids": dict(self.centroids), "torch_rng": torch.get_rng_state(),
            "videos_sha1": self._videos_sha1(), "slots": dict(self.method.slots),
            "supports_sync": self.method.supports_sync,
        }

    def _save(self, state: dict, name: str) -> None:
        """Checkpoints are written by one rank (the state is the same on all)."""
        if distributed.is_main():
            atomic_save(state, self.run_dir / "checkpoints" / name)
            if len(self.skips) != getattr(self, "_skips_written", -1):  # kept with the checkpoint, for a SIGKILL
                self._write_skips(final=False)

    # --- the run -----------------------------------------------------------------------------
    def run(self, max_iterations: int | None = None) -> RunResult:
        """Train; ``max_iterations`` stops early after that many iterations in total (to split a run).
        One process per run folder: its lock is taken before anything is written (``runlock``)."""
        lock = self._lock_run_dir()
        try:
            return self._run(max_iterations)
        except BaseException:
            if self._writing and distributed.is_main():  # what was skipped so far, also when a run aborts
                self._write_skips(aborting=True)
            raise
        finally:
            if self.tracker is not None:
                self.tracker.close()
                self.tracker = None
            if lock is not None:
                lock.release()

    def _run(self, max_iterations: int | None) -> RunResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "checkpoints").mkdir(exist_ok=True)
        state = self._load_last() if self._resume else None
        # Resumed at an iteration's end: its optimiser state, for a method that carries it on (AVTS).
        self._carried_optimizer = state["optimizer"] if state is not None and state["iteration_done"] else None
        if not self._resume and (self.run_dir / "checkpoints" / "last.pt").exists():
            raise ConfigError(f"{self.run_dir} already holds a run; pass --resume to continue it, "
                              f"or choose another --out")
        distributed.barrier()  # every rank has checked the run directory before rank 0 writes to it
        if distributed.is_main():
            if self._resume:
                self._merge_previous_skips()
            self._writing = True
            self.cfg.save(self.run_dir / "config.json")
            self._write_index()
            self.tracker = open_trackers(self.run_dir, self.cfg)
        history = []
        start_it = 0
        if state is not None:
            start_it = state["iteration"] + (1 if state["iteration_done"] else 0)
            log.info("resuming %s at iteration %d", self.run_dir, start_it)
            if self.resume_changes:  # e.g. a lower learning rate after a divergence: on the record
                log.info("resumed with %s", ", ".join(f"{k} {a} -> {b}" for k, (a, b) in self.resume_changes.items()))
                self._metrics({"resumed": True, "iteration": start_it,
                               "changed": {k: list(v) for k, v in self.resume_changes.items()}})
        end_it = self.iterations if max_iterations is None else min(self.iterations, max_iterations)
        for it in range(start_it, end_it):
            resume_state = state if (state is not None and state["iteration"] == it) else None
            history.append(self._iteration(it, resume_state))
            state = None
        if distributed.is_main():
            self._write_skips()
            if end_it == self.iterations:  # encoders.pt marks a finished run: not after a partial one
                self.export_encoders()
        distributed.barrier()
        return RunResult(self.run_dir, self.run_dir / "encoders.pt", history)

    def _iteration(self, it: int, resume_state: dict | None) -> dict:
        ctx = IterationContext(self, it)
        t_start = time.perf_counter()
        if resume_state is None:
            self.method.begin_iteration(ctx)
        else:  # begin_iteration's outcome is in the checkpoint: restore its log instead of redoing it
            ctx.log, ctx.times = resume_state["iteration_log"], resume_state["iteration_times"]
        for dataset in (self.train_set, self.val_set):
            dataset.set_plan(self.plans[it])
        self._record_pseudo_labels(it)
        self.model = self._wrap()  # after begin_iteration: its heads may be new
        optimizer = build_optimizer(self.cfg.optim, self.method.trainable_groups())
        if self.method.continues_optimizer and getattr(self, "_carried_optimizer", None):
            optimizer.load_state_dict(self._carried_optimizer)  # one optimiser through the iterations (AVTS)
        groups = self.method.stopping_groups()  # parts that stop early on their own (SDC), or None
        stopper = new_stopper(groups)
        first_epoch, last = 0, {}
        if resume_state is not None:
            optimizer.load_state_dict(resume_state["optimizer"])
            stopper = dict(resume_state["stopper"])
            first_epoch, last = resume_state["epoch"], resume_state["last_epoch"]
        if groups and not stopper["stopped"]:  # parts stopped before a resume stay frozen; a new iteration frees all
            self.method.set_stopped(stopped_groups(stopper))
            self.model = self._wrap()
        t_train = time.perf_counter()
        epochs = self.method.max_epochs(it)
        # The schedule spans this iteration's epochs, or (from an offset) the whole run's: iteration_schedule.
        o, lr_offset = self.method.iteration_schedule(it)

        def checkpoint(epoch: int, done: bool) -> dict:
            state = self._state(it, epoch, optimizer, stopper, done)
            # Through JSON: the logs may hold numpy scalars, which weights-only loading refuses.
            logs = json.loads(json.dumps({"iteration_log": ctx.log, "iteration_times": ctx.times, "last_epoch": last}))
            state.update(logs)
            return state

        for epoch in range(first_epoch, epochs):
            if stopper["stopped"]:
                break
            t_epoch = time.perf_counter()
            last = self._epoch(it, epoch, optimizer, o, lr_offset)
            self.refresh_bn_stats(seeds.epoch_key(it, epoch))
            problems = weight_problems(self.method)
            if problems:
                raise self._diverged(f"the weights exploded in iteration {it}, epoch {epoch} "
                                     f"({'; '.join(problems)})")
            parts = {k: 0.0 for keys in (groups or {}).values() for k in keys}  # each part's validation losses
            last["val_loss"] = self._validate(parts)
            last.update({f"val_{k}": v for k, v in parts.items()})
            if len(self.val_indices) and not math.isfinite(last["val_loss"]):
                raise self._diverged(f"the validation loss became {last['val_loss']} after iteration {it}, epoch {epoch}")
            newly = update_stopper(stopper, last["val_loss"], o.early_stop, parts, groups)
            if newly:  # these parts stop here and are frozen from the next epoch on; the others train on
                last["stopped_parts"] = stopped_groups(stopper)
                if not stopper["stopped"]:  # (when all have stopped, the iteration ends here)
                    self.method.set_stopped(stopped_groups(stopper))
                    self.model = self._wrap()
                log.info("iteration %d: %s stopped early after epoch %d (its validation loss rose %d times in a row)",
                         it, " and ".join(newly), epoch, o.early_stop)
            # e.g. recluster=epoch: new pseudo-labels and heads for the next epoch (their old momentum dropped)
            last.update(self.method.end_epoch(ctx, epoch, another=epoch + 1 < epochs and not stopper["stopped"]))
            for p in ctx.renewed:
                optimizer.state.pop(p, None)
            ctx.renewed.clear()
            self._metrics({"iteration": it, "epoch": epoch, **last})
            log.info(epoch_line(it, epoch, epochs, last, time.perf_counter() - t_epoch))
            # Not "done" yet: the iteration's summary and iter_XX.pt come after the last epoch.
            self._save(checkpoint(epoch + 1, False), "last.pt")
            if stopper["stopped"] and not groups:
                log.info("iteration %d: early stop after epoch %d (validation loss rose %d times in a row)",
                         it, epoch, stopper["increases"])
        times = {**ctx.times, "train": time.perf_counter() - t_train, "total": time.perf_counter() - t_start}
        summary = {"iteration": it, "summary": True, **ctx.log, "last_epoch": last, "times": times,
                   "precision": self.precision, "memory_format": self.memory_format,
                   "precision_check": self.precision_plan.to_dict()}
        self._metrics(summary)
        self._write_curves()
        state = checkpoint(epochs, True)
        self._carried_optimizer = state["optimizer"]  # for a method that continues it (continues_optimizer)
        self._save(state, f"iter_{it:02d}.pt")
        self._save(state, "last.pt")
        if distributed.is_main():
            log.info(iteration_line(summary))  # once: the bars of the iteration are closed by now
        return summary

    def _diverged(self, what: str) -> "TrainingDiverged":
        """The error that stops a diverged run, with the way forward that really exists."""
        self._write_curves()
        last = self.run_dir / "checkpoints" / "last.pt"
        lr = self.cfg.optim.lr
        if last.exists():
            where = (f"the last good checkpoint is {last}; continue from it with a lower learning rate: "
                     f"avssl pretrain --resume --out {self.run_dir} --set optim.lr={lr / 10:g}")
        else:
            where = (f"no checkpoint was written before (it diverged in its first epoch); start again with a "
                     f"lower learning rate, e.g. --set optim.lr={lr / 10:g}")
        if self.precision == "bf16":
            where += " (or --set precision=fp32)"
        return TrainingDiverged(f"{what}; {where}")

    def _wrap(self):
        """The method itself, or wrapped in DistributedDataParallel when torchrun started several ranks."""
        if not distributed.active():
            return self.method
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        if self.cfg.sync_batchnorm:
            if self.device.type == "cuda":
                self.method = nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
            else:
                log.warning("sync_batchnorm needs GPUs (PyTorch has no CPU SyncBatchNorm); using per-rank BatchNorm")
        # Some methods leave parts unused in some steps (e.g. uni-modal CrissCross variants).
        return DistributedDataParallel(self.method, device_ids=ids, find_unused_parameters=True)

    def export_encoders(self) -> Path:
        """Write the encoders (by slot) with what is needed to rebuild them: ``encoders.pt``."""
        problems = weight_problems(self.method)
        if problems:  # never hand broken weights to evaluation
            raise self._diverged(f"the final weights are broken ({'; '.join(problems)})")
        payload = encoders_payload(self.cfg.method, self.cfg.to_dict(), self.method.slots,
                                   self.method.encoder_states(), self.method.head_states())
        return atomic_save(payload, self.run_dir / "encoders.pt")


def pretrain(cfg: PretrainConfig, data, run_dir, resume: bool = False, progress: bool = True,
             allow_data_change: bool = False, method=None) -> RunResult:
    """Python API: pretrain ``cfg.method`` on ``data`` (manifest CSV, folder or Manifest) into ``run_dir``.
    ``allow_data_change``: let ``resume`` continue on other videos than the run recorded (``datarecord``).
    ``method``: a method instance to train instead of the pretext method ``cfg.method`` names (a
    workflow's own, e.g. long-clip retraining's; ``cfg.method`` is then its name)."""
    return Pretrainer(cfg, data, run_dir, resume=resume, progress=progress,
                      allow_data_change=allow_data_change, method=method).run()
