"""hubconf.py: torch.hub on a local clone loads the XDC release, exported encoders, a run's encoders and
fresh networks."""
import pytest
import torch

from avssl.weights import LayoutError, export_torchvision
from conftest import REPO, tiny_encoders_file, write_release


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
