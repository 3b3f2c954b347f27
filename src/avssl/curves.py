"""Training curves of a pretraining run, read from its ``metrics.jsonl`` and drawn as one PNG.

Usage: ``from avssl.curves import write_curves; write_curves("runs/xdc")  # -> runs/xdc/curves.png``

Per epoch (x: a global epoch counter across iterations, iteration boundaries as dotted lines):
training and validation loss (log scale when they span more than two decades), the method's loss
terms (every other ``loss_*`` key), the learning rate, pseudo-label accuracy (every ``acc_*`` key)
and any other per-epoch number a method logs (AVTS's ``sync_ranking``, CrissCross's ``z_std_*``, a
gradient norm): those within [0, 1] share a panel, each other one has its own.
Per iteration (from the summary lines): cluster sizes, NMI with the previous iteration's
clustering, and purity/NMI against labels when the run's data was labelled. Panels a run has no
data for are left out (AVTS and CrissCross have no clusters); the loss panel says "no data" when
not a single epoch has finished. A partial run (an iteration without its summary line yet, or a
half-written last line) is drawn as far as it got.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .io import read_jsonl

#: per-epoch keys that are not curves of their own (``steps`` is the number of optimiser steps, ``time``
#: the wall clock when the line was written)
_EPOCH_BOOKKEEPING = {"iteration", "epoch", "summary", "loss", "val_loss", "lr", "steps", "time", "timestamp"}
#: the loss panel switches to a log y-scale when max / min of its values exceeds this (two decades)
LOG_SCALE_SPAN = 100.0


def read_metrics(run_dir) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` in file order; a line that does not parse (a run killed
    while writing it) is skipped. Raises FileNotFoundError when the file does not exist."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; is {run_dir} a pretraining run directory?")
    return [record for record in read_jsonl(path) if "iteration" in record]


def _num(v) -> float:
    """A metric value as a float; nan when absent or not a number."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return float("nan")
    return float(v)


def y_scale(values) -> str:
    """``"log"`` when the finite values are all positive and span more than two decades; ``"symlog"``
    when some are not positive but their magnitudes span more than two decades; else ``"linear"``."""
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return "linear"
    if min(finite) > 0:
        return "log" if max(finite) / min(finite) > LOG_SCALE_SPAN else "linear"
    magnitudes = [abs(v) for v in finite if v != 0]
    if magnitudes and max(magnitudes) / min(magnitudes) > LOG_SCALE_SPAN:
        return "symlog"
    return "linear"


def curve_data(run_dir) -> dict:
    """The series ``write_curves`` draws, as plain lists (nan where an epoch lacks a value)::

        {"run": str, "method": str | None,
         "epochs": {"x": [1, 2, ...], "iteration": [...], "epoch": [...], "loss": [...], "val_loss": [...],
                    "lr": [...], "acc": {key: [...]}, "loss_terms": {key: [...]},
                    "val_loss_terms": {"val_" + key: [...]}, "other": {key: [...]}},
         "boundaries": [x where an iteration after the first starts, minus 0.5],
         "loss_scale": "linear" | "log" | "symlog",
         "iterations": {"iteration": [...], "clusters": {name: {"k", "min", "mean", "median", "max",
                        "empty", "nmi_previous", "purity", "nmi": [...]}}}}

    ``x`` counts epochs over the whole run from 1; per-iteration lists are aligned with
    ``iterations["iteration"]`` (the iterations that have a summary line)."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    method = None
    try:
        method = json.loads((run_dir / "config.json").read_text()).get("method")
    except (OSError, ValueError, AttributeError):
        pass
    # Epoch lines, the last one of each (iteration, epoch) winning, in training order.
    by_key: dict[tuple[int, int], dict] = {}
    for r in records:
        if not r.get("summary") and "epoch" in r:
            by_key[(int(r["iteration"]), int(r["epoch"]))] = r
    epochs = [by_key[k] for k in sorted(by_key)]
    acc_keys = sorted({k for r in epochs for k in r if k.startswith("acc_")})
    term_keys = sorted({k for r in epochs for k in r if k.startswith("loss_")})
    val_term_keys = sorted({k for r in epochs for k in r if k.startswith("val_loss_")})
    other_keys = sorted({k for r in epochs for k, v in r.items()
                         if k not in _EPOCH_BOOKKEEPING and not k.startswith(("acc_", "loss_", "val_loss_"))
                         and isinstance(v, (int, float)) and not isinstance(v, bool)})
    series = lambda key: [_num(r.get(key)) for r in epochs]  # noqa: E731
    x = list(range(1, len(epochs) + 1))
    its = [int(r["iteration"]) for r in epochs]
    boundaries = [x[i] - 0.5 for i in range(1, len(its)) if its[i] != its[i - 1]]
    e = {"x": x, "iteration": its, "epoch": [int(r["epoch"]) for r in epochs],
         "loss": series("loss"), "val_loss": series("val_loss"), "lr": series("lr"),
         "acc": {k: series(k) for k in acc_keys}, "loss_terms": {k: series(k) for k in term_keys},
         "val_loss_terms": {k: series(k) for k in val_term_keys},
         "other": {k: series(k) for k in other_keys}}

    summaries: dict[int, dict] = {}
    for r in records:
        if r.get("summary"):
            summaries[int(r["iteration"])] = r
    iterations = sorted(summaries)
    names = []
    for it in iterations:
        for name in summaries[it].get("clusters") or {}:
            if name not in names:
                names.append(name)
    clusters = {}
    for name in names:
        c = {k: [] for k in ("k", "min", "mean", "median", "max", "empty", "nmi_previous", "purity", "nmi")}
        for it in iterations:
            stats = (summaries[it].get("clusters") or {}).get(name) or {}
            sizes, vs = stats.get("sizes") or {}, stats.get("vs_labels") or {}
            for k in ("k", "min", "mean", "median", "max", "empty"):
                c[k].append(_num(sizes.get(k)))
            c["nmi_previous"].append(_num(stats.get("nmi_previous")))
            c["purity"].append(_num(vs.get("purity")))
            c["nmi"].append(_num(vs.get("nmi")))
        clusters[name] = c
    return {"run": str(run_dir), "method": method, "epochs": e, "boundaries": boundaries,
            "loss_scale": y_scale(e["loss"] + e["val_loss"]),
            "iterations": {"iteration": iterations, "clusters": clusters}}


def _has(values) -> bool:
    return any(math.isfinite(v) for v in values)


def _other_groups(other: dict) -> tuple[list[str], list[str]]:
    """The keys of ``other`` with data, split into those whose values all lie in [0, 1] (fractions,
    rankings, standard deviations of unit vectors: one shared panel) and the rest (a panel each)."""
    unit, own = [], []
    for k, ys in other.items():
        finite = [v for v in ys if math.isfinite(v)]
        if finite:
            (unit if all(0.0 <= v <= 1.0 for v in finite) else own).append(k)
    return unit, own


def _panels(data: dict) -> list[str]:
    """Names of the panels drawn for ``data``, in order."""
    e, cl = data["epochs"], data["iterations"]["clusters"]
    panels = ["loss"]
    if any(_has(v) for v in e["loss_terms"].values()):
        panels.append("loss_terms")
    if _has(e["lr"]):
        panels.append("lr")
    if any(_has(v) for v in e["acc"].values()):
        panels.append("acc")
    unit, own = _other_groups(e["other"])
    if unit:
        panels.append("other")
    panels += [f"other:{k}" for k in own]
    if any(_has(c["min"]) or _has(c["max"]) for c in cl.values()):
        panels.append("sizes")
    if any(_has(c["nmi_previous"]) for c in cl.values()):
        panels.append("nmi_previous")
    if any(_has(c["purity"]) or _has(c["nmi"]) for c in cl.values()):
        panels.append("vs_labels")
    return panels


TITLES = {"loss": "loss per epoch", "loss_terms": "loss terms (training; validation dashed)", "lr": "learning rate",
          "acc": "pseudo-label accuracy (training)", "other": "other per-epoch metrics (within 0-1)",
          "sizes": "cluster sizes per iteration", "nmi_previous": "NMI with the previous iteration's clusters",
          "vs_labels": "clusters vs labels (diagnostic)"}


def panel_title(name: str) -> str:
    """The title of panel ``name`` (``other:<key>`` is a panel of one per-epoch key)."""
    return TITLES.get(name) or f"{name.split(':', 1)[-1]} per epoch"


def curves_figure(data: dict):
    """A matplotlib Figure (Agg canvas, no pyplot state) of ``data`` from ``curve_data``; its axes are
    in the order of the panels, each titled by ``panel_title``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = _panels(data)
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(6.2 * cols, 3.4 * rows + 0.5))
    FigureCanvasAgg(fig)
    title = Path(data["run"]).name
    if data.get("method") and data["method"] != title:
        title += f" ({data['method']})"
    fig.suptitle(f"{title}: training curves")
    e, its = data["epochs"], data["iterations"]
    x = e["x"]

    def per_epoch(ax, series: dict, ylabel: str | None = None, legend: bool = False) -> None:
        from matplotlib.ticker import MaxNLocator
        from matplotlib.transforms import blended_transform_factory

        edges = [0.5, *data["boundaries"], len(x) + 0.5]
        top = blended_transform_factory(ax.transData, ax.transAxes)
        for b in data["boundaries"]:
            ax.axvline(b, color="0.6", linestyle=":", linewidth=1)
        if len(edges) > 2:  # name each iteration's span at the top of the panel
            starts = [0] + [i for i in range(1, len(x)) if e["iteration"][i] != e["iteration"][i - 1]]
            for lo, hi, s in zip(edges, edges[1:], starts):
                ax.text((lo + hi) / 2, 0.98, f"it {e['iteration'][s]}", transform=top, ha="center", va="top",
                        fontsize=7, color="0.45")
        for label, ys in series.items():  # ys, or (ys, plot style)
            ys, style = ys if isinstance(ys, tuple) else (ys, {})
            if _has(ys):
                ax.plot(x, ys, marker="o" if len(x) <= 30 else None, markersize=3, label=label, **style)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch of the run (dotted: a new iteration starts)" if data["boundaries"] else "epoch")
        if ylabel:
            ax.set_ylabel(ylabel)
        if legend or len(series) > 1:
            ax.legend(fontsize=7)

    def per_iteration(ax, series: dict, ylabel: str | None = None) -> None:
        """``series``: label -> values, or label -> (values, plot keyword arguments)."""
        for label, ys in series.items():
            ys, kw = ys if isinstance(ys, tuple) else (ys, {})
            if _has(ys):
                ax.plot(its["iteration"], ys, **{"marker": "o", **kw}, label=label)
        ax.set_xlabel("iteration")
        ax.set_xticks(its["iteration"])
        if len(its["iteration"]) == 1:  # one point: keep it off the panel's edge
            ax.set_xlim(its["iteration"][0] - 1, its["iteration"][0] + 1)
        if ylabel:
            ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)

    for i, name in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_title(panel_title(name), fontsize=10)
        ax.grid(alpha=0.3)
        if name == "loss":
            if not (_has(e["loss"]) or _has(e["val_loss"])):
                ax.text(0.5, 0.5, "no data (no epoch finished yet)", ha="center", va="center",
                        transform=ax.transAxes)
                continue
            per_epoch(ax, {"training": e["loss"], "validation": e["val_loss"]})
            scale = data["loss_scale"]
            if scale == "symlog":
                finite = [abs(v) for v in e["loss"] + e["val_loss"] if math.isfinite(v) and v != 0]
                ax.set_yscale("symlog", linthresh=min(finite))
            else:
                ax.set_yscale(scale)
            if scale != "linear":
                ax.set_ylabel(f"loss ({scale} scale)")
        elif name == "loss_terms":  # training solid, validation dashed in the same colour
            colours = {k: f"C{j % 10}" for j, k in enumerate(e["loss_terms"])}
            terms = {k: (ys, {"color": colours[k]}) for k, ys in e["loss_terms"].items()}
            terms.update({k: (ys, {"color": colours.get(k.removeprefix("val_")), "linestyle": "--"})
                          for k, ys in e["val_loss_terms"].items()})
            per_epoch(ax, terms, legend=True)
            values = [v for ys, _ in terms.values() for v in ys]
            ax.set_yscale(y_scale(values).replace("symlog", "linear"))
        elif name == "lr":
            per_epoch(ax, {"lr": e["lr"]})
            if y_scale(e["lr"]) == "log":
                ax.set_yscale("log")
        elif name == "acc":
            per_epoch(ax, e["acc"], legend=True)
            ax.set_ylim(-0.02, 1.02)
        elif name == "other":
            per_epoch(ax, {k: e["other"][k] for k in _other_groups(e["other"])[0]}, legend=True)
        elif name.startswith("other:"):
            ys = e["other"][name.split(":", 1)[1]]
            per_epoch(ax, {name.split(":", 1)[1]: ys})
            if y_scale(ys) == "log":
                ax.set_yscale("log")
        elif name == "sizes":
            series = {}  # one colour per clustering; min dashed, median (or mean) solid, max dotted
            for j, (cname, c) in enumerate(its["clusters"].items()):
                middle = ("median", c["median"]) if _has(c["median"]) else ("mean", c["mean"])
                k = next((int(v) for v in c["k"] if math.isfinite(v)), None)
                tag = f"{cname}" + (f" (k={k})" if k is not None else "")
                colour = f"C{j % 10}"
                series.update({f"{tag} max": (c["max"], {"color": colour, "linestyle": ":", "marker": "^"}),
                               f"{tag} {middle[0]}": (middle[1], {"color": colour, "linestyle": "-"}),
                               f"{tag} min": (c["min"], {"color": colour, "linestyle": "--", "marker": "v"})})
            per_iteration(ax, series, "videos per cluster")
        elif name == "nmi_previous":
            per_iteration(ax, {n: c["nmi_previous"] for n, c in its["clusters"].items()}, "NMI")
            ax.set_ylim(-0.02, 1.02)
        elif name == "vs_labels":
            series = {}
            for j, (cname, c) in enumerate(its["clusters"].items()):  # purity solid, NMI dashed
                series.update({f"{cname} purity": (c["purity"], {"color": f"C{j % 10}", "linestyle": "-"}),
                               f"{cname} NMI": (c["nmi"], {"color": f"C{j % 10}", "linestyle": "--",
                                                           "marker": "s"})})
            per_iteration(ax, series)
            ax.set_ylim(-0.02, 1.02)
    fig.tight_layout()
    return fig


def write_curves(run_dir, dpi: int = 100) -> Path:
    """Draw the run's curves into ``run_dir/curves.png`` (replaced atomically) and return its path."""
    run_dir = Path(run_dir)
    fig = curves_figure(curve_data(run_dir))
    # Atomic like the run's other files: a report reading curves.png never sees half a PNG.
    from .io import atomic_write

    return atomic_write(run_dir / "curves.png", lambda f: fig.savefig(f, format="png", dpi=dpi))
