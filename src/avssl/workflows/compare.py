"""``avssl compare RUN_OR_EVAL ...``: one table across pretraining runs and evaluation reports.

Each argument is one of:

- a pretraining run directory (it has ``config.json``): its method, preset, seed, iterations done,
  last training and validation loss, and the purity and NMI against labels of each clustering of
  its last finished iteration (when its data was labelled); a cluster report in its ``report/``
  folder (``avssl eval clusters`` writes it there by default) is read too;
- an evaluation folder (the ``--out`` of an ``avssl eval`` command, holding ``<protocol>.json``
  reports) or one such report file: the report's headline number goes into a column named after
  its protocol and modality (mean accuracy over folds for linear, svm, finetune; the fused accuracy
  for fusion; recall@1 for retrieval and cross-modal retrieval; accuracy for sync; purity for a
  cluster report), on the row of the encoders it evaluated: the row of that run when it is one of
  the runs compared (matched by path), else a row of its own;
- any other folder: the runs and evaluation folders in it, or one level further down
  (``avssl compare avssl-demo`` finds ``runs/*``, ``eval/*`` and ``clusters/``).

Printed as a Markdown table (accuracies in percent, mean ± std over folds), or as JSON with every
number (``--json``). Only the standard library is imported: the files are read, never changed, so
it is safe on runs that are training.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..errors import ConfigError
from ..progress import fmt_number

#: reports that describe outputs rather than measure them
_NOT_MEASUREMENTS = ("dense", "extract")


# --- finding runs and reports ----------------------------------------------------------------------

def is_run(path: Path) -> bool:
    return (path / "config.json").is_file() and ((path / "metrics.jsonl").exists() or (path / "checkpoints").is_dir())


def read_report(path: Path) -> dict | None:
    """The evaluation report in ``path`` (JSON written by ``avssl eval``: it records its own ``report``
    paths), or None when the file is something else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("report"), dict) and "json" in data["report"]:
        return data
    return None


def _reports_in(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.glob("*.json")) if read_report(p) is not None]


def expand(path) -> list[tuple[str, Path]]:
    """``("run", dir)`` and ``("report", file)`` entries that ``path`` stands for (see the module doc)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    if path.is_file():
        if read_report(path) is None:
            raise ConfigError(f"{path} is not an evaluation report (the <protocol>.json of avssl eval)")
        return [("report", path)]
    if is_run(path):
        own = _reports_in(path / "report") if (path / "report").is_dir() else []
        return [("run", path), *(("report", p) for p in own)]
    reports = _reports_in(path)
    if reports:
        return [("report", p) for p in reports]
    found: list[tuple[str, Path]] = []

    def walk(folder: Path, depth: int) -> None:  # two levels down, not into what was found
        for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if is_run(child) or _reports_in(child):
                found.extend(expand(child))
            elif depth < 2:
                walk(child, depth + 1)

    walk(path, 1)
    if found:
        return found
    raise ConfigError(f"{path} holds no pretraining run (config.json) and no evaluation report (<protocol>.json "
                      f"of avssl eval), nor do its subfolders")


# --- what each one says ----------------------------------------------------------------------------

def run_row(run: Path) -> dict:
    """The run's columns: method, preset, seed, progress, last losses, final clusterings."""
    from .status import _records, run_status

    s = run_status(run)
    last = (s["last_epoch"] or {}).get("metrics", {})
    summaries = [r for r in _records(run / "metrics.jsonl") if r.get("summary")]
    clusters = {}
    if summaries:
        final = max(summaries, key=lambda r: r["iteration"])
        for name, c in sorted((final.get("clusters") or {}).items()):
            if isinstance(c, dict):
                vs = c.get("vs_labels") or {}
                clusters[name] = {"k": (c.get("sizes") or {}).get("k"), "purity": vs.get("purity"),
                                  "nmi": vs.get("nmi"), "nmi_previous": c.get("nmi_previous")}
    return {"name": run.name, "kind": "run", "path": str(run), "method": s["method"], "preset": s["preset"],
            "seed": s["seed"], "state": s["state"], "iterations": {"done": s["iterations"]["done"],
                                                                   "planned": s["iterations"]["planned"]},
            "epochs_done": s["epochs"]["done"], "loss": last.get("loss"), "val_loss": last.get("val_loss"),
            "clusters": clusters, "evaluations": {}}


def headlines(report: dict) -> list[dict]:
    """The numbers of a report that go into the table: ``{"protocol", "modality", "metric", "value",
    "std", "folds"}`` each (empty for reports that measure nothing)."""
    protocol = report.get("evaluation") or ("clusters" if "clusterings" in report else None)
    if protocol is None or protocol in _NOT_MEASUREMENTS:
        return []
    out = []

    def add(modality, metric, value, std=None, folds=None):
        out.append({"protocol": protocol, "modality": modality, "metric": metric, "value": value, "std": std,
                    "folds": folds})

    mean, std, folds = report.get("mean") or {}, report.get("std") or {}, len(report.get("folds") or {}) or None
    if protocol == "clusters":
        for name, c in (report.get("clusterings") or {}).items():
            add(name, "purity", c.get("purity"))
    elif protocol == "fusion":
        add("a+v", "accuracy", mean.get("a+v"), std.get("a+v"), folds)
    elif protocol == "sync":
        add("a-v", "accuracy", report.get("accuracy"))
    elif protocol == "crossmodal":
        recall = ((report.get("video_to_audio") or {}).get("pair") or {}).get("recall@1")
        add("v->a", "R@1", recall if report.get("applicable", True) else None)
    elif "accuracy" in mean:
        add(report.get("modality"), "accuracy", mean["accuracy"], std.get("accuracy"), folds)
    elif mean:  # retrieval (recall@1, recall@5, ...) and any other per-fold protocol: its first metric
        metric = next(iter(mean))
        add(report.get("modality"), metric.replace("recall@", "R@"), mean[metric], std.get(metric), folds)
    return out


def _subject(report: dict, report_path: Path) -> str:
    """Whose result a report is: the encoders it evaluated (a cluster report: its run)."""
    if "clusterings" in report and "evaluation" not in report:
        return str(report.get("run") or report_path.parent)
    return str(report.get("encoders") or report_path.parent)


def _same_run(subject: str, run: Path) -> bool:
    """Whether ``subject`` (an encoders path as the evaluation was given it) names run directory ``run``."""
    p = Path(subject)
    if p.name == "encoders.pt":
        p = p.parent
    if p.exists():
        return os.path.realpath(p) == os.path.realpath(run)
    # written from another working directory: the trailing folders agree
    parts, mine = [x for x in p.parts if x not in (".", "")], Path(os.path.realpath(run)).parts
    return bool(parts) and ".." not in parts and tuple(parts) == mine[-len(parts):]


def compare(paths) -> dict:
    """``{"rows": [...], "columns": [evaluation columns, in order of appearance]}`` for ``paths``."""
    entries = [e for p in paths for e in expand(p)]
    rows: list[dict] = []
    seen: set[str] = set()
    for kind, p in entries:  # the runs first: the reports attach to them
        if kind == "run" and os.path.realpath(p) not in seen:
            seen.add(os.path.realpath(p))
            rows.append(run_row(p))
    columns: list[str] = []
    done: set[str] = set()
    for kind, p in entries:
        if kind != "report" or os.path.realpath(p) in done:
            continue
        done.add(os.path.realpath(p))
        report = read_report(p)
        subject = _subject(report, p)
        row = next((r for r in rows if r["kind"] == "run" and _same_run(subject, Path(r["path"]))), None)
        if row is None:
            row = next((r for r in rows if r["kind"] == "encoders" and r["name"] == subject), None)
        if row is None:
            row = {"name": subject, "kind": "encoders", "path": subject, "method": report.get("method"),
                   "evaluations": {}}
            rows.append(row)
        for h in headlines(report):
            column = " ".join(str(x) for x in (h["protocol"], h["modality"]) if x)
            if h["metric"] not in ("accuracy", "purity") or h["protocol"] == "clusters":
                column += f" {h['metric']}"
            key, n = column, 1
            while key in row["evaluations"]:  # the same protocol twice (another manifest): a column each
                n += 1
                key = f"{column} ({n})"
            row["evaluations"][key] = {**h, "data": report.get("data") or report.get("labels"), "report": str(p)}
            if key not in columns:
                columns.append(key)
    return {"rows": rows, "columns": columns}


# --- the table ---------------------------------------------------------------------------------------

def _pct(h: dict) -> str:
    if h["value"] is None:
        return "n/a"
    text = f"{100 * h['value']:.1f}"
    if h.get("folds") and h["folds"] > 1 and h.get("std") is not None:
        text += f" ± {100 * h['std']:.1f}"
    return text


def _cell(value) -> str:
    text = "-" if value is None or value == "" else (value if isinstance(value, str) else fmt_number(value))
    return text.replace("|", "\\|").replace("\n", " ")


def _clusters(row: dict, key: str) -> str | None:
    values = [(name, c[key]) for name, c in row.get("clusters", {}).items() if c.get(key) is not None]
    if not values:
        return None
    if len(values) == 1:
        return f"{values[0][1]:.3f}"
    return ", ".join(f"{name} {v:.3f}" for name, v in values)


def format_markdown(result: dict) -> str:
    """The comparison as one Markdown table, with a line on what the evaluation columns hold."""
    rows, columns = result["rows"], result["columns"]
    head = ["run / encoders", "method", "preset", "seed", "iterations", "loss", "val loss", "purity", "NMI", *columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["kind"] == "run":
            its = f"{r['iterations']['done']}/{r['iterations']['planned']}"
            if r["state"] != "finished":
                its += f" ({r['state']})"
            cells = [r["name"], r["method"], r["preset"], r["seed"], its, r["loss"], r["val_loss"],
                     _clusters(r, "purity"), _clusters(r, "nmi")]
        else:
            cells = [r["name"], r.get("method"), None, None, None, None, None, None, None]
        cells += [_pct(r["evaluations"][c]) if c in r["evaluations"] else None for c in columns]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    notes = []
    if columns:
        notes.append("Evaluation columns in percent (mean ± std over folds): accuracy, R@k recall, or cluster purity.")
    if any(r["kind"] == "run" and r["clusters"] for r in rows):
        notes.append("purity and NMI: the last iteration's clusters against the run's labels (a diagnostic).")
    return "\n".join(lines + ([""] + notes if notes else []))


# --- the command -----------------------------------------------------------------------------------


def plain(value):
    """``value`` with NaN and infinities as null, so that the JSON is valid for every reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
