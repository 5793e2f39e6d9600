"""Machine use sampled for the system rows (resnet_core.usage), on this CPU."""

import os
import threading
import time

import pytest
import torch

from resnet_core.usage import UsageRecorder, UsageSampler


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_percent_is_this_process_share_of_its_usable_cores_between_samples():
    clock = Clock()
    sampler = UsageSampler(torch.device("cpu"), clock=clock)
    before = sum(os.times()[:2])
    _burn(0.3)  # 0.3 s of CPU time (other threads of this process count too)...
    used = sum(os.times()[:2]) - before
    clock.now += 1.0  # ...in one second: used / the cores this process may use
    row = sampler.sample()
    cores = len(os.sched_getaffinity(0))
    # os.times ticks in 10 ms steps while process_time does not: CI once read 0.28999.
    assert used >= 0.28 and row["cores"] == cores
    assert row["cpu_percent"] == pytest.approx(100 * used / cores, abs=5 / cores)
    assert 0 <= row["machine_cpu_percent"] <= 100
    before = sum(os.times()[:2])
    clock.now += 2.0
    row = sampler.sample()
    assert row["cpu_percent"] == pytest.approx(100 * (sum(os.times()[:2]) - before) / (2 * cores), abs=5 / cores)


def test_a_cpu_sample_has_memory_and_no_gpu_fields():
    row = UsageSampler(torch.device("cpu")).sample()
    assert row["ram_mb"] > 10 and 0 < row["machine_ram_percent"] < 100
    assert not any(k.startswith("gpu") for k in row)


def test_no_time_between_samples_gives_no_percentage_rather_than_a_division_by_zero():
    clock = Clock()
    sampler = UsageSampler(torch.device("cpu"), clock=clock)
    assert sampler.sample()["cpu_percent"] is None


def test_the_recorder_appends_rows_with_the_runs_position_until_it_exits():
    rows, position = [], [1, 0]
    lock = threading.Lock()

    def append(row):
        with lock:
            rows.append(row)

    with UsageRecorder(UsageSampler(torch.device("cpu")), append, lambda: tuple(position), every=0.02):
        deadline = time.time() + 10
        while len(rows) < 3 and time.time() < deadline:
            time.sleep(0.01)
        position[:] = [2, 40]
        seen = len(rows)
        while len(rows) < seen + 2 and time.time() < deadline:
            time.sleep(0.01)
    count = len(rows)
    time.sleep(0.1)
    assert len(rows) == count, "rows after the recorder exited"
    assert all(r["type"] == "system" and "cpu_percent" in r for r in rows)
    assert (rows[0]["epoch"], rows[0]["step"]) == (1, 0) and (rows[-1]["epoch"], rows[-1]["step"]) == (2, 40)


def test_a_closed_metrics_file_ends_the_recorder_quietly():
    calls = []

    def append(row):
        calls.append(row)
        raise ValueError("I/O operation on closed file")

    recorder = UsageRecorder(UsageSampler(torch.device("cpu")), append, lambda: (1, 0), every=0.01)
    with recorder:
        deadline = time.time() + 10
        while not calls and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
    assert len(calls) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on the GPU machine)")
def test_a_cuda_sample_has_gpu_memory_and_utilisation():
    device = torch.device("cuda")
    x = torch.randn(4096, 4096, device=device)
    row = UsageSampler(device).sample()
    assert row["gpu_memory_mb"] >= x.numel() * 4 / 2**20 and row["gpu_memory_total_mb"] > row["gpu_memory_mb"]
    assert row["gpu_util"] is None or 0 <= row["gpu_util"] <= 100
