"""AVTS end to end on real mp4 files: the curriculum's two stages, exported encoders that evaluation
accepts, and the synchronisation accuracy."""
import json

import pytest
import torch
from conftest import refused_config, run_split_and_whole

from avssl.cli import main
from avssl.config import resolve
from avssl.data.views import SyncNegatives
from avssl.errors import ConfigError
from avssl.runs import load_encoders, load_method
from avssl.engine.pretrain import Pretrainer
from avssl.evaluation import linear_probe, sync_accuracy
from avssl.losses import avts_loss, pair_distance
from avssl.methods import validate


@pytest.fixture(scope="module")
def avts_run(tiny_world, tmp_path_factory):
    run = tmp_path_factory.mktemp("avts") / "run"
    trainer = Pretrainer(resolve("cpu-tiny", "avts", ["avts.stage_epochs=[1, 2]"]), tiny_world, run, progress=False)
    trainer.run()
    return trainer, run


def test_curriculum_runs_easy_then_mixed_negatives(avts_run):
    _, run = avts_run
    epochs = [json.loads(line) for line in open(run / "metrics.jsonl")]
    epochs = [e for e in epochs if not e.get("summary")]
    assert [(e["iteration"], e["epoch"]) for e in epochs] == [(0, 0), (1, 0), (1, 1)]  # stage lengths 1 and 2
    for e in epochs:
        assert e["superhard_fraction"] == 0.0
        if e["iteration"] == 0:
            assert e["hard_fraction"] == 0.0  # stage 1: easy negatives only
        else:
            assert 0.0 < e["hard_fraction"] < 0.75  # stage 2: about a quarter hard negatives
        assert e["loss"] > 0 and e["val_loss"] > 0


def test_encoders_load_and_the_linear_probe_accepts_them(avts_run, tiny_world, tmp_path):
    _, run = avts_run
    enc = load_encoders(run)
    assert enc.method == "avts" and enc.slots == {"video": "video", "audio": "audio"}
    r = linear_probe(run, tiny_world, tmp_path / "lin", modality="audio", train_clips=2, test_clips=2,
                     lrs=(0.01,), epochs=4, progress=False)
    assert 0.0 <= r["mean"]["accuracy"] <= 1.0


def test_sync_accuracy_is_reported(avts_run, tiny_world, tmp_path):
    _, run = avts_run
    r = sync_accuracy(run, tiny_world, tmp_path / "sync", clips=2, progress=False)
    assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["auc"] <= 1.0
    assert r["pairs"]["test"] == 2 * 2 * r["videos"]["test"]  # per clip one in-sync and one other-video pair
    assert (tmp_path / "sync" / "sync.md").exists()


def test_loss_pairs_frames_with_own_audio_and_negatives_by_kind(avts_run):
    trainer, _ = avts_run
    m = trainer.method.eval()
    ds = trainer.train_set
    stage2 = m.view_plan(1)
    ds.set_plan(SyncNegatives(stage2.video_span, stage2.audio_span, hard=0.5))  # both kinds in a small batch
    batch = next(iter(trainer.loader(ds, 6)))
    with torch.no_grad():
        loss, logs = m.loss(batch)
        ev, ea = m.sync_embed("video", batch["video"]), m.sync_embed("audio", batch["audio"])
        en = m.sync_embed("audio", batch["audio_neg"])
    hard = batch["negative"] == SyncNegatives.HARD
    assert 0 < int(hard.sum()) < 6
    neg = torch.where(hard[:, None], en, ea.roll(-1, 0))  # own other-time audio, or the next video's
    d = torch.cat([pair_distance(ev, ea), pair_distance(ev, neg)])
    y = torch.cat([torch.ones(6, dtype=torch.bool), torch.zeros(6, dtype=torch.bool)])
    # BatchNorm in eval mode embeds row by row, so embedding apart gives the same numbers
    assert float(loss) == pytest.approx(float(avts_loss(d, y, m.cfg.avts.margin)), abs=1e-5)
    assert logs["hard_fraction"] == pytest.approx(float(hard.float().mean()))


def test_sync_needs_a_method_that_scores_pairs(tiny_world, tmp_path):
    from avssl.errors import CheckpointError
    from avssl.engine.pretrain import pretrain

    pretrain(resolve("cpu-tiny", "sdc", ["iterations=1", "optim.max_epochs=1"]), tiny_world, tmp_path / "sdc",
             progress=False)
    with pytest.raises(CheckpointError, match="does not score"):
        load_method(tmp_path / "sdc")


def test_a_run_split_between_the_stages_resumes_to_the_same_encoders(tiny_world, tmp_path):
    cfg = resolve("cpu-tiny", "avts", ["avts.stage_epochs=[1, 1]"])
    run_split_and_whole(cfg, tiny_world, tmp_path)


# --- its config section: checked by the method (AVTS.config_problems), named with the general problems --------

def test_its_section_is_checked_in_one_message_with_the_general_values():
    refused_config("avts", ["avts.margin=0", "avts.embed_dim=0", "avts.stage_epochs=[3]", "avts.hard_fraction=0.9",
                            "avts.superhard_fraction=0.2", "avts.superhard_min_shift=0", "video.cutout=2"],
                   "avts.margin must be > 0, got 0", "avts.embed_dim must be >= 1, got 0",
                   "avts.stage_epochs must be null or two epoch counts >= 0 (not both 0), e.g. [50, 40]; got [3]",
                   "avts.hard_fraction and avts.superhard_fraction must be in [0, 1] with a sum <= 1, got 0.9 and 0.2",
                   "avts.superhard_min_shift must be in (0, 2) s (shorter than a clip, so shifted windows still "
                   "overlap), got 0", "video.cutout is a probability in [0, 1], got 2")
    assert resolve("cpu-small", "avts", ["avts.stage_epochs=[0,5]"], check=validate).avts.stage_epochs == [0, 5]


def test_its_section_is_checked_whatever_the_method():
    # config.validate's general checks leave the avts section to AVTS; methods.validate asks every method
    assert resolve("cpu-small", "avts", ["avts.margin=0"]).avts.margin == 0
    refused_config("crisscross", ["avts.margin=0", "avts.stage_epochs=[3]"], "avts.margin must be > 0, got 0",
                   "avts.stage_epochs must be null or two epoch counts")


def test_a_clip_without_frames_per_second_is_a_general_problem_not_a_crash():
    with pytest.raises(ConfigError, match="video.num_frames and video.fps must be positive"):
        resolve("cpu-tiny", "avts", ["video.fps=0", "avts.superhard_fraction=0.1"], check=validate)


def test_the_engine_checks_the_section_before_the_run_folder_exists(tiny_world, tmp_path):
    cfg = resolve("cpu-tiny", "avts", ["avts.margin=-1"])  # the general checks only
    with pytest.raises(ConfigError, match=r"avts.margin must be > 0, got -1"):
        Pretrainer(cfg, tiny_world, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("source", ["--set", "--config"])
def test_pretrain_refuses_a_bad_value_in_one_message_before_the_run_folder_exists(source, tiny_world, tmp_path,
                                                                                 capsys):
    (tmp_path / "exp.yaml").write_text("avts:\n  margin: -1\n")
    given = ["--set", "avts.margin=-1"] if source == "--set" else ["--config", str(tmp_path / "exp.yaml")]
    out = tmp_path / "run"
    code = main(["pretrain", "--method", "avts", "--preset", "cpu-tiny", "--data", str(tiny_world), "--out", str(out),
                 "--no-progress", *given, "--set", "optim.lr=-1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("invalid configuration:") == 1
    assert "avts.margin must be > 0, got -1" in err and "optim.lr must be > 0, got -1" in err
    assert not out.exists()
