"""One training step, the one both training loops take (pretraining's epoch in ``epochs.py`` and
fine-tuning's in ``evaluation.finetune``): learning rate, forward, divergence check, backward,
gradient clipping, optimiser step.

    logs = train_step(loss_fn, batch, optimizer, lr, device=device, precision=precision,
                      diverged=lambda loss: TrainingDiverged(f"the loss became {loss} at step {step}"))
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from .precision import autocast
from .schedule import set_learning_rate


def train_step(loss_fn: Callable, batch, optimizer: torch.optim.Optimizer, lr: float, *, device: torch.device,
               precision: str, diverged: Callable[[float], Exception],
               clip_params: Iterable[torch.nn.Parameter] | None = None, clip_grad_norm: float | None = None) -> dict:
    """One optimiser step on ``batch`` at learning rate ``lr`` (``schedule.set_learning_rate``); returns
    the logs of ``loss_fn`` with ``loss`` added (and ``grad_norm`` when ``clip_params`` is given).

    ``loss_fn(batch)`` returns ``(loss, logs)`` and runs under ``autocast(device, precision)``. A
    non-finite loss raises ``diverged(loss)``, the caller's error naming where it happened, before any
    weight changes. ``clip_params``: the parameters whose gradients' global norm is logged as
    ``grad_norm`` and, when ``clip_grad_norm`` is set, clipped to it."""
    set_learning_rate(optimizer, lr)
    with autocast(device, precision):
        loss, logs = loss_fn(batch)
    if not torch.isfinite(loss):
        raise diverged(float(loss.detach()))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_params is not None:
        logs["grad_norm"] = clip_gradients(clip_params, clip_grad_norm)
    optimizer.step()
    logs["loss"] = float(loss.detach())
    return logs


def clip_gradients(parameters: Iterable[torch.nn.Parameter], max_norm: float | None) -> float:
    """The global L2 norm of the gradients of ``parameters`` before clipping (clipped to ``max_norm``
    when set; parameters without a gradient, e.g. frozen ones, are left out)."""
    params = [p for p in parameters if p.grad is not None]
    limit = max_norm if max_norm is not None else math.inf
    return float(torch.nn.utils.clip_grad_norm_(params, limit)) if params else 0.0
