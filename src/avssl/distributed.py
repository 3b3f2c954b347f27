"""PyTorch's own distributed engine, reduced to what pretraining and the methods need (below them all).

Started by ``torchrun`` (which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), avssl joins a
process group (NCCL on GPUs, gloo on CPUs); without torchrun every helper here is a no-op and the
run is one ordinary process. Design points:
- the training order is decided GLOBALLY from the seed and every rank takes its slice of each global
  batch, so a run's data order does not depend on the number of processes (and a checkpoint can be
  resumed with another world size);
- feature extraction is sharded by item and the per-video sums are reduced to rank 0 in chunks;
- k-means runs once, on rank 0, and its labels are broadcast, so every rank trains on identical
  pseudo-labels.
"""
from __future__ import annotations

import datetime
import os

import numpy as np
import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init(device_type: str) -> None:
    """Join the process group if torchrun started us and no group exists yet."""
    if not launched_by_torchrun() or dist.is_initialized():
        return
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=60))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank())


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def _comm_device() -> torch.device:
    """NCCL communicates CUDA tensors, gloo CPU tensors."""
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_array(array: np.ndarray | None, like_shape=None, dtype=np.int64) -> np.ndarray:
    """Rank 0's ``array`` on every rank (other ranks pass None and the expected shape)."""
    if not active():
        return array
    shape = array.shape if is_main() else like_shape
    t = torch.from_numpy(np.ascontiguousarray(array)) if is_main() else torch.empty(shape, dtype=_torch_dtype(dtype))
    t = t.to(_comm_device())
    dist.broadcast(t, src=0)
    return t.cpu().numpy()


def broadcast_object(obj):
    """A small picklable object (stats, flags) from rank 0 to every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def reduce_to_main(array: np.ndarray, chunk_rows: int = 65536) -> None:
    """Sum ``array`` (e.g. per-video feature sums, a memmap) over ranks into rank 0's copy, in place,
    chunk by chunk so no rank ever holds a second full copy."""
    if not active():
        return
    for start in range(0, len(array), chunk_rows):
        t = torch.from_numpy(np.ascontiguousarray(array[start : start + chunk_rows])).to(_comm_device())
        dist.reduce(t, dst=0, op=dist.ReduceOp.SUM)
        if is_main():
            array[start : start + chunk_rows] = t.cpu().numpy()


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sums over ranks of a list of numbers (every rank gets them)."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return t.cpu().tolist()


def all_reduce_tensor(t: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks of a tensor (every rank gets it, on the tensor's device)."""
    if not active():
        return t
    c = t.to(_comm_device())
    dist.all_reduce(c)
    return c.to(t.device)


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one (to take a collective decision)."""
    return bool(all_reduce_sum([float(flag)])[0]) if active() else flag


def shard(n: int) -> range:
    """The items of a length-``n`` dataset that this rank handles (round robin)."""
    return range(rank(), n, world_size())


def shard_batches(order: list[int], global_batch: int, drop_last: bool) -> list[list[int]]:
    """This rank's part of every global batch of ``order`` (the global batch must divide evenly)."""
    w, r = world_size(), rank()
    if global_batch % w:
        raise ValueError(f"the batch size {global_batch} must be divisible by the number of processes ({w})")
    local = global_batch // w
    batches = []
    for start in range(0, len(order), global_batch):
        chunk = order[start : start + global_batch]
        if len(chunk) < global_batch and (drop_last or len(chunk) < w):
            break
        per = len(chunk) // w
        batches.append(chunk[r * per : (r + 1) * per] if len(chunk) < global_batch else chunk[r * local : (r + 1) * local])
    return batches


def _torch_dtype(dtype) -> torch.dtype:
    return {np.int64: torch.int64, np.float32: torch.float32}[np.dtype(dtype).type]
