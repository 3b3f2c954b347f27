"""Manifests: CSV reading and writing, folder scans, splits and labels, odd file names."""
import logging
import os
import shutil

import numpy as np
import pytest

from avssl.data.manifest import (
    MEDIA_EXTENSIONS,
    Manifest,
    ManifestItem,
    find_media_files,
    load_manifest,
)
from avssl.data.writer import write_av
from avssl.errors import ConfigError
from conftest import place, run_data_command


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """One real, tiny mp4 that the tests copy under whatever names they need."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    return write_av(path, video, 8.0, rng.uniform(-0.5, 0.5, 1600).astype(np.float32), 16000)


def write_text(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# --- reading -------------------------------------------------------------------------------------


def test_read_resolves_relative_paths_and_keeps_extra_columns(tmp_path):
    (tmp_path / "lists").mkdir()
    csv_path = write_text(
        tmp_path / "lists" / "m.csv",
        "path,label,split,source\n"
        "../videos/a.mp4,dog,train,yt\n"
        "/abs/b.mp4,,test,\n"
        "c.wav,cat,,lab\n",
    )
    m = Manifest.read(csv_path)
    assert m.source == str(csv_path)
    assert [item.path for item in m] == [
        str(tmp_path / "videos" / "a.mp4"), "/abs/b.mp4", str(tmp_path / "lists" / "c.wav")
    ]
    assert [item.label for item in m] == ["dog", None, "cat"]
    assert [item.split for item in m] == ["train", "test", None]
    assert [item.meta for item in m] == [{"source": "yt"}, {"source": ""}, {"source": "lab"}]


def test_read_accepts_spreadsheet_quirks_and_short_rows(tmp_path):
    csv_path = tmp_path / "m.csv"
    # Spreadsheets add the byte-order mark, trailing commas (unnamed columns) and ",," blank rows.
    csv_path.write_bytes("\ufeffpath,label,\na.mp4\n\n,,\nb.mp4,dog,\n".encode("utf-8"))
    m = Manifest.read(csv_path)
    assert [os.path.basename(item.path) for item in m] == ["a.mp4", "b.mp4"]
    assert [item.label for item in m] == [None, "dog"]
    assert m[1].meta == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("file,label\na.mp4,dog\n", "no 'path' column; found columns: 'file', 'label'"),
        ("path,label,label\na.mp4,dog,cat\n", "repeats column(s) ['label']"),
        ("path,label\n", "has a header ('path', 'label') but no rows"),
        ("path,label\na.mp4,dog,extra\n", "line 2: 3 fields but the header has 2"),
        ("path,label\n ,dog\n", "line 2: empty 'path'"),
    ],
)
def test_read_rejects_bad_csv_naming_the_file(tmp_path, text, message):
    csv_path = write_text(tmp_path / "bad.csv", text)
    with pytest.raises(ConfigError) as err:
        Manifest.read(csv_path)
    assert str(csv_path) in str(err.value)
    assert message in str(err.value)


def test_read_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Manifest.read(tmp_path / "nope.csv")


# --- writing -------------------------------------------------------------------------------------


def test_write_read_round_trip_with_relative_and_outside_paths(tmp_path):
    out_dir = tmp_path / "data"
    items = [
        ManifestItem(out_dir / "videos" / "a.mp4", "dog", "train", {"split_1": "train", "split_2": ""}),
        ManifestItem(tmp_path / "elsewhere" / "b.mp4", None, None, {"split_2": "test"}),
    ]
    csv_path = out_dir / "sub" / "m.csv"
    Manifest(items).write(csv_path)

    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "path,label,split,split_1,split_2"
    # Below the CSV's folder? No: the CSV is in data/sub, the video in data/videos, so it is absolute.
    assert lines[1].startswith(str(out_dir / "videos" / "a.mp4") + ",dog,train,train,")
    back = Manifest.read(csv_path)
    assert [(i.path, i.label, i.split) for i in back] == [(i.path, i.label, i.split) for i in items]
    assert [i.meta for i in back] == [{"split_1": "train", "split_2": ""}, {"split_1": "", "split_2": "test"}]
    assert [p.name for p in (out_dir / "sub").iterdir()] == ["m.csv"]  # no temporary file left behind


def test_write_stores_paths_below_the_csv_folder_relatively(tmp_path):
    m = Manifest([ManifestItem(tmp_path / "v" / "a.mp4", "dog")])
    m.write(tmp_path / "m.csv")
    assert (tmp_path / "m.csv").read_text().splitlines()[1] == os.path.join("v", "a.mp4") + ",dog,"
    # The manifest moves together with its data.
    shutil.move(str(tmp_path), str(tmp_path.parent / "moved"))
    moved = Manifest.read(tmp_path.parent / "moved" / "m.csv")
    assert moved[0].path == str(tmp_path.parent / "moved" / "v" / "a.mp4")


def test_write_replaces_an_existing_manifest(tmp_path):
    Manifest([ManifestItem(tmp_path / "a.mp4")]).write(tmp_path / "m.csv")
    Manifest([ManifestItem(tmp_path / "b.mp4"), ManifestItem(tmp_path / "c.mp4")]).write(tmp_path / "m.csv")
    assert [os.path.basename(i.path) for i in Manifest.read(tmp_path / "m.csv")] == ["b.mp4", "c.mp4"]


def test_write_rejects_meta_named_like_a_column(tmp_path):
    with pytest.raises(ConfigError, match="clash"):
        Manifest([ManifestItem(tmp_path / "a.mp4", meta={"label": "x"})]).write(tmp_path / "m.csv")


def test_non_utf8_file_name_survives_scan_write_read(tmp_path, clip):
    name = b"caf\xff clip.mp4"
    try:
        shutil.copy(clip, os.path.join(os.fsencode(tmp_path), name))
    except OSError:
        pytest.skip("this file system refuses names that are not valid UTF-8")
    scanned = Manifest.from_folder(tmp_path)
    assert len(scanned) == 1
    scanned.write(tmp_path / "m.csv")
    assert name in (tmp_path / "m.csv").read_bytes()  # the original bytes, not an escape
    back = Manifest.read(tmp_path / "m.csv")
    assert back[0].path == scanned[0].path
    assert os.fsencode(back[0].path).endswith(name)
    assert os.path.getsize(back[0].path) == os.path.getsize(clip)


# --- folder scans --------------------------------------------------------------------------------


def test_from_folder_finds_media_case_insensitively_sorted_skipping_hidden_and_other_files(tmp_path, clip):
    expected = place(clip, tmp_path, "b/z.MP4", "a.wav", "b/c/y.Mkv")
    place(clip, tmp_path, "notes.txt", ".hidden.mp4", "._a.mp4", ".cache/x.mp4", "b/clip.mp4.part")
    m = Manifest.from_folder(tmp_path)
    assert [item.path for item in m] == sorted(expected)
    assert m.source == str(tmp_path)
    assert not m.labelled()
    assert [item.path for item in Manifest.from_folder(tmp_path, recursive=False)] == [expected[1]]
    assert [item.path for item in Manifest.from_folder(tmp_path, extensions=["mkv", ".WAV"])] == sorted(expected[1:])


def test_find_media_files_follows_folder_links_once_each_without_looping(tmp_path, clip):
    (outside,) = place(clip, tmp_path, "elsewhere/b.mp4")
    (inside,) = place(clip, tmp_path, "root/real/a.mp4")
    os.symlink(tmp_path / "root" / "real", tmp_path / "root" / "real" / "loop")
    os.symlink(tmp_path / "elsewhere", tmp_path / "root" / "linked")
    found = find_media_files(tmp_path / "root")
    assert found == [str(tmp_path / "root" / "linked" / "b.mp4"), inside]
    assert os.path.samefile(found[0], outside)


def test_from_class_folders_labels_by_first_level_folder(tmp_path, clip, caplog):
    place(clip, tmp_path, "dog/a.mp4", "dog/deep/b.mp4", "cat/c.wav", "loose.mp4")
    with caplog.at_level(logging.WARNING, logger="avssl.data"):
        m = Manifest.from_class_folders(tmp_path)
    assert [(os.path.relpath(i.path, tmp_path), i.label) for i in m] == [
        (os.path.join("cat", "c.wav"), "cat"),
        (os.path.join("dog", "a.mp4"), "dog"),
        (os.path.join("dog", "deep", "b.mp4"), "dog"),
    ]
    assert "ignored 1 media file(s) outside class folders" in caplog.text
    assert m.labelled() and m.class_names() == ["cat", "dog"]


def test_scanning_a_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Manifest.from_folder(tmp_path / "nope")


def test_media_extensions_cover_video_and_audio():
    assert {".mp4", ".avi", ".mkv", ".webm", ".wav", ".flac", ".m4a"} <= MEDIA_EXTENSIONS
    assert ".txt" not in MEDIA_EXTENSIONS


# --- load_manifest -------------------------------------------------------------------------------


def test_load_manifest_reads_csv(tmp_path):
    write_text(tmp_path / "m.csv", "path,label\na.mp4,dog\n")
    assert load_manifest(tmp_path / "m.csv")[0].label == "dog"


def test_load_manifest_takes_class_folders_when_every_file_sits_in_one(tmp_path, clip):
    place(clip, tmp_path, "dog/a.mp4", "cat/b.mp4")
    assert load_manifest(tmp_path).class_names() == ["cat", "dog"]


def test_load_manifest_scans_flat_when_files_sit_at_the_top_or_in_a_single_folder(tmp_path, clip):
    place(clip, tmp_path / "mixed", "dog/a.mp4", "b.mp4")
    place(clip, tmp_path / "single", "videos/a.mp4", "videos/b.mp4")
    for root in ("mixed", "single"):
        m = load_manifest(tmp_path / root)
        assert len(m) == 2 and not m.labelled() and m.source == str(tmp_path / root)


def test_load_manifest_errors(tmp_path, clip):
    (tmp_path / "empty").mkdir()
    write_text(tmp_path / "empty" / "readme.txt", "no media here")
    with pytest.raises(ConfigError, match="no media files"):
        load_manifest(tmp_path / "empty")
    with pytest.raises(ConfigError, match="does not exist"):
        load_manifest(tmp_path / "missing")
    (video,) = place(clip, tmp_path, "v.mp4")
    with pytest.raises(ConfigError, match="is a media file"):
        load_manifest(video)


# --- splits, labels, subsets ---------------------------------------------------------------------


@pytest.fixture
def labelled():
    rows = [("a", "dog", "train"), ("b", "cat", "train"), ("c", "dog", "test"), ("d", "bird", "train")]
    return Manifest([ManifestItem(f"/d/{p}.mp4", label, split) for p, label, split in rows], "/d/m.csv")


def test_filter_split_and_subset_keep_order_and_source(labelled):
    train = labelled.filter_split("train")
    assert [os.path.basename(i.path) for i in train] == ["a.mp4", "b.mp4", "d.mp4"]
    assert train.source == "/d/m.csv"
    assert [os.path.basename(i.path) for i in labelled.subset([3, 0])] == ["d.mp4", "a.mp4"]
    with pytest.raises(ConfigError, match=r"no items with split 'val'.*\['test', 'train'\]"):
        labelled.filter_split("val")


def test_class_names_and_label_indices(labelled):
    assert labelled.class_names() == ["bird", "cat", "dog"]
    assert labelled.label_indices() == [2, 1, 2, 0]
    train_classes = labelled.filter_split("train").class_names()
    # The test split has only "dog", yet indexes into the training classes.
    assert labelled.filter_split("test").label_indices(train_classes) == [2]
    with pytest.raises(ConfigError, match="'dog', not among the classes"):
        labelled.label_indices(["bird", "cat"])


def test_unlabelled_items_cannot_be_indexed():
    m = Manifest([ManifestItem("/d/a.mp4", "dog"), ManifestItem("/d/b.mp4")])
    assert not m.labelled()
    assert not Manifest([]).labelled()
    with pytest.raises(ConfigError, match="has no label"):
        m.label_indices()


def test_manifest_sequence_protocol_and_short_repr(labelled):
    assert len(labelled) == 4
    assert labelled[2].label == "dog"
    assert [i.split for i in labelled].count("train") == 3
    assert repr(labelled) == "Manifest(4 items, source='/d/m.csv')"
    assert ManifestItem("rel/x.mp4").path == os.path.abspath("rel/x.mp4")


# --- avssl data folder ---------------------------------------------------------------------------


def test_folder_command_writes_flat_or_class_manifests(tmp_path, clip, capsys):
    place(clip, tmp_path / "data", "dog/a.mp4", "cat/b.mp4", "cat/c.mp4")
    out = tmp_path / "data" / "m.csv"
    assert run_data_command(["data", "folder", str(tmp_path / "data"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: 3 items; unlabelled"
    assert not Manifest.read(out).labelled()
    assert run_data_command(["data", "folder", str(tmp_path / "data"), "--class-folders", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: 3 items; 2 classes"
    assert [i.label for i in Manifest.read(out)] == ["cat", "cat", "dog"]
    assert out.read_text().splitlines()[1] == os.path.join("cat", "b.mp4") + ",cat,"


def test_folder_command_rejects_an_empty_folder_without_writing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no media files found under"):
        run_data_command(["data", "folder", str(tmp_path / "empty"), "--out", str(tmp_path / "m.csv")])
    assert not (tmp_path / "m.csv").exists()


def test_folder_command_writes_a_stratified_split_that_the_evaluations_accept(tmp_path, clip, capsys):
    """--split-fraction: per label, about that fraction in test, at least one when a label has 2 files,
    none when it has 1; the same split for the same seed, another for another seed."""
    from avssl.evaluation.splits import resolve_folds

    names = [f"dog/{i}.mp4" for i in range(10)] + [f"cat/{i}.mp4" for i in range(3)] + ["owl/0.mp4", "owl/1.mp4",
                                                                                        "bat/0.mp4"]
    place(clip, tmp_path / "data", *names)
    out, again = tmp_path / "m.csv", tmp_path / "again.csv"
    argv = ["data", "folder", str(tmp_path / "data"), "--class-folders", "--split-fraction", "0.2", "--seed", "0"]
    assert run_data_command([*argv, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: 16 items; 4 classes; split test 4, train 12"
    m = Manifest.read(out)
    test = {}
    for item in m:
        assert item.split in ("train", "test")
        test.setdefault(item.label, []).append(item.split == "test")
    assert {label: sum(flags) for label, flags in test.items()} == {"dog": 2, "cat": 1, "owl": 1, "bat": 0}
    assert run_data_command([*argv, "--out", str(again)]) == 0
    assert again.read_text() == out.read_text()  # deterministic for the seed
    other = Manifest.read(out).with_split(0.2, seed=1)
    assert [i.split for i in other] != [i.split for i in m]
    assert [i.label for i in other] == [i.label for i in m]
    # every test label occurs in training, so the manifest evaluates as it is
    (fold,) = resolve_folds(m)
    assert len(fold.test) == 4 and set(fold.classes) == {"dog", "cat", "owl", "bat"}


def test_split_fraction_of_an_unlabelled_folder_and_bad_fractions(tmp_path, clip, capsys):
    place(clip, tmp_path / "data", *[f"{i}.mp4" for i in range(10)])
    out = tmp_path / "m.csv"
    assert run_data_command(["data", "folder", str(tmp_path / "data"), "--split-fraction", "0.3", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: 10 items; unlabelled; split test 3, train 7"
    for bad in ("0", "1", "1.5", "x"):
        with pytest.raises(SystemExit):
            run_data_command(["data", "folder", str(tmp_path / "data"), "--split-fraction", bad, "--out", str(out)])
        assert "--split-fraction" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="between 0 and 1"):
        Manifest.read(out).with_split(1.0)
