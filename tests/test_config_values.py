"""Config values that used to be accepted and fail later (a NaN abort, a BatchNorm error after clustering,
an overflow in a seed, a run on a device that is not there), each refused by ``config.validate`` with its
reason, before any work: through ``avssl pretrain`` no run folder is created."""
import pytest
import torch

from avssl.cli import main
from avssl.config import resolve
from avssl.errors import ConfigError

NO_CUDA = not torch.cuda.is_available()
# A CUDA device this machine does not have: "cuda" itself on a CPU-only machine.
ABSENT_CUDA = "cuda" if NO_CUDA else f"cuda:{torch.cuda.device_count()}"

# (override, what the message must say): the list first, then the rest of the audit.
REFUSED = [
    ("optim.lr=Infinity", "optim.lr must be a finite number, got inf"),
    ("optim.lr=-Infinity", "optim.lr must be > 0"),
    ("optim.batch_size=1", "optim.batch_size must be >= 2 (BatchNorm needs 2 clips per step), got 1"),
    ("optim.epoch_size=-5", "optim.epoch_size (clips per epoch) must be null (one pass over the training videos) "
                            "or at least optim.batch_size (8), got -5"),
    ("optim.epoch_size=3", "got 3"),
    ("optim.momentum=-1", "optim.momentum must be in [0, 1), got -1"),
    ("optim.momentum=1", "optim.momentum must be in [0, 1), got 1"),
    ("seed=-1", "seed must be in [0, 1073741823], got -1"),
    ("seed=100000000000000000000", "seed must be in [0, 1073741823], got 100000000000000000000"),
    (f"device={ABSENT_CUDA}", f"device={ABSENT_CUDA} but this machine has"),
    ("device=bogus", "device must be auto, cpu, cuda or cuda:N, got 'bogus'"),
    ("clustering.niter=0", "clustering.niter (k-means iterations) must be >= 1, got 0"),
    ("video.encoder=resnet50", "video.encoder must be one of r2plus1d_18, r3d_18, got 'resnet50'"),
    ("video.encoder=audio_resnet18", "video.encoder must be one of r2plus1d_18, r3d_18"),
    ("audio.encoder=r3d_18", "audio.encoder must be one of audio_resnet18, got 'r3d_18'"),
    ("video.fps=NaN", "video.fps must be a finite number, got nan"),
    ("video.width=Infinity", "video.width must be a finite number, got inf"),
    ("audio.duration=Infinity", "audio.duration must be a finite number, got inf"),
    ("optim.weight_decay=NaN", "optim.weight_decay must be a finite number, got nan"),
    ("optim.gamma=NaN", "optim.gamma must be a finite number"),
    ("optim.val_fraction=NaN", "optim.val_fraction must be a finite number"),
    ("optim.clip_grad_norm=Infinity", "optim.clip_grad_norm must be a finite number"),
    ("avts.margin=Infinity", "avts.margin must be a finite number, got inf"),
    ("avts.superhard_min_shift=NaN", "avts.superhard_min_shift must be a finite number"),
    ("crisscross.predictor_lr_scale=Infinity", "crisscross.predictor_lr_scale must be a finite number"),
    ("video.color_jitter=-0.5", "video.color_jitter must be in [0, 1], got -0.5"),
    ("audio.volume_jitter=2", "audio.volume_jitter must be in [0, 1), got 2"),
    ("audio.time_mask=1000", "audio.time_mask must be in [0, audio.num_frames = 100], got 1000"),
    ("audio.freq_mask=-1", "audio.freq_mask must be in [0, audio.n_mels = 40], got -1"),
    ("audio.n_fft=1023", "audio.n_fft must be even, got 1023"),
    ("audio.win_length=2048", "audio.win_length=2048 must be <= n_fft=1024"),
    ("audio.num_frames=7", "audio.num_frames"),
    ("audio.hop_length=0", "must be positive integers"),
    ("clustering.pca_dim=0", "clustering.pca_dim must be null (off) or >= 1, got 0"),
    ("loader.cache_dir=", "loader.cache_dir must be null (default) or a folder"),
]


@pytest.mark.parametrize("override, message", REFUSED, ids=[o for o, _ in REFUSED])
def test_each_value_is_refused_with_its_reason(override, message):
    with pytest.raises(ConfigError) as e:
        resolve("cpu-tiny", "xdc", [override])
    assert message in str(e.value)


@pytest.mark.parametrize("argv, message", [
    (["--set", "optim.lr=Infinity"], "optim.lr must be a finite number, got inf"),
    (["--set", "optim.batch_size=1"], "optim.batch_size must be >= 2"),
    (["--set", "optim.epoch_size=-5"], "optim.epoch_size (clips per epoch)"),
    (["--set", "optim.momentum=-1"], "optim.momentum must be in [0, 1), got -1"),
    (["--set", "seed=-1"], "seed must be in [0, 1073741823], got -1"),
    (["--seed", "-1"], "seed must be in [0, 1073741823], got -1"),
    (["--seed", "100000000000000000000"], "seed must be in [0, 1073741823]"),
    (["--seed", "1e20"], "argument --seed: invalid int value: '1e20'"),
    (["--set", f"device={ABSENT_CUDA}"], f"device={ABSENT_CUDA} but this machine has"),
    (["--set", "device=bogus"], "device must be auto, cpu, cuda or cuda:N, got 'bogus'"),
    (["--set", "clustering.niter=0"], "clustering.niter (k-means iterations) must be >= 1, got 0"),
    (["--set", "video.encoder=vgg"], "video.encoder must be one of r2plus1d_18, r3d_18"),
])
def test_pretrain_refuses_before_the_run_folder_exists(argv, message, tiny_world, tmp_path, capsys):
    out = tmp_path / "run"
    try:
        code = main(["pretrain", "--method", "xdc", "--preset", "cpu-tiny", "--data", str(tiny_world),
                     "--out", str(out), "--no-progress", *argv])
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_every_problem_is_named_in_one_error():
    with pytest.raises(ConfigError) as e:
        resolve("cpu-tiny", "xdc", ["optim.lr=Infinity", "optim.batch_size=1", "seed=-1", "device=bogus",
                                    "clustering.niter=0", "optim.momentum=-1"])
    msg = str(e.value)
    for part in ("optim.lr", "optim.batch_size", "seed", "device", "clustering.niter", "optim.momentum"):
        assert part in msg


@pytest.mark.parametrize("override", ["device=cpu", "device=auto", "seed=1073741823", "optim.momentum=0",
                                      "optim.epoch_size=8", "clustering.niter=1", "video.encoder=r3d_18",
                                      "optim.batch_size=2", "audio.volume_jitter=0"])
def test_edge_values_that_work_are_accepted(override):
    resolve("cpu-tiny", "xdc", [override])
