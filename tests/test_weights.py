"""Official XDC weights and weight files in general: release files written by the test with the
release's names and layout load strictly; wrong hashes, wrong layouts, truncated files and pickled
objects are refused with a clear message (and nothing in them runs); conversions, exports, imports
and torch.hub on a local clone."""
import ast
import json
import os
import pathlib
from pathlib import Path

import pytest
import torch
from torch import nn

from avssl.cli import main
from avssl.config import resolve
from avssl.runs import ENCODERS_FORMAT, load_encoders, scratch_encoders
from avssl.errors import CheckpointError
from avssl.io import atomic_save, load_checkpoint
from avssl.models import create_audio_resnet18, create_r2plus1d_18, create_r3d_18
from avssl.weights import (
    RELEASE_FILES, LayoutError, convert_state_dict, detect_midplanes, export_torchvision, import_weights,
    load_state_dict_file, load_weights, load_xdc_release, sha256_of,
)

REPO = Path(__file__).resolve().parents[1]
CLIP = torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))


def release_state_dict(seed=0, midplanes="xdc", counters=False):
    """Weights with the release's layout: full-width R(2+1)D-18, per-conv mid-planes, no classifier,
    and (like a Caffe2 conversion) no BatchNorm counters. Random values, non-trivial statistics."""
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
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "incoming.pth"
    torch.save(sd, tmp, _use_new_zipfile_serialization=not legacy)
    final = folder / f"r2plus1d_18_{pretraining}-{name_hash or sha256_of(tmp)[:8]}.pth"
    os.replace(tmp, final)
    return final


def rename_to_own_hash(path, pretraining):
    final = path.with_name(f"r2plus1d_18_{pretraining}-{sha256_of(path)[:8]}.pth")
    os.replace(path, final)
    return final


class Marker:
    """Unpickling this object creates a file: the proof that a loader ran code from a checkpoint."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return pathlib.Path.touch, (self.path,)


@pytest.fixture(scope="module")
def release_sd():
    return release_state_dict()


@pytest.fixture
def release_dir(tmp_path):
    d = tmp_path / "release"
    yield d
    for f in d.glob("*.pth"):  # 130 MB each: do not leave them in pytest's kept temp folders
        f.unlink()


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


# --- layouts and conversion ------------------------------------------------------------------------

def test_torchvision_to_release_is_exact_and_back_is_bitwise():
    torch.manual_seed(1)
    tv = create_r2plus1d_18(width=1.0, num_classes=400)
    tv_sd = tv.state_dict()
    rel = convert_state_dict(tv_sd, "torchvision", "xdc-release")
    assert "fc.weight" not in rel and detect_midplanes(rel) == "xdc"
    assert rel["layer2.0.conv2.0.0.weight"].shape[0] == 288 and rel["layer4.0.conv2.0.3.weight"].shape[1] == 1152
    model = create_r2plus1d_18(width=1.0, midplanes="xdc")
    model.load_state_dict(rel, strict=True)
    tv.fc = None
    tv.eval(), model.eval()
    with torch.no_grad():
        # The same function (the extra mid-channels are inert); conv kernels of other shapes sum in
        # another order, hence a float tolerance instead of bitwise equality.
        torch.testing.assert_close(model(CLIP), tv(CLIP), rtol=0, atol=1e-5)
    back = convert_state_dict(rel, "xdc-release", "torchvision")
    assert set(back) == set(tv_sd) - {"fc.weight", "fc.bias"}
    assert all(torch.equal(back[k], tv_sd[k]) for k in back)


def test_a_trained_release_cannot_become_torchvision_layout(release_sd):
    with pytest.raises(LayoutError) as e:
        convert_state_dict(release_sd, "xdc-release", "torchvision")
    msg = str(e.value)
    assert "layer2.0.conv2: cannot convert xdc-release -> torchvision losslessly" in msg
    assert "288 mid-planes" in msg and "230" in msg and "midplanes='xdc'" in msg


def test_declared_layout_is_checked(release_sd):
    with pytest.raises(LayoutError, match="not in the torchvision layout"):
        convert_state_dict(release_sd, "torchvision", "xdc-release")


def test_avssl_and_torchvision_are_key_identical_at_any_width():
    for model in (create_r2plus1d_18(width=0.125), create_r3d_18(width=0.25), create_audio_resnet18(width=0.5)):
        sd = model.state_dict()
        for src, dst in (("avssl", "torchvision"), ("torchvision", "avssl")):
            out = convert_state_dict(sd, src, dst)
            assert list(out) == list(sd) and all(torch.equal(out[k], sd[k]) for k in sd)
    # Mid-plane conversion of a small avssl encoder, both ways, like the full-width one.
    small = create_r2plus1d_18(width=0.125).state_dict()
    wide = convert_state_dict(small, "avssl", "avssl", midplanes="xdc")
    create_r2plus1d_18(width=0.125, midplanes="xdc").load_state_dict(wide, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(convert_state_dict(wide, "avssl", "torchvision").values(),
                                                 small.values()))
    with pytest.raises(LayoutError, match="R\\(2\\+1\\)D-18 video encoders only"):
        convert_state_dict(create_audio_resnet18().state_dict(), "avssl", "xdc-release")


# --- exports, imports, torch.hub --------------------------------------------------------------------

def tiny_encoders_file(run_dir, seed=0, midplanes="torchvision"):
    """An ``encoders.pt`` as a pretraining run writes it (cpu-tiny architecture, random weights)."""
    cfg = resolve("cpu-tiny", "xdc", [f"video.midplanes={midplanes}"])
    enc = scratch_encoders(cfg, seed=seed)
    payload = {"format": ENCODERS_FORMAT, "method": "xdc", "config": cfg.to_dict(), "slots": enc.slots,
               "encoders": {s: m.state_dict() for s, m in enc.modules.items()}}
    atomic_save(payload, Path(run_dir) / "encoders.pt")
    return load_encoders(run_dir)


@pytest.mark.parametrize("midplanes", ["torchvision", "xdc"])
def test_export_is_a_plain_state_dict_and_imports_back(midplanes, tmp_path, capsys):
    enc = tiny_encoders_file(tmp_path / "run", midplanes=midplanes)
    for modality in ("video", "audio"):
        out = tmp_path / f"{modality}.pth"
        assert main(["weights", "export", str(tmp_path / "run"), "--out", str(out), "--modality", modality]) == 0
        raw = torch.load(out, weights_only=True)  # plain data: what any torchvision user would do
        want = enc.for_modality(modality)[1].state_dict()
        assert type(raw) is dict and list(raw) == list(want)
        assert all(torch.equal(raw[k], want[k]) for k in want)
        # Back into avssl for evaluation: the same encoder and architecture.
        assert main(["weights", "import", str(out), "--out", str(tmp_path / f"imported-{modality}")]) == 0
        back = load_encoders(tmp_path / f"imported-{modality}")
        assert back.slots == {modality: modality}
        section = getattr(back.cfg, modality)
        assert section.width == getattr(enc.cfg, modality).width
        got = back.modules[modality].state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert detect_midplanes(load_state_dict_file(tmp_path / "video.pth")) == midplanes
    with pytest.raises(LayoutError, match=r"holds a video encoder \(r2plus1d_18\), not the audio encoder"):
        import_weights(tmp_path / "video.pth", tmp_path / "wrong", modality="audio")
    api = load_encoders(import_weights(tmp_path / "video.pth", tmp_path / "api", overrides=["video.crop=12"]))
    assert api.cfg.video.crop == 12 and api.cfg.video.midplanes == midplanes
    assert "encoders written to" in capsys.readouterr().out


def test_export_with_hash_name_is_verifiable(tmp_path):
    enc = tiny_encoders_file(tmp_path / "run")
    path = export_torchvision(enc, tmp_path / "xdc_tiny.pth", hash_name=True)
    assert path.name == f"xdc_tiny-{sha256_of(path)[:8]}.pth" and not (tmp_path / "xdc_tiny.pth").exists()
    # torch.hub's own hash check (the name's hex prefix against the SHA-256) accepts it.
    from torch.hub import HASH_REGEX

    assert sha256_of(path).startswith(HASH_REGEX.search(path.name).group(1))
    want = enc.modules["video"].state_dict()
    assert all(torch.equal(load_weights(path).state_dict()[k], want[k]) for k in want)
    # Named like the release but not one of its pretrainings: a plain (hash-checked) state dict.
    mine = export_torchvision(enc, tmp_path / "r2plus1d_18_mine.pth", hash_name=True)
    assert mine.name.startswith("r2plus1d_18_mine-") and load_weights(mine).out_dim == 64
    mine.write_bytes(mine.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        load_weights(mine)


def test_release_import_then_linear_evaluation(release_sd, release_dir, tiny_world, tmp_path, capsys):
    path = write_release(release_dir, "xdc_ig65m_kinetics", release_sd)
    out = tmp_path / "xdc-ig-kinetics"
    small_clips = ["--set", "video.num_frames=4", "--set", "video.resize=20", "--set", "video.crop=16",
                   "--set", "loader.workers=0", "--set", "optim.batch_size=12"]
    assert main(["weights", "import", str(path), "--out", str(out), *small_clips]) == 0
    state = load_checkpoint(out / "encoders.pt")
    assert state["source"]["pretraining"] == "xdc_ig65m_kinetics" and state["source"]["sha256"] == sha256_of(path)
    enc = load_encoders(out)
    assert enc.cfg.video.midplanes == "xdc" and enc.cfg.video.width == 1.0 and enc.slots == {"video": "video"}
    assert enc.cfg.preset == "xdc-paper" and enc.cfg.video.crop == 16
    assert torch.equal(enc.modules["video"].state_dict()["layer4.0.conv2.0.0.weight"],
                       release_sd["layer4.0.conv2.0.0.weight"])
    code = main(["eval", "linear", "--encoders", str(out), "--data", str(tiny_world), "--out", str(tmp_path / "eval"),
                 "--train-clips", "1", "--test-clips", "1", "--epochs", "2", "--lrs", "0.01", "--no-progress"])
    assert code == 0
    result = json.loads((tmp_path / "eval" / "linear.json").read_text())
    assert 0.0 <= result["mean"]["accuracy"] <= 1.0
    # The release has no audio encoder: an audio evaluation says so before extracting anything.
    code = main(["eval", "linear", "--encoders", str(out), "--data", str(tiny_world), "--out", str(tmp_path / "a"),
                 "--modality", "audio", "--no-progress"])
    assert code == 2 and "no audio encoder" in capsys.readouterr().err


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


def test_torch_hub_load_of_the_local_clone(release_sd, release_dir, tmp_path):
    path = write_release(release_dir, "xdc_ig65m_kinetics", release_sd)
    model = torch.hub.load(str(REPO), "xdc_video", source="local", path=str(path), num_classes=101)
    assert model.fc.out_features == 101 and torch.equal(model.stem[0].weight, release_sd["stem.0.weight"])
    enc = tiny_encoders_file(tmp_path / "run")
    exported = export_torchvision(enc, tmp_path / "video.pth")
    model = torch.hub.load(str(REPO), "r2plus1d_18", source="local", pretrained_path=str(exported))
    want = enc.modules["video"].state_dict()
    assert all(torch.equal(model.state_dict()[k], want[k]) for k in want)
    with pytest.raises(LayoutError, match="mid-planes follow the torchvision layout, not xdc"):
        torch.hub.load(str(REPO), "r2plus1d_18", source="local", pretrained_path=str(exported), midplanes="xdc")
    audio = torch.hub.load(str(REPO), "avssl_encoder", source="local", run=str(tmp_path / "run"), modality="audio")
    assert audio(torch.randn(2, 1, 40, 100)).shape == (2, audio.out_dim)
    fresh = torch.hub.load(str(REPO), "r2plus1d_18", source="local", midplanes="xdc")
    assert fresh.layer2[0].conv2[0][0].out_channels == 288


def test_an_unfinished_run_exports_from_its_checkpoint(tmp_path, capsys):
    """A run killed halfway has no encoders.pt; its checkpoints/last.pt holds the latest encoders."""
    from avssl.methods import build_method

    cfg = resolve("cpu-tiny", "xdc")
    torch.manual_seed(3)
    method = build_method(cfg)
    run_dir = tmp_path / "run"
    atomic_save({"format": "avssl-pretrain/1", "config": cfg.to_dict(), "iteration": 1, "epoch": 1,
                 "iteration_done": False, "method": method.state_dict()}, run_dir / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError, match="has no encoders.pt .* pass .*last.pt"):
        load_encoders(run_dir)
    out = tmp_path / "video.pth"
    assert main(["weights", "export", str(run_dir / "checkpoints" / "last.pt"), "--out", str(out)]) == 0
    got, want = torch.load(out, weights_only=True), method.encoders["video"].state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
    enc = load_encoders(run_dir / "checkpoints" / "last.pt")  # so `avssl eval --encoders .../last.pt` works
    assert enc.slots == {"video": "video", "audio": "audio"} and enc.method == "xdc"


def test_convert_command(tmp_path, capsys):
    src = tmp_path / "tv.pth"
    torch.save(create_r2plus1d_18(width=0.25).state_dict(), src)
    out = tmp_path / "release-layout.pth"
    assert main(["weights", "convert", str(src), "--from", "torchvision", "--to", "xdc-release", "--out", str(out)]) == 0
    model = load_weights(out)  # width and mid-plane layout read from the shapes
    assert detect_midplanes(model.state_dict()) == "xdc" and model.out_dim == 128
    assert main(["weights", "convert", str(out), "--from", "xdc-release", "--to", "torchvision",
                 "--out", str(tmp_path / "back.pth")]) == 0  # inert channels: allowed, exact
    back, orig = torch.load(tmp_path / "back.pth", weights_only=True), torch.load(src, weights_only=True)
    assert all(torch.equal(back[k], orig[k]) for k in orig)
    trained = {k: v + 0.01 if v.is_floating_point() else v for k, v in torch.load(out, weights_only=True).items()}
    torch.save(trained, tmp_path / "trained.pth")
    assert main(["weights", "convert", str(tmp_path / "trained.pth"), "--from", "xdc-release", "--to", "torchvision",
                 "--out", str(tmp_path / "x.pth")]) == 2
    assert "cannot convert xdc-release -> torchvision losslessly" in capsys.readouterr().err
