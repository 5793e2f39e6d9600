"""Sweep records (``<runs-dir>/.sweeps/<name>.json``, format in the package docstring):
the one-writer claim, and reading that never raises."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import itertools
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .layout import CRASHED, FAILED_TO_START, UNREADABLE, RunFolderError, safe_name
from .processes import process_alive
from .reading import RunInfo, _kind, last_output_line, read_json_object, read_run
from .values import MAX_COUNT, as_count, as_float, as_int, is_int, is_pid, quoted
from .writing import exclusive_claim

SWEEP_MODULE = "resnet_core.sweep"
SWEEPS_DIR = ".sweeps"  # a dot folder: list_runs and the run listings skip it
SWEEP_FORMAT_VERSION = 1
SWEEP_STATES = ("running", "completed", "failed", "stopped")
# How a point's state counts in SweepInfo.counts (see SweepPoint.state).
POINT_CATEGORIES = {"completed": "done", "running": "running", "starting": "running", "queued": "queued",
                    "pending": "pending", "stopped": "stopped", "failed": "failed", "diverged": "failed",
                    CRASHED: "failed", UNREADABLE: "failed", FAILED_TO_START: "failed"}
CATEGORIES = ("done", "running", "queued", "pending", "stopped", "failed")
# What a grid cannot vary, and why.
FIXED = {"name": "each run is named after its values", "sweep": "every run belongs to this sweep",
         "runs_dir": "the sweep's record and runs live in one runs folder"}
POINT_KEYS = ("values", "run", "start_failure")
START_FAILURE_CHARS = 500  # of a trainer's last console line kept in the record: a line, not a log


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

    @property
    def state(self) -> str:
        """The run's state (runs.read_run); before its folder holds status.json or config.json
        "pending" (not launched), "starting" (launched by a live sweep that has not seen its
        trainer end) or "failed to start"."""
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


def grid(vary: dict[str, list]) -> list[dict]:
    """Every combination of the values, the first field varying slowest."""
    return [dict(zip(vary, combo, strict=True)) for combo in itertools.product(*vary.values())]


def _option_fields() -> dict[str, dataclasses.Field]:
    from ..config import TrainConfig  # here: config imports runs

    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def _value_problem(f: dataclasses.Field, value: Any) -> str | None:
    """Why value cannot be a grid's value of training option f, or None. Numbers must be
    in range (integers within MAX_COUNT, floats finite); whether the trainer accepts the
    whole configuration is its own check, which a point that fails to start reports."""
    shown = f"{f.name} {quoted(value)}"
    if f.type == "int":
        if not is_int(value):
            return f"{shown} is not a whole number"
        if as_int(value, -MAX_COUNT, MAX_COUNT) is None:
            return f"{shown} is out of range"
    elif f.type == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{shown} is not a number"
        if as_float(value) is None:
            return f"{shown} is not a finite number"
    elif f.type in ("bool", "bool | None"):
        if not (isinstance(value, bool) or (value is None and f.type == "bool | None")):
            return f"{shown} is not true or false"
    elif f.type in ("str", "str | None"):
        if not (isinstance(value, str) or (value is None and f.type == "str | None")):
            return f"{shown} is not text"
        if value is not None and "\0" in value:
            return f"{f.name} holds a NUL character"
        if f.metadata["choices"] and value not in f.metadata["choices"]:
            return f"{shown} is not one of {', '.join(f.metadata['choices'])}"
    else:  # a list-valued option
        return f"{f.name} cannot be varied (it is a list)"
    return None


class _UsageError(Exception):
    pass


class _OptionParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise _UsageError(message)


def _argv_problem(argv: Any) -> str | None:
    """Why the record's argv is not a list of training options the trainer takes, or None."""
    if not isinstance(argv, list):
        return f"argv is {_kind(argv)}, not a list of strings"
    odd = next((a for a in argv if not isinstance(a, str)), "")
    if not isinstance(odd, str):
        return f"argv holds {_kind(odd)}, not only strings"
    if any("\0" in a for a in argv):  # no command line can carry one
        return "argv holds a NUL character"
    from ..config_flags import add_config_arguments  # here: config imports runs

    parser = _OptionParser(add_help=False, allow_abbrev=False)
    add_config_arguments(parser)
    try:
        parser.parse_args(argv)
    except _UsageError as e:
        return f"argv: {str(e)[:200]}"
    return None


def _vary_problem(vary: Any, options: dict[str, dataclasses.Field]) -> str | None:
    if not (isinstance(vary, list) and all(isinstance(v, dict) and set(v) == {"field", "values"}
                                           and isinstance(v["field"], str) and isinstance(v["values"], list)
                                           for v in vary)):
        return f"vary is {_kind(vary)}, not a list of {{field, values}}"
    seen_fields = set()
    for v in vary:
        name = v["field"]
        if name not in options:
            return f"vary: {quoted(name)[1:-1]} is not a training option"
        if name in FIXED:
            return f"vary: {name} cannot be varied ({FIXED[name]})"
        if name in seen_fields:
            return f"vary: {name} is varied twice"
        seen_fields.add(name)
        if not v["values"]:
            return f"vary: {name} has no values"
        seen_values = set()  # the grid's values are scalars: hashable, and equal ones hash alike
        for value in v["values"]:
            problem = _value_problem(options[name], value)
            if problem:
                return f"vary: {problem}"
            if value in seen_values:
                return f"vary: {name} holds {quoted(value)} twice"
            seen_values.add(value)
    return None


def _points_problem(points: Any, vary: dict[str, list], options: dict[str, dataclasses.Field]) -> str | None:
    if not isinstance(points, list):
        return f"points is {_kind(points)}, not a list of {{values, run}}"
    size = math.prod(len(values) for values in vary.values())  # never built before it matches
    if size != len(points):
        return f"{len(points)} points, but vary makes a grid of {size:,}"
    runs: dict[str, int] = {}
    for i, (p, combination) in enumerate(zip(points, itertools.product(*vary.values()), strict=True), 1):
        if not isinstance(p, dict):
            return f"point {i} is {_kind(p)}, not an object"
        extra = next((k for k in p if k not in POINT_KEYS), None)
        if extra is not None:
            return f"point {i}: {quoted(extra)[1:-1]} is not a point field"
        if not isinstance(p.get("values"), dict):
            return f"point {i}: values is {_kind(p.get('values'))}, not an object"
        for name, value in p["values"].items():
            problem = (f"{quoted(name)[1:-1]} is not a training option" if name not in options
                       else _value_problem(options[name], value))
            if problem:
                return f"point {i}: {problem}"
        if p["values"] != dict(zip(vary, combination, strict=True)):
            return f"point {i}: its values are not combination {i} of vary's grid"
        run = p.get("run")
        if run is not None and not (isinstance(run, str) and run and safe_name(run, max_len=len(run)) == run):
            return f"point {i}: run {quoted(run)} is not a run folder name"
        if run is not None and run in runs:
            return f"points {runs[run]} and {i} both name run {run}"
        runs[run] = i
        failure = p.get("start_failure")
        if failure is not None and not (isinstance(failure, str) and failure.strip() and "\n" not in failure
                                        and len(failure) <= START_FAILURE_CHARS):
            return f"point {i}: start_failure {quoted(failure)} is not one line of up to {START_FAILURE_CHARS}"
    return None


def record_problem(record: dict, name: str) -> str | None:
    """What keeps a sweep record from being shown, reported or resumed, in one line naming
    the field (and the point, counted from 1); None for a record this format allows. Each
    point holds known training options only, of their type, in range, exactly vary's grid;
    argv parses as training options; every number is in range."""
    if not (is_int(record.get("format_version")) and record["format_version"] == SWEEP_FORMAT_VERSION):
        return f"format_version {quoted(record.get('format_version'))} is not {SWEEP_FORMAT_VERSION}"
    if record.get("name") != name:
        return f"name {quoted(record.get('name'))} is not the file's name"
    if record.get("state") not in SWEEP_STATES:
        return f"state {quoted(record.get('state'))} is not a sweep state"
    parallel = as_int(record.get("parallel"), 1, MAX_COUNT)
    if parallel is None:
        return f"parallel {quoted(record.get('parallel'))} is not a count"
    if as_int(record.get("device_slots"), 1, parallel) is None:  # each device's slots: at most parallel
        return f"device_slots {quoted(record.get('device_slots'))} is not a count up to parallel"
    if record.get("pid") is not None and not is_pid(record["pid"]):
        return f"pid {quoted(record['pid'])} is not a process id"
    if record.get("pid_start") is not None and as_count(record["pid_start"]) is None:
        return f"pid_start {quoted(record['pid_start'])} is not a start time"
    for key in ("created_at", "finished_at"):
        if record.get(key) is not None and as_float(record[key]) is None:
            return f"{key} {quoted(record[key])} is not a time"
    from ..executors import EXECUTORS  # here: executors imports runs

    if record.get("executor", "local") not in EXECUTORS:
        return f"executor {quoted(record.get('executor'))} is not one of {', '.join(EXECUTORS)}"
    if not isinstance(record.get("address", None), (str, type(None))):
        return f"address {quoted(record['address'])} is not HOST:PORT"
    if record.get("cpus_per_trial") is not None and as_int(record["cpus_per_trial"], 1, MAX_COUNT) is None:
        return f"cpus_per_trial {quoted(record['cpus_per_trial'])} is not a count"
    options = _option_fields()
    problem = _argv_problem(record.get("argv")) or _vary_problem(record.get("vary"), options)
    if problem:
        return problem
    return _points_problem(record.get("points"), {v["field"]: v["values"] for v in record["vary"]}, options)


def read_sweep(runs_dir: Path, name: str) -> SweepInfo | None:
    """The sweep of this name, or None when it has no record. Never raises for what the
    record holds: a bad one comes back in state ``unreadable`` with ``problem`` set."""
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
    problem = record_problem(record, name)
    if problem:
        return SweepInfo(name=name, path=path, state="unreadable", problem=f"{path.name}: {problem}")
    alive = process_alive(record.get("pid"), record.get("pid_start"), SWEEP_MODULE)
    points = []
    for p in record["points"]:
        run_dir = runs_dir / p["run"] if p.get("run") else None
        points.append(SweepPoint(values=p["values"], run_dir=run_dir,
                                 run=read_run(run_dir) if run_dir is not None else None, sweep_alive=alive,
                                 start_failure=p.get("start_failure")))
    state = "crashed" if record["state"] == "running" and not alive else record["state"]
    return SweepInfo(name=name, path=path, state=state, record=record, points=points, alive=alive)


def list_sweeps(runs_dir: Path) -> list[SweepInfo]:
    """Every sweep under runs_dir, newest first, unreadable ones included."""
    try:
        names = [p.stem for p in (Path(runs_dir) / SWEEPS_DIR).glob("*.json")]
    except OSError:
        return []
    infos = [i for i in (read_sweep(runs_dir, n) for n in names) if i is not None]
    return sorted(infos, key=lambda i: (as_float(i.record.get("created_at"), 0.0), i.name), reverse=True)
