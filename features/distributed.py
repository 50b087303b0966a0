"""torchrun support: who this process is, the process group, and batch norm over the whole global batch.

Run as `torchrun --nproc-per-node N -m pipeline train|embed ...`; torchrun sets RANK, WORLD_SIZE and
LOCAL_RANK, and its rendezvous flags span nodes. Without torchrun every helper here is a no-op for one
process, so the single-process path is the same code.
"""
from __future__ import annotations

import atexit
import gc
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as functional  # torch's advice: differentiable collectives
from torch import nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and combined files, and shows progress."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process on its node; every process shares the CPU."""
        if self.size > 1 and device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device

    def sum(self, *values: float) -> list[float]:
        """Each value summed over all processes (float64, so counts stay exact)."""
        if self.size == 1:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(total)
        return total.tolist()

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def world() -> World:
    """This process's place among torchrun's processes (one process without torchrun)."""
    if not dist.is_torchelastic_launched() and "WORLD_SIZE" not in os.environ:
        return World()
    return World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))


def start(device: torch.device) -> World:
    """Join torchrun's process group (NCCL for GPUs, gloo on the CPU); one process needs none."""
    here = world()
    if here.size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(here.local_rank)
        # Generous: processes meet after their embedding shards, however unevenly those go; a process that
        # dies makes torchrun stop the others anyway.
        dist.init_process_group(backend, timeout=timedelta(hours=2))
        # Once per process: `ganprov run` trains and embeds in the same group (gloo cannot join anew).
        atexit.register(leave)
    return here


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def finish() -> None:
    """Leave the process group together, after a command succeeded everywhere. Torn down at exit by each
    process alone, a rank aborted (`terminate called without an active exception`) in 4 of 20 two-process
    runs of tests/distributed_step.py; after a barrier, in 1 of 70; after a barrier and with nothing left
    holding the group, in none of 60. Not at exit after an error: a failed process must not wait for peers
    that will never come."""
    if dist.is_initialized():
        dist.barrier()
        gc.collect()  # wrappers still holding the group (DDP's reducer) go now, not during interpreter teardown
    leave()


class GlobalBatches(torch.utils.data.Sampler):
    """The batches one process would train on (a permutation seeded by `seed`, cut into `batch_size`
    rows), each dealt out among the processes; this process iterates over its shares. Every process gets a
    share of every batch, empty or not, so all take the same steps. torch's DistributedSampler would
    instead pad the epoch with repeated images and cut each process's list into batches of its own."""

    def __init__(self, n: int, batch_size: int, world: World, seed: int, drop_last_single: bool = False):
        self.n, self.batch_size, self.world, self.seed = n, batch_size, world, seed
        # BatchNorm cannot train on a last batch of one image: drop just that one.
        self.stop = n - 1 if drop_last_single and n % batch_size == 1 and n > 1 else n

    def __len__(self) -> int:
        return -(-self.stop // self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed)).tolist()
        for start in range(0, self.stop, self.batch_size):
            yield order[start:start + self.batch_size][self.world.rank::self.world.size]


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch of all processes, so N processes
    train like one: torch's SyncBatchNorm does this on GPUs only. Both all-reduces are differentiable,
    so gradients flow through the shared statistics as they do in one process. Two passes (mean, then
    squared deviations) keep the variance as accurate as BatchNorm2d's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        channels = x.shape[1]
        count = x.new_tensor([x.numel() / channels], dtype=torch.float32)
        sums = functional.all_reduce(torch.cat([x.float().sum((0, 2, 3)), count]), "sum", dist.group.WORLD)
        n = sums[-1]
        mean = sums[:channels] / n
        centred = x.float() - mean.view(1, -1, 1, 1)
        # The variance's gradient through the mean is zero in exact arithmetic, but not in float32, where
        # it swamps channels of tiny variance; BatchNorm2d's own backward leaves it out, and so does this.
        deviation = x.float() - mean.detach().view(1, -1, 1, 1)
        var = functional.all_reduce(deviation.square().sum((0, 2, 3)), "sum", dist.group.WORLD) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = 1 / int(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * n / (n - 1).clamp(min=1), momentum)  # unbiased, as BatchNorm2d
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * self.weight
        out = centred * scale.view(1, -1, 1, 1)
        if self.affine:
            out = out + self.bias.view(1, -1, 1, 1)
        return out.to(x.dtype)


def synchronise_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """Batch statistics over all processes: torch's SyncBatchNorm on GPUs, GlobalBatchNorm elsewhere.
    Parameters and buffers keep their names, so checkpoints load into a plain model."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = GlobalBatchNorm  # same parameters and buffers, another forward
    return model
