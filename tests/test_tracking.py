"""TensorBoard event files of real cpu-tiny runs, read back with TensorBoard's own EventAccumulator
(avssl.tracking); and what happens without the tensorboard package."""
import json
import logging
import sys

import pytest

from avssl.config import resolve
from avssl.engine.pretrain import Pretrainer
from avssl.tracking import EVENTS_DIR, Tracker, epoch_scalars, iteration_scalars, tensorboard_problem

needs_tensorboard = pytest.mark.skipif(tensorboard_problem() is not None,
                                       reason=f"no event files can be written or read: {tensorboard_problem()}")


def events(folder):
    """{tag: [(step, value), ...]} of the event files in ``folder``, as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@needs_tensorboard
def test_event_files_of_an_interrupted_and_resumed_run_hold_the_metrics(tiny_world, tmp_path):
    run = tmp_path / "run"
    cfg = resolve("cpu-tiny", "xdc", ["clustering.k=3", "logging.tensorboard=true"])  # 2 iterations x 2 epochs
    Pretrainer(cfg, tiny_world, run, progress=False).run(max_iterations=1)
    # A process killed after it wrote an epoch's events but before that epoch's checkpoint: the resumed
    # run redoes the epoch, and TensorBoard must show the redone numbers only (purge_step).
    stale = Tracker.open(run, True)
    stale.write({"iteration": 1, "epoch": 0, "loss": 999.0, "lr": 9.0})
    stale.close()
    Pretrainer(cfg, tiny_world, run, resume=True, progress=False).run()
    epochs = [r for r in records(run) if "epoch" in r and not r.get("summary")]
    summaries = [r for r in records(run) if r.get("summary")]
    assert len(epochs) == 4 and len(summaries) == 2

    per_epoch = events(run / EVENTS_DIR / "epochs")
    # one point per epoch of the run, each step once although the run was resumed
    assert [step for step, _ in per_epoch["loss/train"]] == [0, 1, 2, 3]
    for key, tag in (("loss", "loss/train"), ("val_loss", "loss/val"), ("lr", "lr"), ("grad_norm", "grad_norm"),
                     ("acc_audio_from_video", "pseudo_label_acc/audio_from_video"),
                     ("loss_video_from_audio", "loss_terms/video_from_audio")):
        assert [v for _, v in per_epoch[tag]] == pytest.approx([r[key] for r in epochs], rel=1e-6), tag
    assert not any(tag.endswith(("time", "epoch", "iteration", "steps")) for tag in per_epoch)

    per_iteration = events(run / EVENTS_DIR / "iterations")
    assert [step for step, _ in per_iteration["clusters/video/size_min"]] == [0, 1]
    for name in ("video", "audio"):
        stats = [s["clusters"][name] for s in summaries]
        assert [v for _, v in per_iteration[f"clusters/{name}/size_max"]] == [s["sizes"]["max"] for s in stats]
        assert [v for _, v in per_iteration[f"clusters/{name}/purity_vs_labels"]] == pytest.approx(
            [s["vs_labels"]["purity"] for s in stats])
        assert [v for _, v in per_iteration[f"clusters/{name}/nmi_vs_labels"]] == pytest.approx(
            [s["vs_labels"]["nmi"] for s in stats])
        # NMI with the previous clustering exists from the second iteration on
        assert per_iteration[f"clusters/{name}/nmi_previous"] == [(1, pytest.approx(stats[1]["nmi_previous"]))]
    assert "seconds/train" in per_iteration


def test_tensorboard_off(tiny_world, tmp_path):
    assert Tracker.open(tmp_path, False) is None
    assert not (tmp_path / EVENTS_DIR).exists()


def test_without_the_tensorboard_package_one_warning_line_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed: importing it fails
    with caplog.at_level(logging.DEBUG, logger="avssl.tracking"):
        assert Tracker.open(tmp_path, True) is None  # asked for
        assert Tracker.open(tmp_path, None) is None  # auto: quietly off
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert "logging.tensorboard=true" in warnings[0].getMessage() and "avssl[tensorboard]" in warnings[0].getMessage()
    assert not (tmp_path / EVENTS_DIR).exists()


def test_scalars_of_hand_written_records():
    epoch = {"iteration": 0, "epoch": 1, "loss": 2.0, "val_loss": float("nan"), "lr": 0.1, "steps": 4,
             "time": 1.7e9, "acc_x": 0.5, "loss_x": 1.0, "grad_norm": 3.0, "z_std_video": 0.2, "val_loss_x": 1.5,
             "stopped_parts": ["video"]}
    assert epoch_scalars(epoch) == {"loss/train": 2.0, "lr": 0.1, "pseudo_label_acc/x": 0.5, "loss_terms/x": 1.0,
                                    "grad_norm": 3.0, "other/z_std_video": 0.2, "val/loss_x": 1.5}
    summary = {"iteration": 2, "summary": True, "clusters": {"joint": {
        "sizes": {"k": 4, "min": 1, "max": 9, "empty": 0}, "reseeded": 1, "objective": 3.5,
        "vs_labels": {"purity": 0.5, "nmi": 0.25, "ari": 0.1}}}, "times": {"extract": 2.0, "train": 5.0}}
    assert iteration_scalars(summary) == {
        "clusters/joint/k": 4.0, "clusters/joint/size_min": 1.0, "clusters/joint/size_max": 9.0,
        "clusters/joint/empty": 0.0, "clusters/joint/reseeded": 1.0, "clusters/joint/purity_vs_labels": 0.5,
        "clusters/joint/nmi_vs_labels": 0.25, "clusters/joint/ari_vs_labels": 0.1, "seconds/extract": 2.0,
        "seconds/train": 5.0}
