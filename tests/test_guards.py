"""Weight guards: a run never ends "successfully" with non-finite or exploded weights or BatchNorm
statistics; it stops with a clear message and keeps its last good checkpoint."""
import json
import math

import pytest
import torch
from torch import nn

from avssl.config import resolve
from avssl.io import load_checkpoint
from avssl.engine.guards import WEIGHT_LIMIT, weight_problems
from avssl.engine.pretrain import Pretrainer
from avssl.errors import TrainingDiverged


def test_weight_problems_names_non_finite_and_exploded_tensors():
    model = nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2))
    assert weight_problems(model) == []
    model[1].running_var[0] = math.inf
    model[0].weight.data[0, 0, 0, 0] = 8.5e35
    problems = weight_problems(model)
    assert "0.weight reaches 8.5e+35" in problems
    assert "1.running_var holds inf" in problems
    model[0].weight.data.fill_(WEIGHT_LIMIT / 2)
    assert weight_problems(model) == ["1.running_var holds inf"]


def _explode_after(trainer: Pretrainer, epochs: int) -> None:
    """Fault injection: after ``epochs`` epochs of real training, one convolution's weights blow up,
    as a wrong bf16 gradient made them do (the loss of the next steps may stay finite)."""
    real_epoch, done = trainer._epoch, []

    def epoch(*args, **kwargs):
        out = real_epoch(*args, **kwargs)
        done.append(1)
        if len(done) == epochs + 1:
            conv = next(m for m in trainer.method.encoders["video"].modules() if isinstance(m, nn.Conv3d))
            conv.weight.data.mul_(1e36)
        return out

    trainer._epoch = epoch


def test_a_run_whose_weights_explode_stops_and_keeps_its_last_good_checkpoint(tiny_world, tmp_path):
    cfg = resolve("cpu-tiny", "xdc", ["iterations=1", "optim.max_epochs=3", "optim.early_stop=0"])
    trainer = Pretrainer(cfg, tiny_world, tmp_path / "run", progress=False)
    _explode_after(trainer, epochs=1)
    with pytest.raises(TrainingDiverged) as info:
        trainer.run()
    msg = str(info.value)
    assert "weights exploded in iteration 0, epoch 1" in msg and "encoders.video" in msg
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert f"the last good checkpoint is {last}" in msg and "--resume" in msg and "optim.lr=0.005" in msg
    state = load_checkpoint(last)
    assert state["epoch"] == 1  # written after the good epoch 0, not after the exploded one
    assert all(torch.isfinite(v).all() and v.abs().max() < WEIGHT_LIMIT
               for v in state["method"].values() if torch.is_tensor(v) and v.is_floating_point())
    assert not (tmp_path / "run" / "encoders.pt").exists()
    epochs = [json.loads(x).get("epoch") for x in open(tmp_path / "run" / "metrics.jsonl")]
    assert epochs == [0]

    # The way forward the message names: resume from that checkpoint with a lower learning rate.
    lower = resolve("cpu-tiny", "xdc", ["iterations=1", "optim.max_epochs=3", "optim.early_stop=0", "optim.lr=0.005"])
    Pretrainer(lower, tiny_world, tmp_path / "run", resume=True, progress=False).run()
    records = [json.loads(x) for x in open(tmp_path / "run" / "metrics.jsonl")]
    resumed = [{k: v for k, v in r.items() if k != "time"} for r in records if r.get("resumed")]
    assert resumed == [{"resumed": True, "iteration": 0, "changed": {"optim.lr": [0.05, 0.005]}}]
    assert [r["epoch"] for r in records if "loss" in r and not r.get("summary")] == [0, 1, 2]
    assert (tmp_path / "run" / "encoders.pt").exists()


def test_divergence_in_the_first_epoch_says_no_checkpoint_exists(tiny_world, tmp_path):
    cfg = resolve("cpu-tiny", "xdc", ["iterations=1", "optim.max_epochs=2"])
    trainer = Pretrainer(cfg, tiny_world, tmp_path / "run", progress=False)
    _explode_after(trainer, epochs=0)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written before") as info:
        trainer.run()
    assert "last.pt" not in str(info.value)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
