"""avssl.weights.exchange: encoders exported as plain torchvision state dicts and imported back into avssl
(also the release, then evaluated), hash-named exports, exports from an unfinished run."""
import json

import pytest
import torch

from avssl.cli import main
from avssl.config import resolve
from avssl.errors import CheckpointError
from avssl.io import atomic_save, load_checkpoint
from avssl.runs import load_encoders
from avssl.weights import (
    LayoutError, detect_midplanes, export_torchvision, import_weights, load_state_dict_file, load_weights, sha256_of,
)
from conftest import tiny_encoders_file, write_release

# --- exports, imports ------------------------------------------------------------------------------


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
