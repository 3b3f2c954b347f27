"""Linear SVM on frozen video-level features (CrissCross App. E.1), with a sweep of the cost C.

A video's feature is the mean of its K uniformly spaced clips. Each feature is L2-normalised (so the
encoders' very different feature scales, e.g. random vs trained, do not change what C means), then
standardised with the training videos' statistics (LinearSVC's solver converges badly on unscaled
dimensions). C is chosen on a validation part carved from the training videos; the classifier is then
retrained on all of train. The test accuracy of every C is kept in the sweep for reference only: the
reported ``accuracy`` is that of the C chosen on validation (CrissCross reports the best over the
sweep, which selects on test).

``recipe`` (``recipes.SVM_RECIPES``) sets the C grid, the pooling of the features, the clips per video
and the audio seconds together; ``crisscross*`` are CrissCross App. E.1's (its C grid, max-pooled
final-convolution features, 5 s of audio for ESC50 and 1 s for DCASE). Explicit arguments win.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import LinearSVC

from .grid_report import BEST_OVER_GRID, REPORTING, best_over_grid
from .features import Features, evaluate_frozen, load_source, with_audio_seconds, with_pool
from .recipes import DEFAULT_SVM_RECIPE, svm_recipe
from .splits import Fold, carve_validation, check_options, choose, describe_choice

SVM_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def fit_svm(x: np.ndarray, y: np.ndarray, c: float, seed: int = 0):
    """L2-normalise, standardise (training statistics), one-vs-rest linear SVM with cost ``c``."""
    model = make_pipeline(Normalizer(), StandardScaler(), LinearSVC(C=c, max_iter=10000, random_state=seed))
    with warnings.catch_warnings():
        # Large C on separable data rarely reaches the solver's tolerance; the fit is still usable.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def _accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(x) == y)) if len(y) else float("nan")


def svm_eval(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, cs=SVM_CS,
             val_fraction: float = 0.2, seed: int = 0) -> dict:
    """Feature-level SVM evaluation on one row per video; returns test ``accuracy`` for the C chosen on
    validation, that ``C``, and the ``sweep`` {C: val_accuracy, test_accuracy} (empty for a single C)."""
    cs = [float(c) for c in cs]
    sweep = {}
    if len(cs) > 1:
        keep, val = carve_validation(y_train, val_fraction, seed)
        for c in cs:
            sweep[c] = {"val_accuracy": _accuracy(fit_svm(x_train[keep], y_train[keep], c, seed), x_train[val],
                                                  y_train[val]),
                        "test_accuracy": _accuracy(fit_svm(x_train, y_train, c, seed), x_test, y_test)}
    c = choose(sweep) if sweep else cs[0]
    accuracy = sweep[c]["test_accuracy"] if sweep else _accuracy(fit_svm(x_train, y_train, c, seed), x_test, y_test)
    return {"accuracy": accuracy, BEST_OVER_GRID: best_over_grid(sweep), "C": c,
            "sweep": {str(k): v for k, v in sweep.items()}}


def svm_probe(encoders, data, out, *, modality: str = "video", folds="all", recipe: str = DEFAULT_SVM_RECIPE,
              clips: int | None = None, cs=None, pool: str | None = None, audio_seconds: float | None = None,
              val_fraction: float = 0.2, preset: str | None = None, seed: int = 0, cache_dir=None,
              device="auto", extract_batch_size=None, progress: bool = True) -> dict:
    """Linear-SVM evaluation of ``encoders``' ``modality`` encoder on every requested fold of ``data``;
    writes ``svm.json`` and ``svm.md`` into ``out`` and returns the result. ``recipe`` names the
    settings; ``clips``, ``cs``, ``pool`` (avg | max | crisscross) and ``audio_seconds``, when given,
    replace the recipe's."""
    r = svm_recipe(recipe)
    if r.modality is not None and r.modality != modality:
        from ..errors import ConfigError

        raise ConfigError(f"the SVM recipe {recipe!r} ({r.source}) is for the {r.modality} encoder; "
                          f"pass modality={r.modality} (--modality {r.modality})")
    clips = r.clips if clips is None else clips
    cs = r.cs if cs is None else cs
    pool = pool or r.pool
    audio_seconds = r.audio_seconds if audio_seconds is None else audio_seconds
    check_options(val_fraction=val_fraction, choices=len(cs))
    if pool != "avg" or audio_seconds is not None:
        encoders = with_pool(with_audio_seconds(load_source(encoders, preset, seed), audio_seconds), pool)
        preset = None  # the source is built: evaluate_frozen must not build it again
    def evaluate(train: Features, test: Features, fold: Fold) -> dict:
        return svm_eval(train.x, fold.encode(train.labels), test.x, fold.encode(test.labels), cs, val_fraction, seed)

    settings = {"recipe": recipe, "Cs": list(cs), "val_fraction": val_fraction, "clips": clips, "pool": pool,
                "preprocessing": "L2-normalise, then standardise with training statistics",
                **({"reporting": REPORTING} if len(cs) > 1 else {})}
    if modality == "audio":
        settings["audio_seconds"] = audio_seconds or "as trained"
    return evaluate_frozen(
        "svm", "Linear SVM on frozen video-level features", encoders, data, out, evaluate,
        ["accuracy", BEST_OVER_GRID] if len(cs) > 1 else ["accuracy"],
        modality=modality, level="video", train_clips=clips, test_clips=clips, folds=folds, settings=settings,
        details=_details, preset=preset, seed=seed, cache_dir=cache_dir, device=device, batch_size=extract_batch_size,
        progress=progress)


def _details(r: dict) -> str:
    return describe_choice("C", r["C"], r["sweep"])
