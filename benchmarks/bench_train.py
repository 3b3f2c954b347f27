#!/usr/bin/env python
"""The training loop: precision and memory format, engine overhead, loader overlap, one iteration.

Everything runs on the demo world at the ``demo`` preset (quarter-width R(2+1)D-18 + audio
ResNet-18, 8x32x32 clips, 40x100 log-mel, batch 32) with XDC, in one process, variants interleaved:

  precision   one training step (forward, backward, SGD step) of XDC on a fixed batch, for fp32 and
              bf16 autocast, each with the default and the ``channels_last_3d`` memory format
              (``--paper`` adds the paper's full-width encoders on a 2 x 8x112x112 batch)
  engine      the engine's epoch (``Pretrainer._epoch``: loader over pre-decoded items, learning-rate
              schedule, NaN checks, logging, progress bar) against a bare PyTorch loop doing the same
              forward/backward/step on the same pre-collated batches.  Goal: bare / engine time >= 0.95
  loader      the engine's epoch with real loading (the preset's decoded cache, crops, flips, log-mel,
              its DataLoader workers) against the same epoch on pre-decoded items.  Goal: <= 1.10
  iteration   one whole XDC iteration (extract, k-means, train) with the settings before issue #6
              (fp32, contiguous, 2 loader workers) and today's defaults (``precision``,
              ``memory_format`` and ``loader.workers`` auto), stage by stage

    python benchmarks/bench_train.py --out train.json --md train.md     # about 10 min on 2 cores
    python benchmarks/bench_train.py --quick --out /tmp/q.json          # seconds; used by the tests
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_common import code_state, machine_info  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

GOALS = {"engine_over_bare_min": 0.95, "real_over_predecoded_max": 1.10}
CODE = ["src/avssl/engine/pretrain.py", "src/avssl/engine/iteration.py", "src/avssl/engine/precision.py",
        "src/avssl/data/dataset.py", "src/avssl/methods/deep_clustering.py", "src/avssl/config/tree.py",
        "src/avssl/config/presets.py"]


def world(quick: bool, workdir: Path, world_cfg=None):
    """The demo world's training manifest (quick: a tiny world generated in ``workdir``; ``world_cfg``:
    that world, generated in ``workdir`` by one process per core)."""
    import os

    from avssl.data.demo_world import DemoWorldConfig, config_hash, demo_dataset, generate_demo_world
    from avssl.data.manifest import load_manifest

    if world_cfg is not None:
        path = generate_demo_world(workdir / f"world-{config_hash(world_cfg)}", world_cfg, workers=os.cpu_count(),
                                   progress=False)
        return load_manifest(path).filter_split("train")
    cfg = DemoWorldConfig(num_classes=4, clips_per_class=6, duration=2.5) if quick else DemoWorldConfig()
    manifest = load_manifest(demo_dataset(cache_dir=workdir if quick else None, config=cfg, progress=False))
    return manifest.filter_split("train")


def config(quick: bool, preset_name: str = "demo", extra=(), **overrides):
    """``preset_name`` with XDC; ``extra``: further ``key=value`` overrides, after quick's."""
    from avssl.config import resolve

    # one pass over the training videos per epoch, as the bare loop it is compared with makes
    items = ["optim.epoch_size=null"] + [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    if quick:
        items += ["optim.batch_size=4", "clustering.k=4", "optim.max_epochs=2"]
    return resolve(preset_name, "xdc", items + list(extra))


def median_ms(xs) -> float:
    return 1000 * statistics.median(xs)


def _past(deadline, done: int, at_least: int) -> bool:
    """Whether to stop repeating: ``deadline`` (time.monotonic()) has passed and ``at_least`` repeats are done."""
    return deadline is not None and done >= at_least and time.monotonic() > deadline


# --------------------------------------------------------------------------------------- precision

def _to_channels_last(method):
    m = copy.deepcopy(method)
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv3d):
            mod.to(memory_format=torch.channels_last_3d)
    return m


def part_precision(quick: bool, repeats: int, paper: bool, device=None, shapes=None, deadline=None) -> list[dict]:
    """``shapes``: (preset, batch, frames, crop) to time (default: demo, and the paper's at 112 with ``paper``);
    ``deadline`` (time.monotonic()): no new repeat after it, beyond the first two."""
    from avssl.config import preset
    from avssl.engine.precision import autocast
    from avssl.methods import build_method

    device = torch.device("cpu") if device is None else device
    if shapes is None:
        shapes = [("demo", 4 if quick else 32, 8, 32)] + ([("xdc-paper", 2, 8, 112)] if paper else [])
    rows = []
    for name, batch_size, frames, crop in shapes:
        cfg = preset(name)
        cfg.video.num_frames, cfg.video.crop = frames, crop
        torch.manual_seed(0)
        base = build_method(cfg).to(device)
        base.pseudo_labels = {c: torch.randint(0, cfg.clustering.k_for(c), (batch_size,)) for c in base.clusterings}
        base.reset_heads(0)
        video = torch.randn(batch_size, 3, frames, crop, crop, device=device)
        batch = {"video": video, "audio": torch.randn(batch_size, 1, 40, 100, device=device),
                 "index": torch.arange(batch_size)}  # indices stay on the CPU, as batch_to_device leaves them
        variants = {}
        for prec in ("fp32", "bf16"):
            for layout in ("contiguous", "channels_last_3d"):
                m = copy.deepcopy(base) if layout == "contiguous" else _to_channels_last(base)
                b = dict(batch)
                if layout != "contiguous":
                    b["video"] = video.contiguous(memory_format=torch.channels_last_3d)
                opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
                variants[(prec, layout)] = (m, b, opt)

        def step(prec, m, b, opt):
            with autocast(device, prec):
                loss, _ = m(b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device.type == "cuda":  # CUDA runs asynchronously: the step ends when its kernels have
                torch.cuda.synchronize(device)

        times = {v: [] for v in variants}
        for v, (m, b, opt) in variants.items():  # warm-up: oneDNN builds its kernels on first use
            step(v[0], m, b, opt)
        order = list(variants)
        for r in range(repeats):
            if _past(deadline, r, 2):
                break
            for v in order[r % len(order):] + order[:r % len(order)]:
                m, b, opt = variants[v]
                t = time.perf_counter()
                step(v[0], m, b, opt)
                times[v].append(time.perf_counter() - t)
        ref = statistics.median(times[("fp32", "contiguous")])
        for (prec, layout), ts in times.items():
            rows.append({"model": name, "batch": f"{batch_size}x3x{frames}x{crop}x{crop} + 40x100", "precision": prec,
                         "layout": layout, "ms_per_step": median_ms(ts), "clips_per_s": batch_size / statistics.median(ts),
                         "speedup_vs_fp32": ref / statistics.median(ts), "repeats": len(ts)})
    return rows


# ------------------------------------------------------------------------------ engine and loader

class PreDecoded(torch.utils.data.Dataset):
    """A dataset's items decoded once and kept in memory (the engine's epochs then do no decoding)."""

    def __init__(self, dataset):
        dataset.set_epoch(0)
        self.items = [dataset[i] for i in range(len(dataset))]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def set_epoch(self, epoch):
        pass

    def set_plan(self, plan):
        pass


def bare_epoch(method, optimizer, batches, precision, memory_format, device=None) -> int:
    """The loop a user would write: forward, backward, step over ready batches."""
    from avssl.engine.precision import autocast, batch_to_device

    device = torch.device("cpu") if device is None else device
    method.train()
    for batch in batches:
        batch = batch_to_device(batch, device, memory_format)
        with autocast(device, precision):
            loss, _ = method(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":  # the engine's epoch ends synchronised (it reads each step's loss)
        torch.cuda.synchronize(device)
    return len(batches)


def part_engine_loader(quick: bool, repeats: int, workdir: Path, cfg=None, world_cfg=None, deadline=None) -> dict:
    """``cfg``: the run's config (default: ``config(quick)``; its ``device`` is used); ``world_cfg``: see ``world``;
    ``deadline`` (time.monotonic()): no new repeat after it, beyond the first."""
    from dataclasses import replace

    from avssl.data.dataset import collate_clips
    from avssl.data.pipeline import num_workers
    from avssl.engine.iteration import IterationContext
    from avssl.engine.pretrain import Pretrainer
    from avssl.engine.schedule import build_optimizer

    cfg = config(quick) if cfg is None else cfg
    trainer = Pretrainer(cfg, world(quick, workdir, world_cfg), workdir / "engine-run", progress=False)
    trainer.method.begin_iteration(IterationContext(trainer, 0))  # real extraction + k-means: real pseudo-labels
    trainer.model = trainer._wrap()
    optimizer = build_optimizer(cfg.optim, trainer.method.trainable_groups())
    o = cfg.optim
    real_set = trainer.train_set
    pre_set = PreDecoded(real_set)
    train = [pre_set[i] for i in trainer.train_indices]
    bs = o.batch_size
    batches = [collate_clips(train[i:i + bs]) for i in range(0, len(train) - bs + 1, bs)]  # drop_last, as the engine
    if trainer.device.type == "cuda":  # as the engine's loader hands them over (pin_memory on CUDA)
        batches = [{k: v.pin_memory() if torch.is_tensor(v) else v for k, v in b.items()} for b in batches]
    workers = num_workers(cfg.loader, trainer.device)

    def engine(dataset, loader_workers):
        trainer.train_set = dataset
        trainer.cfg.loader.workers = loader_workers
        t = time.perf_counter()
        out = trainer._epoch(0, 0, optimizer, replace(o, max_epochs=1))
        return (time.perf_counter() - t) / max(out["steps"], 1), out["steps"]

    variants = {
        "engine_predecoded": lambda: engine(pre_set, 0),
        "engine_real": lambda: engine(real_set, workers),
        "engine_real_workers0": lambda: engine(real_set, 0),
        "bare": lambda: (lambda t0, n: ((time.perf_counter() - t0) / n, n))(
            time.perf_counter(), bare_epoch(trainer.method, optimizer, batches, trainer.precision, trainer.memory_format,
                                            trainer.device)),
    }
    for fn in variants.values():  # warm-up
        fn()
    times = {k: [] for k in variants}
    steps = {}
    order = list(variants)
    for r in range(repeats):
        if _past(deadline, r, 1):
            break
        for k in order[r % len(order):] + order[:r % len(order)]:
            s, n = variants[k]()
            times[k].append(s)
            steps[k] = n
    per_repeat_engine = [b / e for b, e in zip(times["bare"], times["engine_predecoded"])]
    per_repeat_loader = [r / p for r, p in zip(times["engine_real"], times["engine_predecoded"])]
    result = {
        "device": str(trainer.device), "preset": cfg.preset, "precision": trainer.precision,
        "memory_format": trainer.memory_format, "batch_size": bs, "loader_workers": workers,
        "steps_per_epoch": steps, "train_videos": len(train),
        "ms_per_step": {k: median_ms(v) for k, v in times.items()},
        "engine_over_bare": statistics.median(per_repeat_engine),
        "engine_over_bare_repeats": per_repeat_engine,
        "real_over_predecoded": statistics.median(per_repeat_loader),
        "real_over_predecoded_repeats": per_repeat_loader,
    }
    result["goal_engine_met"] = result["engine_over_bare"] >= GOALS["engine_over_bare_min"]
    result["goal_loader_met"] = result["real_over_predecoded"] <= GOALS["real_over_predecoded_max"]
    return result


# -------------------------------------------------------------------------------------- iteration

def iteration_summary(run_dir: Path, iteration: int = 0) -> dict:
    """The summary record of one iteration in a run's metrics.jsonl (its ``times`` hold the stage split)."""
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if r.get("summary") and r.get("iteration") == iteration][0]


def part_iteration(quick: bool, workdir: Path) -> list[dict]:
    """One XDC iteration, the same schedule with the old default (fp32) and the new (auto)."""
    from avssl.engine.pretrain import pretrain

    data = world(quick, workdir)
    rows = []
    for label, precision, layout, workers in (("before #6", "fp32", "contiguous", 2), ("now (defaults)", "auto", "auto", -1)):
        cfg = config(quick, iterations=1, precision=precision, memory_format=layout,
                     **{"optim.early_stop": 0, "loader.workers": workers})
        run = pretrain(cfg, data, workdir / f"iteration-{precision}-{layout}", progress=False)
        summary = iteration_summary(run.run_dir)
        t = summary["times"]
        rows.append({"variant": label, "precision": summary["precision"], "memory_format": summary["memory_format"],
                     "loader_workers": workers,
                     "epochs": cfg.optim.max_epochs,
                     **{k: t.get(k, 0.0) for k in ("extract", "cluster", "train", "total")}})
    before, now = rows
    for k in ("extract", "cluster", "train", "total"):
        now[f"{k}_speedup"] = before[k] / now[k] if now[k] else None
    return rows


# --------------------------------------------------------------------------------------- reporting

def markdown(result: dict) -> str:
    lines = []
    if result.get("precision"):
        lines += ["Part precision: one XDC training step (median ms; speed-up against fp32 contiguous)", "",
                  "| model | batch | precision | layout | ms/step | speed-up |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['batch']} | {r['precision']} | {r['layout']} | {r['ms_per_step']:.0f} | "
                  f"{r['speedup_vs_fp32']:.2f}x |" for r in result["precision"]]
        lines.append("")
    e = result.get("engine")
    if e:
        ms = e["ms_per_step"]
        lines += [f"Part engine and loader (precision {e['precision']}, {e['memory_format']}, batch {e['batch_size']}, "
                  f"{e['train_videos']} training videos, loader workers {e['loader_workers']}; median ms per step)", "",
                  "| bare loop | engine, pre-decoded | engine, real loading | same, 0 workers "
                  "| **bare / engine** (goal >= 0.95) | **real / pre-decoded** (goal <= 1.10) |",
                  "|---|---|---|---|---|---|",
                  f"| {ms['bare']:.0f} | {ms['engine_predecoded']:.0f} | {ms['engine_real']:.0f} | "
                  f"{ms['engine_real_workers0']:.0f} | "
                  f"{e['engine_over_bare']:.3f} {'met' if e['goal_engine_met'] else 'MISSED'} | "
                  f"{e['real_over_predecoded']:.3f} {'met' if e['goal_loader_met'] else 'MISSED'} |", ""]
    if result.get("iteration"):
        lines += ["Part iteration: one XDC iteration (seconds)", "", "| variant | precision | layout | loader.workers | epochs | extract | cluster | train | total |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['variant']} | {r['precision']} | {r['memory_format']} | {r['loader_workers']} | {r['epochs']} | {r['extract']:.1f} | {r['cluster']:.2f} | "
                  f"{r['train']:.1f} | {r['total']:.1f} |" for r in result["iteration"]]
        now = result["iteration"][-1]
        lines += ["", f"Speed-up: train {now['train_speedup']:.2f}x, extract {now['extract_speedup']:.2f}x, "
                      f"total {now['total_speedup']:.2f}x"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds): for the tests")
    p.add_argument("--parts", default="precision,engine,iteration", help="comma-separated: precision,engine,iteration")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--paper", action="store_true", help="precision part: add the paper-size encoders")
    p.add_argument("--workdir", help="runs and (quick) the tiny world go here (default: a temp dir)")
    p.add_argument("--out", help="write the result JSON here (it is always printed)")
    p.add_argument("--md", help="write the markdown tables here")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    repeats = 2 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(prefix="avssl-bench-train-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = {"benchmark": "train", "machine": machine_info(), "code": code_state(CODE), "goals": GOALS,
                  "torch_threads": torch.get_num_threads(), "argv": sys.argv[1:]}
        if "precision" in parts:
            result["precision"] = part_precision(args.quick, repeats, args.paper)
        if "engine" in parts:
            result["engine"] = part_engine_loader(args.quick, repeats, workdir)
        if "iteration" in parts:
            result["iteration"] = part_iteration(args.quick, workdir)
    md = markdown(result)
    print(md)
    if args.md:
        Path(args.md).write_text(md)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    print("RESULT_JSON " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
