"""Every seed avssl derives from a run's (or an evaluation's) seed, in one place.

A random choice follows from (seed, what it is for, iteration, epoch, item) and nothing else, never
from hidden global state, so a resumed run repeats an uninterrupted one and a rerun repeats a run.
Each use has its own formula or stream number here; the values are those avssl has always used, so
results stay reproducible across versions.

    gen = torch.Generator().manual_seed(seeds.sampler_seed(cfg.seed, seeds.epoch_key(it, epoch)))
    rng = seeds.rng(seed, seeds.SPLIT)
"""
from __future__ import annotations

# numpy is imported by ``rng``: the config (which checks seed ranges) imports this module.

# Streams of ``rng``: one number per use, so that two uses of one seed never draw the same numbers.
DEMO_CLIP = 0  # one demo-world clip's nuisances and noise (keys: class, index)
DEMO_HELD_OUT = 1  # which demo-world clips of a class are held out (key: class)
SPLIT = 17  # the validation split carved from training videos (evaluation)
SYNC_SUBSET = 23  # the videos ``avssl eval sync`` scores
SYNC_SHIFTS = 29  # the shifted audio of its negatives
SWEEP_POOL = 31  # the order of a sweep's pretraining pool (nested --fractions subsets)
REPORT_SAMPLE = 71  # the points a cluster report draws
PRECISE_BN = 9173  # the clips precise BN recomputes the statistics on

_EPOCH_STRIDE = 10007  # more epochs than any iteration has: (iteration, epoch) -> one key
_EXTRACTION_OFFSET = 10_000_000  # above every epoch key


def epoch_key(iteration: int, epoch: int) -> int:
    """The key of a training epoch: it seeds the clip starts and augmentation of the epoch's items."""
    return iteration * _EPOCH_STRIDE + epoch


def extraction_key(iteration: int) -> int:
    """The key of the precise-BN pass before an iteration's feature extraction (no epoch has it)."""
    return _EXTRACTION_OFFSET + iteration


def sampler_seed(seed: int, key: int) -> int:
    """The order of the training items of epoch ``key`` (pretraining and fine-tuning)."""
    return seed * 1_000_003 + key


def kmeans_seed(seed: int, iteration: int) -> int:
    """k-means of ``iteration`` (faiss takes a 32-bit seed: config.SEED_LIMIT keeps it in range)."""
    return seed + 7919 * iteration


def recluster_seed(seed: int, iteration: int, epoch: int) -> int:
    """k-means at the end of ``epoch`` of ``iteration`` (``clustering.recluster=epoch``), 32-bit like
    ``kmeans_seed`` and never equal to one (1_000_003 is prime and larger than 7919 x any iteration)."""
    return (kmeans_seed(seed, iteration) + 1_000_003 * (epoch + 1)) % 2**31


def head_seed(seed: int, iteration: int) -> int:
    """The new classification heads of a deep-clustering iteration."""
    return seed * 100003 + iteration


def rng(seed: int, stream: int, *keys: int):
    """A numpy Generator for ``stream`` (one of the numbers above) and any further keys."""
    return keyed_rng(seed, stream, *keys)


def keyed_rng(seed: int, *keys: int):
    """A numpy Generator of ``seed`` and ``keys`` without a stream number: the formulas from before the
    streams, kept so that results stay the same. Its uses: a dataset item (keys: epoch key, item), a
    video's fixed clips (key: its index), pretraining's validation split and k-means' first centroids
    (no keys)."""
    import numpy as np

    return np.random.default_rng([seed, *keys])
