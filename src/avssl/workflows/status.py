"""``avssl status RUN``: where a pretraining run stands, from the files of its run directory alone.

Reads ``config.json`` (method, preset, the planned iterations and epochs), ``metrics.jsonl`` (one
line per epoch and one summary per iteration), the modification times of ``checkpoints/`` and
``metrics.jsonl``, and whether ``encoders.pt`` exists (a finished run). Nothing is imported beyond the
standard library, and the run is not touched, so it is safe on a run that is training right now.

Time per epoch comes, in this order, from wall-clock ``time`` fields of the metrics lines (when the
run wrote them), from the ``times`` of the iteration summaries (training seconds / epochs), or from
file modification times (which then include feature extraction and clustering). The ETA assumes
every remaining iteration runs all its epochs, so it is an upper bound: early stopping on the
validation loss ends iterations sooner.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from ..errors import ConfigError
from ..io import read_jsonl
from ..progress import fmt_number

# metrics keys that are bookkeeping, not measurements
_NOT_METRICS = ("iteration", "epoch", "time", "timestamp", "summary")


def planned_epochs(cfg: dict) -> list[int]:
    """Epochs planned for each iteration of a run of ``cfg`` (a config.json dict): what the method's
    ``num_iterations()`` and ``max_epochs(iteration)`` return, without building the method
    (tests/test_status.py checks that they agree)."""
    method, optim = cfg.get("method"), cfg.get("optim", {})
    epochs, iterations = int(optim.get("max_epochs", 1)), int(cfg.get("iterations", 1))
    if method == "avts":  # the two stages of the curriculum
        stages = (cfg.get("avts") or {}).get("stage_epochs")
        return [int(e) for e in stages] if stages else [epochs, epochs]
    if method in ("crisscross", "longclip"):
        return [epochs]
    if method == "supervised":  # the self-supervised methods' whole budget in one go
        return [iterations * epochs]
    plan = [epochs] * iterations
    last = optim.get("last_iteration_epochs")  # a longer last deep-clustering iteration (XDC Table 10, IG*)
    if last and plan:
        plan[-1] = int(last[2])
    return plan


def run_status(run, now: float | None = None) -> dict:
    """Everything ``avssl status`` prints, as a dict (``--json`` prints it as it is)."""
    run = Path(run)
    if not (run / "config.json").is_file():
        hint = " (an evaluation folder?)" if any(run.glob("*.md")) else ""
        raise ConfigError(f"{run} is not a pretraining run directory: it has no config.json{hint}")
    now = time.time() if now is None else now
    cfg = json.loads((run / "config.json").read_text())
    records = _records(run / "metrics.jsonl")
    epochs = {(r["iteration"], r["epoch"]): r for r in records if not r.get("summary") and "epoch" in r}
    summaries = {r["iteration"]: r for r in records if r.get("summary")}
    plan = planned_epochs(cfg)
    done_per_it = {}
    for it, _ in epochs:
        done_per_it[it] = done_per_it.get(it, 0) + 1
    finished = (run / "encoders.pt").is_file()
    current = max([*done_per_it, *summaries], default=None)  # the last iteration that wrote anything
    in_progress = current is not None and current not in summaries
    # epochs still to train, at most: the rest of the current iteration and every later one in full
    remaining_epochs = 0 if finished else sum(
        0 if it in summaries else max(n - done_per_it.get(it, 0), 0) for it, n in enumerate(plan))
    remaining_clusterings = 0 if finished else sum(1 for it in range(len(plan))
                                                   if it not in summaries and it not in done_per_it)
    per_epoch, source = _seconds_per_epoch(run, epochs, summaries, done_per_it)
    overhead = _iteration_overhead(summaries)
    last_write = _last_write(run)
    status = {
        "run": str(run),
        "method": cfg.get("method"),
        "preset": cfg.get("preset"),
        "seed": cfg.get("seed"),
        "finished": finished,
        "state": "finished" if finished else ("not started" if current is None else "unfinished"),
        "iterations": {"planned": len(plan), "done": len(summaries),
                       "current": current if in_progress else None},
        "epochs": {"planned": sum(plan), "planned_per_iteration": plan, "done": len(epochs),
                   "done_per_iteration": {str(k): v for k, v in sorted(done_per_it.items())},
                   "remaining_at_most": remaining_epochs},
        "last_epoch": _last_epoch(epochs),
        "last_iteration": _last_iteration(summaries),
        "seconds_per_epoch": per_epoch,
        "seconds_per_epoch_from": source,
        "seconds_per_iteration_overhead": overhead,
        "last_write": last_write,
        "seconds_since_last_write": None if last_write is None else max(now - last_write, 0.0),
        "eta_seconds": None,
    }
    if not finished and per_epoch is not None:
        status["eta_seconds"] = remaining_epochs * per_epoch + remaining_clusterings * (overhead or 0.0)
    return status


def format_status(s: dict) -> str:
    """The status as aligned ``label  text`` lines."""
    rows = [("run", s["run"]),
            ("method", f"{s['method']} (preset {s['preset']}, seed {s['seed']})")]
    ago = s["seconds_since_last_write"]
    if s["finished"]:
        rows.append(("state", "finished: encoders.pt written" + (f" {_duration(ago)} ago" if ago is not None else "")))
    elif s["state"] == "not started":
        rows.append(("state", "not started: no epoch finished yet" + (f"; last write {_duration(ago)} ago"
                                                                      if ago is not None else "")))
    else:
        rows.append(("state", f"unfinished; last write {_duration(ago)} ago (still training, or interrupted: "
                              f"continue with avssl pretrain --resume --out {s['run']})"))
    it, ep = s["iterations"], s["epochs"]
    progress = f"{it['done']} of {it['planned']} iterations done"
    if it["current"] is not None:
        n = ep["done_per_iteration"].get(str(it["current"]), 0)
        progress += (f"; iteration {it['current']}: epoch {n} of {ep['planned_per_iteration'][it['current']]}"
                     if it["current"] < len(ep["planned_per_iteration"]) else f"; iteration {it['current']}")
    progress += f"; {ep['done']} of {ep['planned']} planned epochs trained"
    if it["done"] and ep["done"] < sum(ep["planned_per_iteration"][:it["done"]]):
        progress += " (early stopping ended some iterations sooner)"
    rows.append(("progress", progress))
    last = s["last_epoch"]
    if last:
        rows.append(("last epoch", f"iteration {last['iteration']}, epoch {last['epoch']}: "
                                   + ", ".join(f"{k} {fmt_number(v)}" for k, v in last["metrics"].items())))
    summary = s["last_iteration"]
    if summary and summary["clusters"]:
        rows.append(("clusters", f"iteration {summary['iteration']}: " + "; ".join(summary["clusters"])))
    if s["seconds_per_epoch"] is not None:
        text = f"{_duration(s['seconds_per_epoch'])} per epoch (from {s['seconds_per_epoch_from']})"
        if s["seconds_per_iteration_overhead"]:
            text += (f"; {_duration(s['seconds_per_iteration_overhead'])} per iteration for feature extraction "
                     f"and clustering")
        rows.append(("time", text))
    if not s["finished"]:
        if s["eta_seconds"] is None:
            eta = "unknown until an epoch has finished"
        else:
            eta = (f"at most {_duration(s['eta_seconds'])} ({ep['remaining_at_most']} epochs left; early stopping "
                   f"may end iterations sooner)")
        rows.append(("ETA", eta))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {text}" for label, text in rows)


# --- reading the run ---------------------------------------------------------------------------------

def _records(path: Path) -> list[dict]:
    """The lines of metrics.jsonl that parse (a line being written as we read is skipped)."""
    return [record for record in read_jsonl(path) if isinstance(record.get("iteration"), int)]


def _wall_time(record: dict) -> float | None:
    """A record's wall-clock ``time`` (or ``timestamp``): seconds since the epoch, or an ISO 8601 string."""
    value = record.get("time", record.get("timestamp"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _seconds_per_epoch(run: Path, epochs: dict, summaries: dict, done_per_it: dict):
    """Mean seconds per epoch and where it came from, or (None, None) before the first epoch."""
    gaps = []  # between consecutive epochs of one iteration, by their wall-clock times
    for (it, e), record in epochs.items():
        before = epochs.get((it, e - 1))
        t1, t0 = _wall_time(record), _wall_time(before) if before else None
        if t0 is not None and t1 is not None and t1 >= t0:
            gaps.append(t1 - t0)
    if gaps:
        return sum(gaps) / len(gaps), "the metrics' time stamps"
    train = [(s["times"]["train"], done_per_it.get(it, 0)) for it, s in summaries.items()
             if isinstance(s.get("times"), dict) and isinstance(s["times"].get("train"), (int, float))]
    seconds, count = sum(t for t, n in train if n), sum(n for _, n in train)
    if count:
        return seconds / count, "the iterations' training times"
    # file times: the config is written when the run (or its last resume) starts, last.pt after each epoch
    config_time = (run / "config.json").stat().st_mtime
    last = run / "checkpoints" / "last.pt"
    if epochs and last.is_file() and last.stat().st_mtime > config_time:
        return (last.stat().st_mtime - config_time) / len(epochs), "file times, with feature extraction and clustering"
    return None, None


def _iteration_overhead(summaries: dict) -> float | None:
    """Mean seconds of feature extraction and clustering per iteration (from the summaries)."""
    values = []
    for s in summaries.values():
        t = s.get("times")
        if isinstance(t, dict):
            values.append(sum(float(t.get(k) or 0.0) for k in ("extract", "cluster")))
    return sum(values) / len(values) if values else None


def _last_write(run: Path) -> float | None:
    paths = [run / "metrics.jsonl", run / "encoders.pt", run / "config.json", *(run / "checkpoints").glob("*.pt")]
    times = [p.stat().st_mtime for p in paths if p.is_file()]
    return max(times) if times else None


def _last_epoch(epochs: dict) -> dict | None:
    if not epochs:
        return None
    (it, e), record = max(epochs.items())
    metrics = {k: v for k, v in record.items() if k not in _NOT_METRICS and _is_number(v)}
    return {"iteration": it, "epoch": e, "metrics": metrics}


def _last_iteration(summaries: dict) -> dict | None:
    if not summaries:
        return None
    it = max(summaries)
    clusters = []
    for name, c in (summaries[it].get("clusters") or {}).items():
        if not isinstance(c, dict):
            continue
        sizes = c.get("sizes") or {}
        bits = [f"{name}: {sizes['k']} clusters" if "k" in sizes else f"{name}:"]
        if "min" in sizes and "max" in sizes:
            bits.append(f"of {sizes['min']}-{sizes['max']} videos,")
        if _is_number(c.get("nmi_previous")):
            bits.append(f"NMI with the previous {fmt_number(c['nmi_previous'])},")
        labels = c.get("vs_labels") or {}
        if _is_number(labels.get("purity")):
            bits.append(f"purity {fmt_number(labels['purity'])} NMI {fmt_number(labels.get('nmi'))} (vs labels)")
        clusters.append(" ".join(bits))
    return {"iteration": it, "clusters": clusters}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# --- the command -----------------------------------------------------------------------------------
