"""What the engine writes into the run directory besides checkpoints, and the lock it holds on it:
``videos.csv``, ``metrics.jsonl``, ``skipped.json``, ``data_changes.jsonl``, ``curves.png`` and, under
torchrun, ``ranks/``. (The file formats are ``avssl.runs``'s; this is the training run's side.)

    class Pretrainer(RunFolder, Resume, Epochs): ...   # the parts of the engine's trainer that keep its folder
"""
from __future__ import annotations

import hashlib
import json
import logging
import time

from ..curves import write_curves
from ..errors import AvsslError
from ..io import atomic_write_text
from ..runlock import RunLock
from .. import distributed
from . import datarecord

log = logging.getLogger("avssl.pretrain")


class RunFolder:
    """Mixed into ``engine.pretrain.Pretrainer``: uses its ``run_dir``, ``cfg``, ``entries``, ``manifest``,
    ``method``, ``skips`` and ``tracker``."""

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

    def _metric_lines(self) -> int:
        p = self.run_dir / "metrics.jsonl"
        return sum(1 for _ in open(p)) if p.exists() else 0

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

    def _write_curves(self) -> None:
        """``curves.png`` from ``metrics.jsonl``; a picture that cannot be drawn never stops a run."""
        if not distributed.is_main():
            return
        try:
            write_curves(self.run_dir)
        except Exception as e:  # noqa: BLE001 - plotting is a convenience
            log.warning("could not draw %s: %s", self.run_dir / "curves.png", e)

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
