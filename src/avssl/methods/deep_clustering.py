"""Deep clustering (DeepCluster and its multi-modal variants of the XDC paper) as one class.

SDC, MDC, CDC, XDC and same-modality XDC differ only in two tables:
- ``clusterings``: which k-means runs there are, each over the features of one or more slots
  (several slots are concatenated after separate L2 normalisation, as CDC does);
- ``targets``: which clusterings each slot's classification heads predict.
Everything else (extraction, k-means, head reset, cross-entropy on pseudo-labels) is shared here.
A subclass may take its label tables from elsewhere (``iteration_labels``, with ``head_size``):
supervised pretraining trains the same heads on the manifest's labels.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import PretextMethod


class DeepClusteringMethod(PretextMethod):
    clusterings: dict[str, list[str]] = {}
    targets: dict[str, list[str]] = {}

    def __init__(self, cfg):
        super().__init__(cfg)
        self.heads = nn.ModuleDict()
        self.pseudo_labels: dict[str, torch.Tensor] = {}

    @staticmethod
    def head_key(slot: str, clustering: str) -> str:
        return f"{slot}__{clustering}"

    def begin_iteration(self, ctx) -> dict:
        """Make this iteration's label tables, route them to the heads, and reset the heads."""
        self.pseudo_labels.update(self.iteration_labels(ctx))
        self.reset_heads(ctx.iteration)
        return {}

    def iteration_labels(self, ctx) -> dict[str, torch.Tensor]:
        """{name: per-video label ids (-1: none)} for the iteration: extract features of every slot
        that is clustered and run each clustering's k-means on them."""
        needed = sorted({s for slots in self.clusterings.values() for s in slots})
        feats = ctx.features({s: self.slots[s] for s in needed})
        out = {}
        for name, slots in self.clusterings.items():
            x, valid = _joint_features([feats[s] for s in slots])
            k = self.cfg.clustering.k_for(name)
            labels = ctx.cluster(name, x, valid, k, previous=self.pseudo_labels.get(name))
            out[name] = torch.from_numpy(labels.astype(np.int64))
        return out

    def head_size(self, name: str) -> int:
        """Outputs of the heads that predict label table ``name``: its k."""
        return self.cfg.clustering.k_for(name)

    def reset_heads(self, iteration: int) -> None:
        """New classification heads for the new pseudo-label taxonomy; the encoders are kept."""
        gen = torch.Generator().manual_seed(self.cfg.seed * 100003 + iteration)
        device = next(self.encoders.parameters()).device
        self.heads = nn.ModuleDict()
        for slot, names in self.targets.items():
            for name in names:
                head = nn.Linear(self.encoders[slot].out_dim, self.head_size(name))
                with torch.no_grad():  # DeepCluster's fc initialisation
                    head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.01)
                    head.bias.zero_()
                self.heads[self.head_key(slot, name)] = head.to(device)

    def loss(self, batch: dict):
        total, logs = 0.0, {}
        index = batch["index"]
        for slot, names in self.targets.items():
            feat = self.encode(slot, batch)
            for name in names:
                target = self.pseudo_labels[name][index].to(feat.device)
                logits = self.heads[self.head_key(slot, name)](feat)
                loss = F.cross_entropy(logits.float(), target, ignore_index=-1)
                total = total + loss
                ok = target >= 0
                acc = (logits.argmax(1)[ok] == target[ok]).float().mean() if ok.any() else torch.tensor(0.0)
                logs[f"loss_{slot}_from_{name}"] = float(loss.detach())
                logs[f"acc_{slot}_from_{name}"] = float(acc)
        return total, logs

    def sample_weights(self):
        """DeepCluster's remedy against trivial solutions: sample videos uniformly over clusters."""
        if not self.cfg.clustering.balanced_sampling or not self.pseudo_labels:
            return None
        labels = next(iter(self.pseudo_labels.values())).numpy()
        sizes = np.bincount(labels[labels >= 0])
        w = np.zeros(len(labels))
        w[labels >= 0] = 1.0 / sizes[labels[labels >= 0]]
        return w

    # Checkpoints: the pseudo-labels travel with the weights, and heads are rebuilt at the saved size.
    def get_extra_state(self):
        return {"pseudo_labels": dict(self.pseudo_labels)}

    def set_extra_state(self, state):
        self.pseudo_labels = dict(state["pseudo_labels"])

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.heads = nn.ModuleDict()
        for key, w in state_dict.items():
            if key.startswith("heads.") and key.endswith(".weight"):
                self.heads[key[len("heads."):-len(".weight")]] = nn.Linear(w.shape[1], w.shape[0])
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def _joint_features(arrays: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One slot: its features as they are. Several: L2-normalise each, then concatenate (CDC)."""
    if len(arrays) == 1:
        return arrays[0]
    valid = np.logical_and.reduce([v for _, v in arrays])
    parts = [x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x, _ in arrays]
    return np.concatenate(parts, axis=1).astype(np.float32), valid
