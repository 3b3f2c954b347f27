"""Downstream evaluation of pretrained (or random, "scratch") encoders, as in XDC Sec. 4-5 and
CrissCross App. E: linear probe (fc-only), linear SVM, full fine-tuning, retrieval, and reports on a
run's clusters. Every function writes ``<name>.json`` and ``<name>.md`` into ``out`` and returns the
result as a dict; fold handling is shared (``splits``), and so are the cached frozen features
(``features``).

- ``extract(encoders, data, out, modality=, clips=, level=)``
- ``linear_probe(encoders, data, out, modality=, folds=, train_clips=, test_clips=, lrs=, epochs=)``
- ``svm_probe(encoders, data, out, modality=, folds=, recipe=, clips=, cs=, pool=, audio_seconds=)``
- ``finetune(encoders, data, out, modality=, folds=, recipe=, lrs=, epochs=, batch_size=, epoch_size=, frames=,
  pool=)``; the papers' recipes by name in ``recipes`` (XDC Tables 11-12, CrissCross Table S11 and App. E.1)
- ``retrieval(encoders, data, out, modality=, folds=, clips=, ks=)`` and ``cross_modal_recall``
- ``cluster_report(run, data, out, clustering=)``
- ``sync_accuracy(run, data, out, clips=)``: AVTS's audio-visual synchronisation accuracy
- ``dense_extract(encoders, data, out, modality=, stride=, clip_len=, max_memory_mb=)``: (T, D) clip
  features over whole videos for temporal localization (one .npy per video + index.csv)
- ``fusion(encoders, data, out, classifier=, folds=, clips=)``: late fusion a+v beside v and a
- ``crossmodal(run, data, out, split=, clips=, ks=)``: video -> audio and audio -> video recall@k

``encoders``: a run directory, an ``encoders.pt``, loaded encoders, or ``"scratch"`` with ``preset=``.
"""
import importlib
import sys
import types

# Each function, by the module that defines it. They are imported on first use, so that importing
# ``avssl.cli.evaluation`` (to build the ``avssl`` parser) does not load torch, faiss or sklearn.
_EXPORTS = {
    "cluster_report": "cluster_report",
    "cross_modal_recall": "retrieval",
    "crossmodal": "crossmodal",
    "dense_extract": "dense",
    "extract": "features",
    "extract_split_features": "features",
    "finetune": "finetune",
    "fusion": "fusion",
    "linear_eval": "linear",
    "linear_probe": "linear",
    "load_source": "features",
    "recall_at_k": "retrieval",
    "resolve_folds": "splits",
    "retrieval": "retrieval",
    "svm_eval": "svm",
    "svm_probe": "svm",
    "sync_accuracy": "sync",
    "with_frames": "features",
}

__all__ = sorted(_EXPORTS)


class _LazyPackage(types.ModuleType):
    """``avssl.evaluation`` with its functions loaded on first use. Several share their module's name
    (``finetune``, ``fusion``, ``retrieval``, ``crossmodal``, ``cluster_report``): importing such a
    module binds it on the package, which here keeps the function instead, as an eager
    ``from .finetune import finetune`` would."""

    def __getattr__(self, name):
        if name not in _EXPORTS:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{self.__name__}.{_EXPORTS[name]}"), name)
        super().__setattr__(name, value)
        return value

    def __setattr__(self, name, value):
        if name in _EXPORTS and isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __dir__(self):
        return sorted({*super().__dir__(), *_EXPORTS})


sys.modules[__name__].__class__ = _LazyPackage
