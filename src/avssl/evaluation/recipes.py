"""The papers' evaluation recipes, by name: what ``avssl eval finetune --recipe NAME`` and ``avssl eval
svm --recipe NAME`` start from (options given explicitly win). Plain data, light to import (the CLI
reads it to build its options); tests/test_presets.py checks every number against the tables.

Fine-tuning (``FINETUNE_RECIPES``), SGD with a warm-up and a multi-step decay:

- ``xdc`` (the default): XDC Supp. C, Table 11's schedule for any dataset: batch 32, we/se/te 2/2/8
  (warm-up 2 epochs, x0.01 at epochs 4 and 6), wd 0.005, one base rate (0.01, Table 12's largest
  "Full" rate; a CPU budget rarely affords the grid). Table 11's epoch sizes are about 11 clips per
  training video (UCF101 106K over its 9,537 split-1 training videos = 11.1, HMDB51 40K / 3,570 = 11.2,
  ESC50 20K / 1,600 = 12.5; the split sizes are the datasets' own, not numbers of the paper), so an
  epoch here is 11 clips per training video, each at a random time.
- ``xdc-ucf101``, ``xdc-hmdb51``, ``xdc-esc50``: the same with Table 11's epoch size of that dataset
  (106K, 40K, 20K clips) and Table 12's "Full" grid of base rates, the best chosen on a validation split.
- ``crisscross-{ucf101,hmdb51}-{8,32}f``: CrissCross App. E.2 / G.2, Table S11 (fine-tuning after
  pretraining on Kinetics400): SGD momentum 0.9, no weight decay, no dropout, no warm-up, 20 epochs,
  the rate times gamma at each milestone, batch 64 for 8-frame and 32 for 32-frame clips, the final
  average pooling replaced by adaptive max-pooling (``pool="max"``).

The momentum of the XDC recipes is not given in the paper (0.9, as CrissCross's). Where a run gives
``epochs`` other than the recipe's, the warm-up and milestones are stretched in proportion.

Linear SVM (``SVM_RECIPES``), CrissCross App. E.1: the cost grid {1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3,
1e-2, 1}, features max-pooled from the final convolution map (``features.pooled``: a (1, 4, 4)
window for video, (1, 3) at stride (1, 2) for audio), 10 clips per video for UCF101/HMDB51, and
audio inputs of 5 s for ESC50 (one segment per clip) and 1 s for DCASE (60 clips per recording;
``AUDIO_SECONDS``; Sec. 4.7 with Table 8, and App. E.1). avssl's SVM trains on
video-level features (the mean of the clips) and chooses C on a validation split; CrissCross trains
on augmented clip-level features (25 clips per video) and reports the best C on test.
"""
from __future__ import annotations

from dataclasses import dataclass

from .grids import DEFAULT_LRS, FULL_LRS, SVM_CS

#: CrissCross App. E.1: "we sweep the cost values between {0.00001, ..., 0.01, 1}".
CRISSCROSS_CS = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 1.0)

#: CrissCross Sec. 4.7 (Table 8) and App. E.1: seconds of audio per input in the sound-classification evaluations.
AUDIO_SECONDS = {"esc50": 5.0, "dcase": 1.0}


@dataclass(frozen=True)
class FinetuneRecipe:
    """A fine-tuning recipe. Epochs, warm-up and milestones in epochs of ``epoch_size`` clips."""

    source: str  # the table it comes from
    lrs: tuple  # base learning rate(s); several are chosen on validation
    epochs: int
    batch_size: int
    epoch_size: int | None  # clips per epoch; None: clips_per_video x the training videos
    clips_per_video: float = 1.0
    warmup_epochs: float = 0.0
    milestones: tuple = ()  # epochs at which the rate is multiplied by gamma
    gamma: float = 0.01
    weight_decay: float = 0.005
    momentum: float = 0.9
    pool: str = "avg"  # avg: the encoder's global average pooling | max: adaptive max-pooling instead
    frames: int | None = None  # video frames per clip (None: as the encoder was trained)

    def learning_rate(self, lr: float, epochs: int, epoch: float) -> float:
        """The rate at fractional ``epoch`` of a run of ``epochs``: linear warm-up to ``lr``, then ``lr``
        times gamma for every milestone passed (warm-up and milestones scaled by epochs / self.epochs)."""
        scale = epochs / self.epochs
        warmup = self.warmup_epochs * scale
        if warmup and epoch < warmup:
            return lr * max(epoch, 1e-3) / warmup
        return lr * self.gamma ** sum(epoch >= m * scale for m in self.milestones)

    def describe(self) -> str:
        ms = "/".join(f"{m:g}" for m in self.milestones)
        return (f"SGD m {self.momentum:g}, wd {self.weight_decay:g}, warm-up {self.warmup_epochs:g}, x{self.gamma:g} "
                f"at epochs {ms} of {self.epochs}, {self.pool} pooling ({self.source})")


def _xdc(source: str, lrs: tuple, epoch_size: int | None, clips_per_video: float = 1.0) -> FinetuneRecipe:
    # Table 11: bs 32, we/se/te 2/2/8 (x0.01 at epochs 4 and 6), wd 0.005, gamma 0.01.
    return FinetuneRecipe(source, lrs, epochs=8, batch_size=32, epoch_size=epoch_size,
                          clips_per_video=clips_per_video, warmup_epochs=2, milestones=(4, 6), gamma=0.01,
                          weight_decay=0.005)


def _crisscross(source: str, lr: float, batch: int, es: int, milestones: tuple, gamma: float,
                frames: int) -> FinetuneRecipe:
    # Table S11: SGD multi-step, 20 epochs, wd 0.0, momentum 0.9, dropout 0.0; App. E.2: adaptive max-pool.
    return FinetuneRecipe(source, (lr,), epochs=20, batch_size=batch, epoch_size=es, warmup_epochs=0,
                          milestones=milestones, gamma=gamma, weight_decay=0.0, momentum=0.9, pool="max",
                          frames=frames)


FINETUNE_RECIPES = {
    "xdc": _xdc("XDC Table 11 shape, ~11 clips per training video", DEFAULT_LRS, None, clips_per_video=11),
    "xdc-ucf101": _xdc("XDC Tables 11-12, UCF101", FULL_LRS, 106_000),
    "xdc-hmdb51": _xdc("XDC Tables 11-12, HMDB51", FULL_LRS, 40_000),
    "xdc-esc50": _xdc("XDC Tables 11-12, ESC50", FULL_LRS, 20_000),
    # name: (source, lr, bs, es, ms, gamma, frames), Table S11's rows
    "crisscross-ucf101-8f": _crisscross("CrissCross Table S11, UCF101 8x224^2",
                                        0.0005, 64, 95_000, (6, 10, 14), 0.3, 8),
    "crisscross-ucf101-32f": _crisscross("CrissCross Table S11, UCF101 32x224^2",
                                         0.00007, 32, 95_000, (8, 12, 16), 0.3, 32),
    "crisscross-hmdb51-8f": _crisscross("CrissCross Table S11, HMDB51 8x224^2",
                                        0.0005, 64, 35_000, (6, 10, 14), 0.1, 8),
    "crisscross-hmdb51-32f": _crisscross("CrissCross Table S11, HMDB51 32x224^2",
                                         0.0001, 32, 35_000, (8, 12, 16), 0.3, 32),
}
DEFAULT_FINETUNE_RECIPE = "xdc"


@dataclass(frozen=True)
class SvmRecipe:
    """A linear-SVM recipe: the C grid, the pooling of the features, clips per video, audio seconds."""

    source: str
    cs: tuple
    pool: str = "avg"  # avg | crisscross (features.pooled)
    clips: int = 10
    audio_seconds: float | None = None  # None: as the encoder was trained
    modality: str | None = None  # the encoder the recipe is for (None: either)


SVM_RECIPES = {
    "avssl": SvmRecipe("avssl's default: video-level features of 10 clips", SVM_CS),
    "crisscross": SvmRecipe("CrissCross App. E.1, UCF101/HMDB51", CRISSCROSS_CS, pool="crisscross", clips=10,
                            modality="video"),
    "crisscross-esc50": SvmRecipe("CrissCross App. E.1, ESC50 (5 s inputs, one segment)", CRISSCROSS_CS,
                                  pool="crisscross", clips=1, audio_seconds=AUDIO_SECONDS["esc50"], modality="audio"),
    "crisscross-dcase": SvmRecipe("CrissCross App. E.1, DCASE (1 s inputs, 60 clips)", CRISSCROSS_CS,
                                  pool="crisscross", clips=60, audio_seconds=AUDIO_SECONDS["dcase"], modality="audio"),
}
DEFAULT_SVM_RECIPE = "avssl"


def _named(table: dict, name: str, what: str):
    if name not in table:
        from ..config import did_you_mean
        from ..errors import ConfigError

        raise ConfigError(f"unknown {what} recipe {name!r}{did_you_mean(str(name), table)} "
                          f"(recipes: {', '.join(table)})")
    return table[name]


def finetune_recipe(name: str) -> FinetuneRecipe:
    return _named(FINETUNE_RECIPES, name, "fine-tuning")


def svm_recipe(name: str) -> SvmRecipe:
    return _named(SVM_RECIPES, name, "SVM")
