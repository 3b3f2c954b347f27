"""Kinetics-Sound, VGGSound and AudioSet manifests from CSVs in the datasets' own formats and a few real
clips written by the test: presence counts, missing clips, labels, splits, and the cached probe."""
import json
import os

import numpy as np
import pytest

from avssl.cli import main
from avssl.data import youtube_sets
from avssl.data.manifest import load_manifest
from avssl.data.writer import write_av
from avssl.errors import ConfigError
from conftest import place


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    audio = rng.uniform(-0.5, 0.5, 1600).astype(np.float32)
    return write_av(tmp_path_factory.mktemp("clip") / "clip.mp4", video, 8.0, audio, 16000)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(text)


def test_kinetics_sound_keeps_its_classes_and_counts_the_missing(tmp_path, clip):
    write(tmp_path / "k400" / "train.csv",
          "label,youtube_id,time_start,time_end,split\n"
          "playing bagpipes,aaaaaaaaaaa,10,20,train\n"
          "abseiling,bbbbbbbbbbb,0,10,train\n"           # not a Kinetics-Sound class: not listed
          "tapping guitar,ccccccccccc,5,15,train\n"
          "tapping guitar,ddddddddddd,7,17,train\n")     # never downloaded
    write(tmp_path / "k400" / "validate.csv",
          "label,youtube_id,time_start,time_end,split\nplaying bagpipes,eeeeeeeeeee,1,11,val\n")
    root = tmp_path / "videos"
    place(clip, root, "train/playing_bagpipes/aaaaaaaaaaa_000010_000020.mp4", "bbbbbbbbbbb_000000_000010.mp4",
          "ccccccccccc_000005_000015.mp4", "val/eeeeeeeeeee_000001_000011.mp4")
    m, presence = youtube_sets.kinetics_sound([tmp_path / "k400" / "train.csv", tmp_path / "k400" / "validate.csv"],
                                              root)
    assert (presence.listed, presence.present, presence.missing) == (4, 3, ["ddddddddddd_000007_000017"])
    assert presence.by_split == {"train": [3, 2], "val": [1, 1]}
    assert sorted((i.label, i.split) for i in m) == [("playing bagpipes", "train"), ("playing bagpipes", "val"),
                                                     ("tapping guitar", "train")]
    assert "3 of 4 listed clips present (75.0%), 1 missing" in presence.summary()
    m2, _ = youtube_sets.kinetics_sound([tmp_path / "k400" / "train.csv", tmp_path / "k400" / "validate.csv"], root,
                                        val_as_test=True)  # for downstream evaluation on Kinetics-Sound
    assert sorted(i.split for i in m2) == ["test", "train", "train"]
    assert len(youtube_sets.KINETICS_SOUND_CLASSES) == 31 and "playing bagpipes" in youtube_sets.KINETICS_SOUND_CLASSES


def test_vggsound_matches_the_usual_file_names(tmp_path, clip):
    write(tmp_path / "vggsound.csv",
          "---g-f_I2yQ,1,people marching,test\n"
          "--0PQM4-hqg,30,waterfall burbling,train\n"
          "--56QUhyDQM,185,playing tennis,train\n"
          "--5OkAjCI7g,40,people belly laughing,train\n")
    root = tmp_path / "clips"
    # three naming schemes of download scripts; the fourth clip is gone from YouTube
    place(clip, root, "test/---g-f_I2yQ_000001.mp4", "--0PQM4-hqg_30_40.mp4", "train/--56QUhyDQM_000185_000195.mp4")
    m, presence = youtube_sets.vggsound(tmp_path / "vggsound.csv", root)
    assert (presence.listed, presence.present) == (4, 3) and presence.missing == ["--5OkAjCI7g_000040_000050"]
    got = {i.meta["youtube_id"]: (i.label, i.split, i.meta["time_end"]) for i in m}
    assert got == {"---g-f_I2yQ": ("people marching", "test", "11"), "--0PQM4-hqg": ("waterfall burbling", "train", "40"),
                   "--56QUhyDQM": ("playing tennis", "train", "195")}
    write(tmp_path / "bad.csv", "abc,1,label\n")
    with pytest.raises(ConfigError, match="expected youtube_id,start_seconds,label,split"):
        youtube_sets.vggsound(tmp_path / "bad.csv", root)


def test_audioset_lists_with_comments_multi_labels_and_splits(tmp_path, clip):
    header = ("# Segments csv created Sun Mar  5 10:54:31 2017\n"
              "# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=4\n"
              "# YTID, start_seconds, end_seconds, positive_labels\n")
    write(tmp_path / "balanced_train_segments.csv", header +
          '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n'
          '--ZhevVpy1s, 50.000, 60.000, "/m/012xff"\n')
    write(tmp_path / "eval_segments.csv", header + '--4gqARaEJE, 0.000, 10.000, "/m/068hy"\n')
    write(tmp_path / "class_labels_indices.csv",
          'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/t/dd00088,"Gush"\n2,/m/012xff,"Toothbrush"\n3,/m/068hy,Pets\n')
    root = tmp_path / "audioset"
    place(clip, root, "balanced/--PJHxphWEs_30000_40000.mp4", "--PJHxphWEs_30_40.mp4", "eval/Y--4gqARaEJE.mp4")
    m, presence = youtube_sets.audioset([tmp_path / "balanced_train_segments.csv", tmp_path / "eval_segments.csv"],
                                        root, class_csv=tmp_path / "class_labels_indices.csv")
    assert (presence.listed, presence.present, presence.missing) == (3, 2, ["--ZhevVpy1s_000050_000060"])
    rows = {i.meta["youtube_id"]: (i.label, i.split, i.meta["labels"]) for i in m}
    assert rows == {"--PJHxphWEs": (None, "train", "Speech;Gush"), "--4gqARaEJE": (None, "test", "Pets")}


def test_cli_writes_manifest_missing_list_and_probe_cache(tmp_path, clip, capsys):
    write(tmp_path / "vggsound.csv", "aaaaaaaaaaa,0,dog barking,train\nbbbbbbbbbbb,5,dog barking,test\n"
                                     "ccccccccccc,5,cat purring,train\n")
    place(clip, tmp_path / "v", "aaaaaaaaaaa_000000_000010.mp4", "ccccccccccc_000005_000015.mp4")
    write(tmp_path / "v" / "bbbbbbbbbbb_000005_000015.mp4", "not a video")  # downloaded, but broken
    out = tmp_path / "vgg.csv"
    assert main(["data", "vggsound", str(tmp_path / "vggsound.csv"), "--videos", str(tmp_path / "v"),
                 "--out", str(out), "--missing", str(tmp_path / "missing.txt"), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "VGGSound: 3 of 3 listed clips present" in text and "2 readable, 1 unreadable" in text
    assert len(load_manifest(out)) == 3
    cache = json.loads((tmp_path / "vgg.csv.probe.json").read_text())
    assert len(cache["files"]) == 3  # the probe cache later commands on this manifest reuse
    assert (tmp_path / "missing.txt").read_text() == ""
    # no clip at all under the folder: a clear error, exit code 2
    assert main(["data", "vggsound", str(tmp_path / "vggsound.csv"), "--videos", str(tmp_path / "missing.txt"),
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "does not exist or is not a folder" in capsys.readouterr().err
