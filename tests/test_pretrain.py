"""The deep-clustering engine end to end on real mp4 files: every method, label routing, resume."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_split_and_whole

from avssl.config import resolve
from avssl.runs import load_encoders
from avssl.io import load_checkpoint
from avssl.engine.pretrain import Pretrainer, pretrain
from avssl.errors import ConfigError
from avssl.methods import METHODS

DEEP_CLUSTERING = ["sdc", "mdc", "cdc", "xdc", "xdc-video-video", "xdc-audio-audio"]


def tiny(method, **over):
    return resolve("cpu-tiny", method, [f"{k}={json.dumps(v)}" for k, v in over.items()])


@pytest.mark.parametrize("method", DEEP_CLUSTERING)
def test_every_method_runs_two_iterations_and_leaves_loadable_checkpoints(method, tiny_world, tmp_path):
    result = pretrain(tiny(method), tiny_world, tmp_path / method, progress=False)
    summaries = [json.loads(line) for line in open(tmp_path / method / "metrics.jsonl")]
    iterations = [s for s in summaries if s.get("summary")]
    assert [s["iteration"] for s in iterations] == [0, 1]
    for s in iterations:
        for name, c in s["clusters"].items():
            assert c["sizes"]["k"] == 4 and c["sizes"]["min"] + c["sizes"]["max"] > 0
            assert 0.0 <= c["vs_labels"]["purity"] <= 1.0  # the demo world is labelled
        assert np.isfinite(s["last_epoch"]["loss"])
    assert "nmi_previous" in next(iter(iterations[1]["clusters"].values()))
    for it in (0, 1):
        state = load_checkpoint(tmp_path / method / "checkpoints" / f"iter_{it:02d}.pt")
        assert state["iteration"] == it and state["iteration_done"]
    enc = load_encoders(result.encoders_path)
    assert set(enc.slots) == set(METHODS[method].slots)
    x = {"video": torch.randn(2, 3, 4, 16, 16), "audio": torch.randn(2, 1, 40, 100)}
    for slot, module in enc.modules.items():
        assert module(x[enc.slots[slot]]).shape == (2, module.out_dim)


def _trainer(method, world, run_dir):
    t = Pretrainer(tiny(method, iterations=1), world, run_dir, progress=False)
    t.run()
    return t


def _batch(trainer):
    loader = trainer.loader(trainer.extract_set, 8)
    return next(iter(loader))


def _expected_loss(method, batch, routes):
    """Cross-entropy summed over (slot, clustering) routes, computed by hand from saved assignments."""
    total = 0.0
    for slot, clustering in routes:
        labels = torch.from_numpy(np.load(method.run_dir / "clusters" / f"{clustering}_assignments.npy"))
        feat = method.method.encode(slot, batch)
        logits = method.method.heads[f"{slot}__{clustering}"](feat)
        total += F.cross_entropy(logits, labels[batch["index"]], ignore_index=-1)
    return total


@pytest.mark.parametrize(
    "method, routes",
    [
        ("xdc", [("video", "audio"), ("audio", "video")]),
        ("cdc", [("video", "joint"), ("audio", "joint")]),
        ("mdc", [("video", "video"), ("video", "audio"), ("audio", "audio"), ("audio", "video")]),
        ("sdc", [("video", "video"), ("audio", "audio")]),
    ],
)
def test_pseudo_labels_are_routed_to_the_right_heads(method, routes, tiny_world, tmp_path):
    t = _trainer(method, tiny_world, tmp_path / method)
    m = t.method.eval()
    # The stored pseudo-labels are exactly the saved clustering assignments.
    for name in m.clusterings:
        saved = np.load(tmp_path / method / "clusters" / f"{name}_assignments.npy")
        np.testing.assert_array_equal(m.pseudo_labels[name].numpy(), saved)
    assert set(m.heads.keys()) == {f"{s}__{c}" for s, c in routes}
    batch = _batch(t)
    with torch.no_grad():
        loss, _ = m.loss(batch)
        expected = _expected_loss(t, batch, routes)
    assert torch.allclose(loss, expected, atol=1e-5)


def test_xdc_video_head_targets_are_audio_clusters_not_video_clusters(tiny_world, tmp_path):
    t = _trainer("xdc", tiny_world, tmp_path / "x")
    audio = np.load(tmp_path / "x" / "clusters" / "audio_assignments.npy")
    video = np.load(tmp_path / "x" / "clusters" / "video_assignments.npy")
    m = t.method.eval()
    batch = _batch(t)
    with torch.no_grad():
        logits = m.heads["video__audio"](m.encode("video", batch))
        via_audio = F.cross_entropy(logits, torch.from_numpy(audio)[batch["index"]])
        loss_logs = m.loss(batch)[1]
    assert loss_logs["loss_video_from_audio"] == pytest.approx(float(via_audio), abs=1e-5)
    if not np.array_equal(audio, video):  # the two clusterings differ, so the routing is observable
        via_video = F.cross_entropy(logits, torch.from_numpy(video)[batch["index"]])
        assert float(via_video) != pytest.approx(float(via_audio), abs=1e-6)


def test_interrupted_run_resumes_to_the_same_state(tiny_world, tmp_path):
    cfg = tiny("xdc", precision="fp32")  # bitwise: one precision whatever this CPU's bf16 check says
    run_split_and_whole(cfg, tiny_world, tmp_path)
    full = [json.loads(x) for x in open(tmp_path / "full" / "metrics.jsonl")]
    split = [json.loads(x) for x in open(tmp_path / "split" / "metrics.jsonl")]
    assert [r.get("epoch") for r in full] == [r.get("epoch") for r in split]


def test_a_finished_run_directory_is_not_overwritten(tiny_world, tmp_path):
    pretrain(tiny("sdc", iterations=1), tiny_world, tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        pretrain(tiny("sdc", iterations=1), tiny_world, tmp_path / "r", progress=False)


def test_resuming_with_a_changed_config_is_refused_naming_each_value(tiny_world, tmp_path):
    pretrain(tiny("sdc", iterations=1), tiny_world, tmp_path / "r", progress=False)
    changed = tiny("sdc", iterations=1, **{"clustering.k": 5, "optim.batch_size": 6, "optim.lr": 0.5})
    with pytest.raises(ConfigError) as info:
        Pretrainer(changed, tiny_world, tmp_path / "r", resume=True, progress=False).run()
    message = str(info.value)
    assert "clustering.k: 4 -> 5" in message and "optim.batch_size" in message
    assert "optim.lr" not in message.split("drop them")[0]  # the learning rate may change on resume


def test_k_larger_than_the_dataset_fails_before_any_work(tiny_world, tmp_path):
    with pytest.raises(ConfigError, match="k=500"):
        Pretrainer(tiny("xdc", **{"clustering.k": 500}), tiny_world, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_handcrafted_first_clustering(tiny_world, tmp_path):
    result = pretrain(tiny("xdc", iterations=1, **{"clustering.init": "handcrafted"}), tiny_world,
                      tmp_path / "h", progress=False)
    feats = np.load(tmp_path / "h" / "features" / "audio.npy")
    assert feats.shape[1] == 2 * 40  # per-band mean and std of the 40-band log-mel
    assert result.encoders_path.exists()
