"""The bf16 check: it compares every layer with fp32 at the shapes the model runs, detects a wrong
gradient, contains it (that layer in fp32, the rest in bf16) and remembers its verdict per machine."""
import json

import pytest
import torch
from torch import nn

from avssl.engine import bf16_check
from avssl.engine.bf16_check import TOLERANCE, check_layers, keep_in_fp32
from avssl.engine.precision import native_bf16, plan_precision
from avssl.models import build_encoder

CPU = torch.device("cpu")


class _Explode(torch.autograd.Function):
    """Identity forward; multiplies the gradient by 1e20, as the oneDNN defect did to weight gradients."""

    @staticmethod
    def forward(ctx, w):
        return w.view_as(w)

    @staticmethod
    def backward(ctx, g):
        return g * 1e20


class WrongUnderBf16Conv3d(nn.Conv3d):
    """A (3, 1, 1) temporal convolution whose weight gradient is wrong under bf16 autocast only."""

    def forward(self, x):
        w = _Explode.apply(self.weight) if torch.is_autocast_enabled("cpu") else self.weight
        return self._conv_forward(x, w, self.bias)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(4, 8, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(8), nn.ReLU(),
                         WrongUnderBf16Conv3d(8, 8, (3, 1, 1), padding=(1, 0, 0)), nn.BatchNorm3d(8), nn.ReLU())


def _weight_grads(model, x, bf16):
    model.zero_grad(set_to_none=True)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with ctx:
        y = model(x)
    y.float().square().mean().backward()
    return [p.grad.clone() for p in model.parameters() if p.dim() > 1]


def test_the_check_finds_the_wrong_layer_and_only_it():
    model = _model()
    uses = check_layers([("net", model, torch.zeros(4, 4, 2, 6, 6))], CPU)
    assert [u.name for u in uses] == ["net.0", "net.3"]  # every conv, in call order
    bad = {u.name: u.check for u in uses if not u.check.ok}
    assert set(bad) == {"net.3"}
    assert bad["net.3"].errors["weight_grad"] > 1e10
    assert bad["net.3"].errors["output"] < TOLERANCE  # the forward is right: only the gradient is wrong
    assert "(4, 8, 2, 6, 6)" in bad["net.3"].signature  # the shape it was checked at is named
    good = next(u.check for u in uses if u.name == "net.0")
    assert all(e < TOLERANCE for e in good.errors.values())


def test_bf16_plan_keeps_the_wrong_layer_in_fp32_and_gets_the_gradients_right():
    model = _model()
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
    assert set(model.state_dict()) == set(_model().state_dict())  # containment leaves the weights' names


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


def test_keep_in_fp32_is_idempotent_and_computes_in_fp32():
    conv = keep_in_fp32(keep_in_fp32(nn.Conv2d(2, 3, 3)))
    assert type(conv).__mro__[1] is nn.Conv2d
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, 2, 5, 5)).dtype == torch.float32


def test_verdicts_are_cached_on_disk_per_machine_and_torch_version():
    enc = build_encoder("audio_resnet18", width=0.125)
    probes = [("audio", enc, torch.zeros(2, 1, 40, 100))]
    uses = check_layers(probes, CPU)
    bf16_check.forget_cached_results()
    cached = json.loads((bf16_check._cache_path()).read_text())
    (key, results), = [(k, v) for k, v in cached["machines"].items() if torch.__version__ in k]
    assert "cpu:" in key
    assert {u.check.signature for u in uses} <= set(results)
    again = check_layers(probes, CPU)  # read back from disk: the same verdicts
    assert [u.check for u in again] == [u.check for u in uses]


def test_the_real_encoders_at_the_demo_shapes():
    """What the training run checks: R(2+1)D's and the audio ResNet's layers at the demo preset's clip
    shapes (8 frames, so layer 3's temporal convolutions see 2 frames, where the reported defect was)."""
    from avssl.config import resolve
    from avssl.engine.precision import example_input

    cfg = resolve("demo", "xdc", [])
    video = build_encoder("r2plus1d_18", width=0.25)
    uses = check_layers([("video", video, example_input(cfg, "video", 4))], CPU, "channels_last_3d")
    two_frames = [u for u in uses if ", 2, 4, 4)" in u.check.signature and "(3, 1, 1)" in u.check.signature]
    assert two_frames, "layer 3's temporal convolutions at 2 frames are among the checked shapes"
    for u in uses:
        assert u.check.ok == all(e < TOLERANCE for e in u.check.errors.values())
    if not native_bf16(CPU):
        pytest.skip("no native bf16 here: the verdicts above are for emulated bf16")
