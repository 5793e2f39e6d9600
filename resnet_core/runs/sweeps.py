"""Sweep records (``<runs-dir>/.sweeps/<name>.json``, format in the package docstring):
the one-writer claim, and reading that never raises."""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .layout import CONSOLE_FILE, RunFolderError, safe_name
from .processes import _is_int, _is_pid, process_alive
from .reading import RunInfo, _kind, _read_json_object, open_run_file, read_run
from .writing import exclusive_claim

SWEEP_MODULE = "resnet_core.sweep"
SWEEPS_DIR = ".sweeps"  # a dot folder: list_runs and the run listings skip it
SWEEP_FORMAT_VERSION = 1
SWEEP_STATES = ("running", "completed", "failed", "stopped")
# How a point's state counts in SweepInfo.counts (see SweepPoint.state).
POINT_CATEGORIES = {"completed": "done", "running": "running", "starting": "running", "queued": "queued",
                    "pending": "pending", "stopped": "stopped", "failed": "failed", "diverged": "failed",
                    "crashed": "failed", "unreadable": "failed", "failed to start": "failed"}
CATEGORIES = ("done", "running", "queued", "pending", "stopped", "failed")


def sweep_path(runs_dir: Path, name: str, suffix: str = ".json") -> Path:
    """The sweep's record (.json), its lock (.lock) or the console log of a sweep the
    dashboard launched (.log)."""
    return Path(runs_dir) / SWEEPS_DIR / f"{name}{suffix}"


class SweepBusy(Exception):
    """Another sweep process already runs this sweep."""


def claim_sweep(runs_dir: Path, name: str) -> int:
    """Become the one writer of a sweep record: an exclusive flock on ``<name>.lock``, held
    until the descriptor is closed or the process ends. A lock file beside the record,
    since the record itself is replaced on every write and a flock stays with the old file."""
    path = sweep_path(runs_dir, name, ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    return exclusive_claim(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644),
                           SweepBusy(f"sweep {name} is being run by another sweep process"))


@dataclass
class SweepPoint:
    """One point of the grid: its values and, once launched, its run."""

    values: dict
    run_dir: Path | None  # None: not launched yet
    run: RunInfo | None  # None: not launched, or its trainer has not written config.json (yet)
    sweep_alive: bool = False  # the sweep process runs: a launched point without a run is still starting

    @property
    def state(self) -> str:
        """The run's state (runs.read_run); before its config.json exists "pending" (not
        launched), "starting" (launched by a live sweep) or "failed to start"."""
        if self.run is not None:
            return self.run.state
        if self.run_dir is None:
            return "pending"
        return "starting" if self.sweep_alive else "failed to start"

    @property
    def category(self) -> str:
        """One of CATEGORIES: done, running, queued, pending, stopped or failed."""
        return POINT_CATEGORIES.get(self.state, "failed")

    @property
    def error(self) -> str:
        """Why the point did not complete, in one line ("" when nothing says)."""
        if self.run is not None:
            return str(self.run.problem or self.run.status.get("error") or "")
        if self.run_dir is None:
            return "not launched"
        try:  # the trainer refused, or died, before writing config.json: its last words
            with open_run_file(self.run_dir, CONSOLE_FILE) as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
                lines = f.read().decode("utf-8", "replace").strip().splitlines()
        except (OSError, RunFolderError):
            lines = []
        return self.state + (f": {lines[-1]}" if lines else "")

    @property
    def seconds(self) -> float | None:
        """Training time of a completed run (all sessions), else None."""
        status = self.run.status if self.run is not None else {}
        start, end = status.get("started_at"), status.get("finished_at")
        if self.state != "completed" or not all(_number(v) for v in (start, end)):
            return None
        return end - start + (_number(status.get("elapsed_before_s")) or 0.0)


@dataclass
class SweepInfo:
    """What a reader knows about one sweep: the record, each point's run, the process."""

    name: str
    path: Path  # the record
    state: str  # a written state; "crashed" when "running" but the sweep process is gone; "unreadable"
    record: dict = field(default_factory=dict)  # {} when unreadable
    points: list[SweepPoint] = field(default_factory=list)
    alive: bool = False  # the recorded sweep process runs (pid and pid_start checked)
    problem: str | None = None  # why the record is unreadable (one line), else None

    @property
    def vary(self) -> dict[str, list]:
        """The varied fields and their values, in grid order."""
        return {v["field"]: v["values"] for v in self.record.get("vary", [])}

    @property
    def group_by(self) -> list[str]:
        """The varied fields that make a configuration: all but the seed."""
        return [name for name in self.vary if name != "seed"]

    @property
    def parallel(self) -> int:
        return self.record.get("parallel", 1)

    @property
    def runs(self) -> list[RunInfo]:
        return [p.run for p in self.points if p.run is not None]

    @property
    def counts(self) -> dict[str, int]:
        """Points per category: done, running, queued, pending, stopped, failed (all present)."""
        found = Counter(p.category for p in self.points)
        return {c: found[c] for c in CATEGORIES}

    @property
    def eta_s(self) -> float | None:
        """Seconds until every point has run, roughly: the completed runs' mean time for
        each remaining wave of ``parallel`` runs; None before any run completed."""
        times = [s for s in (p.seconds for p in self.points) if s is not None]
        if not times:
            return None
        counts = self.counts
        remaining = counts["running"] + counts["queued"] + counts["pending"]
        return sum(times) / len(times) * math.ceil(remaining / self.parallel)


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _record_problem(record: dict, name: str) -> str | None:
    """What makes a record unreadable, in one line, or None."""
    if record.get("format_version") != SWEEP_FORMAT_VERSION:
        return f"format_version {record.get('format_version')!r} is not {SWEEP_FORMAT_VERSION}"
    if record.get("name") != name:
        return f"name {record.get('name')!r} is not the file's name"
    if record.get("state") not in SWEEP_STATES:
        return f"state {record.get('state')!r} is not a sweep state"
    if not (_is_int(record.get("parallel")) and record["parallel"] >= 1):
        return f"parallel {record.get('parallel')!r} is not a count"
    if record.get("pid") is not None and not _is_pid(record["pid"]):
        return f"pid {record['pid']!r} is not a process id"
    vary = record.get("vary")
    if not (isinstance(vary, list) and all(isinstance(v, dict) and isinstance(v.get("field"), str)
                                           and isinstance(v.get("values"), list) for v in vary)):
        return f"vary is {_kind(vary)}, not a list of {{field, values}}"
    points = record.get("points")
    if not (isinstance(points, list) and all(isinstance(p, dict) and isinstance(p.get("values"), dict)
                                             for p in points)):
        return f"points is {_kind(points)}, not a list of {{values, run}}"
    for p in points:
        run = p.get("run")
        if run is not None and not (isinstance(run, str) and run and safe_name(run, max_len=len(run)) == run):
            return f"point run {run!r} is not a run folder name"
    return None


def read_sweep(runs_dir: Path, name: str) -> SweepInfo | None:
    """The sweep of this name, or None when it has no record. Never raises for what the
    record holds: a bad one comes back in state ``unreadable`` with ``problem`` set."""
    if not name or safe_name(name) != name:  # never a path
        return None
    runs_dir = Path(runs_dir)
    path = sweep_path(runs_dir, name)
    try:
        record = _read_json_object(path.parent, path.name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except RunFolderError as e:
        return SweepInfo(name=name, path=path, state="unreadable", problem=str(e))
    problem = _record_problem(record, name)
    if problem:
        return SweepInfo(name=name, path=path, state="unreadable", problem=f"{path.name}: {problem}")
    alive = process_alive(record.get("pid"), record.get("pid_start"), SWEEP_MODULE)
    points = []
    for p in record["points"]:
        run_dir = runs_dir / p["run"] if p.get("run") else None
        points.append(SweepPoint(values=p["values"], run_dir=run_dir,
                                 run=read_run(run_dir) if run_dir is not None else None, sweep_alive=alive))
    state = "crashed" if record["state"] == "running" and not alive else record["state"]
    return SweepInfo(name=name, path=path, state=state, record=record, points=points, alive=alive)


def list_sweeps(runs_dir: Path) -> list[SweepInfo]:
    """Every sweep under runs_dir, newest first, unreadable ones included."""
    try:
        names = [p.stem for p in (Path(runs_dir) / SWEEPS_DIR).glob("*.json")]
    except OSError:
        return []
    infos = [i for i in (read_sweep(runs_dir, n) for n in names) if i is not None]
    return sorted(infos, key=lambda i: (_number(i.record.get("created_at")) or 0, i.name), reverse=True)
