"""Both ways of reporting an evaluation swept over a hyper-parameter grid (learning rates, SVM costs).

avssl chooses the value on a validation split carved from the training videos and reports the test
accuracy of that choice (``accuracy``): test data never chooses anything. The papers report the best
test accuracy over the grid (XDC Supp. C: "we cross-validate ... and report the best result";
CrissCross App. E.1 sweeps C the same way). Evaluations with a grid report that too, labelled, as
``accuracy_best_over_grid``, so a number can be compared with a paper's like for like:

    avssl eval svm ...        # svm.md: accuracy | accuracy_best_over_grid
"""
from __future__ import annotations

BEST_OVER_GRID = "accuracy_best_over_grid"

#: What each reported accuracy means (a line of every report that has both).
REPORTING = (f"accuracy: the value chosen on validation (avssl); {BEST_OVER_GRID}: the best test accuracy over "
             f"the whole grid (how the papers report; test data takes part in the choice)")


def best_over_grid(sweep: dict) -> float | None:
    """The best ``test_accuracy`` over a sweep {value: {..., "test_accuracy": a}}; None without a grid."""
    tests = [r["test_accuracy"] for r in sweep.values() if r.get("test_accuracy") is not None]
    return max(tests) if tests else None
