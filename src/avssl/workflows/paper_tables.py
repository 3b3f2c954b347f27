"""Every paper table ``avssl reproduce`` can rebuild, as plain data: the datasets it needs (in their own
layouts below ``--data-root``), the pretraining runs, the evaluations that fill its cells, and the
published number of every cell, with the table it comes from. ``avssl.cli.reproduce`` turns a table into
avssl commands; nothing here runs anything.

    avssl reproduce --list

Sources: /work/shared/papers (``xdc_paper.md``: Alwassel et al. 2020; ``crisscross_paper.txt``: Sarkar
and Etemad; ``avts_slides.md``: Korbar et al. 2018). Rows the papers train on data no one can get
(IG-Kinetics, IG-Random, AudioSet-240K's unspecified subset) and rows of other methods are left out;
each table's ``notes`` say which.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    """A dataset in its official layout below ``--data-root``, and the avssl command that builds its
    manifest (``{root}``: the data root, ``{manifest}``: the manifest to write, ``{work}``: the
    reproduction's own data folder)."""

    what: str
    layout: str  # what must be below the data root
    command: tuple
    videos: int | None = None  # the papers' size of it, for the step estimate of presets without an epoch size


DATASETS = {
    "kinetics400": Dataset("Kinetics-400, train split", "kinetics400/train.csv and the clips below kinetics400/",
                           ("data", "kinetics", "{root}/kinetics400/train.csv", "--videos", "{root}/kinetics400",
                            "--out", "{manifest}"), 240_000),  # XDC Table 3
    "kinetics400-val": Dataset("Kinetics-400, validation split", "kinetics400/validate.csv and the clips below "
                               "kinetics400/", ("data", "kinetics", "{root}/kinetics400/validate.csv", "--videos",
                                                "{root}/kinetics400", "--out", "{manifest}")),
    "kinetics-sound": Dataset("Kinetics-Sound (Kinetics-400's audible classes), train and val (as test)",
                              "kinetics400/train.csv, kinetics400/validate.csv and the clips below kinetics400/",
                              ("data", "kinetics-sound", "{root}/kinetics400/train.csv",
                               "{root}/kinetics400/validate.csv", "--val-as-test", "--videos", "{root}/kinetics400",
                               "--out", "{manifest}"), 22_000),  # CrissCross App. C.1
    "audioset": Dataset("AudioSet, balanced + unbalanced train lists",
                        "audioset/balanced_train_segments.csv, audioset/unbalanced_train_segments.csv and the clips "
                        "below audioset/",
                        ("data", "audioset", "{root}/audioset/balanced_train_segments.csv",
                         "{root}/audioset/unbalanced_train_segments.csv", "--videos", "{root}/audioset",
                         "--out", "{manifest}"), 2_000_000),  # XDC Table 3
    "imagenet": Dataset("ImageNet train images, inflated into static clips", "imagenet/train/<class>/<image>.JPEG",
                        ("data", "inflate-images", "{root}/imagenet/train", "--videos", "{work}/imagenet-static",
                         "--out", "{manifest}"), 1_200_000),  # XDC Table 3
    "ucf101": Dataset("UCF101 with its three official splits", "ucf101/UCF-101/<Class>/*.avi and "
                      "ucf101/ucfTrainTestlist/", ("data", "ucf101", "{root}/ucf101/UCF-101", "--splits",
                                                   "{root}/ucf101/ucfTrainTestlist", "--out", "{manifest}")),
    "hmdb51": Dataset("HMDB51 with its three official splits", "hmdb51/videos/<class>/*.avi and "
                      "hmdb51/testTrainMulti_7030_splits/", ("data", "hmdb51", "{root}/hmdb51/videos", "--splits",
                                                             "{root}/hmdb51/testTrainMulti_7030_splits",
                                                             "--out", "{manifest}")),
    "esc50": Dataset("ESC-50 with its five folds", "ESC-50/meta/esc50.csv and ESC-50/audio/",
                     ("data", "esc50", "{root}/ESC-50", "--out", "{manifest}")),
    "dcase": Dataset("DCASE2014 scenes", "dcase2014/ (meta file, evaluation_setup/ folds or class folders)",
                     ("data", "dcase", "{root}/dcase2014", "--out", "{manifest}")),
}


@dataclass(frozen=True)
class Run:
    """One pretraining: ``avssl pretrain --method METHOD --preset PRESET --data <dataset> --set ...``;
    ``long_clips``: then ``avssl retrain-long`` (XDC Sec. 6: the video encoder again on 32-frame clips)."""

    name: str
    method: str
    preset: str
    dataset: str
    sets: tuple = ()
    long_clips: bool = False


@dataclass(frozen=True)
class Cell:
    """One number of a table: ``avssl eval KIND`` of a run's encoders (``run=None``: random encoders of
    ``preset``, the papers' Scratch/Random rows) on a dataset, and the published value (percent)."""

    row: str
    column: str
    run: str | None
    kind: str  # finetune | linear | svm | fusion | sync
    dataset: str
    published: float
    modality: str = "video"
    options: tuple = ()
    metric: str = "accuracy"
    preset: str = "xdc-paper"  # of run=None


@dataclass(frozen=True)
class PaperTable:
    name: str
    source: str  # paper and table, e.g. "XDC Table 1"
    title: str
    runs: tuple
    cells: tuple
    compute: str = "not stated"  # the paper's own hardware, where it says
    notes: str = ""

    @property
    def datasets(self) -> list[str]:
        used = [r.dataset for r in self.runs] + [c.dataset for c in self.cells]
        return list(dict.fromkeys(used))


# --- evaluation settings, by paper ---------------------------------------------------------------

# XDC Sec. 4.1 / Table 1: full fine-tuning, top-1 on split 1, Tables 11-12's recipe per dataset.
_FT1 = {"ucf101": ("--recipe", "xdc-ucf101", "--folds", "1"), "hmdb51": ("--recipe", "xdc-hmdb51", "--folds", "1"),
        "esc50": ("--recipe", "xdc-esc50", "--folds", "1")}
_MOD = {"ucf101": "video", "hmdb51": "video", "esc50": "audio", "dcase": "audio", "kinetics-sound": "video"}
_COL = {"ucf101": "UCF101", "hmdb51": "HMDB51", "esc50": "ESC50", "dcase": "DCASE"}
# XDC Sec. 6: 32-frame fine-tuning at batch 8 and a quarter of Table 12's rates, every official split.
_QUARTER = "0.00025,0.0005,0.001,0.0015,0.002,0.0025"
_FT32 = {d: ("--recipe", f"xdc-{d}", "--frames", "32", "--batch-size", "8", "--lrs", _QUARTER)
         for d in ("ucf101", "hmdb51")}


def _xdc_cells(row: str, run: str | None, values: dict, kind: str = "finetune", options=None,
               preset: str = "xdc-paper", column_suffix: str = "") -> tuple:
    """Cells of one row over UCF101/HMDB51/ESC50; ``values`` maps dataset -> published (None: N/A)."""
    options = options or _FT1
    return tuple(Cell(row, _COL[d] + column_suffix, run, kind, d, v, _MOD[d], options[d], preset=preset)
                 for d, v in values.items() if v is not None)


def _three(ucf, hmdb, esc) -> dict:
    return {"ucf101": ucf, "hmdb51": hmdb, "esc50": esc}


_XDC_K = Run("xdc", "xdc", "xdc-paper", "kinetics400")
_SUPERV_K = Run("superv-kinetics", "supervised", "xdc-paper", "kinetics400")

XDC_TABLE1 = PaperTable(
    "xdc-table1", "XDC Table 1", "Single-modality vs. multi-modal deep clustering (pretrained on Kinetics, "
    "fine-tuned, top-1 on split 1)",
    runs=(Run("sdc", "sdc", "xdc-paper", "kinetics400"), Run("mdc", "mdc", "xdc-paper", "kinetics400"),
          Run("cdc", "cdc", "xdc-paper", "kinetics400"), _XDC_K, _SUPERV_K,
          Run("xdc-video-video", "xdc-video-video", "xdc-paper", "kinetics400"),
          Run("xdc-audio-audio", "xdc-audio-audio", "xdc-paper", "kinetics400")),
    cells=(_xdc_cells("Scratch", None, _three(54.5, 24.1, 54.3)) + _xdc_cells("Superv", "superv-kinetics",
                                                                           _three(90.9, 58.0, 82.3))
           + _xdc_cells("SDC", "sdc", _three(61.8, 31.4, 66.5)) + _xdc_cells("MDC", "mdc", _three(68.4, 37.1, 70.3))
           + _xdc_cells("CDC", "cdc", _three(72.9, 37.5, 74.8)) + _xdc_cells("XDC", "xdc", _three(74.2, 39.0, 78.0))
           + _xdc_cells("same-modality-XDC, 2 visual encoders", "xdc-video-video", _three(61.3, 30.5, None))
           + _xdc_cells("same-modality-XDC, 2 audio encoders", "xdc-audio-audio", _three(None, None, 66.0))),
    compute="64 GPUs for XDC's R(2+1)D-18 (CrissCross Table 6's compute column)",
    notes="Superv: avssl's supervised method on Kinetics' labels, the same encoders and schedule.")

_K_VALUES = {64: (73.8, 36.5, 78.0), 128: (73.1, 39.0, 76.3), 256: (74.2, 38.3, 75.0), 512: (74.0, 37.7, 74.5),
             1024: (72.6, 37.7, 71.5)}  # Table 2, Kinetics (240K videos)
_K_AUDIOSET = {64: (84.1, 47.4, 84.8), 128: (84.3, 47.6, 85.8), 256: (84.9, 48.8, 85.0), 512: (84.4, 48.5, 84.5),
               1024: (84.2, 48.4, 83.0)}  # Table 2, AudioSet (2M videos)

XDC_TABLE2 = PaperTable(
    "xdc-table2", "XDC Table 2", "The number of clusters k (XDC pretrained on Kinetics and AudioSet, fine-tuned, "
    "top-1 on split 1)",
    runs=tuple(Run(f"xdc-kinetics-k{k}", "xdc", "xdc-paper", "kinetics400", (f"clustering.k={k}",)) for k in _K_VALUES)
    + tuple(Run(f"xdc-audioset-k{k}", "xdc", "xdc-paper-audioset", "audioset", (f"clustering.k={k}",))
            for k in _K_AUDIOSET),
    cells=sum((_xdc_cells(f"Kinetics, k={k}", f"xdc-kinetics-k{k}", _three(*v)) for k, v in _K_VALUES.items()), ())
    + sum((_xdc_cells(f"AudioSet, k={k}", f"xdc-audioset-k{k}", _three(*v)) for k, v in _K_AUDIOSET.items()), ()),
    compute="64 GPUs (CrissCross Table 6's compute column for XDC)",
    notes="AudioSet-240K rows left out: the paper does not say which 240K videos.")

XDC_TABLE3 = PaperTable(
    "xdc-table3", "XDC Table 3", "Pretraining data type and size (fine-tuned, top-1 on split 1)",
    runs=(Run("superv-imagenet", "supervised", "xdc-paper", "imagenet"), _SUPERV_K, _XDC_K,
          Run("xdc-audioset", "xdc", "xdc-paper-audioset", "audioset")),
    cells=(_xdc_cells("Scratch", None, _three(54.5, 24.1, 54.3))
           + _xdc_cells("Superv ImageNet", "superv-imagenet", _three(79.9, 44.5, None))
           + _xdc_cells("Superv Kinetics", "superv-kinetics", _three(90.9, 58.0, 82.3))
           + _xdc_cells("XDC Kinetics", "xdc", _three(74.2, 39.0, 78.0))
           + _xdc_cells("XDC AudioSet", "xdc-audioset", _three(84.9, 48.8, 85.8))),
    notes="Superv ImageNet: ImageNet inflated into static clips (avssl data inflate-images). Left out: Superv "
          "AudioSet (multi-label; avssl's supervised method is single-label), AudioSet-240K, IG-Random and "
          "IG-Kinetics (not public).")

_FC = {d: ("--folds", "1") for d in ("ucf101", "hmdb51", "esc50")}
XDC_TABLE5 = PaperTable(
    "xdc-table5", "XDC Table 5", "Full fine-tuning ('all') vs. learning fc-only ('fc'), top-1 on split 1",
    runs=(Run("superv-imagenet", "supervised", "xdc-paper", "imagenet"), _SUPERV_K),
    cells=(_xdc_cells("Random", None, _three(6.0, 7.5, 61.3), "linear", _FC, column_suffix=" fc")
           + _xdc_cells("Random", None, _three(54.5, 24.1, 54.3), column_suffix=" all")
           + _xdc_cells("Superv ImageNet", "superv-imagenet", _three(74.5, 42.8, None), "linear", _FC,
                        column_suffix=" fc")
           + _xdc_cells("Superv ImageNet", "superv-imagenet", _three(79.9, 44.5, None), column_suffix=" all")
           + _xdc_cells("Superv Kinetics", "superv-kinetics", _three(89.7, 61.5, 79.5), "linear", _FC,
                        column_suffix=" fc")
           + _xdc_cells("Superv Kinetics", "superv-kinetics", _three(90.9, 58.0, 82.3), column_suffix=" all")),
    notes="The paper's Random fc cells are mean ± std (6.0 ± 1.0, 7.5 ± 0.6, 61.3 ± 2.5): the mean is listed. "
          "Left out: Superv AudioSet (multi-label) and XDC IG-Random / IG-Kinetics (not public).")

XDC_TABLE7 = PaperTable(
    "xdc-table7", "XDC Table 7", "State of the art: 32-frame fine-tuning on UCF101/HMDB51 (mean over the official "
    "splits), DCASE linear SVM on 60 clips",
    runs=(Run("xdc", "xdc", "xdc-paper", "kinetics400", long_clips=True),
          Run("xdc-audioset", "xdc", "xdc-paper-audioset", "audioset", long_clips=True), _SUPERV_K),
    cells=(_xdc_cells("XDC Kinetics", "xdc-32f", {"ucf101": 86.8, "hmdb51": 52.6}, options=_FT32)
           + _xdc_cells("XDC AudioSet", "xdc-audioset-32f", {"ucf101": 93.0, "hmdb51": 63.7}, options=_FT32)
           + _xdc_cells("Fully supervised Kinetics", "superv-kinetics", {"ucf101": 94.2, "hmdb51": 65.1},
                        options=_FT32)
           + (Cell("XDC AudioSet", "DCASE", "xdc-audioset", "svm", "dcase", 95.0, "audio", ("--clips", "60")),)),
    compute="64 GPUs (CrissCross Table 6's compute column for XDC)",
    notes="XDC Sec. 6: the video encoder is retrained on the last clustering with 32-frame clips (avssl "
          "retrain-long), then fine-tuned with 32 frames at batch 8 and a quarter of Table 12's rates. The "
          "supervised row fine-tunes its own 8-frame encoder with 32 frames. Left out: ESC50 (Table 7b gives no "
          "protocol beyond Table 3's), IG rows, other methods.")

XDC_TABLE13 = PaperTable(
    "xdc-table13", "XDC Table 13", "XDC with an R3D-18 video encoder (fine-tuned, top-1 on split 1)",
    runs=(Run("xdc-r3d", "xdc", "xdc-paper", "kinetics400", ("video.encoder=r3d_18",)),
          Run("superv-r3d", "supervised", "xdc-paper", "kinetics400", ("video.encoder=r3d_18",))),
    cells=(tuple(Cell("Scratch (ResNet3D-18)", _COL[d], None, "finetune", d, v, _MOD[d],
                      _FT1[d] + ("--set", "video.encoder=r3d_18")) for d, v in _three(60.1, 25.7, 54.3).items())
           + _xdc_cells("Superv (ResNet3D-18)", "superv-r3d", _three(87.5, 54.5, 82.3))
           + _xdc_cells("XDC (ResNet3D-18)", "xdc-r3d", _three(68.0, 36.3, 75.5))))

# --- CrissCross ----------------------------------------------------------------------------------

# Sec. 4.1 and App. E.1: design exploration = linear SVM on UCF101 (8 frames) and ESC50 (2 s, 10 clips),
# max-pooled final-convolution features, the App. E.1 C grid; split / fold 1.
_CC_UCF = ("--recipe", "crisscross", "--folds", "1")
_CC_ESC2 = ("--pool", "crisscross", "--cs", "crisscross", "--clips", "10", "--folds", "1")


def _cc_design(row: str, run: str, ucf: float | None, esc: float | None) -> tuple:
    cells = []
    if ucf is not None:
        cells.append(Cell(row, "UCF101", run, "svm", "ucf101", ucf, "video", _CC_UCF))
    if esc is not None:
        cells.append(Cell(row, "ESC50", run, "svm", "esc50", esc, "audio", _CC_ESC2))
    return tuple(cells)


_CC_KS = Run("crisscross-ks", "crisscross", "crisscross-paper", "kinetics-sound")
_CC_LOSSES = {"v1v2": (69.1, None), "a1a2": (None, 62.0), "intra": (69.7, 71.8), "sync": (70.1, 75.8),
              "async": (69.1, 74.8), "sync+intra": (73.8, 78.0), "sync+async": (69.1, 74.8),
              "async+intra": (72.4, 75.3), "v1v2+sync+async": (71.3, 78.5), "a1a2+sync+async": (70.8, 75.3)}

CRISSCROSS_TABLE1 = PaperTable(
    "crisscross-table1", "CrissCross Table 1", "CrissCross and its loss ablations, pretrained on Kinetics-Sound "
    "(linear SVM, UCF101 8 frames / ESC50 2 s)",
    runs=tuple(Run(f"crisscross-ks-{t.replace('+', '-')}", "crisscross", "crisscross-paper", "kinetics-sound",
                   (f"crisscross.losses={t}",)) for t in _CC_LOSSES) + (_CC_KS,),
    cells=sum((_cc_design(f"L_{t}", f"crisscross-ks-{t.replace('+', '-')}", *v) for t, v in _CC_LOSSES.items()), ())
    + _cc_design("L_CrissCross", "crisscross-ks", 74.8, 79.0),
    compute="4 GPUs for Kinetics-Sound (CrissCross Table 6)")

CRISSCROSS_TABLE2 = PaperTable(
    "crisscross-table2", "CrissCross Table 2", "With and without L_async, pretrained on Kinetics-Sound and "
    "Kinetics-400 (linear evaluation)",
    runs=(Run("crisscross-ks-no-async", "crisscross", "crisscross-paper", "kinetics-sound",
              ("crisscross.losses=intra+sync",)), _CC_KS,
          Run("crisscross-k400-no-async", "crisscross", "crisscross-paper", "kinetics400",
              ("crisscross.losses=intra+sync",)),
          Run("crisscross-k400", "crisscross", "crisscross-paper", "kinetics400")),
    cells=(_cc_design("KS, w/o L_async", "crisscross-ks-no-async", 73.8, 78.0)
           + _cc_design("KS, w/ L_async", "crisscross-ks", 74.8, 79.0)
           + _cc_design("K400, w/o L_async", "crisscross-k400-no-async", 75.8, 78.5)
           + _cc_design("K400, w/ L_async", "crisscross-k400", 79.9, 82.0)
           + tuple(Cell(row, f"KS ({b})", run, "fusion", "kinetics-sound", v, options=("--clips", "10"), metric=m)
                   for row, run, values in (("K400, w/o L_async", "crisscross-k400-no-async", (43.2, 53.3, 65.0)),
                                            ("K400, w/ L_async", "crisscross-k400", (47.1, 55.7, 66.7)))
                   for b, m, v in zip(("a", "v", "a+v"), ("audio", "video", "a+v"), values))),
    compute="4 GPUs (Kinetics-Sound), 8 GPUs (Kinetics-400) (CrissCross Table 6)",
    notes="The Kinetics-400 rows use crisscross-paper (Kinetics-Sound's schedule): Table S10's Kinetics-400 row "
          "ends its cosine at 1e-4, which avssl's schedule cannot express. Fusion: App. E.1 pools features with "
          "(1,2,2)/(1,4) windows; avssl's fusion uses the encoders' average-pooled features.")

CRISSCROSS_TABLE3 = PaperTable(
    "crisscross-table3", "CrissCross Table 3", "Predictor and projector variants, pretrained on Kinetics-Sound "
    "(linear SVM)",
    runs=(Run("crisscross-ks-predictor-lr-1x", "crisscross", "crisscross-paper", "kinetics-sound",
              ("crisscross.predictor_lr_scale=1.0",)),
          Run("crisscross-ks-common-predictor", "crisscross", "crisscross-paper", "kinetics-sound",
              ("crisscross.common_predictor=true",)),
          Run("crisscross-ks-2-layer-projector", "crisscross", "crisscross-paper", "kinetics-sound",
              ("crisscross.projector_dims=[2048,2048]",)), _CC_KS),
    cells=(_cc_design("lr_p = lr_b", "crisscross-ks-predictor-lr-1x", 59.0, 62.3)
           + _cc_design("common predictor", "crisscross-ks-common-predictor", 73.6, 75.3)
           + _cc_design("2-layer projector", "crisscross-ks-2-layer-projector", 72.4, 75.0)
           + _cc_design("default", "crisscross-ks", 74.8, 79.0)),
    compute="4 GPUs (CrissCross Table 6)")

_CC_ALL = {"ucf101": ("--recipe", "crisscross"), "hmdb51": ("--recipe", "crisscross"),
           "esc50": ("--recipe", "crisscross-esc50"), "dcase": ("--recipe", "crisscross-dcase")}
_CC_RUNS = {"KS": _CC_KS, "K400": Run("crisscross-k400", "crisscross", "crisscross-paper", "kinetics400"),
            "AS": Run("crisscross-audioset", "crisscross", "crisscross-paper-audioset", "audioset")}
_CC_T4 = {"KS": {"hmdb51": 45.7, "ucf101": 78.1, "esc50": 82.8, "dcase": 93.0},
          "K400": {"hmdb51": 50.0, "ucf101": 83.9, "esc50": 86.8, "dcase": 96.0},
          "AS": {"hmdb51": 56.2, "ucf101": 87.7, "esc50": 90.5, "dcase": 97.0}}

CRISSCROSS_TABLE4 = PaperTable(
    "crisscross-table4", "CrissCross Table 4", "Linear evaluation after pretraining on Kinetics-Sound, Kinetics-400 "
    "and AudioSet (mean over the official splits)",
    runs=tuple(_CC_RUNS.values()),
    cells=tuple(Cell(f"pretrained on {src}", _COL[d], _CC_RUNS[src].name, "svm", d, v, _MOD[d], _CC_ALL[d])
                for src, values in _CC_T4.items() for d, v in values.items()),
    compute="4 GPUs (KS), 8 GPUs (K400, AS) (CrissCross Table 6)",
    notes="Left out: the Kinetics-400 column (a linear layer on 1.2M frozen clips; run avssl eval linear on "
          "kinetics400 / kinetics400-val yourself).")

_CC_FT = {(d, f): ("--recipe", f"crisscross-{d}-{f}f") for d in ("ucf101", "hmdb51") for f in (8, 32)}
CRISSCROSS_TABLE6 = PaperTable(
    "crisscross-table6", "CrissCross Table 6", "Full fine-tuning on UCF101 and HMDB51 with 8- and 32-frame inputs "
    "(mean over the official splits)",
    runs=tuple(_CC_RUNS.values()),
    cells=tuple(Cell(f"pretrained on {src}, {f} frames", _COL[d], _CC_RUNS[src].name, "finetune", d, v, "video",
                     _CC_FT[(d, f)])
                for src, f, values in (("KS", 32, (88.3, 60.5)), ("K400", 8, (86.9, 54.3)), ("K400", 32, (91.5, 64.7)),
                                       ("AS", 8, (89.4, 58.3)), ("AS", 32, (92.4, 67.4)))
                for d, v in zip(("ucf101", "hmdb51"), values)),
    compute="4 GPUs (KS), 8 GPUs (K400, AS) (CrissCross Table 6)",
    notes="Table S11 gives the fine-tuning recipes after Kinetics-400 pretraining; avssl uses them after every "
          "pretraining set.")

CRISSCROSS_TABLE8 = PaperTable(
    "crisscross-table8", "CrissCross Table 8", "Sound classification: linear SVM on ESC50 (5 s inputs) and DCASE "
    "(1 s inputs, 60 clips)",
    runs=(_CC_RUNS["K400"], _CC_RUNS["AS"]),
    cells=tuple(Cell(f"pretrained on {src}", _COL[d], _CC_RUNS[src].name, "svm", d, v, "audio", _CC_ALL[d])
                for src, values in (("K400", (86.8, 96.0)), ("AS", (90.5, 97.0)))
                for d, v in zip(("esc50", "dcase"), values)),
    compute="8 GPUs (CrissCross Table 6)")

# --- AVTS ----------------------------------------------------------------------------------------

_AVTS = Run("avts-curriculum", "avts", "avts-paper", "kinetics400")
AVTS_SYNC = PaperTable(
    "avts-sync", "AVTS slides, 'Curriculum learning' table", "Audio-visual synchronisation accuracy on "
    "Kinetics-400 (easy negatives only), single stage vs. curriculum",
    runs=(Run("avts-single-easy", "avts", "avts-paper", "kinetics400",
              ("avts.stage_epochs=[0,90]", "avts.hard_fraction=0.0")),
          Run("avts-single-mixed", "avts", "avts-paper", "kinetics400", ("avts.stage_epochs=[0,90]",)), _AVTS),
    cells=(Cell("single stage, easy negatives, epochs 1-90", "AVTS-Kinetics", "avts-single-easy", "sync",
                "kinetics400-val", 69.0),
           Cell("single stage, 75% easy / 25% hard, epochs 1-90", "AVTS-Kinetics", "avts-single-mixed", "sync",
                "kinetics400-val", 58.9),
           Cell("curriculum: easy 1-50, then 75% easy / 25% hard 51-90", "AVTS-Kinetics", "avts-curriculum", "sync",
                "kinetics400-val", 78.4)),
    notes="The slides evaluate on Kinetics-400's test set; its labels were never released and avssl uses the "
          "validation split. The architecture is R(2+1)D-18 (the slides' MC3 and I3D are not in avssl).")

AVTS_AUDIO = PaperTable(
    "avts-audio", "AVTS slides, 'Audio Classification' table", "AVTS audio features, pretrained on Kinetics: "
    "linear SVM on ESC-50 and DCASE2014",
    runs=(_AVTS,),
    cells=(Cell("AVTS features, Kinetics", "ESC50", "avts-curriculum", "svm", "esc50", 76.7, "audio"),
           Cell("AVTS features, Kinetics", "DCASE", "avts-curriculum", "svm", "dcase", 91.0, "audio",
                ("--clips", "60"))),
    notes="The slides do not give the SVM protocol: avssl's (10 clips, C on validation; DCASE 60 clips as XDC Sec. 6).")

TABLES = {t.name: t for t in (XDC_TABLE1, XDC_TABLE2, XDC_TABLE3, XDC_TABLE5, XDC_TABLE7, XDC_TABLE13,
                              CRISSCROSS_TABLE1, CRISSCROSS_TABLE2, CRISSCROSS_TABLE3, CRISSCROSS_TABLE4,
                              CRISSCROSS_TABLE6, CRISSCROSS_TABLE8, AVTS_SYNC, AVTS_AUDIO)}
