"""Every paper preset and evaluation recipe read against the papers' numbers, each with its table.

The numbers below are copied from the papers in ../shared/papers (XDC: xdc_paper.md, Supp. C;
CrissCross: crisscross_paper.txt, App. E and G; AVTS: avts_slides.md), not from the code.
"""
import pytest

from avssl.config import PRESETS, preset, resolve
from avssl.evaluation.grids import FULL_LRS
from avssl.evaluation.recipes import (
    AUDIO_SECONDS, CRISSCROSS_CS, FINETUNE_RECIPES, SVM_RECIPES, finetune_recipe, svm_recipe,
)
from avssl.methods import build_method, validate

PAPER_PRESETS = ["xdc-paper", "xdc-paper-analysis", "xdc-paper-audioset", "xdc-paper-ig", "crisscross-paper",
                 "crisscross-paper-audioset", "avts-paper"]


def schedule(o):
    """Table 9/10's columns of an optim section: es, bs, lr, we/se/te, wd, gamma, e-stop."""
    return (o.epoch_size, o.batch_size, o.lr, (o.warmup_epochs, o.step_epochs, o.max_epochs), o.weight_decay, o.gamma,
            o.early_stop > 0)


# --- XDC (Alwassel et al. 2020) ----------------------------------------------------------------------

def test_xdc_paper_is_table_10_all_dcs_kinetics():
    c = preset("xdc-paper")
    # Table 10, "All DCs / Kinetics": es 1M, bs 32, lr 0.01, we/se/te 10/10/30, wd 1e-4, e-stop yes;
    # "gamma is set to 0.01 for all settings".
    assert schedule(c.optim) == (1_000_000, 32, 0.01, (10, 10, 30), 1e-4, 0.01, True)
    assert c.optim.early_stop == 3  # Table 9: "validation loss is increased in 3 consecutive epochs"
    assert c.optim.optimizer == "sgd" and c.optim.last_iteration_epochs is None  # Supp. C: distributed SGD
    # Table 2: on Kinetics the best k for UCF101 is 256 (74.2).
    assert c.clustering.k == 256 and c.clustering.k_video is None and c.clustering.k_audio is None
    # Sec. 4.1: 8 frames, short side 256, 224x224 crops, 30 fps; 2 s of audio, Q=40 mels, P=100 frames.
    assert (c.video.num_frames, c.video.resize, c.video.crop, c.video.fps) == (8, 256, 224, 30)
    assert (c.audio.duration, c.audio.n_mels, c.audio.num_frames) == (2.0, 40, 100)
    assert (c.video.encoder, c.audio.encoder) == ("r2plus1d_18", "audio_resnet18")  # Sec. 4.1: 18-layer variants
    assert c.iterations == 6  # Sec. 4.2, Study 1: "on average 5 to 6 deep clustering iterations"


def test_xdc_paper_analysis_has_the_cluster_analysis_k_per_modality():
    c = preset("xdc-paper-analysis")
    # Table 14 (XDC audio clusters on Kinetics) runs to #128, Table 15 (video clusters) to #64.
    assert (c.clustering.k_audio, c.clustering.k_video) == (128, 64)
    assert c.clustering.k_for("audio") == 128 and c.clustering.k_for("video") == 64
    assert schedule(c.optim) == schedule(preset("xdc-paper").optim)  # Table 10, Kinetics
    m = build_method(resolve("xdc-paper-analysis", overrides=["video.width=0.125", "audio.width=0.125"]))
    assert m.head_size("audio") == 128 and m.head_size("video") == 64


def test_xdc_paper_audioset_is_table_10_all_dcs_audioset():
    c = preset("xdc-paper-audioset")
    # Table 10, "All DCs / AudioSet": es 2M, bs 32, lr 0.01, we/se/te 10/10/45, wd 1e-4, e-stop yes.
    assert schedule(c.optim) == (2_000_000, 32, 0.01, (10, 10, 45), 1e-4, 0.01, True)
    # Table 2, AudioSet (2M videos): best k 256 for UCF101 (84.9) and HMDB51 (48.8), 128 for ESC50 (85.8).
    assert c.clustering.k == 256
    doc = PRESETS["xdc-paper-audioset"].__doc__
    for stated in ("256 for", "UCF101 (84.9)", "HMDB51 (48.8)", "128 for ESC50 (85.8)"):
        assert stated in doc


def test_xdc_paper_ig_is_table_10_ig_with_the_longer_last_iteration():
    c = preset("xdc-paper-ig")
    # Table 10, "All DCs / IG-Kinetics & IG-Random": es 10M, bs 32, lr 0.01, we/se/te 1/3/10, wd 1e-4, no e-stop.
    assert schedule(c.optim) == (10_000_000, 32, 0.01, (1, 3, 10), 1e-4, 0.01, False)
    # "IG-Kinetics* & IG-Random*" (the last iteration, "3x longer"): es 10M, we/se/te 0/9/30.
    assert c.optim.last_iteration_epochs == [0, 9, 30]
    m = build_method(resolve("xdc-paper-ig", overrides=["video.width=0.125", "audio.width=0.125"]))
    last = c.iterations - 1
    assert m.max_epochs(0) == 10 and m.max_epochs(last) == 30
    o, offset = m.iteration_schedule(last)
    assert (o.warmup_epochs, o.step_epochs, o.max_epochs, o.epoch_size, offset) == (0, 9, 30, 10_000_000, 0)
    o, _ = m.iteration_schedule(0)
    assert (o.warmup_epochs, o.step_epochs, o.max_epochs) == (1, 3, 10)


def test_xdc_finetuning_recipes_are_tables_11_and_12():
    # Table 11: es 40K (HMDB51), 106K (UCF101), 20K (ESC50); bs 32; we/se/te 2/2/8; wd 0.005; no e-stop;
    # gamma 0.01. Table 12, "Full": base rates 0.001, 0.002, 0.004, 0.006, 0.008, 0.01.
    for name, es in (("xdc-hmdb51", 40_000), ("xdc-ucf101", 106_000), ("xdc-esc50", 20_000)):
        r = finetune_recipe(name)
        assert (r.epoch_size, r.batch_size, r.epochs, r.weight_decay, r.gamma) == (es, 32, 8, 0.005, 0.01)
        assert r.lrs == FULL_LRS == (0.001, 0.002, 0.004, 0.006, 0.008, 0.01)
        assert (r.warmup_epochs, r.milestones, r.pool) == (2, (4, 6), "avg")  # 2/2/8: x0.01 at epochs 4 and 6
    r = finetune_recipe("xdc")  # the default: Table 11's shape at ~11 clips per training video
    assert (r.epoch_size, r.clips_per_video, r.batch_size, r.epochs, r.lrs) == (None, 11, 32, 8, (0.01,))
    # we/se/te 2/2/8: warm-up to lr over 2 epochs, lr until 4, lr*0.01 until 6, lr*1e-4 after.
    lrs = [r.learning_rate(0.01, 8, e) for e in (1, 2, 3.9, 4, 5.9, 6, 7.9)]
    assert lrs == pytest.approx([0.005, 0.01, 0.01, 1e-4, 1e-4, 1e-6, 1e-6])


# --- CrissCross (Sarkar and Etemad) ------------------------------------------------------------------

def test_crisscross_paper_is_table_s10_kinetics_sound():
    c = preset("crisscross-paper")
    o = c.optim
    # Table S10, KS: bs 512, es 220K, ep 100, Adam, cosine, lr (video and audio backbone) 0.0002 -> 0,
    # predictor lr 0.002 (both), wd 0.0001, betas 0.9, 0.999 (torch's Adam default).
    assert (o.batch_size, o.epoch_size, o.max_epochs, o.optimizer, o.schedule) == (512, 220_000, 100, "adam", "cosine")
    assert (o.lr, o.lr * c.crisscross.predictor_lr_scale, o.weight_decay) == pytest.approx((2e-4, 2e-3, 1e-4))
    assert o.warmup_epochs == 0 and o.early_stop == 0
    # Sec. 4.1: 16 fps, 8 frames of 112^2; 16 kHz, 2 s, 80 mels, 10 ms hop, FFT window 1024 -> 80 x 200.
    assert (c.video.fps, c.video.num_frames, c.video.crop) == (16, 8, 112)
    a = c.audio
    assert (a.sample_rate, a.duration, a.n_mels, a.hop_length / a.sample_rate, a.n_fft, a.num_frames) == (
        16000, 2.0, 80, 0.01, 1024, 200)


def test_crisscross_paper_audioset_is_table_s10_audioset():
    c = preset("crisscross-paper-audioset")
    o = c.optim
    # Table S10, AS: bs 2048, es 3.5M, ep 100, Adam, cosine, lr 0.0001 -> 0, predictor lr 0.001, wd 0.0001.
    assert (o.batch_size, o.epoch_size, o.max_epochs) == (2048, 3_500_000, 100)
    assert (o.optimizer, o.schedule) == ("adam", "cosine")
    assert (o.lr, o.lr * c.crisscross.predictor_lr_scale, o.weight_decay) == pytest.approx((1e-4, 1e-3, 1e-4))


@pytest.mark.parametrize("name, lr, batch, es, milestones, gamma, frames", [
    # Table S11 (pretrained on Kinetics400): input, es, bs, ep 20, ms, SGD multi-step, lr, gamma, wd 0.0,
    # momentum 0.9, dropout 0.0.
    ("crisscross-ucf101-8f", 0.0005, 64, 95_000, (6, 10, 14), 0.3, 8),
    ("crisscross-ucf101-32f", 0.00007, 32, 95_000, (8, 12, 16), 0.3, 32),
    ("crisscross-hmdb51-8f", 0.0005, 64, 35_000, (6, 10, 14), 0.1, 8),
    ("crisscross-hmdb51-32f", 0.0001, 32, 35_000, (8, 12, 16), 0.3, 32),
])
def test_crisscross_finetuning_recipes_are_table_s11(name, lr, batch, es, milestones, gamma, frames):
    r = finetune_recipe(name)
    assert (r.lrs, r.batch_size, r.epoch_size, r.epochs) == ((lr,), batch, es, 20)
    assert (r.milestones, r.gamma) == (milestones, gamma)
    assert (r.weight_decay, r.momentum, r.warmup_epochs, r.frames) == (0.0, 0.9, 0, frames)
    assert r.pool == "max"  # App. E.2: "replace the final adaptive average-pooling layer with an adaptive max-pooling"
    assert r.learning_rate(lr, 20, milestones[0]) == pytest.approx(lr * gamma)
    assert r.learning_rate(lr, 20, 19.9) == pytest.approx(lr * gamma ** 3)


def test_crisscross_linear_evaluation_settings_are_appendix_e1():
    # App. E.1: "we sweep the cost values between {0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 1}".
    assert CRISSCROSS_CS == (0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 1)
    # Sec. 4.7 / App. E.1: 5-second inputs on ESC50 (one segment per sample), 1-second inputs on DCASE
    # (60 clips per sample); UCF101/HMDB51: 10 clips per sample at test time.
    assert AUDIO_SECONDS == {"esc50": 5.0, "dcase": 1.0}
    esc, dcase, video = svm_recipe("crisscross-esc50"), svm_recipe("crisscross-dcase"), svm_recipe("crisscross")
    assert (esc.audio_seconds, esc.clips, esc.modality) == (5.0, 1, "audio")
    assert (dcase.audio_seconds, dcase.clips, dcase.modality) == (1.0, 60, "audio")
    assert (video.clips, video.modality) == (10, "video")
    assert all(r.cs == CRISSCROSS_CS and r.pool == "crisscross" for r in (esc, dcase, video))


# --- AVTS (Korbar, Tran and Torresani 2018, the slides) ----------------------------------------------

def test_avts_paper_is_the_slides_curriculum():
    c = preset("avts-paper")
    assert c.method == "avts"
    # "Curriculum learning": epochs 1-50 easy negatives, then 51-90 with 75% easy, 25% hard (78.4).
    assert c.avts.stage_epochs == [50, 40]
    assert (c.avts.hard_fraction, c.avts.superhard_fraction) == (0.25, 0.0)
    assert c.optim.early_stop == 0  # fixed stage lengths
    m = build_method(resolve("avts-paper", overrides=["video.width=0.125", "audio.width=0.125"]))
    assert (m.num_iterations(), m.max_epochs(0), m.max_epochs(1)) == (2, 50, 40)
    # Epochs counted through (1-50, 51-90): one optimiser and one schedule over 90 epochs.
    assert m.continues_optimizer
    assert [(o.max_epochs, offset) for o, offset in map(m.iteration_schedule, (0, 1))] == [(90, 0), (90, 50)]
    # The slides give no optimiser, learning rate, batch or epoch size: the docstring says so.
    assert "slides give no optimiser" in PRESETS["avts-paper"].__doc__ and c.optim.epoch_size is None


# --- every paper preset --------------------------------------------------------------------------

@pytest.mark.parametrize("name", PAPER_PRESETS)
def test_every_paper_preset_cites_its_source_and_validates(name):
    doc = PRESETS[name].__doc__
    cites = {"xdc-paper": "Table 10", "xdc-paper-analysis": "Tables 6, 14 and 15", "xdc-paper-audioset": "Table 10",
             "xdc-paper-ig": "Table 10", "crisscross-paper": "Table S10", "crisscross-paper-audioset": "Table S10",
             "avts-paper": "slides"}
    assert cites[name] in doc
    c = resolve(name, check=validate)  # its method's own section too
    assert c.preset == name
    # An epoch size is set wherever the paper gives one; AVTS's slides give none.
    assert (c.optim.epoch_size is None) == (name == "avts-paper")


def test_every_recipe_names_its_source():
    for table in (FINETUNE_RECIPES, SVM_RECIPES):
        for name, r in table.items():
            assert r.source, name
