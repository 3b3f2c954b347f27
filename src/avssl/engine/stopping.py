"""Early stopping on the pseudo-label validation loss (XDC Table 9's "e-stop": stop when the validation
loss rose in ``optim.early_stop`` consecutive epochs), for a whole method or for each of its parts.

A stopper is a plain dict, saved in every checkpoint: ``previous``, ``increases``, ``best`` and
``stopped`` of the total validation loss. A method with ``stopping_groups`` (SDC: its video and its
audio DeepCluster) also gets ``groups``, the same four values per part, each computed on the sum of
that part's validation losses; then a part stops on its own, and the iteration stops when every part
has (the totals are still kept, for the record).
"""
from __future__ import annotations

import math


def _fresh() -> dict:
    return {"previous": math.inf, "increases": 0, "best": math.inf, "stopped": False}


def new_stopper(groups: dict | None = None) -> dict:
    """The stopper of an iteration's start; with ``groups`` ({group: [loss keys]}) one state per group."""
    stopper = _fresh()
    if groups:
        stopper["groups"] = {g: _fresh() for g in groups}
    return stopper


def _step(state: dict, value: float, early_stop: int) -> None:
    state["increases"] = state["increases"] + 1 if value > state["previous"] else 0
    state["previous"] = value
    state["best"] = min(state["best"], value)
    state["stopped"] = bool(early_stop and state["increases"] >= early_stop)


def update_stopper(stopper: dict, val_loss: float, early_stop: int, parts: dict | None = None,
                   groups: dict | None = None) -> list[str]:
    """Record an epoch's validation loss (``parts``: the per-key validation losses that ``groups`` sum);
    returns the groups that stopped at this epoch. Without groups only the total counts, as always."""
    if not stopper.get("groups") or not groups:
        _step(stopper, val_loss, early_stop)
        return []
    _step(stopper, val_loss, 0)  # the totals, for the record: they stop nothing here
    newly = []
    for g, state in stopper["groups"].items():
        if state["stopped"]:
            continue
        _step(state, sum(parts.get(k, math.nan) for k in groups[g]) if parts else math.nan, early_stop)
        if state["stopped"]:
            newly.append(g)
    stopper["stopped"] = all(s["stopped"] for s in stopper["groups"].values())
    return newly


def stopped_groups(stopper: dict) -> list[str]:
    """The groups that have stopped (none for a stopper without groups)."""
    return sorted(g for g, s in stopper.get("groups", {}).items() if s["stopped"])
