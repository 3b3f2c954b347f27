"""Shared test settings: small thread counts so the suite behaves the same on 2-core CI machines."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A tiny labelled demo world (real mp4 files with audio): 4 classes x 6 clips, 2 of each held out."""
    from avssl.data.demo_world import DemoWorldConfig, generate_demo_world

    out = tmp_path_factory.mktemp("tiny_world")
    cfg = DemoWorldConfig(num_classes=4, clips_per_class=6, duration=2.5, test_fraction=0.25, seed=0)
    return generate_demo_world(out, cfg, workers=1, progress=False)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep decoded-video caches of tests out of the user's cache directory."""
    monkeypatch.setenv("AVSSL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "avssl-cache"))


@pytest.fixture(scope="session")
def tiny_xdc_run(tiny_world, tmp_path_factory):
    """A finished one-iteration XDC run (cpu-tiny) on the tiny world, shared read-only between tests."""
    from avssl.config import resolve
    from avssl.engine.pretrain import pretrain

    out = tmp_path_factory.mktemp("tiny_xdc_run") / "xdc"
    return pretrain(resolve("cpu-tiny", "xdc", ["iterations=1"]), tiny_world, out, progress=False).run_dir


# --- real ``avssl`` processes (fault, lock and resume tests) ---------------------------------------

def cli(*args) -> list:
    """The command line of a real ``python -m avssl.cli`` process."""
    import sys

    return [sys.executable, "-m", "avssl.cli", *map(str, args)]


def run_cli(args, env, expect=0, timeout=300):
    """Run ``args`` to the end; its exit status must be ``expect`` (stderr shown when it is not)."""
    import subprocess

    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == expect, p.stderr[-4000:]
    return p


def run_split_and_whole(cfg, data, tmp_path):
    """Run ``cfg`` on ``data`` uninterrupted (``tmp_path/full``) and split after its first iteration then
    resumed (``tmp_path/split``); both must end with the same encoders, bit for bit."""
    from avssl.engine.pretrain import Pretrainer
    from avssl.runs import load_encoders

    Pretrainer(cfg, data, tmp_path / "full", progress=False).run()
    Pretrainer(cfg, data, tmp_path / "split", progress=False).run(max_iterations=1)
    Pretrainer(cfg, data, tmp_path / "split", resume=True, progress=False).run()
    a, b = load_encoders(tmp_path / "full").modules, load_encoders(tmp_path / "split").modules
    for slot in a:
        for (k, va), vb in zip(a[slot].state_dict().items(), b[slot].state_dict().values()):
            assert torch.equal(va, vb), f"{slot}.{k} differs after resume"


def wait_for(proc, condition, what, timeout=120, poll=0.01):
    """Poll ``condition()`` while ``proc`` runs; fail clearly if the process ends first or time runs out."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment of child processes: one thread, and the tests' isolated cache (module fixtures
    run before the autouse cache fixture, so the children get it here)."""
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                AVSSL_CACHE_DIR=str(tmp_path_factory.getbasetemp() / "avssl-cache"))
