#!/usr/bin/env python
"""bf16 against fp32 per training pass, the bf16 check's verdict, and what ``precision=auto`` chooses.

For each preset's encoders at its clip shapes and per-step batch (capped at the check's 16 items):
the check of every convolution and linear layer against fp32 (``engine/bf16_check.py``), its cost,
one training pass (forward and backward of both encoders) in fp32 and in bf16 autocast with the
preset's memory layout (best of ``--repeats``), and the plan ``auto`` makes from them. Nothing is
read from the check cache: every figure is measured in this run.

    python benchmarks/bench_precision.py --out precision.json --md precision.md   # about 5 min on 2 cores
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from bench_common import machine_info  # noqa: E402

CASES = [  # (label, preset, overrides)
    ("cpu-tiny", "cpu-tiny", []),
    ("demo", "demo", []),
    ("cpu-small", "cpu-small", []),
    ("xdc-paper width at 8x112x112 (batch 2)", "xdc-paper", ["video.crop=112", "video.resize=128", "optim.batch_size=2"]),
]


def measure(preset: str, overrides: list[str], repeats: int) -> dict:
    import os

    from avssl.config import resolve
    from avssl.engine import bf16_check
    from avssl.engine.bf16_check import check_layers, time_steps
    from avssl.engine.precision import example_input, plan_precision, resolve_memory_format
    from avssl.methods import build_method

    os.environ["AVSSL_CACHE_DIR"] = tempfile.mkdtemp()  # measure, never reuse a cached verdict
    bf16_check.forget_cached_results()
    cpu = torch.device("cpu")
    cfg = resolve(preset, "xdc", overrides)
    torch.manual_seed(0)
    method = build_method(cfg)
    batch = min(cfg.optim.batch_size, bf16_check.MAX_BATCH)
    probes = [(s, e, example_input(cfg, method.slots[s], batch)) for s, e in method.encoders.items()]
    layout = resolve_memory_format("bf16", cfg.memory_format)
    t0 = time.perf_counter()
    uses = check_layers(probes, cpu, layout)
    check_s = time.perf_counter() - t0
    wrong = [u.name for u in uses if not u.check.ok]
    ms = time_steps(probes, cpu, layout, wrong, repeats=repeats)
    bf16_check.forget_cached_results()
    plan = plan_precision(cpu, "auto", "auto", probes)
    worst = max(max(u.check.errors.values()) for u in uses)
    return {"preset": preset, "overrides": overrides, "batch": batch, "layers": len(uses),
            "shapes": len({u.check.signature for u in uses}), "wrong": wrong, "worst_relative_error": worst,
            "check_seconds": round(check_s, 1), "ms_fp32": round(ms["fp32"], 1), "ms_bf16": round(ms["bf16"], 1),
            "speedup": round(ms["fp32"] / ms["bf16"], 2), "auto": plan.to_dict()}


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"CPU: {m['cpu_model']} ({m['nproc']} cores), torch {m['torch']}", "",
             "| encoders and clips | batch | layer shapes checked | wrong in bf16 | worst rel. error | check (s) "
             "| fp32 ms/pass | bf16 ms/pass | bf16 speed-up | `auto` chose |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["cases"]:
        lines.append(f"| {r['label']} | {r['batch']} | {r['shapes']} | {len(r['wrong'])} | {r['worst_relative_error']:.2g} "
                     f"| {r['check_seconds']} | {r['ms_fp32']} | {r['ms_bf16']} | {r['speedup']}x "
                     f"| {r['auto']['precision']} ({r['auto']['memory_format']}) |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cases", default=",".join(c[0] for c in CASES), help="comma-separated labels of CASES")
    p.add_argument("--out")
    p.add_argument("--md")
    args = p.parse_args()
    wanted = set(args.cases.split(","))
    cases = [{"label": label, **measure(preset, over, args.repeats)} for label, preset, over in CASES if label in wanted]
    result = {"machine": machine_info(), "cases": cases}
    print(json.dumps(result, indent=2))
    if args.out:
        open(args.out, "w").write(json.dumps(result, indent=2))
    if args.md:
        open(args.md, "w").write(markdown(result) + "\n")


if __name__ == "__main__":
    main()
