"""CrissCross end to end on real mp4 files, its optimiser groups, loss variants, preset and config checks."""
import json
import math
import warnings

import pytest
import torch
from conftest import refused_config

from avssl.config import preset, resolve
from avssl.runs import load_encoders
from avssl.engine.pretrain import Pretrainer, pretrain
from avssl.engine.schedule import build_optimizer, learning_rate, set_learning_rate
from avssl.errors import ConfigError
from avssl.evaluation import linear_probe, sync_accuracy
from avssl.methods import build_method, validate

# The tiny world's videos last 2.5 s; 1 s of audio makes a view short enough for the default mild
# relaxation (1.5 views) to fit.
SHORT_AUDIO = ["audio.duration=1.0", "audio.num_frames=50", "precision=fp32"]  # fp32: exact loss sums


def test_pretrain_leaves_encoders_that_evaluation_accepts(tiny_world, tmp_path):
    result = pretrain(resolve("cpu-tiny", "crisscross", SHORT_AUDIO), tiny_world, tmp_path / "run", progress=False)
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    epochs = [r for r in records if not r.get("summary")]
    assert [(r["iteration"], r["epoch"]) for r in epochs] == [(0, 0), (0, 1)]  # one iteration of max_epochs
    for r in epochs:
        assert {"loss_intra", "loss_sync", "loss_async"} <= set(r)
        assert r["loss"] == pytest.approx((r["loss_intra"] + r["loss_sync"] + r["loss_async"]) / 3, abs=1e-5)
        assert -1.0 <= r["val_loss"] <= 1.0
    enc = load_encoders(result.encoders_path)
    assert enc.method == "crisscross" and set(enc.modules) == {"video", "audio"}  # no heads among the encoders
    r = linear_probe(tmp_path / "run", tiny_world, tmp_path / "lin", modality="video", train_clips=2,
                     test_clips=2, lrs=(0.01,), epochs=4, progress=False)
    assert 0.0 <= r["mean"]["accuracy"] <= 1.0
    s = sync_accuracy(tmp_path / "run", tiny_world, tmp_path / "sync", clips=1, progress=False)
    assert 0.0 <= s["accuracy"] <= 1.0


def test_videos_too_short_for_the_views_are_skipped_with_a_reason(tiny_world, tmp_path):
    # 2 s of audio: a mild pair of views needs 3 s, and every tiny-world video lasts 2.5 s
    with pytest.raises(ConfigError, match=r"24 shorter than the method's views \(2.50 s < 3.00 s\)"):
        Pretrainer(resolve("cpu-tiny", "crisscross"), tiny_world, tmp_path / "r", progress=False)
    t = Pretrainer(resolve("cpu-tiny", "crisscross", ["crisscross.relaxation=mixed"]), tiny_world, tmp_path / "r",
                   progress=False)
    assert len(t.entries) == 24  # mixed views need one view's length only


def test_predictors_keep_a_constant_rate_of_ten_times_the_base():
    cfg = resolve("cpu-tiny", "crisscross", ["optim.optimizer=adam", "optim.schedule=cosine", "optim.lr=0.001"])
    m = build_method(cfg)
    opt = build_optimizer(cfg.optim, m.trainable_groups())
    predictors = {id(p) for p in m.predictors.parameters()}
    assert [all(id(p) in predictors for p in g["params"]) for g in opt.param_groups] == [False, True]
    assert len(opt.param_groups[0]["params"]) + len(predictors) == len(list(m.parameters()))
    for epoch in (0.0, 1.0, 1.9):
        set_learning_rate(opt, learning_rate(cfg.optim, epoch))
        assert opt.param_groups[0]["lr"] == pytest.approx(learning_rate(cfg.optim, epoch))  # cosine
        assert opt.param_groups[1]["lr"] == pytest.approx(0.01)  # constant, 10 x 0.001


def _batch(cfg, n=4):
    v = torch.randn(n, 3, cfg.video.num_frames, cfg.video.crop, cfg.video.crop)
    a = torch.randn(n, 1, cfg.audio.n_mels, cfg.audio.num_frames)
    return {"video_1": v, "video_2": v + 0.1 * torch.randn_like(v), "audio_1": a, "audio_2": a.flip(-1)}


@pytest.mark.parametrize("losses, trained", [("v1v2", {"video"}), ("a1a2", {"audio"}),
                                             ("sync+async", {"video", "audio"})])
def test_table1_variants_train_what_they_name(losses, trained):
    torch.manual_seed(0)
    cfg = resolve("cpu-tiny", "crisscross", [f"crisscross.losses={losses}"])
    m = build_method(cfg).train()
    loss, logs = m.loss(_batch(cfg))
    loss.backward()
    assert {k for k in logs if k.startswith("loss_")} == {f"loss_{t}" for t in losses.split("+")}
    for modality in ("video", "audio"):
        grads = [p.grad for p in m.encoders[modality].parameters()]
        assert all(g is not None for g in grads) == (modality in trained)


def test_the_collapse_monitor_needs_two_clips_and_a_single_clip_logs_no_nan():
    torch.manual_seed(0)
    cfg = resolve("cpu-tiny", "crisscross", [])
    m = build_method(cfg).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # std() of one row warns and gives NaN
        _, one = m.loss(_batch(cfg, n=1))
        _, two = m.loss(_batch(cfg, n=2))
    assert not any(k.startswith("z_std") for k in one) and all(math.isfinite(v) for v in one.values())
    assert {"z_std_video", "z_std_audio"} <= set(two) and all(0 < two[k] < 1 for k in ("z_std_video", "z_std_audio"))


def test_paper_preset_is_the_papers_recipe():
    c = preset("crisscross-paper")
    assert (c.method, c.iterations, c.video.num_frames, c.video.fps, c.video.crop) == ("crisscross", 1, 8, 16.0, 112)
    assert (c.audio.n_mels, c.audio.num_frames, c.audio.hop_length, c.audio.duration) == (80, 200, 160, 2.0)
    assert (c.optim.optimizer, c.optim.schedule, c.optim.lr, c.optim.weight_decay) == ("adam", "cosine", 2e-4, 1e-4)
    assert c.crisscross.projector_dims == [2048, 2048, 2048] and c.crisscross.predictor_hidden == 512
    m = build_method(resolve("crisscross-paper", "crisscross", ["video.width=0.25", "audio.width=0.25"]))
    # at quarter width the heads keep Table S7/S8's shapes as configured: 128 -> 2048 -> 2048 -> 2048
    assert [layer.out_features for layer in m.projectors["video"] if hasattr(layer, "out_features")] == [2048] * 3
    assert [layer.out_features for layer in m.predictors["audio"] if hasattr(layer, "out_features")] == [512, 2048]


# --- its config section: checked by the method (CrissCross.config_problems), named with the general problems ---

def test_its_section_is_checked_in_one_message_with_the_general_values():
    refused_config("crisscross", ["crisscross.relaxation=wild", "crisscross.losses=sync+sync",
                                  "crisscross.projector_dims=[0]", "crisscross.predictor_hidden=0",
                                  "crisscross.predictor_lr_scale=0", "video.cutout=2"],
                   "crisscross.relaxation must be one of ('none', 'mild', 'medium', 'extreme', 'mixed'), got 'wild'",
                   "crisscross.losses must join distinct terms of ('v1v2', 'a1a2', 'intra', 'sync', 'async') with "
                   "'+', got 'sync+sync'", "crisscross.projector_dims must be null or a list of layer sizes, got [0]",
                   "crisscross.predictor_hidden must be null or >= 1, got 0",
                   "crisscross.predictor_lr_scale must be > 0, got 0", "video.cutout is a probability in [0, 1], got 2")
    refused_config("crisscross", ["crisscross.losses=intra+bogus"],
                   "crisscross.losses must join distinct terms of ('v1v2', 'a1a2', 'intra', 'sync', 'async') with "
                   "'+', got 'intra+bogus'")
    c = resolve("cpu-small", "crisscross", ["crisscross.losses=v1v2+sync+async"], check=validate)
    assert c.crisscross.terms() == ("v1v2", "sync", "async")


def test_its_section_is_checked_whatever_the_method():
    # a crisscross value is irrelevant to XDC, but a saved config.json holds no impossible value
    refused_config("xdc", ["crisscross.relaxation=wild", "crisscross.losses=sync+sync"],
                   "crisscross.relaxation must be one of", "crisscross.losses must join distinct terms")
