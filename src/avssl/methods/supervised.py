"""Supervised pretraining, the XDC paper's "Superv" reference (the upper bound beside Scratch's lower
bound): the same encoders, schedule and heads as the deep-clustering methods, trained on the
manifest's labels instead of pseudo-labels.

    avssl pretrain --method supervised --data labelled.csv --out runs/superv --preset cpu-small
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from .deep_clustering import DeepClusteringMethod


class Supervised(DeepClusteringMethod):
    """Each encoder (video and audio) gets a linear head over the manifest's classes and learns with
    cross-entropy on the labels: deep clustering's training with one fixed label table, ``labels``,
    that is never clustered. The heads have one output per class (``clustering.*`` does not apply),
    videos are sampled uniformly, and the labels travel in checkpoints like pseudo-labels.

    Budget: the total training of the self-supervised methods in one go, i.e. one iteration of
    ``iterations x optim.max_epochs`` epochs (its learning-rate schedule spans them all), stopped
    early on the validation loss (``optim.early_stop``) as every iteration is. Labels of the
    validation videos drive that stop only; they are not trained on.

    Every usable video must have a label: a manifest without labels (or with some missing) is
    refused before any work.
    """

    name = "supervised"
    slots = {"video": "video", "audio": "audio"}
    clusterings: dict = {}  # nothing is clustered: the label table comes from the manifest
    targets = {"video": ["labels"], "audio": ["labels"]}

    def num_iterations(self) -> int:
        return 1

    def max_epochs(self, iteration: int) -> int:
        return self.cfg.iterations * self.cfg.optim.max_epochs

    def check_data(self, entries, manifest) -> None:
        labels = np.array([e.label for e in entries])
        if not (labels >= 0).any():
            labelled = sum(item.label is not None for item in manifest)
            raise ConfigError(
                f"--method supervised needs a labelled manifest (a label for every video); {manifest.source} "
                f"has labels for {labelled} of its {len(manifest)} items")
        classes = len(np.unique(labels[labels >= 0]))
        if classes < 2:
            raise ConfigError(f"--method supervised needs at least 2 classes among the usable videos of "
                              f"{manifest.source}, got {classes}")

    def iteration_labels(self, ctx) -> dict[str, torch.Tensor]:
        labels = ctx.labels()
        if labels is None:  # check_data refuses such data first
            raise ConfigError("--method supervised needs a labelled manifest")
        return {"labels": torch.from_numpy(np.asarray(labels, dtype=np.int64))}

    def head_size(self, name: str) -> int:
        """One output per class (label ids are 0 .. classes - 1)."""
        return int(self.pseudo_labels[name].max()) + 1

    def sample_weights(self):
        return None
