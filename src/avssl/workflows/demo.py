"""``avssl demo``: the paper's Table 1 in miniature, on the embedded demo world, on a CPU.

Pretrains each method on the demo world's training videos (their labels are used only by
``supervised``, the upper bound; ``scratch`` is the random-encoder lower bound), evaluates the video
and the audio encoder of each with the linear protocol on the held-out labelled split, prints the
comparison as a table shaped like the XDC paper's Table 1, and writes the cluster report of the XDC
run and ``report.html`` (the table, every run's curves, the cluster report). With several seeds the
table shows mean ± std. Everything lands in ``--out``; rerunning reuses finished runs and resumes
interrupted ones.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import resolve
from ..errors import AvsslError
from ..machine import cpu_model
from .report import write_report
from ..runlock import holding_lock

if TYPE_CHECKING:  # numpy, torch and PyAV are imported where the demo runs, so avssl --help stays fast
    from ..data.demo_world import DemoWorldConfig
    from ..runs import LoadedEncoders

log = logging.getLogger("avssl.demo")

DEFAULT_METHODS = ("scratch", "supervised", "sdc", "xdc")
TITLES = {"scratch": "Scratch", "sdc": "SDC", "mdc": "MDC", "cdc": "CDC", "xdc": "XDC",
          "xdc-video-video": "XDC (2 video)", "xdc-audio-audio": "XDC (2 audio)",
          "avts": "AVTS", "crisscross": "CrissCross", "supervised": "Superv"}
ROWS = (("video", "demo world, video encoder"), ("audio", "demo world, audio encoder"))


@holding_lock("out")  # one process per demo folder
def run_demo(out="avssl-demo", methods=DEFAULT_METHODS, preset: str = "demo", overrides=(), seed: int = 0,
             world: DemoWorldConfig | None = None, progress: bool = True, seeds=None) -> dict:
    """Run the comparison over ``seeds`` (default: ``seed`` alone); returns {"table": {method: {modality:
    mean accuracy}}, "per_seed": {method: {modality: [accuracy per seed]}}, "failed": {method: message},
    "markdown": str, ...}. ``results.md``/``results.json`` are rewritten after every method, and a method
    that fails (a diverged run, say) is reported in the table instead of ending the demo."""
    import numpy as np

    from ..data.demo_world import DemoWorldConfig, demo_dataset
    from ..data.manifest import load_manifest
    from ..evaluation import cluster_report, linear_probe

    world = DemoWorldConfig() if world is None else world
    seeds = tuple(seeds) if seeds is not None else (seed,)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    manifest_path = demo_dataset(config=world, progress=progress)
    manifest = load_manifest(manifest_path)
    train = manifest.filter_split("train")
    per_seed, failed, timings = {}, {}, {}
    result: dict = {}
    for method in methods:
        t = time.perf_counter()
        per_seed[method] = {}
        for s in seeds:
            try:
                encoders, _ = ensure_run(method, train, run_path(out, method, s), preset, overrides, s, progress)
                for modality, _ in ROWS:
                    if method != "scratch" and modality not in _modalities(encoders):
                        continue
                    r = linear_probe(encoders, manifest, out / "eval" / f"{run_path(out, method, s).name}-{modality}",
                                     modality=modality, seed=s, cache_dir=out / "features", progress=progress)
                    per_seed[method].setdefault(modality, []).append(r["mean"]["accuracy"])
            except AvsslError as e:  # a diverged or impossible run: reported, and the others go on
                failed[method] = f"seed {s}: {e}"
                log.error("%s failed (seed %d): %s", TITLES.get(method, method), s, e)
                break
        timings[method] = time.perf_counter() - t
        log.info(f"{TITLES.get(method, method)}: " + ", ".join(
            f"{m} {np.mean(a) * 100:.1f}%" for m, a in per_seed[method].items()) + f" ({timings[method]:.0f} s)")
        result = _write_results(out, methods, preset, seeds, per_seed, failed, timings, time.perf_counter() - t0)
    if "xdc" in methods and "xdc" not in failed:
        report = cluster_report(run_path(out, "xdc", seeds[0]), manifest, out / "clusters")
        result = _write_results(out, methods, preset, seeds, per_seed, failed, timings, time.perf_counter() - t0,
                                cluster_report=str(out / "clusters" / "clusters.html") if report else None)
    return result


def run_path(out: Path, method: str, seed: int) -> Path:
    """The run directory of ``method`` and ``seed`` in a demo folder (seed 0 keeps the plain name)."""
    return Path(out) / "runs" / (method if seed == 0 else f"{method}-s{seed}")


def _write_results(out, methods, preset, seeds, per_seed, failed, timings, seconds, cluster_report=None) -> dict:
    """The comparison so far, in ``results.json`` and ``results.md``."""
    import numpy as np

    from ..io import atomic_write_text

    table = {m: {mod: float(np.mean(v)) for mod, v in per_seed[m].items()} for m in per_seed if per_seed[m]}
    spread = {m: {mod: float(np.std(v)) for mod, v in per_seed[m].items()} for m in table} if len(seeds) > 1 else None
    markdown = format_table(table, methods, spread=spread, failed=failed)
    if len(seeds) > 1:
        markdown += f"\n\nMean and standard deviation over seeds {', '.join(map(str, seeds))}."
    result = {"table": table, "per_seed": per_seed, "std": spread, "failed": failed, "markdown": markdown,
              "methods": list(methods), "preset": preset, "seeds": list(seeds), "seconds": seconds,
              "seconds_per_method": timings, "cpu": cpu_model(), "cluster_report": cluster_report,
              "report": str(out / "report.html")}
    atomic_write_text(out / "results.json", json.dumps(result, indent=2))
    atomic_write_text(out / "results.md", markdown + "\n")
    runs = {TITLES.get(m, m): run_path(out, m, seeds[0]) for m in per_seed if m != "scratch"}
    write_report(out, result, runs, Path(cluster_report) if cluster_report else None)
    return result


def ensure_run(method, data, run_dir: Path, preset, overrides, seed, progress) -> tuple[Path | LoadedEncoders, str]:
    """The encoders of ``method`` as evaluation takes them, and how they came about.

    For a pretext method: (the run directory ``run_dir``, ``reused`` / ``resumed`` / ``trained``): the
    run is reused when finished, resumed when interrupted, else started. For ``scratch`` (the lower
    bound): (random ``LoadedEncoders`` of the same preset and overrides, ``random``); ``run_dir`` is not
    touched."""
    from ..runs import scratch_encoders
    from ..engine.pretrain import pretrain
    from ..methods import validate

    if method == "scratch":
        return scratch_encoders(resolve(preset, None, list(overrides)), seed=seed), "random"
    run_dir = Path(run_dir)
    if (run_dir / "encoders.pt").exists():
        log.info("reusing the finished %s run in %s", method, run_dir)
        return run_dir, "reused"
    cfg = resolve(preset, method, [*overrides, f"seed={seed}"], check=validate)
    resume = (run_dir / "checkpoints" / "last.pt").exists()
    log.info(f"pretraining {TITLES.get(method, method)} ({'resuming' if resume else preset})")
    return pretrain(cfg, data, run_dir, resume=resume, progress=progress).run_dir, "resumed" if resume else "trained"


def _modalities(run_dir: Path) -> set:
    from ..runs import load_encoders

    return set(load_encoders(run_dir).modalities)


def format_table(table: dict, methods, spread: dict | None = None, failed: dict | None = None) -> str:
    """Markdown table in the shape of the XDC paper's Table 1: rows are tasks, columns methods; cells
    are mean accuracies (with ``spread``: mean ± std), best in bold and second in italics; a method in
    ``failed`` shows "failed" where it has no number."""
    failed = failed or {}
    cols = [m for m in methods if m in table or m in failed]
    best = {}
    for modality, _ in ROWS:
        scores = sorted((table[m][modality] for m in cols if modality in table.get(m, {})), reverse=True)
        best[modality] = scores[:2]
    lines = ["| Linear probe top-1 (%) | " + " | ".join(TITLES.get(m, m) for m in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for modality, title in ROWS:
        cells = []
        for m in cols:
            if modality not in table.get(m, {}):
                cells.append("failed" if m in failed else "N/A")
                continue
            v = table[m][modality]
            text = f"{v * 100:.1f}"
            if spread and modality in spread.get(m, {}):
                text += f" ± {spread[m][modality] * 100:.1f}"
            if best[modality] and v == best[modality][0]:
                text = f"**{text}**"
            elif len(best[modality]) > 1 and v == best[modality][1]:
                text = f"_{text}_"
            cells.append(text)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    for m in cols:
        if m in failed:
            lines.append(f"\n{TITLES.get(m, m)} failed: {failed[m]}")
    return "\n".join(lines)
