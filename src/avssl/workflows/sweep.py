"""``avssl sweep``: the papers' ablations as one command.

A sweep is the product of methods x presets x k values x pretraining-set fractions x seeds (XDC
Table 1: methods; Table 2: k; Table 4 / Fig. 1-style curves: pretraining-set size; Table 5: fc-only
vs full fine-tuning with ``finetune=True``). Every combination is one pretraining run under
``out/runs/<name>``, evaluated with the linear probe (and full fine-tuning) on a labelled manifest;
``out/results.{md,json,png}`` then hold one table (mean ± std over seeds) and a plot of accuracy
against k, against the pretraining-set size, or per method.

Rerunning the same command reuses finished runs and evaluations and resumes interrupted runs (each
pretraining run checkpoints every epoch), so a sweep can be stopped at any time.

- Pretraining never sees test videos: items of ``data`` whose split is ``test`` are left out, and
  labels are not used, except by ``supervised`` (the paper's upper bound), which trains on the labels
  of those non-test videos.
- ``fractions``: nested seeded subsets of that pool (the 25% videos are among the 50% ...), written
  to ``out/manifests``.
- k applies to the deep-clustering methods; AVTS, CrissCross, ``supervised`` and ``scratch`` (random
  encoders, the paper's lower bound) run once per preset and seed and appear as flat lines in a k plot.
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import seeds
from ..config import PRESETS, preset as preset_config
from ..data.manifest import load_manifest
from .demo import TITLES, ensure_run
from ..errors import ConfigError
from ..runlock import holding_lock

# numpy, torch and the evaluation modules are imported where a sweep runs, so avssl --help stays fast.

log = logging.getLogger("avssl.sweep")

def clusters(method: str) -> bool:
    """Whether ``method`` has a k (a deep-clustering method)."""
    from ..methods import METHODS
    from ..methods.deep_clustering import DeepClusteringMethod

    cls = METHODS.get(method)
    return cls is not None and issubclass(cls, DeepClusteringMethod) and bool(cls.clusterings)


@dataclass(frozen=True)
class RunSpec:
    """One pretraining run of a sweep (``k``/``fraction`` None where they do not apply)."""

    method: str
    preset: str
    k: int | None
    fraction: float | None
    seed: int

    @property
    def name(self) -> str:
        parts = [self.method, self.preset]
        if self.k is not None:
            parts.append(f"k{self.k}")
        if self.fraction not in (None, 1.0):
            parts.append(f"f{self.fraction:g}")
        return "-".join([*parts, f"s{self.seed}"])

    @property
    def group(self) -> tuple:
        return self.method, self.preset, self.k, self.fraction


def plan(methods, presets, ks=None, fractions=None, seeds=(0,)) -> list[RunSpec]:
    """Every run of a sweep, once each (a method without k, or scratch without fractions, collapses)."""
    from ..methods import METHODS

    unknown = [m for m in methods if m != "scratch" and m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; choose from scratch, {', '.join(sorted(METHODS))}")
    bad = [p for p in presets if p not in PRESETS]
    if bad:
        raise ConfigError(f"unknown preset(s) {bad}; choose from {', '.join(sorted(PRESETS))}")
    if ks is not None and min(ks) < 2:
        raise ConfigError(f"k values must be >= 2, got {list(ks)}")
    if fractions is not None and not all(0 < f <= 1 for f in fractions):
        raise ConfigError(f"fractions must be in (0, 1], got {list(fractions)}")
    runs = []
    for p, f, m, seed in itertools.product(presets, fractions or [None], methods, seeds):
        k_values = (ks or [preset_config(p).clustering.k]) if clusters(m) else [None]
        for k in k_values:
            spec = RunSpec(m, p, k, None if m == "scratch" else f, seed)
            if spec not in runs:
                runs.append(spec)
    return runs


def pretraining_pools(data, out: Path, fractions, seed: int = 0) -> dict:
    """{fraction: (manifest CSV, videos)}: the non-test items of ``data``, or nested seeded subsets of them."""
    manifest = load_manifest(data)
    pool = manifest.subset([i for i, it in enumerate(manifest) if (it.split or "").lower() != "test"])
    if len(pool) < 2:
        raise ConfigError(f"{manifest.source} has {len(pool)} non-test videos to pretrain on; at least 2 are needed")
    order = seeds.rng(seed, seeds.SWEEP_POOL).permutation(len(pool))
    pools = {}
    for f in fractions or [None]:
        n = len(pool) if f is None else min(len(pool), max(2, round(f * len(pool))))
        path = out / "manifests" / ("pretrain.csv" if f is None else f"pretrain-f{f:g}.csv")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pool.subset(sorted(order[:n])).write(path)
        pools[f] = (path, n)
    return pools


def _evaluation(kind: str, encoders, eval_data, out: Path, expect: dict, **kw) -> tuple[dict, bool]:
    """Run (or reuse, when ``out/<kind>.json`` was made with the same data and settings) one evaluation."""
    from ..evaluation import finetune, linear_probe

    done = out / f"{kind}.json"
    if done.exists():
        old = json.loads(done.read_text())
        if old.get("data") == expect["data"] and all(old["settings"].get(k) == v for k, v in expect["settings"].items()):
            return old, True
    fn = linear_probe if kind == "linear" else finetune
    return fn(encoders, eval_data, out, **kw), False


@holding_lock("out")  # one process per sweep folder
def sweep(data, out, *, methods, presets=("demo",), ks=None, fractions=None, seeds=(0,), eval_data=None,
          modalities=("video",), finetune: bool = False, overrides=(), eval_clips: int = 10, finetune_epochs: int = 8,
          subset_seed: int = 0, progress: bool = True) -> dict:
    """Pretrain (or reuse / resume) every run of the sweep, evaluate each, and write the results table and
    plot into ``out``; returns the content of ``results.json``."""
    from ..io import atomic_write_text
    from ..evaluation.splits import pct

    out = Path(out)
    t0 = time.perf_counter()
    runs = plan(methods, presets, ks, fractions, seeds)
    pools = pretraining_pools(data, out, fractions, subset_seed)
    evals = eval_sets(eval_data if eval_data is not None else data)
    records = []
    for spec in runs:
        pool, n_videos = pools[spec.fraction] if spec.method != "scratch" else (None, None)
        extra = [f"clustering.k={spec.k}"] if spec.k is not None else []
        # scratch: random encoders of the preset, with the sweep's overrides (no run directory)
        encoders, state = ensure_run(spec.method, pool, out / "runs" / spec.name, spec.preset,
                                     [*overrides, *extra], spec.seed, progress)
        record = {**asdict(spec), "name": spec.name, "pretrain_videos": n_videos, "state": state, "metrics": {},
                  "reused_evaluations": 0}
        have = _modalities(encoders)
        for modality in modalities:
            if modality not in have:
                continue
            common = {"modality": modality, "seed": spec.seed, "progress": progress}
            jobs = [("linear", {"train_clips": eval_clips, "test_clips": eval_clips, "cache_dir": out / "features"},
                     {"train_clips": eval_clips, "test_clips": eval_clips})]
            if finetune:
                jobs.append(("finetune", {"epochs": finetune_epochs, "test_clips": eval_clips},
                             {"epochs": finetune_epochs, "test_clips": eval_clips}))
            for (set_name, manifest), (kind, kw, settings) in itertools.product(evals.items(), jobs):
                where = out / "eval" / spec.name / (f"{set_name}/" if set_name else "") / f"{modality}-{kind}"
                r, reused = _evaluation(kind, encoders, manifest, where,
                                        {"data": str(manifest.source), "settings": settings}, **common, **kw)
                record["metrics"][f"{set_name} {modality} {kind}".strip()] = r["mean"]["accuracy"]
                record["reused_evaluations"] += int(reused)
        log.info("%s (%s): %s", spec.name, state,
                 ", ".join(f"{k} {pct(v)}" for k, v in record["metrics"].items()))
        records.append(record)
    rows = aggregate(records)
    metrics = list(dict.fromkeys(m for r in records for m in r["metrics"]))
    x_axis = _x_axis(runs, fractions)
    result = {"data": str(data), "eval_data": [str(m.source) for m in evals.values()], "methods": list(methods),
              "presets": list(presets), "ks": list(ks) if ks else None, "fractions": list(fractions) if fractions else None,
              "seeds": list(seeds), "metrics": metrics, "x_axis": x_axis, "runs": records, "rows": rows,
              "states": {s: sum(r["state"] == s for r in records) for s in ("trained", "resumed", "reused", "random")},
              "seconds": time.perf_counter() - t0}
    markdown = results_table(rows, metrics, presets=len(presets) > 1, sizes=bool(fractions))
    atomic_write_text(out / "results.md", markdown + "\n")
    result["plot"] = str(plot_results(rows, metrics, x_axis, out / "results.png"))
    result["markdown"] = markdown
    atomic_write_text(out / "results.json", json.dumps(result, indent=2, default=str) + "\n")
    return result


def eval_sets(eval_data) -> dict:
    """{name: manifest} of one labelled manifest (name "") or several (a list, or paths joined by
    commas; named by file stem, e.g. ``object`` and ``category`` label sets of the same videos)."""
    from ..evaluation.splits import open_manifest

    if isinstance(eval_data, str) and "," in eval_data:
        eval_data = [p for p in eval_data.split(",") if p]
    if not isinstance(eval_data, (list, tuple)):
        return {"": open_manifest(eval_data)}
    sets = {Path(str(getattr(d, "source", d))).stem: open_manifest(d) for d in eval_data}
    if len(sets) != len(eval_data):
        raise ConfigError("--eval-data: the manifests need distinct file names (they name the result columns)")
    return sets


def _modalities(encoders) -> set:
    from ..runs import LoadedEncoders, load_encoders

    if isinstance(encoders, LoadedEncoders):
        return set(encoders.modalities)
    return set(load_encoders(encoders).modalities)


def _x_axis(runs: list[RunSpec], fractions) -> str:
    """What the plot's x axis is: pretraining-set size, k, or one bar group per method."""
    if fractions and len(fractions) > 1:
        return "pretrain_videos"
    if len({r.k for r in runs if r.k is not None}) > 1:
        return "k"
    return "method"


def aggregate(records: list[dict]) -> list[dict]:
    """One row per (method, preset, k, fraction): mean and standard deviation of each metric over seeds."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["preset"], r["k"], r["fraction"]), []).append(r)
    rows = []
    for (method, preset, k, fraction), rs in groups.items():
        row = {"method": method, "preset": preset, "k": k, "fraction": fraction,
               "pretrain_videos": rs[0]["pretrain_videos"], "seeds": [r["seed"] for r in rs], "mean": {}, "std": {}}
        for m in dict.fromkeys(m for r in rs for m in r["metrics"]):
            values = [r["metrics"][m] for r in rs if m in r["metrics"]]
            row["mean"][m], row["std"][m] = float(np.mean(values)), float(np.std(values))
        rows.append(row)
    return rows


def results_table(rows: list[dict], metrics: list[str], presets: bool = False, sizes: bool = False) -> str:
    """Markdown: a row per configuration, top-1 accuracy (%) per metric as mean ± std over seeds; the
    best of each column in bold."""
    from ..evaluation.splits import pct

    best = {m: max((r["mean"][m] for r in rows if m in r["mean"]), default=None) for m in metrics}
    head = ["method"] + (["preset"] if presets else []) + (["pretraining videos"] if sizes else []) + ["k"]
    lines = ["| " + " | ".join(head + [f"{m} top-1 (%)" for m in metrics] + ["seeds"]) + " |",
             "|" + "---|" * (len(head) + len(metrics) + 1)]
    for r in rows:
        cells = [TITLES.get(r["method"], r["method"])] + ([r["preset"]] if presets else [])
        if sizes:
            cells.append("-" if r["pretrain_videos"] is None else str(r["pretrain_videos"]))
        cells.append("-" if r["k"] is None else str(r["k"]))
        for m in metrics:
            if m not in r["mean"]:
                cells.append("N/A")
                continue
            text = pct(r["mean"][m]) + (f" ± {pct(r['std'][m])}" if len(r["seeds"]) > 1 else "")
            cells.append(f"**{text}**" if r["mean"][m] == best[m] else text)
        cells.append(str(len(r["seeds"])))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_results(rows: list[dict], metrics: list[str], x_axis: str, path) -> Path:
    """Accuracy against k or pretraining-set size (a line per method and metric, flat lines for runs
    without that variable, error bars: std over seeds), or grouped bars per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-o", "--s", ":^", "-.D"]
    label = lambda r: " ".join(str(v) for v in (TITLES.get(r["method"], r["method"]),  # noqa: E731
                                                r["preset"] if len({x["preset"] for x in rows}) > 1 else None) if v)
    if x_axis == "method":
        width = 0.8 / max(len(metrics), 1)
        for j, m in enumerate(metrics):
            xs = [i + j * width for i, r in enumerate(rows) if m in r["mean"]]
            ys = [100 * r["mean"][m] for r in rows if m in r["mean"]]
            es = [100 * r["std"][m] for r in rows if m in r["mean"]]
            ax.bar(xs, ys, width, yerr=es, label=m, capsize=3)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))])
        ax.set_xticklabels([label(r) + (f" k={r['k']}" if r["k"] is not None else "") for r in rows],
                           rotation=20, ha="right")
    else:
        key = "k" if x_axis == "k" else "pretrain_videos"
        series: dict[tuple, list[dict]] = {}
        for r in rows:
            extra = r["k"] if key == "pretrain_videos" else r["fraction"]
            series.setdefault((label(r), extra), []).append(r)
        xs_all = sorted({r[key] for r in rows if r[key] is not None})
        for i, ((name, extra), rs) in enumerate(series.items()):
            colour = colours[i % len(colours)]
            suffix = "" if extra is None else (f" k={extra}" if key == "pretrain_videos" else f" f={extra:g}")
            for j, m in enumerate(metrics):
                pts = sorted((r[key], 100 * r["mean"][m], 100 * r["std"][m]) for r in rs if m in r["mean"])
                if not pts:
                    continue
                if pts[0][0] is None:  # no k / no pretraining: a flat reference line
                    ax.axhline(pts[0][1], color=colour, linestyle=styles[j % len(styles)][:-1] or "-", alpha=0.6,
                               label=f"{name}{suffix}, {m}")
                    continue
                x, y, e = zip(*pts)
                ax.errorbar(x, y, yerr=e, fmt=styles[j % len(styles)], color=colour, capsize=3,
                            label=f"{name}{suffix}, {m}")
        ax.set_xscale("log", base=2 if key == "k" else 10)
        ax.set_xticks(xs_all, [str(v) for v in xs_all])
        ax.minorticks_off()
        ax.set_xlabel("k (clusters)" if key == "k" else "pretraining videos")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("avssl sweep")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
