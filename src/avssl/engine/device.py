"""The torch device a config's ``device`` names (``auto``: a CUDA GPU when there is one, else the CPU).

    device = pick_device(cfg.device)
"""
from __future__ import annotations

import torch


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
