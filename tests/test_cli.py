"""The ``avssl`` command line on real files: pretrain on a folder, clear errors for bad input."""
import json
import re
import shutil

import pytest

from avssl.cli import build_parser, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    commands = ("pretrain", "presets", "status", "compare", "extract", "eval", "data", "demo", "sweep", "retrain-long",
                "filters", "weights", "reproduce")
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(commands)
    for cmd in commands:
        assert re.search(rf"^\s+{cmd}\s", out, re.M), cmd


def test_pretrain_on_a_plain_folder_of_videos(tiny_world, tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    for f in sorted((tiny_world.parent / "clips").glob("*.mp4"))[:10]:
        shutil.copy(f, folder / f.name)
    code = main(["pretrain", "--method", "xdc", "--data", str(folder), "--out", str(tmp_path / "run"),
                 "--preset", "cpu-tiny", "--iterations", "1", "--no-progress", "--set", "clustering.k=3"])
    assert code == 0
    assert (tmp_path / "run" / "encoders.pt").exists()
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["clustering"]["k"] == 3 and cfg["iterations"] == 1 and cfg["method"] == "xdc"
    assert "encoders written to" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "optim.lr=-0.1"], "optim.lr must be > 0"),
        (["--set", "optim.nonsense=1"], "unknown key"),
        (["--set", "clustering.k=100000"], "k=100000"),
    ],
)
def test_bad_config_values_fail_with_one_clear_message(extra, message, tiny_world, tmp_path, capsys):
    code = main(["pretrain", "--method", "xdc", "--data", str(tiny_world), "--out", str(tmp_path / "r"),
                 "--preset", "cpu-tiny", "--no-progress", *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_unknown_method_is_rejected_by_the_parser(tiny_world, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["pretrain", "--method", "nope", "--data", str(tiny_world), "--out", str(tmp_path / "r")])
    assert e.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_manifest_without_path_column_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\na.mp4,x\n")
    code = main(["pretrain", "--method", "xdc", "--data", str(bad), "--out", str(tmp_path / "r"),
                 "--preset", "cpu-tiny", "--no-progress"])
    assert code == 2
    assert "path" in capsys.readouterr().err


@pytest.mark.parametrize("method, extra", [("avts", []), ("crisscross", ["--set", "audio.duration=1.0",
                                                                         "--set", "audio.num_frames=50"])])
def test_pretrain_avts_and_crisscross_on_a_folder_then_eval_sync(method, extra, tiny_world, tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    for f in sorted((tiny_world.parent / "clips").glob("*.mp4"))[::3]:
        shutil.copy(f, folder / f.name)
    code = main(["pretrain", "--method", method, "--data", str(folder), "--out", str(tmp_path / "run"),
                 "--preset", "cpu-tiny", "--no-progress", "--set", "optim.max_epochs=1", *extra])
    assert code == 0 and (tmp_path / "run" / "encoders.pt").exists()
    code = main(["eval", "sync", "--encoders", str(tmp_path / "run"), "--data", str(folder), "--out",
                 str(tmp_path / "sync"), "--clips", "1", "--no-progress"])
    assert code == 0
    result = json.loads((tmp_path / "sync" / "sync.json").read_text())
    assert 0.0 <= result["accuracy"] <= 1.0 and result["videos"]["fit"] + result["videos"]["test"] == 8
    assert "synchronisation accuracy" in capsys.readouterr().out
