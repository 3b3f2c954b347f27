"""avssl.evaluation.splits: the fold protocol (official fold columns, else the split column), fold
arguments, and a validation split carved from the training videos."""
import csv

import numpy as np
import pytest

from avssl.data.manifest import Manifest
from avssl.errors import ConfigError
from avssl.evaluation import resolve_folds
from avssl.evaluation.splits import carve_validation, parse_folds

# --- folds -------------------------------------------------------------------------------------------


def _manifest(rows, tmp_path, name="m.csv"):
    """rows: (label, split, {meta}) -> a Manifest of fake paths (fold logic never opens files)."""
    return Manifest.read(_write(rows, tmp_path / name))


def _write(rows, path):
    keys = sorted({k for *_, meta in rows for k in meta})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split", *keys])
        for i, (label, split, meta) in enumerate(rows):
            w.writerow([f"v{i}.mp4", label or "", split or "", *[meta.get(k, "") for k in keys]])
    return path


def test_official_fold_columns_give_one_fold_each(tmp_path):
    first, second = {"split_1": "train", "split_2": "test"}, {"split_1": "test", "split_2": "train"}
    rows = [("a", "train", first), ("a", "test", second), ("b", "train", first), ("b", "test", second)]
    m = _manifest(rows, tmp_path)
    folds = resolve_folds(m, "all")
    assert [(f.name, f.train, f.test) for f in folds] == [("1", (0, 2), (1, 3)), ("2", (1, 3), (0, 2))]
    assert [f.name for f in resolve_folds(m, 2)] == ["2"] and folds[0].classes == ("a", "b")
    np.testing.assert_array_equal(folds[0].encode(["b", "a", "zzz"]), [1, 0, -1])
    with pytest.raises(ConfigError, match="no fold"):
        resolve_folds(m, 3)


def test_split_column_when_there_are_no_fold_columns(tmp_path):
    m = _manifest([("a", "train", {}), ("a", "test", {}), ("b", "train", {}), ("b", "test", {}), ("b", "val", {})],
                  tmp_path)
    (fold,) = resolve_folds(m)
    assert (fold.name, fold.train, fold.test) == ("split", (0, 2), (1, 3))
    with pytest.raises(ConfigError, match="no official fold columns"):
        resolve_folds(m, 2)


def test_unknown_test_labels_and_missing_splits_are_clear_errors(tmp_path):
    unseen = _manifest([("a", "train", {}), ("a", "test", {}), ("c", "test", {})], tmp_path)
    with pytest.raises(ConfigError, match=r"test label\(s\) \['c'\] never occur"):
        resolve_folds(unseen)
    no_split = _manifest([("a", None, {}), ("b", None, {})], tmp_path, "n.csv")
    with pytest.raises(ConfigError, match="labels but no train/test split.*avssl data"):
        resolve_folds(no_split)
    no_labels = _manifest([(None, None, {}), (None, None, {})], tmp_path, "u.csv")
    with pytest.raises(ConfigError, match="no labels"):
        resolve_folds(no_labels)


def test_fold_arguments_parse():
    assert parse_folds("all") == "all" and parse_folds("2") == [2] and parse_folds("1,3") == [1, 3]
    with pytest.raises(ConfigError):
        parse_folds("first")


def test_validation_is_carved_by_video_and_stratified():
    labels = np.repeat([0, 1, 2], [10, 4, 2])
    train, val = carve_validation(labels, 0.2, seed=0)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(16))
    assert [int((labels[val] == c).sum()) for c in range(3)] == [2, 1, 1]  # every class on both sides
    np.testing.assert_array_equal(carve_validation(labels, 0.2, seed=0)[1], val)  # reproducible
