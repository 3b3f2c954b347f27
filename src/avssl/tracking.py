"""TensorBoard event files of a pretraining run, written next to its ``metrics.jsonl``.

Usage: ``tensorboard --logdir runs/`` (or ``runs/xdc/tensorboard``) while a run trains or after.

The engine hands every record it appends to ``metrics.jsonl`` to ``Tracker.write`` as well, so the
event files hold the same numbers:

- ``<run>/tensorboard/epochs``, one step per epoch of the run (counted across iterations, from 0):
  ``loss/train``, ``loss/val``, the method's loss terms (``loss_terms/...``), ``lr``, pseudo-label
  accuracy (``pseudo_label_acc/...``), ``grad_norm``, validation losses of parts (``val/...``) and
  any other number a method logs (``other/...``);
- ``<run>/tensorboard/iterations``, one step per iteration: for each clustering its sizes
  (``clusters/<name>/size_min``, ``size_median``, ``size_max``, ``empty``...), NMI with the previous
  iteration's clusters, and purity/NMI/ARI against the labels when the data has them; the seconds of
  feature extraction, clustering and training.

Whether they are written is ``logging.tensorboard`` in the config: ``null`` (the default) writes them
when the ``tensorboard`` package is installed (``pip install 'avssl[tensorboard]'``), ``true`` asks for
them (without the package: one warning line, and the run goes on), ``false`` never. A resumed run
tells TensorBoard to drop the steps written after the checkpoint it continues from (``purge_step``),
as ``metrics.jsonl`` drops those lines.

wandb (``logging.wandb=true``, ``pip install 'avssl[wandb]'``, offline without an API key) gets the same
scalars under the same names: ``avssl.wandb_tracking``. ``open_trackers`` opens both for a run.
"""
from __future__ import annotations

import json
import logging
import math
import numbers
from pathlib import Path

from .io import read_jsonl

log = logging.getLogger("avssl.tracking")

EVENTS_DIR = "tensorboard"
#: keys of an epoch record that are bookkeeping, not scalars
_NOT_SCALARS = {"iteration", "epoch", "summary", "time", "steps"}


def tensorboard_problem() -> str | None:
    """Why TensorBoard event files cannot be written here (None when they can)."""
    try:
        import tensorboard  # noqa: F401  torch's writer needs the package itself
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as e:
        return f"the tensorboard package is not installed ({e}); pip install 'avssl[tensorboard]'"
    return None


class Tracker:
    """The TensorBoard writers of one run (``open`` makes one, or returns None when it is off)."""

    def __init__(self, run_dir, epochs_done: int = 0, iterations_done: int = 0, purge: bool = False):
        from torch.utils.tensorboard import SummaryWriter

        self.dir = Path(run_dir) / EVENTS_DIR
        self.epochs_done = epochs_done  # the step of the next epoch record
        self.epoch_writer = SummaryWriter(str(self.dir / "epochs"), purge_step=epochs_done if purge else None)
        self.iteration_writer = SummaryWriter(str(self.dir / "iterations"),
                                              purge_step=iterations_done if purge else None)

    @classmethod
    def open(cls, run_dir, setting: bool | None = None) -> "Tracker | None":
        """The tracker of ``run_dir`` for the config value ``logging.tensorboard`` (``setting``), its step
        counters continuing from the records already in ``metrics.jsonl`` (a resumed run)."""
        if setting is False:
            return None
        problem = tensorboard_problem()
        if problem is not None:
            if setting:
                log.warning("logging.tensorboard=true, but %s: no event files are written", problem)
            else:
                log.debug("no TensorBoard event files: %s", problem)
            return None
        run_dir = Path(run_dir)
        epochs, iterations = _done(run_dir / "metrics.jsonl")
        _after_existing_files(run_dir / EVENTS_DIR)
        tracker = cls(run_dir, epochs, iterations, purge=(run_dir / EVENTS_DIR).exists())
        log.info("TensorBoard event files: %s (tensorboard --logdir %s)", tracker.dir, tracker.dir)
        return tracker

    def write(self, record: dict) -> None:
        """One ``metrics.jsonl`` record as scalars: an epoch's, an iteration summary's, or a resume note."""
        wall = record.get("time") if isinstance(record.get("time"), (int, float)) else None
        if record.get("summary"):
            step = int(record["iteration"])
            for tag, value in iteration_scalars(record).items():
                self.iteration_writer.add_scalar(tag, value, step, walltime=wall)
            self.iteration_writer.flush()
        elif "epoch" in record:
            for tag, value in epoch_scalars(record).items():
                self.epoch_writer.add_scalar(tag, value, self.epochs_done, walltime=wall)
            self.epochs_done += 1
            self.epoch_writer.flush()
        elif record.get("resumed"):
            self.epoch_writer.add_text("resumed", json.dumps(record.get("changed", {})), self.epochs_done,
                                       walltime=wall)

    def close(self) -> None:
        self.epoch_writer.close()
        self.iteration_writer.close()


def epoch_scalars(record: dict) -> dict[str, float]:
    """TensorBoard tag -> value of an epoch record (non-finite values, such as the validation loss of a
    run without a validation set, are left out)."""
    out = {}
    for key, value in record.items():
        if key in _NOT_SCALARS or not _finite(value):
            continue
        if key == "loss":
            tag = "loss/train"
        elif key == "val_loss":
            tag = "loss/val"
        elif key in ("lr", "grad_norm"):
            tag = key
        elif key.startswith("loss_"):
            tag = f"loss_terms/{key[len('loss_'):]}"
        elif key.startswith("acc_"):
            tag = f"pseudo_label_acc/{key[len('acc_'):]}"
        elif key.startswith("val_"):  # validation losses of parts (the SDC encoders' early stopping)
            tag = f"val/{key[len('val_'):]}"
        else:
            tag = f"other/{key}"
        out[tag] = float(value)
    return out


def iteration_scalars(summary: dict) -> dict[str, float]:
    """TensorBoard tag -> value of an iteration summary: cluster statistics and times."""
    out = {}
    for name, c in (summary.get("clusters") or {}).items():
        if not isinstance(c, dict):
            continue
        for key, value in (c.get("sizes") or {}).items():
            if _finite(value):
                out[f"clusters/{name}/{key if key in ('k', 'empty') else 'size_' + key}"] = float(value)
        if _finite(c.get("nmi_previous")):
            out[f"clusters/{name}/nmi_previous"] = float(c["nmi_previous"])
        for key, value in (c.get("vs_labels") or {}).items():
            if _finite(value):
                out[f"clusters/{name}/{key}_vs_labels"] = float(value)
        if _finite(c.get("reseeded")):
            out[f"clusters/{name}/reseeded"] = float(c["reseeded"])
    for key, value in (summary.get("times") or {}).items():
        if _finite(value):
            out[f"seconds/{key}"] = float(value)
    return out


def _finite(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _after_existing_files(folder: Path) -> None:
    """Wait, if need be, into the second after the newest event file in ``folder``: TensorBoard reads a folder's
    files in the order of their names, ``events.out.tfevents.<second>.<host>.<pid>.<counter>``, and within one
    second and process the counter sorts as text (10 before 9), so a resumed run's file could be read before
    the file it replaces (then its purge would come first and the stale steps would stay)."""
    import time

    newest = -1
    for f in folder.glob("*/events.out.tfevents.*"):
        try:
            newest = max(newest, int(f.name.split(".")[3]))
        except (IndexError, ValueError):
            continue
    while int(time.time()) <= newest:
        time.sleep(0.05)


def _done(metrics: Path) -> tuple[int, int]:
    """(epoch records, iteration summaries) already in a run's metrics.jsonl."""
    epochs = iterations = 0
    for record in read_jsonl(metrics):
        if record.get("summary"):
            iterations += 1
        elif "epoch" in record:
            epochs += 1
    return epochs, iterations


class Trackers:
    """Every tracker of one run (TensorBoard, wandb), written and closed together.

    Usage: ``trackers = open_trackers(run_dir, cfg)`` (None when all are off); ``trackers.write(record)``."""

    def __init__(self, trackers: list):
        self.trackers = trackers

    def write(self, record: dict) -> None:
        for tracker in self.trackers:
            tracker.write(record)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


def check_trackers(cfg) -> None:
    """Refuse, before a run writes anything, a tracker that ``cfg.logging`` asks for but cannot be used here:
    wandb without the package (TensorBoard's missing package is a warning only, see ``Tracker.open``)."""
    if cfg.logging.wandb:
        from .errors import ConfigError
        from .wandb_tracking import wandb_problem

        problem = wandb_problem()
        if problem is not None:
            raise ConfigError(f"logging.wandb=true, but {problem}")


def open_trackers(run_dir, cfg) -> "Trackers | None":
    """The trackers that ``cfg.logging`` asks for in ``run_dir``: TensorBoard (``logging.tensorboard``) and
    wandb (``logging.wandb``, see ``avssl.wandb_tracking``), or None when there are none."""
    trackers = []
    tensorboard = Tracker.open(run_dir, cfg.logging.tensorboard)
    if tensorboard is not None:
        trackers.append(tensorboard)
    if cfg.logging.wandb:
        from .wandb_tracking import WandbTracker

        check_trackers(cfg)
        try:
            trackers.append(WandbTracker(run_dir, cfg, _done(Path(run_dir) / "metrics.jsonl")[0]))
        except BaseException:
            for tracker in trackers:
                tracker.close()
            raise
    return Trackers(trackers) if trackers else None
