"""CrissCross's Table 3 common predictor and Table S2's time warp, each as an option, on real code."""
import numpy as np
import pytest
import torch

from avssl.config import resolve
from avssl.data.transforms.time_warp import TimeWarp, warp
from avssl.data.transforms import spectrogram_transform
from avssl.runs import load_method
from avssl.engine.pretrain import pretrain
from avssl.engine.schedule import build_optimizer
from avssl.errors import ConfigError
from avssl.evaluation import sync_accuracy
from avssl.methods import build_method
from avssl.models.common_predictor import CommonPredictor

SHORT_AUDIO = ["audio.duration=1.0", "audio.num_frames=50", "precision=fp32"]  # views fit the 2.5 s tiny world


def test_common_predictor_is_one_head_fed_unit_vectors():
    torch.manual_seed(0)
    cfg = resolve("cpu-tiny", "crisscross", ["crisscross.common_predictor=true"])
    m = build_method(cfg).eval()
    assert isinstance(m.predictors, CommonPredictor)
    separate = build_method(resolve("cpu-tiny", "crisscross"))
    head = sum(p.numel() for p in separate.predictors["video"].parameters())
    assert sum(p.numel() for p in m.predictors.parameters()) == head  # one predictor, not two
    z = torch.randn(4, m.predictors.shared[0].in_features)
    with torch.no_grad():
        # the same head for both modalities, and blind to the scale of its input (L2-normalised first)
        assert torch.equal(m.predictors["video"](z), m.predictors["audio"](z))
        assert torch.allclose(m.predictors["video"](z), m.predictors["audio"](7.0 * z), atol=1e-5)
    # the shared head keeps the predictors' constant 10x learning rate
    opt = build_optimizer(cfg.optim, m.trainable_groups())
    assert {id(p) for p in opt.param_groups[1]["params"]} == {id(p) for p in m.predictors.parameters()}


def test_common_predictor_trains_end_to_end(tiny_world, tmp_path):
    cfg = resolve("cpu-tiny", "crisscross", [*SHORT_AUDIO, "crisscross.common_predictor=true", "optim.max_epochs=1"])
    result = pretrain(cfg, tiny_world, tmp_path / "run", progress=False)
    method = load_method(result.encoders_path)  # rebuilt from the run, with its saved heads
    assert isinstance(method.predictors, CommonPredictor)
    assert any(k.startswith("predictors.shared.") for k in method.head_states())
    s = sync_accuracy(tmp_path / "run", tiny_world, tmp_path / "sync", clips=1, progress=False)
    assert 0.0 <= s["accuracy"] <= 1.0


def test_time_warp_moves_the_frame_at_the_warp_point():
    spec = torch.arange(20, dtype=torch.float32).repeat(3, 1)  # (Q=3, P=20): frame t holds the value t
    out = warp(spec, source=8, target=12)
    assert out.shape == spec.shape
    assert out[0, 12].item() == pytest.approx(8.0)  # the content of frame 8 is now at 12
    assert out[0, 0].item() == 0.0 and out[0, -1].item() == 19.0  # the ends stay
    assert torch.all(out[0, 1:] >= out[0, :-1])  # a warp, not a shuffle: time order is kept
    assert torch.equal(warp(spec, 8, 8), spec)
    rng = np.random.default_rng(0)
    tw = TimeWarp(5)
    warped = [tw(spec, rng) for _ in range(20)]
    assert any(not torch.equal(w, spec) for w in warped)
    assert all(w[0, 0] == 0 and w[0, -1] == 19 for w in warped)
    assert torch.equal(TimeWarp(10)(spec, rng), spec)  # 20 frames cannot be warped by +-10: unchanged
    with pytest.raises(ConfigError, match="window must be an integer >= 0"):
        TimeWarp(-1)


def test_time_warp_is_a_config_option_of_the_training_chain():
    chain = spectrogram_transform(True, time_mask=0, freq_mask=0, time_warp=20)
    assert [type(t).__name__ for t in chain.transforms] == ["TimeWarp"]
    assert spectrogram_transform(False, time_warp=20).transforms == []  # evaluation is never warped
    cfg = resolve("crisscross-paper", "crisscross", ["audio.time_warp=20"])
    assert cfg.audio.time_warp == 20 and resolve("crisscross-paper").audio.time_warp == 0  # off in the paper recipe
    with pytest.raises(ConfigError, match=r"audio.time_warp must be in \[0, audio.num_frames / 2 = 50\)"):
        resolve("cpu-tiny", "crisscross", ["audio.time_warp=60"])
