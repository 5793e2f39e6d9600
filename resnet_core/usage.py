"""What a training run uses of its machine over time: CPU, RAM, and the GPU's utilisation
and memory. The trainer samples it every few seconds into ``system`` rows of
metrics.jsonl (see :mod:`resnet_core.runs.folder_format`), so the monitor can chart it next to the loss.

CPU figures come from CPU-time deltas between two samples: this process's from
``os.times`` (its threads, not its child processes such as torch.compile's workers), the
machine's from psutil, as is RAM. Percentages are of the cores this process may run on.
GPU utilisation comes from NVML through ``torch.cuda.utilization`` (needs the
``nvidia-ml-py`` package; without it the field is null), GPU memory from
PyTorch's caching allocator on CUDA and from the driver on Apple's MPS. A figure that
cannot be read is null, never an error: a sampler must not stop a training run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import psutil
import torch

from .system import process_memory_mb, usable_cores

log = logging.getLogger("resnet_core.train")


def _machine_cpu_times() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of all cores since boot; idle and iowait are not busy."""
    try:
        times = psutil.cpu_times()
    except (psutil.Error, OSError, RuntimeError):
        return None
    idle = times.idle + getattr(times, "iowait", 0.0)
    # user, nice, system, idle, iowait, irq, softirq, steal: guest time is already in user.
    total = sum(getattr(times, name, 0.0)
                for name in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"))
    return total - idle, total


def _machine_ram_percent() -> float | None:
    """RAM in use, percent of the total: (total - available) / total."""
    try:
        memory = psutil.virtual_memory()
    except (psutil.Error, OSError, RuntimeError):
        return None
    return 100.0 * (memory.total - memory.available) / memory.total if memory.total > 0 else None


def _process_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class UsageSampler:
    """Samples of one training process's use of its machine (see the module doc).

    :meth:`sample` returns the row's fields: ``cpu_percent`` (this process, percent of its
    usable cores, since the previous sample), ``machine_cpu_percent`` (all processes, percent
    of all the machine's cores), ``cores`` (the usable ones), ``ram_mb`` (this process's resident memory),
    ``machine_ram_percent``, and on CUDA ``gpu_util`` (percent of the time a kernel ran, as
    nvidia-smi says), ``gpu_memory_mb`` (what this process's allocator holds; on MPS, the
    driver's total) and ``gpu_memory_total_mb``.
    """

    def __init__(self, device: torch.device, clock: Callable[[], float] = time.monotonic):
        self.device, self.clock = device, clock
        self.cores = usable_cores()
        self.gpu_util_readable = device.type == "cuda"  # until NVML proves missing
        self._last = (clock(), _process_cpu_seconds(), _machine_cpu_times())

    def _cpu(self) -> tuple[float | None, float | None]:
        now, cpu, machine = self.clock(), _process_cpu_seconds(), _machine_cpu_times()
        (then, cpu_then, machine_then), self._last = self._last, (now, cpu, machine)
        wall = now - then
        process = 100.0 * (cpu - cpu_then) / (wall * self.cores) if wall > 0 else None
        whole = None
        if machine is not None and machine_then is not None and machine[1] > machine_then[1]:
            whole = 100.0 * (machine[0] - machine_then[0]) / (machine[1] - machine_then[1])
        return process, whole

    def _gpu(self) -> dict:
        if self.device.type == "cuda":
            util = None
            if self.gpu_util_readable:
                try:
                    util = float(torch.cuda.utilization(self.device))
                except Exception:  # no nvidia-ml-py, or NVML refuses: stop asking
                    self.gpu_util_readable = False
            return {"gpu_util": util, "gpu_memory_mb": torch.cuda.memory_reserved(self.device) / 2**20,
                    "gpu_memory_total_mb": torch.cuda.get_device_properties(self.device).total_memory / 2**20}
        if self.device.type == "mps":
            return {"gpu_memory_mb": torch.mps.driver_allocated_memory() / 2**20}
        return {}

    def sample(self) -> dict:
        process, whole = self._cpu()
        row = {"cpu_percent": process, "machine_cpu_percent": whole, "cores": self.cores,
               "ram_mb": process_memory_mb(os.getpid()), "machine_ram_percent": _machine_ram_percent()}
        try:
            row.update(self._gpu())
        except Exception:  # a driver error must not stop the run
            pass
        return row


class UsageRecorder:
    """A daemon thread that appends a system row every `every` seconds while the run goes:
    ``{"type": "system", "epoch", "step", ...UsageSampler.sample()}``, with the epoch in
    progress and the steps taken from `position`. Every phase is covered (loading,
    compiling, evaluating), which rows written from the training loop would miss."""

    def __init__(self, sampler: UsageSampler, append: Callable[[dict], None],
                 position: Callable[[], tuple[int, int]], every: float):
        self.sampler, self.append, self.position, self.every = sampler, append, position, every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="usage-recorder", daemon=True)

    def _loop(self) -> None:
        while not self._stopped.wait(self.every):
            try:
                epoch, step = self.position()
                row = {"type": "system", "epoch": epoch, "step": step, **self.sampler.sample()}
            except Exception:  # a bug here must cost the usage charts, not the run
                log.exception("system rows stop: sampling failed")
                return
            try:
                self.append(row)
            except (OSError, ValueError):  # metrics.jsonl closed or gone: the run is ending
                return

    def __enter__(self) -> "UsageRecorder":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
