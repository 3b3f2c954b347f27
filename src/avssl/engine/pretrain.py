"""The pretraining engine shared by every method.

One run = the method's iterations x (method.begin_iteration, then method.max_epochs(iteration)
epochs of training on method.loss). For the deep-clustering methods an iteration is the paper's
deep-clustering iteration: extract features, k-means, route pseudo-labels, reset heads, train until
the pseudo-label validation loss stops improving. AVTS's iterations are its curriculum stages and
CrissCross has one; they have nothing to do at the start of an iteration, but their items are
several windows of a video, which the method's view plan for the iteration (``data.views``) sets.

The run directory holds: ``config.json`` (resolved config), ``checkpoints/last.pt`` (after every
epoch, for ``--resume``), ``checkpoints/iter_XX.pt`` (after every iteration), ``metrics.jsonl``,
``skipped.json``, ``clusters/`` (the last iteration's assignments, centroids and features, for
inspection) and finally ``encoders.pt``, the trained encoders that evaluation reads.

Every random choice is derived from (seed, iteration, epoch, item), never from hidden global state,
so an interrupted run resumed from its last checkpoint ends where an uninterrupted one would.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Subset, WeightedRandomSampler

from ..clustering.kmeans import kmeans
from ..clustering.metrics import cluster_size_stats, label_report, nmi
from ..config import RESUME_CHANGEABLE, PretrainConfig, config_differences, validate
from ..curves import write_curves
from ..data.dataset import (
    MODALITIES, SkipReport, build_cache, clip_spec, collate_clips, make_dataset, num_workers, prepare_entries,
)
from ..data.views import window_modality
from ..data.manifest import Manifest, load_manifest
from ..data.probe_index import probe_manifest
from ..errors import AvsslError, ConfigError
from ..encoders import ENCODERS_FORMAT
from ..methods import build_method
from ..progress import epoch_line, fmt_number, progress
from ..runlock import RunLock, check_output_folder
from ..tracking import Tracker
from . import distributed
from .checkpoint import atomic_save, atomic_write_text, load_checkpoint
from . import datarecord
from .extract import extract_features
from .guards import weight_problems
from .precise_bn import recompute_bn_stats
from .precision import autocast, plan_for_encoders, to_memory_format, video_input
from .handcrafted import handcrafted_features
from .schedule import build_optimizer, learning_rate, set_learning_rate
from .stopping import new_stopper, stopped_groups, update_stopper

log = logging.getLogger("avssl.pretrain")

CHECKPOINT_FORMAT = "avssl-pretrain/1"


class TrainingDiverged(AvsslError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class RunResult:
    run_dir: Path
    encoders_path: Path
    history: list[dict]


class IterationContext:
    """What a method may ask for at the start of an iteration: features of its slots, and k-means."""

    def __init__(self, trainer: "Pretrainer", iteration: int):
        self.trainer, self.iteration = trainer, iteration
        self.log: dict = {"clusters": {}}
        self.times = {"extract": 0.0, "cluster": 0.0}

    def features(self, slot_modalities: dict[str, str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-video features {slot: (array (N, D), valid)} from the current encoders (or, in the first
        iteration with ``clustering.init=handcrafted``, hand-crafted features of each slot's modality)."""
        t = self.trainer
        t0 = time.perf_counter()
        out_dir = t.run_dir / "features"
        if not distributed.is_main():  # every rank sums its shard; rank 0 receives the totals
            out_dir = out_dir / f"rank{distributed.rank()}"
        if self.iteration == 0 and t.cfg.clustering.init == "handcrafted":
            feats = handcrafted_features(t.extract_loader(), len(t.entries), slot_modalities, out_dir,
                                         reduce=distributed.reduce_to_main)
        else:
            t.refresh_bn_stats(10_000_000 + self.iteration, encoders_only=True)  # a key no epoch uses
            encoders = {s: (t.method.encoders[s], m) for s, m in slot_modalities.items()}
            feats = extract_features(
                encoders, t.extract_loader(), len(t.entries), out_dir, t.device, t.precision,
                progress=t.progress and distributed.is_main(), desc=f"iter {self.iteration} extract",
                on_skip=t.skip_clip, reduce=distributed.reduce_to_main,
            )
        self.times["extract"] += time.perf_counter() - t0
        return feats

    def cluster(self, name: str, x: np.ndarray, valid: np.ndarray, k: int, previous=None) -> np.ndarray:
        """k-means of the valid rows of ``x``; returns labels for all rows (-1 where not valid) and
        records cluster statistics (sizes, NMI with the previous iteration, label diagnostics)."""
        t = self.trainer
        t0 = time.perf_counter()
        if not distributed.is_main():  # k-means runs once, on rank 0; every rank gets its labels
            labels = distributed.broadcast_array(None, like_shape=(len(x),))
            self.times["cluster"] += time.perf_counter() - t0
            return labels
        rows = np.flatnonzero(valid)
        c = t.cfg.clustering
        result = kmeans(x[rows] if len(rows) < len(x) else x, k, seed=t.cfg.seed + 7919 * self.iteration,
                        niter=c.niter, pca_dim=c.pca_dim, l2_normalize=c.l2_normalize, gpu=c.gpu,
                        assign=c.assign, sinkhorn_epsilon=c.sinkhorn_epsilon)
        labels = np.full(len(x), -1, dtype=np.int64)
        labels[rows] = result.assignments
        self.times["cluster"] += time.perf_counter() - t0
        stats = {"sizes": cluster_size_stats(result.assignments, k), "reseeded": result.reseeded,
                 "objective": result.objective}
        if previous is not None and len(previous) == len(labels):
            both = (labels >= 0) & (previous.numpy() >= 0)
            stats["nmi_previous"] = nmi(labels[both], previous.numpy()[both])
        gt = t.ground_truth
        if gt is not None:
            ok = (labels >= 0) & (gt >= 0)
            if ok.any():
                stats["vs_labels"] = label_report(labels[ok], gt[ok])
        self.log["clusters"][name] = stats
        t.centroids[name] = torch.from_numpy(result.centroids)
        t.save_clustering(name, labels, result, rows)
        return distributed.broadcast_array(labels)

    def labels(self) -> np.ndarray | None:
        """Per-video label ids from the manifest (-1 where unlabelled), or None when it has no labels."""
        return self.trainer.ground_truth


class Pretrainer:
    """Runs a pretraining job. ``data`` is a manifest CSV, a folder, or a Manifest."""

    tracker: Tracker | None = None  # TensorBoard event files of the run (rank 0, while ``run`` runs)

    def __init__(self, cfg: PretrainConfig, data, run_dir, resume: bool = False, progress: bool = True,
                 allow_data_change: bool = False):
        self.cfg = validate(cfg)
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
        self.method = build_method(cfg).to(self.device)
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
        perm = np.random.default_rng(cfg.seed).permutation(len(self.entries))
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
    def _check_resume_config(self) -> None:
        saved = self.run_dir / "config.json"
        if not saved.exists():  # nothing to resume yet: start, so one command serves first and requeued jobs
            log.info("--resume: %s holds no run yet; starting a new one", self.run_dir)
            self._resume = False
            return
        saved_cfg = PretrainConfig.load(saved)
        refused = config_differences(saved_cfg, self.cfg, ignore=RESUME_CHANGEABLE)
        if refused:
            diff = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in refused)
            raise ConfigError(f"--resume: the config differs from the saved run ({diff}); resume with the same "
                              f"settings (a resumed run may change only {', '.join(sorted(RESUME_CHANGEABLE))}), "
                              f"or start a new run directory")
        changes = {k: (a, b) for k, a, b in config_differences(saved_cfg, self.cfg)}
        self.resume_changes = changes  # recorded in metrics.jsonl when the run goes on

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
    def _loader(self, dataset, batch_size=1, batch_sampler=None) -> DataLoader:
        workers = num_workers(self.cfg.loader, self.device)
        kw = {"batch_sampler": batch_sampler} if batch_sampler is not None else {"batch_size": batch_size}
        return DataLoader(
            dataset, shuffle=False, num_workers=workers, collate_fn=collate_clips,
            pin_memory=self.device.type == "cuda", prefetch_factor=4 if workers else None,
            persistent_workers=False, **kw,
        )

    def extract_loader(self) -> DataLoader:
        """This rank's share of the extraction clips."""
        self.extract_set.set_epoch(0)
        data = self.extract_set
        if distributed.active():
            data = Subset(data, list(distributed.shard(len(data))))
        return self._loader(data, self.cfg.optim.batch_size)

    def skip_clip(self, path: str, reason: str) -> None:
        log.warning("skipped a clip of %s: %s", path, reason)
        self.skips.add(path, reason)

    # --- outputs -----------------------------------------------------------------------------
    def save_clustering(self, name: str, labels: np.ndarray, result, rows: np.ndarray) -> None:
        d = self.run_dir / "clusters"
        d.mkdir(parents=True, exist_ok=True)
        dist = np.full(len(labels), np.nan, dtype=np.float32)
        dist[rows] = result.distances
        np.save(d / f"{name}_assignments.npy", labels)
        np.save(d / f"{name}_distances.npy", dist)
        np.save(d / f"{name}_centroids.npy", result.centroids)

    def _write_index(self) -> None:
        """``videos.csv``: the usable videos in the order of every per-video table, with each file's size
        and modification time, which ``--resume`` checks (``datarecord``)."""
        classes = self.manifest.class_names() if self.manifest.labelled() else []
        stamped = self._stamped_entries()
        rows = [(e.index, v, classes[e.label] if e.label >= 0 else "") for e, v in zip(self.entries, stamped)]
        atomic_write_text(self.run_dir / "videos.csv", datarecord.format_index(rows))

    def _stamped_entries(self) -> list:
        if getattr(self, "_stamped", None) is None:
            self._stamped = [datarecord.stamp(e.path) for e in self.entries]
        return self._stamped

    def _videos_sha1(self) -> str:
        """Names the order of the videos that the per-video tables of this run's checkpoints follow."""
        if getattr(self, "_sha1", None) is None:
            self._sha1 = datarecord.paths_digest(e.path for e in self.entries)
        return self._sha1

    def _metrics(self, record: dict) -> None:
        if not distributed.is_main():
            return
        record = {**record, "time": round(time.time(), 3)}  # wall clock, unix seconds (avssl status reads it)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tracker is not None:  # the same record as TensorBoard scalars
            self.tracker.write(record)

    # --- checkpoints -------------------------------------------------------------------------
    def _state(self, iteration, epoch, optimizer, stopper, done) -> dict:
        return {
            "format": CHECKPOINT_FORMAT, "config": self.cfg.to_dict(), "iteration": iteration,
            "epoch": epoch, "iteration_done": done, "method": self.method.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else {},
            "stopper": dict(stopper), "metrics_lines": self._metric_lines(),
            "centroids": dict(self.centroids), "torch_rng": torch.get_rng_state(),
            "videos_sha1": self._videos_sha1(),
        }

    def _save(self, state: dict, name: str) -> None:
        """Checkpoints are written by one rank (the state is the same on all)."""
        if distributed.is_main():
            atomic_save(state, self.run_dir / "checkpoints" / name)
            if len(self.skips) != getattr(self, "_skips_written", -1):  # kept with the checkpoint, for a SIGKILL
                self._write_skips(final=False)

    def _metric_lines(self) -> int:
        p = self.run_dir / "metrics.jsonl"
        return sum(1 for _ in open(p)) if p.exists() else 0

    def _load_last(self) -> dict | None:
        p = self.run_dir / "checkpoints" / "last.pt"
        if not p.exists():
            return None
        state = load_checkpoint(p, map_location=self.device)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(f"{p} is not an avssl pretraining checkpoint")
        change = self._check_resume_data(state)  # refuses changed data before anything is written
        if change is not None:  # --allow-data-change: maybe from an earlier state (an iteration boundary)
            state = self._state_for_changed_data(state, change)
            if state is None:
                return None
        self.method.load_state_dict(state["method"])
        self.method.to(self.device)
        self.centroids = dict(state.get("centroids", {}))
        self._bn_current = True  # every checkpoint is written after the statistics were recomputed
        torch.set_rng_state(state["torch_rng"])
        if change is not None:
            self._remap_to_changed_data(state, change)
        mp = self.run_dir / "metrics.jsonl"
        if mp.exists() and distributed.is_main():  # drop lines written after the checkpoint we resume from
            lines = open(mp).read().splitlines(keepends=True)[: state["metrics_lines"]]
            atomic_write_text(mp, "".join(lines))
        return state

    # --- the run folder: its lock, the data it records, the skip report ------------------------
    def _lock_run_dir(self) -> RunLock | None:
        """Rank 0 holds the run folder's lock for the whole run (under torchrun every rank learns whether
        it was granted, so that all stop together when another process holds it)."""
        lock = error = None
        if distributed.is_main():
            try:
                lock = RunLock(self.run_dir).acquire()
            except Exception as e:  # noqa: BLE001 - re-raised below, after the other ranks were told
                error = e
        refused = distributed.broadcast_object(None if error is None else str(error))
        if error is not None:
            raise error
        if refused is not None:
            raise AvsslError(refused)
        return lock

    def _check_resume_data(self, state: dict):
        """Compare the usable videos with those the run recorded (``videos.csv``: order, sizes, times).
        None when they match; refuses when they differ, before anything is written, unless
        ``allow_data_change``: then (recorded, current, differences)."""
        index = self.run_dir / "videos.csv"
        recorded = datarecord.read_index(index)
        if recorded is None:
            log.warning("--resume: %s has no videos.csv, so the data cannot be checked against the run", self.run_dir)
            return None
        current = self._stamped_entries()
        saved = state.get("videos_sha1")  # the list the checkpoint's per-video tables follow
        if saved is not None and saved != datarecord.paths_digest(v.path for v in recorded):
            if saved == self._videos_sha1():
                return None  # a data change was accepted and checkpointed, then the process died before videos.csv
            raise datarecord.DataChanged(
                f"--resume: {self.run_dir / 'checkpoints' / 'last.pt'} was written for another list of videos than "
                f"{index} records, so the run folder is inconsistent (was a file copied from another run?); "
                f"start a new run (another --out)")
        change = datarecord.compare(recorded, current)
        if change.unstamped:
            log.info("--resume: %s records no file sizes and times (an older avssl): only the paths and their "
                     "order were checked", index)
        if not change:
            return None
        if not self.allow_data_change:
            raise datarecord.DataChanged(
                f"--resume: the usable videos are not the ones the run in {self.run_dir} was trained on "
                f"({len(recorded)} recorded in videos.csv, {len(current)} now):\n{change.describe()}\n"
                f"Nothing was written. Resume with the recorded data, start a new run (another --out), or pass "
                f"--allow-data-change to continue this run on the new data (videos are matched by path; see "
                f"the README)")
        log.warning("--resume --allow-data-change: continuing on changed data:\n%s", change.describe())
        self._fresh_paths = set(change.added) | {p for p, _ in change.changed}
        return recorded, current, change

    def _state_for_changed_data(self, state: dict, change) -> dict | None:
        """The state to continue from on changed data. Pseudo-labels are never carried into the middle of
        an iteration on another list of videos (an added video has none, and a batch of such videos has
        no loss): a method with per-video pseudo-labels goes back to the end of its last finished
        iteration (``iter_XX.pt``), whose next iteration clusters the new data before training on it,
        or starts over when its first iteration was not finished (None). A method without them (AVTS,
        CrissCross) continues where it stopped."""
        if not isinstance(getattr(self.method, "pseudo_labels", None), dict) or state["iteration_done"]:
            return state
        it = state["iteration"]
        if it == 0:
            log.warning("--allow-data-change: the first iteration was not finished; the run starts over on the new data")
            if distributed.is_main():
                self._record_data_change(change[2], "started over (the first iteration was not finished)")
                (self.run_dir / "checkpoints" / "last.pt").unlink(missing_ok=True)
                atomic_write_text(self.run_dir / "metrics.jsonl", "")
            return None
        earlier = self.run_dir / "checkpoints" / f"iter_{it - 1:02d}.pt"
        if not earlier.exists():
            raise datarecord.DataChanged(
                f"--allow-data-change: continuing on new data goes back to the end of iteration {it - 1} "
                f"({earlier}), which is missing; resume with the recorded data or start a new run")
        log.warning("--allow-data-change: going back from iteration %d, epoch %d to the end of iteration %d, so that "
                    "the new data is clustered before it is trained on", it, state["epoch"], it - 1)
        earlier_state = load_checkpoint(earlier, map_location=self.device)
        if earlier_state.get("videos_sha1") not in (None, datarecord.paths_digest(v.path for v in change[0])):
            # its tables follow a list from before an earlier data change: not re-mappable, and only used to
            # compare the next clustering with (NMI); the next iteration makes new ones
            extra = earlier_state["method"].get("_extra_state")
            if isinstance(extra, dict) and "pseudo_labels" in extra:
                earlier_state["method"]["_extra_state"] = {**extra, "pseudo_labels": {}}
        return earlier_state

    def _remap_to_changed_data(self, state: dict, change) -> None:
        """Re-map the loaded per-video tables (pseudo-labels, ``clusters/``) from the recorded videos to the
        current ones by path, then checkpoint that state: its ``videos_sha1`` then names the new list
        (written before videos.csv, see ``_check_resume_data``)."""
        recorded, current, diff = change
        rows = datarecord.remap_rows(recorded, current, diff)
        tables = getattr(self.method, "pseudo_labels", None)
        for name, table in (tables or {}).items():
            if len(table) == len(recorded):
                tables[name] = torch.from_numpy(datarecord.remap(table.cpu().numpy(), rows, -1))
        if not distributed.is_main():
            return
        state["method"] = self.method.state_dict()
        state["videos_sha1"] = self._videos_sha1()
        atomic_save(state, self.run_dir / "checkpoints" / "last.pt")
        for f in sorted((self.run_dir / "clusters").glob("*_assignments.npy")) + sorted(
                (self.run_dir / "clusters").glob("*_distances.npy")):
            try:
                table = np.load(f, allow_pickle=False)
            except (OSError, ValueError):
                continue
            if len(table) == len(recorded):
                tmp = f.with_name(f".{f.name}.remap.npy")
                np.save(tmp, datarecord.remap(table, rows, -1 if table.dtype.kind in "iu" else np.nan))
                tmp.replace(f)
        where = "at an iteration boundary" if state["iteration_done"] else "mid-iteration"
        self._record_data_change(diff, f"continued from iteration {state['iteration']}, epoch {state['epoch']} "
                                       f"({where}); pseudo-labels re-mapped by path")

    def _record_data_change(self, diff, what: str) -> None:
        """One line per accepted data change in ``data_changes.jsonl``."""
        from datetime import datetime

        record = {"time": datetime.now().astimezone().isoformat(timespec="seconds"), "what": what, **diff.counts(),
                  "examples": {"removed": diff.removed[:20], "added": diff.added[:20],
                               "reordered": [m[0] for m in diff.moved[:20]], "changed": [c[0] for c in diff.changed[:20]]}}
        with open(self.run_dir / "data_changes.jsonl", "a", encoding="utf-8", errors="surrogateescape") as f:
            f.write(json.dumps(record) + "\n")

    def _merge_previous_skips(self) -> None:
        """A resumed run keeps the files its earlier part found unusable (while decoding, too)."""
        p = self.run_dir / "skipped.json"
        try:
            previous = json.loads(p.read_text(encoding="utf-8", errors="surrogateescape")) if p.exists() else None
        except (OSError, ValueError) as e:
            log.warning("--resume: ignoring unreadable %s (%s)", p, e)
            return
        if not isinstance(previous, dict):
            return
        present = {item.path for item in self.manifest}
        # A file the run used (videos.csv) and the data no longer has is gone from the report; one left out
        # when probed stays (a resume without --data lists only the used videos); an added or changed one
        # is judged anew.
        recorded = {v.path for v in datarecord.read_index(self.run_dir / "videos.csv") or []}
        fresh = getattr(self, "_fresh_paths", set())
        kept = self.skips.merge(previous, keep=lambda path: (path in present or path not in recorded)
                                and path not in fresh)
        if kept:
            log.info("--resume: %d file(s) found unusable before the restart stay in the skip report", kept)

    def _write_skips(self, final: bool = True, aborting: bool = False) -> None:
        """``skipped.json``; at the end (or an abort) the summary, with each file's reason, on the console."""
        try:
            atomic_write_text(self.run_dir / "skipped.json",
                              json.dumps(self.skips.to_dict(), indent=2, ensure_ascii=True))
        except (OSError, AvsslError) as e:
            if not aborting:
                raise
            log.warning("could not write %s: %s", self.run_dir / "skipped.json", e)
            return
        self._skips_written = len(self.skips)
        if final and len(self.skips):
            log.warning("%s:\n%s", self.skips.summary(), self.skips.details())

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
            self.tracker = Tracker.open(self.run_dir, self.cfg.logging.tensorboard)
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
            self.refresh_bn_stats(it * 10007 + epoch)
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
        self._print_summary(summary)
        return summary

    def _epoch(self, it: int, epoch: int, optimizer, o, lr_offset: int = 0) -> dict:
        self.method.train()
        key = it * 10007 + epoch  # seeds clip starts and augmentation of this epoch
        self.train_set.set_epoch(key)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + key)
        n = o.epoch_size or len(self.train_indices)
        weights = self.method.sample_weights()
        subset = Subset(self.train_set, self.train_indices.tolist())
        if weights is not None:
            sampler = WeightedRandomSampler(torch.as_tensor(weights[self.train_indices]), n, generator=gen)
        else:
            sampler = RandomSampler(subset, replacement=n > len(subset), num_samples=n, generator=gen)
        # The order is global (same on every rank); each rank takes its slice of every global batch.
        batches = distributed.shard_batches(list(sampler), o.batch_size, drop_last=n > o.batch_size)
        loader = self._loader(subset, batch_sampler=batches)
        steps = max(len(loader), 1)
        sums: dict[str, float] = {}
        count = 0
        bar = progress(loader, f"iter {it} epoch {epoch}", enabled=self.progress, leave=False, unit="batch")
        for step, batch in enumerate(bar):
            for path, reason in batch.get("skipped", []):
                self.skip_clip(path, reason)
            # Every rank must take (or skip) a step together, or DistributedDataParallel would hang.
            if distributed.any_rank(len(batch.get("index", ())) < self.method.min_batch_size):
                continue
            set_learning_rate(optimizer, learning_rate(o, lr_offset + epoch + step / steps))
            batch = self._to_device(batch)
            with autocast(self.device, self.precision):
                loss, logs = self.model(batch)
            if not torch.isfinite(loss):
                raise self._diverged(f"the training loss became {float(loss.detach())} at iteration {it}, "
                                     f"epoch {epoch}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            logs["grad_norm"] = self._clip_gradients(o)
            optimizer.step()
            self._bn_current = False
            count += 1
            logs["loss"] = float(loss.detach())
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss=f"{logs['loss']:.3f}")
        keys = sorted(sums)
        totals = distributed.all_reduce_sum([sums[k] for k in keys])  # averages over every rank's steps
        out = {k: v / max(count * distributed.world_size(), 1) for k, v in zip(keys, totals)}
        out["lr"] = learning_rate(o, lr_offset + epoch)
        out["steps"] = count
        return out

    def _write_curves(self) -> None:
        """``curves.png`` from ``metrics.jsonl``; a picture that cannot be drawn never stops a run."""
        if not distributed.is_main():
            return
        try:
            write_curves(self.run_dir)
        except Exception as e:  # noqa: BLE001 - plotting is a convenience
            log.warning("could not draw %s: %s", self.run_dir / "curves.png", e)

    def _clip_gradients(self, o) -> float:
        """The gradient's global L2 norm before clipping (clipped to ``optim.clip_grad_norm`` when set)."""
        params = [p for p in self.method.parameters() if p.grad is not None]
        limit = o.clip_grad_norm if o.clip_grad_norm is not None else math.inf
        return float(torch.nn.utils.clip_grad_norm_(params, limit)) if params else 0.0

    def refresh_bn_stats(self, key: int, encoders_only: bool = False) -> None:
        """Precise BN: recompute BatchNorm statistics on ``optim.precise_bn_clips`` training clips with
        the current weights, so the eval-mode network (validation, feature extraction, the exported
        encoders) is the one that trained. ``key`` seeds the choice and augmentation of the clips, like an
        epoch's; ``encoders_only`` runs the encoders alone (before clustering, when heads may not exist)."""
        n = self.cfg.optim.precise_bn_clips
        if n == 0 or self._bn_current:
            return
        self.train_set.set_epoch(key)
        gen = np.random.default_rng([self.cfg.seed, 9173, key + 1])
        chosen = gen.choice(self.train_indices, size=min(n, len(self.train_indices)), replace=False)
        # Every rank runs all the chosen clips in global batches: the same statistics whatever the number
        # of processes (a batch's statistics depend on its composition), at the cost of a few forwards.
        loader = self._loader(Subset(self.train_set, sorted(chosen.tolist())), self.cfg.optim.batch_size)
        size = self.method.min_batch_size

        def batches():
            for batch in loader:
                if len(batch.get("index", ())) >= max(size, 2):  # BatchNorm needs 2 items in train mode
                    yield self._to_device(batch)

        def forward(batch):
            with autocast(self.device, self.precision):
                if encoders_only:
                    for slot in self.method.encoders:
                        self.method.encode(slot, batch)
                else:
                    self.method.loss(batch)

        recompute_bn_stats(self.method, forward, batches())
        self._bn_current = not encoders_only

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

    @torch.no_grad()
    def _validate(self, parts: dict | None = None) -> float:
        """The validation loss; ``parts`` ({log key: anything}) gets the mean of each of those logs too."""
        keys = sorted(parts or {})
        if len(self.val_indices) == 0:
            if parts is not None:
                parts.update({k: float("nan") for k in keys})
            return float("nan")
        self.method.eval()
        total, n = 0.0, 0
        sums = [0.0] * len(keys)
        data = Subset(self.val_set, list(distributed.shard(len(self.val_set))))
        for batch in self._loader(data, self.cfg.optim.batch_size):
            if "index" not in batch:
                continue
            batch = self._to_device(batch)
            with autocast(self.device, self.precision):
                loss, logs = self.method.loss(batch)
            total += float(loss) * len(batch["index"])
            sums = [s + float(logs.get(k, math.nan)) * len(batch["index"]) for s, k in zip(sums, keys)]
            n += len(batch["index"])
        self.method.train()
        total, n, *sums = distributed.all_reduce_sum([total, n, *sums])
        if parts is not None:
            parts.update({k: s / max(n, 1) for k, s in zip(keys, sums)})
        return total / max(n, 1)

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

    def _record_pseudo_labels(self, it: int) -> None:
        """With several ranks, each writes a digest of the pseudo-labels it trains on, so a run can
        show (and the tests check) that every rank got the same ones."""
        if not distributed.active():
            return
        labels = getattr(self.method, "pseudo_labels", {})
        digest = {k: hashlib.sha1(v.numpy().tobytes()).hexdigest() for k, v in labels.items()}
        d = self.run_dir / "ranks"
        d.mkdir(exist_ok=True)
        with open(d / f"rank{distributed.rank()}.jsonl", "a") as f:
            f.write(json.dumps({"iteration": it, "pseudo_labels_sha1": digest}) + "\n")

    def _to_device(self, batch: dict) -> dict:
        """Move the clips (``video``, ``audio`` and views such as ``audio_neg``) to the device; indices,
        labels and start times stay on the CPU, where the methods index their tables with them."""
        out = {}
        for k, v in batch.items():
            modality = window_modality(k)
            if modality in MODALITIES:
                v = v.to(self.device, non_blocking=True)
                if modality == "video":
                    v = video_input(v, self.memory_format)
            out[k] = v
        return out

    def _print_summary(self, s: dict) -> None:
        if not distributed.is_main():
            return
        parts = [f"iteration {s['iteration']}:"]
        e = s["last_epoch"]
        if "loss" in e:  # readable at any scale: a diverging val loss as 2.9e+34, not 35 digits
            parts.append(f"loss {fmt_number(e['loss'])} val {fmt_number(e.get('val_loss', float('nan')))}")
        accs = [v for k, v in e.items() if k.startswith("acc_")]
        if accs:
            parts.append(f"pseudo-label acc {np.mean(accs):.2f}")
        for name, c in s["clusters"].items():
            bits = [f"{name}: sizes {c['sizes']['min']}-{c['sizes']['max']}"]
            if "nmi_previous" in c:
                bits.append(f"NMI prev {c['nmi_previous']:.2f}")
            if "vs_labels" in c:
                bits.append(f"purity {c['vs_labels']['purity']:.2f} NMI {c['vs_labels']['nmi']:.2f}")
            parts.append(" ".join(bits))
        t = s["times"]
        parts.append(f"[extract {t['extract']:.0f}s cluster {t['cluster']:.1f}s train {t['train']:.0f}s]")
        log.info(" | ".join(parts))  # once: the bars of the iteration are closed by now

    def export_encoders(self) -> Path:
        """Write the encoders (by slot) with what is needed to rebuild them: ``encoders.pt``."""
        problems = weight_problems(self.method)
        if problems:  # never hand broken weights to evaluation
            raise self._diverged(f"the final weights are broken ({'; '.join(problems)})")
        payload = {
            "format": ENCODERS_FORMAT, "method": self.cfg.method, "config": self.cfg.to_dict(),
            "slots": dict(self.method.slots),
            "encoders": {s: {k: v.detach().cpu() for k, v in sd.items()} for s, sd in self.method.encoder_states().items()},
        }
        heads = self.method.head_states()
        if heads:  # what ``avssl eval sync`` needs beyond the encoders (AVTS embeddings, CrissCross heads)
            payload["heads"] = {k: v.detach().cpu() for k, v in heads.items()}
        return atomic_save(payload, self.run_dir / "encoders.pt")


def pretrain(cfg: PretrainConfig, data, run_dir, resume: bool = False, progress: bool = True,
             allow_data_change: bool = False) -> RunResult:
    """Python API: pretrain ``cfg.method`` on ``data`` (manifest CSV, folder or Manifest) into ``run_dir``.
    ``allow_data_change``: let ``resume`` continue on other videos than the run recorded (``datarecord``)."""
    return Pretrainer(cfg, data, run_dir, resume=resume, progress=progress,
                      allow_data_change=allow_data_change).run()


def remove_run(run_dir) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
