"""Shared test settings (small thread counts, so the suite behaves the same on 2-core CI machines), fixtures
and helpers used by several test files."""
import os
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(1)

import numpy as np  # noqa: E402
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


def run_data_command(argv) -> int:
    """``avssl data ...`` in this process (``argv`` starts with ``data``); returns the exit status."""
    import argparse

    from avssl.cli.data import register

    parser = argparse.ArgumentParser(prog="avssl")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def place(source, root, *names) -> list[str]:
    """Copy a real media file to each of ``names`` under ``root`` (subfolders made); ``source`` is the
    file, or a dict {extension: file} to copy the one that matches each name. Returns the absolute paths."""
    import shutil

    paths = []
    for name in names:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copy(source[os.path.splitext(name)[1]] if isinstance(source, dict) else source, path)
        paths.append(os.path.abspath(path))
    return paths


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


# --- cluster reports (test_cluster_*.py) -----------------------------------------------------------

@pytest.fixture
def fake_run(tiny_world, tmp_path):
    """A run directory over the tiny world: the video clustering follows the labels except one video."""
    import json

    import numpy as np

    from avssl.config import resolve
    from avssl.data.manifest import Manifest

    m = Manifest.read(tiny_world)
    run = tmp_path / "run"
    (run / "clusters").mkdir(parents=True)
    lines = ["index,path,label"] + [f"{i},{json.dumps(it.path)},\"\"" for i, it in enumerate(m)]
    (run / "videos.csv").write_text("\n".join(lines) + "\n")
    resolve("cpu-tiny", "xdc").save(run / "config.json")
    labels = np.unique([it.label for it in m], return_inverse=True)[1]
    video = labels.copy()
    video[0] = (video[0] + 1) % 4
    rng = np.random.default_rng(0)
    for name, a in (("video", video), ("audio", rng.permutation(labels))):
        np.save(run / "clusters" / f"{name}_assignments.npy", a)
        np.save(run / "clusters" / f"{name}_distances.npy", rng.random(len(a)).astype(np.float32))
        np.save(run / "clusters" / f"{name}_centroids.npy", np.zeros((4, 8), np.float32))
    return run, labels, video


def non_uniform_png(path):
    """Whether the image at ``path`` shows something: not empty, not one flat colour."""
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(path).convert("RGB"))
    return img.size > 0 and img.reshape(-1, 3).std(0).max() > 10


# --- real media files (test_media_*.py): written with avssl.data.writer, frames and clicks at known times --

FPS = 30
SECONDS = 3
FLASHES = [10, 37, 55, 80]  # frame indices that are white; each has a click at the same time
CLICK = 0.005  # click length in seconds; its peak is at its centre


def _click(rate: int) -> np.ndarray:
    n = int(CLICK * rate)
    return (0.9 * np.hanning(n) * np.sin(2 * np.pi * 1000 * np.arange(n) / rate)).astype(np.float32)


def _tone(rate: int, seconds: float = SECONDS) -> np.ndarray:
    """Tonal audio: FFmpeg's AAC encoder still codes a few of its bands by perceptual noise
    substitution (mostly at 44.1/48 kHz), whose decoder-side random generator makes a decode after a
    seek differ from a decode from the start, by up to ~1e-5 (1.5e-4 at 48 kHz); with aac_pns=0 (as
    ``avssl data prepare`` writes) the two are bit-identical."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (220 * t + 100 * t**2)) + 0.2 * np.sin(2 * np.pi * 523 * t)).astype(np.float32)


def _index_video(n: int) -> np.ndarray:
    """32x32 frames showing their index in binary (a 4x4 grid of black/white 8x8 blocks), which
    survives compression and downscaling, so a decoded frame tells which source frame it is."""
    bits = (np.arange(n)[:, None] >> np.arange(16)) & 1
    blocks = np.repeat(np.repeat(bits.reshape(n, 4, 4) * 255, 8, axis=1), 8, axis=2)
    return np.repeat(blocks[..., None], 3, axis=-1).astype(np.uint8)


def frame_indices(frames: np.ndarray) -> list[int]:
    n, h, w, _ = frames.shape
    blocks = frames.reshape(n, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4, 5)).reshape(n, 16)
    return [int(((b > 128) << np.arange(16)).sum()) for b in blocks]


@pytest.fixture(scope="session")
def media_files(tmp_path_factory):
    """Writes test files on first use and keeps them for the session (tests only read them)."""
    root = tmp_path_factory.mktemp("media")
    made = {}

    def get(name):
        if name not in made:
            made[name] = _make(root, name)
        return made[name]

    return get


def _make(root, name):
    from avssl.data.writer import write_av

    # Matroska stores timestamps in whole milliseconds and AAC priming as a codec delay.
    path = root / (f"{name[:-4]}.mkv" if name.endswith("_mkv") else f"{name}.mp4")
    if name.startswith("sync"):  # sync_<rate>_<channels>[_mkv]
        rate, channels = (int(x) for x in name.split("_")[1:3])
        video = np.zeros((SECONDS * FPS, 48, 64, 3), np.uint8)
        audio = np.zeros((channels, SECONDS * rate), np.float32)
        click = _click(rate)
        for j, f in enumerate(FLASHES):
            video[f] = 255
            at = round(f / FPS * rate)
            audio[j % channels, at : at + click.size] = click  # alternate channels: the downmix needs both
        write_av(path, video, FPS, audio, rate, gop=FPS)
    elif name == "tone":
        write_av(path, _index_video(SECONDS * FPS), FPS, np.stack([_tone(44100), _tone(44100)[::-1]]), 44100, gop=FPS)
    elif name.startswith("longgop"):  # longgop_<rate>_<channels>: x264's default GOP, one keyframe
        rate, channels = (int(x) for x in name.split("_")[1:3])
        audio = np.stack([_tone(rate), _tone(rate)[::-1]])[:channels]
        write_av(path, _index_video(SECONDS * FPS), FPS, audio, rate)
    elif name == "fps30_mkv":
        write_av(path, _index_video(60), 30, gop=30)
    elif name == "fps25":
        write_av(path, _index_video(50), 25, gop=25)
    elif name == "fps2997":
        write_av(path, _index_video(60), Fraction(30000, 1001), gop=30)
    elif name == "audio_only":
        write_av(path, None, audio=_tone(16000), sample_rate=16000)
    elif name == "video_only":
        write_av(path, _index_video(SECONDS * FPS), FPS)
    elif name == "long":  # 20 s with a keyframe every second
        rng = np.random.default_rng(0)
        write_av(path, rng.integers(0, 256, (600, 96, 128, 3), dtype=np.uint8), FPS, gop=FPS)
    else:
        raise KeyError(name)
    return path


def raises_naming(path, fn, match):
    """``fn(path)`` raises a MediaError that names ``path``, in its message and its ``path``."""
    from avssl.errors import MediaError

    with pytest.raises(MediaError, match=match) as err:
        fn(path)
    assert str(path) in str(err.value) and err.value.path == str(path)



# --- video clips and transforms (test_transforms_*.py, test_dataset.py) -------------------------------

def noise_entries(root, count=3, height=48, width=64):
    """``count`` 3 s mp4 videos (uniform noise frames, 30 fps, 1 s GOP) with a 44.1 kHz stereo two-tone
    chord, as dataset entries."""
    from avssl.data.dataset import VideoEntry
    from avssl.data.writer import write_av

    gen = np.random.default_rng(0)
    t = np.arange(3 * 44100) / 44100
    out = []
    for i in range(count):
        audio = np.stack([0.3 * np.sin(2 * np.pi * (220 + 50 * i) * t), 0.2 * np.sin(2 * np.pi * 523 * t)])
        path = write_av(root / f"v{i}.mp4", gen.integers(0, 256, (90, height, width, 3), dtype=np.uint8), 30,
                        audio.astype(np.float32), 44100, gop=30)
        out.append(VideoEntry(str(path), 3.0, -1, i))
    return out


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def uint8_clip(t=4, h=24, w=32, seed=0, same_frames=False) -> np.ndarray:
    frames = np.random.default_rng(seed).integers(0, 256, size=(1 if same_frames else t, h, w, 3), dtype=np.uint8)
    return np.repeat(frames, t, axis=0) if same_frames else frames


def video(t=4, h=24, w=32, seed=0, same_frames=False) -> torch.Tensor:
    from avssl.data.transforms import to_tensor_video

    return to_tensor_video(uint8_clip(t, h, w, seed, same_frames))


def _full_train():
    from avssl.data.transforms import video_transform

    return video_transform(
        train=True, crop_size=16, resize=20, color_jitter=0.4, grayscale=0.5, blur=0.5, cutout=1.0, multiscale=True
    )


FULL_TRAIN = _full_train()  # every training augmentation at once


# --- weight files (test_weights_*.py, test_hubconf.py) ----------------------------------------------

REPO = Path(__file__).resolve().parents[1]
CLIP = torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))


def release_state_dict(seed=0, midplanes="xdc", counters=False):
    """Weights with the release's layout: full-width R(2+1)D-18, per-conv mid-planes, no classifier,
    and (like a Caffe2 conversion) no BatchNorm counters. Random values, non-trivial statistics."""
    from avssl.models import create_r2plus1d_18

    torch.manual_seed(seed)
    model = create_r2plus1d_18(width=1.0, midplanes=midplanes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    return {k: v for k, v in model.state_dict().items() if counters or not k.endswith("num_batches_tracked")}


def write_release(folder, pretraining, sd, legacy=True, name_hash=None):
    """Save ``sd`` as the release does (PyTorch 1.4 wrote the legacy format) under the release's name
    pattern, with the first 8 hex digits of the file's own SHA-256 unless ``name_hash`` is given."""
    from avssl.weights import sha256_of

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "incoming.pth"
    torch.save(sd, tmp, _use_new_zipfile_serialization=not legacy)
    final = folder / f"r2plus1d_18_{pretraining}-{name_hash or sha256_of(tmp)[:8]}.pth"
    os.replace(tmp, final)
    return final


@pytest.fixture(scope="module")
def release_sd():
    return release_state_dict()


@pytest.fixture
def release_dir(tmp_path):
    d = tmp_path / "release"
    yield d
    for f in d.glob("*.pth"):  # 130 MB each: do not leave them in pytest's kept temp folders
        f.unlink()


def tiny_encoders_file(run_dir, seed=0, midplanes="torchvision"):
    """An ``encoders.pt`` as a pretraining run writes it (cpu-tiny architecture, random weights)."""
    from avssl.config import resolve
    from avssl.io import atomic_save
    from avssl.runs import ENCODERS_FORMAT, load_encoders, scratch_encoders

    cfg = resolve("cpu-tiny", "xdc", [f"video.midplanes={midplanes}"])
    enc = scratch_encoders(cfg, seed=seed)
    payload = {"format": ENCODERS_FORMAT, "method": "xdc", "config": cfg.to_dict(), "slots": enc.slots,
               "encoders": {s: m.state_dict() for s, m in enc.modules.items()}}
    atomic_save(payload, Path(run_dir) / "encoders.pt")
    return load_encoders(run_dir)


# --- a layer that bf16 gets wrong (test_bf16_check.py, test_precision.py) -----------------------------

class _Explode(torch.autograd.Function):
    """Identity forward; multiplies the gradient by 1e20, as the oneDNN defect did to weight gradients."""

    @staticmethod
    def forward(ctx, w):
        return w.view_as(w)

    @staticmethod
    def backward(ctx, g):
        return g * 1e20


class WrongUnderBf16Conv3d(nn.Conv3d):
    """A (3, 1, 1) temporal convolution whose weight gradient is wrong under bf16 autocast only."""

    def forward(self, x):
        w = _Explode.apply(self.weight) if torch.is_autocast_enabled("cpu") else self.weight
        return self._conv_forward(x, w, self.bias)


def wrong_under_bf16_model():
    """Two convolutions, each followed by BatchNorm and ReLU; the second (``3``) is wrong under bf16."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(4, 8, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(8), nn.ReLU(),
                         WrongUnderBf16Conv3d(8, 8, (3, 1, 1), padding=(1, 0, 0)), nn.BatchNorm3d(8), nn.ReLU())


# --- a pickle that runs code (test_bad_files.py, test_weights_files.py) -----------------------------

class Marker:
    """Unpickling this object creates a file: the proof that a loader ran code from a file."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return Path.touch, (self.path,)


# --- config refusals (test_avts.py, test_crisscross.py) ---------------------------------------------

def refused_config(method, overrides, *messages):
    """``cpu-small`` with ``method`` and ``overrides`` is refused by the full check (``methods.validate``:
    the general checks and the method's own) in one ConfigError that holds every one of ``messages``."""
    from avssl.config import resolve
    from avssl.errors import ConfigError
    from avssl.methods import validate

    with pytest.raises(ConfigError) as err:
        resolve("cpu-small", method, overrides, check=validate)
    msg = str(err.value)
    assert msg.count("invalid configuration:") == 1
    for part in messages:
        assert part in msg, part
