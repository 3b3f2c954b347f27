"""One process per run or output folder (an exclusive lock the OS releases when its process ends), output
folders that are files, and a disk that fills up during a checkpoint write. Real processes throughout:
``python -m avssl.cli`` in the background, a holder SIGKILLed, a real tmpfs of 3 MB where one can be made.
"""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import cli, wait_for
from avssl.cli import main
from avssl.runlock import LOCK_NAME, FolderInUse, RunLock, read_holder

TIMEOUT = 120
TINY = ["--method", "xdc", "--preset", "cpu-tiny", "--no-progress", "--iterations", "1", "--set", "optim.max_epochs=1"]
# Long enough to be caught running: 2 iterations of 3 epochs of 8 steps.
LONG = ["--method", "xdc", "--preset", "cpu-tiny", "--no-progress", "--set", "optim.epoch_size=64",
        "--set", "optim.max_epochs=3", "--set", "optim.early_stop=0"]

HOLDER = textwrap.dedent("""
    import sys, time
    from avssl.runlock import RunLock
    RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(600)
""")






def hold(folder, env):
    """A real second process that takes the folder's lock and sleeps."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL



# --- the lock itself --------------------------------------------------------------------------------

def test_a_second_process_is_refused_naming_the_holder_and_a_killed_holder_blocks_nothing(env, tmp_path):
    folder = tmp_path / "run"
    holder = hold(folder, env)
    try:
        with pytest.raises(FolderInUse) as e:
            RunLock(folder).acquire()
        msg = str(e.value)
        assert f"pid {holder.pid}" in msg and "started 20" in msg and "in use by another avssl process" in msg
        assert read_holder(folder)["pid"] == str(holder.pid)
        # Another process is refused the same way (not only another lock object of this one).
        p = subprocess.run([sys.executable, "-c", HOLDER, str(folder)], env=env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert p.returncode != 0 and f"pid {holder.pid}" in p.stderr and "locked" not in p.stdout
    finally:
        kill(holder)
    # SIGKILL allows no clean-up, yet the kernel released the lock with the process.
    with RunLock(folder) as lock:
        assert read_holder(folder)["pid"] == str(os.getpid()) and lock.path.name == LOCK_NAME
    with RunLock(folder):  # released again on exit
        pass


FORKING_HOLDER = textwrap.dedent("""
    import os, sys, time
    from avssl.runlock import RunLock
    RunLock(sys.argv[1]).acquire()
    child = os.fork()  # like a DataLoader worker: it shares the parent's open files
    if child == 0:
        time.sleep(600)
        os._exit(0)
    print("locked", child, flush=True)
    time.sleep(600)
""")


def test_a_killed_holder_whose_forked_worker_lives_on_blocks_nothing(env, tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", FORKING_HOLDER, str(folder)], env=env, stdout=subprocess.PIPE,
                              text=True)
    word, child = holder.stdout.readline().split()
    assert word == "locked"
    try:
        with pytest.raises(FolderInUse):
            RunLock(folder).acquire()
        kill(holder)
        os.kill(int(child), 0)  # the worker still runs...
        with RunLock(folder):  # ...and holds nothing
            pass
    finally:
        holder.kill()
        try:
            os.kill(int(child), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_refused_or_failed_command_leaves_no_folder_behind(tiny_world, tmp_path, capsys):
    out = tmp_path / "never"
    # A bad manifest is found after the lock was taken: the folder the lock made goes away with it.
    (tmp_path / "m.csv").write_text("path,label\n\"a.mp4,x\nb.mp4,y\n")
    assert main(["eval", "linear", "--encoders", "scratch", "--preset", "cpu-tiny", "--data", str(tmp_path / "m.csv"),
                 "--out", str(out), "--no-progress"]) == 2
    assert "lines 2-3" in capsys.readouterr().err
    assert not out.exists()


def test_two_pretraining_processes_on_one_run_folder(tiny_world, env, tmp_path):
    """The issue's case: a run, and a second one (another seed, then --resume) started on the same --out
    while it trains. Both are refused before writing anything; the killed first run then resumes."""
    out = tmp_path / "run"
    first = subprocess.Popen(cli("pretrain", *LONG, "--seed", "3", "--data", tiny_world, "--out", out), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(first, lambda: (out / "metrics.jsonl").exists(), "the first run logged an epoch")
        # Paused (SIGSTOP), so that it is surely still running, holding its lock, while the others try.
        first.send_signal(signal.SIGSTOP)
        config_before, metrics_before = (out / "config.json").read_text(), (out / "metrics.jsonl").read_text()
        for extra in (["--seed", "4"], ["--seed", "3", "--resume"]):
            p = subprocess.run(cli("pretrain", *LONG, *extra, "--data", tiny_world, "--out", out), env=env,
                               capture_output=True, text=True, timeout=TIMEOUT)
            assert p.returncode == 2, p.stderr[-2000:]
            assert f"in use by another avssl process (pid {first.pid}" in p.stderr and "Traceback" not in p.stderr
            assert "started 20" in p.stderr
        assert (out / "config.json").read_text() == config_before  # the refused ones wrote nothing
        assert (out / "metrics.jsonl").read_text() == metrics_before
        kill(first)
    finally:
        first.kill()
    # Killed mid-run: its lock died with it, and --resume finishes the run.
    p = subprocess.run(cli("pretrain", *LONG, "--seed", "3", "--resume", "--data", tiny_world, "--out", out), env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "encoders.pt").exists()
    iterations = [json.loads(line)["iteration"] for line in (out / "metrics.jsonl").read_text().splitlines()
                  if json.loads(line).get("summary")]
    assert iterations == [0, 1]  # every iteration once: no second writer interleaved


@pytest.mark.parametrize("command", [
    ["eval", "linear", "--encoders", "scratch", "--preset", "cpu-tiny", "--no-progress"],
    ["extract", "--encoders", "scratch", "--preset", "cpu-tiny", "--no-progress"],
    ["eval", "clusters", "--run", "RUN"],
    ["sweep", "--methods", "scratch", "--preset", "cpu-tiny", "--no-progress"],
    ["demo", "--methods", "scratch", "--preset", "cpu-tiny", "--no-progress"],
])
def test_evaluations_sweeps_and_demos_refuse_a_folder_in_use(command, tiny_world, tiny_xdc_run, env, tmp_path,
                                                              capsys):
    out = tmp_path / "out"
    holder = hold(out, env)
    try:
        argv = [str(tiny_xdc_run) if a == "RUN" else a for a in command] + ["--out", str(out)]
        if command[0] != "demo":
            argv += ["--data", str(tiny_world)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"in use by another avssl process (pid {holder.pid}" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing was written
    finally:
        kill(holder)


# --- --out pointing at a file ---------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["pretrain", "--method", "xdc", "--preset", "cpu-tiny", "--no-progress"],
    ["eval", "linear", "--encoders", "scratch", "--preset", "cpu-tiny", "--no-progress"],
    ["eval", "svm", "--encoders", "scratch", "--preset", "cpu-tiny", "--no-progress"],
    ["extract", "--encoders", "scratch", "--preset", "cpu-tiny", "--no-progress"],
])
@pytest.mark.parametrize("where", ["file", "below a file"])
def test_out_pointing_at_a_file_is_a_clear_error(command, where, tiny_world, tmp_path, capsys):
    f = tmp_path / "results.txt"
    f.write_text("not a folder\n")
    out = f if where == "file" else f / "sub"
    assert main([*command, "--data", str(tiny_world), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert ("is a file, not a folder" if where == "file" else "is a file, so no folder can be made inside it") in err
    assert "Traceback" not in err and f.read_text() == "not a folder\n"


# --- a full disk --------------------------------------------------------------------------------

def _tmpfs_runner(folder: Path):
    """A command prefix that runs its command with a fresh 3 MB tmpfs mounted on ``folder`` (a private
    mount namespace: nothing outside the command sees it), or None when this machine cannot make one."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in ([unshare, "--mount"], [unshare, "--user", "--map-root-user", "--mount"]):
        probe = subprocess.run([*prefix, "sh", "-c", f"mount -t tmpfs -o size=3m tmpfs '{folder}' && df -k '{folder}'"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and "tmpfs" in probe.stdout:
            return prefix
    return None


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "small"
    prefix = _tmpfs_runner(folder)
    if prefix is None:
        pytest.skip("cannot mount a small tmpfs here (no unshare, or no permission for a mount namespace)")

    def run(argv: list, env, after: str = ""):
        """``argv`` with the small disk mounted, then the shell commands ``after``; exits with argv's status."""
        script = f"mount -t tmpfs -o size=3m tmpfs {shlex.quote(str(folder))} && {{ {shlex.join(map(str, argv))}; " \
                 f"rc=$?; {after} exit $rc; }}"
        return subprocess.run([*prefix, "sh", "-c", script], env=env, capture_output=True, text=True, timeout=300)

    return folder, run


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_one(small_disk, env):
    folder, run = small_disk
    script = textwrap.dedent(f"""
        import os, sys, torch
        from avssl.errors import DiskFullError
        from avssl.io import atomic_save, load_checkpoint
        target = os.path.join({str(folder)!r}, "last.pt")
        atomic_save({{"epoch": 1, "w": torch.ones(1000)}}, target)
        try:
            atomic_save({{"epoch": 2, "w": torch.zeros(2_000_000)}}, target)  # 8 MB on a 3 MB disk
        except DiskFullError as e:
            print("REFUSED", e)
        print("EPOCH", load_checkpoint(target)["epoch"], sorted(os.listdir({str(folder)!r})))
    """)
    p = run([sys.executable, "-c", script], env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "REFUSED" in p.stdout and "no room to write it (No space left on device" in p.stdout
    assert "the previous last.pt is intact" in p.stdout
    assert "EPOCH 1 ['last.pt']" in p.stdout  # the old checkpoint, and no half-written temporary file


def test_pretraining_onto_a_full_disk_is_one_clear_error(small_disk, tiny_world, env):
    folder, run = small_disk
    out = folder / "run"
    p = run(cli("pretrain", *TINY, "--data", tiny_world, "--out", out), env,
            after=f"echo; echo SKIPPED; cat {shlex.quote(str(out / 'skipped.json'))};")
    assert p.returncode == 2, p.stderr[-3000:]
    assert "avssl: error:" in p.stderr and "no room to write it (No space left on device" in p.stderr
    assert "Traceback" not in p.stderr and "unexpected pos" not in p.stderr
    report = json.loads(p.stdout.split("SKIPPED", 1)[1])  # the skip report was written before the abort
    assert report["skipped"] == 0


def test_disk_full_errors_are_recognised_through_torchs_wrapping(tmp_path):
    """torch.save reports ENOSPC as RuntimeError('... unexpected pos ...') with the OSError chained; the
    size limit of a process (RLIMIT_FSIZE, EFBIG) is the same condition and works without a mount."""
    script = textwrap.dedent(f"""
        import resource, signal, torch
        from avssl.errors import DiskFullError
        from avssl.io import atomic_save, load_checkpoint
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        target = {str(tmp_path / 'last.pt')!r}
        atomic_save({{"epoch": 1}}, target)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
        try:
            atomic_save({{"epoch": 2, "w": torch.zeros(1_000_000)}}, target)
        except DiskFullError as e:
            print("REFUSED", e)
        print("EPOCH", load_checkpoint(target)["epoch"])
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "REFUSED" in p.stdout and "no room to write it (File too large" in p.stdout and "EPOCH 1" in p.stdout
    assert sorted(f.name for f in tmp_path.iterdir()) == ["last.pt"]
