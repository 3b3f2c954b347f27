"""Cross-modal retrieval on held-out real mp4 files: AVTS and CrissCross runs in their shared embedding
space, and a plain statement for XDC, whose features share no space."""
import json

import numpy as np
import pytest
import torch

from avssl.cli import main
from avssl.config import resolve
from avssl.runs import load_method
from avssl.engine.pretrain import pretrain
from avssl.evaluation.crossmodal import crossmodal

RUNS = {"avts": ["avts.stage_epochs=[1,1]"], "crisscross": ["audio.duration=1.0", "audio.num_frames=50"]}


@pytest.fixture(scope="module")
def runs(tiny_world, tiny_xdc_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("crossmodal-runs")
    made = {m: pretrain(resolve("cpu-tiny", m, over), tiny_world, root / m, progress=False).run_dir
            for m, over in RUNS.items()}
    return {**made, "xdc": tiny_xdc_run}


@pytest.mark.parametrize("method", ["avts", "crisscross"])
def test_shared_space_methods_retrieve_across_modalities(method, runs, tiny_world, tmp_path):
    r = crossmodal(runs[method], tiny_world, tmp_path, clips=2, ks=(1, 3, 20), progress=False)
    assert r["applicable"] and r["videos"] == 8  # the 8 test videos of the tiny world
    assert r["chance"]["pair"] == pytest.approx({"recall@1": 1 / 8, "recall@3": 3 / 8, "recall@20": 1.0})
    # 2 test videos per class: 1 at random is right 2/8 of the time; 3 at random miss both C(6,3)/C(8,3)
    assert r["chance"]["label"] == pytest.approx({"recall@1": 2 / 8, "recall@3": 1 - 20 / 56, "recall@20": 1.0})
    for direction in ("video_to_audio", "audio_to_video"):
        pair, label = r[direction]["pair"], r[direction]["label"]
        assert pair["recall@1"] <= pair["recall@3"] <= pair["recall@20"] == 1.0
        for k in (1, 3, 20):  # a query's own video has its label, so a pair hit is a label hit
            assert label[f"recall@{k}"] >= pair[f"recall@{k}"]
    md = (tmp_path / "crossmodal.md").read_text()
    assert "| video -> audio | pair |" in md and "| chance | pair | 12.5 | 37.5 | 100.0 |" in md
    assert "| chance | label | 25.0 | 64.3 | 100.0 |" in md


def test_crisscross_queries_through_its_predictor(runs):
    method = load_method(runs["crisscross"])
    with torch.no_grad():
        z = method.sync_embed("video", torch.randn(4, 3, 4, 16, 16))
        q = method.sync_query("video", z)
        assert torch.equal(q, method.predictors["video"](z))
    assert q.shape == z.shape and not torch.allclose(q, z)
    avts = load_method(runs["avts"])
    assert torch.equal(avts.sync_query("audio", z), z)  # AVTS compares its embeddings directly


def test_xdc_says_it_has_no_shared_space(runs, tiny_world, tmp_path):
    r = crossmodal(runs["xdc"], tiny_world, tmp_path, progress=False)
    assert r["applicable"] is False and "no shared audio-visual embedding" in r["reason"]
    saved = json.loads((tmp_path / "crossmodal.json").read_text())
    assert saved["applicable"] is False and "recall@1" not in json.dumps(saved)
    assert "Not applicable" in (tmp_path / "crossmodal.md").read_text()


def test_eval_crossmodal_command(runs, tiny_world, tmp_path, capsys):
    code = main(["eval", "crossmodal", "--encoders", str(runs["avts"]), "--data", str(tiny_world), "--out",
                 str(tmp_path), "--clips", "1", "--ks", "1,5", "--split", "train", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "the 'train' split, 16 videos" in out and "R@5" in out
    assert np.isclose(json.loads((tmp_path / "crossmodal.json").read_text())["chance"]["pair"]["recall@5"], 5 / 16)
