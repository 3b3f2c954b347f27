"""Precision: what ``auto`` resolves to, that bf16 autocast really runs the encoders in bf16, that a
precision plan keeps a layer the bf16 check finds wrong in fp32 (and ``auto`` never picks a wrong bf16),
and that a bf16 run trains (real steps on real clips)."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from avssl.config import resolve
from avssl.engine.precision import autocast, native_bf16, plan_precision, resolve_precision
from avssl.errors import ConfigError
from conftest import WrongUnderBf16Conv3d, wrong_under_bf16_model

CPU = torch.device("cpu")


def test_resolve_precision():
    cpu = torch.device("cpu")
    assert resolve_precision(cpu, "fp32") == "fp32"
    assert resolve_precision(cpu, "bf16") == "bf16"
    assert resolve_precision(cpu, "auto") == ("bf16" if native_bf16(cpu) else "fp32")
    with pytest.raises(ValueError, match="precision"):
        resolve_precision(cpu, "fp16")


def test_config_rejects_unknown_precision():
    with pytest.raises(ConfigError, match="precision"):
        resolve("cpu-tiny", "xdc", ["precision=fp8"])
    with pytest.raises(ConfigError, match="memory_format"):
        resolve("cpu-tiny", "xdc", ["memory_format=nhwc"])
    cfg = resolve("cpu-tiny", "xdc", [])
    assert (cfg.precision, cfg.memory_format) == ("auto", "auto")


def test_autocast_runs_convolutions_in_bf16():
    conv = torch.nn.Conv3d(3, 4, 3)
    x = torch.randn(1, 3, 4, 8, 8)
    with autocast(torch.device("cpu"), "bf16"):
        assert conv(x).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert conv(x).dtype == torch.float32


def _weight_grads(model, x, bf16):
    model.zero_grad(set_to_none=True)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with ctx:
        y = model(x)
    y.float().square().mean().backward()
    return [p.grad.clone() for p in model.parameters() if p.dim() > 1]


def test_bf16_plan_keeps_the_wrong_layer_in_fp32_and_gets_the_gradients_right():
    model = wrong_under_bf16_model()
    x = torch.randn(4, 4, 2, 6, 6)
    ref = _weight_grads(model, x, bf16=False)
    assert _weight_grads(model, x, bf16=True)[1].abs().max() > 1e10  # the defect, unchecked
    plan = plan_precision(CPU, "bf16", "contiguous", [("", model, x)])
    assert plan.precision == "bf16" and plan.fp32_layers == ["3"]
    assert "wrong here for 1 of 2 layer shapes" in plan.reason and "1 layers run in fp32" in plan.reason
    assert type(model[3]).__name__ == "Fp32WrongUnderBf16Conv3d" and type(model[0]) is nn.Conv3d
    got = _weight_grads(model, x, bf16=True)
    for a, b in zip(got, ref):  # bf16 rounding accumulated through the network (~0.1), not 1e20
        assert float((a - b).norm() / b.norm()) < 0.5
    assert set(model.state_dict()) == set(wrong_under_bf16_model().state_dict())  # containment leaves the weights' names


def test_auto_never_picks_a_wrong_bf16():
    """Where every layer is wrong, ``auto`` falls back to fp32 and says why; without native bf16 it
    never considers bf16."""
    torch.manual_seed(0)
    model = nn.Sequential(WrongUnderBf16Conv3d(4, 4, (3, 1, 1), padding=(1, 0, 0)))
    plan = plan_precision(CPU, "auto", "auto", [("", model, torch.zeros(2, 4, 2, 4, 4))])
    assert plan.precision == "fp32" and plan.memory_format == "contiguous"
    if native_bf16(CPU):
        assert "wrong here for 1 of 1" in plan.reason
    else:
        assert "no native bf16" in plan.reason


def test_bf16_run_records_its_precision(tiny_world, tmp_path):
    from avssl.engine.pretrain import pretrain

    cfg = resolve("cpu-tiny", "xdc", ["iterations=1", "precision=bf16", "optim.max_epochs=1"])
    run = pretrain(cfg, tiny_world, tmp_path / "run", progress=False)
    records = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["precision"] for r in records if r.get("summary")] == ["bf16"]


def test_bf16_training_steps_fit_a_batch_of_real_clips(tiny_world, tmp_path):
    """XDC's loss on real clips and real pseudo-labels: bf16 computes nearly the fp32 value, and bf16
    SGD steps fit the batch."""
    from avssl.data.dataset import collate_clips
    from avssl.engine.iteration import IterationContext
    from avssl.engine.pretrain import Pretrainer

    if not native_bf16(torch.device("cpu")):
        pytest.skip("this CPU has no native bf16 (no AMX or AVX512-BF16): bf16 would be emulated")
    trainer = Pretrainer(resolve("cpu-tiny", "xdc", ["precision=bf16"]), tiny_world, tmp_path / "run", progress=False)
    if trainer.precision_plan.fp32_layers:
        pytest.skip(f"bf16 is not right for every layer on this CPU: {trainer.precision_plan.reason}")
    trainer.method.begin_iteration(IterationContext(trainer, 0))
    trainer.train_set.set_epoch(0)
    batch = collate_clips([trainer.train_set[i] for i in trainer.train_indices[:8]])
    method, cpu = trainer.method.train(), torch.device("cpu")
    with torch.no_grad():
        with autocast(cpu, "fp32"):
            ref = float(method(batch)[0])
        with autocast(cpu, "bf16"):
            low = float(method(batch)[0])
    assert abs(low - ref) < 0.05 * ref
    opt = torch.optim.SGD(method.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(12):
        with autocast(cpu, "bf16"):
            loss, _ = method(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_memory_format_follows_precision_and_keeps_results():
    from avssl.engine.precision import resolve_memory_format, to_memory_format, video_input
    from avssl.models import build_encoder

    assert resolve_memory_format("bf16", "auto") == "channels_last_3d"
    assert resolve_memory_format("fp32", "auto") == "contiguous"
    assert resolve_memory_format("fp32", "channels_last_3d") == "channels_last_3d"
    with pytest.raises(ValueError, match="memory_format"):
        resolve_memory_format("fp32", "nhwc")
    torch.manual_seed(0)
    enc = build_encoder("r2plus1d_18", width=0.125).eval()
    x = torch.randn(2, 3, 4, 16, 16)
    with torch.no_grad():
        ref = enc(x)
        to_memory_format(enc, "channels_last_3d")
        conv = next(m for m in enc.modules() if isinstance(m, torch.nn.Conv3d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
        xin = video_input(x, "channels_last_3d")
        assert xin.is_contiguous(memory_format=torch.channels_last_3d)
        torch.testing.assert_close(enc(xin), ref, rtol=1e-4, atol=1e-5)


def test_run_records_memory_format(tiny_world, tmp_path):
    from avssl.engine.pretrain import pretrain

    cfg = resolve("cpu-tiny", "xdc", ["iterations=1", "precision=bf16", "memory_format=auto", "optim.max_epochs=1"])
    run = pretrain(cfg, tiny_world, tmp_path / "run", progress=False)
    summary = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert summary["memory_format"] == "channels_last_3d"


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_demo_preset_trains_with_finite_losses_and_sane_weights(tiny_world, tmp_path, precision):
    """A short XDC run at the demo preset's networks and clips, in fp32 and in what ``auto`` picks here
    (bf16 where it is checked right and faster): finite losses, weights within the guard's limits."""
    from avssl.runs import load_encoders
    from avssl.engine.guards import weight_problems
    from avssl.engine.pretrain import pretrain

    cfg = resolve("demo", "xdc", ["iterations=2", "optim.max_epochs=2", "optim.batch_size=8", "clustering.k=4",
                                  "optim.epoch_size=null", f"precision={precision}"])
    run = pretrain(cfg, tiny_world, tmp_path / "run", progress=False)
    records = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "loss" in r and not r.get("summary")]
    assert len(epochs) == 4
    assert all(np.isfinite([r["loss"], r["val_loss"], r["grad_norm"]]).all() for r in epochs)
    summary = [r for r in records if r.get("summary")][-1]
    assert summary["precision_check"]["reason"]  # what it ran in, and why, is on the record
    for module in load_encoders(run.run_dir).modules.values():
        assert weight_problems(module) == []
