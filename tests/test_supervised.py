"""Supervised pretraining (the paper's "Superv" upper bound) on real mp4 files: it learns the labels
with the deep-clustering heads, in one iteration of the self-supervised methods' total epochs; it
refuses unlabelled data before any work; its encoders go through evaluation, the demo and the sweep."""
import csv
import json

import numpy as np
import pytest
import torch

from avssl.cli import main
from avssl.config import resolve
from avssl.data.demo_world import DemoWorldConfig
from avssl.data.manifest import load_manifest
from avssl.workflows.demo import run_demo
from avssl.runs import load_encoders
from avssl.io import load_checkpoint
from avssl.engine.pretrain import Pretrainer, pretrain
from avssl.errors import ConfigError
from avssl.evaluation import linear_probe
from avssl.methods import METHODS
from avssl.workflows.sweep import plan, sweep

# 2 iterations x 10 epochs = 20 epochs in one iteration; fp32 because the thresholds below were
# measured in fp32; no early stop so the whole budget runs.
LEARN = ["iterations=2", "optim.max_epochs=10", "optim.lr=0.01", "optim.early_stop=0", "precision=fp32"]


@pytest.fixture(scope="module")
def supervised_run(tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("supervised") / "run"
    trainer = Pretrainer(resolve("cpu-tiny", "supervised", LEARN), tiny_world, out, progress=False)
    trainer.run()
    return trainer


def _epochs(run_dir) -> list[dict]:
    return [r for r in map(json.loads, open(run_dir / "metrics.jsonl")) if not r.get("summary")]


def test_one_iteration_of_the_self_supervised_methods_total_epochs(supervised_run):
    records = [json.loads(line) for line in open(supervised_run.run_dir / "metrics.jsonl")]
    assert [r["iteration"] for r in records if r.get("summary")] == [0]  # one iteration ...
    assert [r["epoch"] for r in _epochs(supervised_run.run_dir)] == list(range(20))  # ... of 2 x 10 epochs
    summary = next(r for r in records if r.get("summary"))
    assert summary["clusters"] == {}  # nothing was clustered
    assert not (supervised_run.run_dir / "clusters").exists()


def test_both_encoders_learn_the_labels(supervised_run):
    epochs = _epochs(supervised_run.run_dir)
    last = epochs[-3:]
    for slot, min_acc in (("video", 0.3), ("audio", 0.5)):  # chance: 0.25 (4 classes)
        acc = np.mean([e[f"acc_{slot}_from_labels"] for e in last])
        loss = np.mean([e[f"loss_{slot}_from_labels"] for e in last])
        assert acc > min_acc, f"{slot} training accuracy {acc:.2f} in the last epochs"
        assert loss < epochs[0][f"loss_{slot}_from_labels"] - 0.1, f"{slot} loss did not fall"


def test_heads_are_one_per_slot_over_the_classes_and_targets_are_the_labels(supervised_run, tiny_world):
    method = supervised_run.method
    classes = load_manifest(tiny_world).class_names()
    assert sorted(method.heads) == ["audio__labels", "video__labels"]
    for slot in ("video", "audio"):
        assert method.heads[f"{slot}__labels"].out_features == len(classes) == 4  # not clustering.k
    # The label table is the manifest's labels, entry by entry (videos.csv names each entry's label).
    with open(supervised_run.run_dir / "videos.csv") as f:
        expected = [classes.index(row["label"]) for row in csv.DictReader(f)]
    assert method.pseudo_labels["labels"].tolist() == expected
    assert sorted(set(expected)) == [0, 1, 2, 3]


def test_checkpoint_restores_labels_and_heads(supervised_run):
    state = load_checkpoint(supervised_run.run_dir / "checkpoints" / "last.pt")
    fresh = METHODS["supervised"](supervised_run.cfg)
    fresh.load_state_dict(state["method"])
    assert torch.equal(fresh.pseudo_labels["labels"], supervised_run.method.pseudo_labels["labels"])
    batch = next(iter(supervised_run.loader(supervised_run.extract_set, 8)))
    with torch.no_grad():
        a, _ = supervised_run.method.eval().loss(batch)
        b, _ = fresh.eval().loss(batch)
    assert torch.allclose(a, b)


def test_linear_probe_reads_its_encoders(supervised_run, tiny_world, tmp_path):
    enc = load_encoders(supervised_run.run_dir / "encoders.pt")
    assert enc.slots == {"video": "video", "audio": "audio"}
    for modality in ("video", "audio"):
        r = linear_probe(supervised_run.run_dir, tiny_world, tmp_path / modality, modality=modality,
                         train_clips=2, test_clips=2, epochs=8, progress=False)
        assert 0.0 <= r["mean"]["accuracy"] <= 1.0
        assert (tmp_path / modality / "linear.json").exists()


def test_unlabelled_data_is_refused_before_any_work(tiny_world, tmp_path, capsys):
    clips = tiny_world.parent / "clips"  # the same videos as a plain folder: no labels
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="--method supervised needs a labelled manifest"):
        pretrain(resolve("cpu-tiny", "supervised"), clips, run_dir, progress=False)
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.jsonl").exists()
    # Some labels missing: the manifest counts as unlabelled, and the message says how many there are.
    partial = load_manifest(tiny_world)
    partial.items[0].label = None
    partial.write(tmp_path / "partial.csv")
    with pytest.raises(ConfigError, match=f"labels for {len(partial) - 1} of its {len(partial)} items"):
        pretrain(resolve("cpu-tiny", "supervised"), tmp_path / "partial.csv", run_dir, progress=False)
    assert not run_dir.exists()
    # The same through the command line: a clear error, exit status 2.
    code = main(["pretrain", "--method", "supervised", "--data", str(clips), "--out", str(run_dir),
                 "--preset", "cpu-tiny", "--no-progress"])
    assert code == 2
    assert "--method supervised needs a labelled manifest" in capsys.readouterr().err
    assert not (run_dir / "checkpoints" / "last.pt").exists()


def test_a_single_class_is_refused(tiny_world, tmp_path):
    one = load_manifest(tiny_world)
    keep = [i for i, item in enumerate(one) if item.label == one.class_names()[0]]
    one.subset(keep).write(tmp_path / "one.csv")
    with pytest.raises(ConfigError, match="at least 2 classes"):
        pretrain(resolve("cpu-tiny", "supervised"), tmp_path / "one.csv", tmp_path / "run", progress=False)


def test_sweep_runs_supervised_once_beside_scratch_and_xdc(tiny_world, tmp_path):
    runs = plan(["scratch", "supervised", "xdc"], ["cpu-tiny"], ks=[2, 4], fractions=[0.5, 1.0])
    supervised = [r for r in runs if r.method == "supervised"]
    assert [(r.k, r.fraction) for r in supervised] == [(None, 0.5), (None, 1.0)]  # no k, but a pool size
    result = sweep(tiny_world, tmp_path, methods=["scratch", "supervised"], presets=["cpu-tiny"],
                   overrides=["iterations=1"], eval_clips=2, progress=False)
    names = [r["name"] for r in result["runs"]]
    assert names == ["scratch-cpu-tiny-s0", "supervised-cpu-tiny-s0"]
    run = result["runs"][1]
    assert run["state"] == "trained" and 0.0 <= run["metrics"]["video linear"] <= 1.0
    # It pretrained on the labelled non-test videos only.
    pool = load_manifest(tmp_path / "manifests" / "pretrain.csv")
    assert pool.labelled() and all(item.split != "test" for item in pool)
    assert run["pretrain_videos"] == len(pool)
    assert "| Superv |" in result["markdown"]


def test_demo_prints_superv_beside_scratch(tmp_path):
    world = DemoWorldConfig(num_classes=3, clips_per_class=4, duration=2.5, test_fraction=0.25, seed=4)
    result = run_demo(tmp_path / "demo", methods=("scratch", "supervised"), preset="cpu-tiny", world=world,
                      overrides=["iterations=1"], progress=False)
    assert result["markdown"].splitlines()[0] == "| Linear probe top-1 (%) | Scratch | Superv |"
    assert set(result["table"]["supervised"]) == {"video", "audio"}
    assert (tmp_path / "demo" / "runs" / "supervised" / "encoders.pt").exists()
