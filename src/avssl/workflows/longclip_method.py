"""The method long-clip retraining runs in the engine (``longclip.retrain_long`` builds and passes it).

    pretrain(cfg, manifest, out, method=LongClipRetraining(cfg, inputs))
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import PretrainConfig
from ..methods.deep_clustering import DeepClusteringMethod
from .longclip import METHOD_NAME


class LongClipRetraining(DeepClusteringMethod):
    """The retraining as the engine runs it: a deep-clustering run's video encoder, trained again on
    that run's last clustering assignment, now with longer clips.

    ``inputs`` (saved in ``INPUTS`` by ``retrain_long``): the run's final video-encoder weights, the
    video paths and, per clustering that supervised the video encoder, the pseudo-label of every video
    in that order. They are matched to the new run's videos by path at the start of the single
    iteration, instead of extracting and clustering, so a video the longer clips cannot use is simply
    left out; they travel in checkpoints like every deep-clustering method's, so a resumed retraining
    is unchanged."""

    name = METHOD_NAME
    slots = {"video": "video"}
    clusterings: dict = {}  # fixed pseudo-labels: nothing is clustered
    targets = {"video": []}  # the source run's clusterings, set from the inputs

    def __init__(self, cfg: PretrainConfig, inputs: dict):
        super().__init__(cfg)
        self.inputs = inputs

    def num_iterations(self) -> int:
        return 1

    def begin_iteration(self, ctx) -> dict:
        self.encoders["video"].load_state_dict(self.inputs["video"])
        position = {e.path: e.index for e in ctx.entries}
        rows = np.array([position.get(p, -1) for p in self.inputs["paths"]])
        found = rows >= 0
        for name, labels in self.inputs["labels"].items():
            routed = np.full(len(ctx.entries), -1, dtype=np.int64)
            routed[rows[found]] = labels.numpy()[found]
            self.pseudo_labels[name] = torch.from_numpy(routed)
        self.targets = {"video": list(self.inputs["labels"])}
        self.reset_heads(ctx.iteration)
        return {}

    def get_extra_state(self):
        return {**super().get_extra_state(), "targets": list(self.targets["video"])}

    def set_extra_state(self, state):
        super().set_extra_state(state)
        self.targets = {"video": list(state["targets"])}
