"""Which device a run computes on, and the per-device locks that queue runs.

A device spec (``--device``) names candidates: ``auto`` and ``cuda`` every CUDA GPU,
``cuda:N`` one. A run takes a free candidate, preferring the one with the fewest active
runs, else waits in state ``queued`` for whichever frees first. Each device has
``slots`` lock files (see :func:`resnet_core.runs.device_lock_path`); a run holds one
for the rest of its process, so a killed run never blocks the queue. One run per device
is the default; a sweep on a CPU asks for K slots so that K runs compute at once.

Devices are always named in their indexed form (``cuda:0``, never ``cuda``): one GPU,
one set of locks.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from . import runs
from .config_checks import parse_device

log = logging.getLogger("resnet_core.train")
POLL_S = 0.5  # how often a queued run tries the locks again


def candidate_devices(spec: str, cuda_count: int | None = None, mps: bool | None = None) -> list[str]:
    """The devices a spec may run on, in preference order; ValueError when it names none
    that exist. cuda_count and mps default to what PyTorch sees (tests pass fakes)."""
    parse_device(spec)
    import torch  # here: the dashboard imports this module for its device locks, and torch takes 1.3 s

    cuda_count = torch.cuda.device_count() if cuda_count is None else cuda_count
    mps = torch.backends.mps.is_available() if mps is None else mps
    gpus = [f"cuda:{i}" for i in range(cuda_count)]
    if spec == "auto":
        return gpus or (["mps"] if mps else ["cpu"])
    if spec == "cuda":
        if not gpus:
            raise ValueError("device cuda asked for, but PyTorch sees no CUDA GPU here")
        return gpus
    if spec.startswith("cuda:"):
        if not gpus:
            raise ValueError(f"device {spec} asked for, but PyTorch sees no CUDA GPU here")
        if int(spec[5:]) >= cuda_count:
            raise ValueError(f"device {spec} asked for, but only {cuda_count} CUDA GPUs exist")
        return [f"cuda:{int(spec[5:])}"]  # cuda:01 and cuda:1 are one GPU
    if spec == "mps" and not mps:
        raise ValueError("device mps asked for, but MPS is not available here")
    return [spec]


def pick_device(candidates: list[str], busy: set[str], load: dict[str, int]) -> str | None:
    """The free candidate with the fewest active runs (ties: the earliest), or None when
    every candidate is busy."""
    free = [d for d in candidates if d not in busy]
    return min(free, key=lambda d: (load.get(d, 0), candidates.index(d)), default=None)


def device_load(runs_dir: Path) -> dict[str, int]:
    """Active runs per device, as their config.json records the device they took."""
    try:
        folders = [p for p in Path(runs_dir).iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return {}
    infos = (runs.read_run(p) for p in folders)
    return dict(Counter(str(i.resolved.get("device")) for i in infos if i is not None and i.is_active))


def cpu_threads(slots: int) -> int:
    """Threads for one of `slots` runs sharing this machine's CPU cores."""
    return max(1, (os.cpu_count() or 1) // slots)


@dataclass
class Placement:
    """A device this process holds: its lock file stays open (and locked) until exit."""

    device: str
    lock: TextIO


def _try_lock(runs_dir: Path, device: str, slots: int) -> TextIO | None:
    """An open lock file of a free slot of device, flocked; None when all slots are held."""
    for slot in range(slots):
        f = runs.open_for_append(runs.device_lock_path(runs_dir, device, slot))  # never through a link
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            f.close()
    return None


def acquire(runs_dir: Path, candidates: list[str], slots: int = 1, should_stop: Callable[[], bool] = lambda: False,
            on_queued: Callable[[list[str]], None] = lambda devices: None) -> Placement | None:
    """Take a slot on one of candidates, waiting while all are busy; on_queued(candidates)
    is called once when the wait starts. None if should_stop() turns true while waiting."""
    announced = False
    while True:
        held = {d: _try_lock(runs_dir, d, slots) for d in candidates}
        busy = {d for d, f in held.items() if f is None}
        free = [d for d in candidates if d not in busy]
        chosen = pick_device(candidates, busy, device_load(runs_dir) if len(free) > 1 else {})
        # Keep only the chosen device's slot. Another run looking in this instant finds the
        # others busy and waits one poll; a free slot is never given to two runs.
        for d, f in held.items():
            if f is not None and d != chosen:
                f.close()
        if chosen is not None:
            return Placement(chosen, held[chosen])
        if not announced:
            on_queued(candidates)
            announced = True
        if should_stop():
            return None
        time.sleep(POLL_S)
