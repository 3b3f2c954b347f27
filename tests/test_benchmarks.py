"""The benchmark scripts still run: each one in --quick mode (tiny sizes, seconds), checking its exit
status and the keys of the result JSON. No timing is asserted: timings belong in BENCHMARKS.md."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_quick(script: str, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--out", str(out), "--md", str(tmp_path / "table.md"),
         *extra],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, f"{script} failed:\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert "RESULT_JSON " in proc.stdout
    assert (tmp_path / "table.md").read_text().startswith(("|", "Part"))
    return json.loads(out.read_text())


def _check_machine(result: dict):
    for key in ("nproc", "cpu_model", "torch", "av", "faiss"):
        assert key in result["machine"], key


def test_bench_loader_quick(tmp_path):
    result = run_quick("bench_loader.py", tmp_path, "--workdir", str(tmp_path / "work"))
    assert result["benchmark"] == "loader"
    _check_machine(result)
    assert result["goals"] == {"sampler_over_raw_min": 0.8, "logmel_over_decode_max": 0.05}
    assert len(result["sets"]) == 1
    s = result["sets"][0]
    for key in ("set", "clips", "ms_per_clip", "clips_per_s", "sampler_over_raw", "logmel_over_decode",
                "breakdown_ms_per_clip", "cache_over_raw", "dl_sampler_over_sampler", "dl_cache_over_cache",
                "raw_frames_decoded_per_clip", "sampler_profile_top", "goal_sampler_met", "goal_logmel_met"):
        assert key in s, key
    for variant in ("raw", "raw_all_audio", "decode_rgb", "decode", "post", "sampler", "logmel", "cache",
                    "dl_sampler", "dl_cache", "sampler_t2", "logmel_t2"):
        assert s["ms_per_clip"][variant] > 0, variant
    assert s["clips"] == 4 and s["raw_frames_decoded_per_clip"] > 0
    assert s["sampler_profile_top"] and "function" in s["sampler_profile_top"][0]
    assert set(result["summary"]) >= {"sampler_over_raw", "logmel_over_decode", "goal_sampler_met_all",
                                      "goal_logmel_met_all"}
    assert not (tmp_path / "work" / "cache").exists()  # the decoded cache is removed after the run


def test_bench_kmeans_quick(tmp_path):
    result = run_quick("bench_kmeans.py", tmp_path, "--workdir", str(tmp_path / "work"))
    assert result["benchmark"] == "kmeans"
    _check_machine(result)
    (a,) = result["part_a"]
    for key in ("n", "seconds", "overhead", "overhead_nol2", "labels_agree", "labels_agree_nol2", "goal_met"):
        assert key in a, key
    assert set(a["seconds"]) == {"ours", "raw", "ours_nol2", "raw_nol2"}
    # without L2 normalisation the wrapper and a bare faiss call give the same labels (same seed)
    assert a["labels_agree_nol2"] == 1.0
    b = result["part_b"]
    assert b["summary"]["n"] == 20_000
    for key in ("ours_wall_s_median_warm", "ours_peak_anon_over_array_max", "raw_wall_s_median_warm",
                "ours_over_raw_wall_warm", "goal_met"):
        assert key in b["summary"], key
    modes = {(r["mode"], r["page_cache"]) for r in b["runs"]}
    assert {("ours", "warm"), ("raw", "warm")} <= modes
    for r in b["runs"]:
        assert r["peak_anon_gib"] > 0 and r["ru_maxrss_gib"] > 0 and r["memory_samples"] > 0
        assert r["vm_hwm_gib"] is not None
    assert not list((tmp_path / "work").glob("*.npy"))  # the feature file is deleted without --keep


@pytest.mark.parametrize("script", ["bench_loader.py", "bench_kmeans.py"])
def test_help(script):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--quick" in proc.stdout


def test_bench_train_quick(tmp_path):
    result = run_quick("bench_train.py", tmp_path, "--workdir", str(tmp_path / "work"))
    assert result["benchmark"] == "train"
    _check_machine(result)
    assert result["goals"] == {"engine_over_bare_min": 0.95, "real_over_predecoded_max": 1.10}
    variants = {(r["precision"], r["layout"]) for r in result["precision"]}
    assert variants == {(p, l) for p in ("fp32", "bf16") for l in ("contiguous", "channels_last_3d")}
    assert all(r["ms_per_step"] > 0 for r in result["precision"])
    e = result["engine"]
    assert set(e["ms_per_step"]) == {"bare", "engine_predecoded", "engine_real", "engine_real_workers0"}
    # the engine and the bare loop took the same number of steps over the same data
    assert e["steps_per_epoch"]["bare"] == e["steps_per_epoch"]["engine_predecoded"] > 0
    assert e["engine_over_bare"] > 0 and e["real_over_predecoded"] > 0
    before, now = result["iteration"]
    assert before["precision"] == "fp32" and now["precision"] in ("fp32", "bf16")
    assert all(r[k] > 0 for r in (before, now) for k in ("extract", "train", "total"))
