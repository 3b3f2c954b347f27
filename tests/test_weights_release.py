"""avssl.weights.release: the official XDC release files, written by the test with the release's names
and layout, load strictly; wrong hashes and unknown names are refused with a clear message;
``avssl weights info`` reports a release file."""
import json
import os

import pytest
import torch

from avssl.cli import main
from avssl.errors import CheckpointError
from avssl.weights import RELEASE_FILES, LayoutError, load_xdc_release, sha256_of
from conftest import CLIP, write_release

# --- the release files ---------------------------------------------------------------------------


@pytest.mark.parametrize("pretraining", sorted(RELEASE_FILES))
def test_every_release_file_loads_strictly(pretraining, release_sd, release_dir):
    legacy = pretraining != "fs_imagenet"  # both of torch.save's formats
    path = write_release(release_dir, pretraining, release_sd, legacy=legacy)
    model = load_xdc_release(path)
    got = model.state_dict()
    assert set(got) - set(release_sd) == {k for k in got if k.endswith("num_batches_tracked")}
    for k, v in release_sd.items():
        assert torch.equal(got[k], v), k
    assert model.fc is None and model.layer2[0].conv2[0][0].out_channels == 288  # the release's mid-planes
    info = model.release_info
    assert info.pretraining == pretraining and info.sha256.startswith(path.name.split("-")[1][:8])
    assert not info.official  # our file, not the authors'
    model.eval()
    with torch.no_grad():
        assert model(CLIP).shape == (1, 512)
    # A fresh classifier, as the release's own loader gives (and the weights are untouched).
    m2 = load_xdc_release(path, num_classes=42, check_hash=False)
    assert m2.fc.out_features == 42 and torch.equal(m2.stem[0].weight, release_sd["stem.0.weight"])


def test_a_classifier_in_the_file_is_optional(release_sd, release_dir):
    sd = {**release_sd, "fc.weight": torch.randn(400, 512), "fc.bias": torch.randn(400)}
    path = write_release(release_dir, "fs_kinetics", sd)
    assert load_xdc_release(path).fc is None  # the encoder, as evaluation uses it
    kept = load_xdc_release(path, keep_fc=True)
    assert torch.equal(kept.fc.weight, sd["fc.weight"])
    no_fc = write_release(release_dir, "xdc_audioset", release_sd)
    with pytest.raises(LayoutError, match="holds no classifier"):
        load_xdc_release(no_fc, keep_fc=True)


def test_wrong_hash_prefix_is_refused(release_sd, release_dir):
    path = write_release(release_dir, "xdc_ig65m_kinetics", release_sd, name_hash="f24f6ffb")  # official name
    with pytest.raises(CheckpointError) as e:
        load_xdc_release(path)
    msg = str(e.value)
    assert "SHA-256 mismatch" in msg and "f24f6ffb" in msg and sha256_of(path)[:8] in msg
    assert "download it again" in msg


@pytest.mark.parametrize("name, message", [
    ("r2plus1d_18_xdc_kinetics-0123abcd.pth", "unknown XDC pretraining 'xdc_kinetics'"),
    ("xdc_weights.pth", "not named like an XDC release file"),
    ("r2plus1d_18_xdc_audioset-01ab.pth", "shorter than 8 hex digits"),
])
def test_unknown_release_names(name, message, tmp_path):
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(CheckpointError, match=message):
        load_xdc_release(tmp_path / name)


def test_the_release_has_no_audio_encoder(tmp_path):
    with pytest.raises(CheckpointError, match="video encoders only"):
        load_xdc_release(tmp_path / "r2plus1d_18_xdc_audioset-f29ffe8f.pth", modality="audio")


def test_weights_info_reports_the_release(release_sd, release_dir, capsys):
    path = write_release(release_dir, "fs_imagenet", release_sd)
    assert main(["weights", "info", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["release"] == "fs_imagenet" and info["midplanes"] == "xdc" and info["width"] == 1.0
    assert info["official_file"] is False and "ff446670" in info["note"]
    bad = path.with_name("r2plus1d_18_fs_imagenet-ff446670.pth")
    os.replace(path, bad)
    assert main(["weights", "info", str(bad)]) == 2
    assert "SHA-256 mismatch" in capsys.readouterr().err
