"""AVTS, audio-visual temporal synchronisation (Korbar, Tran and Torresani, NeurIPS 2018).

A video and an audio encoder, each followed by an embedding head (``models.heads.embedding``: linear,
standardised over the batch, which keeps the encoders off the loss's trivial constant solution) and
scaled to unit length (so the margin has a fixed scale: unrelated embeddings lie about sqrt(2)
apart, and the default margin of 1.5 pushes out-of-sync pairs beyond that), learn to put the audio of a clip's own time close to its frames and out-of-sync audio at
least the margin away (``losses.avts_loss``).
Every item of a batch gives one in-sync pair and one out-of-sync pair, whose audio is
- easy: the audio of the next item of the batch, i.e. of another video (nothing more to decode);
- hard or super-hard: audio of the same video at another time (``data.views.SyncNegatives``).

The curriculum maps onto the engine's iterations: iteration 0 is stage 1 (easy negatives only),
iteration 1 stage 2 (``avts.hard_fraction`` hard and ``avts.superhard_fraction`` super-hard
negatives, the rest easy: the slides' best is 75% easy / 25% hard), each ``avts.stage_epochs`` long.
The slides count the curriculum's epochs through (stage 1 is epochs 1-50, stage 2 epochs 51-90) and
say nothing of a new optimiser at the switch, so one optimiser runs through both stages: its state
(momentum) carries over (``continues_optimizer``) and its learning-rate schedule spans the stages'
epochs added up, stage 2 starting where stage 1 ended (``iteration_schedule``).
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from ..data.pipeline import clip_spec
from ..data.views import SyncNegatives
from ..losses.avts_loss import avts_loss, negative_term, pair_distance, positive_term
from ..models.heads import embedding
from .base import PretextMethod, failed_checks


class AVTS(PretextMethod):
    name = "avts"
    slots = {"video": "video", "audio": "audio"}
    supports_sync = True
    min_batch_size = 2
    continues_optimizer = True  # one optimiser through the curriculum's stages (module docstring)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.heads = nn.ModuleDict({m: embedding(self.encoders[m].out_dim, cfg.avts.embed_dim) for m in self.slots})

    @classmethod
    def config_problems(cls, cfg) -> list[str]:
        t, v = cfg.avts, cfg.video
        stages = t.stage_epochs
        span = max(v.num_frames / v.fps if v.fps > 0 else 0.0, cfg.audio.duration)  # fps <= 0: a general problem
        return failed_checks(
            (t.margin > 0, f"avts.margin must be > 0, got {t.margin}"),
            (t.embed_dim >= 1, f"avts.embed_dim must be >= 1, got {t.embed_dim}"),
            (stages is None or (isinstance(stages, list) and len(stages) == 2
                                and all(isinstance(e, int) and e >= 0 for e in stages) and sum(stages) > 0),
             f"avts.stage_epochs must be null or two epoch counts >= 0 (not both 0), e.g. [50, 40]; got {stages}"),
            (0 <= t.hard_fraction <= 1 and 0 <= t.superhard_fraction <= 1
             and t.hard_fraction + t.superhard_fraction <= 1,
             f"avts.hard_fraction and avts.superhard_fraction must be in [0, 1] with a sum <= 1, "
             f"got {t.hard_fraction} and {t.superhard_fraction}"),
            (t.superhard_min_shift > 0 and (t.superhard_fraction == 0 or t.superhard_min_shift < span),
             f"avts.superhard_min_shift must be in (0, {span:g}) s (shorter than a clip, so shifted windows "
             f"still overlap), got {t.superhard_min_shift}"),
        )

    def num_iterations(self) -> int:
        return 2

    def max_epochs(self, iteration: int) -> int:
        stages = self.cfg.avts.stage_epochs
        return self.cfg.optim.max_epochs if stages is None else stages[iteration]

    def iteration_schedule(self, iteration: int):
        """One schedule over the whole curriculum: it spans the stages' epochs added up, and a stage
        starts at the epoch where the one before it ended."""
        lengths = [self.max_epochs(i) for i in range(self.num_iterations())]
        return replace(self.cfg.optim, max_epochs=sum(lengths)), sum(lengths[:iteration])

    def view_plan(self, iteration: int) -> SyncNegatives:
        a, spec = self.cfg.avts, clip_spec(self.cfg)
        stage2 = iteration >= 1
        return SyncNegatives(spec.video_span, spec.audio_duration, hard=a.hard_fraction if stage2 else 0.0,
                             superhard=a.superhard_fraction if stage2 else 0.0, min_shift=a.superhard_min_shift)

    def sync_embed(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.heads[modality](self.encoders[modality](x)), dim=1)

    def sync_distance(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return pair_distance(video, audio)

    def loss(self, batch: dict):
        ev = self.sync_embed("video", batch["video"])
        n, device = len(ev), ev.device
        kind = batch.get("negative", torch.zeros(n, dtype=torch.long)).to(device)
        own = kind != SyncNegatives.EASY  # negatives from the item's own video
        audio = batch["audio"]
        if own.any():  # one forward pass, so BatchNorm sees in-sync and negative audio together
            audio = torch.cat([audio, batch["audio_neg"][own]])
        ea = self.sync_embed("audio", audio)
        # The negative of item i: its own negative audio (rows n.. of ea), or item i+1's audio.
        nxt = torch.roll(torch.arange(n, device=device), -1)
        neg_row = torch.where(own, n + torch.cumsum(own.long(), 0) - 1, nxt)
        index = batch["index"].to(device)
        has_neg = own | (index != index[nxt])  # an easy negative must come from another video
        d_pos = pair_distance(ev, ea[:n])
        d_neg = pair_distance(ev[has_neg], ea[neg_row[has_neg]])
        in_sync = torch.cat([torch.ones_like(d_pos, dtype=torch.bool), torch.zeros_like(d_neg, dtype=torch.bool)])
        loss = avts_loss(torch.cat([d_pos, d_neg]), in_sync, self.cfg.avts.margin)
        logs = {
            "loss_in_sync": float(positive_term(d_pos).detach().mean()),
            "loss_out_of_sync": float(negative_term(d_neg.detach(), self.cfg.avts.margin).mean()) if len(d_neg) else 0.0,
            # Of the batch's negatives, the share of each kind (the curriculum made visible).
            "hard_fraction": float((kind == SyncNegatives.HARD).float().mean()),
            "superhard_fraction": float((kind == SyncNegatives.SUPERHARD).float().mean()),
            # How often an item's in-sync audio is nearer to its frames than its negative audio.
            "sync_ranking": float((d_pos[has_neg] < d_neg).float().mean()) if len(d_neg) else 0.0,
        }
        return loss, logs
