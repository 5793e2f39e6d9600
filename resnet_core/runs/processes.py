"""Whether the trainer a status.json names still runs (pid, zombie and start-time checks),
and how it is asked to stop."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from typing import Any, Mapping

import psutil

from .layout import (
    HEARTBEAT_S,
    STALE_S,
    TRAINER_MODULE,
)
from .values import as_float, is_int, is_pid


def this_host() -> str:
    """This machine's name, as status.json's ``host`` records it."""
    return socket.gethostname()


def remote_host(status: Mapping) -> str | None:
    """The machine a status.json's trainer runs on when that is not this one, else None
    (also for records without ``host``, written before it existed: those are local)."""
    host = status.get("host")
    return host if isinstance(host, str) and host and host != this_host() else None


# The clock ticks a second of the kernel's start times (Linux: field 22 of /proc/<pid>/stat).
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_start_time(pid: Any) -> int | None:
    """When a process started, as the kernel reports it (Linux: field 22 of /proc/<pid>/stat,
    clock ticks since boot), or None where unknown (not Linux: status.json's pid_start is
    null there). Together with the pid it names one process: a later process that reuses
    the pid has another start time.

    psutil gives the start time in seconds since the epoch: the kernel's ticks divided by
    the ticks a second, plus the boot time of /proc/stat. Turned back into ticks, it is the
    very value earlier versions read from /proc, so run folders they wrote still match;
    read again if the boot time moved meanwhile (a step of the clock)."""
    if not is_pid(pid) or not sys.platform.startswith("linux"):
        return None
    for _ in range(3):
        try:
            boot = psutil.boot_time()
            created = psutil.Process(pid).create_time()
            if psutil.boot_time() == boot:
                return round((created - boot) * _CLOCK_TICKS)
        except (psutil.Error, OSError):
            return None
    return None


def pid_alive(pid: Any) -> bool:
    """True if a process with this pid runs and is not a zombie (an exited child of ours).
    Anything but a plausible pid (a string, a bool, 0, a negative or huge number) is not alive."""
    if not is_pid(pid):
        return False
    try:
        # Reap it if it is our own exited child; otherwise this raises ChildProcessError.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except (psutil.AccessDenied, OSError):  # another user's process: it runs
        return True


def _command_line(pid: int) -> str:
    """The arguments of pid joined by NULs; "" when they cannot be read."""
    try:
        return "\0".join(psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        return ""


def process_alive(pid: Any, pid_start: Any, module: str) -> bool:
    """True if the process a record names (pid, pid_start) still runs.

    The pid must be alive and not a zombie; on Linux, the process must also have the
    recorded start time, or, where none is recorded (and on systems without kernel start
    times, such as macOS), have ``python -m module`` on its command line. A pid the system
    gave to another process after the recorded one died therefore never makes a record
    look alive.
    """
    if not pid_alive(pid):
        return False
    if is_int(pid_start) and sys.platform.startswith("linux"):
        return process_start_time(pid) == pid_start
    return module in _command_line(pid)


def heartbeat_skew(status: Mapping, now: float | None = None) -> float | None:
    """Seconds by which status.json's ``updated_at`` is ahead of this clock, when it is more
    than a heartbeat ahead (the writer's clock is ahead of ours: clock skew); else None."""
    updated = as_float(status.get("updated_at"))
    ahead = None if updated is None else updated - (time.time() if now is None else now)
    return ahead if ahead is not None and ahead > HEARTBEAT_S else None


# Heartbeats from the future this process has seen: (host, pid) -> (updated_at, first seen).
_FUTURE_BEATS: dict[tuple, tuple[float, float]] = {}


def _first_seen(status: Mapping, updated: float, now: float) -> float:
    """When this process first saw this heartbeat (now, the first time): a trainer that still
    runs rewrites it within HEARTBEAT_S, so one seen unchanged for STALE_S is gone."""
    key = (str(status.get("host")), repr(status.get("pid")))
    seen = _FUTURE_BEATS.get(key)
    if seen is None or seen[0] != updated:
        seen = _FUTURE_BEATS[key] = (updated, now)
    return seen[1]


def trainer_alive(status: Mapping, now: float | None = None, written_at: float | None = None) -> bool:
    """True if the trainer that status.json names (``pid``, ``pid_start``; format 1 has no
    ``pid_start``) still runs: see :func:`process_alive`. A trainer on another machine
    counts as running while it rewrote status.json within STALE_S (its heartbeat).

    A heartbeat from the future (see :func:`heartbeat_skew`) says nothing about its age:
    it is then as old as written_at says (status.json's mtime, when not in the future
    too), else as the time since this process first saw it, so that it goes stale after
    STALE_S as any other instead of pinning the run as running until that time comes."""
    if remote_host(status) is not None:
        now = time.time() if now is None else now
        updated = as_float(status.get("updated_at"))
        if updated is None:
            return False
        if heartbeat_skew(status, now) is not None:
            updated = written_at if written_at is not None and written_at <= now else _first_seen(status, updated, now)
        return now - updated < STALE_S
    return process_alive(status.get("pid"), status.get("pid_start"), TRAINER_MODULE)


def signal_trainer(status: Mapping, sig: int = signal.SIGTERM) -> bool:
    """Send sig to the trainer status.json names, only if it still runs (trainer_alive:
    never to a process that got a dead trainer's pid); False when nothing was signalled.

    A trainer that leads its own session (one the dashboard or a sweep launched with
    start_new_session) gets the signal with its whole process group, any helper processes
    included; any other (started from a terminal, maybe inside a pipeline such as
    ``... | tee log``, whose group it may lead together with tee) gets it alone, so that
    the rest of its pipeline lives on and passes the trainer's last lines along.
    """
    if remote_host(status) is not None or not trainer_alive(status):  # another machine's pids are not ours
        return False
    pid = status["pid"]
    try:
        if os.getsid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):  # gone meanwhile, or another user's trainer
        return False
    return True
