"""CrissCross (Sarkar and Etemad): intra-modal, synchronous and asynchronous cross-modal learning
with relaxed audio-visual synchronicity, built on SimSiam.

Each modality has an encoder, a projector (Table S7) and a predictor (Table S8). An item holds two
audio-visual views of one video whose distance in time is ``crisscross.relaxation``
(``data.views.RelaxedViews``); the loss is Eq. 5 or the Table 1 variant named by
``crisscross.losses`` (``losses.crisscross_loss``). The predictors learn at a constant rate of
``crisscross.predictor_lr_scale`` x ``optim.lr`` while the rest follows the schedule (Sec. 4.4).

One iteration of ``optim.max_epochs``: there is nothing to redo between iterations, and one cosine
cycle over the whole run is the paper's schedule. Only the encoders are exported as encoders; the
projectors and predictors travel as heads, for ``avssl eval sync``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.pipeline import clip_spec
from ..data.views import RELAXATIONS, RelaxedViews
from ..losses.crisscross_loss import TERMS, Branch, crisscross_loss, negative_cosine
from ..models.common_predictor import CommonPredictor
from ..models.heads import predictor, projector
from .base import PretextMethod, failed_checks

_VIDEO_TERMS = {"v1v2", "intra", "sync", "async"}
_AUDIO_TERMS = {"a1a2", "intra", "sync", "async"}


class CrissCross(PretextMethod):
    name = "crisscross"
    slots = {"video": "video", "audio": "audio"}
    supports_sync = True
    min_batch_size = 2

    def __init__(self, cfg):
        super().__init__(cfg)
        x = cfg.crisscross
        width = max(e.out_dim for e in self.encoders.values())
        dims = x.projector_dims or [4 * width] * 3  # 512 -> 2048 x 3 at full width, as Table S7
        hidden = x.predictor_hidden or width  # 2048 -> 512 -> 2048 at full width, as Table S8
        self.projectors = nn.ModuleDict({m: projector(self.encoders[m].out_dim, dims) for m in self.slots})
        # Table 3's "comm. pred.": one predictor for both modalities (models.common_predictor)
        self.predictors = (CommonPredictor(self.slots, dims[-1], hidden) if x.common_predictor
                           else nn.ModuleDict({m: predictor(dims[-1], hidden) for m in self.slots}))
        self.terms = x.terms()
        self.needs = {"video": bool(_VIDEO_TERMS & set(self.terms)), "audio": bool(_AUDIO_TERMS & set(self.terms))}

    @classmethod
    def config_problems(cls, cfg) -> list[str]:
        x = cfg.crisscross
        terms, known = x.terms(), tuple(TERMS)  # known: the terms the loss implements (RELAXATIONS: the views')
        return failed_checks(
            (x.relaxation in RELAXATIONS, f"crisscross.relaxation must be one of {RELAXATIONS}, got {x.relaxation!r}"),
            (bool(terms) and set(terms) <= set(known) and len(set(terms)) == len(terms),
             f"crisscross.losses must join distinct terms of {known} with '+', got {x.losses!r}"),
            (x.projector_dims is None or (isinstance(x.projector_dims, list) and len(x.projector_dims) >= 1
                                          and all(isinstance(d, int) and d >= 1 for d in x.projector_dims)),
             f"crisscross.projector_dims must be null or a list of layer sizes, got {x.projector_dims}"),
            (x.predictor_hidden is None or x.predictor_hidden >= 1,
             f"crisscross.predictor_hidden must be null or >= 1, got {x.predictor_hidden}"),
            (x.predictor_lr_scale > 0, f"crisscross.predictor_lr_scale must be > 0, got {x.predictor_lr_scale}"),
        )

    def num_iterations(self) -> int:
        return 1

    def view_plan(self, iteration: int) -> RelaxedViews:
        spec = clip_spec(self.cfg)
        return RelaxedViews(spec.video_span, spec.audio_duration, self.cfg.crisscross.relaxation)

    def trainable_groups(self) -> list[dict]:
        rest = [p for name, p in self.named_parameters() if not name.startswith("predictors.")]
        fixed = self.cfg.optim.lr * self.cfg.crisscross.predictor_lr_scale
        return [{"params": rest}, {"params": list(self.predictors.parameters()), "fixed_lr": fixed}]

    def _branch(self, modality: str, x: torch.Tensor) -> Branch:
        z = self.sync_embed(modality, x)
        return Branch(z, self.predictors[modality](z))

    def loss(self, batch: dict):
        # Each view goes through the networks on its own, as in SimSiam: BatchNorm statistics per view.
        b = {f"{m}_{v}": self._branch(m, batch[f"{m}_{v}"]) if self.needs[m] else None
             for m in self.slots for v in (1, 2)}
        loss, parts = crisscross_loss(b["video_1"], b["video_2"], b["audio_1"], b["audio_2"], self.terms)
        logs = {f"loss_{t}": float(v.detach()) for t, v in parts.items()}
        for m in self.slots:
            # SimSiam's collapse monitor: ~1/sqrt(dim) when healthy, 0 when collapsed (a spread over the batch:
            # none for a single clip, e.g. a last validation batch of one)
            if self.needs[m] and len(b[f"{m}_1"].z) > 1:
                logs[f"z_std_{m}"] = float(F.normalize(b[f"{m}_1"].z.detach(), dim=1).std(dim=0).mean())
        return loss, logs

    def sync_embed(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        return self.projectors[modality](self.encoders[modality](x))

    def sync_distance(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """The per-pair L_sync of Eq. 3: each modality's prediction against the other's embedding."""
        return (negative_cosine(self.predictors["video"](video), audio)
                + negative_cosine(self.predictors["audio"](audio), video)) / 2

    def sync_query(self, modality: str, embedding: torch.Tensor) -> torch.Tensor:
        """L_sync matches a modality's prediction to the other's embedding: queries go through the predictor."""
        return self.predictors[modality](embedding)
