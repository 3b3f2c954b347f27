"""Full fine-tuning end to end on real mp4s with scratch cpu-tiny encoders."""
import argparse
import json

import pytest
import torch

from avssl.evaluation import finetune, load_source
from avssl.cli.evaluation import register
from avssl.errors import TrainingDiverged


def test_finetune_trains_a_copy_and_reports_video_and_clip_accuracy(tiny_world, tmp_path):
    source = load_source("scratch", preset="cpu-tiny")
    before = {k: v.clone() for k, v in source.encoders.modules["video"].state_dict().items()}
    r = finetune(source, tiny_world, tmp_path, epochs=2, batch_size=8, test_clips=2, progress=False)
    fold = r["folds"]["split"]
    assert 0 <= fold["accuracy"] <= 1 and 0 <= fold["clip_accuracy"] <= 1
    assert fold["lr"] == 0.01 and fold["sweep"] == {} and fold["train_loss"] > 0
    assert (fold["train_videos"], fold["test_videos"]) == (16, 8)
    after = source.encoders.modules["video"].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the pretrained encoder is left untouched
    assert "Full fine-tuning" in (tmp_path / "finetune.md").read_text()


def test_several_learning_rates_are_chosen_on_validation(tiny_world, tmp_path):
    r = finetune("scratch", tiny_world, tmp_path, preset="cpu-tiny", modality="audio", lrs=(0.001, 0.01), epochs=1,
                 batch_size=8, epoch_size=8, test_clips=1, val_fraction=0.25, progress=False)
    fold = r["folds"]["split"]
    assert set(fold["sweep"]) == {"0.001", "0.01"} and fold["lr"] in (0.001, 0.01)
    assert all(0 <= v["val_accuracy"] <= 1 for v in fold["sweep"].values())


def test_a_diverged_fine_tuning_names_its_rate_and_epoch(tiny_world, tmp_path):
    """lr=1e30: the first step blows the weights up and the next step's loss is NaN."""
    with pytest.raises(TrainingDiverged, match=r"^fine-tuning loss became nan at lr 1e\+30, epoch 0; try a lower"):
        finetune("scratch", tiny_world, tmp_path, preset="cpu-tiny", lrs=(1e30,), epochs=1, batch_size=8,
                 epoch_size=16, test_clips=1, progress=False)


def test_finetune_command(tiny_world, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["eval", "finetune", "--encoders", "scratch", "--preset", "cpu-tiny", "--data",
                              str(tiny_world), "--out", str(tmp_path), "--epochs", "1", "--batch-size", "8",
                              "--test-clips", "1", "--lrs", "0.005", "--no-progress"])
    assert args.func(args) == 0
    assert "lr 0.005" in capsys.readouterr().out
    assert json.loads((tmp_path / "finetune.json").read_text())["settings"]["lrs"] == [0.005]
