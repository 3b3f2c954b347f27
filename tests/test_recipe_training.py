"""Training behaviour the papers' recipes need, on real short cpu-tiny runs of the tiny world:

- SDC as two independent DeepClusters: each encoder stops early on its own validation loss and is
  frozen from then on while the other trains on; with balanced sampling each is balanced over its own
  clusters (XDC Supp. A: DeepCluster samples "uniformly over the cluster assignments");
- AVTS's curriculum keeps one optimiser (state and schedule) through its two stages (slides: epochs
  1-50, then 51-90);
- the last deep-clustering iteration's own schedule (XDC Table 10's IG-Kinetics*: 0/9/30).
"""
import json

import pytest
import torch
import torch.nn.functional as F

from avssl.config import resolve
from avssl.runs import load_encoders
from avssl.io import atomic_save, load_checkpoint
from avssl.engine.pretrain import Pretrainer, pretrain
from avssl.methods import build_method


def epochs_of(run):
    return [r for r in map(json.loads, open(run / "metrics.jsonl")) if "epoch" in r and not r.get("summary")]


def stop_epochs(records) -> dict:
    """{part: the epoch after which it stopped} from the epochs' ``stopped_parts``."""
    out = {}
    for r in records:
        for part in r.get("stopped_parts", []):
            out.setdefault(part, r["epoch"])
    return out


SDC = ["iterations=1", "optim.max_epochs=6", "optim.early_stop=1"]


@pytest.fixture(scope="module")
def sdc_split_stop(tiny_world, tmp_path_factory):
    """The first seed whose SDC run stops its two encoders at different epochs (early_stop=1, 6 epochs)."""
    root = tmp_path_factory.mktemp("sdc_stop")
    for seed in range(8):
        run = pretrain(resolve("cpu-tiny", "sdc", [*SDC, f"seed={seed}"]), tiny_world, root / f"s{seed}",
                       progress=False).run_dir
        stops = stop_epochs(epochs_of(run))
        if len(set(stops.values())) == 2:
            return seed, run, stops
    pytest.fail(f"no seed of 0-7 stopped the two SDC encoders at different epochs: {stops}")


def test_sdc_encoders_stop_early_each_on_its_own_validation_loss(sdc_split_stop):
    seed, run, stops = sdc_split_stop
    records = epochs_of(run)
    first = min(stops, key=stops.get)
    other = "audio" if first == "video" else "video"
    assert stops[first] < stops[other] or other not in stops
    for r in records:
        assert f"val_loss_{first}_from_{first}" in r and f"val_loss_{other}_from_{other}" in r
    # Each part stops when its own loss rose (early_stop=1), whatever the other part's and the total did.
    for part, e in stops.items():
        own = [r[f"val_loss_{part}_from_{part}"] for r in records]
        assert own[e] > own[e - 1] and all(own[i] <= own[i - 1] for i in range(1, e))
    # The stopped part no longer trains (no training loss), and its validation loss stays where it was:
    # frozen weights and frozen BatchNorm statistics. The other part trains on.
    later = [r for r in records if r["epoch"] > stops[first]]
    assert later, "the run ended when the first part stopped"
    for r in later:
        assert f"loss_{first}_from_{first}" not in r and f"loss_{other}_from_{other}" in r
        assert r[f"val_loss_{first}_from_{first}"] == records[stops[first]][f"val_loss_{first}_from_{first}"]


def test_a_stopped_sdc_encoder_keeps_the_weights_it_stopped_with(sdc_split_stop, tiny_world, tmp_path):
    seed, run, stops = sdc_split_stop
    first = min(stops, key=stops.get)
    other = "audio" if first == "video" else "video"
    # The same run cut right after the first part's stopping epoch trains the same epochs up to there.
    short = pretrain(resolve("cpu-tiny", "sdc", [*SDC, f"seed={seed}", f"optim.max_epochs={stops[first] + 1}"]),
                     tiny_world, tmp_path / "short", progress=False).run_dir
    long_enc, short_enc = load_encoders(run).modules, load_encoders(short).modules
    for k, v in long_enc[first].state_dict().items():
        assert torch.equal(v, short_enc[first].state_dict()[k]), k
    assert any(not torch.equal(v, short_enc[other].state_dict()[k]) for k, v in long_enc[other].state_dict().items())


def test_an_sdc_run_resumed_after_one_part_stopped_keeps_it_frozen(sdc_split_stop, tiny_world, tmp_path):
    seed, run, stops = sdc_split_stop
    first = min(stops, key=stops.get)
    # A checkpoint written right after the first part stopped: the run cut there, its last checkpoint
    # marked as mid-iteration (as the epoch checkpoint of the uncut run is), then resumed with the full
    # schedule (optim.max_epochs may change on --resume).
    out = tmp_path / "resumed"
    pretrain(resolve("cpu-tiny", "sdc", [*SDC, f"seed={seed}", f"optim.max_epochs={stops[first] + 1}"]),
             tiny_world, out, progress=False)
    last = out / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    assert state["epoch"] == stops[first] + 1
    assert [g for g, s in state["stopper"]["groups"].items() if s["stopped"]] == [first]
    atomic_save({**state, "iteration_done": False}, last)
    trainer = Pretrainer(resolve("cpu-tiny", "sdc", [*SDC, f"seed={seed}"]), tiny_world, out, resume=True,
                         progress=False)
    trainer.run()
    assert not any(p.requires_grad for p in trainer.method.encoders[first].parameters())
    # The resumed run ends where the uninterrupted one did, the frozen part untouched by the extra epochs.
    assert stop_epochs(epochs_of(out)) == stops
    for slot, module in load_encoders(run).modules.items():
        resumed = load_encoders(out).modules[slot].state_dict()
        for k, v in module.state_dict().items():
            assert torch.allclose(v.float(), resumed[k].float(), atol=1e-6), (slot, k)


def test_sdc_balances_each_encoder_over_its_own_clusters():
    cfg = resolve("cpu-tiny", "sdc", ["clustering.balanced_sampling=true"])
    m = build_method(cfg)
    n = 24
    video = torch.arange(n) % 4  # balanced video clusters: 6 videos each
    audio = torch.tensor([0] * 18 + [1] * 3 + [2] * 2 + [3])  # very unequal audio clusters
    m.pseudo_labels = {"video": video, "audio": audio}
    m.reset_heads(0)
    # One batch cannot be sampled uniformly over two clusterings: no sampler weights, loss weights instead.
    assert m.sample_weights() is None
    wa, wv = m.balance_weights("audio"), m.balance_weights("video")
    assert torch.allclose(wv, torch.ones(n))  # balanced clusters: nothing to reweight
    per_cluster = torch.stack([wa[audio == c].sum() for c in range(4)])
    assert torch.allclose(per_cluster, torch.full((4,), n / 4))  # every audio cluster carries the same weight
    assert torch.isclose(wa.mean(), torch.tensor(1.0))
    g = torch.Generator().manual_seed(0)
    batch = {"index": torch.arange(n), "video": torch.randn(n, 3, 4, 16, 16, generator=g),
             "audio": torch.randn(n, 1, 40, 100, generator=g)}
    m.train()
    _, logs = m.loss(batch)
    with torch.no_grad():
        ce = {s: F.cross_entropy(m.heads[f"{s}__{s}"](m.encode(s, batch)), t, reduction="none")
              for s, t in (("video", video), ("audio", audio))}
    assert logs["loss_audio_from_audio"] == pytest.approx(float((wa * ce["audio"]).mean()), rel=1e-4)
    assert logs["loss_audio_from_audio"] != pytest.approx(float(ce["audio"].mean()), rel=1e-3)
    assert logs["loss_video_from_video"] == pytest.approx(float(ce["video"].mean()), rel=1e-4)
    # Validation (eval mode) measures the plain pseudo-label loss, as with the sampler.
    m.eval()
    _, logs = m.loss(batch)
    with torch.no_grad():
        plain = F.cross_entropy(m.heads["audio__audio"](m.encode("audio", batch)), audio)
    assert logs["loss_audio_from_audio"] == pytest.approx(float(plain), rel=1e-4)


def test_cdc_keeps_sampling_uniformly_over_its_one_clustering():
    m = build_method(resolve("cpu-tiny", "cdc", ["clustering.balanced_sampling=true"]))
    m.pseudo_labels = {"joint": torch.tensor([0, 0, 0, 1])}
    assert m.sample_weights().tolist() == [1 / 3, 1 / 3, 1 / 3, 1.0]


def test_balanced_sdc_trains_end_to_end(tiny_world, tmp_path):
    run = pretrain(resolve("cpu-tiny", "sdc", ["iterations=1", "optim.max_epochs=1",
                                               "clustering.balanced_sampling=true"]),
                   tiny_world, tmp_path / "run", progress=False).run_dir
    (record,) = epochs_of(run)
    assert record["loss_video_from_video"] > 0 and record["loss_audio_from_audio"] > 0


AVTS = ["avts.stage_epochs=[1, 1]", "optim.optimizer=adam", "optim.schedule=cosine", "optim.lr=0.001",
        "optim.early_stop=0"]


def adam_steps(path) -> int:
    state = load_checkpoint(path)["optimizer"]["state"]
    return int(next(iter(state.values()))["step"])


def test_avts_keeps_one_optimiser_through_the_curriculum(tiny_world, tmp_path):
    run = pretrain(resolve("cpu-tiny", "avts", AVTS), tiny_world, tmp_path / "run", progress=False).run_dir
    records = epochs_of(run)
    assert [r["iteration"] for r in records] == [0, 1]
    steps = [r["steps"] for r in records]
    # Adam's step count (and moments) carry over the stage switch: stage 2 continues stage 1's optimiser.
    assert adam_steps(run / "checkpoints" / "iter_00.pt") == steps[0]
    assert adam_steps(run / "checkpoints" / "iter_01.pt") == steps[0] + steps[1]
    # One cosine over the curriculum's 2 epochs: stage 2 starts half way down, not at the top again.
    assert records[0]["lr"] == pytest.approx(0.001)
    assert records[1]["lr"] == pytest.approx(0.0005)


def test_avts_resumed_at_the_stage_switch_continues_the_same_optimiser(tiny_world, tmp_path):
    cfg = resolve("cpu-tiny", "avts", AVTS)
    whole = pretrain(cfg, tiny_world, tmp_path / "whole", progress=False).run_dir
    Pretrainer(cfg, tiny_world, tmp_path / "split", progress=False).run(max_iterations=1)
    Pretrainer(cfg, tiny_world, tmp_path / "split", resume=True, progress=False).run()
    a = load_checkpoint(whole / "checkpoints" / "iter_01.pt")["optimizer"]["state"]
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "iter_01.pt")["optimizer"]["state"]
    assert a.keys() == b.keys()
    for k in a:
        assert int(a[k]["step"]) == int(b[k]["step"])
        assert torch.allclose(a[k]["exp_avg_sq"], b[k]["exp_avg_sq"])


def test_the_last_iteration_trains_on_its_own_schedule(tiny_world, tmp_path):
    # Table 10's IG recipe in small: iterations of 2 epochs (cpu-tiny), a last one of we/se/te 0/1/3.
    cfg = resolve("cpu-tiny", "xdc", ["optim.early_stop=0", "optim.last_iteration_epochs=[0, 1, 3]"])
    run = pretrain(cfg, tiny_world, tmp_path / "run", progress=False).run_dir
    records = epochs_of(run)
    assert [(r["iteration"], r["epoch"]) for r in records] == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    lr, gamma = cfg.optim.lr, cfg.optim.gamma
    assert [r["lr"] for r in records if r["iteration"] == 0] == pytest.approx([lr, lr])  # step_epochs 10
    assert [r["lr"] for r in records if r["iteration"] == 1] == pytest.approx([lr, lr * gamma, lr * gamma ** 2])


def test_sdc_parts_stop_and_freeze_under_two_gloo_processes(tiny_world, tmp_path):
    """DistributedDataParallel is re-wrapped around the parts still training when one stops (a frozen
    part has no gradients to reduce), and the run ends when both have stopped."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(29500 + (os.getpid() + 7) % 1000), "-m", "avssl.cli", "pretrain", "--method", "sdc", "--data",
           str(tiny_world), "--out", str(out), "--preset", "cpu-tiny", "--no-progress", "--seed", "3",
           "--set", "optim.batch_size=8", "--set", "precision=fp32",
           *[x for o in SDC for x in ("--set", o)]]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    records = epochs_of(out)
    stops = stop_epochs(records)
    assert set(stops) == {"video", "audio"} or records[-1]["epoch"] == 5
    for part, e in stops.items():
        for r in (r for r in records if r["epoch"] > e):
            assert f"loss_{part}_from_{part}" not in r
            assert r[f"val_loss_{part}_from_{part}"] == records[e][f"val_loss_{part}_from_{part}"]


@pytest.mark.parametrize("method", ["xdc", "sdc", "supervised", "avts"])
def test_avssl_status_plans_the_longer_last_iteration(method):
    from avssl.workflows.status import planned_epochs

    cfg = resolve("cpu-tiny", method, ["iterations=3", "optim.last_iteration_epochs=[0, 1, 5]"])
    m = build_method(cfg)
    assert planned_epochs(cfg.to_dict()) == [m.max_epochs(i) for i in range(m.num_iterations())]
