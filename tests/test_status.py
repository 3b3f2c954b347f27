"""``avssl status RUN`` on real cpu-tiny runs: interrupted after one of two iterations, then resumed by
``avssl pretrain --resume --out RUN`` alone (no method, preset or data) to the end."""
import json

import pytest

from avssl.cli import main
from avssl.config import resolve
from avssl.engine.pretrain import Pretrainer
from avssl.errors import ConfigError
from avssl.method_names import USER_METHODS
from avssl.workflows.status import format_status, planned_epochs, run_status


def test_status_of_an_interrupted_run_then_of_the_resumed_one(tiny_world, tmp_path, capsys):
    run = tmp_path / "run"
    cfg = resolve("cpu-tiny", "xdc", ["clustering.k=3"])  # 2 iterations of 2 epochs
    Pretrainer(cfg, tiny_world, run, progress=False).run(max_iterations=1)

    s = run_status(run)
    assert (s["method"], s["preset"], s["finished"], s["state"]) == ("xdc", "cpu-tiny", False, "unfinished")
    assert s["iterations"] == {"planned": 2, "done": 1, "current": None}
    assert s["epochs"]["planned"] == 4 and s["epochs"]["done"] == 2 and s["epochs"]["remaining_at_most"] == 2
    assert s["last_epoch"]["iteration"] == 0 and s["last_epoch"]["epoch"] == 1
    assert {"loss", "val_loss", "lr"} <= set(s["last_epoch"]["metrics"])
    # every metrics line carries its wall-clock time: the time per epoch comes from those stamps
    assert s["seconds_per_epoch"] > 0 and s["seconds_per_epoch_from"] == "the metrics' time stamps"
    # the rest: 2 epochs and one feature extraction + clustering
    assert s["eta_seconds"] == pytest.approx(2 * s["seconds_per_epoch"] + s["seconds_per_iteration_overhead"])
    assert main(["status", str(run)]) == 0
    out = capsys.readouterr().out
    for text in ("xdc (preset cpu-tiny, seed 0)", "unfinished", "1 of 2 iterations done", "2 of 4 planned epochs",
                 "iteration 0, epoch 1: ", "video: 3 clusters", "per epoch", "ETA", "at most",
                 f"avssl pretrain --resume --out {run}"):
        assert text in out, text

    # resume with --out alone: method, preset and settings from config.json, videos from videos.csv
    assert main(["pretrain", "--resume", "--out", str(run), "--no-progress"]) == 0
    assert (run / "encoders.pt").exists()
    assert json.loads((run / "config.json").read_text()) == cfg.to_dict()
    s = run_status(run)
    assert s["finished"] and s["iterations"]["done"] == 2 and s["epochs"]["done"] == 4 and s["eta_seconds"] is None
    capsys.readouterr()
    assert main(["status", str(run)]) == 0
    out = capsys.readouterr().out
    assert "finished: encoders.pt written" in out and "2 of 2 iterations done" in out and "ETA" not in out
    assert main(["status", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["finished"] is True


def test_status_of_a_finished_run(tiny_xdc_run, capsys):
    s = run_status(tiny_xdc_run)
    assert s["finished"] and s["iterations"] == {"planned": 1, "done": 1, "current": None}
    assert s["eta_seconds"] is None and s["last_iteration"]["clusters"]
    text = format_status(s)
    assert "finished" in text and "1 of 1 iterations done" in text and "per epoch" in text


def test_status_reads_wall_clock_times_of_the_metrics(tmp_path):
    """A run whose metrics lines carry ``time`` stamps: time per epoch from them, mid-iteration progress."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    resolve("cpu-tiny", "sdc", ["iterations=3", "optim.max_epochs=4"]).save(run / "config.json")
    lines = [{"iteration": 0, "epoch": e, "loss": 1.0, "val_loss": 3e7, "time": 1000.0 + 10 * e} for e in range(4)]
    lines.append({"iteration": 0, "summary": True, "clusters": {}, "times": {"extract": 5.0, "cluster": 1.0,
                                                                               "train": 40.0}})
    lines += [{"iteration": 1, "epoch": 0, "loss": 0.5, "time": "1970-01-01T00:17:40+00:00"},
              {"iteration": 1, "epoch": 1, "loss": 0.4, "time": "1970-01-01T00:17:52+00:00"}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"iteration": 1, "ep')
    s = run_status(run, now=2000.0)
    assert s["seconds_per_epoch_from"] == "the metrics' time stamps"
    assert s["seconds_per_epoch"] == pytest.approx((3 * 10 + 12) / 4)
    assert s["iterations"] == {"planned": 3, "done": 1, "current": 1}
    assert s["epochs"]["remaining_at_most"] == 2 + 4
    assert s["eta_seconds"] == pytest.approx(6 * 10.5 + 6.0)
    text = format_status(s)
    assert "iteration 1: epoch 2 of 4" in text and "6 of 12 planned epochs" in text and "val_loss" not in text
    assert "loss 0.4" in text


def test_status_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    with pytest.raises(ConfigError, match="not a pretraining run directory"):
        run_status(tmp_path)
    assert main(["status", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


@pytest.mark.parametrize("method", USER_METHODS)
def test_planned_epochs_agree_with_the_methods(method):
    from avssl.methods import build_method

    extra = ["avts.stage_epochs=[1,3]"] if method == "avts" else []
    cfg = resolve("cpu-tiny", method, ["iterations=3", *extra])
    m = build_method(cfg)
    assert planned_epochs(cfg.to_dict()) == [m.max_epochs(i) for i in range(m.num_iterations())]
