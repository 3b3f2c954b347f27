"""Config files, presets, resume with the saved config, key suggestions, and a parser that builds
fast: ``--config`` (YAML/JSON) between ``--preset`` and ``--set``, ``avssl presets``, ``--resume``
without repeating the run's options, "did you mean", lazy command registration, help texts."""
import argparse
import json
import subprocess
import sys

import pytest
import yaml

from avssl.cli import build_parser, main
from avssl.cli.parser import _shows_default
from avssl.cli.pretrain import resumed_config
from avssl.config import (PRESETS, config_layers, did_you_mean, load_config_file, preset, preset_summary,
                          resolve)
from avssl.errors import ConfigError


def _write(path, text):
    path.write_text(text)
    return path


# --- --config: YAML or JSON, merged between the preset and --set ------------------------------------

def test_yaml_config_sits_between_the_preset_and_set(tmp_path):
    f = _write(tmp_path / "exp.yaml", "preset: cpu-tiny\noptim:\n  lr: 1e-3   # YAML 1.1 would read a string\n"
                                      "clustering: {k: 3, niter: 5}\naudio.n_mels: 32\n")
    cfg = resolve(None, "sdc", ["clustering.k=5"], config_file=f)
    assert cfg.preset == "cpu-tiny" and cfg.video.crop == 16  # the file's preset is the base
    assert cfg.method == "sdc" and cfg.optim.lr == 0.001 and cfg.audio.n_mels == 32 and cfg.clustering.niter == 5
    assert cfg.clustering.k == 5  # --set wins over the file


def test_json_config_and_an_explicit_preset(tmp_path):
    f = _write(tmp_path / "exp.json", json.dumps({"preset": "cpu-tiny", "method": "mdc", "optim": {"lr": 0.2}}))
    cfg = resolve("cpu-small", None, [], config_file=f)
    assert cfg.preset == "cpu-small" and cfg.video.crop == 64  # --preset is the base and keeps its name
    assert cfg.optim.lr == 0.2 and cfg.method == "mdc"  # the file's values (and method, without --method)
    assert resolve("cpu-small", "xdc", [], config_file=f).method == "xdc"  # an explicit --method wins


def test_a_run_config_json_is_a_valid_config_file(tmp_path):
    original = resolve("cpu-tiny", "avts", ["clustering.k=3", "avts.stage_epochs=[1,2]", "optim.lr=0.07"])
    original.save(tmp_path / "config.json")
    again = resolve(None, None, [], config_file=tmp_path / "config.json")
    assert again.to_dict() == original.to_dict()
    # the same through the command-line merge of another command
    name, overrides = config_layers(None, tmp_path / "config.json", ["seed=4"], default_preset="demo")
    assert name == "cpu-tiny" and overrides[-1] == "seed=4" and not any(o.startswith("method=") for o in overrides)
    assert resolve(name, "xdc", overrides).avts.stage_epochs == [1, 2]


def test_every_problem_of_a_config_file_in_one_message(tmp_path):
    f = _write(tmp_path / "bad.yaml", "optim:\n  batchsize: 4\n  lr: fast\nvideo: 3\nclustering: {kk: 3}\n")
    with pytest.raises(ConfigError) as e:
        load_config_file(f)
    msg = str(e.value)
    assert str(f) in msg
    assert "unknown key 'optim.batchsize'; did you mean optim.batch_size?" in msg
    assert "unknown key 'clustering.kk'; did you mean clustering.k?" in msg
    assert "optim.lr must be a number, got 'fast'" in msg
    assert "video is a config section" in msg


@pytest.mark.parametrize("text, message", [("- 1\n- 2\n", "must hold a mapping"), ("a: [1,\n", "not valid YAML")])
def test_config_files_that_are_not_mappings(text, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_config_file(_write(tmp_path / "c.yaml", text))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")


def test_pretrain_config_file_from_the_command_line(tmp_path, capsys):
    f = _write(tmp_path / "exp.yaml", "optim: {lr: -1}\n")
    code = main(["pretrain", "--method", "xdc", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--config", str(f), "--no-progress"])
    assert code == 2 and "optim.lr must be > 0, got -1" in capsys.readouterr().err
    code = main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 2 and "pretrain needs --method" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# --- unknown keys: the nearest valid one -------------------------------------------------------------

@pytest.mark.parametrize("key, suggestion", [
    ("clustering.kk", "clustering.k"), ("k", "clustering.k"), ("clustring.k", "clustering.k"),
    ("optim.batchsize", "optim.batch_size"), ("optim.learning_rate", "optim.lr"), ("optim.seed", "seed"),
    ("video.frames", "video.num_frames")])
def test_unknown_keys_suggest_the_nearest_valid_one(key, suggestion):
    assert did_you_mean(key) == f"; did you mean {suggestion}?"
    with pytest.raises(ConfigError, match=f"did you mean {suggestion}\\?"):
        resolve("cpu-tiny", "xdc", [f"{key}=3"])
    assert did_you_mean("nonsense") == ""


def test_set_with_a_misspelt_key_names_the_right_one(tmp_path, capsys):
    code = main(["pretrain", "--method", "xdc", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--set", "clustering.kk=3"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown key 'clustering.kk'; did you mean clustering.k?" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="did you mean cpu-tiny"):
        preset("cpu-tny")


# --- avssl presets -----------------------------------------------------------------------------------

def test_presets_lists_every_preset_with_one_line(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in PRESETS:
        line = next(x for x in lines if x.startswith(name + " "))
        assert line.split(None, 1)[1] == preset_summary(name) and preset_summary(name)
        assert "``" not in line


def test_presets_name_prints_the_full_config_as_yaml_usable_as_config(tmp_path, capsys):
    assert main(["presets", "crisscross-paper"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# preset crisscross-paper: ")
    assert yaml.safe_load(text) == preset("crisscross-paper").to_dict()
    f = _write(tmp_path / "cc.yaml", text)
    assert resolve(None, None, [], config_file=f).to_dict() == preset("crisscross-paper").to_dict()
    assert main(["presets", "cpu-smal"]) == 2
    assert "unknown preset 'cpu-smal'; did you mean cpu-small?" in capsys.readouterr().err


# --- --resume takes the run's config ---------------------------------------------------------------

def test_resume_takes_the_saved_config_and_refuses_differing_values(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    saved = resolve("cpu-tiny", "cdc", ["clustering.k=3", "seed=2"])
    saved.save(run / "config.json")
    assert resumed_config(run).to_dict() == saved.to_dict()  # nothing but --out
    same = resumed_config(run, "cdc", "cpu-tiny", ["clustering.k=3", "seed=2", "iterations=5", "device=cpu"],
                          config_file=run / "config.json")
    assert same.iterations == 5 and same.device == "cpu" and same.clustering.k == 3  # repeats and extensions
    with pytest.raises(ConfigError) as e:
        resumed_config(run, "xdc", "cpu-small", ["clustering.k=4", "optim.lr=0.05"])
    msg = str(e.value)
    assert 'method: "cdc" -> "xdc"' in msg and 'preset: "cpu-tiny" -> "cpu-small"' in msg
    assert "clustering.k: 3 -> 4" in msg and "optim.lr:" not in msg  # 0.05 is the saved value
    lower = resumed_config(run, None, None, ["optim.lr=0.005", "precision=fp32"])  # the way on after a divergence
    assert lower.optim.lr == 0.005 and lower.precision == "fp32" and lower.clustering.k == 3


def test_pretrain_resume_refuses_a_differing_option_before_any_work(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    resolve("cpu-tiny", "xdc", []).save(run / "config.json")
    code = main(["pretrain", "--resume", "--out", str(run), "--set", "clustering.k=5", "--seed", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "clustering.k: 4 -> 5" in err and "seed: 0 -> 1" in err and "Traceback" not in err
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]


# --- the parser: light, complete help -----------------------------------------------------------------

def test_building_the_parser_imports_no_heavy_module():
    code = ("import json, sys, avssl.cli; avssl.cli.build_parser(); "
            "print(json.dumps(sorted(m for m in ('torch', 'faiss', 'sklearn', 'av', 'numpy', 'scipy', 'matplotlib') "
            "if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_method_choices_are_the_user_methods():
    from avssl.method_names import USER_METHODS
    from avssl.methods import METHODS

    assert list(USER_METHODS) == sorted(METHODS) and "longclip" not in METHODS
    pretrain = _subparsers(build_parser())["pretrain"]
    method = next(a for a in pretrain._actions if a.dest == "method")
    assert tuple(method.choices) == USER_METHODS and "longclip" not in method.choices


def test_the_eval_grids_equal_the_evaluation_modules():
    from avssl.evaluation import grids
    from avssl.evaluation.finetune import DEFAULT_LRS, FULL_LRS
    from avssl.evaluation.linear import FC_LRS
    from avssl.evaluation.retrieval import RECALL_KS
    from avssl.evaluation.svm import SVM_CS

    assert (grids.FC_LRS, grids.FULL_LRS, grids.DEFAULT_LRS, grids.SVM_CS, grids.RECALL_KS) == \
        (FC_LRS, FULL_LRS, DEFAULT_LRS, SVM_CS, RECALL_KS)


def _subparsers(parser) -> dict:
    action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    return dict(action.choices) if action else {}


def _every_parser(parser, path=("avssl",)):
    yield path, parser
    for name, sub in _subparsers(parser).items():
        yield from _every_parser(sub, (*path, name))


def test_every_command_has_a_description_and_every_option_help_with_its_default():
    for path, parser in _every_parser(build_parser()):
        text = parser.format_help()
        assert parser.description, f"{' '.join(path)} has no description"
        assert "``" not in text, f"{' '.join(path)} --help shows reST markup"
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help, f"{' '.join(path)} {name} has no help text"
            if _shows_default(action):
                assert "default" in parser._get_formatter()._get_help_string(action).lower(), \
                    f"{' '.join(path)} {name} does not show its default {action.default!r}"


def test_help_texts_shown_to_users(capsys):
    parsers = dict(_every_parser(build_parser()))
    demo = " ".join(parsers[("avssl", "demo")].format_help().split())
    assert "about 9 minutes on a 2-core CPU" in demo and "20 min" not in demo
    for name in ("linear", "svm", "finetune", "retrieval", "fusion", "crossmodal", "clusters", "sync"):
        assert len(parsers[("avssl", "eval", name)].description) > 60  # more than the one-line help
    assert "(default: 32)" in " ".join(parsers[("avssl", "eval", "linear")].format_help().split())
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "presets" in out and "status" in out


def test_python_dash_m_avssl():
    r = subprocess.run([sys.executable, "-m", "avssl", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("usage: avssl ")
    r = subprocess.run([sys.executable, "-m", "avssl", "presets"], capture_output=True, text=True)
    assert r.returncode == 0 and "cpu-tiny" in r.stdout


# --- --config for scratch encoders -------------------------------------------------------------------

def test_eval_scratch_encoders_from_a_config_file(tmp_path, capsys):
    from avssl.cli.evaluation import _encoders

    f = _write(tmp_path / "arch.yaml", "preset: cpu-tiny\nvideo: {width: 0.25}\n")
    parse = build_parser().parse_args
    a = parse(["eval", "linear", "--encoders", "scratch", "--config", str(f), "--set", "audio.width=0.25",
               "--data", "x.csv", "--out", str(tmp_path / "e")])
    source = _encoders(a)
    assert source.cfg.preset == "cpu-tiny" and source.cfg.video.width == 0.25 and source.cfg.audio.width == 0.25
    assert source.name == "scratch (cpu-tiny + arch.yaml + audio.width=0.25, seed 0)"
    a = parse(["eval", "svm", "--encoders", str(tmp_path), "--config", str(f), "--data", "x", "--out", "y"])
    with pytest.raises(ConfigError, match="only apply to --encoders scratch"):
        _encoders(a)
    a = parse(["eval", "svm", "--encoders", "scratch", "--set", "seed=1", "--data", "x", "--out", "y"])
    with pytest.raises(ConfigError, match="needs --preset NAME, or a --config file"):
        _encoders(a)
