"""Long-clip retraining (XDC Sec. 6): a deep-clustering run's video encoder, trained on that run's
last clustering assignment again, now with longer clips (32 frames instead of 8).

Not a pretext method of its own: ``avssl retrain-long`` (``avssl.longclip``) starts it. It writes
the inputs into the new run directory (``INPUTS``: the run's final video-encoder weights and, per
clustering that supervised the video encoder, the pseudo-label of every video by path), and this
method reads them at the start of its single iteration instead of extracting and clustering. The
pseudo-labels are matched by path, so a video the longer clips cannot use is simply left out;
they travel in checkpoints like every deep-clustering method's, so a resumed retraining is
unchanged.
"""
from __future__ import annotations

import numpy as np
import torch

from ..io import load_checkpoint
from ..errors import ConfigError
from .deep_clustering import DeepClusteringMethod

INPUTS = "longclip_inputs.pt"


class LongClipRetraining(DeepClusteringMethod):
    name = "longclip"
    slots = {"video": "video"}
    clusterings: dict = {}  # fixed pseudo-labels: nothing is clustered
    targets = {"video": []}  # the source run's clusterings, set from the inputs

    def num_iterations(self) -> int:
        return 1

    def begin_iteration(self, ctx) -> dict:
        path = ctx.trainer.run_dir / INPUTS
        if not path.exists():
            raise ConfigError(f"{path} is missing: the longclip method retrains a deep-clustering run's video "
                              f"encoder on its last pseudo-labels; start it with 'avssl retrain-long --run RUN'")
        inputs = load_checkpoint(path)
        self.encoders["video"].load_state_dict(inputs["video"])
        position = {e.path: e.index for e in ctx.trainer.entries}
        rows = np.array([position.get(p, -1) for p in inputs["paths"]])
        found = rows >= 0
        for name, labels in inputs["labels"].items():
            routed = np.full(len(ctx.trainer.entries), -1, dtype=np.int64)
            routed[rows[found]] = labels.numpy()[found]
            self.pseudo_labels[name] = torch.from_numpy(routed)
        self.targets = {"video": list(inputs["labels"])}
        self.reset_heads(ctx.iteration)
        return {}

    def get_extra_state(self):
        return {**super().get_extra_state(), "targets": list(self.targets["video"])}

    def set_extra_state(self, state):
        super().set_extra_state(state)
        self.targets = {"video": list(state["targets"])}
