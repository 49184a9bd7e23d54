"""DDP under ``torchrun``: process-group set-up (gloo on CPU, nccl on CUDA), rank helpers, epoch order."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job; world_size 1 when not launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, checkpoints and writes the bundle."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True inside a multi-process job."""
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistContext:
    """Join the torchrun job named by the environment (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def epoch_order(n: int, epoch: int, seed: int, ctx: DistContext) -> list[int]:
    """This rank's shuffled sample indices for an epoch (DistributedSampler: seeded by seed + epoch,
    padded so every rank gets the same count)."""
    sampler = DistributedSampler(
        range(n), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed
    )
    sampler.set_epoch(epoch)
    return list(sampler)


def barrier(ctx: DistContext) -> None:
    """Wait until every rank gets here."""
    if ctx.enabled:
        dist.barrier()


def sync_buffers(model: torch.nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank; DDP only syncs them before
    a forward pass, so after the last step of an epoch each rank still holds its own."""
    if ctx.enabled:
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when it is True on any (a Ctrl-C seen by one rank stops all at the same step)."""
    if not ctx.enabled:
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def broadcast(value: Any, ctx: DistContext) -> Any:
    """Rank 0's value on every rank (so all ranks take the same decisions)."""
    if not ctx.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any, ctx: DistContext) -> list[Any]:
    """Every rank's value, in rank order."""
    if not ctx.enabled:
        return [value]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, value)
    return out


def finish(ctx: DistContext) -> None:
    """Leave the process group together: every rank waits here for the others (rank 0 arrives after its
    report), so no rank tears down gloo while a peer still holds the connection (that aborted rank 1).
    Callers drop their DDP wrappers first: a live wrapper keeps the group's gloo threads until exit."""
    if ctx.enabled and dist.is_initialized():
        gc.collect()  # wrappers dropped by the caller, with their reference cycles
        dist.barrier()
        dist.destroy_process_group()
