import pytest

from avssl.config import PRESETS, PretrainConfig, apply_overrides, preset, resolve
from avssl.errors import ConfigError
from avssl.methods import validate


def test_paper_preset_is_the_papers_recipe():
    c = preset("xdc-paper")
    assert (c.video.encoder, c.video.num_frames, c.video.crop, c.video.resize, c.video.fps) == ("r2plus1d_18", 8, 224, 256, 30)
    assert (c.audio.encoder, c.audio.n_mels, c.audio.num_frames, c.audio.duration) == ("audio_resnet18", 40, 100, 2.0)
    o = c.optim
    assert (o.lr, o.batch_size, o.weight_decay, o.warmup_epochs, o.step_epochs, o.max_epochs, o.gamma) == (
        0.01, 32, 1e-4, 10, 10, 30, 0.01)
    assert o.early_stop == 3 and c.clustering.k == 256


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates_and_round_trips(name, tmp_path):
    c = resolve(name, check=validate)  # its method's own section too
    c.save(tmp_path / "c.json")
    assert PretrainConfig.load(tmp_path / "c.json") == c


def test_overrides_parse_json_values_and_reject_unknown_keys():
    c = apply_overrides(preset("cpu-small"), ["optim.lr=0.5", "clustering.pca_dim=64", "method=cdc", "video.midplanes=xdc"])
    assert c.optim.lr == 0.5 and c.clustering.pca_dim == 64 and c.method == "cdc" and c.video.midplanes == "xdc"
    with pytest.raises(ConfigError, match="unknown key"):
        apply_overrides(preset("cpu-small"), ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides(preset("cpu-small"), ["optim.lr"])


def test_every_invalid_value_is_named_in_one_error():
    with pytest.raises(ConfigError) as e:
        resolve("cpu-small", "xdc", ["optim.lr=-1", "clustering.k=1", "video.crop=500", "precision=fp8"])
    msg = str(e.value)
    for part in ("optim.lr", "clustering.k", "video.crop", "precision"):
        assert part in msg


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="cpu-small"):
        preset("gpu-huge")
