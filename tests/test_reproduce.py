"""``avssl reproduce``: the registry's published numbers, --list, --dry-run's commands, and one table run
for real on miniature datasets in their official layouts (generated clips), then rerun without retraining."""
import csv
import json
import os
import shutil
import wave as wavfile

import numpy as np
import pytest

from avssl.cli import main
from avssl.data.manifest import load_manifest
from avssl.workflows.paper_tables import DATASETS, TABLES
from avssl.cli.reproduce import plan


def test_registry_cites_the_papers_numbers():
    # spot checks against the papers (/work/shared/papers), one per table
    cell = {(t, c.row, c.column): c.published for t, tab in TABLES.items() for c in tab.cells}
    assert cell[("xdc-table1", "XDC", "UCF101")] == 74.2 and cell[("xdc-table1", "Scratch", "ESC50")] == 54.3  # T1
    assert cell[("xdc-table2", "AudioSet, k=128", "ESC50")] == 85.8  # Table 2
    assert cell[("xdc-table3", "Superv ImageNet", "HMDB51")] == 44.5  # Table 3
    assert cell[("xdc-table5", "Superv Kinetics", "HMDB51 fc")] == 61.5  # Table 5
    assert cell[("xdc-table7", "XDC AudioSet", "DCASE")] == 95.0  # Table 7(b)
    assert cell[("xdc-table13", "XDC (ResNet3D-18)", "ESC50")] == 75.5  # Table 13
    assert cell[("crisscross-table1", "L_sync+intra", "ESC50")] == 78.0  # CrissCross Table 1
    assert cell[("crisscross-table2", "K400, w/ L_async", "KS (a+v)")] == 66.7  # Table 2
    assert cell[("crisscross-table3", "common predictor", "UCF101")] == 73.6  # Table 3
    assert cell[("crisscross-table4", "pretrained on AS", "DCASE")] == 97.0  # Table 4
    assert cell[("crisscross-table6", "pretrained on K400, 32 frames", "HMDB51")] == 64.7  # Table 6
    assert cell[("crisscross-table8", "pretrained on K400", "ESC50")] == 86.8  # Table 8
    assert cell[("avts-sync", "curriculum: easy 1-50, then 75% easy / 25% hard 51-90", "AVTS-Kinetics")] == 78.4
    for t in TABLES.values():  # every run a cell names exists, every dataset has a builder
        names = {r.name for r in t.runs} | {f"{r.name}-32f" for r in t.runs if r.long_clips}
        assert all(c.run is None or c.run in names for c in t.cells), t.name
        assert set(t.datasets) <= set(DATASETS), t.name


def test_list_shows_every_table_with_needs_and_numbers(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in TABLES:
        assert f"{name}  (" in out
    assert "needs: kinetics400 = kinetics400/train.csv" in out and "XDC: UCF101 74.2, HMDB51 39, ESC50 78" in out
    assert "common predictor: UCF101 73.6, ESC50 75.3" in out


def test_dry_run_prints_the_command_sequence(tmp_path, capsys):
    assert main(["reproduce", "xdc-table1", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--dry-run", "--step-seconds", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "7 pretrainings, 21 evaluations" in out
    assert f"avssl data ucf101 {tmp_path}/ucf101/UCF-101 --splits {tmp_path}/ucf101/ucfTrainTestlist" in out
    assert (f"avssl pretrain --method xdc --preset xdc-paper --data {tmp_path}/o/data/kinetics400.csv "
            f"--out {tmp_path}/o/runs/xdc --resume --no-progress") in out
    assert "--recipe xdc-hmdb51 --folds 1" in out and "--encoders scratch --preset xdc-paper" in out
    # xdc-paper: at most 6 iterations x 30 epochs x 1M clips / 32 = 5,625,000 steps per run (Table 10)
    assert "xdc: <= 5,625,000 steps of batch 32 (1,000,000 clips per epoch)" in out
    assert "GPU-hours at 0.5 s per step" in out
    assert not (tmp_path / "o").exists()  # a dry run writes nothing
    assert main(["reproduce", "xdc-tabel1", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "did you mean xdc-table1" in capsys.readouterr().err
    assert main(["reproduce", "xdc-table1", "--rows", "nope", "--data-root", str(tmp_path), "--out",
                 str(tmp_path / "o"), "--dry-run"]) == 2
    assert "has no row(s) ['nope']" in capsys.readouterr().err


def test_eval_options_reach_only_the_evaluations_that_have_them(tmp_path):
    steps = plan(TABLES["avts-audio"], tmp_path, tmp_path / "o", eval_options=["clips=2", "epochs=1"])
    evals = [s.argv for s in steps if s.kind == "eval"]
    assert all("--epochs" not in a for a in evals)  # svm has no --epochs
    assert all(list(a).count("--clips") >= 1 and a[-3:-1] != ("--epochs", "1") for a in evals)
    assert [a[a.index("--modality") + 1] for a in evals] == ["audio", "audio"]


# --- a real run on miniature official layouts ------------------------------------------------------

@pytest.fixture(scope="module")
def data_root(tiny_world, tmp_path_factory):
    """Kinetics-400, UCF101, HMDB51 and ESC-50 in their official layouts, from the tiny world's real clips."""
    root = tmp_path_factory.mktemp("datasets")
    items = list(load_manifest(tiny_world))
    classes = sorted({i.label for i in items})
    by_class = {c: [i.path for i in items if i.label == c] for c in classes}
    k = root / "kinetics400"
    rows = [["label", "youtube_id", "time_start", "time_end", "split"]]
    for n, item in enumerate(items):
        ytid = f"vid{n:08d}"
        rows.append([item.label, ytid, "0", "10", "train"])
        dest = k / "train" / item.label / f"{ytid}_000000_000010.mp4"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(item.path, dest)
    with open(k / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    ucf, hmdb = root / "ucf101", root / "hmdb51"
    (ucf / "ucfTrainTestlist").mkdir(parents=True)
    (hmdb / "testTrainMulti_7030_splits").mkdir(parents=True)
    train, test = [], []
    for c_index, c in enumerate(classes, 1):
        split_lines = []
        for g, path in enumerate(by_class[c], 1):
            name = f"v_{c}_g{g:02d}_c01.avi"
            for dest in (ucf / "UCF-101" / c / name, hmdb / "videos" / c / name):
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, dest)
            (test if g > 4 else train).append(f"{c}/{name}" + ("" if g > 4 else f" {c_index}"))
            split_lines.append(f"{name} {2 if g > 4 else 1}")
        (hmdb / "testTrainMulti_7030_splits" / f"{c}_test_split1.txt").write_text("\r\n".join(split_lines) + "\r\n")
    (ucf / "ucfTrainTestlist" / "classInd.txt").write_text("".join(f"{i} {c}\r\n" for i, c in enumerate(classes, 1)))
    (ucf / "ucfTrainTestlist" / "trainlist01.txt").write_text("\r\n".join(train) + "\r\n")
    (ucf / "ucfTrainTestlist" / "testlist01.txt").write_text("\r\n".join(test) + "\r\n")
    esc = root / "ESC-50"
    (esc / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    meta = [["filename", "fold", "target", "category", "esc10", "src_file", "take"]]
    t = np.arange(int(2.5 * 16000)) / 16000
    for target, freq in enumerate((300.0, 900.0, 2400.0)):
        for fold in range(1, 6):
            name = f"{fold}-{target}{fold:04d}-A-{target}.wav"
            wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.normal(size=t.size)
            with wavfile.open(str(esc / "audio" / name), "wb") as w:  # 16-bit PCM, as ESC-50's own files
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes((np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes())
            meta.append([name, str(fold), str(target), f"class{target}", "False", f"{target}{fold}", "A"])
    (esc / "meta").mkdir()
    with open(esc / "meta" / "esc50.csv", "w", newline="") as f:
        csv.writer(f).writerows(meta)
    return root


TINY = ["--preset", "cpu-tiny", "--set", "iterations=1", "--set", "optim.max_epochs=1", "--set", "precision=fp32",
        "--eval-option", "epochs=1", "--eval-option", "epoch-size=16", "--eval-option", "batch-size=8",
        "--eval-option", "test-clips=1", "--eval-option", "lrs=0.01", "--rows", "XDC", "--rows", "Scratch"]


def test_a_table_runs_end_to_end_and_reruns_without_retraining(data_root, tmp_path, capsys):
    out = tmp_path / "xdc-table1"
    assert main(["reproduce", "xdc-table1", "--data-root", str(data_root), "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "11 steps run, 0 reused" in printed  # 4 manifests, 1 pretraining, 6 evaluations
    table = json.loads((out / "table.json").read_text())
    cells = {(c["row"], c["column"]): c for c in table["cells"]}
    assert set(cells) == {(r, c) for r in ("XDC", "Scratch") for c in ("UCF101", "HMDB51", "ESC50")}
    for c in cells.values():
        assert 0.0 <= c["avssl"] <= 100.0 and c["difference"] == pytest.approx(c["avssl"] - c["published"], abs=0.01)
    assert cells[("XDC", "UCF101")]["published"] == 74.2
    md = (out / "table.md").read_text()
    assert "| XDC | UCF101 | 74.2 |" in md and "Not the papers' recipes" in md and "preset cpu-tiny" in md
    # the run's encoders were used: the XDC evaluations point at the pretraining run
    ft = json.loads((out / "evals" / "xdc" / "ucf101" / "finetune.json").read_text())
    assert ft["settings"]["recipe"] == "xdc-ucf101" and list(ft["folds"]) == ["1"]
    esc = json.loads((out / "evals" / "xdc" / "esc50" / "finetune.json").read_text())
    assert esc["modality"] == "audio" and esc["skipped_clips"]["skipped"] == 0 and esc["folds"]["1"]["test_videos"] == 3
    encoders = out / "runs" / "xdc" / "encoders.pt"
    stamp = os.stat(encoders).st_mtime_ns
    assert main(["reproduce", "xdc-table1", "--data-root", str(data_root), "--out", str(out), *TINY]) == 0
    assert "0 steps run, 11 reused" in capsys.readouterr().out
    assert os.stat(encoders).st_mtime_ns == stamp  # nothing retrained
