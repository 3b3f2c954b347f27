"""The one base every pretext method builds on.

A method owns its encoders (named slots, each reading one modality) and whatever else it trains
(heads, projectors); it says what it needs at the start of an iteration (``begin_iteration``) and
what its loss is on a batch (``loss``). Everything else (data, optimisation, schedules, checkpoints,
logging, distribution) is the engine's, so methods differ only where they really differ.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ..config import OptimConfig, PretrainConfig
from ..models import build_modality_encoder


def failed_checks(*checks: tuple[bool, str]) -> list[str]:
    """The messages of the ``(ok, message)`` checks that fail: what ``config_problems`` returns."""
    return [message for ok, message in checks if not ok]


class PretextMethod(nn.Module):
    """Base of all pretext methods. Subclasses set ``name`` and ``slots`` ({slot: modality})."""

    name: str = ""
    slots: dict[str, str] = {}
    # True for methods that score how well a video clip and an audio clip go together
    # (``sync_embed``/``sync_distance``), which ``avssl eval sync`` measures.
    supports_sync: bool = False
    # Training batches with fewer items are skipped: heads that normalise over the batch (BatchNorm
    # on a (B, D) feature) cannot train on a single item.
    min_batch_size: int = 1
    # True: one optimiser for the whole run, whose state (momentum, Adam's moments) carries over from
    # one iteration to the next (AVTS's curriculum stages); False: every iteration builds a new one
    # (a deep-clustering iteration starts with new heads and a new taxonomy).
    continues_optimizer: bool = False
    # Set by the engine while a training epoch or the validation pass runs (not during precise BN): a
    # method may then keep the features its loss computes (deep clustering's clustering.recluster=epoch).
    collecting: bool = False

    def __init__(self, cfg: PretrainConfig):
        super().__init__()
        self.cfg = cfg
        self.encoders = nn.ModuleDict({s: build_modality_encoder(cfg, m) for s, m in self.slots.items()})

    @classmethod
    def config_problems(cls, cfg: PretrainConfig) -> list[str]:
        """What is wrong in ``cfg`` for this method, beyond ``config.validate``'s general checks: its own
        section (``avts.*``, ``crisscross.*``), one message per problem. ``methods.validate`` names them
        in the same ConfigError as the general problems, before any work; every method is asked, whichever
        trains, so a saved config.json holds no impossible value (each section's defaults pass). ``cfg`` may hold any value of the right type, also ones the general checks refuse. None by default."""
        return []

    @property
    def modalities(self) -> tuple[str, ...]:
        """Input modalities the method reads, in canonical order."""
        return tuple(m for m in ("video", "audio") if m in self.slots.values())

    def encode(self, slot: str, batch: dict) -> torch.Tensor:
        return self.encoders[slot](batch[self.slots[slot]])

    def num_iterations(self) -> int:
        """Iterations of the run (deep clustering: ``cfg.iterations``; a curriculum: its stages)."""
        return self.cfg.iterations

    def check_data(self, entries, manifest) -> None:
        """Refuse, with a ConfigError, data the method cannot train on (``entries``: the usable videos,
        each with its ``label`` id, -1 where unlabelled). Called before any work; nothing by default."""

    def view_plan(self, iteration: int):
        """The windows a training item holds in ``iteration`` (``data.views``), or None for one clip
        per item with both modalities at the same time. Used for training and validation alike."""
        return None

    def begin_iteration(self, ctx) -> dict:
        """Prepare an iteration (deep clustering: extract, cluster, route labels). Returns log data."""
        return {}

    def end_epoch(self, ctx, epoch: int, another: bool) -> dict:
        """Called after every epoch's validation; ``another``: an epoch of this iteration follows. Returns
        numbers for the epoch's line of metrics.jsonl (deep clustering's recluster=epoch re-clusters here)."""
        return {}

    def forward(self, batch: dict):
        """``loss`` under another name, so DistributedDataParallel can wrap a method."""
        return self.loss(batch)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """The training loss of a batch and a dict of numbers worth logging."""
        raise NotImplementedError

    def max_epochs(self, iteration: int) -> int:
        """Epochs of training in ``iteration`` (a curriculum may give its stages different lengths)."""
        return self.cfg.optim.max_epochs

    def iteration_schedule(self, iteration: int) -> tuple[OptimConfig, int]:
        """The learning-rate schedule of ``iteration`` and the epoch of that schedule the iteration's
        first epoch is: by default ``optim`` stretched over the iteration's own epochs, from 0 (every
        iteration starts its schedule afresh)."""
        return replace(self.cfg.optim, max_epochs=self.max_epochs(iteration)), 0

    def stopping_groups(self) -> dict[str, list[str]] | None:
        """Parts of the method that stop early on their own, each on its own validation losses:
        ``{group: [keys of loss's logs]}`` (SDC: ``{"video": [...], "audio": [...]}``). A group that
        stopped is frozen (``set_stopped``) while the others train on; the iteration ends when all have
        stopped. None (the default): one early stop on the total validation loss."""
        return None

    def set_stopped(self, groups) -> None:
        """Freeze the parts of the ``groups`` that stopped early and unfreeze the others (only called
        for methods with ``stopping_groups``)."""

    def sample_weights(self):
        """Per-video sampling weights for the training sampler, or None for uniform sampling."""
        return None

    def trainable_groups(self) -> list[dict]:
        """Parameter groups for the optimiser (a method may give some parts their own learning rate)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def encoder_states(self) -> dict[str, dict]:
        """The encoders' weights by slot: what a run hands to evaluation."""
        return {s: e.state_dict() for s, e in self.encoders.items()}

    def head_states(self) -> dict:
        """Weights beyond the encoders that evaluation needs: the heads of ``sync_embed`` (else none)."""
        if not self.supports_sync:
            return {}
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoders.")}

    def sync_embed(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """Embedding of a batch of ``modality`` clips for ``sync_distance``."""
        raise NotImplementedError(f"{self.name} does not score audio-video synchrony")

    def sync_distance(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """(N,) distance of row n's video and audio embeddings: small when they seem to belong together."""
        raise NotImplementedError(f"{self.name} does not score audio-video synchrony")

    def sync_query(self, modality: str, embedding: torch.Tensor) -> torch.Tensor:
        """What a ``modality`` embedding is compared with when it looks for the other modality's
        embeddings (cross-modal retrieval): the embedding itself, unless the method's loss matches
        something else (CrissCross: its predictor's output)."""
        return embedding
