"""avssl.weights.files: weight files load strictly (missing, unexpected and mis-shaped tensors named);
truncated, empty, foreign and pickled files are refused with a clear message, and nothing in them runs;
nothing in avssl loads a file except weights-only."""
import ast
import os

import pytest
import torch

from avssl.errors import CheckpointError
from avssl.io import load_checkpoint
from avssl.runs import load_encoders
from avssl.weights import LayoutError, load_weights, load_xdc_release, sha256_of
from conftest import REPO, Marker, release_state_dict, write_release


def rename_to_own_hash(path, pretraining):
    final = path.with_name(f"r2plus1d_18_{pretraining}-{sha256_of(path)[:8]}.pth")
    os.replace(path, final)
    return final


def test_torchvision_layout_under_a_release_name_is_a_shape_error(release_dir):
    path = write_release(release_dir, "xdc_ig65m_random", release_state_dict(midplanes="torchvision"))
    with pytest.raises(LayoutError) as e:
        load_xdc_release(path)
    msg = str(e.value)
    assert "18 shape mismatch(es), e.g. layer2.0.conv2.0.0.weight: file [230, 128, 1, 3, 3] vs model [288, 128, 1, 3, 3]" in msg
    assert "torchvision's mid-plane layout" in msg and "not an XDC release file" in msg


def test_missing_and_unexpected_tensors_are_named(release_sd, release_dir):
    sd = dict(release_sd)
    del sd["layer3.1.conv1.1.weight"]
    sd["projector.weight"] = torch.zeros(2)
    path = write_release(release_dir, "xdc_ig65m_kinetics", sd)
    with pytest.raises(LayoutError) as e:
        load_xdc_release(path)
    assert "1 missing, e.g. ['layer3.1.conv1.1.weight']" in str(e.value)
    assert "1 unexpected, e.g. ['projector.weight']" in str(e.value)


def test_a_pickled_object_is_refused_without_running_it(release_sd, release_dir, tmp_path):
    marker = tmp_path / "code-ran"
    path = write_release(release_dir, "xdc_ig65m_kinetics", {**release_sd, "extra": Marker(marker)}, legacy=False)
    with pytest.raises(CheckpointError) as e:
        load_xdc_release(path)
    msg = str(e.value)
    assert "refused to load" in msg and "never unpickles arbitrary objects" in msg
    assert "weights_only=False" not in msg  # no advice to do the unsafe thing
    assert not marker.exists()
    # The same file as an avssl checkpoint or encoders file: refused the same way.
    for loader in (load_checkpoint, load_encoders, load_weights):
        with pytest.raises(CheckpointError, match="refused to load"):
            loader(path) if loader is not load_weights else loader(path, check_hash=False)
    assert not marker.exists()
    # Control: the payload is live; an unrestricted unpickler would have run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_truncated_empty_and_foreign_files(release_sd, release_dir, tmp_path):
    path = write_release(release_dir, "xdc_audioset", release_sd)
    data = path.read_bytes()
    # Cut short in transit, still under its name: the hash check catches it before loading.
    cut = path.with_name(path.name)
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        load_xdc_release(cut)
    # Truncated but named after its own (truncated) content: the loader itself reports it.
    renamed = rename_to_own_hash(cut, "xdc_audioset")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_xdc_release(renamed)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty file"):
        load_checkpoint(empty)
    text = tmp_path / "notes.pth"
    text.write_text("not weights\n" * 10)
    with pytest.raises(CheckpointError, match="neither of torch.save's formats"):
        load_checkpoint(text)
    import pickle

    plain = tmp_path / "r2plus1d_18_xdc_audioset-6508c8a5.pkl"  # the release's Caffe2 file name
    plain.write_bytes(pickle.dumps({"blobs": {}}))
    with pytest.raises(CheckpointError, match="Caffe2 .pkl file"):
        load_xdc_release(plain)
    with pytest.raises(CheckpointError, match="plain Python pickle"):
        load_checkpoint(plain)


def test_nothing_in_avssl_loads_files_except_weights_only():
    """Static guard: torch.load is called in one place (avssl/io.py, weights_only=True), and
    nothing calls pickle.load(s) or np.load(allow_pickle=True)."""
    offenders = []
    for f in list((REPO / "src" / "avssl").rglob("*.py")) + [REPO / "hubconf.py"]:
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
            call = f"{owner}.{node.func.attr}"
            kw = {k.arg: k.value for k in node.keywords}
            if call == "torch.load":
                safe = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                if not safe or f.name != "io.py":
                    offenders.append(f"{f}:{node.lineno} {call}")
            elif call in ("pickle.load", "pickle.loads", "dill.load") or (
                    "allow_pickle" in kw and not (isinstance(kw["allow_pickle"], ast.Constant)
                                                  and kw["allow_pickle"].value is False)):
                offenders.append(f"{f}:{node.lineno} {call}")
    assert offenders == []
