"""avssl.weights.layouts: the R(2+1)D mid-plane layouts (torchvision, xdc-release, avssl), detected and
converted exactly where a conversion is lossless, refused where it is not; ``avssl weights convert``."""
import pytest
import torch

from avssl.cli import main
from avssl.models import create_audio_resnet18, create_r2plus1d_18, create_r3d_18
from avssl.weights import LayoutError, convert_state_dict, detect_midplanes, load_weights
from conftest import CLIP

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
