"""wandb logging of real cpu-tiny runs, offline, read back from the offline run files (avssl.wandb_tracking);
and the errors when it is asked for without the package or with bad values."""
import json
import struct
import subprocess
import sys

import pytest

from avssl.config import resolve
from avssl.engine.pretrain import Pretrainer
from avssl.errors import ConfigError
from avssl.wandb_tracking import ID_FILE, resolve_mode, wandb_problem

from conftest import cli

needs_wandb = pytest.mark.skipif(wandb_problem() is not None, reason=f"no wandb: {wandb_problem()}")


def wandb_records(path):
    """The protobuf records of an offline run file ``run-<id>.wandb`` (wandb's LevelDB-style log:
    a 7-byte file header, then 32 KiB blocks of chunks, each with a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # the block's trailer
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(pending)
            yield record


def offline_runs(wandb_dir):
    """[(run id, its config, its history rows)] of every offline run under ``wandb_dir``, oldest first."""
    out = []
    for folder in sorted((wandb_dir / "wandb").glob("offline-run-*")):
        run_id, config, rows = None, {}, []
        for record in wandb_records(next(folder.glob("run-*.wandb"))):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run_id = record.run.run_id
                config = {u.key: json.loads(u.value_json) for u in record.run.config.update}
            elif kind == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
        out.append((run_id, config, rows))
    return out


@needs_wandb
def test_offline_wandb_run_of_an_interrupted_and_resumed_pretraining_holds_the_metrics(tiny_world, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    (tmp_path / "wandb_dir").mkdir()
    run = tmp_path / "run"
    cfg = resolve("cpu-tiny", "xdc", ["clustering.k=3", "logging.wandb=true", "logging.tensorboard=false",
                                      "logging.wandb_project=avssl-test"])  # 2 iterations x 2 epochs
    Pretrainer(cfg, tiny_world, run, progress=False).run(max_iterations=1)
    Pretrainer(cfg, tiny_world, run, resume=True, progress=False).run()

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "epoch" in r and not r.get("summary")]
    summaries = [r for r in records if r.get("summary")]
    assert len(epochs) == 4 and len(summaries) == 2
    runs = offline_runs(tmp_path / "wandb_dir")
    assert len(runs) == 2  # the first process and the resumed one
    run_id = (run / ID_FILE).read_text().strip()
    assert [r[0] for r in runs] == [run_id, run_id]  # the resumed process continues the same wandb run
    assert runs[0][1]["method"] == "xdc" and runs[0][1]["clustering"]["k"] == 3  # the run's config
    assert not (run / "wandb").exists()  # WANDB_DIR is where the files go when it is set

    rows = [row for _, _, rs in runs for row in rs]
    per_epoch = sorted((row for row in rows if "epoch" in row), key=lambda row: row["epoch"])
    assert [row["epoch"] for row in per_epoch] == [0, 1, 2, 3]
    for key, tag in (("loss", "loss/train"), ("val_loss", "loss/val"), ("lr", "lr"),
                     ("acc_audio_from_video", "pseudo_label_acc/audio_from_video"),
                     ("loss_video_from_audio", "loss_terms/video_from_audio")):
        assert [row[tag] for row in per_epoch] == pytest.approx([r[key] for r in epochs], rel=1e-6), tag
    per_iteration = sorted((row for row in rows if "iteration" in row), key=lambda row: row["iteration"])
    assert [row["iteration"] for row in per_iteration] == [0, 1]
    for name in ("video", "audio"):
        stats = [s["clusters"][name] for s in summaries]
        assert [row[f"clusters/{name}/size_max"] for row in per_iteration] == [s["sizes"]["max"] for s in stats]
        assert [row[f"clusters/{name}/size_min"] for row in per_iteration] == [s["sizes"]["min"] for s in stats]
        assert [row[f"clusters/{name}/purity_vs_labels"] for row in per_iteration] == pytest.approx(
            [s["vs_labels"]["purity"] for s in stats])
        assert [row[f"clusters/{name}/nmi_vs_labels"] for row in per_iteration] == pytest.approx(
            [s["vs_labels"]["nmi"] for s in stats])
        assert f"clusters/{name}/nmi_previous" not in per_iteration[0]
        assert per_iteration[1][f"clusters/{name}/nmi_previous"] == pytest.approx(stats[1]["nmi_previous"])


def test_auto_mode_is_offline_without_an_api_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert resolve_mode("auto") == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "0" * 40 + "\n")
    (tmp_path / "netrc").chmod(0o600)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert resolve_mode("auto") == "online"  # after a `wandb login`
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert resolve_mode("auto") == "offline"  # the environment wins
    assert resolve_mode("online") == "online"


def test_bad_wandb_values_are_named():
    with pytest.raises(ConfigError) as e:
        resolve("cpu-tiny", "xdc", ["logging.wandb_mode=sometimes", "logging.wandb_project="])
    assert "logging.wandb_mode must be one of auto, online, offline, got 'sometimes'" in str(e.value)
    assert "logging.wandb_project must be a non-empty name" in str(e.value)


def test_wandb_asked_for_without_the_package_is_a_clear_error(tiny_world, tmp_path, env):
    # A real avssl process in which importing wandb fails, as where it is not installed.
    code = ("import sys; sys.modules['wandb'] = None; from avssl.cli import main; sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "run"
    args = [sys.executable, "-c", code, *cli("pretrain", "--method", "xdc", "--preset", "cpu-tiny", "--data",
                                             tiny_world, "--out", out, "--set", "logging.wandb=true")[3:]]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert "logging.wandb=true, but the wandb package is not installed; pip install 'avssl[wandb]'" in p.stderr
    assert not out.exists()  # refused before anything was written


def test_a_wandb_runs_config_stays_usable_where_wandb_is_missing(tiny_world, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if it were not installed: importing it fails
    cfg = resolve("cpu-tiny", "xdc", ["logging.wandb=true"])  # e.g. --config of a run that used wandb
    cfg.save(tmp_path / "config.json")
    assert resolve(config_file=tmp_path / "config.json").logging.wandb is True
    with pytest.raises(ConfigError, match=r"logging.wandb=true, but the wandb package is not installed"):
        Pretrainer(cfg, tiny_world, tmp_path / "run", progress=False)  # starting a run with it is refused
    assert not (tmp_path / "run").exists()
