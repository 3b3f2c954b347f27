"""The evaluation protocol around every downstream measurement: which videos train and which test
(official folds), a validation part carved from train for hyper-parameters, and the per-fold report.

Folds: official dataset builders (``avssl data ucf101|hmdb51|esc50``) record every fold as meta columns
``split_1``, ``split_2``, ... holding ``train``, ``test`` or nothing; other manifests use their ``split``
column. Everything that can be wrong with a fold (no labels, no split, a test label never seen in
training) is checked for every requested fold before any feature is extracted, so a mistake costs
seconds, not an hour of extraction.

Reports: every evaluation returns ``{"folds": {name: metrics}, "mean": ..., "std": ...}`` and writes it
as ``<name>.json`` plus a readable ``<name>.md`` (accuracies as fractions in JSON, percent in Markdown).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import seeds
from ..data.manifest import Manifest, load_manifest
from ..io import atomic_write_text
from ..errors import ConfigError

_FOLD_COLUMN = re.compile(r"split_(\d+)")
ROLES = ("train", "test")


@dataclass(frozen=True)
class Fold:
    """One train/test partition of a manifest; ``train``/``test`` are item positions in it."""

    name: str  # "1", "2", ... for official folds, "split" for a manifest's split column
    column: str  # split_1, split_2, ... or split
    train: tuple[int, ...]
    test: tuple[int, ...]
    classes: tuple[str, ...]  # the training labels, sorted: class i of every classifier of this fold

    def encode(self, labels: Sequence) -> np.ndarray:
        """Labels as indices into ``classes``; -1 for a label the classifier cannot predict."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index.get(label, -1) for label in labels], dtype=np.int64)


def role(item, column: str) -> str | None:
    """``train``/``test`` (or another value, or None) of a manifest item in a fold column."""
    value = item.split if column == "split" else item.meta.get(column)
    return (value or "").strip().lower() or None


def fold_columns(manifest: Manifest) -> list[str]:
    """The official fold columns present (``split_1``, ``split_2``, ...), in numeric order."""
    found = {key for item in manifest for key in item.meta if _FOLD_COLUMN.fullmatch(key)}
    return sorted(found, key=lambda c: int(_FOLD_COLUMN.fullmatch(c).group(1)))


def parse_folds(text) -> str | list[int]:
    """``all``, ``2`` or ``1,3`` (command line) -> ``"all"`` or a list of fold numbers."""
    if isinstance(text, int):
        return [text]
    if isinstance(text, (list, tuple)):
        return [int(t) for t in text]
    text = str(text).strip().lower()
    if text == "all":
        return "all"
    try:
        folds = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        folds = []
    if not folds or min(folds) < 1:
        raise ConfigError(f"--folds must be 'all', a fold number or a comma-separated list like 1,2; got {text!r}")
    return folds


def resolve_folds(manifest: Manifest, folds="all") -> list[Fold]:
    """The requested folds of ``manifest``, each checked; raises one ConfigError naming every problem."""
    wanted = parse_folds(folds)
    columns = fold_columns(manifest)
    if columns:
        available = {_FOLD_COLUMN.fullmatch(c).group(1): c for c in columns}
        names = list(available) if wanted == "all" else [str(k) for k in wanted]
        missing = [n for n in names if n not in available]
        if missing:
            raise ConfigError(f"{manifest.source}: no fold(s) {missing}; the manifest has folds {list(available)}")
        chosen = [(n, available[n]) for n in names]
    else:
        if wanted not in ("all", [1]):
            raise ConfigError(f"{manifest.source} has no official fold columns (split_1, split_2, ...), only its "
                              f"'split' column; use --folds all (or 1)")
        chosen = [("split", "split")]
    result, problems = [], []
    for name, column in chosen:
        fold, problem = _make_fold(manifest, name, column)
        result.append(fold)
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError(f"cannot evaluate on {manifest.source}:\n  " + "\n  ".join(problems))
    return result


def _make_fold(manifest: Manifest, name: str, column: str) -> tuple[Fold | None, str | None]:
    parts = {r: [i for i, item in enumerate(manifest) if role(item, column) == r] for r in ROLES}
    where = "the 'split' column" if column == "split" else f"fold {name} ({column})"
    if not parts["train"] and not parts["test"]:
        if not manifest.class_names():
            return None, "the manifest has no labels; evaluation needs a 'label' column"
        return None, (f"the manifest has labels but no train/test split in {where}. Options: add a 'split' "
                      f"column (train/test) to the CSV; build the manifest with 'avssl data ucf101|hmdb51|"
                      f"esc50|dcase' to get the official folds; or pass a manifest whose split column is set")
    for r in ROLES:
        if not parts[r]:
            return None, f"{where} has no {r} items"
    unlabelled = [manifest[i].path for i in parts["train"] + parts["test"] if manifest[i].label is None]
    if unlabelled:
        return None, f"{where}: {len(unlabelled)} item(s) have no label (first: {unlabelled[0]})"
    classes = sorted({manifest[i].label for i in parts["train"]})
    unseen = sorted({manifest[i].label for i in parts["test"]} - set(classes))
    if unseen:
        return None, (f"{where}: test label(s) {unseen} never occur in its training part, so no classifier "
                      f"can predict them; fix the split (every test class needs training videos)")
    return Fold(name, column, tuple(parts["train"]), tuple(parts["test"]), tuple(classes)), None


def open_manifest(data) -> Manifest:
    """A Manifest, a manifest CSV or a folder of class folders."""
    return data if isinstance(data, Manifest) else load_manifest(data)


def carve_validation(labels: Sequence[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split training videos into (train, val) positions, stratified by label so every class with at
    least two videos keeps one on each side. Test data never takes part in choosing hyper-parameters."""
    if not 0 < fraction < 1:
        raise ConfigError(f"the validation fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = seeds.rng(seed, seeds.SPLIT)
    val = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        val.extend(members[:n].tolist())
    val = np.sort(np.array(val, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(labels)), val)
    if len(val) == 0:
        raise ConfigError("too few training videos to carve a validation split for choosing a "
                          "hyper-parameter; give a single value instead of a sweep")
    return train, val


def choose(sweep: dict):
    """The hyper-parameter with the best validation accuracy; ties (frequent on small validation sets)
    go to the lower validation loss when there is one, then to the first value of the sweep."""
    order = list(sweep)
    return max(order, key=lambda v: (sweep[v]["val_accuracy"], -sweep[v].get("val_loss", 0.0), -order.index(v)))


def describe_choice(name: str, value, sweep: dict) -> str:
    """``lr 0.01`` or ``lr 0.01 chosen on validation (0.001: val 50.0, ...)`` for a report."""
    if not sweep:
        return f"{name} {value}"
    def cell(r: dict) -> str:  # "val 50.0 / test 40.0": the accuracies of one value of the sweep
        return " / ".join(f"{m.split('_')[0]} {pct(v)}" for m, v in r.items() if m.endswith("accuracy"))

    cells = ", ".join(f"{k}: {cell(r)}" for k, r in sweep.items())
    return f"{name} {value} chosen on validation ({cells})"


def over_folds(folds: list[Fold], evaluate: Callable[[Fold], dict], metrics: Sequence[str]) -> dict:
    """Run ``evaluate`` on every fold; add the mean and standard deviation of ``metrics`` over folds."""
    per_fold = {f.name: evaluate(f) for f in folds}
    mean, std = {}, {}
    for m in metrics:
        values = [r[m] for r in per_fold.values() if r.get(m) is not None]
        if values:
            mean[m], std[m] = float(np.mean(values)), float(np.std(values))
    return {"folds": per_fold, "mean": mean, "std": std}


def report_markdown(title: str, settings: dict, result: dict, metrics: Sequence[str],
                    details: Callable[[dict], str] | None = None) -> str:
    """The readable summary of a per-fold result: settings, the metrics table, per-fold details."""
    lines = [f"# {title}", ""] + [f"- {k}: {v}" for k, v in settings.items()] + ["", metrics_table(result, metrics)]
    if details is not None:
        lines += [""] + [f"- fold {name}: {details(r)}" for name, r in result["folds"].items()]
    return "\n".join(lines)


def metrics_table(result: dict, metrics: Sequence[str]) -> str:
    """Markdown: one row per fold, then mean ± std (values in percent)."""
    lines = ["| fold | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, r in result["folds"].items():
        lines.append(f"| {name} | " + " | ".join(pct(r.get(m)) for m in metrics) + " |")
    if len(result["folds"]) > 1:
        cells = [f"{pct(result['mean'].get(m))} ± {pct(result['std'].get(m))}" for m in metrics]
        lines.append("| **mean** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pct(v) -> str:
    """A fraction as a percentage with one decimal; '-' when missing."""
    return "-" if v is None else f"{100 * v:.1f}"


def write_report(out, name: str, result: dict, markdown: str) -> dict:
    """Write ``<name>.json`` and ``<name>.md`` into ``out``; returns ``result`` with their paths added."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {**result, "report": {"json": str(out / f"{name}.json"), "markdown": str(out / f"{name}.md")}}
    atomic_write_text(out / f"{name}.json", json.dumps(result, indent=2, default=_plain) + "\n")
    atomic_write_text(out / f"{name}.md", markdown.rstrip() + "\n")
    return result


def _plain(o):
    """JSON for numpy scalars and paths."""
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def check_options(*, epochs: int | None = None, batch_size: int | None = None, val_fraction: float | None = None,
                  choices: int = 1) -> None:
    """Reject impossible evaluation options before any feature is extracted. ``choices``: how many
    hyper-parameter values are compared on the validation split (one needs no split)."""
    problems = []
    if epochs is not None and epochs < 1:
        problems.append(f"epochs must be >= 1, got {epochs}")
    if batch_size is not None and batch_size < 1:
        problems.append(f"batch size must be >= 1, got {batch_size}")
    if val_fraction is not None and choices > 1 and not 0 < val_fraction < 1:
        problems.append(f"the validation fraction must be between 0 and 1, got {val_fraction}")
    if problems:
        raise ConfigError("invalid evaluation options: " + "; ".join(problems))
