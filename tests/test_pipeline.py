"""The data pipeline: the one loader builder, a training epoch's seeded order, loader workers."""
import os

import pytest
import torch
from torch.utils.data import BatchSampler, RandomSampler, WeightedRandomSampler

from avssl import seeds
from avssl.config import LoaderConfig, resolve
from avssl.data.dataset import SkippedClip
from avssl.data.pipeline import batched, epoch_order, make_loader, num_workers
from avssl.errors import ConfigError


def test_num_workers_auto_and_explicit():
    assert num_workers(LoaderConfig(workers=3), torch.device("cpu")) == 3
    cores = len(os.sched_getaffinity(0))
    auto = num_workers(LoaderConfig(workers=-1), torch.device("cpu"))
    assert auto == (0 if cores <= 2 else min(8, cores // 4))
    assert num_workers(LoaderConfig(workers=-1), torch.device("cuda")) == min(8, cores - 1)
    with pytest.raises(ConfigError, match="loader.workers"):
        resolve("cpu-tiny", "xdc", ["loader.workers=-2"])


def test_epoch_order_is_the_seeded_sampler_order():
    """The order torch's samplers draw from the generator of seeds.sampler_seed(seed, key), as pretraining
    and fine-tuning drew it before they shared epoch_order: runs repeat and resume onto the same batches."""
    for n in (5, 8, 12):  # fewer, as many, more than the items (then with replacement)
        gen = torch.Generator().manual_seed(seeds.sampler_seed(3, 7))
        assert epoch_order(8, n, 3, 7) == list(RandomSampler(range(8), replacement=n > 8, num_samples=n, generator=gen))
    weights = [0.0, 1.0, 0.0, 2.0]
    gen = torch.Generator().manual_seed(seeds.sampler_seed(3, 7))
    order = epoch_order(4, 10, 3, 7, weights=weights)
    assert order == list(WeightedRandomSampler(torch.as_tensor(weights), 10, generator=gen))
    assert set(order) <= {1, 3}
    assert sorted(epoch_order(8, 8, 3, 7)) == list(range(8)) and epoch_order(8, 8, 3, 7) != epoch_order(8, 8, 3, 8)


def test_batched_cuts_like_a_batch_sampler():
    for drop_last in (False, True):
        for n in (6, 7):
            assert batched(list(range(n)), 3, drop_last) == list(BatchSampler(range(n), 3, drop_last))


def test_make_loader_batches_in_order_or_as_given_and_lists_skipped_clips():
    items = [{"index": i, "x": torch.full((2,), float(i))} for i in range(5)]
    items[2] = SkippedClip("v2.mp4", "corrupt")
    cfg = LoaderConfig(workers=0)
    plain = list(make_loader(items, cfg, torch.device("cpu"), batch_size=2))
    assert [b["index"].tolist() for b in plain] == [[0, 1], [3], [4]]
    assert plain[1]["skipped"] == [("v2.mp4", "corrupt")] and plain[0]["skipped"] == []
    assert plain[0]["x"].shape == (2, 2)
    given = list(make_loader(items, cfg, torch.device("cpu"), batches=[[4, 0], [1, 3]]))
    assert [b["index"].tolist() for b in given] == [[4, 0], [1, 3]]
