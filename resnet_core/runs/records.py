"""The records of the format, typed: status.json and the rows of metrics.jsonl, as
:mod:`resnet_core.runs.folder_format` documents them (a test holds the three to agreement)."""

from __future__ import annotations

from typing import TypedDict


class StatusRecord(TypedDict, total=False):
    """status.json, as :mod:`resnet_core.runs.folder_format` documents it."""

    format_version: int
    state: str
    pid: int
    pid_start: int | None
    epoch: int
    step: int
    total_epochs: int
    total_steps: int
    created_at: float
    started_at: float | None
    updated_at: float
    finished_at: float | None
    elapsed_before_s: float
    best_val_acc: float | None
    best_epoch: int | None
    test_acc: float | None
    error: str | None
    phase: str | None
    phase_started_at: float | None
    phase_done: int | None
    phase_total: int | None
    first_step_s: float | None
    host: str


class StepRow(TypedDict):
    type: str  # "step"
    epoch: int
    step: int
    loss: float
    acc: float
    lr: float
    images_per_s: float


class EpochRow(TypedDict, total=False):
    type: str  # "epoch"
    epoch: int
    step: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    lr: float
    epoch_seconds: float
    images_per_s: float
    peak_memory_mb: float
    eval_seconds: float
    test_loss: float  # only with test_every_epoch
    test_acc: float


class SystemRow(TypedDict, total=False):
    type: str  # "system"
    epoch: int
    step: int
    cpu_percent: float | None
    machine_cpu_percent: float | None
    cores: int
    ram_mb: float | None
    machine_ram_percent: float | None
    gpu_util: float | None  # CUDA only
    gpu_memory_mb: float  # CUDA and MPS
    gpu_memory_total_mb: float  # CUDA only


class TestRow(TypedDict):
    type: str  # "test"
    epoch: int
    step: int
    test_loss: float
    test_acc: float
