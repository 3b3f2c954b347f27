"""``--resume`` checks its data before writing anything, and the skip report survives resumes and aborts.

A run records its usable videos in ``videos.csv`` (order, size, modification time). Resuming with the
same files in another order used to give the saved pseudo-labels to the wrong videos, and with more
files it failed with an IndexError after ``videos.csv`` was overwritten. Every run here is a real
``python -m avssl.cli`` process on real mp4 files (a copy of the tiny demo world, which the tests edit).
"""
import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import cli, run_cli
from avssl.io import load_checkpoint
from avssl.engine.datarecord import read_index
from avssl.runlock import LOCK_NAME

from test_bad_input import frames, tone, write_custom

TIMEOUT = 300
TINY = ["--method", "xdc", "--preset", "cpu-tiny", "--no-progress", "--set", "optim.max_epochs=1"]
LONG = ["--method", "xdc", "--preset", "cpu-tiny", "--no-progress", "--seed", "3", "--set", "optim.epoch_size=64",
        "--set", "optim.max_epochs=3", "--set", "optim.early_stop=0"]






def run(args, env, expect=0):
    return run_cli(args, env, expect, TIMEOUT)


@pytest.fixture
def world(tiny_world, tmp_path):
    """A private copy of the tiny world (its files may be touched), and helpers to write manifests of it."""
    root = tmp_path / "world"
    shutil.copytree(Path(tiny_world).parent, root, ignore=shutil.ignore_patterns("*.probe.json"))
    rows = list(csv.DictReader(open(root / "manifest.csv")))
    return root, rows


def write_manifest(root: Path, rows, name="m.csv") -> Path:
    path = root / name
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def snapshot(out: Path) -> dict:
    """Every file of a run folder with its bytes (what 'nothing was written' compares), but the lock file,
    which names the process that holds (or last held) the folder."""
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.name != LOCK_NAME}


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# --- the record ------------------------------------------------------------------------------------

def test_a_run_records_sizes_and_times_of_its_videos(world, env, tmp_path):
    root, rows = world
    out = tmp_path / "run"
    run(cli("pretrain", *TINY, "--iterations", "1", "--data", write_manifest(root, rows), "--out", out), env)
    header = (out / "videos.csv").read_text().splitlines()[0]
    assert header == "index,path,label,size,mtime_ns"
    recorded = read_index(out / "videos.csv")
    assert [v.path for v in recorded] == [str(root / r["path"]) for r in rows]
    for v in recorded:
        st = os.stat(v.path)
        assert (v.size, v.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert load_checkpoint(out / "checkpoints" / "last.pt")["videos_sha1"]
    # The readers of the three-column format read the new one (cluster reports, retrain-long).
    from avssl.runs import read_run_videos

    paths, labels = read_run_videos(out)
    assert paths == [v.path for v in recorded] and labels == [r["label"] for r in rows]


@pytest.fixture
def finished(world, env, tmp_path):
    """A finished one-iteration run on the world copy, resumable to a second iteration."""
    root, rows = world
    out = tmp_path / "run"
    run(cli("pretrain", *TINY, "--iterations", "1", "--data", write_manifest(root, rows), "--out", out), env)
    return root, rows, out


def test_resume_with_the_same_files_in_another_order_is_refused_before_writing(finished, env):
    root, rows, out = finished
    before = snapshot(out)
    reordered = write_manifest(root, rows[::-1], "reordered.csv")
    p = run(cli("pretrain", *TINY, "--iterations", "2", "--resume", "--data", reordered, "--out", out), env, expect=2)
    assert "the usable videos are not the ones the run" in p.stderr and "Traceback" not in p.stderr
    assert f"{len(rows)} at another position (reordered)" in p.stderr
    last = str(root / rows[-1]["path"])
    assert f"{last}: position {len(rows) - 1} -> 0" in p.stderr
    assert "added" not in p.stderr and "removed" not in p.stderr
    assert "Nothing was written" in p.stderr and "--allow-data-change" in p.stderr
    assert snapshot(out) == before


def test_resume_with_added_removed_and_changed_files_lists_each(finished, env):
    root, rows, out = finished
    before = snapshot(out)
    extra = dict(rows[0], path="clips/extra.mp4")
    shutil.copy(root / rows[0]["path"], root / "clips" / "extra.mp4")
    changed = root / rows[2]["path"]
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # e.g. re-encoded in place
    edited = write_manifest(root, [r for r in rows if r is not rows[1]] + [extra], "edited.csv")
    p = run(cli("pretrain", *TINY, "--iterations", "2", "--resume", "--data", edited, "--out", out), env, expect=2)
    err = p.stderr
    assert "IndexError" not in err and "Traceback" not in err
    assert f"1 added (usable now, not recorded):\n      {root / 'clips' / 'extra.mp4'}" in err
    assert f"1 removed (recorded, no longer usable or in the data):\n      {root / rows[1]['path']}" in err
    assert f"1 changed since they were recorded:\n      {changed}: modified" in err
    assert "reordered" not in err  # an insertion or a removal shifts positions; it does not reorder
    assert snapshot(out) == before


def test_allow_data_change_at_an_iteration_boundary_remaps_by_path(finished, env):
    root, rows, out = finished
    old_assign = np.load(out / "clusters" / "video_assignments.npy")
    old_paths = [v.path for v in read_index(out / "videos.csv")]
    shutil.copy(root / rows[0]["path"], root / "clips" / "extra.mp4")
    new_rows = rows[::-1] + [dict(rows[0], path="clips/extra.mp4")]
    m = write_manifest(root, new_rows, "new.csv")
    run(cli("pretrain", *TINY, "--iterations", "2", "--resume", "--allow-data-change", "--data", m, "--out", out), env)
    new_paths = [v.path for v in read_index(out / "videos.csv")]
    assert new_paths == [str(root / r["path"]) for r in new_rows]
    (change,) = [json.loads(line) for line in (out / "data_changes.jsonl").read_text().splitlines()]
    assert (change["added"], change["removed"], change["reordered"]) == (1, 0, len(rows))
    assert "at an iteration boundary" in change["what"]
    summaries = [r for r in metrics(out) if r.get("summary")]
    assert [r["iteration"] for r in summaries] == [0, 1]
    assert len(np.load(out / "clusters" / "video_assignments.npy")) == len(new_rows)
    assert (out / "encoders.pt").exists()
    # Iteration 1 compared its clusters with iteration 0's pseudo-labels, which were re-mapped by path to
    # the new list (one entry per video now, the added one unlabelled): without that, no comparison.
    assert "nmi_previous" in summaries[1]["clusters"]["video"]
    assert len(old_assign) == len(old_paths) == len(rows)


def test_allow_data_change_mid_iteration_goes_back_to_the_last_finished_one(world, env, tmp_path):
    """Killed in the middle of iteration 1, resumed on a manifest with one more video: the pseudo-labels of
    iteration 1 were made for the old list, so the run goes back to the end of iteration 0 and clusters
    the new list before training on it; without the flag, the same resume is refused."""
    root, rows = world
    out = tmp_path / "run"
    args = cli("pretrain", *LONG, "--data", write_manifest(root, rows), "--out", out)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert proc.poll() is None, "the run ended before iteration 1 was checkpointed"
            assert time.monotonic() < deadline
            try:
                state = load_checkpoint(out / "checkpoints" / "last.pt")
            except Exception:  # noqa: BLE001 - not written yet
                state = None
            if state is not None and state["iteration"] == 1 and not state["iteration_done"]:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    shutil.copy(root / rows[0]["path"], root / "clips" / "extra.mp4")
    more = write_manifest(root, rows + [dict(rows[0], path="clips/extra.mp4")], "more.csv")
    resume = cli("pretrain", *LONG, "--data", more, "--out", out, "--resume")
    before = snapshot(out)
    p = run(resume, env, expect=2)
    assert "1 added" in p.stderr and snapshot(out) == before
    p = run(resume + ["--allow-data-change"], env)
    assert "going back from iteration 1" in p.stderr
    summaries = [r for r in metrics(out) if r.get("summary")]
    assert [r["iteration"] for r in summaries] == [0, 1]  # iteration 1 once, redone on the new list
    assert len(np.load(out / "clusters" / "video_assignments.npy")) == len(rows) + 1
    (change,) = [json.loads(line) for line in (out / "data_changes.jsonl").read_text().splitlines()]
    assert change["added"] == 1 and "continued from iteration 0" in change["what"]
    assert load_checkpoint(out / "checkpoints" / "last.pt")["iteration_done"]


# --- the skip report ---------------------------------------------------------------------------------

@pytest.fixture
def mixed(world):
    """The world copy plus four broken files: an empty one and a text file (found by the probe), a video
    whose codec id was damaged (an unsupported codec), and a Matroska file cut short after its header
    (found only when decoded)."""
    root, rows = world
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "notes.mp4").write_text("field notes, not a video\n" * 20)
    data = (root / rows[0]["path"]).read_bytes()
    assert data.count(b"avc1") >= 1
    (bad / "codec.mp4").write_bytes(data.replace(b"avc1", b"zzzz"))
    whole = write_custom(bad / "whole.mkv", frames(90, 32, 32), 30, tone(3, 16000), fmt="matroska")
    (bad / "cut.mkv").write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    whole.unlink()
    names = ["empty.mp4", "notes.mp4", "codec.mp4", "cut.mkv"]
    extra = [dict(rows[0], path=f"bad/{n}", split="train") for n in names]
    return root, write_manifest(root, rows + extra, "mixed.csv"), {n: str(bad / n) for n in names}


def skipped(out):
    report = json.loads((out / "skipped.json").read_text())
    return report, {f["path"]: f["reason"] for f in report["files"]}


def test_the_console_summary_gives_each_files_own_reason(mixed, env, tmp_path):
    root, manifest, bad = mixed
    out = tmp_path / "run"
    p = run(cli("pretrain", *TINY, "--iterations", "1", "--data", manifest, "--out", out), env)
    err = p.stderr
    # Not "2 unreadable": each kind of trouble is counted apart, and each file is named with its reason.
    assert "1 unreadable: empty file" in err and "1 unreadable: not a readable media file" in err
    assert "1 unsupported video codec" in err
    assert f"{bad['empty.mp4']}: unreadable: empty file (0 bytes)" in err
    assert f"{bad['notes.mp4']}: unreadable: not a readable media file" in err
    assert f"{bad['codec.mp4']}: unsupported video codec" in err
    assert f"{bad['cut.mkv']}: " in err and "truncated file?" in err  # decode-time, in the end-of-run summary
    _, reasons = skipped(out)
    assert "unsupported video codec" in reasons[bad["codec.mp4"]] and "no video stream" not in reasons[bad["codec.mp4"]]


def test_skips_found_while_decoding_survive_a_resume(mixed, env, tmp_path):
    root, manifest, bad = mixed
    out = tmp_path / "run"
    args = cli("pretrain", *TINY, "--iterations", "1", "--data", manifest, "--out", out)
    run(args, env)
    first, reasons = skipped(out)
    assert set(reasons) == set(bad.values()) and "truncated file?" in reasons[bad["cut.mkv"]]
    run(args + ["--resume"], env)  # nothing left to train: the decode-time skip is not found again
    again, reasons = skipped(out)
    assert set(reasons) == set(bad.values())
    assert again["skipped"] == first["skipped"] and again["clips_skipped"] >= first["clips_skipped"]
    # Resumed without --data (the videos the run used, from videos.csv): the files left out stay reported.
    run(cli("pretrain", "--resume", "--out", out, "--no-progress"), env)
    _, reasons = skipped(out)
    assert set(reasons) == set(bad.values())


def test_an_aborted_run_writes_its_skip_report(mixed, env, tmp_path):
    """lr=1e30 makes the run diverge in its first iteration: it stops with an error, and skipped.json
    (never written by an aborted run before) lists the files left out until then."""
    root, manifest, bad = mixed
    out = tmp_path / "run"
    p = run(cli("pretrain", *TINY, "--data", manifest, "--out", out, "--set", "optim.lr=1e30",
                "--set", "optim.epoch_size=8", "--set", "optim.val_fraction=0", "--set", "optim.max_epochs=3"),
            env, expect=2)
    assert "avssl: error:" in p.stderr and not (out / "encoders.pt").exists()
    _, reasons = skipped(out)
    assert {bad["empty.mp4"], bad["notes.mp4"], bad["codec.mp4"], bad["cut.mkv"]} <= set(reasons)
