"""Where and how a run computes: the device, the precision of training steps, the memory
format and torch.compile, each chosen for the hardware when the config says auto."""

from __future__ import annotations

import resource

import torch

from .placement import candidate_devices
from .model_names import FamilyCounts
from .system import cpu_name, total_ram_gb


def resolve_device(device: str) -> torch.device:
    """The first device the spec may run on (auto: CUDA, then Apple's MPS, then the CPU),
    for a process that takes no device lock (the benchmark); an unavailable choice is an
    error. A training run takes a free one of all candidates instead (placement.acquire)."""
    return torch.device(candidate_devices(device)[0])


def resolve_precision(precision: str, device: torch.device) -> str:
    """auto: bf16 where the hardware computes it natively (CUDA, recent x86 CPUs), fp16
    with a grad scaler on other GPUs, fp32 on CPUs without bf16 units."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    return "bf16" if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def resolve_channels_last(channels_last: bool | None, device: torch.device) -> bool:
    """channels_last suits cuDNN's tensor-core kernels and oneDNN on the CPU (measured
    here: ResNet-20 fp32 steps 24% faster); MPS gains nothing from it."""
    return device.type in ("cuda", "cpu") if channels_last is None else channels_last


def resolve_compile(compile: bool | None, device: torch.device) -> bool:
    """torch.compile fuses BN, ReLU and the residual add around each convolution. On CUDA
    it also removes most kernel launches, so auto turns it on there. On a CPU it made
    ResNet-20 steps about 10% faster here, but its first compile takes 40 s or more on
    two cores: worth it for long runs, not for quick ones, so it is opt-in there."""
    return device.type == "cuda" if compile is None else compile


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return cpu_name()


def peak_memory_mb(device: torch.device) -> float:
    """Peak device memory of this process: CUDA allocator peak, else peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if device.type == "mps":
        return torch.mps.driver_allocated_memory() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_memory_bytes(device: torch.device) -> int | None:
    """What the device can hold: a CUDA GPU's memory, else the machine's RAM (which MPS
    shares); None where it cannot be told. The total, not what is free at this moment: a
    refusal must not depend on what else happens to run."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    ram_gb = total_ram_gb()
    return int(ram_gb * 2**30) if ram_gb else None


def training_memory_bytes(counts: FamilyCounts, batch_size: int, precision: str) -> int:
    """A lower bound of one training step's memory: fp32 weights, gradients and momentum,
    and the activations autograd keeps at the precision's width (family_counts counts them
    0-2% below what saved_tensors_hooks sees in fp32, up to 20% below in bf16, where the
    fp32 input and its cast weigh in: tests/test_models.py)."""
    return 12 * counts.params + counts.activations * batch_size * (2 if precision in ("bf16", "fp16") else 4)


def format_bytes(n: int) -> str:
    gib = n / 2**30
    return f"{gib:,.2f} GiB" if gib < 1e6 else f"{gib:.2e} GiB"
