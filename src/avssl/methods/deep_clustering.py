"""Deep clustering (DeepCluster and its multi-modal variants of the XDC paper) as one class.

SDC, MDC, CDC, XDC and same-modality XDC differ only in two tables:
- ``clusterings``: which k-means runs there are, each over the features of one or more slots
  (several slots are concatenated after separate L2 normalisation, as CDC does);
- ``targets``: which clusterings each slot's classification heads predict.
Everything else (extraction, k-means, head reset, cross-entropy on pseudo-labels) is shared here.
A subclass may take its label tables from elsewhere (``iteration_labels``, with ``head_size``):
supervised pretraining trains the same heads on the manifest's labels.

``independent_slots`` (SDC) makes each slot a DeepCluster of its own inside the one run: it stops
early on its own validation loss (``stopping_groups``), and once stopped its encoder and heads are
frozen (``set_stopped``) while the other slot trains on.

DeepCluster's balanced sampling (``clustering.balanced_sampling``): when every head predicts the
same label table (CDC), videos are sampled uniformly over its clusters (``sample_weights``). When
heads predict different tables (SDC, MDC, XDC), one shared batch cannot be sampled uniformly over
two clusterings at once; batches are then drawn uniformly over videos and each head's per-video loss
is weighted by ``n / (K * |cluster|)`` of the table it predicts (``balance_weights``: n labelled
videos, K non-empty clusters). That is importance weighting: the expected weighted loss equals the
loss under sampling uniform over that table's clusters, each cluster carrying the same total weight,
at the price of noisier steps when clusters are very unequal. Validation losses are not weighted,
as they are not resampled when the sampler balances.

``clustering.recluster=epoch`` (DeepCluster-v2's way, off by default): the first iteration extracts and
clusters as usual; from then on every slot that is clustered keeps a per-video memory of the features
its training and validation steps computed (``feature_memory.FeatureMemory``), k-means runs on that
memory at the end of every epoch an epoch of the same iteration follows, and at the start of every later
iteration instead of an extraction pass. Each new clustering replaces its label table (training and
validation videos alike) and sets the weights of the heads that predict it to the cluster means of the
head's own slot's memory (``centroid_weights``; for XDC's video head, the mean video feature of each
audio cluster). A slot stopped early (SDC) keeps its clusters.

``optim.last_iteration_epochs`` gives the last deep-clustering iteration its own warm-up, step and
total epochs (XDC Table 10's IG-Kinetics*: 0/9/30 after 1/3/10).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import seeds
from .base import PretextMethod
from .feature_memory import FeatureMemory, centroid_weights


def reclusters(method: type[PretextMethod]) -> bool:
    """Whether ``method`` honours ``clustering.recluster=epoch``: it predicts k-means tables (deep
    clustering; supervised pretraining's labels come from the manifest)."""
    return issubclass(method, DeepClusteringMethod) and bool(method.clusterings)


def recluster_problems(cfg, method: type[PretextMethod], methods: Mapping[str, type[PretextMethod]]) -> list[str]:
    """``clustering.recluster=epoch`` asked of a ``method`` that has nothing to re-cluster, which would
    ignore it: refused for every method, naming those of ``methods`` that honour it. Not a method's own
    section, so ``methods.validate`` asks this of every method besides its ``config_problems``."""
    if cfg.clustering.recluster != "epoch" or reclusters(method):
        return []
    names = ", ".join(sorted(name for name, m in methods.items() if reclusters(m)))
    return [f"clustering.recluster=epoch re-clusters a memory of the features that predict cluster tables; "
            f"{cfg.method} has no such tables (methods: {names})"]


class DeepClusteringMethod(PretextMethod):
    clusterings: dict[str, list[str]] = {}
    targets: dict[str, list[str]] = {}
    # True: every slot is a DeepCluster of its own (own early stop, frozen once stopped): SDC.
    independent_slots: bool = False

    def __init__(self, cfg):
        super().__init__(cfg)
        self.heads = nn.ModuleDict()
        self.pseudo_labels: dict[str, torch.Tensor] = {}
        self.stopped: set[str] = set()  # slots frozen after their early stop (independent_slots)
        self._balance: dict[str, tuple] = {}  # label table name -> (table, its per-video loss weights)
        # clustering.recluster=epoch: the per-video features k-means re-clusters (None: the papers' way)
        self.memory = FeatureMemory(cfg.clustering.l2_normalize) if self._reclusters_epochs() else None

    def _reclusters_epochs(self) -> bool:
        return self.cfg.clustering.recluster == "epoch" and reclusters(type(self))

    def _clustered_slots(self) -> list[str]:
        return sorted({s for slots in self.clusterings.values() for s in slots})

    def _last_iteration_epochs(self, iteration: int):
        """[we, se, te] when ``iteration`` is the last deep-clustering iteration and
        ``optim.last_iteration_epochs`` sets one (methods that cluster nothing keep their schedule)."""
        last = self.cfg.optim.last_iteration_epochs
        if last is None or not self.clusterings or iteration != self.num_iterations() - 1:
            return None
        return last

    def max_epochs(self, iteration: int) -> int:
        last = self._last_iteration_epochs(iteration)
        return self.cfg.optim.max_epochs if last is None else int(last[2])

    def iteration_schedule(self, iteration: int):
        o, offset = super().iteration_schedule(iteration)
        last = self._last_iteration_epochs(iteration)
        if last is not None:  # e.g. Table 10's IG-Kinetics*: we/se/te 0/9/30 in the last iteration
            o = replace(o, warmup_epochs=int(last[0]), step_epochs=int(last[1]), max_epochs=int(last[2]))
        return o, offset

    def stopping_groups(self):
        if not self.independent_slots:
            return None
        return {slot: [f"loss_{slot}_from_{name}" for name in names] for slot, names in self.targets.items()}

    def set_stopped(self, groups) -> None:
        """Freeze each stopped slot: no gradients for its encoder and heads (the optimiser skips them),
        its BatchNorm statistics kept as they are (neither training nor precise BN updates them), and
        its forward pass skipped in training. Unfreezes the other slots."""
        self.stopped = set(groups)
        for slot in self.targets:
            frozen = slot in self.stopped
            parts = [self.encoders[slot]] + [self.heads[self.head_key(slot, n)] for n in self.targets[slot]
                                             if self.head_key(slot, n) in self.heads]
            for part in parts:
                for p in part.parameters():
                    p.requires_grad_(not frozen)
                for m in part.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.track_running_stats = not frozen

    @staticmethod
    def head_key(slot: str, clustering: str) -> str:
        return f"{slot}__{clustering}"

    def begin_iteration(self, ctx) -> dict:
        """Make this iteration's label tables, route them to the heads, and reset the heads."""
        self.pseudo_labels.update(self.iteration_labels(ctx))
        self.reset_heads(ctx.iteration)
        if self.memory is not None:
            self._heads_from_memory(list(self.clusterings))
        return {}

    def iteration_labels(self, ctx) -> dict[str, torch.Tensor]:
        """{name: per-video label ids (-1: none)} for the iteration: extract features of every slot
        that is clustered (or, with recluster=epoch after the first iteration, take them from the
        memory) and run each clustering's k-means on them."""
        needed = self._clustered_slots()
        if self.memory is not None and self.memory.ready(needed, len(ctx.entries)):
            feats = {s: self.memory.rows(s) for s in needed}
        else:
            feats = ctx.features({s: self.slots[s] for s in needed})
            if self.memory is not None:
                self._start_memory(ctx, feats)
        out = {}
        for name, slots in self.clusterings.items():
            x, valid = _joint_features([feats[s] for s in slots])
            k = self.cfg.clustering.k_for(name)
            labels = ctx.cluster(name, x, valid, k, previous=self.pseudo_labels.get(name))
            out[name] = torch.from_numpy(labels.astype(np.int64))
        return out

    def _start_memory(self, ctx, feats) -> None:
        """The memory starts from the extracted features (hand-crafted ones have another size: empty rows)."""
        if ctx.iteration == 0 and self.cfg.clustering.init == "handcrafted":
            self.memory.clear()
            for s in feats:
                self.memory.allocate(s, len(ctx.entries), self.encoders[s].out_dim)
        else:
            self.memory.reset(feats)

    def _heads_from_memory(self, names: list[str]) -> list[nn.Parameter]:
        """Set the heads that predict the tables ``names`` to the cluster means of their slot's memory
        (bias 0); heads of a slot without memory rows keep their weights. Returns the parameters set."""
        renewed = []
        for slot, targets in self.targets.items():
            if slot not in self.memory.features:
                continue
            x, valid = self.memory.rows(slot)
            if not valid.any():
                continue
            for name in targets:
                if name not in names:
                    continue
                head = self.heads[self.head_key(slot, name)]
                w = centroid_weights(x, valid, self.pseudo_labels[name].numpy(), head.out_features)
                with torch.no_grad():
                    head.weight.copy_(w.to(head.weight.device))
                    head.bias.zero_()
                renewed += [head.weight, head.bias]
        return renewed

    def end_epoch(self, ctx, epoch: int, another: bool) -> dict:
        """recluster=epoch: fold the epoch's features into the memory; when another epoch follows,
        k-means on it (each clustering none of whose slots stopped early), new label tables, heads at the
        new centroids. Returns the statistics of each re-clustering for the epoch's metrics line."""
        if self.memory is None:
            return {}
        self.memory.finish_epoch()
        if not another:  # the next iteration clusters the memory at its start
            return {}
        names = [n for n, slots in self.clusterings.items() if not set(slots) & self.stopped]
        stats = {}
        for name in names:
            x, valid = _joint_features([self.memory.rows(s) for s in self.clusterings[name]])
            labels, stats[name] = ctx.recluster(name, x, valid, self.cfg.clustering.k_for(name), epoch,
                                                previous=self.pseudo_labels.get(name))
            self.pseudo_labels[name] = torch.from_numpy(labels.astype(np.int64))
        ctx.renew(self._heads_from_memory(names))
        out = {"recluster": stats}  # nested: curves.png skips it; the NMI with the last labels is drawn
        out.update({f"recluster_nmi_{n}": s["nmi_previous"] for n, s in stats.items() if "nmi_previous" in s})
        return out

    def head_size(self, name: str) -> int:
        """Outputs of the heads that predict label table ``name``: its k."""
        return self.cfg.clustering.k_for(name)

    def reset_heads(self, iteration: int) -> None:
        """New classification heads for the new pseudo-label taxonomy; the encoders are kept."""
        gen = torch.Generator().manual_seed(seeds.head_seed(self.cfg.seed, iteration))
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
        weighted = self.training and self._loss_balanced()
        for slot, names in self.targets.items():
            if self.training and slot in self.stopped:  # frozen after its own early stop
                continue
            feat = self.encode(slot, batch)
            if self.collecting and self.memory is not None:
                self.memory.add(slot, index, feat)
            for name in names:
                target = self.pseudo_labels[name][index].to(feat.device)
                logits = self.heads[self.head_key(slot, name)](feat)
                ok = target >= 0
                if weighted:  # balanced over this head's own clusters (see the module docstring)
                    w = self.balance_weights(name)[index].to(feat.device)
                    per_item = F.cross_entropy(logits.float(), target, ignore_index=-1, reduction="none")
                    loss = (w * per_item).sum() / ok.sum().clamp(min=1)
                else:
                    loss = F.cross_entropy(logits.float(), target, ignore_index=-1)
                total = total + loss
                acc = (logits.argmax(1)[ok] == target[ok]).float().mean() if ok.any() else torch.tensor(0.0)
                logs[f"loss_{slot}_from_{name}"] = float(loss.detach())
                logs[f"acc_{slot}_from_{name}"] = float(acc)
        return total, logs

    def _target_tables(self) -> list[str]:
        return sorted({name for names in self.targets.values() for name in names})

    def _loss_balanced(self) -> bool:
        """Balanced sampling by loss weights: asked for, and the heads predict more than one table."""
        return self.cfg.clustering.balanced_sampling and len(self._target_tables()) > 1

    def sample_weights(self):
        """DeepCluster's remedy against trivial solutions: sample videos uniformly over the clusters of
        the one label table every head predicts. With several tables: None (uniform sampling), and the
        loss weights each head by its own table instead (``balance_weights``)."""
        if not self.cfg.clustering.balanced_sampling or not self.pseudo_labels or self._loss_balanced():
            return None
        tables = [n for n in self._target_tables() if n in self.pseudo_labels]
        labels = self.pseudo_labels[tables[0] if tables else next(iter(self.pseudo_labels))].numpy()
        sizes = np.bincount(labels[labels >= 0])
        w = np.zeros(len(labels))
        w[labels >= 0] = 1.0 / sizes[labels[labels >= 0]]
        return w

    def balance_weights(self, name: str) -> torch.Tensor:
        """Per-video loss weights that balance label table ``name`` over its clusters: ``n / (K * |c|)``
        for a video of cluster c (n labelled videos, K non-empty clusters), 0 for unlabelled ones. Under
        uniform sampling the expected weight is 1 and every cluster carries the same total weight."""
        labels = self.pseudo_labels[name]
        cached = self._balance.get(name)
        if cached is None or cached[0] is not labels:
            y = labels.numpy()
            ok = y >= 0
            sizes = np.bincount(y[ok])
            w = np.zeros(len(y), dtype=np.float32)
            if ok.any():
                w[ok] = ok.sum() / (np.count_nonzero(sizes) * sizes[y[ok]])
            cached = self._balance[name] = (labels, torch.from_numpy(w))
        return cached[1]

    # Checkpoints: the pseudo-labels travel with the weights, and heads are rebuilt at the saved size.
    def get_extra_state(self):
        state = {"pseudo_labels": dict(self.pseudo_labels)}
        if self.memory is not None:
            state["memory"] = self.memory.state()
        return state

    def set_extra_state(self, state):
        self.pseudo_labels = dict(state["pseudo_labels"])
        if self.memory is not None:
            self.memory.load(state.get("memory", {}))

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
