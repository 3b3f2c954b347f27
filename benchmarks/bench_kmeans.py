#!/usr/bin/env python
"""The clustering stage: overhead of avssl's ``kmeans()`` against a raw faiss call, and its memory
at scale on a memory-mapped feature file.

Part A (issue: "overhead against a raw faiss call on the same features, goal <= 1.15x"): on the
same in-memory float32 features (N = 20k and 100k, d = 512, k = 256, same niter and seed), timed
alternately in rotating order, median of ``--repeats``, at faiss's default thread count and at 1
thread (``--threads``; on a shared 2-core machine the 1-thread runs are far less disturbed):

  ours        ``kmeans(x, k, seed=, niter=)`` as the pipeline calls it (L2 normalisation on)
  raw         ``faiss.normalize_L2`` on a copy, ``faiss.Kmeans(d, k, niter=, seed=).train``, then
              ``index.search(x, 1)`` for every row: the same work written directly against faiss
  ours_nol2   ``kmeans(..., l2_normalize=False)``
  raw_nol2    ``faiss.Kmeans(...).train(x)`` + ``index.search(x, 1)`` on the raw features

Part B (issue: "N = 1,000,000 x 512 float32, k = 256: time and peak memory, goal: streamed, peak
well under 2x the feature array"): writes the features to a .npy (2 GB; removed afterwards unless
``--keep``), then runs ``kmeans(np.load(path, mmap_mode="r"), k)`` in a fresh subprocess whose
memory a thread samples from /proc/self/status every few ms. Reading a memory map adds the file's
pages to the process's RSS as *file-backed* pages (RssFile): page cache, shared and reclaimable,
not memory the process owns. So VmHWM / ru_maxrss (which count them) are reported, but the goal is
judged on the peak *anonymous* RSS (RssAnon: heap, numpy arrays, faiss buffers). For comparison the
same subprocess harness runs the raw faiss equivalent on the array loaded whole (``np.load``), and
one extra run checks the path where N <= 256 * k (no subsample: the wrapper's "sample" is the whole
array).

    python benchmarks/bench_kmeans.py --out kmeans.json --md kmeans.md
    python benchmarks/bench_kmeans.py --quick --out /tmp/q.json     # seconds; used by the tests
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench_common import benchmark_parser, code_state, machine_info as common_machine_info, write_outputs  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

GOALS = {"overhead_max": 1.15, "peak_anon_over_array_max": 1.0}  # "well under 2x": we ask for < 1x


# ------------------------------------------------------------------------------------------ machine


def machine_info() -> dict:
    import faiss

    return {**common_machine_info(), "faiss_omp_threads": faiss.omp_get_max_threads()}


# -------------------------------------------------------------------------------------- features


def make_features(n: int, dim: int, seed: int, out: np.ndarray | None = None, chunk: int = 65536) -> np.ndarray:
    """Encoder-like features: non-negative (post-ReLU pooling), clustered around 1,000 latent
    centres of different spreads, float32. Written chunk by chunk into ``out`` (e.g. a memmap)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    spread = rng.uniform(0.3, 1.0, size=1000).astype(np.float32)
    if out is None:
        out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        which = rng.integers(0, len(centres), size=m)
        x = rng.standard_normal((m, dim), dtype=np.float32)
        x *= spread[which, None]
        x += centres[which]
        np.maximum(x, 0.0, out=x)
        out[start : start + m] = x
    return out


# ------------------------------------------------------------------------------------------ part A


def run_ours(x, k, seed, niter, l2):
    from avssl.clustering.kmeans import kmeans

    res = kmeans(x, k, seed=seed, niter=niter, l2_normalize=l2)
    return res.assignments, res.objective, float(res.distances.mean())


def run_raw(x, k, seed, niter, l2):
    import faiss

    if l2:
        x = x.copy()
        faiss.normalize_L2(x)
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, verbose=False)
    km.train(x)
    dist, labels = km.index.search(x, 1)
    return labels[:, 0], float(km.obj[-1]), float(dist.mean())


def _ari(a, b):
    try:
        from sklearn.metrics import adjusted_rand_score
    except ImportError:  # optional: sklearn is a dependency of avssl, but keep the script standalone
        return None
    return round(float(adjusted_rand_score(a, b)), 4)


def part_a(args) -> list[dict]:
    variants = {
        "ours": lambda x: run_ours(x, args.k, args.seed, args.niter, True),
        "raw": lambda x: run_raw(x, args.k, args.seed, args.niter, True),
        "ours_nol2": lambda x: run_ours(x, args.k, args.seed, args.niter, False),
        "raw_nol2": lambda x: run_raw(x, args.k, args.seed, args.niter, False),
    }
    names = list(variants)
    rows = []
    import faiss

    default_threads = faiss.omp_get_max_threads()
    for threads, n in [(t, n) for t in args.threads for n in args.sizes]:
        faiss.omp_set_num_threads(threads or default_threads)
        x = make_features(n, args.dim, seed=n)
        labels, objective, mean_dist = {}, {}, {}
        for name in names:  # warm-up (thread pools, BLAS), and the results to compare
            labels[name], objective[name], mean_dist[name] = variants[name](x)
        times = {name: [] for name in names}
        cpu = {name: [] for name in names}
        for rep in range(args.repeats):
            order = names[rep % len(names):] + names[: rep % len(names)]
            if rep % 2:
                order = order[::-1]
            for name in order:
                c0, t0 = time.process_time(), time.perf_counter()
                variants[name](x)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        med = {name: statistics.median(v) for name, v in times.items()}

        def paired(a, b, series=times):
            return round(statistics.median(p / q for p, q in zip(series[a], series[b])), 3)

        row = {
            "n": n, "dim": args.dim, "k": args.k, "niter": args.niter, "repeats": args.repeats,
            "faiss_threads": faiss.omp_get_max_threads(),
            "subsampled_for_training": n > 256 * args.k,
            "seconds": {name: round(v, 4) for name, v in med.items()},
            "min_seconds": {name: round(min(v), 4) for name, v in times.items()},
            "all_seconds": {name: [round(t, 4) for t in v] for name, v in times.items()},
            "cpu_seconds": {name: round(statistics.median(v), 4) for name, v in cpu.items()},
            "overhead": paired("ours", "raw"),
            "overhead_nol2": paired("ours_nol2", "raw_nol2"),
            # less sensitive to other jobs' load: ratio of the fastest runs, and of CPU time
            "overhead_of_min": round(min(times["ours"]) / min(times["raw"]), 3),
            "overhead_nol2_of_min": round(min(times["ours_nol2"]) / min(times["raw_nol2"]), 3),
            "overhead_cpu": paired("ours", "raw", cpu),
            "overhead_nol2_cpu": paired("ours_nol2", "raw_nol2", cpu),
            # same labels where both train on the same points (N <= 256 k); else compare partitions
            "labels_agree": round(float(np.mean(labels["ours"] == labels["raw"])), 4),
            "labels_agree_nol2": round(float(np.mean(labels["ours_nol2"] == labels["raw_nol2"])), 4),
            "ari": _ari(labels["ours"], labels["raw"]),
            "ari_nol2": _ari(labels["ours_nol2"], labels["raw_nol2"]),
            "objective": {name: round(v, 4) for name, v in objective.items()},
            "mean_sq_distance_all_points": {name: round(v, 5) for name, v in mean_dist.items()},
        }
        row["goal_met"] = row["overhead"] <= GOALS["overhead_max"]
        rows.append(row)
        print(f"part A N={n} threads={row['faiss_threads']}: " + ", ".join(f"{k} {v:.3f} s" for k, v in med.items())
              + f"; ours/raw {row['overhead']} (of min {row['overhead_of_min']}, cpu {row['overhead_cpu']}), "
              f"nol2 {row['overhead_nol2']} (of min {row['overhead_nol2_of_min']}, cpu {row['overhead_nol2_cpu']})",
              flush=True)
    faiss.omp_set_num_threads(default_threads)
    return rows


# ------------------------------------------------------------------------------------------ part B


def _status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) * 1024  # kB -> bytes
    return out


class MemorySampler(threading.Thread):
    """Peaks of RssAnon, RssFile and their sum, read from /proc/self/status every ``interval`` s,
    per phase (the main thread sets ``phase``), plus a coarse timeline."""

    def __init__(self, interval: float = 0.003):
        super().__init__(daemon=True)
        self.interval, self.phase, self.t0 = interval, "start", time.perf_counter()
        self.peaks: dict[str, dict[str, int]] = {}
        self.timeline: list[tuple] = []
        self.samples = 0
        self._stop_event = threading.Event()

    def sample(self):
        s = _status()
        anon, file = s.get("RssAnon", 0), s.get("RssFile", 0)
        for scope in ("all", self.phase):
            p = self.peaks.setdefault(scope, {"anon": 0, "file": 0, "anon_plus_file": 0})
            p["anon"], p["file"] = max(p["anon"], anon), max(p["file"], file)
            p["anon_plus_file"] = max(p["anon_plus_file"], anon + file)
        t = time.perf_counter() - self.t0
        if not self.timeline or t - self.timeline[-1][0] >= 0.25:
            self.timeline.append((round(t, 2), self.phase, round(anon / 2**20), round(file / 2**20)))
        self.samples += 1

    def run(self):
        while not self._stop_event.is_set():
            self.sample()
            time.sleep(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()
        self.sample()


def child(args) -> None:
    """One measured run in this (fresh) process; prints one JSON line."""
    import faiss

    from avssl.clustering import kmeans as km_module

    mem = MemorySampler()
    x = np.load(args.child_path, mmap_mode="r")
    if args.child_rows:
        x = x[: args.child_rows]
    baseline = _status()
    phase_times = {}
    mem.start()
    t0 = time.perf_counter()
    if args.child == "ours":
        # Instrument the phases without touching the module: everything before _assign is
        # subsample + checks + pre-processing + faiss training.
        original_assign, original_reseed = km_module._assign, km_module._reseed_empty

        def timed_assign(*a, **kw):
            phase_times["train"] = time.perf_counter() - t0
            mem.phase = "assign"
            t = time.perf_counter()
            try:
                return original_assign(*a, **kw)
            finally:
                phase_times["assign"] = time.perf_counter() - t
                mem.phase = "reseed"

        def timed_reseed(*a, **kw):
            t = time.perf_counter()
            try:
                return original_reseed(*a, **kw)
            finally:
                phase_times["reseed"] = time.perf_counter() - t

        km_module._assign, km_module._reseed_empty = timed_assign, timed_reseed
        mem.phase = "train"
        res = km_module.kmeans(x, args.k, seed=args.seed, niter=args.niter)
        info = {"objective": res.objective, "reseeded": res.reseeded, "empty": res.empty,
                "cluster_size_min": int(res.sizes().min()), "cluster_size_max": int(res.sizes().max())}
    else:  # the raw faiss equivalent on the whole array in memory
        mem.phase = "load"
        a = np.load(args.child_path)
        if args.child_rows:
            a = np.ascontiguousarray(a[: args.child_rows])
        phase_times["load"] = time.perf_counter() - t0
        mem.phase = "train"
        faiss.normalize_L2(a)
        kmeans = faiss.Kmeans(a.shape[1], args.k, niter=args.niter, seed=args.seed, verbose=False)
        kmeans.train(a)
        phase_times["train"] = time.perf_counter() - t0 - phase_times["load"]
        mem.phase = "assign"
        t = time.perf_counter()
        _, labels = kmeans.index.search(a, 1)
        phase_times["assign"] = time.perf_counter() - t
        info = {"objective": float(kmeans.obj[-1])}
    wall = time.perf_counter() - t0
    mem.stop()
    final = _status()
    print("CHILD_JSON " + json.dumps({
        "mode": args.child, "rows": int(x.shape[0]), "k": args.k, "niter": args.niter,
        "wall_s": round(wall, 3), "phase_s": {k: round(v, 3) for k, v in phase_times.items()},
        "baseline": baseline, "peaks": mem.peaks, "samples": mem.samples,
        "vm_hwm": final.get("VmHWM"), "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "timeline_mib": mem.timeline[:: max(1, len(mem.timeline) // 80)], **info,
    }), flush=True)


def evict(path: Path) -> bool:
    """Drop this one file's pages from the page cache (cold-cache run); False if not possible."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        return True
    except (OSError, AttributeError):
        return False


def cached_fraction(path: Path) -> float | None:
    """Share of the file's pages in the page cache (mmap + mincore), None where unavailable."""
    try:
        import ctypes
        import mmap

        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        size = path.stat().st_size
        pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                return None
            try:
                vec = (ctypes.c_ubyte * pages)()
                if libc.mincore(addr, size, vec) != 0:
                    return None
                return round(float(np.frombuffer(vec, np.uint8).__and__(1).mean()), 3)
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
    except Exception:  # noqa: BLE001 - informational only
        return None


def run_child(path: Path, mode: str, k: int, niter: int, seed: int, rows: int | None = None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, "--child-path", str(path),
           "--k", str(k), "--niter", str(niter), "--seed", str(seed)]
    if rows:
        cmd += ["--child-rows", str(rows)]
    # Through a small shell that forks (not execs) the child: Linux carries a process's ru_maxrss
    # over exec and starts a forked child's from its parent's RSS, so a direct child of this (large)
    # process would report our RSS as its own peak.
    proc = subprocess.run(["/bin/sh", "-c", '"$@"; exit $?', "sh", *cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child {mode} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("CHILD_JSON "))
    return json.loads(line[len("CHILD_JSON "):])


def summarise_child(r: dict, array_bytes: int, label: str, cache: str, cached: float | None) -> dict:
    gib = 2**30
    peak = r["peaks"]["all"]
    base_anon = r["baseline"].get("RssAnon", 0)
    return {
        "run": label, "mode": r["mode"], "page_cache": cache, "file_cached_before": cached,
        "rows": r["rows"], "k": r["k"], "niter": r["niter"], "wall_s": r["wall_s"], "phase_s": r["phase_s"],
        "array_gib": round(array_bytes / gib, 3),
        "baseline_anon_gib": round(base_anon / gib, 3),
        "peak_anon_gib": round(peak["anon"] / gib, 3),
        "peak_anon_over_array": round(peak["anon"] / array_bytes, 3),
        "peak_anon_above_baseline_over_array": round((peak["anon"] - base_anon) / array_bytes, 3),
        "peak_file_gib": round(peak["file"] / gib, 3),
        "peak_anon_plus_file_gib": round(peak["anon_plus_file"] / gib, 3),
        "vm_hwm_gib": round(r["vm_hwm"] / gib, 3) if r.get("vm_hwm") else None,
        "vm_hwm_over_array": round(r["vm_hwm"] / array_bytes, 3) if r.get("vm_hwm") else None,
        "ru_maxrss_gib": round(r["ru_maxrss"] / gib, 3),
        "peak_anon_gib_by_phase": {ph: round(p["anon"] / gib, 3) for ph, p in r["peaks"].items() if ph != "all"},
        "memory_samples": r["samples"],
        "objective": r.get("objective"),
        "reseeded": r.get("reseeded"),
        "timeline_mib": r["timeline_mib"],
    }


def part_b(args, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"features_{args.n}x{args.dim}.npy"
    from numpy.lib.format import open_memmap

    t0 = time.perf_counter()
    if not (args.keep and path.exists() and np.load(path, mmap_mode="r").shape == (args.n, args.dim)):
        tmp = path.with_suffix(".tmp.npy")
        out = open_memmap(tmp, mode="w+", dtype=np.float32, shape=(args.n, args.dim))
        make_features(args.n, args.dim, seed=1, out=out)
        out.flush()
        del out
        os.replace(tmp, path)
    write_s = time.perf_counter() - t0
    array_bytes = args.n * args.dim * 4
    runs = []
    try:
        plan = []
        if args.cold:
            plan += [("ours", "cold"), ("raw", "cold")] if args.raw_ref else [("ours", "cold")]
        for rep in range(args.repeats_b):
            pair = [("ours", "warm"), ("raw", "warm")] if args.raw_ref else [("ours", "warm")]
            plan += pair if rep % 2 == 0 else pair[::-1]
        for mode, cache in plan:
            if cache == "cold" and not evict(path):
                cache = "unknown (eviction failed)"
            cached = cached_fraction(path)
            r = run_child(path, mode, args.k, args.niter, args.seed)
            runs.append(summarise_child(r, array_bytes, f"{mode} N={args.n}", cache, cached))
            s = runs[-1]
            print(f"part B {mode} ({cache}, {cached} cached): {s['wall_s']} s, peak anon {s['peak_anon_gib']} GiB "
                  f"({s['peak_anon_over_array']}x array), file {s['peak_file_gib']} GiB, VmHWM {s['vm_hwm_gib']} GiB",
                  flush=True)
        if args.small_n_check:
            # N <= 256 * k: the wrapper does not subsample, its "sample" is the whole (memory-mapped) array.
            rows, k = args.small_n_check
            rows = min(rows, args.n)
            bytes_small = rows * args.dim * 4
            r = run_child(path, "ours", k, 2, args.seed, rows=rows)
            runs.append(summarise_child(r, bytes_small, f"ours N={rows} k={k} (N <= 256k)", "warm", None))
            s = runs[-1]
            print(f"part B N<=256k check N={rows} k={k}: peak anon {s['peak_anon_gib']} GiB "
                  f"({s['peak_anon_over_array']}x its {s['array_gib']} GiB)", flush=True)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
    ours = [r for r in runs if r["mode"] == "ours" and r["rows"] == args.n]
    raws = [r for r in runs if r["mode"] == "raw"]
    warm_ours = [r for r in ours if r["page_cache"] == "warm"] or ours
    warm_raw = [r for r in raws if r["page_cache"] == "warm"] or raws
    summary = {
        "n": args.n, "dim": args.dim, "k": args.k, "niter": args.niter,
        "array_gib": round(array_bytes / 2**30, 3), "write_s": round(write_s, 1),
        "ours_wall_s_median_warm": statistics.median(r["wall_s"] for r in warm_ours),
        "ours_peak_anon_over_array_max": max(r["peak_anon_over_array"] for r in ours),
        "ours_peak_anon_gib_max": max(r["peak_anon_gib"] for r in ours),
        "ours_vm_hwm_over_array_max": max((r["vm_hwm_over_array"] or 0) for r in ours),
    }
    if raws:
        summary["raw_wall_s_median_warm"] = statistics.median(r["wall_s"] for r in warm_raw)
        summary["raw_peak_anon_over_array_max"] = max(r["peak_anon_over_array"] for r in raws)
        summary["ours_over_raw_wall_warm"] = round(summary["ours_wall_s_median_warm"]
                                                   / summary["raw_wall_s_median_warm"], 3)
    summary["goal_met"] = summary["ours_peak_anon_over_array_max"] < GOALS["peak_anon_over_array_max"]
    return {"summary": summary, "runs": runs}


# ----------------------------------------------------------------------------------------- report


def markdown(results: dict) -> str:
    lines = []
    if results.get("part_a"):
        lines += ["Part A: our kmeans() against raw faiss on the same in-memory features (median wall seconds; "
                  "ratio = median of per-repeat ratios; in brackets: ratio of the fastest runs, ratio of CPU time)", "",
                  "| N | faiss threads | d | k | niter | ours | raw faiss | **ours / raw** (goal <= 1.15) "
                  "| ours, no L2 | raw, no L2 "
                  "| ratio, no L2 | same labels / ARI (L2) | mean sq. dist ours / raw (L2) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in results["part_a"]:
            s, d = r["seconds"], r["mean_sq_distance_all_points"]
            lines.append(
                f"| {r['n']:,} | {r['faiss_threads']} | {r['dim']} | {r['k']} | {r['niter']} | {s['ours']:.3f} | "
                f"{s['raw']:.3f} | {r['overhead']:.3f} {'met' if r['goal_met'] else 'MISSED'} "
                f"({r['overhead_of_min']:.3f}, {r['overhead_cpu']:.3f}) | {s['ours_nol2']:.3f} | "
                f"{s['raw_nol2']:.3f} | {r['overhead_nol2']:.3f} ({r['overhead_nol2_of_min']:.3f}, "
                f"{r['overhead_nol2_cpu']:.3f}) | {r['labels_agree']:.3f} / {r['ari']} | "
                f"{d['ours']:.4f} / {d['raw']:.4f} |"
            )
        lines.append("")
    if results.get("part_b"):
        b = results["part_b"]
        lines += [f"Part B: {b['summary']['n']:,} x {b['summary']['dim']} float32 "
                  f"({b['summary']['array_gib']} GiB .npy, memory-mapped), k={b['summary']['k']}, "
                  f"niter={b['summary']['niter']}; fresh subprocess per run", "",
                  "| run | page cache | wall s (train / assign) | peak RssAnon GiB | **anon / array** (goal < 1) "
                  "| anon above start-up / array | peak RssFile GiB | VmHWM GiB (x array) | ru_maxrss GiB |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in b["runs"]:
            ph = r["phase_s"]
            lines.append(
                f"| {r['run']} | {r['page_cache']} | {r['wall_s']:.1f} ({ph.get('train', 0):.1f} / "
                f"{ph.get('assign', 0):.1f}) | {r['peak_anon_gib']:.3f} | {r['peak_anon_over_array']:.3f} | "
                f"{r['peak_anon_above_baseline_over_array']:.3f} | "
                f"{r['peak_file_gib']:.3f} | {r['vm_hwm_gib']} ({r['vm_hwm_over_array']}) | {r['ru_maxrss_gib']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = benchmark_parser(__doc__)
    p.add_argument("--part", choices=("A", "B", "both"), default="both")
    p.add_argument("--workdir", help="where part B writes its .npy (default: a temp dir under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep (and reuse) part B's .npy")
    p.add_argument("--sizes", default="20000,100000", help="part A: N values")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--niter", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5, help="part A repeats (median)")
    p.add_argument("--threads", default="0,1",
                   help="part A: faiss OpenMP thread counts to run (0: faiss's default, here nproc)")
    p.add_argument("--n", type=int, default=1_000_000, help="part B: rows")
    p.add_argument("--repeats-b", type=int, default=2, help="part B: warm-cache runs of each mode")
    p.add_argument("--no-cold", dest="cold", action="store_false", help="part B: skip the cold-cache runs")
    p.add_argument("--no-raw-ref", dest="raw_ref", action="store_false", help="part B: skip raw faiss runs")
    p.add_argument("--small-n-check", default="200000,1024",
                   help="part B: 'rows,k' of an extra run with N <= 256*k (niter 2), '' to skip")
    # internal: one measured part-B run in a fresh process
    p.add_argument("--child", choices=("ours", "raw"), help=argparse.SUPPRESS)
    p.add_argument("--child-path", help=argparse.SUPPRESS)
    p.add_argument("--child-rows", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.k, args.niter, args.repeats, args.threads = "4000", 32, 5, 3, "0"
        args.n, args.repeats_b, args.small_n_check = 20_000, 1, "4000,64"
    args.sizes = [int(v) for v in str(args.sizes).split(",") if v]
    args.threads = [int(v) for v in str(args.threads).split(",") if v]
    args.small_n_check = tuple(int(v) for v in args.small_n_check.split(",")) if args.small_n_check else None
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child:
        child(args)
        return {}
    results = {
        "benchmark": "kmeans",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(),
        "code": code_state(["src/avssl/clustering/kmeans.py"]),
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "md") and not k.startswith("child")},
        "goals": GOALS,
    }
    if args.part in ("A", "both"):
        results["part_a"] = part_a(args)
    if args.part in ("B", "both"):
        own_tmp = args.workdir is None
        workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="avssl-bench-kmeans-"))
        try:
            results["part_b"] = part_b(args, workdir)
        finally:
            if own_tmp and not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    summary = {}
    if "part_a" in results:
        summary["overhead"] = {f"N={r['n']} threads={r['faiss_threads']}": r["overhead"] for r in results["part_a"]}
        summary["goal_overhead_met_all"] = all(r["goal_met"] for r in results["part_a"])
    if "part_b" in results:
        summary["part_b"] = results["part_b"]["summary"]
    results["summary"] = summary
    table = markdown(results)
    results["markdown"] = table
    write_outputs(args, results, table)
    print("RESULT_JSON " + json.dumps({"benchmark": "kmeans", "summary": summary}))
    return results


if __name__ == "__main__":
    main()
