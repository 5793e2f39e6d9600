"""The sweep's Ray executor (``python -m resnet_core.sweep ... --executor ray``): each
point's trainer runs inside a Ray task, on the node, GPU and CPUs Ray gives it.

Imported only by a sweep run on Ray (it imports Ray), and by Ray's workers for
:func:`run_trial`. The task starts the very trainer command a local sweep starts
(executors.launch_trainer), plus ``--no-device-lock``: Ray places the trials (it sets
CUDA_VISIBLE_DEVICES for each), so the runs folder's per-device locks, named by device,
would only make trials of different nodes, or two trials' ``cuda:0`` of one node, queue
for each other. The runs folder must be one the sweep's machine and every node share.

Stopping: ``ray.cancel`` drops a task that has not started and raises KeyboardInterrupt
in a running one, whose trainer then gets SIGTERM (it finishes its step, saves last.pt and
ends ``stopped``) and is waited for. A trainer dies with its Ray worker
(PR_SET_PDEATHSIG), so a lost node leaves its runs ``crashed``, never running forever;
tasks are never retried (max_retries=0): ``--resume`` continues them.
"""

from __future__ import annotations

import ctypes
import math
import os
import signal
import sys
import time
from pathlib import Path

import ray
from ray.exceptions import RayError, TaskCancelledError

from .executors import ExecutorError, launch_trainer
from .system import usable_cores

POLL_S = 0.2  # how often a task looks at its trainer; a cancel lands between two looks
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent(parent: int) -> None:
    """The trainer's preexec_fn: SIGKILL when the Ray worker that started it dies (Linux),
    or at once if it already has; and SIGINT and SIGTERM unblocked, since the worker's
    thread blocks SIGINT and a child inherits the blocked set."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def _wait(proc) -> int:
    """proc's exit code. A poll loop, not proc.wait(): Ray's cancel interrupts Python code,
    not a blocking waitpid."""
    while proc.poll() is None:
        time.sleep(POLL_S)
    return proc.returncode


def trial_slots(cores: int, cpus: int) -> int:
    """The --device-slots of a CPU trial that Ray reserved `cpus` of a node's `cores` for:
    the trainer takes cores // slots threads (placement.cpu_threads), so the slots are rounded
    up to keep that at most cpus (16 cores, 6 CPUs: 5 threads; rounded down it was 8)."""
    return max(1, math.ceil(cores / cpus))


def run_trial(args: list[str], console: str, cpus: int, gpu: bool) -> int:
    """The Ray task: the trainer with args, its output appended to console; the trainer's
    exit code. A trial without a GPU of Ray's sees none; one on the CPU divides the node's
    cores so that it uses at most the `cpus` threads Ray reserved for it."""
    # ray.cancel raises KeyboardInterrupt through the SIGINT handler; a worker that inherited
    # SIGINT ignored (a `ray start` from a nohup'd shell) would never see the cancel.
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    slots = trial_slots(os.cpu_count() or 1, cpus)
    env = None if gpu else {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    parent = os.getpid()
    proc = launch_trainer([*args, "--no-device-lock", "--device-slots", str(slots)], Path(console),
                          preexec_fn=lambda: _die_with_parent(parent), env=env)
    try:
        return _wait(proc)
    except KeyboardInterrupt:  # cancelled: the trainer finishes its step, saves last.pt, says stopped
        proc.send_signal(signal.SIGTERM)
        while True:
            try:
                return _wait(proc)
            except KeyboardInterrupt:  # cancelled again: it is stopping already
                continue


class RayTrial:
    """One trial's task as the sweep watches it: poll() and send_signal() as a Popen's."""

    def __init__(self, ref: ray.ObjectRef):
        self.ref = ref
        self.returncode: int | None = None
        self.problem: str | None = None  # what Ray says went wrong, in one line

    def poll(self) -> int | None:
        if self.returncode is None and ray.wait([self.ref], timeout=0)[0]:
            try:
                self.returncode = ray.get(self.ref)
            except TaskCancelledError:
                self.returncode, self.problem = -signal.SIGTERM, "cancelled"
            except RayError as e:  # its worker or node died, or the task could not run at all
                self.returncode, self.problem = -1, f"Ray: {type(e).__name__}: {_first_line(e)}"
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Any signal cancels: a task not started yet is dropped, a running one stops its trainer."""
        ray.cancel(self.ref)


def _first_line(error: Exception) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return lines[0][:300] if lines else ""


class RayExecutor:
    """Trials as Ray tasks: one GPU each for a run on CUDA (``--device cuda``, or ``auto``
    on a cluster with GPUs), else ``cpus_per_trial`` CPUs. Without an address it starts a
    Ray of its own on this machine, gone when the sweep ends; with one it joins that
    cluster and leaves it running."""

    name = "ray"

    def __init__(self, record: dict):
        self.record = record
        self.address = record.get("address")
        self.cpus = record.get("cpus_per_trial") or 1
        self.gpus = 0  # the cluster's, once connected
        self.task = ray.remote(max_retries=0)(run_trial)

    def __enter__(self) -> "RayExecutor":
        # A local Ray's daemons are started with SIGINT ignored: a Ctrl-C in the terminal
        # reaches the whole process group, and must stop the sweep (which cancels its tasks),
        # not them. (Its workers lead their own process groups, and trials with them.)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if self.address:
                ray.init(address=self.address)
            else:  # "local": a new Ray even where RAY_ADDRESS or a running cluster would be found
                ray.init(address="local", num_cpus=usable_cores(), include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ExecutorError(f"cannot {'reach the Ray cluster at ' + self.address if self.address else 'start Ray'}"
                                f": {_first_line(e)}") from None
        finally:
            signal.signal(signal.SIGINT, previous)
        self.gpus = int(ray.cluster_resources().get("GPU", 0))
        return self

    def __exit__(self, *exc) -> None:
        ray.shutdown()  # a Ray of our own stops with its workers; a cluster is only left

    def wants_gpu(self, device: str) -> bool:
        return device.startswith("cuda") or (device == "auto" and self.gpus > 0)

    def prepare(self, devices: list[str]) -> None:
        """Check that the cluster can run these trials (each point's device spec), and set
        a new sweep's default parallel: as many trials as the cluster holds at once."""
        if any(d.startswith("cuda") for d in devices) and not self.gpus:
            raise ExecutorError("device cuda asked for, but the Ray cluster has no GPU")
        if self.record["parallel"] is None:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            gpu_trials = any(self.wants_gpu(d) for d in devices)
            cpu_trials = not all(self.wants_gpu(d) for d in devices)
            parallel = max(1, (self.gpus if gpu_trials else 0) + (cpus // self.cpus if cpu_trials else 0))
            # device_slots: only for a resume with --executor local, where runs may share a device
            self.record.update(parallel=parallel, device_slots=parallel)

    def start(self, args: list[str], console: Path, device: str) -> RayTrial:
        gpu = self.wants_gpu(device)
        task = self.task.options(num_gpus=1, num_cpus=1) if gpu else self.task.options(num_cpus=self.cpus)
        return RayTrial(task.remote(args, str(console), 1 if gpu else self.cpus, gpu))
