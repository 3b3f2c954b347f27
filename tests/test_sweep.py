"""Ablation sweeps on real mp4 files: one row per (method, k), reuse and resume of runs, pretraining-set
fractions, fc-only vs full fine-tuning, and the table and plot."""
import json

import numpy as np
import pytest
from PIL import Image

from avssl.cli import main
from avssl.config import resolve
from avssl.data.manifest import load_manifest
from avssl.engine.pretrain import Pretrainer
from avssl.errors import ConfigError
from avssl.workflows.sweep import RunSpec, plan, pretraining_pools, sweep

TINY = dict(presets=["cpu-tiny"], eval_clips=2, progress=False)


@pytest.fixture(scope="module")
def k_sweep(tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("k-sweep")
    return out, sweep(tiny_world, out, methods=["scratch", "xdc", "sdc"], ks=[2, 3], overrides=["iterations=1"],
                      **TINY)


def test_plan_runs_k_only_for_clustering_methods_and_fractions_only_for_pretraining():
    runs = plan(["scratch", "xdc", "avts"], ["cpu-tiny"], ks=[2, 4], fractions=[0.5, 1.0], seeds=[0, 1])
    names = [r.name for r in runs]
    assert len(names) == len(set(names)) == 2 * (1 + 2 * 2 + 2)  # per seed: scratch, xdc x k x f, avts x f
    assert "xdc-cpu-tiny-k4-f0.5-s1" in names and "scratch-cpu-tiny-s0" in names and "avts-cpu-tiny-s1" in names
    assert [r.k for r in plan(["xdc"], ["demo"])] == [16]  # default: the preset's k
    with pytest.raises(ConfigError, match="unknown method"):
        plan(["dino"], ["demo"])


def test_one_row_per_method_and_k_with_table_json_and_plot(k_sweep):
    out, r = k_sweep
    assert {(row["method"], row["k"]) for row in r["rows"]} == {("scratch", None), ("xdc", 2), ("xdc", 3),
                                                               ("sdc", 2), ("sdc", 3)}
    assert r["states"] == {"trained": 4, "resumed": 0, "reused": 0, "random": 1} and r["x_axis"] == "k"
    for row in r["rows"]:
        assert 0.0 <= row["mean"]["video linear"] <= 1.0
    md = (out / "results.md").read_text()
    assert md.startswith("| method | k | video linear top-1 (%) | seeds |")
    for line in ("| XDC | 2 |", "| XDC | 3 |", "| SDC | 2 |", "| SDC | 3 |", "| Scratch | - |"):
        assert line in md
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["runs"]) == 5 and saved["metrics"] == ["video linear"]
    for run in saved["runs"]:
        if run["method"] != "scratch":
            cfg = json.loads((out / "runs" / run["name"] / "config.json").read_text())
            assert cfg["clustering"]["k"] == run["k"] and cfg["method"] == run["method"]
    png = np.asarray(Image.open(out / "results.png").convert("RGB"))
    assert png.std() > 10 and len(np.unique(png.reshape(-1, 3), axis=0)) > 20


def test_rerunning_the_command_reuses_every_run_and_evaluation(k_sweep, tiny_world, capsys):
    out, first = k_sweep
    code = main(["sweep", "--methods", "scratch,xdc,sdc", "--k", "2,3", "--preset", "cpu-tiny", "--data",
                 str(tiny_world), "--out", str(out), "--set", "iterations=1", "--eval-clips", "2", "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "5 runs (4 reused, 1 random)" in text and "| XDC | 2 |" in text
    again = json.loads((out / "results.json").read_text())
    assert all(run["reused_evaluations"] == 1 for run in again["runs"])
    assert [r["mean"] for r in again["rows"]] == [r["mean"] for r in first["rows"]]


def test_fractions_resume_and_fc_only_vs_full_finetuning(tiny_world, tmp_path):
    pools = pretraining_pools(tiny_world, tmp_path, [0.5, 1.0])
    half, full = (load_manifest(pools[f][0]) for f in (0.5, 1.0))
    assert (len(half), len(full)) == (8, 16) and all(it.split != "test" for it in full)  # no test video
    assert {it.path for it in half} <= {it.path for it in full}  # nested subsets
    # An interrupted run: the first of its two iterations done, as a killed sweep leaves it (no encoders.pt).
    spec = RunSpec("xdc", "cpu-tiny", 2, 1.0, 0)
    cfg = resolve("cpu-tiny", "xdc", ["iterations=2", "clustering.k=2", "seed=0"])
    Pretrainer(cfg, pools[1.0][0], tmp_path / "runs" / spec.name, progress=False).run(max_iterations=1)
    assert not (tmp_path / "runs" / spec.name / "encoders.pt").exists()  # a partial run exports nothing
    r = sweep(tiny_world, tmp_path, methods=["xdc"], ks=[2], fractions=[0.5, 1.0], overrides=["iterations=2"],
              finetune=True, finetune_epochs=1, **TINY)
    states = {run["name"]: run["state"] for run in r["runs"]}
    assert states == {"xdc-cpu-tiny-k2-f0.5-s0": "trained", spec.name: "resumed"}
    summaries = [json.loads(line) for line in open(tmp_path / "runs" / spec.name / "metrics.jsonl")]
    assert [s["iteration"] for s in summaries if s.get("summary")] == [0, 1]  # iteration 0 not redone
    assert r["x_axis"] == "pretrain_videos" and sorted(row["pretrain_videos"] for row in r["rows"]) == [8, 16]
    assert r["metrics"] == ["video linear", "video finetune"]
    md = (tmp_path / "results.md").read_text()
    assert "| method | pretraining videos | k | video linear top-1 (%) | video finetune top-1 (%) | seeds |" in md
    assert (tmp_path / "results.png").stat().st_size > 1000


def test_several_label_sets_get_a_column_each(tiny_world, tmp_path):
    """Two labellings of the same videos (like devbench's object and category manifests): one
    pretraining run, evaluated on each; results named by the manifests' file stems."""
    import csv

    rows = list(csv.DictReader(open(tiny_world)))
    classes = sorted({r["label"] for r in rows})
    coarse = tmp_path / "coarse.csv"
    with open(coarse, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "split"])
        w.writeheader()
        for r in rows:
            w.writerow({"path": str((tiny_world.parent / r["path"]).resolve()), "split": r["split"],
                        "label": "first" if classes.index(r["label"]) < len(classes) // 2 else "second"})
    out = tmp_path / "sweep"
    r = sweep(tiny_world, out, methods=["scratch", "xdc"], eval_data=[tiny_world, coarse], overrides=["iterations=1"],
              **TINY)
    assert r["metrics"] == ["manifest video linear", "coarse video linear"]
    assert r["states"] == {"trained": 1, "resumed": 0, "reused": 0, "random": 1}
    for row in r["rows"]:
        assert set(row["mean"]) == set(r["metrics"])
    fine = json.loads((out / "eval" / "xdc-cpu-tiny-k4-s0" / "manifest" / "video-linear" / "linear.json").read_text())
    two = json.loads((out / "eval" / "xdc-cpu-tiny-k4-s0" / "coarse" / "video-linear" / "linear.json").read_text())
    assert fine["data"] != two["data"]
    assert "| method | k | manifest video linear top-1 (%) | coarse video linear top-1 (%) | seeds |" in \
        (out / "results.md").read_text()
