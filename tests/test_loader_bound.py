"""The per-clip bound of benchmarks/bench_loader_bound.py decodes exactly the work a clip cannot avoid:
checked against every packet of real generated files (with B-frames, and an ``avssl data prepare``
copy without them). No timing is asserted."""
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from avssl.data.media import decode_clip
from avssl.data.prepare import PrepareTarget, prepare_file
from avssl.data.writer import write_av

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from bench_loader_bound import bound_clip  # noqa: E402

FPS = 30


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bound")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(90, 8, 12, 3)).astype(np.uint8).repeat(8, 1).repeat(8, 2)  # 96x64
    t = np.arange(3 * 44100) / 44100
    audio = np.stack([0.3 * np.sin(2 * np.pi * (300 * t + 200 * t**2)), 0.2 * np.sin(2 * np.pi * 700 * t)])
    source = write_av(root / "gop10.mp4", frames, FPS, audio.astype(np.float32), 44100, gop=10)
    copy = prepare_file(source, root / "prepared.mp4", PrepareTarget("t", 32, 30.0, 16000, 0.5, 2.0))
    return {"gop10": str(source), "prepared": str(copy)}


def _packets(path):
    """Video packets in decode order: (pts in seconds, keyframe), and the file's frame times."""
    with av.open(path) as c:
        v = c.streams.video[0]
        return [(round(float(p.pts * v.time_base), 6), p.is_keyframe) for p in c.demux(v) if p.pts is not None]


def _expected(packets, start, num_frames, seek_to):
    """Decode-order packets from the keyframe at or before ``seek_to`` to the last packet whose frame is on
    display at one of the clip's times (the frames are those times' last pts at or before them)."""
    times = sorted(t for t, _ in packets)
    needed = {max(t for t in times if t <= start + i / FPS + 1e-6) for i in range(num_frames)}
    key = max(t for t, k in packets if k and t <= max(seek_to, 0) + 1e-6)
    first = next(i for i, (t, k) in enumerate(packets) if k and t == key)
    last = max(i for i, (t, _) in enumerate(packets) if t in needed)
    return sorted(t for t, _ in packets[first: last + 1]), needed


@pytest.mark.parametrize("name", ["gop10", "prepared"])
@pytest.mark.parametrize("with_audio", [False, True])
def test_bound_decodes_from_the_keyframe_before_to_the_clips_last_frame(files, name, with_audio):
    path = files[name]
    packets = _packets(path)
    has_b = any(a[0] > b[0] for a, b in zip(packets, packets[1:]))
    assert has_b == (name == "gop10")  # the source reorders frames, the copy does not
    for start in (0.0, 0.2, 0.34, 0.5, 0.95, 1.61):
        out = bound_clip(path, start, 8, FPS, 1.0 if with_audio else None, 16000, short_side=32)
        seek_to = out["seek_to"]
        assert seek_to == pytest.approx(start) if not with_audio else seek_to < start
        expected, needed = _expected(packets, start, 8, seek_to)
        assert sorted(round(t, 6) for t in out["decoded_pts"]) == expected, start
        if not has_b:  # exactly the frames from the keyframe to the clip's last frame
            key = expected[0]
            assert expected == [t for t in sorted(t for t, _ in packets) if key <= t <= max(needed)]
        # The conversions give what the sampler gets: the same frames (a neighbour differs by ~80 levels on
        # this random-block content), scaled by one swscale pass instead of avssl's filter graph.
        frames, wave = decode_clip(path, start, 8, FPS, 1.0, 16000, short_side=32)
        assert out["frames"].shape == frames.shape
        assert np.abs(out["frames"].astype(np.int16) - frames).mean() < (0.5 if name == "prepared" else 8)
        if with_audio:
            assert np.abs(out["audio"] - wave).mean() < 0.1 * np.abs(wave).mean()
            assert out["audio_packets_decoded"] <= 1.0 * (44100 if name == "gop10" else 16000) / 1024 + 3


def test_bench_loader_bound_quick(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_loader_bound.py"), "--quick", "--out", str(out),
                           "--md", str(tmp_path / "t.md")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    (p,) = result["presets"]
    assert p["preset"] == "cpu-tiny" and [s["set"] for s in p["sets"]][-1].startswith("prepared")
    for s in p["sets"]:
        assert set(s["ms_per_clip"]) == {"bound", "decode", "sampler", "sampler_device", "reference"}
        assert s["bound_frames_decoded_per_clip"] > 0 and s["disk_mb"] > 0
        assert set(s["sampler_stages_ms_per_clip"]) == {"decode", "video", "audio"}
        assert set(s["cpu_ms_per_clip"]) == {"bound", "decode", "sampler", "sampler_device", "reference"}
        assert min(s["cpu_decode_over_bound"], s["cpu_sampler_over_bound"], s["cpu_reference_over_bound"],
                   s["cpu_sampler_device_over_bound"], s["finish_cpu_ms_per_clip"]) > 0
    assert set(p["scaling"]["clips_per_s"]) == set(p["scaling_finish_on_device"]["clips_per_s"]) == {"0", "1"}
    assert (tmp_path / "t.md").read_text().startswith("|")
