"""CrissCross's common-predictor variant (Sec. 4.4, Table 3): one predictor head for both modalities.

"l2-normalized feature vectors f_v(v) and f_a(a) are fed to the predictor, which are then used in a
usual manner to optimize the cost function": the two modalities' projections are L2-normalised (their
scales differ) and go through one shared predictor. :class:`CommonPredictor` stands where the default
``ModuleDict`` of one predictor per modality stands: ``predictors["video"](z)`` and
``predictors["audio"](z)`` both run the shared head on ``z / ||z||``.

    avssl pretrain --method crisscross --set crisscross.common_predictor=true ...
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .heads import predictor


class CommonPredictor(nn.Module):
    """One predictor (Table S8's shape) shared by ``modalities``, fed L2-normalised projections."""

    def __init__(self, modalities, dim: int, hidden: int):
        super().__init__()
        self.modalities = tuple(modalities)
        self.shared = predictor(dim, hidden)

    def __getitem__(self, modality: str):
        if modality not in self.modalities:
            raise KeyError(modality)
        return self._predict

    def _predict(self, z: torch.Tensor) -> torch.Tensor:
        return self.shared(F.normalize(z, dim=1))
