"""Probing a manifest: counts and reasons for good and bad files, the cache, and `avssl data probe`.

Reuse of the cache is proven without mocks: ``probed`` counts the files opened, the cache file is
left untouched when nothing changed, and a value planted in the cache comes back instead of the
file's real one.
"""
import json
import logging
import os
import shutil

import numpy as np
import pytest

from avssl.data.manifest import Manifest, ManifestItem
from avssl.data.media import probe
from avssl.data.probe_index import ProbeIndex, default_cache_path, probe_manifest
from avssl.data.writer import write_av
from avssl.errors import ConfigError
from conftest import run_data_command

FPS, RATE = 8.0, 16000


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Real files: audio+video 1 s, video only 0.5 s, audio only 2 s."""
    folder = tmp_path_factory.mktemp("originals")
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (8, 16, 16, 3), dtype=np.uint8)
    return {
        "av": write_av(folder / "av.mp4", video, FPS, rng.uniform(-0.5, 0.5, RATE).astype(np.float32), RATE),
        "video": write_av(folder / "video.mp4", video[:4], FPS),
        "audio": write_av(folder / "audio.wav", None, FPS, rng.uniform(-0.5, 0.5, 2 * RATE).astype(np.float32), RATE),
    }


@pytest.fixture
def dataset(tmp_path, originals):
    """A folder with three usable files and three unusable ones, and a manifest CSV naming them all."""
    root = tmp_path / "data"
    root.mkdir()
    for name, src in (("good.mp4", "av"), ("silent.mp4", "video"), ("sound.wav", "audio")):
        shutil.copy(originals[src], root / name)
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is not a video\n" * 20)
    names = ["good.mp4", "silent.mp4", "sound.wav", "empty.mp4", "text.mp4", "gone.mp4"]
    Manifest([ManifestItem(root / n) for n in names]).write(root / "m.csv")
    return root


def test_mixed_files_give_the_right_counts_and_reasons(dataset):
    index = probe_manifest(Manifest.read(dataset / "m.csv"), workers=1, progress=False)
    assert list(index.infos) == [str(dataset / n) for n in ("good.mp4", "silent.mp4", "sound.wav")]
    assert list(index.errors) == [str(dataset / n) for n in ("empty.mp4", "text.mp4", "gone.mp4")]
    assert index.errors[str(dataset / "empty.mp4")] == "empty file (0 bytes)"
    assert index.errors[str(dataset / "text.mp4")].startswith("not a readable media file")
    assert index.errors[str(dataset / "gone.mp4")] == "file not found"
    good = index.infos[str(dataset / "good.mp4")]
    assert good.has_video and good.has_audio and good.width == 16 and good.audio_rate == RATE

    s = index.summary()
    durations = sorted(info.duration for info in index.infos.values())
    assert {k: s[k] for k in ("files", "readable", "unreadable", "with_video", "with_audio")} == {
        "files": 6, "readable": 3, "unreadable": 3, "with_video": 2, "with_audio": 2,
    }
    assert s["without_audio"] == 1 and s["without_video"] == 1
    assert s["duration_min"] == durations[0] == pytest.approx(0.5, abs=0.05)
    assert s["duration_median"] == durations[1] == pytest.approx(1.0, abs=0.1)
    assert s["duration_max"] == durations[2] == pytest.approx(2.0, abs=0.1)
    assert s["total_hours"] == pytest.approx(sum(durations) / 3600)
    assert s["reasons"] == {"empty file (0 bytes)": 1, index.errors[str(dataset / "text.mp4")]: 1, "file not found": 1}

    text = index.format_summary()
    assert text.splitlines()[0] == "6 files: 3 readable, 3 unreadable"
    assert "2 with video, 2 with audio (1 without video, 1 without audio)" in text
    assert "unreadable (1): empty file (0 bytes)" in text


def test_second_call_reuses_the_cache_and_a_touched_file_alone_is_probed_again(dataset):
    manifest = Manifest.read(dataset / "m.csv")
    first = probe_manifest(manifest, workers=2, progress=False)
    cache = dataset / "m.csv.probe.json"
    assert first.cache_path == str(cache) and first.probed == 5  # the missing file is not opened
    written = cache.stat().st_mtime_ns

    # Plant a value that no probe would give: getting it back proves the file was not opened again.
    data = json.loads(cache.read_text())
    assert sorted(data["files"]) == sorted(str(dataset / n) for n in ("good.mp4", "silent.mp4", "sound.wav",
                                                                      "empty.mp4", "text.mp4"))
    assert "path" not in data["files"][str(dataset / "good.mp4")]["info"]  # the key holds it already
    data["files"][str(dataset / "good.mp4")]["info"]["width"] = 4242
    cache.write_text(json.dumps(data))
    planted = cache.stat().st_mtime_ns

    second = probe_manifest(manifest, workers=2, progress=False)
    assert second.probed == 0
    assert second.infos[str(dataset / "good.mp4")].width == 4242
    assert second.errors == first.errors
    assert cache.stat().st_mtime_ns == planted != written  # nothing new, so not rewritten

    st = os.stat(dataset / "good.mp4")
    os.utime(dataset / "good.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = probe_manifest(manifest, workers=2, progress=False)
    assert third.probed == 1
    assert third.infos[str(dataset / "good.mp4")].width == 16  # probed afresh
    assert third.infos == first.infos and third.errors == first.errors


def test_changed_content_and_new_files_are_probed(dataset, originals):
    manifest = Manifest.read(dataset / "m.csv")
    probe_manifest(manifest, workers=1, progress=False)
    shutil.copy(originals["av"], dataset / "text.mp4")  # fixed by re-downloading
    shutil.copy(originals["av"], dataset / "gone.mp4")  # downloaded at last
    index = probe_manifest(manifest, workers=1, progress=False)
    assert index.probed == 2
    assert set(index.errors) == {str(dataset / "empty.mp4")}
    assert index.summary()["readable"] == 5


def test_corrupt_cache_is_ignored_with_a_warning_and_rebuilt(dataset, caplog):
    manifest = Manifest.read(dataset / "m.csv")
    cache = dataset / "m.csv.probe.json"
    cache.write_text('{"version": 1, "files": {"trunc')
    with caplog.at_level(logging.WARNING, logger="avssl.data"):
        index = probe_manifest(manifest, workers=1, progress=False)
    assert "ignoring unreadable probe cache" in caplog.text
    assert index.probed == 5
    assert len(json.loads(cache.read_text())["files"]) == 5
    assert probe_manifest(manifest, workers=1, progress=False).probed == 0


def test_cache_entries_from_an_older_media_info_are_probed_again(dataset):
    manifest = Manifest.read(dataset / "m.csv")
    probe_manifest(manifest, workers=1, progress=False)
    cache = dataset / "m.csv.probe.json"
    data = json.loads(cache.read_text())
    del data["files"][str(dataset / "sound.wav")]["info"]["audio_channels"]
    cache.write_text(json.dumps(data))
    index = probe_manifest(manifest, workers=1, progress=False)
    assert index.probed == 1 and index.infos[str(dataset / "sound.wav")].audio_channels == 1


def test_folder_manifest_caches_inside_the_folder_and_non_utf8_names_are_reused(tmp_path, originals):
    shutil.copy(originals["av"], tmp_path / "a.mp4")
    odd = os.path.join(os.fsencode(tmp_path), b"\xff.mp4")
    try:
        shutil.copy(originals["av"], odd)
    except OSError:
        odd = None  # this file system refuses names that are not valid UTF-8
    manifest = Manifest.from_folder(tmp_path)
    assert default_cache_path(manifest) == str(tmp_path / ".avssl_probe.json")
    first = probe_manifest(manifest, workers=1, progress=False)
    assert first.probed == len(manifest) == (2 if odd else 1)
    assert first.cache_path == str(tmp_path / ".avssl_probe.json")
    # The hidden cache does not become part of the dataset, and the odd name is found in the cache.
    again = Manifest.from_folder(tmp_path)
    assert len(again) == len(manifest)
    assert probe_manifest(again, workers=1, progress=False).probed == 0
    if odd:
        assert os.fsdecode(odd) in first.infos


def test_unwritable_cache_location_still_gives_results(dataset, caplog):
    blocker = dataset / "not_a_folder"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, logger="avssl.data"):
        index = probe_manifest(
            Manifest.read(dataset / "m.csv"), cache_path=blocker / "c.json", workers=1, progress=False
        )
    assert "could not write probe cache" in caplog.text
    assert index.summary()["readable"] == 3


def test_no_source_means_no_cache_and_bad_worker_counts_are_rejected(originals):
    manifest = Manifest([ManifestItem(originals["av"])])
    index = probe_manifest(manifest, workers=1, progress=False)
    assert index.cache_path is None and index.probed == 1 and len(index.infos) == 1
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        probe_manifest(manifest, workers=0)


def test_summary_counts_streams_separately(originals):
    infos = {p: probe(originals[k]) for p, k in (("a", "av"), ("b", "video"), ("c", "video"), ("d", "audio"))}
    s = ProbeIndex(infos, {"e": "empty file (0 bytes)", "f": "empty file (0 bytes)"}).summary()
    assert (s["with_video"], s["without_video"], s["with_audio"], s["without_audio"]) == (3, 1, 2, 2)
    assert s["duration_median"] == pytest.approx((infos["a"].duration + infos["b"].duration) / 2)
    assert s["reasons"] == {"empty file (0 bytes)": 2}


def test_empty_index_summary():
    s = ProbeIndex({}, {}).summary()
    assert s["files"] == 0 and s["duration_median"] is None and s["reasons"] == {}
    assert ProbeIndex({}, {}).format_summary().splitlines()[0] == "0 files: 0 readable, 0 unreadable"


# --- avssl data probe ----------------------------------------------------------------------------


def test_probe_command_prints_the_summary_and_names_bad_files(dataset, capsys):
    assert run_data_command(["data", "probe", str(dataset / "m.csv"), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "6 files: 3 readable, 3 unreadable" in out
    assert f"  {dataset / 'empty.mp4'}: empty file (0 bytes)" in out
    assert f"probed 5 file(s); cache: {dataset / 'm.csv.probe.json'}" in out
    assert (dataset / "m.csv.probe.json").is_file()


def test_probe_command_prints_undecodable_file_names_escaped(tmp_path, capsys):
    try:
        open(os.path.join(os.fsencode(tmp_path), b"bad\xff.mp4"), "w").close()
    except OSError:
        pytest.skip("this file system refuses names that are not valid UTF-8")
    assert run_data_command(["data", "probe", str(tmp_path), "--workers", "1"]) == 0
    assert f"  {tmp_path}/bad\\udcff.mp4: empty file (0 bytes)" in capsys.readouterr().out


def test_probe_command_on_a_folder_and_its_errors(dataset, tmp_path, capsys):
    assert run_data_command(["data", "probe", str(dataset)]) == 0
    assert "5 files: 3 readable, 2 unreadable" in capsys.readouterr().out  # the folder has no gone.mp4
    with pytest.raises(ConfigError, match="does not exist"):
        run_data_command(["data", "probe", str(tmp_path / "nope")])
    with pytest.raises(SystemExit):
        run_data_command(["data", "probe", str(dataset), "--workers", "0"])
