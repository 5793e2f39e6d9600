"""Sweep records (``<runs-dir>/.sweeps/<name>.json``, format: runs/sweep_format.py):
where they live, the one-writer claim, and reading that never raises (what a record may
hold: runs.sweep_checks)."""

from __future__ import annotations

import errno
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .layout import CRASHED, FAILED_TO_START, UNREADABLE, RunFolderError, safe_name
from .processes import process_alive
from .console_log import last_output_line
from .files import read_json_object
from .reading import read_run
from .run_info import RunInfo
from .sweep_checks import TrainingOptions, record_problem
from .values import as_float
from .writing import exclusive_claim

SWEEP_MODULE = "resnet_core.sweep"
SWEEPS_DIR = ".sweeps"  # a dot folder: list_runs and the run listings skip it
# How a point's state counts in SweepInfo.counts (see SweepPoint.state).
POINT_CATEGORIES = {"completed": "done", "running": "running", "starting": "running", "queued": "queued",
                    "pending": "pending", "stopped": "stopped", "failed": "failed", "diverged": "failed",
                    CRASHED: "failed", UNREADABLE: "failed", FAILED_TO_START: "failed",
                    "pruned": "done"}  # a search's trial its pruner stopped: finished, never resumed
CATEGORIES = ("done", "running", "queued", "pending", "stopped", "failed")


def sweep_path(runs_dir: Path, name: str, suffix: str = ".json") -> Path:
    """The sweep's record (.json), its lock (.lock) or the console log of a sweep the
    dashboard launched (.log)."""
    return Path(runs_dir) / SWEEPS_DIR / f"{name}{suffix}"


def sweeps_folder(runs_dir: Path) -> Path:
    """<runs-dir>/.sweeps, made if missing, to write a sweep's files in; OSError where it is
    a symbolic link (as a run folder, it is never written through one: the lock, record and
    log would land wherever it points)."""
    folder = Path(runs_dir) / SWEEPS_DIR
    if folder.is_symlink():
        raise OSError(errno.ELOOP, "a symbolic link: sweep files are never written through one", str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class SweepBusy(Exception):
    """Another sweep process already runs this sweep."""


def claim_sweep(runs_dir: Path, name: str) -> int:
    """Become the one writer of a sweep record: an exclusive flock on ``<name>.lock``, held
    until :func:`release_sweep` (or the end of the process). A lock file beside the record,
    since the record itself is replaced on every write and a flock stays with the old file."""
    path = sweeps_folder(runs_dir) / sweep_path(runs_dir, name, ".lock").name
    while True:
        fd = exclusive_claim(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644),
                             SweepBusy(f"sweep {name} is being run by another sweep process"))
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False)):
                return fd
        except FileNotFoundError:
            pass
        # A release removed the file between our open and our flock: claim the one at the path.
        os.close(fd)


def release_sweep(runs_dir: Path, name: str, fd: int) -> None:
    """End a claim_sweep claim and remove its lock file (still held while it is removed, so
    a claimer that opened it meanwhile notices and claims the next one): a sweep process,
    or a refused one, leaves no file of its own behind."""
    try:
        sweep_path(runs_dir, name, ".lock").unlink()
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


@dataclass
class SweepPoint:
    """One point of the grid: its values and, once launched, its run."""

    values: dict
    run_dir: Path | None  # None: not launched yet
    run: RunInfo | None  # None: not launched, or its trainer has written neither status.json nor config.json (yet)
    sweep_alive: bool = False  # the sweep process runs: a launched point without a run is still starting
    start_failure: str | None = None  # recorded by the sweep: its trainer ended before writing its run, and why
    trial: int | None = None  # a search's point: its Optuna trial number
    pruned: bool = False  # a search's point its pruner stopped (its run folder says stopped)

    @property
    def state(self) -> str:
        """The run's state (runs.read_run), "pruned" for a search's trial its pruner stopped;
        before its folder holds status.json or config.json "pending" (not launched),
        "starting" (launched by a live sweep that has not seen its trainer end) or "failed
        to start"."""
        if self.pruned and self.run is not None and not self.run.is_active:
            return "pruned"
        if self.run is not None:
            return self.run.state
        if self.run_dir is None:
            return "pending"
        return "starting" if self.sweep_alive and self.start_failure is None else FAILED_TO_START

    @property
    def category(self) -> str:
        """One of CATEGORIES: done, running, queued, pending, stopped or failed."""
        return POINT_CATEGORIES.get(self.state, "failed")

    @property
    def error(self) -> str:
        """Why the point did not complete, in one line ("" when nothing says)."""
        if self.run is not None:
            return str(self.run.problem or self.run.status.get("error") or self.run.warning or "")
        if self.run_dir is None:
            return "not launched"
        # The trainer refused, or died, before writing status.json or config.json: its last words.
        reason = self.start_failure or last_output_line(self.run_dir)
        return self.state + (f": {reason}" if reason else "")

    @property
    def seconds(self) -> float | None:
        """Training time of a completed run (all sessions), else None."""
        status = self.run.status if self.run is not None else {}
        start, end = as_float(status.get("started_at")), as_float(status.get("finished_at"))
        if self.state != "completed" or start is None or end is None:
            return None
        return end - start + as_float(status.get("elapsed_before_s"), 0.0)


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
        """The fields varied by values, and their values, in grid order."""
        return {v["field"]: v["values"] for v in self.record.get("vary", [])}

    @property
    def ranges(self) -> dict[str, dict]:
        """A search's fields varied by a range: {field: {field, low, high, log}}; {} for a grid."""
        return {r["field"]: r for r in self.record.get("ranges", [])}

    @property
    def search(self) -> dict | None:
        """A search's kind, trials, seed, objective, prune, storage and study; None for a grid."""
        return self.record.get("search")

    @property
    def budget(self) -> int:
        """Runs the sweep trains: its grid's points, or a search's trials."""
        return self.search["trials"] if self.search else len(self.points)

    @property
    def group_by(self) -> list[str]:
        """The varied fields that make a configuration: all but the seed."""
        return [name for name in [*self.vary, *self.ranges] if name != "seed"]

    @property
    def parallel(self) -> int:
        return self.record.get("parallel", 1)

    @property
    def runs(self) -> list[RunInfo]:
        return [p.run for p in self.points if p.run is not None]

    @property
    def resume_problem(self) -> str | None:
        """Why the sweep cannot be resumed now, in one line; None when it can."""
        if self.problem:
            return self.problem
        if self.alive:
            return f"it is still running (pid {self.record['pid']})"
        if self.state == "completed":
            return "every run completed"
        return None

    @property
    def counts(self) -> dict[str, int]:
        """Points per category: done, running, queued, pending, stopped, failed (all present)."""
        found = Counter(p.category for p in self.points)
        if self.search:  # a search's trials not asked yet
            found["pending"] += max(0, self.search["trials"] - len(self.points))
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


def read_sweep(runs_dir: Path, name: str, options: TrainingOptions) -> SweepInfo | None:
    """The sweep of this name, or None when it has no record; options: the trainer's
    (resnet_core.sweep_options.RECORD_OPTIONS). Never raises for what the record holds: a
    bad one comes back in state ``unreadable`` with ``problem`` set."""
    if not name or safe_name(name) != name:  # never a path
        return None
    runs_dir = Path(runs_dir)
    path = sweep_path(runs_dir, name)
    try:
        record = read_json_object(path.parent, path.name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except RunFolderError as e:
        return SweepInfo(name=name, path=path, state="unreadable", problem=str(e))
    problem = record_problem(record, name, options)
    if problem:
        return SweepInfo(name=name, path=path, state="unreadable", problem=f"{path.name}: {problem}")
    alive = process_alive(record.get("pid"), record.get("pid_start"), SWEEP_MODULE)
    points = []
    for p in record["points"]:
        run_dir = runs_dir / p["run"] if p.get("run") else None
        points.append(SweepPoint(values=p["values"], run_dir=run_dir,
                                 run=read_run(run_dir) if run_dir is not None else None, sweep_alive=alive,
                                 start_failure=p.get("start_failure"), trial=p.get("trial"),
                                 pruned=p.get("pruned", False)))
    state = "crashed" if record["state"] == "running" and not alive else record["state"]
    return SweepInfo(name=name, path=path, state=state, record=record, points=points, alive=alive)


def list_sweeps(runs_dir: Path, options: TrainingOptions) -> list[SweepInfo]:
    """Every sweep under runs_dir, newest first, unreadable ones included; options as for
    read_sweep."""
    try:
        names = [p.stem for p in (Path(runs_dir) / SWEEPS_DIR).glob("*.json")]
    except OSError:
        return []
    infos = [i for i in (read_sweep(runs_dir, n, options) for n in names) if i is not None]
    return sorted(infos, key=lambda i: (as_float(i.record.get("created_at"), 0.0), i.name), reverse=True)


def pruned_run_ids(runs_dir: Path) -> set[str]:
    """The runs a search's pruner stopped, from every sweep record's points (``pruned``):
    their own status.json says stopped. A record that cannot be read adds none."""
    pruned: set[str] = set()
    for path in sorted((Path(runs_dir) / SWEEPS_DIR).glob("*.json")):
        try:
            points = read_json_object(path.parent, path.name).get("points")
        except (OSError, RunFolderError):
            continue
        if isinstance(points, list):
            pruned.update(p["run"] for p in points
                          if isinstance(p, dict) and p.get("pruned") is True and isinstance(p.get("run"), str))
    return pruned
