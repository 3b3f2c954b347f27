"""Console output: progress bars only on a terminal, one line per epoch, each summary once, and numbers
readable at any scale (avssl.progress)."""
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from avssl.progress import bars_wanted, epoch_line, fmt_number, progress
from conftest import cli


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, as a real console's stderr does."""

    def isatty(self):
        return True


@pytest.mark.parametrize("value, text", [
    (29044410552429192047092463841574912.0, "2.9e+34"), (0.000012, "1.2e-05"), (3.14159, "3.142"),
    (-3.14159, "-3.142"), (0.4, "0.4"), (0.05, "0.05"), (12345.6, "12346"), (123456.0, "1.2e+05"),
    (0.0, "0"), (math.nan, "nan"), (math.inf, "inf"), (7, "7"), (10 ** 40, str(10 ** 40)),
    (np.float32(2.5e-7), "2.5e-07"), (np.int64(3), "3"), (True, "True"), ("x", "x"), (None, "None"),
])
def test_fmt_number(value, text):
    assert fmt_number(value) == text


def test_bars_draw_only_on_a_terminal(monkeypatch):
    log = io.StringIO()  # a log file, a pipe: no redraws at all
    monkeypatch.setattr(sys, "stderr", log)
    assert not bars_wanted()
    assert list(progress(range(5), "counting")) == [0, 1, 2, 3, 4]
    with progress(total=3, desc="manual") as bar:  # a manual bar, as the probe and the demo world use
        for _ in range(3):
            bar.update()
    assert log.getvalue() == ""

    tty = Terminal()
    monkeypatch.setattr(sys, "stderr", tty)
    assert bars_wanted()
    assert list(progress(range(5), "counting")) == [0, 1, 2, 3, 4]
    assert "counting" in tty.getvalue() and "\r" in tty.getvalue()
    drawn = tty.getvalue()
    assert list(progress(range(5), "off", enabled=False)) == [0, 1, 2, 3, 4]  # --no-progress
    assert tty.getvalue() == drawn


def test_epoch_line():
    metrics = {"loss": 2.4712, "val_loss": 29044410552429192047092463841574912.0, "lr": 0.05,
               "acc_a": 0.25, "acc_b": 0.5, "grad_norm": 3.0}
    assert epoch_line(1, 2, 5, metrics, 3.21) == ("iteration 1, epoch 2 (3 of at most 5): loss 2.471, val loss "
                                                  "2.9e+34, lr 0.05, pseudo-label acc 0.38, 3.2 s")
    # no validation set: no val loss
    assert epoch_line(0, 0, 1, {"loss": 1.0, "val_loss": math.nan, "lr": 1e-4}, 0.5) == \
        "iteration 0, epoch 0 (1 of at most 1): loss 1, lr 1.0e-04, 0.5 s"


def test_a_run_logged_to_a_file_has_no_redraws_one_line_per_epoch_and_each_summary_once(tiny_world, env, tmp_path):
    """A real ``avssl pretrain`` whose output goes to a pipe (as in a batch job): no carriage returns, one
    INFO line per epoch, the iteration summary once, and metrics.jsonl lines with a wall-clock time."""
    out = tmp_path / "run"
    p = subprocess.run(cli("pretrain", "--method", "xdc", "--preset", "cpu-tiny", "--iterations", "1", "--data",
                           tiny_world, "--out", out, "--set", "logging.tensorboard=false"),
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    both = p.stdout + p.stderr
    assert "\r" not in both
    epoch_lines = [line for line in p.stderr.splitlines() if "avssl.pretrain: iteration 0, epoch" in line]
    assert len(epoch_lines) == 2  # cpu-tiny: 2 epochs
    assert all("loss" in line and "val loss" in line and "lr" in line and line.endswith(" s")
               for line in epoch_lines)
    assert both.count("iteration 0: | loss") == 1
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    stamps = [r["time"] for r in records]
    assert all(isinstance(t, float) for t in stamps) and stamps == sorted(stamps)
    assert abs(stamps[-1] - (out / "metrics.jsonl").stat().st_mtime) < 60
