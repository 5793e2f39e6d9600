"""One run over several processes: torchrun's environment, its checks, and the few
collectives a run needs (torch.distributed; we write no launcher or scheduler of our own).

``torchrun --nproc-per-node N -m resnet_core.train ...`` starts N ranks with RANK,
WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE set; plain ``python -m resnet_core.train``
has none of them and is a world of one, for which every function here costs nothing.

How a run is split (see resnet_core.data and resnet_core.loop):
- the global batch (``--batch-size``) is split evenly over the ranks, so the learning rate
  and the schedule mean the same at any world size; DDP averages the gradients, which
  equals the gradient of the global batch's mean loss (BatchNorm aside: without
  ``--sync-bn`` each rank normalises by its own share's statistics);
- every rank draws the whole global batch's order and augmentation from (seed, epoch,
  batch) and keeps its slice, so the images trained on do not depend on the world size and
  a resume at another world size continues the same stream;
- evaluations split the images into contiguous shards and gather them in rank order, so
  the predictions cover every image exactly once, in the single-process order;
- rank 0 alone writes the run folder; a small CPU (gloo) group carries each step's stop
  flag, so a SIGTERM to any rank stops every rank after the same step.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

# torch is imported inside the functions that use it: the dashboard's pages judge a form
# with setup_problems and must not pay torch's 1.3 s import for it.
BACKENDS = ("auto", "nccl", "gloo")
# What gloo and NCCL say when a peer process is gone (measured for gloo: a rank killed with
# SIGKILL made the other's next all_reduce raise RuntimeError "... Connection closed by peer").
_PEER_LOST_MARKERS = ("closed by peer", "reset by peer", "broken pipe", "communicator was aborted",
                      "nccl communicator", "connection refused", "socket timeout")


class PeerLost(Exception):
    """Another rank of this run died: nothing more can be computed together."""


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes (torchrun's environment)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    max_restarts: int = 0  # torchrun --max-restarts: a restarted rank resumes the run folder
    restart: int = 0  # how many times torchrun restarted the ranks so far

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env(env: Mapping[str, str] = os.environ) -> World:
    """The world torchrun describes in env; a world of one without it. ValueError for an
    environment that does not describe one (a hand-set RANK without WORLD_SIZE...)."""
    if "WORLD_SIZE" not in env and "RANK" not in env:
        return World()
    try:
        size = int(env["WORLD_SIZE"])
        rank = int(env["RANK"])
        local_rank = int(env.get("LOCAL_RANK", rank))
        local_size = int(env.get("LOCAL_WORLD_SIZE", size))
        world = World(rank, size, local_rank, local_size, int(env.get("TORCHELASTIC_MAX_RESTARTS", 0)),
                      int(env.get("TORCHELASTIC_RESTART_COUNT", 0)))
    except (KeyError, ValueError) as e:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK do not describe a torchrun world ({e}); "
                         f"start several processes with torchrun, or unset them") from None
    if not (0 <= world.rank < world.size and 0 <= world.local_rank < world.local_size <= world.size):
        raise ValueError(f"rank {world.rank} of {world.size} (local {world.local_rank} of {world.local_size}) "
                         f"is not a torchrun world")
    return world


def backend_for(choice: str, device_spec: str) -> str:
    """The process-group backend: NCCL for CUDA, Gloo otherwise (``auto``), or as chosen."""
    if choice != "auto":
        return choice
    import torch

    return "nccl" if device_spec.startswith("cuda") or (device_spec == "auto" and torch.cuda.is_available()) \
        else "gloo"


def setup_problems(world: World, batch_size: int, device_spec: str, backend: str, sync_bn: bool,
                   cuda_count: int | None = None) -> list[str]:
    """Why this world cannot run this config, each reason one line (empty: it can). Every
    rank computes the same, so all refuse before any of them trains. A world of one can run
    anything a single process can."""
    if not world.distributed:
        return []
    if cuda_count is None:
        import torch

        cuda_count = torch.cuda.device_count()
    problems = []
    if batch_size % world.size:
        problems.append(f"--batch-size {batch_size} cannot be split over {world.size} processes: use a multiple "
                        f"of {world.size} (each process takes an equal share of every batch)")
    uses_cuda = device_spec.startswith("cuda") or (device_spec == "auto" and cuda_count > 0)
    if device_spec.startswith("cuda:"):
        problems.append(f"--device {device_spec} names one GPU, but under torchrun each process takes the GPU of "
                        f"its local rank: use --device cuda (or auto)")
    if device_spec == "mps":
        problems.append("MPS has no distributed backend in PyTorch: run one process on a Mac")
    if uses_cuda and world.local_size > cuda_count:
        problems.append(f"{world.local_size} processes per node but {cuda_count} GPU(s) here: use "
                        f"--nproc-per-node {cuda_count} or fewer, one process per GPU")
    if backend == "nccl" and not uses_cuda:
        problems.append("--dist-backend nccl needs CUDA GPUs; on CPUs use gloo (auto picks it)")
    if sync_bn and not uses_cuda:
        problems.append("--sync-bn: PyTorch's SyncBatchNorm runs on GPUs only (on a CPU DDP refuses it)")
    return problems


def device_for(world: World, device_spec: str) -> str | None:
    """The device a rank of a distributed run computes on: its local rank's GPU, or the CPU;
    None for a world of one (the device queue of resnet_core.placement picks then)."""
    if not world.distributed:
        return None
    import torch

    if device_spec == "cpu" or (device_spec == "auto" and not torch.cuda.is_available()):
        return "cpu"
    return f"cuda:{world.local_rank}"


class Group:
    """The process group of a distributed run and the collectives a run uses; for a world
    of one each of them returns its input (no process group exists)."""

    def __init__(self, world: World, backend: str = "gloo"):
        self.world = world
        self.control = None  # a gloo group for the per-step flags: never a device sync
        if world.distributed:
            import torch
            import torch.distributed as dist

            if backend == "nccl" and world.local_rank < torch.cuda.device_count():  # else refused later
                torch.cuda.set_device(world.local_rank)
            # torchrun's agent serves one key-value store for all its restarts: a restarted rank 0
            # read the killed rank's Gloo address from it and failed "Connection refused" on every
            # restart (measured), so each attempt keeps its keys under a prefix of its own.
            from torch.distributed.rendezvous import rendezvous

            store, _, _ = next(rendezvous("env://", world.rank, world.size))
            store = dist.PrefixStore(f"resnet_core/attempt{world.restart}/", store)
            dist.init_process_group(backend, store=store, rank=world.rank, world_size=world.size)
            self.control = dist.new_group(backend="gloo") if backend != "gloo" else dist.group.WORLD

    def close(self) -> None:
        if self.world.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    def exit(self, code: int) -> int:
        """Return code for a world of one; end a rank of a distributed run with it at once.

        In torch 2.14, DistributedDataParallel keeps its Gloo process group alive past
        destroy_process_group (a bare DDP forward and backward left its gloo_tcp_loop and two
        pt_gloo_runloop threads running; an all_reduce alone left none). Torn down with the
        interpreter, those threads aborted a rank that had finished its run ("terminate
        called without an active exception", SIGABRT, once in about ten CI runs), and
        torchrun then failed the whole run. Call after close(), when everything is written:
        the logs are flushed here, and the interpreter's teardown is skipped."""
        if not self.world.distributed:
            return code
        import logging
        import sys

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RuntimeError as e:
            if peer_lost(e):
                raise PeerLost(str(e).splitlines()[0][:300]) from e
            raise

    def any(self, *flags: bool) -> list[bool]:
        """Each flag, true if it is true on any rank (one small CPU all-reduce)."""
        if not self.world.distributed:
            return list(flags)
        import torch
        import torch.distributed as dist

        t = torch.tensor([int(f) for f in flags], dtype=torch.int32)
        self._call(dist.all_reduce, t, op=dist.ReduceOp.MAX, group=self.control)
        return [bool(v) for v in t.tolist()]

    def sum_(self, *tensors, count: int = 0) -> int:
        """Sum each tensor over the ranks, in place; returns count (a Python int, such as the
        images the tensors' sums are over) summed over the ranks too."""
        if not self.world.distributed:
            return count
        import torch
        import torch.distributed as dist

        total = torch.tensor(count, device=tensors[0].device, dtype=torch.int64)
        for t in (*tensors, total):
            self._call(dist.all_reduce, t, op=dist.ReduceOp.SUM)
        return int(total.item())

    def gather(self, value: Any) -> list[Any]:
        """Every rank's value, in rank order, on every rank (small Python objects)."""
        if not self.world.distributed:
            return [value]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world.size
        self._call(dist.all_gather_object, out, value, group=self.control)
        return out

    def broadcast(self, value: Any) -> Any:
        """Rank 0's value, on every rank."""
        if not self.world.distributed:
            return value
        import torch.distributed as dist

        box = [value if self.world.is_main else None]
        self._call(dist.broadcast_object_list, box, src=0, group=self.control)
        return box[0]

    def gather_arrays(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-image arrays of each rank's shard joined in rank order, on every rank."""
        if not self.world.distributed:
            return arrays
        parts = self.gather(arrays)
        return {name: np.concatenate([p[name] for p in parts]) for name in arrays}


def peer_lost(error: BaseException) -> bool:
    """Whether an error of a collective means another rank is gone."""
    import torch.distributed as dist

    if isinstance(error, (PeerLost, dist.DistNetworkError)):
        return True
    text = str(error).lower()
    return any(marker in text for marker in _PEER_LOST_MARKERS)


def shard(n: int, world: World) -> slice:
    """A rank's contiguous share of n items; the shares in rank order cover each item once."""
    return slice(n * world.rank // world.size, n * (world.rank + 1) // world.size)


def host() -> str:
    return socket.gethostname()
