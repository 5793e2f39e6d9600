"""The device description on the Home page and the Train form's device choices."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from resnet_core import system
from resnet_core.system import DeviceInfo, SystemInfo


def test_this_machine_is_described_with_the_cpu_last():
    info = system.describe_system()
    assert info.devices[-1].kind == "cpu"
    assert info.devices[-1].name and info.devices[-1].cores == os.cpu_count()
    assert info.torch_version == torch.__version__
    choices = info.device_choices()
    assert choices[0] == "auto" and choices[-1] == "cpu"
    if not torch.cuda.is_available():
        assert "cuda" not in choices


def test_a_gpu_is_described_by_name_memory_and_cuda_version(monkeypatch):
    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=80 * 1024 ** 3)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    info = system.describe_system()
    gpu = info.primary
    assert (gpu.kind, gpu.name, gpu.count, gpu.cuda_version) == ("cuda", "NVIDIA H100 80GB HBM3", 2, "12.4")
    assert gpu.summary() == "2 x NVIDIA H100 80GB HBM3 · 80.0 GB · CUDA 12.4"
    assert info.device_choices() == ["auto", "cuda", "cuda:0", "cuda:1", "cpu"]


def test_a_broken_driver_leaves_the_cpu(monkeypatch):
    def boom():
        raise RuntimeError("driver mismatch")
    monkeypatch.setattr(torch.cuda, "is_available", boom)
    assert [d.kind for d in system.describe_system().devices][-1] == "cpu"


def test_summaries_and_choices():
    cpu = DeviceInfo(kind="cpu", name="AMD EPYC", memory_gb=23.4, cores=2)
    assert cpu.summary() == "AMD EPYC · 2 cores · 23.4 GB RAM"
    one = SystemInfo([DeviceInfo(kind="cuda", name="A100", memory_gb=40.0, cuda_version="12.1"), cpu])
    assert one.device_choices() == ["auto", "cuda", "cpu"]
    assert SystemInfo([DeviceInfo(kind="mps", name="Apple MPS", memory_gb=None), cpu]).device_choices() == \
        ["auto", "mps", "cpu"]


def test_process_memory():
    assert system.process_memory_mb(os.getpid()) > 1
    assert system.process_memory_mb(None) is None
    assert system.process_memory_mb(999_999_999) is None


def test_memory_figures_are_the_kernels():
    """psutil reads what /proc/meminfo and /proc/<pid>/status said (MemTotal, VmRSS)."""
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines())
    assert system.total_ram_gb() == int(meminfo["MemTotal"].split()[0]) / 1024 ** 2
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    assert system.process_memory_mb(os.getpid()) == pytest.approx(int(status["VmRSS"].split()[0]) / 1024, rel=0.05)
