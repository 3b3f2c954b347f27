"""The bf16 check: it compares every layer with fp32 at the shapes the model runs, detects a wrong
gradient, contains it (that layer in fp32) and remembers its verdict per machine. What a precision plan
makes of the verdicts is in test_precision.py."""
import json

import pytest
import torch
from torch import nn

from avssl.engine import bf16_check
from avssl.engine.bf16_check import TOLERANCE, check_layers, keep_in_fp32
from avssl.engine.precision import native_bf16
from avssl.models import build_encoder
from conftest import wrong_under_bf16_model

CPU = torch.device("cpu")


def test_the_check_finds_the_wrong_layer_and_only_it():
    model = wrong_under_bf16_model()
    uses = check_layers([("net", model, torch.zeros(4, 4, 2, 6, 6))], CPU)
    assert [u.name for u in uses] == ["net.0", "net.3"]  # every conv, in call order
    bad = {u.name: u.check for u in uses if not u.check.ok}
    assert set(bad) == {"net.3"}
    assert bad["net.3"].errors["weight_grad"] > 1e10
    assert bad["net.3"].errors["output"] < TOLERANCE  # the forward is right: only the gradient is wrong
    assert "(4, 8, 2, 6, 6)" in bad["net.3"].signature  # the shape it was checked at is named
    good = next(u.check for u in uses if u.name == "net.0")
    assert all(e < TOLERANCE for e in good.errors.values())


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
