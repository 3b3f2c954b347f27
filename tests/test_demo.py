"""``avssl demo`` end to end on a small world and the tiny preset: the table and the cluster report."""
from avssl.data.demo_world import DemoWorldConfig
from avssl.workflows.demo import format_table, run_demo


def test_demo_runs_pretraining_evaluation_and_cluster_report(tmp_path):
    world = DemoWorldConfig(num_classes=3, clips_per_class=6, duration=2.5, seed=1)
    result = run_demo(tmp_path / "demo", methods=("scratch", "xdc"), preset="cpu-tiny", world=world,
                      overrides=["iterations=1", "clustering.k=3"], progress=False)
    table = result["table"]
    assert set(table) == {"scratch", "xdc"}
    for method in table:
        for modality in ("video", "audio"):
            assert 0.0 <= table[method][modality] <= 1.0
    assert "| demo world, video encoder |" in result["markdown"]
    assert (tmp_path / "demo" / "results.md").read_text().strip() == result["markdown"]
    assert (tmp_path / "demo" / "clusters" / "clusters.html").exists()
    # A second run reuses the finished pretraining instead of training again.
    stamp = (tmp_path / "demo" / "runs" / "xdc" / "encoders.pt").stat().st_mtime_ns
    run_demo(tmp_path / "demo", methods=("xdc",), preset="cpu-tiny", world=world,
             overrides=["iterations=1", "clustering.k=3"], progress=False)
    assert (tmp_path / "demo" / "runs" / "xdc" / "encoders.pt").stat().st_mtime_ns == stamp


def test_demo_table_has_avts_and_crisscross_columns(tmp_path):
    world = DemoWorldConfig(num_classes=3, clips_per_class=4, duration=2.5, seed=2)
    # mixed relaxation: the tiny preset's 2 s views do not fit twice in 2.5 s videos
    result = run_demo(tmp_path / "demo", methods=("avts", "crisscross"), preset="cpu-tiny", world=world,
                      overrides=["optim.max_epochs=1", "crisscross.relaxation=mixed"], progress=False)
    header = result["markdown"].splitlines()[0]
    assert "| AVTS | CrissCross |" in header
    for method in ("avts", "crisscross"):
        assert set(result["table"][method]) == {"video", "audio"}


def test_table_marks_best_and_second_best():
    md = format_table({"a": {"video": 0.5, "audio": 0.1}, "b": {"video": 0.7, "audio": 0.3},
                       "c": {"video": 0.6}}, ("a", "b", "c"))
    video_row = next(line for line in md.splitlines() if "video encoder" in line)
    assert "**70.0**" in video_row and "_60.0_" in video_row and "| 50.0 |" in video_row
    audio_row = next(line for line in md.splitlines() if "audio encoder" in line)
    assert audio_row.endswith("N/A |")


def test_scratch_uses_the_same_overrides_as_the_pretrained_runs(tmp_path):
    """With ``--set video.crop=...`` the Scratch column must be random encoders of that clip size too,
    or it is not the lower bound of the other columns."""
    import json

    world = DemoWorldConfig(num_classes=3, clips_per_class=4, duration=2.5, seed=3)
    run_demo(tmp_path / "demo", methods=("scratch",), preset="cpu-tiny", world=world,
             overrides=["video.resize=14", "video.crop=12"], progress=False)
    metas = [json.loads(p.read_text()) for p in (tmp_path / "demo" / "features").glob("video-*/meta.json")]
    assert metas and all(m["crop"] == 12 and m["clip"]["short_side"] == 14 for m in metas)


def test_a_failing_method_is_reported_and_the_demo_goes_on(tmp_path):
    """A method that cannot run (here XDC asks for more clusters than there are videos) shows as
    "failed" with its reason; the other methods are still evaluated, results and report are written."""
    import json

    from avssl.cli import main

    world = DemoWorldConfig(num_classes=3, clips_per_class=4, duration=2.5, seed=3)
    result = run_demo(tmp_path / "demo", methods=("xdc", "scratch"), preset="cpu-tiny", world=world,
                      overrides=["clustering.k=1000"], progress=False)
    assert "k=1000" in result["failed"]["xdc"] and set(result["table"]) == {"scratch"}
    video_row = next(line for line in result["markdown"].splitlines() if "video encoder" in line)
    assert video_row.startswith("| demo world, video encoder | failed |")
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert saved["failed"] == result["failed"] and "scratch" in saved["table"]
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "k=1000" in page and "Scratch" in page
    rc = main(["demo", "--out", str(tmp_path / "demo"), "--methods", "xdc,scratch", "--preset", "cpu-tiny",
               "--set", "clustering.k=1000", "--no-progress"])
    assert rc == 1  # a demo with a failed method does not exit as a success


def test_several_seeds_give_mean_and_spread(tmp_path):
    world = DemoWorldConfig(num_classes=3, clips_per_class=4, duration=2.5, seed=3)
    result = run_demo(tmp_path / "demo", methods=("scratch",), preset="cpu-tiny", world=world, seeds=(0, 1),
                      progress=False)
    accs = result["per_seed"]["scratch"]["video"]
    assert len(accs) == 2
    assert result["table"]["scratch"]["video"] == sum(accs) / 2
    assert "±" in result["markdown"] and "seeds 0, 1" in result["markdown"]
