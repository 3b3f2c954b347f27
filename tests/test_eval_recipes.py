"""The papers' evaluation recipes run for real on the tiny world: XDC Table 11's epoch size as the
fine-tuning default, CrissCross Table S11's fine-tuning (adaptive max-pooling, multi-step decay), and
CrissCross App. E.1's SVM settings (max-pooled final-convolution features, 1 s / 5 s audio)."""
import pytest
import torch

from avssl.config import resolve
from avssl.runs import scratch_encoders
from avssl.errors import ConfigError
from avssl.evaluation import finetune, load_source, svm_probe
from avssl.evaluation.features import pooled, with_audio_seconds, with_pool


def final_map(encoder, x):
    """The last convolution block's output, before pooling."""
    if x.dim() == 5:
        x = encoder.stem(x)
    else:
        x = encoder.maxpool(encoder.relu(encoder.bn1(encoder.conv1(x))))
    return encoder.layer4(encoder.layer3(encoder.layer2(encoder.layer1(x))))


def test_pooling_variants_of_the_final_convolution_map():
    enc = scratch_encoders(resolve("cpu-tiny"), seed=0)
    g = torch.Generator().manual_seed(0)
    video, audio = enc.modules["video"].eval(), enc.modules["audio"].eval()
    x = torch.randn(2, 3, 8, 64, 64, generator=g)
    a = torch.randn(2, 1, 80, 200, generator=g)
    with torch.no_grad():
        fv, fa = final_map(video, x), final_map(audio, a)
        # max: adaptive max-pooling (CrissCross App. E.2's fine-tuning)
        assert torch.allclose(pooled(video, "video", "max")(x), fv.amax(dim=(2, 3, 4)))
        assert torch.allclose(pooled(audio, "audio", "max")(a), fa.amax(dim=(2, 3)))
        # crisscross: App. E.1's windows, (1, 4, 4) for video and (1, 3) at stride (1, 2) for audio, flattened
        v = pooled(video, "video", "crisscross")(x)
        assert v.shape == (2, fv.shape[1] * fv.shape[2] * (fv.shape[3] // 4) * (fv.shape[4] // 4))
        assert torch.allclose(v, torch.nn.functional.max_pool3d(fv, (1, 4, 4)).flatten(1))
        u = pooled(audio, "audio", "crisscross")(a)  # 80 x 200 ends at 3 x 7 -> 3 x 3
        assert fa.shape[2:] == (3, 7) and u.shape == (2, fa.shape[1] * 3 * 3)
        assert torch.allclose(pooled(video, "video", "avg")(x), video(x))  # avg: the encoder as trained
    assert isinstance(video.avgpool, torch.nn.AdaptiveAvgPool3d)  # the original is untouched


def test_audio_seconds_scale_the_log_mel_window():
    source = load_source("scratch", "crisscross-paper")  # 2 s of 80 x 200 log-mel (10 ms hop)
    five, one = with_audio_seconds(source, 5.0), with_audio_seconds(source, 1.0)
    assert (five.cfg.audio.duration, five.cfg.audio.num_frames) == (5.0, 500)
    assert (one.cfg.audio.duration, one.cfg.audio.num_frames) == (1.0, 100)
    assert len({source.key, five.key, one.key}) == 3  # separate feature caches
    xdc = load_source("scratch", "cpu-tiny")  # 2 s of 40 x 100 (20 ms hop)
    assert with_audio_seconds(xdc, 1.0).cfg.audio.num_frames == 50
    assert with_pool(xdc, "crisscross").key != xdc.key and with_pool(xdc, "avg") is xdc


def test_finetuning_defaults_to_table_11s_epoch_size(tiny_world, tmp_path):
    r = finetune("scratch", tiny_world, tmp_path, preset="cpu-tiny", modality="audio", epochs=1, batch_size=8,
                 test_clips=1, progress=False)
    (fold,) = r["folds"].values()
    # ~11 clips per training video and epoch (Table 11's epoch sizes over the datasets' training videos)
    assert fold["clips_per_epoch"] == 11 * fold["train_videos"]
    assert fold["train_steps"] == fold["clips_per_epoch"] // 8
    assert r["settings"]["recipe"] == "xdc" and r["settings"]["pool"] == "avg"


def test_crisscross_finetuning_recipe_runs_with_max_pooling(tiny_world, tmp_path):
    r = finetune("scratch", tiny_world, tmp_path, preset="cpu-tiny", recipe="crisscross-ucf101-8f", epochs=1,
                 epoch_size=16, batch_size=8, test_clips=1, progress=False)
    s = r["settings"]
    assert (s["recipe"], s["pool"], s["frames"], s["lrs"]) == ("crisscross-ucf101-8f", "max", 8, [0.0005])
    assert "wd 0" in s["schedule"] and "x0.3 at epochs 6/10/14 of 20" in s["schedule"]
    assert 0.0 <= r["mean"]["accuracy"] <= 1.0
    with pytest.raises(ConfigError, match="avg or max"):
        finetune("scratch", tiny_world, tmp_path / "x", preset="cpu-tiny", pool="crisscross", progress=False)


def test_crisscross_svm_recipe_on_one_second_audio(tiny_world, tmp_path):
    r = svm_probe("scratch", tiny_world, tmp_path, preset="cpu-tiny", modality="audio", recipe="crisscross-dcase",
                  clips=2, progress=False)
    s = r["settings"]
    assert (s["recipe"], s["pool"], s["audio_seconds"], s["clips"]) == ("crisscross-dcase", "crisscross", 1.0, 2)
    assert s["Cs"] == [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 1.0]
    assert "1 s of audio" in r["encoders"] and "crisscross-pooled" in r["encoders"]
    assert 0.0 <= r["mean"]["accuracy"] <= 1.0
    with pytest.raises(ConfigError, match="modality=audio"):
        svm_probe("scratch", tiny_world, tmp_path / "v", preset="cpu-tiny", recipe="crisscross-esc50", progress=False)
