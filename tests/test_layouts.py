"""Official dataset layouts -> manifests, each on a tiny fake copy of the real layout.

The split lists are written in the official formats (Windows line ends where the originals have
them); the media are real files written with write_av and copied under the official names.
"""
import logging
import os
import shutil

import numpy as np
import pytest

from avssl.data import layouts
from avssl.data.manifest import Manifest
from avssl.data.writer import write_av
from avssl.errors import ConfigError
from conftest import place, run_data_command


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """One real tiny file per extension the layouts use."""
    folder = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    audio = rng.uniform(-0.5, 0.5, 1600).astype(np.float32)
    return {
        ext: write_av(folder / f"clip{ext}", None if ext in (".wav", ".m4a") else video, 8.0, audio, 16000)
        for ext in (".avi", ".mp4", ".wav", ".m4a")
    }


def write_lines(path, lines, newline="\n"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(newline.join(lines) + newline)


def by_name(manifest):
    return {os.path.basename(item.path): item for item in manifest}


# --- UCF101 --------------------------------------------------------------------------------------

UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups"]


def ucf_name(cls, group):
    # The official file names spell the second class "HandStandPushups".
    return f"{cls}/v_{cls.replace('Handstand', 'HandStand')}_g{group:02d}_c01.avi"


@pytest.fixture
def ucf(tmp_path, media):
    """Two classes, groups 1-3; fold K tests on group K. Group 3 of HandstandPushups is not on disk."""
    splits = tmp_path / "ucfTrainTestlist"
    write_lines(splits / "classInd.txt", [f"{i} {c}" for i, c in enumerate(UCF_CLASSES, 1)], "\r\n")
    for k in (1, 2, 3):
        train = [f"{ucf_name(c, g)} {i}" for i, c in enumerate(UCF_CLASSES, 1) for g in (1, 2, 3) if g != k]
        write_lines(splits / f"trainlist0{k}.txt", train, "\r\n")
        write_lines(splits / f"testlist0{k}.txt", [ucf_name(c, k) for c in UCF_CLASSES], "\r\n")
    videos = tmp_path / "UCF-101"
    place(media, videos, *(ucf_name(c, g) for c in UCF_CLASSES for g in (1, 2, 3) if (c, g) != (UCF_CLASSES[1], 3)))
    return videos, splits


def test_ucf101_labels_splits_and_all_folds(ucf, caplog):
    videos, splits = ucf
    with caplog.at_level(logging.WARNING, logger="avssl.data"):
        m = layouts.ucf101(videos, splits)
    items = by_name(m)
    assert len(m) == 5 and m.source == str(videos)
    assert [i.path for i in m] == sorted(i.path for i in m)  # not the order of the lists
    assert "1 of 6 files listed" in caplog.text and "v_HandStandPushups_g03_c01.avi" in caplog.text
    first = items["v_ApplyEyeMakeup_g01_c01.avi"]
    assert first.path == str(videos / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")
    assert first.label == "ApplyEyeMakeup"
    assert first.split == "test"
    assert first.meta == {"split_1": "test", "split_2": "train", "split_3": "train"}
    assert items["v_HandStandPushups_g02_c01.avi"].label == "HandstandPushups"
    assert m.class_names() == UCF_CLASSES
    assert sorted(i.split for i in m) == ["test", "test", "train", "train", "train"]

    fold2 = by_name(layouts.ucf101(videos, splits, fold=2))
    assert fold2["v_ApplyEyeMakeup_g01_c01.avi"].split == "train"
    assert fold2["v_ApplyEyeMakeup_g02_c01.avi"].split == "test"


def test_ucf101_finds_videos_copied_flat(ucf):
    videos, splits = ucf
    flat = videos.parent / "flat"
    flat.mkdir()
    for path in videos.rglob("*.avi"):
        shutil.move(str(path), str(flat / path.name))
    m = layouts.ucf101(flat, splits)
    assert len(m) == 5 and all(os.path.dirname(i.path) == str(flat) for i in m)
    assert by_name(m)["v_ApplyEyeMakeup_g01_c01.avi"].label == "ApplyEyeMakeup"


def test_ucf101_errors(ucf, tmp_path):
    videos, splits = ucf
    with pytest.raises(ConfigError, match=r"fold 4 is not among the official folds \[1, 2, 3\]"):
        layouts.ucf101(videos, splits, fold=4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="none of the 6 files listed"):
        layouts.ucf101(tmp_path / "empty", splits)
    with pytest.raises(ConfigError, match="has no split lists"):
        layouts.ucf101(videos, tmp_path / "empty")
    write_lines(splits / "classInd.txt", [f"{i} {c}" for i, c in enumerate(reversed(UCF_CLASSES), 1)])
    with pytest.raises(ConfigError, match="has class index 1, which .* names 'HandstandPushups'"):
        layouts.ucf101(videos, splits)


# --- HMDB51 --------------------------------------------------------------------------------------

HMDB_VIDEOS = {
    "brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "Brushing_Hair!_brush_hair_h_cm_np1_le_goo_1.avi",
                   "red_head_brush_hair_u_cm_np1_fr_goo_2.avi"],
    "cartwheel": ["Bodenturnen_cartwheel_f_cm_np1_le_med_0.avi", "Cartwheel_(Rad)_cartwheel_f_cm_np1_ri_med_1.avi",
                  "park_cartwheel_f_cm_np1_ba_bad_2.avi"],
}


@pytest.fixture
def hmdb(tmp_path, media):
    """Per fold K, video K-1 of each class is test (2), video K mod 3 train (1) and the third unused
    (0); a fourth video per class is unused in every fold."""
    splits = tmp_path / "testTrainMulti_7030_splits"
    for cls, names in HMDB_VIDEOS.items():
        unused = f"unused_{cls}_0.avi"
        for k in (1, 2, 3):
            codes = {names[k - 1]: 2, names[k % 3]: 1, names[(k + 1) % 3]: 0, unused: 0}
            write_lines(splits / f"{cls}_test_split{k}.txt", [f"{n} {c} " for n, c in codes.items()])
        place(media, tmp_path / "hmdb51", *(f"{cls}/{n}" for n in names + [unused]))
    return tmp_path / "hmdb51", splits


def test_hmdb51_labels_splits_and_all_folds(hmdb):
    videos, splits = hmdb
    m = layouts.hmdb51(videos, splits)
    items = by_name(m)
    assert len(m) == 6  # the videos unused in every fold are left out
    assert not any(name.startswith("unused") for name in items)
    first = items["April_09_brush_hair_u_nm_np1_ba_goo_0.avi"]
    assert first.path == str(videos / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_0.avi")
    assert first.label == "brush_hair" and first.split == "test"
    assert first.meta == {"split_1": "test", "split_2": "", "split_3": "train"}
    assert items["Cartwheel_(Rad)_cartwheel_f_cm_np1_ri_med_1.avi"].meta == {
        "split_1": "train", "split_2": "test", "split_3": ""
    }
    assert sorted(i.split or "" for i in m) == ["", "", "test", "test", "train", "train"]
    fold3 = by_name(layouts.hmdb51(videos, splits, fold=3))
    assert fold3["red_head_brush_hair_u_cm_np1_fr_goo_2.avi"].split == "test"


def test_hmdb51_accepts_flat_video_folder_and_skips_missing(hmdb, caplog):
    videos, splits = hmdb
    flat = videos.parent / "flat"
    flat.mkdir()
    for path in videos.rglob("*.avi"):
        shutil.move(str(path), str(flat / path.name))
    os.remove(flat / "park_cartwheel_f_cm_np1_ba_bad_2.avi")
    with caplog.at_level(logging.WARNING, logger="avssl.data"):
        m = layouts.hmdb51(flat, splits)
    assert len(m) == 5 and "1 of 6 files listed" in caplog.text
    assert by_name(m)["Bodenturnen_cartwheel_f_cm_np1_le_med_0.avi"].label == "cartwheel"


def test_hmdb51_errors(hmdb, tmp_path):
    videos, splits = hmdb
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no HMDB51 split files"):
        layouts.hmdb51(videos, tmp_path / "empty")
    with pytest.raises(ConfigError, match="none of the 6 files"):
        layouts.hmdb51(tmp_path / "empty", splits)
    write_lines(splits / "brush_hair_test_split1.txt", ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi 3"])
    with pytest.raises(ConfigError, match="expected '<video> 0|1|2'"):
        layouts.hmdb51(videos, splits)


# --- ESC-50 --------------------------------------------------------------------------------------


@pytest.fixture
def esc(tmp_path, media):
    rows = [
        ("1-100032-A-0.wav", 1, 0, "dog", "True", "100032", "A"),
        ("2-100648-A-43.wav", 2, 43, "chirping_birds", "False", "100648", "A"),
        ("3-102908-A-1.wav", 3, 1, "rooster", "True", "102908", "A"),
        ("4-107125-A-0.wav", 4, 0, "dog", "True", "107125", "A"),
        ("5-103415-A-1.wav", 5, 1, "rooster", "True", "103415", "A"),
    ]
    header = "filename,fold,target,category,esc10,src_file,take"
    write_lines(tmp_path / "ESC-50-master" / "meta" / "esc50.csv", [header] + [",".join(map(str, r)) for r in rows])
    place(media, tmp_path / "ESC-50-master" / "audio", *(r[0] for r in rows[:4]))  # fold 5's clip is missing
    return tmp_path / "ESC-50-master"


def test_esc50_folds_labels_and_official_columns(esc, caplog):
    with caplog.at_level(logging.WARNING, logger="avssl.data"):
        m = layouts.esc50(esc, fold=2)
    assert "1 of 5 files listed" in caplog.text
    items = by_name(m)
    assert list(items) == ["1-100032-A-0.wav", "2-100648-A-43.wav", "3-102908-A-1.wav", "4-107125-A-0.wav"]
    bird = items["2-100648-A-43.wav"]
    assert bird.path == str(esc / "audio" / "2-100648-A-43.wav")
    assert bird.label == "chirping_birds" and bird.split == "test"
    assert bird.meta == {
        "fold": "2", "target": "43", "esc10": "False", "src_file": "100648", "take": "A",
        "split_1": "train", "split_2": "test", "split_3": "train", "split_4": "train", "split_5": "train",
    }
    assert [i.split for i in m].count("train") == 3
    assert m.class_names() == ["chirping_birds", "dog", "rooster"]


def test_esc50_errors(esc, tmp_path):
    with pytest.raises(ConfigError, match="fold 6 is not among"):
        layouts.esc50(esc, fold=6)
    with pytest.raises(ConfigError, match="esc50.csv does not exist"):
        layouts.esc50(tmp_path)
    write_lines(esc / "meta" / "esc50.csv", ["filename,target", "a.wav,0"])
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \['fold', 'category'\]"):
        layouts.esc50(esc)


# --- DCASE ---------------------------------------------------------------------------------------


def test_dcase_2016_style_meta_txt_and_fold_lists_without_headers(tmp_path, media):
    root = tmp_path / "TUT-acoustic-scenes-2016-development"
    meta = [("audio/a001_0_30.wav", "beach"), ("audio/a001_30_60.wav", "beach"), ("audio/b002_0_30.wav", "bus")]
    write_lines(root / "meta.txt", [f"{f}\t{s}\t{f[6:10]}" for f, s in meta])
    setup = root / "evaluation_setup"
    write_lines(setup / "fold1_train.txt", [f"{f}\t{s}" for f, s in meta[:2]])
    write_lines(setup / "fold1_evaluate.txt", [f"{f}\t{s}" for f, s in meta[2:]])
    write_lines(setup / "fold1_test.txt", [f for f, _ in meta[2:]])  # unlabelled copy of evaluate: ignored
    write_lines(setup / "fold2_train.txt", [f"{f}\t{s}" for f, s in meta[1:]])
    write_lines(setup / "fold2_evaluate.txt", [f"{f}\t{s}" for f, s in meta[:1]])
    place(media, root, *(f for f, _ in meta))

    m = layouts.dcase(root)
    items = by_name(m)
    assert [(n, i.label, i.split) for n, i in items.items()] == [
        ("a001_0_30.wav", "beach", "train"), ("a001_30_60.wav", "beach", "train"), ("b002_0_30.wav", "bus", "test")
    ]
    assert items["a001_0_30.wav"].meta == {"split_1": "train", "split_2": "test"}
    assert items["a001_0_30.wav"].path == str(root / "audio" / "a001_0_30.wav")
    assert [i.split for i in layouts.dcase(root, fold=2)] == ["test", "train", "train"]
    with pytest.raises(ConfigError, match="fold 3 is not among"):
        layouts.dcase(root, fold=3)


def test_dcase_2019_style_headers_and_files_outside_the_folds(tmp_path, media):
    root = tmp_path / "TAU-urban-acoustic-scenes-2019-development"
    write_lines(root / "meta.csv", [
        "filename\tscene_label\tidentifier\tsource_label",
        "audio/airport-lisbon-1000-40000-a.wav\tairport\tlisbon-1000\ta",
        "audio/park-paris-99-1-a.wav\tpark\tparis-99\ta",
        "audio/park-paris-99-2-a.wav\tpark\tparis-99\ta",
    ])
    setup = root / "evaluation_setup"
    write_lines(setup / "fold1_train.csv", ["filename\tscene_label", "audio/airport-lisbon-1000-40000-a.wav\tairport"])
    write_lines(setup / "fold1_evaluate.csv", ["filename\tscene_label", "audio/park-paris-99-1-a.wav\tpark"])
    place(media, root, "audio/airport-lisbon-1000-40000-a.wav", "audio/park-paris-99-1-a.wav",
          "audio/park-paris-99-2-a.wav")

    m = layouts.dcase(root)  # fold=None: the first fold there is
    assert [(os.path.basename(i.path), i.label, i.split, i.meta) for i in m] == [
        ("airport-lisbon-1000-40000-a.wav", "airport", "train", {"split_1": "train"}),
        ("park-paris-99-1-a.wav", "park", "test", {"split_1": "test"}),
        ("park-paris-99-2-a.wav", "park", None, {"split_1": ""}),  # in the meta file but in no fold
    ]


def test_dcase_class_folders_without_any_list(tmp_path, media):
    place(media, tmp_path / "scenes", "audio/beach/x.wav", "audio/bus/y.wav")
    m = layouts.dcase(tmp_path / "scenes")
    assert [(os.path.basename(i.path), i.label, i.split, i.meta) for i in m] == [
        ("x.wav", "beach", None, {}), ("y.wav", "bus", None, {})
    ]
    with pytest.raises(ConfigError, match="no evaluation_setup"):
        layouts.dcase(tmp_path / "scenes", fold=1)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ConfigError, match="no meta.csv/meta.txt"):
        layouts.dcase(tmp_path / "nothing")


# --- Kinetics ------------------------------------------------------------------------------------


def test_kinetics_finds_clips_in_every_usual_folder_layout(tmp_path, media, caplog):
    csv_path = tmp_path / "kinetics400" / "train.csv"
    write_lines(csv_path, [
        "label,youtube_id,time_start,time_end,split",
        '"air drumming",---QUuC4vJs,18,28,train',
        "abseiling,-3B32lodo2M,59,69,train",
        "abseiling,0347ZoDXyP0,3,13,val",
        "zumba,zzzMISSING0,0,10,test",
        "zumba,Zz8Ytk5SxCI,1,11,test",
    ])
    root = tmp_path / "videos"
    place(media, root,
          "train/air_drumming/---QUuC4vJs_000018_000028.mp4",  # <split>/<label>/
          "abseiling/-3B32lodo2M_000059_000069.mp4",            # <label>/
          "val/0347ZoDXyP0_000003_000013.mp4",                  # <split>/
          "Zz8Ytk5SxCI_000001_000011.mp4",                      # flat
          "Zz8Ytk5SxCI_000001_000011.m4a")                      # extracted audio, same stem: not a clip
    with caplog.at_level(logging.WARNING, logger="avssl.data"):
        m = layouts.kinetics(csv_path, root)
    assert "1 of 5 files listed" in caplog.text and "zzzMISSING0_000000_000010" in caplog.text
    assert m.source == str(root)
    got = {os.path.relpath(i.path, root): (i.label, i.split) for i in m}
    assert got == {
        os.path.join("train", "air_drumming", "---QUuC4vJs_000018_000028.mp4"): ("air drumming", "train"),
        os.path.join("abseiling", "-3B32lodo2M_000059_000069.mp4"): ("abseiling", "train"),
        os.path.join("val", "0347ZoDXyP0_000003_000013.mp4"): ("abseiling", "val"),
        "Zz8Ytk5SxCI_000001_000011.mp4": ("zumba", "test"),
    }
    assert by_name(m)["0347ZoDXyP0_000003_000013.mp4"].meta == {
        "youtube_id": "0347ZoDXyP0", "time_start": "3", "time_end": "13"
    }


def test_kinetics_test_csv_without_labels(tmp_path, media):
    write_lines(tmp_path / "test.csv", ["youtube_id,time_start,time_end,split", "abc,0,10,test"])
    place(media, tmp_path / "videos", "test/abc_000000_000010.mp4")
    m = layouts.kinetics(tmp_path / "test.csv", tmp_path / "videos")
    assert [(i.label, i.split) for i in m] == [(None, "test")]


def test_kinetics_errors(tmp_path, media):
    write_lines(tmp_path / "k.csv", ["label,youtube_id,time_start,time_end,split", "a,abc,0,10,train"])
    (tmp_path / "videos").mkdir()
    with pytest.raises(ConfigError, match="none of the 1 files"):
        layouts.kinetics(tmp_path / "k.csv", tmp_path / "videos")
    with pytest.raises(ConfigError, match="does not exist or is not a folder"):
        layouts.kinetics(tmp_path / "k.csv", tmp_path / "nope")
    write_lines(tmp_path / "bad.csv", ["label,youtube_id,start,end", "a,abc,0,10"])
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \['time_start', 'time_end', 'split'\]"):
        layouts.kinetics(tmp_path / "bad.csv", tmp_path / "videos")


# --- avssl data <layout> -------------------------------------------------------------------------


def test_ucf101_and_hmdb51_commands_write_the_chosen_fold(ucf, hmdb, tmp_path, capsys):
    videos, splits = ucf
    out = tmp_path / "out" / "ucf.csv"
    assert run_data_command(["data", "ucf101", str(videos), "--splits", str(splits), "--fold", "2", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: 5 items; 2 classes; split test 2, train 3"
    m = Manifest.read(out)
    assert m.class_names() == UCF_CLASSES
    second = by_name(m)["v_ApplyEyeMakeup_g02_c01.avi"]
    assert second.split == "test" and second.meta == {"split_1": "train", "split_2": "test", "split_3": "train"}

    videos, splits = hmdb
    assert run_data_command(["data", "hmdb51", str(videos), "--splits", str(splits), "--out", str(out)]) == 0
    assert "6 items; 2 classes; split test 2, train 2" in capsys.readouterr().out
    assert Manifest.read(out).class_names() == ["brush_hair", "cartwheel"]


def test_esc50_dcase_and_kinetics_commands(esc, tmp_path, media, capsys):
    out = tmp_path / "m.csv"
    assert run_data_command(["data", "esc50", str(esc), "--fold", "4", "--out", str(out)]) == 0
    assert [i.split for i in Manifest.read(out)] == ["train", "train", "train", "test"]

    place(media, tmp_path / "scenes", "audio/beach/x.wav", "audio/bus/y.wav")
    assert run_data_command(["data", "dcase", str(tmp_path / "scenes"), "--out", str(out)]) == 0
    assert Manifest.read(out).class_names() == ["beach", "bus"]

    write_lines(tmp_path / "k.csv", ["label,youtube_id,time_start,time_end,split", "a,abc,0,10,train"])
    place(media, tmp_path / "clips", "train/a/abc_000000_000010.mp4")
    capsys.readouterr()
    argv = ["data", "kinetics", str(tmp_path / "k.csv"), "--videos", str(tmp_path / "clips"), "--out", str(out)]
    assert run_data_command(argv) == 0
    assert capsys.readouterr().out.strip() == f"{out}: 1 items; 1 classes; split train 1"
    assert Manifest.read(out)[0].path == str(tmp_path / "clips" / "train" / "a" / "abc_000000_000010.mp4")


def test_layout_command_errors_write_nothing(ucf, tmp_path):
    videos, splits = ucf
    out = tmp_path / "never.csv"
    with pytest.raises(ConfigError, match="fold 9 is not among"):
        run_data_command(["data", "ucf101", str(videos), "--splits", str(splits), "--fold", "9", "--out", str(out)])
    assert not out.exists()
    with pytest.raises(SystemExit):  # --out is required
        run_data_command(["data", "esc50", str(tmp_path)])
