"""Optional wandb logging of a pretraining run: the numbers of its TensorBoard event files, as one wandb run.

Usage: ``avssl pretrain --method xdc --preset cpu-tiny --data DIR --out runs/xdc --set logging.wandb=true``;
without a wandb API key the run is written offline under ``runs/xdc/wandb/`` and
``wandb sync runs/xdc/wandb/offline-run-*`` uploads it later.

``avssl.tracking`` hands every record of ``metrics.jsonl`` to ``WandbTracker.write``, under the same
names as in TensorBoard: per epoch ``loss/train``, ``loss/val``, ``lr``, ``pseudo_label_acc/...`` and
``loss_terms/...`` against the step metric ``epoch`` (counted across iterations, from 0); per iteration
``clusters/<name>/size_min`` ... ``nmi_previous``, ``purity_vs_labels``, ``nmi_vs_labels`` and
``seconds/...`` against ``iteration``. The run's config is the wandb run's config.

Config (section ``logging``): ``wandb`` (false by default), ``wandb_project`` (``avssl``), ``wandb_name``
(null: the run folder's name), ``wandb_mode``: ``auto`` (online when an API key is set up, i.e.
``WANDB_API_KEY`` or a ``wandb login``; offline otherwise; ``WANDB_MODE`` in the environment wins),
``online`` or ``offline``. Files go to ``<run>/wandb`` unless ``WANDB_DIR`` is set. A resumed run
continues the same wandb run (its id is kept in ``<run>/wandb_run_id``).
"""
from __future__ import annotations

import importlib.util
import logging
import netrc
import os
import secrets
from pathlib import Path

from .config.tree import WANDB_MODES

log = logging.getLogger("avssl.tracking")

ID_FILE = "wandb_run_id"
MODES = WANDB_MODES


def wandb_problem() -> str | None:
    """Why wandb logging cannot be used here (None when it can). Cheap: wandb is not imported."""
    try:
        found = importlib.util.find_spec("wandb") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return "the wandb package is not installed; pip install 'avssl[wandb]', or set logging.wandb=false"
    return None


def has_api_key() -> bool:
    """Whether wandb could log in without asking: ``WANDB_API_KEY``, or a ``wandb login`` entry in netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(setting: str) -> str:
    """``online`` or ``offline`` for the config value ``logging.wandb_mode``."""
    if setting != "auto":
        return setting
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("offline", "dryrun", "disabled"):
        return "offline"
    if env == "online":
        return "online"
    return "online" if has_api_key() else "offline"


class WandbTracker:
    """One wandb run for one avssl run; ``write`` takes ``metrics.jsonl`` records (see the module doc)."""

    def __init__(self, run_dir, cfg, epochs_done: int = 0):
        import wandb

        from .errors import ConfigError

        run_dir = Path(run_dir)
        lc = cfg.logging
        self.mode = resolve_mode(lc.wandb_mode)
        id_file = run_dir / ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else None
        if not run_id:
            run_id = secrets.token_hex(4)  # wandb ids: letters and digits
            id_file.write_text(run_id + "\n")
        folder = None if os.environ.get("WANDB_DIR") else str(run_dir)
        try:
            self.run = wandb.init(project=lc.wandb_project, name=lc.wandb_name or run_dir.resolve().name,
                                  id=run_id, resume="allow", mode=self.mode, dir=folder,
                                  config=cfg.to_dict(), job_type="pretrain",
                                  settings=wandb.Settings(console="off", quiet=True))
        except Exception as e:  # e.g. online without a key, or the server out of reach
            raise ConfigError(f"wandb could not start a run ({self.mode}): {e}; "
                              f"set logging.wandb_mode=offline, or logging.wandb=false") from None
        self.epochs_done = epochs_done
        self._defined: set[str] = set()
        for step in ("epoch", "iteration"):
            self.run.define_metric(step)
        if self.mode == "online":
            log.info("wandb run %s: %s", run_id, self.run.url)
        else:
            folder = Path(self.run.dir).parent
            log.info("wandb run %s, offline in %s (upload it: wandb sync %s)", run_id, folder, folder)

    def _log(self, scalars: dict, step_metric: str, step: int) -> None:
        for key in scalars:
            if key not in self._defined:
                self.run.define_metric(key, step_metric=step_metric)
                self._defined.add(key)
        self.run.log({**scalars, step_metric: step})

    def write(self, record: dict) -> None:
        """One ``metrics.jsonl`` record: an epoch's, an iteration summary's, or a resume note."""
        from .tracking import epoch_scalars, iteration_scalars

        if record.get("summary"):
            self._log(iteration_scalars(record), "iteration", int(record["iteration"]))
        elif "epoch" in record:
            self._log(epoch_scalars(record), "epoch", self.epochs_done)
            self.epochs_done += 1
        elif record.get("resumed"):
            self.run.summary["resumed_at_epoch"] = self.epochs_done

    def close(self) -> None:
        self.run.finish()
