"""Bad input: a corpus of broken and odd media files generated here, mixed with good files, through
pretraining and evaluation; and bad manifests and configs, which must fail with one clear error before
any work starts.

Every file of the corpus states what must happen to it: ``use`` (odd but valid: it must be used), or a
reason substring that must appear next to its path in the run's ``skipped.json``. Broken files are
recognised at two stages: from the header when the manifest is probed (unreadable, empty, missing a
stream, too short), or when decoded (a file whose header is intact but whose data is not); both kinds
end up in the report, and only the first kind is left out of ``videos.csv``.
"""
import csv
import json
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from avssl.cli import main
from avssl.data.manifest import Manifest, ManifestItem
from avssl.data.media import decode_full
from avssl.data.writer import write_av
from avssl.errors import MediaError
from avssl.runs import read_run_videos


def frames(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(1, h, w, 3)).astype(np.int32)
    return ((base + 7 * np.arange(n)[:, None, None, None]) % 255).astype(np.uint8)


def tone(seconds, rate, channels=1):
    t = np.arange(int(round(seconds * rate))) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([x * (1 + 0.1 * c) for c in range(channels)]) if channels > 1 else x


def write_custom(path, video=None, fps=30, audio=None, rate=16000, fmt=None, pts_ms=None):
    """PyAV writer for what ``write_av`` does not do: other containers, explicit (variable) frame
    timestamps in milliseconds, an audio stream without a single sample."""
    c = av.open(os.fsdecode(path), "w", format=fmt)
    vs = astream = None
    if video is not None:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
        if pts_ms is not None:
            vs.codec_context.time_base = vs.time_base = Fraction(1, 1000)
    if audio is not None:
        astream = c.add_stream("aac", rate=rate)
        astream.layout = "mono"
    if vs is not None:
        for i, image in enumerate(video):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = int(pts_ms[i]), Fraction(1, 1000)
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    if astream is not None:
        a = np.atleast_2d(audio).astype(np.float32)
        for s in range(0, a.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(a[:, s:s + 1024]), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, s
            for p in astream.encode(frame):
                c.mux(p)
        for p in astream.encode():
            c.mux(p)
    c.close()
    return path


@dataclass
class Case:
    name: bytes  # file name (bytes: one is not valid UTF-8)
    kind: str  # which kind of trouble
    xdc: str  # pretraining (video + audio): "use", or a reason substring of its skipped.json entry
    video: str  # video-only evaluation: the same
    decoded: bool = False  # broken only in its data: found when decoded, not when probed


CASES = [
    Case(b"corrupt_header.mp4", "corrupt header", "not a readable media file", "not a readable media file"),
    Case(b"truncated.mp4", "truncated (index lost)", "not a readable media file", "not a readable media file"),
    Case(b"truncated_stream.mkv", "truncated stream, header intact", "truncated file?", "truncated file?", True),
    Case(b"zero_bytes.mp4", "zero bytes", "empty file (0 bytes)", "empty file (0 bytes)"),
    Case(b"notes.mp4", "wrong extension: text named .mp4", "not a readable media file", "not a readable media file"),
    Case(b"an_mp4.avi", "wrong extension: mp4 named .avi", "use", "use"),
    Case(b"no_audio.mp4", "no audio track", "no audio track", "use"),
    Case(b"no_video.m4a", "no video track", "no video stream", "no video stream"),
    Case(b"zero_length_audio.mkv", "zero-length audio", "no decodable audio", "use", True),
    Case(b"aspect_1000x16.mp4", "extreme aspect ratio", "use", "use"),
    Case(b"vfr.mp4", "variable frame rate", "use", "use"),
    Case(b"long_60s.mp4", "very long file", "use", "use"),
    Case(b"surround_5.1_11025hz.mp4", "5.1 channels at 11025 Hz", "use", "use"),
    Case(b"mono_8khz.mp4", "mono at 8 kHz", "use", "use"),
    Case(b"caf\xe9_\xff.mp4", "non-UTF-8 file name", "use", "use"),
    # 0.3 s: too short for a 2 s audio window, long enough for cpu-tiny's 4-frame video clips.
    Case(b"too_short.mp4", "shorter than a clip", "shorter than a clip", "use"),
]


def build_corpus(folder: Path, good: Path) -> dict[str, Case]:
    """Write every case into ``folder``; returns {path (str, as avssl sees it): case}."""
    folder.mkdir(parents=True)
    fb = os.fsencode(folder)
    at = lambda name: os.path.join(fb, name)  # noqa: E731
    data = good.read_bytes()
    damaged = bytearray(data)
    damaged[:64] = bytes(range(64))
    Path(os.fsdecode(at(b"corrupt_header.mp4"))).write_bytes(bytes(damaged))
    Path(os.fsdecode(at(b"truncated.mp4"))).write_bytes(data[: len(data) // 2])  # mp4 index (moov) is at the end
    mkv = write_custom(at(b"full.mkv"), frames(90, 32, 32), 30, tone(3, 16000), fmt="matroska")
    whole = Path(os.fsdecode(mkv)).read_bytes()
    Path(os.fsdecode(at(b"truncated_stream.mkv"))).write_bytes(whole[: len(whole) * 6 // 10])
    os.unlink(mkv)
    open(at(b"zero_bytes.mp4"), "wb").close()
    Path(os.fsdecode(at(b"notes.mp4"))).write_text("field notes, not a video\n" * 50)
    shutil.copy(good, os.fsdecode(at(b"an_mp4.avi")))
    write_av(os.fsdecode(at(b"no_audio.mp4")), frames(90, 32, 32), 30)
    write_av(os.fsdecode(at(b"no_video.m4a")), audio=tone(3, 16000))
    write_custom(at(b"zero_length_audio.mkv"), frames(90, 32, 32), 30, np.zeros((1, 0), np.float32), fmt="matroska")
    write_av(os.fsdecode(at(b"aspect_1000x16.mp4")), frames(90, 16, 1000), 30, tone(3, 16000))
    gaps = np.random.default_rng(0).choice([16, 33, 50, 100], size=89)
    write_custom(at(b"vfr.mp4"), frames(90, 32, 32), 30, tone(4.9, 16000), pts_ms=np.r_[0, np.cumsum(gaps)])
    write_av(os.fsdecode(at(b"long_60s.mp4")), frames(60 * 30, 16, 16), 30, tone(60, 16000))
    write_av(os.fsdecode(at(b"surround_5.1_11025hz.mp4")), frames(90, 32, 32), 30, tone(3, 11025, 6), 11025)
    write_av(os.fsdecode(at(b"mono_8khz.mp4")), frames(90, 32, 32), 30, tone(3, 8000), 8000)
    shutil.copy(good, at(b"caf\xe9_\xff.mp4"))
    write_av(os.fsdecode(at(b"too_short.mp4")), frames(10, 32, 32), 30, tone(0.3, 16000))
    return {os.fsdecode(at(c.name)): c for c in CASES}


@pytest.fixture(scope="module")
def mixed(tiny_world, tmp_path_factory):
    """A manifest of the 24 good demo clips and the corpus, every item labelled and split."""
    root = tmp_path_factory.mktemp("bad_input")
    world = Manifest.read(tiny_world)
    corpus = build_corpus(root / "corpus", Path(world[0].path))
    classes = world.class_names()
    items = list(world)
    for i, path in enumerate(corpus):
        items.append(ManifestItem(path, label=classes[i % len(classes)], split="train" if i % 3 else "test"))
    manifest = Manifest(items)
    manifest.write(root / "mixed.csv")
    assert Manifest.read(root / "mixed.csv").items[-1].path == items[-1].path  # the odd name survives the CSV
    return root / "mixed.csv", {it.path for it in world}, corpus


def reasons_by_path(report: dict) -> dict[str, set]:
    out: dict[str, set] = {}
    for f in report["files"]:
        out.setdefault(f["path"], set()).add(f["reason"])
    return out


def check_report(reasons: dict, corpus: dict, good: set, mode: str):
    """Every bad file is in the report with its reason; no good or odd-but-valid file is."""
    for path, case in corpus.items():
        want = getattr(case, mode)
        if want == "use":
            assert path not in reasons, f"{case.kind}: skipped ({reasons.get(path)}) but should be used"
        else:
            assert path in reasons, f"{case.kind}: missing from the skip report"
            assert any(want in r for r in reasons[path]), f"{case.kind}: reasons {reasons[path]}, expected {want!r}"
    assert not good & set(reasons), "a good file was reported as skipped"


def test_the_corpus_has_every_kind_of_trouble_the_issue_lists():
    kinds = " | ".join(c.kind for c in CASES)
    for kind in ("corrupt header", "truncated", "zero bytes", "wrong extension", "no audio track", "no video track",
                 "zero-length audio", "extreme aspect ratio", "variable frame rate", "very long file", "Hz",
                 "non-UTF-8 file name"):
        assert kind in kinds
    assert len({c.kind for c in CASES}) >= 10 and len({c.name for c in CASES}) == len(CASES)


def test_pretraining_over_a_mixed_manifest_uses_every_good_file(mixed, tmp_path):
    manifest, good, corpus = mixed
    out = tmp_path / "run"
    code = main(["pretrain", "--method", "xdc", "--data", str(manifest), "--out", str(out), "--preset", "cpu-tiny",
                 "--iterations", "1", "--no-progress", "--set", "optim.max_epochs=1"])
    assert code == 0 and (out / "encoders.pt").exists()
    # videos.csv: every file that passed the probe, in order; the cluster assignments say which were used.
    entries, _ = read_run_videos(out)
    usable = good | {p for p, c in corpus.items() if c.xdc == "use"}
    decoded_bad = {p for p, c in corpus.items() if c.decoded and c.xdc != "use"}
    assert set(entries) == usable | decoded_bad
    assignments = np.load(out / "clusters" / "video_assignments.npy")
    used = {p for p, a in zip(entries, assignments) if a >= 0}
    assert used == usable  # every good file has features and a cluster; the decode-time failures none
    reasons = reasons_by_path(json.loads((out / "skipped.json").read_text()))
    check_report(reasons, corpus, good, "xdc")


def test_linear_evaluation_over_a_mixed_manifest_uses_every_good_file(mixed, tmp_path):
    manifest, good, corpus = mixed
    out = tmp_path / "eval"
    code = main(["eval", "linear", "--encoders", "scratch", "--preset", "cpu-tiny", "--data", str(manifest),
                 "--out", str(out), "--train-clips", "2", "--test-clips", "2", "--epochs", "2", "--lrs", "0.01",
                 "--no-progress"])
    assert code == 0
    result = json.loads((out / "linear.json").read_text())
    fold = result["folds"]["split"]
    usable = good | {p for p, c in corpus.items() if c.video == "use"}
    assert fold["train_videos"] + fold["test_videos"] == len(usable)
    assert fold["videos_without_features"] == len(corpus) + len(good) - len(usable)
    (cache,) = [d for d in (out / "features").iterdir() if d.name.startswith("video-2clips")]
    assert set(json.loads((cache / "videos.json").read_text())) == usable | {
        p for p, c in corpus.items() if c.decoded and c.video != "use"}
    check_report(reasons_by_path(json.loads((cache / "skipped.json").read_text())), corpus, good, "video")


def test_truncated_matroska_is_reported_and_good_matroska_is_not(tmp_path):
    """Matroska headers state the duration but no per-stream one: a file whose data stops early used to
    decode "successfully" to a shorter video. Files whose streams legitimately differ in length pass."""
    whole = write_custom(tmp_path / "whole.mkv", frames(90, 32, 32), 30, tone(3, 16000), fmt="matroska")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    for video, audio in ((True, True), (True, False), (False, True)):
        with pytest.raises(MediaError, match=r"data ends at 1\.\d+ s; the header declares 3\.\d+ s \(truncated file\?\)"):
            decode_full(cut, 30, 20, video=video, audio=audio)
    longer_audio = write_custom(tmp_path / "a.mkv", frames(90, 32, 32), 30, tone(3.6, 16000), fmt="matroska")
    longer_video = write_custom(tmp_path / "v.mkv", frames(120, 32, 32), 30, tone(2.5, 16000), fmt="matroska")
    for f in (longer_audio, longer_video, whole):
        for video, audio in ((True, True), (True, False), (False, True)):
            decode_full(f, 30, 20, video=video, audio=audio)


# --- bad manifests and configs: one clear error before any work -----------------------------------

def write_csv(path, text):
    Path(path).write_text(text)
    return path


def test_k_larger_than_the_usable_part_of_a_mixed_manifest(mixed, tmp_path, capsys):
    manifest, good, corpus = mixed
    entries = len(good) + sum(c.xdc == "use" or c.decoded for c in corpus.values())
    code = main(["pretrain", "--method", "xdc", "--data", str(manifest), "--out", str(tmp_path / "r"),
                 "--preset", "cpu-tiny", "--no-progress", "--set", f"clustering.k={entries + 1}"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"k={entries + 1} clusters but only {entries} usable videos" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_a_manifest_of_only_broken_files(tmp_path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"")
    (folder / "b.mp4").write_text("not a video")
    code = main(["pretrain", "--method", "sdc", "--data", str(folder), "--out", str(tmp_path / "r"),
                 "--preset", "cpu-tiny", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no usable videos" in err and "skipped 2 file(s)" in err and "unreadable" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, message", [
    (["--preset", "gpu-huge"], "unknown preset 'gpu-huge'"),
    (["--set", "optim.lr=0"], "optim.lr must be > 0, got 0"),
    (["--set", "optim.lr=NaN"], "optim.lr must be > 0, got nan"),
    (["--set", "video.midplanes=caffe"], "video.midplanes must be torchvision or xdc"),
    (["--set", "optim.val_fraction=0.7", "--set", "optim.gamma=2"], "optim.val_fraction must be in [0, 0.5)"),
])
def test_bad_pretraining_configs(argv, message, tiny_world, tmp_path, capsys):
    try:
        code = main(["pretrain", "--method", "xdc", "--data", str(tiny_world), "--out", str(tmp_path / "r"),
                     "--no-progress", *(["--preset", "cpu-tiny"] if "--preset" not in argv else []), *argv])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("text, message", [
    ("path,label\n", "has a header ('path', 'label') but no rows"),
    ("path,label\na.mp4,x,extra\n", "line 2: 3 fields but the header has 2"),
    ("path,path\na.mp4,b.mp4\n", "repeats column(s) ['path']"),
    ("", "is empty: expected a header with a 'path' column"),
])
def test_bad_manifests(text, message, tmp_path, capsys):
    code = main(["pretrain", "--method", "xdc", "--data", str(write_csv(tmp_path / "m.csv", text)),
                 "--out", str(tmp_path / "r"), "--preset", "cpu-tiny", "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_with_another_config_is_refused(tiny_world, tmp_path, capsys):
    args = ["pretrain", "--method", "sdc", "--data", str(tiny_world), "--out", str(tmp_path / "r"),
            "--preset", "cpu-tiny", "--no-progress", "--iterations", "1", "--set", "optim.max_epochs=1"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args + ["--resume", "--set", "clustering.k=3"]) == 2
    assert "clustering.k: 4 -> 3" in capsys.readouterr().err  # each differing value, old -> new


def eval_args(tiny_world, manifest, out, *extra):
    return ["eval", "linear", "--encoders", "scratch", "--preset", "cpu-tiny", "--data", str(manifest),
            "--out", str(out), "--no-progress", "--lrs", "0.01,0.02", *extra]


def rewrite(tiny_world, tmp_path, edit):
    """The demo manifest with ``edit(row)`` applied to every row (absolute paths)."""
    rows = list(csv.DictReader(open(tiny_world)))
    for r in rows:
        r["path"] = str(Path(tiny_world).parent / r["path"])
        edit(r)
    rows = [r for r in rows if r]
    keys = [k for k in rows[0]]
    with open(tmp_path / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    return tmp_path / "m.csv"


def _drop(key):
    return lambda r: r.pop(key)


def _unknown_test_label(r):
    if r["split"] == "test" and r["path"].endswith("_000.mp4"):
        r["label"] = "zebra"


@pytest.mark.parametrize("edit, extra, message", [
    (_drop("label"), [], "24 item(s) have no label"),
    (_drop("split"), [], "no train/test split"),
    (_unknown_test_label, [], "test label(s) ['zebra'] never occur in its training part"),
    (None, ["--folds", "2"], "has no official fold columns"),
    (None, ["--preset", "nope"], "unknown preset 'nope'"),
])
def test_bad_evaluation_manifests_fail_before_extraction(edit, extra, message, tiny_world, tmp_path, capsys):
    manifest = rewrite(tiny_world, tmp_path, edit) if edit else tiny_world
    argv = eval_args(tiny_world, manifest, tmp_path / "e", *extra)
    if "--preset" in extra:
        argv = [a for i, a in enumerate(argv) if not (a == "cpu-tiny" and argv[i - 1] == "--preset")]
        argv.remove("--preset")
    code = main(argv)
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "e" / "features").exists()


def test_missing_encoders_file_is_a_clear_error(tiny_world, tmp_path, capsys):
    code = main(["eval", "linear", "--encoders", str(tmp_path / "nope"), "--data", str(tiny_world),
                 "--out", str(tmp_path / "e"), "--no-progress"])
    assert code == 2 and "no such checkpoint file" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--val-fraction", "1.5"], ["--epochs", "0"], ["--batch-size", "0"]])
def test_bad_evaluation_options_fail_before_extraction(extra, tiny_world, tmp_path, capsys):
    code = main(eval_args(tiny_world, tiny_world, tmp_path / "e", *extra))
    assert code == 2
    assert not (tmp_path / "e" / "features").exists()


@pytest.mark.parametrize("override", ["clustering=3", "optim.lr=abc", "optim.lr=[1]", "optim.batch_size=2.5",
                                      "video.crop=16.0"])
def test_wrongly_typed_config_values_are_one_clear_error(override, tiny_world, tmp_path, capsys):
    code = main(["pretrain", "--method", "xdc", "--data", str(tiny_world), "--out", str(tmp_path / "r"),
                 "--preset", "cpu-tiny", "--no-progress", "--set", override])
    assert code == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and override.split("=")[0] in err
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def extracted(mixed, tmp_path_factory):
    manifest, _, _ = mixed
    out = tmp_path_factory.mktemp("extract")
    assert main(["extract", "--encoders", "scratch", "--preset", "cpu-tiny", "--data", str(manifest),
                 "--out", str(out), "--clips", "2", "--no-progress"]) == 0
    (cache,) = [d for d in (out / "features").iterdir() if d.name.startswith("video-2clips")]
    return out, cache


def test_extract_over_a_mixed_manifest_names_every_file_by_its_bytes(mixed, extracted):
    """``avssl extract`` writes an index CSV of paths; a non-UTF-8 file name used to crash it
    (UnicodeEncodeError in atomic_write_text). The name is written back as its original bytes."""
    _, good, corpus = mixed
    out, _ = extracted
    usable = good | {p for p, c in corpus.items() if c.video == "use"}
    with open(out / "video_index.csv", newline="", encoding="utf-8", errors="surrogateescape") as f:
        rows = list(csv.DictReader(f))
    assert {r["path"] for r in rows} == usable
    odd = next(r["path"] for r in rows if "caf" in r["path"])
    assert os.path.isfile(os.fsencode(odd)) and os.fsencode(odd).endswith(b"caf\xe9_\xff.mp4")
    assert len(np.load(out / "video_features.npy")) == len(rows)


def test_each_skipped_file_is_reported_once(extracted):
    _, cache = extracted
    report = json.loads((cache / "skipped.json").read_text())
    paths = [f["path"] for f in report["files"]]
    assert len(paths) == len(set(paths)) == report["skipped"]
