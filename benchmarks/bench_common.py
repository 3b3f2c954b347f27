"""What both benchmarks record about the machine and the code they measured."""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path


def machine_info() -> dict:
    """CPU, memory and the versions of the libraries that set the speed (each benchmark adds its own).
    A library that is not installed is recorded as None (the GPU check runs without PyAV or faiss)."""
    import numpy as np
    import torch

    from avssl.machine import cpu_model

    return {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "av": module_version("av"),
        "faiss": module_version("faiss"),
        "numpy": np.__version__,
    }


def module_version(name: str) -> str | None:
    """``name.__version__``, or None when it cannot be imported."""
    import importlib

    try:
        return importlib.import_module(name).__version__
    except ImportError:
        return None


def code_state(paths) -> dict:
    """Which code was measured: git HEAD, and a hash of each relevant source file as it was on disk
    (the working tree may hold uncommitted changes). ``src/avssl/...`` files are hashed where the
    imported ``avssl`` is (``avssl_from``: another checkout when PYTHONPATH points there), the rest
    beside this script."""
    import avssl

    package = Path(avssl.__file__).resolve().parent
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.split("\n")
        dirty = sorted(line[3:] for line in dirty if line.strip())
    except (OSError, subprocess.SubprocessError):
        head, dirty = None, None
    sha = {}
    for p in paths:
        path = package / p[len("src/avssl/"):] if p.startswith("src/avssl/") else root / p
        try:
            sha[p] = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
        except OSError:
            sha[p] = None
    return {"git_head": head, "uncommitted": dirty, "sha1": sha, "avssl_from": str(package)}


def benchmark_parser(doc: str):
    """The options every benchmark script shares: --quick (tiny sizes, for the tests), --out, --md."""
    import argparse

    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds): for the tests")
    p.add_argument("--out", help="write the result JSON here (it is always printed)")
    p.add_argument("--md", help="write the markdown table here")
    return p


def write_outputs(args, results: dict, table: str) -> None:
    """The result JSON to --out, the markdown table to --md and to stdout."""
    import json
    from pathlib import Path

    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    if args.md:
        Path(args.md).write_text(table)
    print(table)
