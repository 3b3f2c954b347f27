#!/usr/bin/env python
"""The GPU check (issue #17): what avssl does on a CUDA machine, stage by stage, each under its own time budget.

Each stage runs in its own process, which is killed (with its loader workers) when its budget is spent;
what it had measured by then is kept and the stage is marked "timed out". Stages:

  train_step  CUDA  one XDC training step (forward, backward, SGD step) of the xdc-paper preset's encoders at
                    its clip shape (batch 32 of 8x224x224 + 40x100 log-mel) in fp32 and bf16 autocast, each
                    contiguous and channels_last_3d: ms per step and clips/s (bench_train's precision part)
  engine      any   the engine's epoch over pre-decoded items against a bare loop doing the same steps on the
                    same batches, xdc-paper on a generated world (bench_train's engine part). Goal >= 0.97
  iteration   CUDA  one deep-clustering iteration of xdc-paper on 3,000 generated clips, end to end through
                    ``pretrain``: the world's generation, then extract, cluster and train, in seconds each
  kmeans      any   ``kmeans()`` at N = 1,000,000 x 512, k = 256: faiss's GPU k-means when the installed
                    faiss has GPU support and sees a GPU, else its CPU k-means (the JSON says which)
  loader      any   clips/s of the xdc-paper training sampler through a DataLoader with 1, 2, 4, 8, 16 workers
                    on 640x360 H.264 + AAC videos with a 1 s GOP (bench_loader_bound's worker scaling),
                    clips finished on the GPU as loader.finish_on=auto does there

"CUDA" stages are skipped without a CUDA device ("skipped: no CUDA"), stages that need PyAV or faiss are
skipped when they cannot be imported; the check still writes its JSON and markdown and exits 0. It exits 1
when a stage failed or timed out. ``benchmarks/gpu_check.sh`` installs PyAV and faiss from carried wheels
first; see BENCHMARKS.md, section "GPU check".

    python benchmarks/gpu_check.py --out gpu_check.json --md gpu_check.md        # under 8 min on the GPU box
    python benchmarks/gpu_check.py --small --out /tmp/g.json                     # seconds on a CPU; the tests
    python benchmarks/gpu_check.py --small --device cpu --stages train_step,iteration   # CUDA stages on a CPU
"""
from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

from bench_common import benchmark_parser, code_state, machine_info, module_version, write_outputs  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

GOALS = {"engine_over_bare_min": 0.97}
# name: (needs CUDA, modules it imports, budget in seconds, budget with --small). The full budgets sum to
# 410 s: with Python's start-up and the wheels' installation (about 30 s) the whole check fits in 8 min.
# The small ones are generous: on a busy 2-core machine a stage takes 2-10 s.
STAGES = {
    "train_step": (True, ("av",), 55, 120),  # avssl.methods imports the data pipeline, hence PyAV
    "engine": (False, ("av", "faiss"), 105, 120),
    "iteration": (True, ("av", "faiss"), 130, 120),
    "kmeans": (False, ("faiss",), 50, 120),
    "loader": (False, ("av",), 70, 120),
}
LIBRARY = {"av": "PyAV", "faiss": "faiss"}
CODE = ["benchmarks/gpu_check.py", "benchmarks/bench_train.py", "src/avssl/engine/pretrain.py",
        "src/avssl/engine/precision.py", "src/avssl/clustering/kmeans.py", "src/avssl/data/dataset.py"]


def sizes(small: bool) -> SimpleNamespace:
    """Everything the stages' sizes depend on: the GPU box's (the issue's) or tiny ones for the tests."""
    if small:
        return SimpleNamespace(preset="cpu-tiny", step_shape=("cpu-tiny", 2, 4, 16), step_repeats=2,
                               engine_world=dict(num_classes=4, clips_per_class=6, duration=2.5), engine_repeats=2,
                               iteration_world=dict(num_classes=4, clips_per_class=6, duration=2.5),
                               kmeans=(5_000, 64, 16), kmeans_runs=1,
                               videos=dict(width=96, height=64, count=2, seconds=2.5, gop=None), clips_per_video=2,
                               workers="0,1", loader_batch=2, loader_repeats=2)
    workers = ",".join(str(w) for w in (1, 2, 4, 8, 16) if w <= (os.cpu_count() or 1))
    return SimpleNamespace(preset="xdc-paper", step_shape=("xdc-paper", 32, 8, 224), step_repeats=10,
                           # 512 clips, 256 for training: 8 steps of 32 per epoch
                           engine_world=dict(num_classes=8, clips_per_class=64, duration=3.0), engine_repeats=3,
                           iteration_world=dict(num_classes=8, clips_per_class=375, duration=3.0),  # 3,000 clips
                           kmeans=(1_000_000, 512, 256), kmeans_runs=3,
                           # 1 s GOP: about 30 ms per clip and core (a 2-core VM); 192 clips in batches of 4,
                           # so that 16 workers get 3 batches each per epoch
                           videos=dict(width=640, height=360, count=4, seconds=8.0, gop=30), clips_per_video=48,
                           workers=workers, loader_batch=4, loader_repeats=2)


# ------------------------------------------------------------------------------------------ stages
# Each stage takes (args, device, record); ``record(dict)`` merges what was measured so far into the
# stage's result file, so a stage killed at its budget still reports it.


def stage_train_step(args, device, record):
    import torch

    from bench_train import part_precision

    s = sizes(args.quick)
    rows = part_precision(args.quick, s.step_repeats, False, device=device, shapes=[s.step_shape],
                          deadline=args.deadline)
    record({"rows": rows, "repeats": s.step_repeats, "cudnn_benchmark": torch.backends.cudnn.benchmark})


def _world_cfg(**kw):
    from avssl.data.demo_world import DemoWorldConfig

    return DemoWorldConfig(**kw)


def stage_engine(args, device, record):
    from bench_train import config, part_engine_loader

    s = sizes(args.quick)
    # k below the ~240 training videos of the full world (xdc-paper's 256 would exceed them)
    cfg = config(args.quick, s.preset, extra=[] if args.quick else ["clustering.k=32"], device=device.type)
    e = part_engine_loader(args.quick, s.engine_repeats, Path(args.workdir), cfg=cfg,
                           world_cfg=_world_cfg(**s.engine_world), deadline=args.deadline)
    e["goal_engine_over_bare_min"] = GOALS["engine_over_bare_min"]
    e["goal_engine_met"] = e["engine_over_bare"] >= GOALS["engine_over_bare_min"]
    record(e)


def stage_iteration(args, device, record):
    from bench_train import config, iteration_summary

    from avssl.data.demo_world import generate_demo_world
    from avssl.engine.pretrain import pretrain

    s = sizes(args.quick)
    t = time.perf_counter()
    world = _world_cfg(**s.iteration_world)
    manifest = generate_demo_world(Path(args.workdir) / "iteration-world", world, workers=os.cpu_count(),
                                   progress=False)
    clips = world.num_classes * world.clips_per_class
    record({"clips": clips, "world_seconds": time.perf_counter() - t, "world_workers": os.cpu_count()})
    # one epoch without warm-up: the iteration's stages, not a useful model, are measured
    cfg = config(args.quick, s.preset, extra=["optim.max_epochs=1", "optim.warmup_epochs=0"], iterations=1,
                 device=device.type, **{"optim.early_stop": 0})
    run = pretrain(cfg, manifest, Path(args.workdir) / "iteration-run", progress=False)
    summary = iteration_summary(run.run_dir)
    record({"preset": cfg.preset, "k": cfg.clustering.k, "batch_size": cfg.optim.batch_size,
            "precision": summary["precision"], "memory_format": summary["memory_format"],
            "seconds": {k: summary["times"].get(k, 0.0) for k in ("extract", "cluster", "train", "total")},
            "train_steps": summary["last_epoch"].get("steps")})


def stage_kmeans(args, device, record):
    import faiss
    import numpy as np

    from bench_kmeans import make_features

    from avssl.clustering.kmeans import kmeans

    s = sizes(args.quick)
    n, d, k = s.kmeans
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0  # faiss-cpu has none
    on_gpu = device.type == "cuda" and gpus > 0
    t = time.perf_counter()
    x = make_features(n, d, seed=0)
    record({"n": n, "d": d, "k": k, "faiss": faiss.__version__, "faiss_gpus": gpus, "on": "GPU" if on_gpu else "CPU",
            "faiss_omp_threads": faiss.omp_get_max_threads(), "features_seconds": time.perf_counter() - t, "runs": []})
    runs = []
    for seed in range(s.kmeans_runs):
        if runs and time.monotonic() + runs[-1]["seconds"] > args.deadline:  # another would not end in time
            break
        t = time.perf_counter()
        res = kmeans(x, k, seed=seed, gpu=on_gpu)
        sizes_ = res.sizes()
        runs.append({"seed": seed, "seconds": time.perf_counter() - t, "objective": res.objective,
                     "empty": res.empty, "reseeded": res.reseeded, "largest_cluster": int(np.max(sizes_))})
        record({"runs": runs, "seconds_median": statistics.median(r["seconds"] for r in runs)})


def stage_loader(args, device, record):
    import numpy as np
    import torch

    from bench_loader import ensure_videos
    from bench_loader_bound import CONTENT_FPS, sampler_item, worker_scaling

    from avssl.config import LoaderConfig, preset
    from avssl.data.pipeline import clip_spec, make_dataset, set_finishing

    torch.set_num_threads(1)  # as in a DataLoader worker
    s = sizes(args.quick)
    v = s.videos
    t = time.perf_counter()
    paths, _ = ensure_videos(Path(args.workdir) / "videos", v["width"], v["height"], v["gop"], v["count"],
                             v["seconds"], CONTENT_FPS)
    record({"videos": f"{v['count']} x {v['seconds']:g} s, {v['width']}x{v['height']} H.264 + AAC, "
                      f"GOP {v['gop'] or 250}",
            "videos_seconds": time.perf_counter() - t})
    cfg = preset(s.preset)
    spec = clip_spec(cfg)
    ds = make_dataset(cfg, [], spec, "train", seed=0)
    rng = np.random.default_rng(0)
    pairs = [(str(p), float(rng.uniform(0, v["seconds"] - spec.duration - 0.1)))
             for p in paths for _ in range(s.clips_per_video)]
    # Clips per epoch from one clip's cost in this process: every worker count's epochs together cost two
    # epochs of one worker where the workers scale perfectly, three here as a margin (on 2 busy cores, 1 and 2
    # workers took 1.8), done 1 + repeats times, and must end before the stage's deadline.
    t = time.perf_counter()
    for i, (path, start) in enumerate(pairs[:4]):
        sampler_item(ds, path, start, i)
    per_clip = (time.perf_counter() - t) / len(pairs[:4])
    fits = int((args.deadline - time.monotonic()) / (3 * (1 + s.loader_repeats) * per_clip))
    pairs = pairs[::max(1, len(pairs) // max(fits, 4 * s.loader_batch))]  # every video keeps its share
    record({"preset": s.preset, "ms_per_clip_main_process": 1000 * per_clip, "clips_per_epoch": len(pairs)})
    opts = SimpleNamespace(scaling=s.workers, batch_size=s.loader_batch, repeats=s.loader_repeats)
    # As avssl loads for a GPU (loader.finish_on=auto): workers hand over uint8 crops and waveforms, and
    # the normalisation and log-mel run batched on the GPU; on a CPU the items are finished in the workers.
    finish = set_finishing(ds, LoaderConfig(), device)
    record({"finish_on": "device" if finish is not None else "loader"})
    record(worker_scaling(opts, ds, pairs, finish, device))


# ---------------------------------------------------------------------------------------- running


def cuda_info() -> dict | None:
    import torch

    if not torch.cuda.is_available():
        return None
    p = torch.cuda.get_device_properties(0)
    return {"name": p.name, "capability": f"{p.major}.{p.minor}", "memory_gib": round(p.total_memory / 2**30, 1),
            "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "bf16": torch.cuda.is_bf16_supported()}


def run_stage_here(args) -> int:
    """The child process: run one stage, its result (or its error) in ``--stage-out``."""
    import logging

    import torch

    # the engine's own progress lines (epochs, iterations), so that a slow stage shows where it is
    logging.basicConfig(level=logging.WARNING, format=f"[gpu_check {args.stage}] %(name)s: %(message)s")
    logging.getLogger("avssl").setLevel(logging.INFO)
    out = Path(args.stage_out)
    state: dict = {}

    t0 = time.monotonic()

    def record(part: dict) -> None:
        state.update(part)
        print(f"[gpu_check {args.stage} {time.monotonic() - t0:.0f} s] " + ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else k for k, v in part.items()), flush=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, default=str))
        tmp.replace(out)  # whole files only: the parent may read it after a kill

    device = torch.device(args.device)
    # Repeats stop at 75% of the budget, so that the stage ends with what it measured instead of being killed.
    args.deadline = time.monotonic() + 0.75 * args.stage_budget
    try:
        globals()[f"stage_{args.stage}"](args, device, record)
    except Exception as e:  # the parent reports it and goes on with the next stage
        traceback.print_exc()
        record({"error": f"{type(e).__name__}: {e}"})
        return 1
    if device.type == "cuda":
        record({"cuda_peak_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)})
    return 0


def launch(args, name: str, device: str, budget: float, workdir: Path) -> dict:
    """Run stage ``name`` in a child process (its own process group, so that its loader workers and
    pools die with it) and kill the group at ``budget`` seconds."""
    out = workdir / f"{name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", name, "--stage-out", str(out),
           "--device", device, "--workdir", str(workdir / name), "--stage-budget", str(budget)] \
        + (["--quick"] if args.quick else [])
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        rc = proc.wait(timeout=budget)
        status = "ok" if rc == 0 else f"failed (exit {rc})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        status = f"timed out after {budget:.0f} s (budget)"
    result = json.loads(out.read_text()) if out.exists() else {}
    if "error" in result:
        status = f"failed: {result.pop('error')}"
    return {"status": status, "device": device, "budget_s": round(budget), "seconds": round(time.perf_counter() - t, 1),
            "result": result}


def plan(args, has_cuda: bool) -> dict:
    """Per stage: the device it runs on, or why it is skipped."""
    out = {}
    for name in args.stages.split(","):
        cuda_only, needs, _, _ = STAGES[name]
        missing = [LIBRARY[m] for m in needs if module_version(m) is None]
        if missing:
            out[name] = "skipped: " + " and ".join(missing) + " missing (no wheel for this Python was installed; " \
                                                               "see BENCHMARKS.md, GPU check)"
        elif args.device == "auto" and cuda_only and not has_cuda:
            out[name] = "skipped: no CUDA"
        else:
            out[name] = args.device if args.device != "auto" else ("cuda" if has_cuda else "cpu")
    return out


def main(argv=None) -> int:
    p = benchmark_parser(__doc__)
    p.add_argument("--small", dest="quick", action="store_true", help="the same as --quick")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated, of: " + ", ".join(STAGES))
    p.add_argument("--device", default="auto", help="auto (CUDA stages skipped without CUDA), cuda or cpu")
    p.add_argument("--total-budget", type=float, default=None,
                   help="seconds for all stages together (default: the sum of their budgets)")
    p.add_argument("--stage-budget", type=float, default=None, help="seconds for each stage (default: its own)")
    p.add_argument("--workdir", help="generated videos and runs go here (default: a temporary folder, removed)")
    p.add_argument("--stage", help=argparse_hidden())
    p.add_argument("--stage-out", help=argparse_hidden())
    args = p.parse_args(argv)
    if args.stage:
        return run_stage_here(args)
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown:
        p.error(f"unknown stages {sorted(unknown)}; known: {', '.join(STAGES)}")

    import torch

    cuda = cuda_info()
    result = {"benchmark": "gpu_check", "small": args.quick, "argv": sys.argv[1:], "machine": machine_info(),
              "cuda": cuda, "install": os.environ.get("GPU_CHECK_INSTALL", "not run through gpu_check.sh"),
              "code": code_state(CODE), "goals": GOALS, "torch_threads": torch.get_num_threads(), "stages": {}}
    chosen = plan(args, cuda is not None)
    budgets = {n: args.stage_budget or STAGES[n][3 if args.quick else 2] for n in chosen}
    deadline = time.monotonic() + (args.total_budget or sum(budgets.values()))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="avssl-gpu-check-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name, how in chosen.items():
            left = deadline - time.monotonic()
            if how.startswith("skipped"):
                entry = {"status": how}
            elif left < 1:
                entry = {"status": "skipped: the check's total budget was spent"}
            else:
                print(f"[gpu_check] {name} on {how}, budget {min(budgets[name], left):.0f} s", flush=True)
                entry = launch(args, name, how, min(budgets[name], left), workdir)
            result["stages"][name] = entry
            print(f"[gpu_check] {name}: {entry['status']}" + (f" ({entry['seconds']} s)" if "seconds" in entry else ""),
                  flush=True)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    table = markdown(result)
    result["markdown"] = table
    write_outputs(args, result, table)
    print("RESULT_JSON " + json.dumps({"benchmark": "gpu_check", "status": {n: e["status"] for n, e in
                                                                           result["stages"].items()}}))
    bad = [n for n, e in result["stages"].items() if not (e["status"] == "ok" or e["status"].startswith("skipped"))]
    return 1 if bad else 0


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS  # internal: how the parent starts one stage in a child process


# --------------------------------------------------------------------------------------- reporting


def _headline(name: str, r: dict) -> str:
    """One line per stage for the summary table."""
    try:
        if name == "train_step":
            best = max(r["rows"], key=lambda row: row["clips_per_s"])
            return f"best {best['clips_per_s']:.0f} clips/s ({best['precision']}, {best['layout']})"
        if name == "engine":
            return f"bare / engine {r['engine_over_bare']:.3f} ({'met' if r['goal_engine_met'] else 'MISSED'} >= " \
                   f"{r['goal_engine_over_bare_min']})"
        if name == "iteration":
            sec = r["seconds"]
            return f"{r['clips']} clips: extract {sec['extract']:.1f} s, cluster {sec['cluster']:.1f} s, " \
                   f"train {sec['train']:.1f} s"
        if name == "kmeans":
            return f"N={r['n']:,} d={r['d']} k={r['k']} on the {r['on']}: {r['seconds_median']:.2f} s"
        if name == "loader":
            cps = r["clips_per_s"]
            w = max(cps, key=lambda key: cps[key])
            return f"{cps[w]:.0f} clips/s at {w} workers"
    except (KeyError, ValueError):
        pass
    return "partial: see the JSON" if r else ""


def _table(caption: str, header, *rows) -> list[str]:
    """A captioned markdown table, preceded by a blank line."""
    return ["", caption, "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def markdown(result: dict) -> str:
    cuda = result["cuda"]
    m = result["machine"]
    lines = [f"GPU check{' (--small)' if result['small'] else ''}: "
             + (f"{cuda['name']} (capability {cuda['capability']}, {cuda['memory_gib']} GiB, CUDA {cuda['torch_cuda']})"
                if cuda else "no CUDA device")
             + f"; {m['nproc']} CPUs ({m['cpu_model']}); torch {m['torch']}, PyAV {m['av']}, faiss {m['faiss']}; "
               f"{result['seconds']} s in all", "",
             "| stage | device | status | seconds (budget) | result |", "|---|---|---|---|---|"]
    for name, e in result["stages"].items():
        secs = f"{e['seconds']} ({e['budget_s']})" if "seconds" in e else ""
        lines.append(f"| {name} | {e.get('device', '')} | {e['status']} | {secs} | {_headline(name, e.get('result', {}))} |")
    st = result["stages"]
    r = st.get("train_step", {}).get("result", {})
    if r.get("rows"):
        lines += _table("Training step (median of the repeats; speed-up against fp32 contiguous)",
                        ["model", "batch", "precision", "layout", "ms/step", "clips/s", "speed-up"],
                        *([x["model"], x["batch"], x["precision"], x["layout"], f"{x['ms_per_step']:.1f}",
                           f"{x['clips_per_s']:.1f}", f"{x['speedup_vs_fp32']:.2f}x"] for x in r["rows"]))
    r = st.get("engine", {}).get("result", {})
    if "ms_per_step" in r:
        ms = r["ms_per_step"]
        lines += _table(f"Engine against a bare loop ({r['preset']}, {r['precision']}, {r['memory_format']}, batch "
                        f"{r['batch_size']}, {r['train_videos']} training videos, loader workers {r['loader_workers']}; "
                        "median ms per step)",
                        ["bare loop", "engine, pre-decoded", "engine, real loading", "same, 0 workers",
                         f"**bare / engine** (goal >= {r['goal_engine_over_bare_min']})", "real / pre-decoded"],
                        [f"{ms[k]:.1f}" for k in ("bare", "engine_predecoded", "engine_real", "engine_real_workers0")]
                        + [f"{r['engine_over_bare']:.3f} {'met' if r['goal_engine_met'] else 'MISSED'}",
                           f"{r['real_over_predecoded']:.3f}"])
    r = st.get("iteration", {}).get("result", {})
    if "seconds" in r:
        sec = r["seconds"]
        lines += _table(f"One deep-clustering iteration ({r['preset']}, k={r['k']}, batch {r['batch_size']}, "
                        f"{r['precision']}, {r['memory_format']}; seconds)",
                        ["clips", "generating them", "extract", "cluster", "train (1 epoch)", "total"],
                        [str(r["clips"]), f"{r['world_seconds']:.1f}", f"{sec['extract']:.1f}", f"{sec['cluster']:.2f}",
                         f"{sec['train']:.1f}", f"{sec['total']:.1f}"])
    r = st.get("kmeans", {}).get("result", {})
    if r.get("runs"):
        lines += _table(f"k-means (faiss {r['faiss']}, {r['faiss_gpus']} GPUs seen by faiss, "
                        f"{r['faiss_omp_threads']} threads)",
                        ["N", "d", "k", "on", "making the features (s)", "kmeans() (s, median)"],
                        [f"{r['n']:,}", str(r["d"]), str(r["k"]), r["on"], f"{r['features_seconds']:.1f}",
                         f"{r['seconds_median']:.2f}"])
    r = st.get("loader", {}).get("result", {})
    if "clips_per_s" in r:
        cps = r["clips_per_s"]
        speed = next((v for key, v in r.items() if key.startswith("speedup_over_")), {})
        lines += _table(f"Loader: {r['preset']} training sampler, {r['clips_per_epoch']} clips per epoch from "
                        f"{r['videos']}, batch {r['batch_size']}", ["workers", *cps],
                        ["clips/s", *(f"{v:.0f}" for v in cps.values())],
                        ["speed-up", *(f"{v:.2f}x" for v in speed.values())])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
