"""``avssl demo``: the paper's Table 1 in miniature, on the embedded demo world, on a CPU.

Pretrains each method on the demo world's training videos (their labels unused), evaluates the video
and the audio encoder of each with the linear protocol on the held-out labelled split, prints the
comparison as a table shaped like the XDC paper's Table 1, and writes the cluster report of the XDC
run. Everything lands in ``--out``; rerunning reuses finished runs and resumes interrupted ones.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from .config import resolve
from .data.demo_world import DemoWorldConfig, demo_dataset
from .data.manifest import load_manifest
from .encoders import LoadedEncoders, scratch_encoders
from .engine.checkpoint import atomic_write_text
from .engine.pretrain import pretrain

log = logging.getLogger("avssl.demo")

DEFAULT_METHODS = ("scratch", "sdc", "mdc", "cdc", "xdc", "avts", "crisscross")
TITLES = {"scratch": "Scratch", "sdc": "SDC", "mdc": "MDC", "cdc": "CDC", "xdc": "XDC",
          "xdc-video-video": "XDC (2 video)", "xdc-audio-audio": "XDC (2 audio)",
          "avts": "AVTS", "crisscross": "CrissCross"}
ROWS = (("video", "demo world, video encoder"), ("audio", "demo world, audio encoder"))


def run_demo(out="avssl-demo", methods=DEFAULT_METHODS, preset: str = "demo", overrides=(), seed: int = 0,
             world: DemoWorldConfig = DemoWorldConfig(), progress: bool = True) -> dict:
    """Run the comparison; returns {"table": {method: {modality: accuracy}}, "markdown": str, ...}."""
    from .evaluation import cluster_report, linear_probe

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    manifest_path = demo_dataset(config=world, progress=progress)
    manifest = load_manifest(manifest_path)
    train = manifest.filter_split("train")
    table, timings = {}, {}
    for method in methods:
        t = time.perf_counter()
        encoders, _ = ensure_run(method, train, out / "runs" / method, preset, overrides, seed, progress)
        table[method] = {}
        for modality, _ in ROWS:
            if method != "scratch" and modality not in _modalities(encoders):
                continue
            r = linear_probe(encoders, manifest, out / "eval" / f"{method}-{modality}", modality=modality,
                             seed=seed, cache_dir=out / "features", progress=progress)
            table[method][modality] = r["mean"]["accuracy"]
        timings[method] = time.perf_counter() - t
        log.info(f"{TITLES.get(method, method)}: " + ", ".join(f"{m} {a * 100:.1f}%" for m, a in table[method].items())
             + f" ({timings[method]:.0f} s)")
    report = None
    if "xdc" in methods:
        report = cluster_report(out / "runs" / "xdc", manifest, out / "clusters")
    markdown = format_table(table, methods)
    result = {"table": table, "markdown": markdown, "methods": list(methods), "preset": preset,
              "seconds": time.perf_counter() - t0, "seconds_per_method": timings,
              "cluster_report": str(out / "clusters" / "clusters.html") if report else None}
    atomic_write_text(out / "results.json", json.dumps(result, indent=2))
    atomic_write_text(out / "results.md", markdown + "\n")
    return result


def ensure_run(method, data, run_dir: Path, preset, overrides, seed, progress) -> tuple[Path | LoadedEncoders, str]:
    """A finished run in ``run_dir``: reused when finished, resumed when interrupted, else started.
    Returns the run directory and which of ``reused``, ``resumed`` or ``trained`` happened. For
    ``scratch`` (the lower bound) it returns random encoders of the same preset and overrides, and
    ``random``, without touching ``run_dir``."""
    if method == "scratch":
        return scratch_encoders(resolve(preset, None, list(overrides)), seed=seed), "random"
    run_dir = Path(run_dir)
    if (run_dir / "encoders.pt").exists():
        log.info("reusing the finished %s run in %s", method, run_dir)
        return run_dir, "reused"
    cfg = resolve(preset, method, [*overrides, f"seed={seed}"])
    resume = (run_dir / "checkpoints" / "last.pt").exists()
    log.info(f"pretraining {TITLES.get(method, method)} ({'resuming' if resume else preset})")
    return pretrain(cfg, data, run_dir, resume=resume, progress=progress).run_dir, "resumed" if resume else "trained"


def _modalities(run_dir: Path) -> set:
    from .encoders import load_encoders

    return set(load_encoders(run_dir).modalities)


def format_table(table: dict, methods) -> str:
    """Markdown table in the shape of the XDC paper's Table 1: rows are tasks, columns methods."""
    cols = [m for m in methods if m in table]
    best = {}
    for modality, _ in ROWS:
        scores = sorted((table[m][modality] for m in cols if modality in table[m]), reverse=True)
        best[modality] = scores[:2]
    lines = ["| Linear probe top-1 (%) | " + " | ".join(TITLES.get(m, m) for m in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for modality, title in ROWS:
        cells = []
        for m in cols:
            if modality not in table[m]:
                cells.append("N/A")
                continue
            v = table[m][modality]
            text = f"{v * 100:.1f}"
            if best[modality] and v == best[modality][0]:
                text = f"**{text}**"
            elif len(best[modality]) > 1 and v == best[modality][1]:
                text = f"_{text}_"
            cells.append(text)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def register(sub) -> None:
    from .config import PRESETS

    p = sub.add_parser("demo", help="pretrain and compare methods on the embedded demo world (CPU, about 20 min)",
                       description=__doc__)
    p.add_argument("--out", default="avssl-demo", help="output folder (default: ./avssl-demo)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated methods (default: {','.join(DEFAULT_METHODS)})")
    p.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .errors import ConfigError
    from .methods import METHODS

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in methods if m != "scratch" and m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; choose from scratch, {', '.join(sorted(METHODS))}")
    result = run_demo(args.out, methods, args.preset, args.overrides, args.seed, progress=not args.no_progress)
    print()
    print(result["markdown"])
    print()
    print(f"total {result['seconds'] / 60:.1f} min; results in {Path(args.out) / 'results.md'}")
    if result["cluster_report"]:
        print(f"XDC cluster report: {result['cluster_report']}")
    return 0
