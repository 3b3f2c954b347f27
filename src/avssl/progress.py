"""What a job prints while it runs: progress bars that only draw on a terminal, and numbers readable at any scale.

Usage::

    from avssl.progress import fmt_number, progress

    for batch in progress(loader, "iter 0 epoch 3", enabled=not args.no_progress, unit="batch"):
        ...
    with progress(total=len(files), desc="probing media", unit="file") as bar:
        bar.update()
    fmt_number(2.9044e34)  # '2.9e+34'

Every progress bar of the package goes through ``progress``: a bar redraws itself with carriage
returns, which on a terminal is a moving bar and in a log file (a batch job, ``| tee``, CI) is a wall
of half lines. So a bar is drawn only when it is wanted (``enabled``) *and* standard error is a
terminal (or a Jupyter kernel, where tqdm draws a widget); otherwise it is disabled and the engine's
one INFO line per epoch is the record. Nothing heavy is imported here (tqdm only when a bar is made),
so command modules may import this one while the parser is built.
"""
from __future__ import annotations

import math
import numbers
import sys


def bars_wanted(stream=None) -> bool:
    """Whether a progress bar may draw on ``stream`` (default ``sys.stderr``, where tqdm writes): a
    terminal, or a Jupyter kernel."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream is not None and stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        pass
    return "ipykernel" in sys.modules


def progress(iterable=None, desc: str | None = None, enabled: bool = True, **kwargs):
    """A tqdm bar over ``iterable`` (or a manual one with ``total=``), disabled unless ``enabled`` and
    ``bars_wanted()``. ``kwargs`` go to tqdm (``total``, ``unit``, ``leave``...). A disabled bar still
    iterates and works as a context manager; it just prints nothing."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=not (enabled and bars_wanted()), **kwargs)


def fmt_number(x) -> str:
    """A number for a human: integers as they are; floats with 4 significant digits (``3.142``),
    without a fraction from 1,000 on (``12346``), and in scientific notation from 1e5 and below 1e-3
    (``2.9e+34``, ``1.2e-05``); 0, nan and inf as ``0``, ``nan``, ``inf``. Anything else: ``str(x)``."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        return str(x)
    if isinstance(x, numbers.Integral):
        return str(int(x))
    x = float(x)
    if not math.isfinite(x) or x == 0:
        return f"{x:g}"
    size = abs(x)
    if size >= 1e5 or size < 1e-3:
        return f"{x:.1e}"
    if size >= 1e3:
        return f"{x:.0f}"
    return f"{x:.4g}"


def epoch_line(iteration: int, epoch: int, epochs: int, metrics: dict, seconds: float) -> str:
    """The one line the engine logs after every epoch (bars or not), e.g. ``iteration 0, epoch 1 (2 of at
    most 2): loss 2.471, val loss 8.83, lr 0.05, pseudo-label acc 0.38, 3.2 s``. ``epoch`` counts from 0
    as in metrics.jsonl; early stopping may end an iteration before ``epochs``."""
    parts = []
    for key, name in (("loss", "loss"), ("val_loss", "val loss"), ("lr", "lr")):
        value = metrics.get(key)
        if isinstance(value, numbers.Real) and math.isfinite(value):  # no val loss without a validation set
            parts.append(f"{name} {fmt_number(value)}")
    accs = [v for k, v in metrics.items() if k.startswith("acc_") and isinstance(v, numbers.Real)]
    if accs:
        parts.append(f"pseudo-label acc {sum(accs) / len(accs):.2f}")
    parts.append(f"{seconds:.1f} s")
    return f"iteration {iteration}, epoch {epoch} ({epoch + 1} of at most {epochs}): " + ", ".join(parts)


def iteration_line(s: dict) -> str:
    """The one line the engine logs after every iteration, from its summary record in metrics.jsonl:
    losses, pseudo-label accuracy, each clustering's sizes, NMI and purity, and where the time went."""
    parts = [f"iteration {s['iteration']}:"]
    e = s["last_epoch"]
    if "loss" in e:  # readable at any scale: a diverging val loss as 2.9e+34, not 35 digits
        parts.append(f"loss {fmt_number(e['loss'])} val {fmt_number(e.get('val_loss', float('nan')))}")
    accs = [v for k, v in e.items() if k.startswith("acc_")]
    if accs:
        parts.append(f"pseudo-label acc {sum(accs) / len(accs):.2f}")
    for name, c in s["clusters"].items():
        bits = [f"{name}: sizes {c['sizes']['min']}-{c['sizes']['max']}"]
        if "nmi_previous" in c:
            bits.append(f"NMI prev {c['nmi_previous']:.2f}")
        if "vs_labels" in c:
            bits.append(f"purity {c['vs_labels']['purity']:.2f} NMI {c['vs_labels']['nmi']:.2f}")
        parts.append(" ".join(bits))
    t = s["times"]
    parts.append(f"[extract {t['extract']:.0f}s cluster {t['cluster']:.1f}s train {t['train']:.0f}s]")
    return " | ".join(parts)
