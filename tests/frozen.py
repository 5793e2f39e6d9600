"""Trainers frozen with SIGSTOP so that a test's stop or kill lands mid-run however fast the
machine: a run then needs only a few epochs (not tens to outlast the test's reaction)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def freeze(pids) -> None:
    """SIGSTOP each, and return once each is stopped: a signal sent before the stop took
    effect could still be handled (measured: then no signal stays pending to wait on)."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    for pid in pids:
        while Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "T":
            time.sleep(0.01)


def thaw(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def pending_signals(pid: int) -> int:
    """The signals waiting for pid (a frozen trainer): its and its process's pending sets."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int([ln for ln in lines if ln.startswith("SigPnd:")][0].split()[1], 16) | int(
        [ln for ln in lines if ln.startswith("ShdPnd:")][0].split()[1], 16)


def sigterm_pending(pid: int) -> bool:
    return bool(pending_signals(pid) & 1 << (signal.SIGTERM - 1))
