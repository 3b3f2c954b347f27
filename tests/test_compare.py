"""``avssl compare``: one table across real runs and evaluation reports (avssl.workflows.compare)."""
import json
import shutil

import pytest

from avssl.cli import main
from avssl.workflows.compare import compare, format_markdown, headlines
from avssl.errors import ConfigError
from avssl.evaluation.splits import write_report


@pytest.fixture(scope="module")
def svm_of_the_run(tiny_xdc_run, tiny_world, tmp_path_factory):
    """A real ``avssl eval svm`` of the tiny XDC run (video encoder, one split)."""
    out = tmp_path_factory.mktemp("compare") / "eval" / "xdc-video"
    assert main(["eval", "svm", "--encoders", str(tiny_xdc_run), "--data", str(tiny_world), "--out", str(out),
                 "--no-progress", "--cs", "0.1,1"]) == 0
    return out


def fake_report(out, name, result):
    """A report as ``avssl eval`` writes it (``write_report``), of ``result``."""
    return write_report(out, name, result, f"# {name}")["report"]["json"]


def test_a_run_and_its_evaluation_share_a_row(tiny_xdc_run, svm_of_the_run, tmp_path, capsys):
    other = fake_report(tmp_path / "elsewhere", "retrieval", {
        "evaluation": "retrieval", "encoders": "scratch (cpu-tiny, seed 0)", "modality": "audio",
        "folds": {"1": {}, "2": {}}, "mean": {"recall@1": 0.25, "recall@5": 0.5}, "std": {"recall@1": 0.05}})
    result = compare([tiny_xdc_run, svm_of_the_run, other])
    run, scratch = result["rows"]
    assert (run["kind"], run["method"], run["preset"], run["seed"], run["state"]) == (
        "run", "xdc", "cpu-tiny", 0, "finished")
    assert run["iterations"] == {"done": 1, "planned": 1} and run["epochs_done"] == 2
    last = [json.loads(line) for line in (tiny_xdc_run / "metrics.jsonl").read_text().splitlines()
            if "epoch" in line and '"summary"' not in line][-1]
    assert (run["loss"], run["val_loss"]) == (last["loss"], last["val_loss"])
    assert set(run["clusters"]) == {"video", "audio"} and 0 <= run["clusters"]["video"]["purity"] <= 1
    svm = json.loads((svm_of_the_run / "svm.json").read_text())
    assert run["evaluations"]["svm video"]["value"] == svm["mean"]["accuracy"]
    assert scratch["kind"] == "encoders" and scratch["name"] == "scratch (cpu-tiny, seed 0)"
    assert scratch["evaluations"]["retrieval audio R@1"]["value"] == 0.25
    assert result["columns"] == ["svm video", "retrieval audio R@1"]

    table = format_markdown(result).splitlines()
    assert table[0] == ("| run / encoders | method | preset | seed | iterations | loss | val loss | purity | NMI "
                        "| svm video | retrieval audio R@1 |")
    assert table[2].startswith(f"| {tiny_xdc_run.name} | xdc | cpu-tiny | 0 | 1/1 | ")
    assert f"| {100 * svm['mean']['accuracy']:.1f} | - |" in table[2]
    assert table[3].endswith("| 25.0 ± 5.0 |")  # two folds: mean ± std

    assert main(["compare", str(tiny_xdc_run), str(svm_of_the_run), other]) == 0
    assert capsys.readouterr().out.splitlines()[:4] == table[:4]
    assert main(["compare", str(tiny_xdc_run), str(svm_of_the_run), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert row["evaluations"]["svm video"]["value"] == svm["mean"]["accuracy"]


def test_a_folder_of_runs_and_evaluations(tiny_xdc_run, svm_of_the_run, tmp_path):
    """``avssl compare FOLDER`` finds the runs and evaluation folders up to two levels down, and matches
    an evaluation to its run by the run's path (here written relative, from another directory)."""
    shutil.copytree(tiny_xdc_run, tmp_path / "exp" / "runs" / "xdc")
    shutil.copytree(svm_of_the_run, tmp_path / "exp" / "eval" / "xdc-video")
    report = tmp_path / "exp" / "eval" / "xdc-video" / "svm.json"
    data = json.loads(report.read_text())
    report.write_text(json.dumps({**data, "encoders": "exp/runs/xdc"}))
    (tmp_path / "exp" / "results.json").write_text("{}")  # not a report: left out
    fake_report(tmp_path / "exp" / "eval" / "xdc-fusion", "fusion", {
        "evaluation": "fusion", "encoders": "exp/runs/xdc/encoders.pt", "folds": {"split": {}},
        "mean": {"video": 0.5, "audio": 0.25, "a+v": 0.75}, "std": {}})
    fake_report(tmp_path / "exp" / "eval" / "xdc-video-2", "svm", {  # the same protocol on other data
        "evaluation": "svm", "encoders": "exp/runs/xdc", "modality": "video", "data": "other.csv",
        "folds": {"split": {}}, "mean": {"accuracy": 0.125}, "std": {}})
    result = compare([tmp_path / "exp"])
    assert len(result["rows"]) == 1
    row = result["rows"][0]
    assert row["name"] == "xdc" and row["evaluations"]["fusion a+v"]["value"] == 0.75
    assert row["evaluations"]["svm video"]["value"] == data["mean"]["accuracy"]
    assert row["evaluations"]["svm video (2)"]["value"] == 0.125
    with pytest.raises(ConfigError, match="holds no pretraining run"):
        compare([tmp_path / "exp" / "runs" / "xdc" / "checkpoints"])
    with pytest.raises(ConfigError, match="does not exist"):
        compare([tmp_path / "nothing"])
    with pytest.raises(ConfigError, match="not an evaluation report"):
        compare([tmp_path / "exp" / "results.json"])


def test_headlines_of_each_protocol():
    assert headlines({"evaluation": "linear", "modality": "audio", "folds": {"1": {}, "2": {}, "3": {}},
                      "mean": {"accuracy": 0.5, "clip_accuracy": 0.4}, "std": {"accuracy": 0.1}}) == [
        {"protocol": "linear", "modality": "audio", "metric": "accuracy", "value": 0.5, "std": 0.1, "folds": 3}]
    assert headlines({"evaluation": "sync", "accuracy": 0.8})[0]["value"] == 0.8
    cross = headlines({"evaluation": "crossmodal", "applicable": True,
                       "video_to_audio": {"pair": {"recall@1": 0.3}}})[0]
    assert (cross["metric"], cross["value"]) == ("R@1", 0.3)
    assert headlines({"evaluation": "crossmodal", "applicable": False})[0]["value"] is None
    clusters = headlines({"run": "r", "clusterings": {"video": {"purity": 0.6}}})
    assert [(h["protocol"], h["modality"], h["value"]) for h in clusters] == [("clusters", "video", 0.6)]
    assert headlines({"evaluation": "dense"}) == [] and headlines({"outputs": {}}) == []
