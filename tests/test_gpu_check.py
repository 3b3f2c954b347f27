"""The GPU check (benchmarks/gpu_check.sh and gpu_check.py) runs on a CPU in --small mode: the CUDA stages
are skipped cleanly, the others really measure, and a stage past its budget is killed without sinking the
check. Nothing about the timings is asserted: they belong in BENCHMARKS.md."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CUDA_STAGES = ("train_step", "iteration")
NO_CUDA = not torch.cuda.is_available()


def env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1", **extra}


def check_py(tmp_path: Path, *args: str, prelude: str = "pass") -> tuple[subprocess.CompletedProcess, dict, str]:
    """Run gpu_check.py (after ``prelude``, in the same interpreter) with ``args``; its JSON and markdown."""
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    script = ROOT / "benchmarks" / "gpu_check.py"
    argv = [str(script), "--small", "--out", str(out), "--md", str(md), "--workdir", str(tmp_path / "work"), *args]
    code = (f"{prelude}; import runpy, sys; sys.path.insert(0, {str(script.parent)!r}); sys.argv = {argv!r}; "
            f"runpy.run_path({str(script)!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env())
    return proc, (json.loads(out.read_text()) if out.exists() else {}), (md.read_text() if md.exists() else "")


@pytest.mark.skipif(not NO_CUDA, reason="checks the run without CUDA")
def test_script_without_cuda(tmp_path):
    """The shell script as the device machine runs it: the CPU stages measure, the CUDA stages are skipped."""
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--small", "--workdir",
                           str(tmp_path / "work")], capture_output=True, text=True, timeout=300,
                          env=env(OUT=str(tmp_path / "out"), PYTHON=sys.executable,
                                  GPU_CHECK_WHEELS=str(tmp_path / "no-wheels")))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    md = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "RESULT_JSON" in (tmp_path / "out" / "gpu_check.log").read_text()
    assert result["cuda"] is None and result["small"]
    assert result["install"] == "av present; faiss present"  # installed here: nothing to install
    stages = result["stages"]
    assert list(stages) == ["train_step", "engine", "iteration", "kmeans", "loader"]
    for name in CUDA_STAGES:
        assert stages[name] == {"status": "skipped: no CUDA"}
        assert f"| {name} |  | skipped: no CUDA |" in md
    for name in ("engine", "kmeans", "loader"):
        assert stages[name]["status"] == "ok" and stages[name]["device"] == "cpu", (name, stages[name])

    e = stages["engine"]["result"]
    assert set(e["ms_per_step"]) == {"bare", "engine_predecoded", "engine_real", "engine_real_workers0"}
    assert all(v > 0 for v in e["ms_per_step"].values())
    assert e["steps_per_epoch"]["bare"] == e["steps_per_epoch"]["engine_predecoded"] > 0
    assert e["engine_over_bare"] > 0 and e["goal_engine_over_bare_min"] == 0.97 and e["preset"] == "cpu-tiny"
    k = stages["kmeans"]["result"]
    assert (k["n"], k["d"], k["k"], k["on"], k["faiss_gpus"]) == (5000, 64, 16, "CPU", 0)
    assert k["runs"] and all(r["seconds"] > 0 and r["empty"] == 0 for r in k["runs"])
    lo = stages["loader"]["result"]
    assert set(lo["clips_per_s"]) == {"0", "1"} and all(v > 0 for v in lo["clips_per_s"].values())
    assert lo["clips_per_epoch"] == 4
    for heading in ("Engine against a bare loop", "k-means", "Loader"):
        assert heading in md


def test_cuda_stages_on_cpu(tmp_path):
    """``--device cpu`` runs the CUDA stages' code on the CPU, so that it is tested where there is no GPU."""
    proc, result, md = check_py(tmp_path, "--device", "cpu", "--stages", ",".join(CUDA_STAGES))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    st = result["stages"]
    assert all(st[n]["status"] == "ok" and st[n]["device"] == "cpu" for n in CUDA_STAGES), st
    rows = st["train_step"]["result"]["rows"]
    assert {(r["precision"], r["layout"]) for r in rows} == {(p, lay) for p in ("fp32", "bf16")
                                                            for lay in ("contiguous", "channels_last_3d")}
    assert all(r["clips_per_s"] > 0 and r["model"] == "cpu-tiny" for r in rows)
    it = st["iteration"]["result"]
    assert it["clips"] == 24 and it["world_seconds"] > 0
    assert all(it["seconds"][k] > 0 for k in ("extract", "cluster", "train", "total"))
    assert "Training step" in md and "One deep-clustering iteration" in md


def test_missing_library_skips_its_stages(tmp_path):
    """Where no wheel fitted (PyAV cannot be imported: here made so by Python's own ``sys.modules[name] =
    None``), the stages that need it are skipped with the reason, and the check still succeeds."""
    proc, result, md = check_py(tmp_path, "--stages", "loader,train_step", prelude="import sys; sys.modules['av'] = None")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert result["machine"]["av"] is None
    for name in ("loader", "train_step"):
        assert result["stages"][name]["status"].startswith("skipped: PyAV missing"), result["stages"][name]
    assert "skipped: PyAV missing" in md


def test_stage_over_budget_is_killed(tmp_path):
    """A stage still running at its budget is killed with its child processes; the check reports it,
    finishes the others and exits 1."""
    proc, result, md = check_py(tmp_path, "--stages", "engine,kmeans", "--stage-budget", "1")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert result["stages"]["engine"]["status"] == "timed out after 1 s (budget)"
    assert "timed out" in md and "kmeans" in result["stages"]
