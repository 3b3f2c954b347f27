"""clustering.recluster=epoch (DeepCluster-v2's way): k-means at the end of every epoch on a per-video
memory of the features the steps computed, heads set to the new centroids. On the tiny demo world."""
import json

import numpy as np
import pytest
import torch

from conftest import run_split_and_whole

from avssl import seeds
from avssl.clustering.pseudo_labels import cluster_videos
from avssl.config import resolve
from avssl.engine.iteration import IterationContext
from avssl.engine.pretrain import Pretrainer, pretrain
from avssl.errors import ConfigError
from avssl.io import load_checkpoint
from avssl.methods import validate
from avssl.methods.feature_memory import FeatureMemory, centroid_weights


def tiny(method, **over):
    over = {"clustering.recluster": "epoch", "optim.early_stop": 0, "precision": "fp32", **over}
    return resolve("cpu-tiny", method, [f"{k}={json.dumps(v)}" for k, v in over.items()], check=validate)


def _kmeans(cfg, x, valid, k, seed, previous=None):
    c = cfg.clustering
    return cluster_videos(x, valid, k, seed=seed, niter=c.niter, pca_dim=c.pca_dim, l2_normalize=c.l2_normalize,
                          gpu=c.gpu, assign=c.assign, sinkhorn_epsilon=c.sinkhorn_epsilon,
                          previous=None if previous is None else previous.numpy()).labels


@pytest.fixture(scope="module")
def xdc_run(tiny_world, tmp_path_factory):
    """A finished two-iteration XDC run with recluster=epoch (2 epochs: one re-clustering per iteration)."""
    out = tmp_path_factory.mktemp("recluster") / "xdc"
    t = Pretrainer(tiny("xdc"), tiny_world, out, progress=False)
    t.run()
    return t


def test_every_epoch_but_an_iterations_last_is_reclustered_and_logged(xdc_run):
    lines = [json.loads(x) for x in open(xdc_run.run_dir / "metrics.jsonl")]
    epochs = [r for r in lines if "epoch" in r and not r.get("summary")]
    assert [(r["iteration"], r["epoch"]) for r in epochs] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for r in epochs:
        assert np.isfinite(r["loss"]) and np.isfinite(r["val_loss"])
        assert ("recluster" in r) == (r["epoch"] == 0)
    for r in epochs[::2]:
        assert set(r["recluster"]) == {"video", "audio"}
        for name, stats in r["recluster"].items():
            assert stats["sizes"]["k"] == 4 and 0.0 <= stats["nmi_previous"] <= 1.0
            assert r[f"recluster_nmi_{name}"] == stats["nmi_previous"]
    # the iterations keep their bookkeeping: clusterings saved, NMI with the previous one
    summaries = [r for r in lines if r.get("summary")]
    assert "nmi_previous" in summaries[1]["clusters"]["video"]
    assert summaries[1]["times"]["extract"] == 0.0  # iteration 1 clustered the memory: no extraction pass
    assert (xdc_run.run_dir / "clusters" / "iter_01" / "audio_assignments.npy").exists()
    assert (xdc_run.run_dir / "encoders.pt").exists()
    assert (xdc_run.run_dir / "curves.png").exists()


def test_the_next_iteration_clusters_the_memory_the_last_one_left(xdc_run):
    """Iteration 1's labels are k-means (its usual seed) of the memory saved at the end of iteration 0."""
    state = load_checkpoint(xdc_run.run_dir / "checkpoints" / "iter_00.pt")
    memory = state["method"]["_extra_state"]["memory"]
    cfg = xdc_run.cfg
    for name in ("video", "audio"):
        x, valid = memory["features"][name].numpy(), memory["valid"][name].numpy()
        assert valid.all() and x.shape == (len(xdc_run.entries), xdc_run.method.encoders[name].out_dim)
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)  # L2-normalised rows
        saved = np.load(xdc_run.run_dir / "clusters" / "iter_01" / f"{name}_assignments.npy")
        assert np.array_equal(saved, _kmeans(cfg, x, valid, 4, seeds.kmeans_seed(cfg.seed, 1)))


def test_end_of_epoch_labels_are_kmeans_of_the_memory_and_heads_its_centroids(xdc_run):
    t, m = xdc_run, xdc_run.method
    before = {n: m.pseudo_labels[n].clone() for n in ("video", "audio")}
    ctx = IterationContext(t, 1)
    logs = m.end_epoch(ctx, epoch=5, another=True)  # the engine's own call, after a last epoch
    assert set(logs["recluster"]) == {"video", "audio"}
    for name in ("video", "audio"):
        x, valid = m.memory.rows(name)
        want = _kmeans(t.cfg, x, valid, 4, seeds.recluster_seed(t.cfg.seed, 1, 5))
        assert np.array_equal(m.pseudo_labels[name].numpy(), want)
    changed = [n for n in before if not torch.equal(before[n], m.pseudo_labels[n])]
    assert changed, "another seed and memory gave the very same labels for both modalities"
    # XDC: the video head predicts audio clusters; it starts at the mean video feature of each of them
    for slot, name in (("video", "audio"), ("audio", "video")):
        head = m.heads[m.head_key(slot, name)]
        x, valid = m.memory.rows(slot)
        labels = m.pseudo_labels[name].numpy()
        for c in range(4):
            mean = x[valid & (labels == c)].mean(0)
            assert torch.allclose(head.weight[c], torch.from_numpy(mean / np.linalg.norm(mean)), atol=1e-5)
        assert torch.count_nonzero(head.bias) == 0
    assert {id(p) for p in ctx.renewed} == {id(p) for p in m.heads.parameters()}


def test_labels_change_between_epochs(tiny_world, tmp_path):
    """Within an iteration, the table a head trains on in epoch 1 is not the one of epoch 0."""
    t = Pretrainer(tiny("xdc", iterations=1), tiny_world, tmp_path / "r", progress=False)
    t.run()
    start = np.load(tmp_path / "r" / "clusters" / "iter_00" / "video_assignments.npy")
    assert not np.array_equal(start, t.method.pseudo_labels["video"].numpy())


def test_a_resumed_run_equals_an_uninterrupted_one(tiny_world, tmp_path):
    run_split_and_whole(tiny("xdc"), tiny_world, tmp_path)  # the memory and labels travel in checkpoints
    sa = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")["method"]["_extra_state"]
    sb = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["method"]["_extra_state"]
    for name in ("video", "audio"):
        assert torch.equal(sa["pseudo_labels"][name], sb["pseudo_labels"][name])
        assert torch.equal(sa["memory"]["features"][name], sb["memory"]["features"][name])


@pytest.mark.parametrize("method", ["sdc", "mdc", "cdc"])
def test_other_deep_clustering_methods_recluster_every_epoch(method, tiny_world, tmp_path):
    result = pretrain(tiny(method, iterations=1), tiny_world, tmp_path / method, progress=False)
    epochs = [json.loads(x) for x in open(tmp_path / method / "metrics.jsonl")]
    first = epochs[0]
    names = {"cdc": {"joint"}}.get(method, {"video", "audio"})
    assert first["epoch"] == 0 and set(first["recluster"]) == names and np.isfinite(first["loss"])
    assert result.encoders_path.exists()


@pytest.mark.parametrize("method", ["avts", "crisscross", "supervised"])
def test_refused_for_methods_without_cluster_tables(method):
    with pytest.raises(ConfigError, match="clustering.recluster=epoch") as e:
        tiny(method)
    assert (f"{method} has no such tables (methods: cdc, mdc, sdc, xdc, xdc-audio-audio, xdc-video-video)"
            in str(e.value))


def test_recluster_takes_two_values():
    with pytest.raises(ConfigError, match="clustering.recluster must be iteration or epoch"):
        tiny("xdc", **{"clustering.recluster": "step"})
    assert resolve("cpu-tiny", "xdc").clustering.recluster == "iteration"  # off by default


def test_memory_rows_are_the_mean_of_an_epochs_features_and_unseen_rows_stay():
    mem = FeatureMemory(l2_normalize=True)
    mem.reset({"video": (np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]], np.float32), np.ones(3, bool))})
    assert np.allclose(mem.rows("video")[0], [[0.6, 0.8], [1, 0], [0, 1]])
    mem.add("video", torch.tensor([0, 1]), torch.tensor([[0.0, 5.0], [2.0, 2.0]]))
    mem.add("video", torch.tensor([0]), torch.tensor([[1.0, 0.0]]))
    assert mem.finish_epoch() == {"video": 2}
    x, valid = mem.rows("video")
    r = np.sqrt(0.5)
    assert np.allclose(x, [[r, r], [r, r], [0, 1]]) and valid.all()
    w = centroid_weights(x, valid, np.array([0, 0, 2]), 3)
    assert np.allclose(w.numpy(), [[r, r], [0, 0], [0, 1]])


def test_handcrafted_first_clustering_starts_an_empty_memory(tiny_world, tmp_path):
    """Hand-crafted features have another size than the encoders': the memory fills from the steps, and a
    video no step has seen yet (dropped last batches) has no label until one does."""
    t = Pretrainer(tiny("xdc", iterations=1, **{"clustering.init": "handcrafted"}), tiny_world, tmp_path / "r",
                   progress=False)
    t.run()
    first = json.loads(open(tmp_path / "r" / "metrics.jsonl").readline())
    assert set(first["recluster"]) == {"video", "audio"}
    for slot in ("video", "audio"):
        x, valid = t.method.memory.rows(slot)
        assert valid.sum() >= len(t.entries) - 8 and x.shape[1] == t.method.encoders[slot].out_dim
        labelled = t.method.pseudo_labels[slot].numpy() >= 0  # by the re-clustering after epoch 0
        assert labelled.sum() >= len(t.entries) - 8 and not (labelled & ~valid).any()
