"""Files that used to end in a traceback, now one clear message each: broken manifests (a NUL byte, a field
over csv's 128 KiB limit, an unbalanced quote that merges rows), a pickled ``.npy`` in a run's
``clusters/``, a checkpoint whose pickle calls a blocked function, a video whose codec no decoder knows."""
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avssl.cli import main
from avssl.data.manifest import Manifest
from avssl.data.media import decode_clip, probe
from avssl.errors import CheckpointError
from avssl.io import load_array, load_checkpoint
from avssl.errors import ConfigError, MediaError
from conftest import Marker


def pretrain_argv(data, out):
    return ["pretrain", "--method", "xdc", "--preset", "cpu-tiny", "--no-progress", "--data", str(data), "--out", str(out)]


# --- manifests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    (b"path,label\nclips/a\x00b.mp4,x\nclips/c.mp4,y\n",
     "line 2: the 'path' field contains a NUL byte (\\0), which no file name or label can hold"),
    (b"path,label\nclips/a.mp4,x\x00\n", "line 2: the 'label' field contains a NUL byte"),
    ("path,label\n".encode("utf-16"), "line 1: the header contains NUL bytes"),  # a spreadsheet's UTF-16 text
    (b"path,label\nclips/a.mp4,x\nclips/" + b"b" * 140_000 + b".mp4,y\n",
     "line 3: a field is longer than 131072 characters (128 KiB), more than any path or label"),
    (b'path,label\nclips/a.mp4,x\n"clips/b.mp4,y\nclips/c.mp4,z\nclips/d.mp4,w\n',
     "lines 3-5: the 'path' field spans 3 lines ('clips/b.mp4,y' ... 'clips/d.mp4,w'): a double quote (\") on "
     "line 3 opens a quoted field that never closes"),
    (b'path,label\nclips/a.mp4,"x\nclips/b.mp4,y\nclips/c.mp4",z\nclips/d.mp4,w\n',
     "a double quote (\") on line 2 opens a quoted field that closes only on line 4, merging the rows between into one"),
    (b'path,label,note\nclips/a.mp4,x,"oops\nclips/b.mp4,y,ok\n', "lines 2-3: the 'note' field spans 2 lines"),
])
def test_broken_manifests_are_one_clear_error_naming_the_line(text, message, tmp_path, capsys):
    m = tmp_path / "m.csv"
    m.write_bytes(text)
    assert main(pretrain_argv(m, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_line_breaks_inside_a_quoted_metadata_value_stay_allowed(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text('path,label,caption\na.mp4,x,"first line\nsecond line"\nb.mp4,y,plain\n')
    items = Manifest.read(m).items
    assert [it.meta["caption"] for it in items] == ["first line\nsecond line", "plain"]


# --- a pickled .npy in a run's clusters/ ---------------------------------------------------------

@pytest.fixture
def poisoned_run(tiny_xdc_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_xdc_run, run, ignore=shutil.ignore_patterns(".avssl.lock"))
    marker = tmp_path / "code-ran"
    for name in ("video", "audio"):  # XDC's video encoder learns from the audio clusters
        f = run / "clusters" / f"{name}_assignments.npy"
        evil = np.empty(len(np.load(f)), dtype=object)
        evil[0] = Marker(marker)
        np.save(f, evil, allow_pickle=True)
    return run, marker


@pytest.mark.parametrize("command", [
    ["eval", "clusters", "--run", "RUN", "--out", "OUT"],
    ["retrain-long", "--run", "RUN", "--out", "OUT", "--frames", "16", "--no-progress"],
])
def test_a_pickled_npy_in_clusters_is_refused_without_running_it(command, poisoned_run, tmp_path, capsys):
    run, marker = poisoned_run
    argv = [str(run) if a == "RUN" else str(tmp_path / "out") if a == "OUT" else a for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "_assignments.npy: refused to load: the file holds pickled Python objects" in err
    assert "never unpickles" in err and "allow_pickle" not in err and "Traceback" not in err
    assert not marker.exists()
    # Control: the payload is live; unpickling would have run it.
    np.load(run / "clusters" / "video_assignments.npy", allow_pickle=True)
    assert marker.exists()


def test_a_plain_pickle_named_npy_and_a_truncated_npy(tmp_path):
    marker = tmp_path / "code-ran"
    with open(tmp_path / "a.npy", "wb") as f:
        pickle.dump(Marker(marker), f)
    with pytest.raises(CheckpointError, match="refused to load: the file holds pickled Python objects"):
        load_array(tmp_path / "a.npy")
    assert not marker.exists()
    np.save(tmp_path / "b.npy", np.arange(1000))
    (tmp_path / "b.npy").write_bytes((tmp_path / "b.npy").read_bytes()[:300])
    with pytest.raises(CheckpointError, match="not a readable .npy"):
        load_array(tmp_path / "b.npy")
    np.save(tmp_path / "c.npy", np.arange(5))
    assert load_array(tmp_path / "c.npy").tolist() == [0, 1, 2, 3, 4]


# --- an unsafe pickle in a checkpoint ------------------------------------------------------------

class Shell:
    """Unpickles to a shell command (os.system, whose module torch's weights-only loader blocks)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("payload, name", [
    (lambda m: Shell(m), "the global posix.system, whose module posix is blocked"),
    (lambda m: Marker(m), "the global getattr"),  # how pickle refers to Path.touch
])
def test_an_unsafe_pickle_is_refused_naming_the_object_and_never_suggesting_unsafe_loading(payload, name, tmp_path,
                                                                                           capsys):
    marker = tmp_path / "code-ran"
    path = tmp_path / "encoders.pt"
    torch.save({"weights": torch.zeros(3), "extra": payload(marker)}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert f"({name})" in msg and "refused to load" in msg
    for unsafe in ("weights_only", "Re-running", "will likely succeed", "add_safe_globals", "trusted source"):
        assert unsafe not in msg
    # The same through a command.
    assert main(["eval", "linear", "--encoders", str(path), "--data", str(tmp_path), "--out", str(tmp_path / "e"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert name in err and "weights_only" not in err and "Traceback" not in err
    assert not marker.exists()


# --- a codec no decoder knows ------------------------------------------------------------------------

def test_an_unsupported_codec_is_reported_as_such(tiny_world, tmp_path):
    good = Manifest.read(tiny_world)[0].path
    data = Path(good).read_bytes()
    patched = tmp_path / "patched.mp4"
    patched.write_bytes(data.replace(b"avc1", b"zzzz"))  # the video stream's codec id, damaged
    info = probe(patched)
    assert not info.has_video and info.unsupported_video and info.has_audio and not info.unsupported_audio
    with pytest.raises(MediaError, match="unsupported video codec"):
        decode_clip(patched, 0.0, 4, 30.0, 1.0)


def test_config_error_is_raised_for_a_manifest_that_is_not_text(tmp_path):
    m = tmp_path / "m.csv"
    m.write_bytes(b"path\n" + bytes(range(256)) + b"\n")
    with pytest.raises(ConfigError, match="NUL byte"):
        Manifest.read(m)
