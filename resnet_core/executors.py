"""Where a sweep's trainers run: as children of the sweep process (``local``) or in Ray
tasks (``ray``, resnet_core.ray_executor); a record names one of runs.EXECUTORS.

Both start the same trainer command the same way (:func:`launch_trainer`). This module
imports neither torch nor Ray: the dashboard asks it whether Ray is installed, and a Ray
task imports it to start its trainer. Only a sweep run with ``--executor ray`` imports Ray.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from . import runs

RAY_MISSING = "--executor ray needs Ray, which is not installed: pip install -r requirements-cluster.txt"


class ExecutorError(Exception):
    """The executor cannot run this sweep (Ray unreachable, no GPU in the cluster...): one
    line, exit code 2, like the sweep's other refusals."""


def ray_installed() -> bool:
    """Whether Ray can be imported, found without importing it (that takes seconds)."""
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def launch_trainer(args: list[str], console: Path, **popen) -> subprocess.Popen:
    """``python -m resnet_core.train ARGS``, its stdout and stderr appended to console (the
    run folder's console.log); popen: more Popen arguments (the Ray task's preexec_fn, env)."""
    with runs.open_for_append(console) as out:
        return subprocess.Popen([sys.executable, "-m", runs.TRAINER_MODULE, *args], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, **popen)


class LocalExecutor:
    """Trainers as children of the sweep process. Each takes a free device itself, through
    the runs folder's device locks (resnet_core.placement), one of the record's
    ``device_slots`` per device."""

    name = "local"

    def __init__(self, record: dict):
        self.record = record

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def prepare(self, devices: list[str]) -> None:
        """Nothing to check: the sweep's own checks saw this machine's devices."""

    def start(self, args: list[str], console: Path, device: str) -> subprocess.Popen:
        return launch_trainer([*args, "--device-slots", str(self.record["device_slots"])], console)
