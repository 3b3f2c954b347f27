"""Faults injected for real: processes SIGKILLed mid-epoch, mid-extraction and mid-write, and a loss that
really becomes non-finite. Every run here is a real ``python -m avssl.cli`` process on real mp4 files.

Determinism: on CPU, with one thread and fp32 (the precision is pinned), a run resumed from its last checkpoint ends bitwise equal to an
uninterrupted run with the same seed (every random choice is derived from (seed, iteration, epoch,
item), and the checkpoint carries the weights, optimiser state, pseudo-labels and torch RNG state).
"""
import json
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import cli, run_cli, wait_for
from avssl.cli import main
from avssl.runs import load_encoders
from avssl.errors import CheckpointError
from avssl.io import atomic_save, load_checkpoint

# Long enough epochs (8 steps) that a kill lands inside one; 3 epochs, no early stop, 2 iterations.
RUN = ["--method", "xdc", "--preset", "cpu-tiny", "--no-progress", "--seed", "3", "--set", "precision=fp32",
       "--set", "optim.epoch_size=64", "--set", "optim.max_epochs=3", "--set", "optim.early_stop=0"]
TIMEOUT = 120






def run(args, env, expect=0):
    return run_cli(args, env, expect, TIMEOUT)



def kill(proc):
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def metrics(run_dir):
    p = Path(run_dir) / "metrics.jsonl"
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written right now
            break
    return out


def last_state(run_dir):
    try:
        return load_checkpoint(Path(run_dir) / "checkpoints" / "last.pt")
    except CheckpointError:
        return None


def same_weights(a, b):
    ea, eb = load_encoders(a).modules, load_encoders(b).modules
    assert ea.keys() == eb.keys()
    for slot in ea:
        sa, sb = ea[slot].state_dict(), eb[slot].state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), f"{slot}.{k} differs"


def without_times(records):
    """Records without what the clock decides: the iteration's ``times`` and each line's wall-clock ``time``."""
    return [{k: v for k, v in r.items() if k not in ("times", "time")} for r in records]


@pytest.fixture(scope="module")
def reference(tiny_world, env, tmp_path_factory):
    """The uninterrupted run every interrupted one must reproduce."""
    out = tmp_path_factory.mktemp("faults") / "reference"
    run(cli("pretrain", *RUN, "--data", tiny_world, "--out", out), env)
    return out


@pytest.fixture(scope="module")
def killed_mid_epoch(tiny_world, env, tmp_path_factory):
    """SIGKILL during an epoch of iteration 1 (after its first epoch's checkpoint), then --resume."""
    out = tmp_path_factory.mktemp("faults") / "killed-mid-epoch"
    args = cli("pretrain", *RUN, "--data", tiny_world, "--out", out)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(proc, lambda: any(r.get("iteration") == 1 and "epoch" in r for r in metrics(out)),
                 "an epoch of iteration 1 was logged")
        wait_for(proc, lambda: (s := last_state(out)) is not None and s["iteration"] == 1,
                 "the checkpoint of that epoch was written")
        kill(proc)
    finally:
        proc.kill()
    at_kill = last_state(out)
    lines_at_kill = len((out / "metrics.jsonl").read_text().splitlines())
    run(args + ["--resume"], env)
    return out, at_kill, lines_at_kill


def test_sigkill_mid_epoch_then_resume_ends_bitwise_equal(reference, killed_mid_epoch):
    out, at_kill, lines_at_kill = killed_mid_epoch
    # Killed inside iteration 1, during an epoch: its last checkpoint is mid-iteration, and nothing was
    # logged after it (the kill did not fall between a metrics line and its checkpoint).
    assert at_kill["iteration"] == 1 and not at_kill["iteration_done"] and 1 <= at_kill["epoch"] < 3
    assert lines_at_kill == at_kill["metrics_lines"]
    same_weights(reference, out)
    for name in ("video", "audio"):
        np.testing.assert_array_equal(np.load(reference / "clusters" / f"{name}_assignments.npy"),
                                      np.load(out / "clusters" / f"{name}_assignments.npy"))
    final_ref, final_out = load_checkpoint(reference / "checkpoints" / "last.pt"), load_checkpoint(out / "checkpoints" / "last.pt")
    for k, v in final_ref["method"].items():
        if torch.is_tensor(v):
            assert torch.equal(v, final_out["method"][k]), k
    assert torch.equal(final_ref["torch_rng"], final_out["torch_rng"])
    # Every epoch's numbers are the same (the lines after the checkpoint were dropped and redone).
    epochs = lambda d: without_times([r for r in metrics(d) if not r.get("summary")])  # noqa: E731
    assert epochs(out) == epochs(reference)


def test_resumed_iteration_summary_keeps_its_cluster_statistics(reference, killed_mid_epoch):
    out, _, _ = killed_mid_epoch
    summaries = lambda d: without_times([r for r in metrics(d) if r.get("summary")])  # noqa: E731
    assert summaries(out) == summaries(reference)


def test_sigkill_during_feature_extraction_then_resume_redoes_it_cleanly(reference, tiny_world, env, tmp_path):
    """Killed while iteration 1 re-extracts the features into the disk-backed arrays: the resumed run
    redoes the iteration from its start (arrays rewritten from scratch) and ends like the reference."""
    out = tmp_path / "killed-in-extraction"
    args = cli("pretrain", *RUN, "--data", tiny_world, "--out", out)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # iter_00.pt is written once iteration 0 is over; features written after it are iteration 1's.
        done0, feats = out / "checkpoints" / "iter_00.pt", out / "features" / "video.npy"
        wait_for(proc, lambda: done0.exists() and feats.stat().st_mtime_ns >= done0.stat().st_mtime_ns,
                 "iteration 1 began writing its features")
        kill(proc)
    finally:
        proc.kill()
    state = last_state(out)
    assert state["iteration"] == 0 and state["iteration_done"]  # no epoch of iteration 1 was reached
    run(args + ["--resume"], env)
    same_weights(reference, out)
    for name in ("video", "audio"):
        np.testing.assert_array_equal(np.load(reference / "features" / f"{name}.npy"),
                                      np.load(out / "features" / f"{name}.npy"))
        np.testing.assert_array_equal(np.load(reference / "clusters" / f"{name}_assignments.npy"),
                                      np.load(out / "clusters" / f"{name}_assignments.npy"))
    assert without_times(metrics(out)) == without_times(metrics(reference))


def test_sigkill_between_last_epoch_and_iteration_summary(tiny_world, env, tmp_path):
    out = tmp_path / "run"
    # A real SIGKILL at the exact point: the moment the engine writes an iteration summary.
    script = textwrap.dedent(f"""
        import os, signal, sys
        from avssl.engine import pretrain as p
        write = p.Pretrainer._metrics
        def dying(self, record):
            if record.get("summary"):
                os.kill(os.getpid(), signal.SIGKILL)
            write(self, record)
        p.Pretrainer._metrics = dying
        from avssl.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    args = [*RUN, "--data", tiny_world, "--out", out, "--iterations", "1", "--set", "optim.max_epochs=1"]
    p = subprocess.run([sys.executable, "-c", script, "pretrain", *map(str, args)], env=env, capture_output=True)
    assert p.returncode == -signal.SIGKILL
    run(cli("pretrain", *args, "--resume"), env)
    assert [r["iteration"] for r in metrics(out) if r.get("summary")] == [0]
    assert (out / "checkpoints" / "iter_00.pt").exists()


# --- checkpoints written while the process dies -----------------------------------------------------

CRASHING_WRITER = textwrap.dedent("""
    import os, signal, sys, torch
    from avssl import io as avssl_io

    target, after = sys.argv[1], int(sys.argv[2])
    real_fdopen = os.fdopen

    class Dies:
        '''A file whose process is SIGKILLed once `after` bytes have been written.'''
        def __init__(self, f):
            self.f, self.written = f, 0
        def write(self, data):
            n = len(memoryview(data).cast("B"))
            if self.written + n > after:
                self.f.write(bytes(memoryview(data).cast("B")[: after - self.written]))
                self.f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            self.written += n
            return self.f.write(data)
        def __getattr__(self, name):
            return getattr(self.f, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    avssl_io.os.fdopen = lambda fd, mode: Dies(real_fdopen(fd, mode))
    avssl_io.atomic_save({"weights": torch.arange(4_000_000, dtype=torch.float32), "epoch": 2}, target)
    print("not reached")
""")


@pytest.mark.parametrize("after", [0, 1000, 9_000_000])
def test_killed_while_writing_a_checkpoint_leaves_the_previous_one(after, env, tmp_path):
    target = tmp_path / "checkpoints" / "last.pt"
    previous = {"weights": torch.ones(10), "epoch": 1}
    atomic_save(previous, target)
    p = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(target), str(after)], env=env,
                       capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL and "not reached" not in p.stdout
    state = load_checkpoint(target)
    assert state["epoch"] == 1 and torch.equal(state["weights"], previous["weights"])
    # The half-written file is still there (SIGKILL allows no clean-up) under a temporary name that no
    # loader reads; the next save of the same checkpoint removes it.
    leftovers = [f for f in target.parent.iterdir() if f.name != "last.pt"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".last.pt.") and leftovers[0].suffix == ".tmp"
    assert leftovers[0].stat().st_size == after
    atomic_save({"weights": torch.zeros(3), "epoch": 3}, target)
    assert sorted(f.name for f in target.parent.iterdir()) == ["last.pt"]
    assert load_checkpoint(target)["epoch"] == 3


def test_killed_from_outside_while_saving_a_big_checkpoint(env, tmp_path):
    """An external SIGKILL at a random point of a large save: the checkpoint is the old or the new one,
    complete either way, never a mixture."""
    target = tmp_path / "last.pt"
    atomic_save({"epoch": 1, "weights": torch.zeros(5)}, target)
    script = ("import sys, torch; from avssl.io import atomic_save; "
              "atomic_save({'epoch': 2, 'weights': torch.ones(60_000_000)}, sys.argv[1])")
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], env=env)
    try:
        wait_for(proc, lambda: any(f.suffix == ".tmp" and f.stat().st_size > 0 for f in tmp_path.iterdir()),
                 "the temporary file received data")
        kill(proc)
    finally:
        proc.kill()
    state = load_checkpoint(target)
    if state["epoch"] == 1:
        assert torch.equal(state["weights"], torch.zeros(5))
    else:  # the save finished before the signal arrived
        assert state["epoch"] == 2 and bool((state["weights"] == 1).all())


def test_a_truncated_last_checkpoint_is_a_clear_error_on_resume(tiny_world, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["pretrain", *RUN, "--data", str(tiny_world), "--out", str(out), "--iterations", "1",
            "--set", "optim.max_epochs=1", "--set", "optim.epoch_size=8"]
    assert main(args) == 0
    ckpt = out / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:5000])  # e.g. a disk that filled up under another tool
    capsys.readouterr()
    assert main(args + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "last.pt: not a readable checkpoint: truncated or corrupt" in err and "Traceback" not in err


# --- a loss that really becomes non-finite ----------------------------------------------------------

def test_non_finite_loss_stops_the_run_naming_iteration_and_step(tiny_world, tmp_path, capsys):
    """lr=1e30: the first SGD step blows the weights up, and the next forward's loss is NaN (two steps per
    epoch, so the second step of epoch 0 meets it). Nothing is checkpointed as good."""
    out = tmp_path / "run"
    args = ["pretrain", *RUN, "--data", str(tiny_world), "--out", str(out), "--set", "optim.lr=1e30",
            "--set", "optim.epoch_size=16", "--set", "optim.val_fraction=0"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert re.search(r"avssl: error: the training loss became (nan|inf|-inf) at iteration 0, epoch 0, step 1;", err)
    assert "no checkpoint was written before" in err and "optim.lr=1e+29" in err and "Traceback" not in err
    assert not (out / "checkpoints" / "last.pt").exists() and not (out / "encoders.pt").exists()


def test_exploded_weights_are_not_checkpointed_as_good(tiny_world, tmp_path, capsys):
    """One step per epoch: the loss of epoch 0 is finite, but the weights it leaves are not; the weight
    guard stops the run before they are checkpointed, and a resume meets the same stop."""
    out = tmp_path / "run"
    args = ["pretrain", *RUN, "--data", str(tiny_world), "--out", str(out), "--set", "optim.lr=1e30",
            "--set", "optim.epoch_size=8"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "avssl: error: the weights exploded in iteration 0, epoch 0 (encoders." in err and "Traceback" not in err
    assert not (out / "checkpoints" / "last.pt").exists() and not (out / "encoders.pt").exists()
    assert metrics(out) == []
    assert main(args + ["--resume"]) == 2
    assert "the weights exploded in iteration 0, epoch 0" in capsys.readouterr().err


# --- evaluation features: an extraction killed halfway --------------------------------------------

EXTRACT = ["--encoders", "scratch", "--preset", "cpu-tiny", "--modality", "video", "--clips", "4",
           "--extract-batch-size", "2", "--no-progress"]


@pytest.fixture(scope="module")
def killed_extraction(tiny_world, env, tmp_path_factory):
    """``avssl extract`` SIGKILLed once it has begun writing features, then run again."""
    root = tmp_path_factory.mktemp("extract")
    reference, out = root / "reference", root / "killed"
    assert main(["extract", *EXTRACT, "--data", str(tiny_world), "--out", str(reference)]) == 0
    args = cli("extract", *EXTRACT, "--data", tiny_world, "--out", out)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = lambda: (out / "features").is_dir() and bool(list((out / "features").glob(".*.tmp/features.npy")))  # noqa: E731
    try:
        wait_for(proc, partial, "the extraction began writing")
        kill(proc)
    finally:
        proc.kill()
    finished_at_kill = list((out / "features").glob("video-*/meta.json")) + list(out.glob("video_features.npy"))
    run(args, env)
    return reference, out, finished_at_kill


def test_killed_evaluation_extraction_is_redone_cleanly(killed_extraction):
    reference, out, finished_at_kill = killed_extraction
    assert finished_at_kill == []  # the partial extraction never passed for a finished one
    np.testing.assert_array_equal(np.load(out / "video_features.npy"), np.load(reference / "video_features.npy"))
    assert (out / "video_index.csv").read_text() == (reference / "video_index.csv").read_text()


def test_killed_evaluation_extraction_leaves_no_litter_after_the_rerun(killed_extraction):
    _, out, _ = killed_extraction
    assert list((out / "features").glob(".*.tmp")) == []
