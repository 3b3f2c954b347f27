"""Resuming a run: the config it may change, the checkpoint it continues from, and the data check
(``datarecord``) that refuses other videos than the run recorded, or re-maps the run onto them
(``--allow-data-change``).

    class Pretrainer(RunFolder, Resume, Epochs): ...   # the parts of the engine's trainer that resume it
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ..config import PretrainConfig, check_resumable, config_differences
from ..errors import ConfigError
from ..io import atomic_save, atomic_save_array, atomic_write_text, load_checkpoint
from ..runs import CHECKPOINT_FORMAT
from .. import distributed
from . import datarecord

log = logging.getLogger("avssl.pretrain")


class Resume:
    """Mixed into ``engine.pretrain.Pretrainer``: uses its ``run_dir``, ``cfg``, ``method``, ``device``,
    ``allow_data_change`` and the ``RunFolder`` records."""

    def _check_resume_config(self) -> None:
        saved = self.run_dir / "config.json"
        if not saved.exists():  # nothing to resume yet: start, so one command serves first and requeued jobs
            log.info("--resume: %s holds no run yet; starting a new one", self.run_dir)
            self._resume = False
            return
        saved_cfg = PretrainConfig.load(saved)
        check_resumable(saved_cfg, self.cfg, self.run_dir)
        changes = {k: (a, b) for k, a, b in config_differences(saved_cfg, self.cfg)}
        self.resume_changes = changes  # recorded in metrics.jsonl when the run goes on

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
        memory = getattr(self.method, "memory", None)
        if memory is not None:  # recluster=epoch: the next iteration extracts the new data's features afresh
            memory.clear()
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
                atomic_save_array(f, datarecord.remap(table, rows, -1 if table.dtype.kind in "iu" else np.nan))
        where = "at an iteration boundary" if state["iteration_done"] else "mid-iteration"
        self._record_data_change(diff, f"continued from iteration {state['iteration']}, epoch {state['epoch']} "
                                       f"({where}); pseudo-labels re-mapped by path")
