"""Checks that a run's weights are still sane, so a run never ends "successfully" with broken ones.

A finite loss is not enough: with a wrong bf16 gradient, 8 of 13 short runs finished with weights up
to 8.5e35 and ``running_var=inf`` while every loss they printed was finite. ``weight_problems`` looks
at every floating-point parameter and buffer (BatchNorm statistics included).

Usage: ``problems = weight_problems(model)`` -> ``[]`` or ``["encoders.video.stem.1.running_var is inf", ...]``
"""
from __future__ import annotations

import torch
from torch import nn

# Far above anything a trained network holds (weight decay keeps weights near 1; activations entering a
# BatchNorm may grow with the weights before it, so its running variance is held to this limit squared),
# far below what an exploded run reaches.
WEIGHT_LIMIT = 1e6


def weight_problems(model: nn.Module, limit: float = WEIGHT_LIMIT, most: int = 5) -> list[str]:
    """The parameters and buffers of ``model`` that are not finite or exceed ``limit`` in magnitude
    (at most ``most`` of them, the first found)."""
    problems = []
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if not t.is_floating_point() or t.numel() == 0:
                continue
            if not bool(torch.isfinite(t).all()):
                bad = t[~torch.isfinite(t)].flatten()[0].item()
                problems.append(f"{name} holds {bad}")
            else:
                peak = float(t.abs().max())
                # a variance is a squared scale: BatchNorm makes the scale before it free to grow
                scale = peak ** 0.5 if name.endswith("running_var") else peak
                if scale > limit:
                    problems.append(f"{name} reaches {peak:.3g}")
            if len(problems) >= most:
                break
    return problems
