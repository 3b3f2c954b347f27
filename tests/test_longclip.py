"""Long-clip retraining (XDC Sec. 6) on real mp4 files: the run's last pseudo-labels and final weights
carried over, the paper's batch and learning-rate scaling, and fine-tuning with the same clip length."""
import json

import numpy as np
import pytest
import torch

from avssl.cli import main
from avssl.config import resolve
from avssl.runs import load_encoders
from avssl.io import load_checkpoint
from avssl.errors import ConfigError
from avssl.evaluation import finetune
from avssl.runs import read_run_videos
from avssl.evaluation.features import load_source, with_frames
from avssl.workflows.longclip import INPUTS, retrain_long, scaled_batch_and_lr


@pytest.fixture(scope="module")
def retrained(tiny_xdc_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("long") / "xdc-16f"
    return out, retrain_long(tiny_xdc_run, out, frames=16, progress=False)


def test_the_papers_scaling_for_32_frame_clips():
    assert scaled_batch_and_lr(32, 0.01, 8, 32) == (8, 0.0025)  # Supp. C: batch 8, base lr 0.0025
    assert scaled_batch_and_lr(8, 0.05, 4, 16) == (2, 0.0125)


def test_retraining_starts_from_the_runs_weights_and_last_audio_clusters(tiny_xdc_run, retrained):
    out, r = retrained
    assert r["state"] == "trained" and r["pseudo_labels"] == ["audio"]  # XDC: audio clusters train the video encoder
    cfg = json.loads((out / "config.json").read_text())
    source = json.loads((tiny_xdc_run / "config.json").read_text())
    assert (cfg["method"], cfg["iterations"], cfg["video"]["num_frames"]) == ("longclip", 1, 16)
    assert (cfg["optim"]["batch_size"], cfg["optim"]["lr"]) == (2, pytest.approx(source["optim"]["lr"] / 4))
    assert cfg["clustering"] == source["clustering"] and cfg["video"]["crop"] == source["video"]["crop"]
    inputs = load_checkpoint(out / INPUTS)
    run_video = load_encoders(tiny_xdc_run).modules["video"].state_dict()
    assert all(torch.equal(inputs["video"][k], v) for k, v in run_video.items())
    audio_clusters = np.load(tiny_xdc_run / "clusters" / "audio_assignments.npy")
    assert inputs["paths"] == read_run_videos(tiny_xdc_run)[0]
    # The pseudo-labels the retraining actually trained on (saved with the method in its checkpoint).
    state = load_checkpoint(out / "checkpoints" / "last.pt")["method"]
    extra = next(v for k, v in state.items() if k.endswith("_extra_state"))
    assert extra["targets"] == ["audio"] and np.array_equal(extra["pseudo_labels"]["audio"].numpy(), audio_clusters)
    enc = load_encoders(out)
    assert enc.slots == {"video": "video"} and enc.cfg.video.num_frames == 16
    assert any(not torch.equal(enc.modules["video"].state_dict()[k], v) for k, v in run_video.items())  # trained
    lines = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert "acc_video_from_audio" in lines[0] and np.isfinite(lines[-1]["last_epoch"]["loss"])
    assert "--batch-size 8 --lrs 0.0025" in r["finetune"]  # 4 -> 16 frames: the same factor 4 as 8 -> 32


def test_finetune_with_the_same_clip_length(retrained, tiny_world, tmp_path):
    out, _ = retrained
    assert load_source(out).cfg.video.num_frames == 16  # evaluation reads the encoder's own clip length
    r = finetune(out, tiny_world, tmp_path, epochs=1, batch_size=8, test_clips=2, progress=False)
    assert 0.0 <= r["folds"]["split"]["accuracy"] <= 1.0


def test_frames_override_for_evaluating_a_run_on_longer_clips(tiny_xdc_run, tiny_world, tmp_path, capsys):
    src = load_source(tiny_xdc_run)
    long = with_frames(src, 16)
    assert long.cfg.video.num_frames == 16 and src.cfg.video.num_frames == 4 and long.key != src.key
    assert long.encoders.modules is src.encoders.modules  # the same weights
    code = main(["eval", "finetune", "--encoders", str(tiny_xdc_run), "--frames", "16", "--data", str(tiny_world),
                 "--out", str(tmp_path), "--epochs", "1", "--batch-size", "8", "--lrs", "0.0025", "--test-clips",
                 "2", "--no-progress"])
    assert code == 0
    assert "at 16 frames" in capsys.readouterr().out


def test_rerun_reuses_and_the_command_prints_the_next_step(tiny_xdc_run, retrained, capsys):
    out, _ = retrained
    code = main(["retrain-long", "--run", str(tiny_xdc_run), "--out", str(out), "--frames", "16", "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert text.startswith("reused: xdc video encoder on audio pseudo-labels, 4 -> 16 frames (batch 8 -> 2")
    assert "avssl eval finetune --encoders" in text


def test_methods_without_pseudo_labels_are_refused(tmp_path):
    run = tmp_path / "avts-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(resolve("cpu-tiny", "avts").to_dict()))
    (run / "encoders.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="deep-clustering run's last pseudo-labels"):
        retrain_long(run, tmp_path / "out", progress=False)
