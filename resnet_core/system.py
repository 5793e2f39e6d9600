"""What this machine can train on: a description of the compute devices for the dashboard.

Nothing here allocates memory on a device or initialises CUDA in a way that would get in
the way of a trainer: only the driver's device properties are read.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda", "mps" or "cpu"
    name: str  # "NVIDIA H100 80GB HBM3", "Apple MPS" or the CPU model
    memory_gb: float | None  # total device memory (RAM for the CPU), if known
    cuda_version: str | None = None
    count: int = 1  # GPUs of this kind
    cores: int | None = None  # CPU cores

    def summary(self) -> str:
        """One line, e.g. 'NVIDIA H100 80GB HBM3 · 79.6 GB · CUDA 12.4'."""
        parts = [self.name if self.count == 1 else f"{self.count} x {self.name}"]
        if self.kind == "cpu" and self.cores:
            parts.append(f"{self.cores} cores")
        if self.memory_gb:
            parts.append(f"{self.memory_gb:.1f} GB" + (" RAM" if self.kind == "cpu" else ""))
        if self.cuda_version:
            parts.append(f"CUDA {self.cuda_version}")
        return " · ".join(parts)


@dataclass(frozen=True)
class SystemInfo:
    devices: list[DeviceInfo] = field(default_factory=list)  # the best device first
    torch_version: str = ""

    @property
    def primary(self) -> DeviceInfo:
        return self.devices[0]

    @property
    def cuda_count(self) -> int:
        """CUDA GPUs on this machine (0 without)."""
        return sum(d.count for d in self.devices if d.kind == "cuda")

    def device_choices(self) -> list[str]:
        """Values for the trainer's --device on this machine, 'auto' first."""
        choices = ["auto"]
        for d in self.devices:
            if d.kind == "cuda":
                choices += ["cuda"] + [f"cuda:{i}" for i in range(d.count)] if d.count > 1 else ["cuda"]
            elif d.kind == "mps":
                choices.append("mps")
        return choices + ["cpu"]


def cpu_name() -> str:
    """The CPU's model name: Linux's /proc/cpuinfo says it (psutil does not), elsewhere
    platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return re.sub(r"\s+", " ", line.split(":", 1)[1]).strip() or "CPU"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else all the machine's (the
    standard library says both, on every system)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def total_ram_gb() -> float | None:
    try:
        return psutil.virtual_memory().total / 1024 ** 3
    except (psutil.Error, OSError, RuntimeError):
        return None


def cpu_device() -> DeviceInfo:
    return DeviceInfo(kind="cpu", name=cpu_name(), memory_gb=total_ram_gb(), cores=os.cpu_count())


def describe_system() -> SystemInfo:
    """GPUs (name, memory, CUDA version) or MPS where present, and always the CPU last."""
    import torch

    devices: list[DeviceInfo] = []
    try:
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            props = torch.cuda.get_device_properties(0)
            devices.append(DeviceInfo(kind="cuda", name=props.name, memory_gb=props.total_memory / 1024 ** 3,
                                      cuda_version=torch.version.cuda, count=count))
    except Exception:  # a broken driver must not take the dashboard down
        pass
    try:
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            devices.append(DeviceInfo(kind="mps", name="Apple MPS", memory_gb=None))
    except Exception:
        pass
    devices.append(cpu_device())
    return SystemInfo(devices=devices, torch_version=torch.__version__)


def process_memory_mb(pid: int | None) -> float | None:
    """Resident memory of a running process, or None."""
    if not pid:
        return None
    try:
        return psutil.Process(pid).memory_info().rss / 2 ** 20
    except (psutil.Error, OSError, ValueError, TypeError):
        return None
