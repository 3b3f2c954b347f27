"""BatchNorm statistics that match the weights ("precise BN", Wu and Johnson 2021).

During training, BatchNorm normalises with each batch's own statistics and keeps exponential moving
averages for eval mode. When the weights move fast (warm-up, high learning rates, few steps) those
averages lag behind, and the eval-mode network, the one that extracts features for k-means, computes
the validation loss and is exported for evaluation, is not the network that trained: on the demo
preset the pseudo-label validation loss read 50,443 while the training loss was 3. Recomputing the
statistics as a plain average over a few hundred training clips with frozen weights removes the lag.

Usage: ``recompute_bn_stats(model, lambda batch: model(batch), batches)``
"""
from __future__ import annotations

import torch
from torch import nn


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, forward, batches) -> int:
    """Replace the running statistics of ``model``'s BatchNorm layers by their average over
    ``forward(batch)`` for each of ``batches`` (train mode, no gradients). Returns the number of batches
    used; with none, nothing changes."""
    layers = batchnorms(model)
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    was_training = model.training
    used = 0
    try:
        model.train()
        for batch in batches:
            if used == 0:  # reset only once there is data, so an empty loader keeps the old statistics
                for m in layers:
                    m.reset_running_stats()
                    m.momentum = None  # cumulative average over the batches that follow
            forward(batch)
            used += 1
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.train(was_training)
    return used
