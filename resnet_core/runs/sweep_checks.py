"""What a sweep record may hold (format: runs/sweep_format.py): :func:`record_problem`
says, in one line, why a record is not this format. Its training options are the trainer's,
which live above the run format (imports run one way, down to runs/): the core hands them in
as :class:`TrainingOptions` (resnet_core.sweep_options.RECORD_OPTIONS)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .layout import safe_name
from .files import entry_kind
from .values import MAX_COUNT, as_count, as_float, as_int, is_int, is_pid, quoted

SWEEP_FORMAT_VERSION = 1
SWEEP_STATES = ("running", "completed", "failed", "stopped")
EXECUTORS = ("local", "ray")  # where a sweep's trainers run (resnet_core.executors)
# What a grid cannot vary, and why.
FIXED = {"name": "each run is named after its values", "sweep": "every run belongs to this sweep",
         "runs_dir": "the sweep's record and runs live in one runs folder"}
POINT_KEYS = ("values", "run", "start_failure")
TRIAL_KEYS = (*POINT_KEYS, "trial", "pruned", "value", "metric")  # a search's points
SEARCHES = ("grid", "random", "tpe")  # grid: every combination; random, tpe: Optuna's samplers
PRUNERS = ("none", "asha", "median")  # Optuna's SuccessiveHalvingPruner, MedianPruner
OBJECTIVES = ("best_val_acc", "test_acc")  # status.json's accuracies a search may maximise
SEARCH_KEYS = ("kind", "trials", "seed", "objective", "prune", "storage", "study")
START_FAILURE_CHARS = 500  # of a trainer's last console line kept in the record: a line, not a log


@dataclass(frozen=True)
class TrainingOptions:
    """The trainer's options, as a record's check needs them (the core hands them in)."""

    names: frozenset[str]  # every training option
    value_problem: Callable[[str, Any], str | None]  # why a value cannot be a grid's value of option name, or None
    argv_problem: Callable[[list[str]], str | None]  # why a list of strings is not training flags, or None


def _argv_problem(argv: Any, options: TrainingOptions) -> str | None:
    """Why the record's argv is not a list of training options the trainer takes, or None."""
    if not isinstance(argv, list):
        return f"argv is {entry_kind(argv)}, not a list of strings"
    odd = next((a for a in argv if not isinstance(a, str)), "")
    if not isinstance(odd, str):
        return f"argv holds {entry_kind(odd)}, not only strings"
    if any("\0" in a for a in argv):  # no command line can carry one
        return "argv holds a NUL character"
    return options.argv_problem(argv)


def _vary_problem(vary: Any, options: TrainingOptions) -> str | None:
    if not (isinstance(vary, list) and all(isinstance(v, dict) and set(v) == {"field", "values"}
                                           and isinstance(v["field"], str) and isinstance(v["values"], list)
                                           for v in vary)):
        return f"vary is {entry_kind(vary)}, not a list of {{field, values}}"
    seen_fields = set()
    for v in vary:
        name = v["field"]
        if name not in options.names:
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
            problem = options.value_problem(name, value)
            if problem:
                return f"vary: {problem}"
            if value in seen_values:
                return f"vary: {name} holds {quoted(value)} twice"
            seen_values.add(value)
    return None


def _point_values_problem(i: int, p: Any, combination: dict, options: TrainingOptions) -> str | None:
    """Why point i (counted from 1) is not an object of known fields whose values are
    combination i of vary's grid, or None."""
    if not isinstance(p, dict):
        return f"point {i} is {entry_kind(p)}, not an object"
    extra = next((k for k in p if k not in POINT_KEYS), None)
    if extra is not None:
        return f"point {i}: {quoted(extra)[1:-1]} is not a point field"
    if not isinstance(p.get("values"), dict):
        return f"point {i}: values is {entry_kind(p.get('values'))}, not an object"
    for name, value in p["values"].items():
        problem = (f"{quoted(name)[1:-1]} is not a training option" if name not in options.names
                   else options.value_problem(name, value))
        if problem:
            return f"point {i}: {problem}"
    if p["values"] != combination:
        return f"point {i}: its values are not combination {i} of vary's grid"
    return None


def _points_problem(points: Any, vary: dict[str, list], options: TrainingOptions) -> str | None:
    if not isinstance(points, list):
        return f"points is {entry_kind(points)}, not a list of {{values, run}}"
    size = math.prod(len(values) for values in vary.values())  # never built before it matches
    if size != len(points):
        return f"{len(points)} points, but vary makes a grid of {size:,}"
    for i, (p, combination) in enumerate(zip(points, itertools.product(*vary.values()), strict=True), 1):
        problem = _point_values_problem(i, p, dict(zip(vary, combination, strict=True)), options)
        if problem:
            return problem
    return _runs_problem(points)


def _runs_problem(points: list) -> str | None:
    """Why the points' runs and start failures are not this format (a point object each), or None."""
    runs: dict[str, int] = {}
    for i, p in enumerate(points, 1):
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


def range_problem(low: Any, high: Any, log: Any) -> str | None:
    """Why low..high (log or not) is no range to sample from, or None."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
        return "its bounds are not finite numbers"
    if not isinstance(log, bool):
        return "log is not true or false"
    if low >= high:
        return f"an {'empty' if low == high else 'inverted'} range ({low} to {high})"
    if log and low <= 0:
        return f"a log range must stay above 0 (it starts at {low})"
    return None


def _search_problem(record: dict, options: TrainingOptions) -> str | None:
    """Why a search's own fields (search, ranges) are not this format, or None."""
    search = record["search"]
    if not (isinstance(search, dict) and set(search) == set(SEARCH_KEYS)):
        return f"search is {entry_kind(search)}, not an object of {', '.join(SEARCH_KEYS)}"
    for key, allowed in (("kind", SEARCHES[1:]), ("prune", PRUNERS), ("objective", OBJECTIVES)):
        if search[key] not in allowed:
            return f"search: {key} {quoted(search[key])} is not one of {', '.join(allowed)}"
    if as_int(search["trials"], 1, MAX_COUNT) is None or as_int(search["seed"], 0, MAX_COUNT) is None:
        return f"search: trials {quoted(search['trials'])} or seed {quoted(search['seed'])} is not a count"
    if not all(isinstance(search[k], str) and search[k] for k in ("storage", "study")):
        return "search: storage and study are not text"
    ranges = record.get("ranges")
    if not (isinstance(ranges, list) and all(isinstance(r, dict) and set(r) == {"field", "low", "high", "log"}
                                             for r in ranges)):
        return f"ranges is {entry_kind(ranges)}, not a list of {{field, low, high, log}}"
    for r in ranges:
        name = r["field"]
        if name not in options.names or name in FIXED:
            return f"ranges: {quoted(name)} is not a training option a search may vary"
        problem = (options.value_problem(name, r["low"]) or options.value_problem(name, r["high"])
                   or range_problem(r["low"], r["high"], r["log"]))
        if problem:
            return f"ranges: {name}: {problem}"
    return None


def _trials_problem(points: Any, space: dict[str, Any], trials: int, options: TrainingOptions) -> str | None:
    """Why a search's points (one per trial asked, in order) are not trials of its space:
    values of every field of vary (one of its values) and ranges (within it), or None."""
    if not isinstance(points, list) or len(points) > trials:
        return f"points is {entry_kind(points)}, not a list of at most {trials} trials"
    for i, p in enumerate(points, 1):
        if not (isinstance(p, dict) and isinstance(p.get("values"), dict) and set(p["values"]) == set(space)):
            return f"point {i}: its values are not one of each field of vary and ranges"
        extra = next((k for k in p if k not in TRIAL_KEYS), None)
        if extra is not None:
            return f"point {i}: {quoted(extra)[1:-1]} is not a point field"
        if not (is_int(p.get("trial")) and p["trial"] >= 0 and isinstance(p.get("pruned", False), bool)):
            return f"point {i}: trial {quoted(p.get('trial'))} is not an Optuna trial number"
        if p.get("value") is not None and (as_float(p["value"]) is None or p.get("metric") not in OBJECTIVES):
            return f"point {i}: value {quoted(p['value'])} of metric {quoted(p.get('metric'))} is not an objective"
        for name, value in p["values"].items():
            allowed = space[name]
            inside = (value in allowed if isinstance(allowed, list) else
                      options.value_problem(name, value) is None and allowed["low"] <= value <= allowed["high"])
            if not inside:
                return f"point {i}: {name} {quoted(value)} is outside the search's {name}"
    return None


def record_problem(record: dict, name: str, options: TrainingOptions) -> str | None:
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
    if record.get("executor", "local") not in EXECUTORS:
        return f"executor {quoted(record.get('executor'))} is not one of {', '.join(EXECUTORS)}"
    if not isinstance(record.get("address", None), (str, type(None))):
        return f"address {quoted(record['address'])} is not HOST:PORT"
    if record.get("cpus_per_trial") is not None and as_int(record["cpus_per_trial"], 1, MAX_COUNT) is None:
        return f"cpus_per_trial {quoted(record['cpus_per_trial'])} is not a count"
    problem = _argv_problem(record.get("argv"), options) or _vary_problem(record.get("vary"), options)
    if problem:
        return problem
    vary = {v["field"]: v["values"] for v in record["vary"]}
    if record.get("search") is None:  # a grid (every record written before searches)
        return _points_problem(record.get("points"), vary, options)
    problem = _search_problem(record, options)
    if problem:
        return problem
    space = vary | {r["field"]: r for r in record["ranges"]}
    if len(space) < len(vary) + len(record["ranges"]):
        return "ranges: a field is both varied by values and by a range"
    return (_trials_problem(record["points"], space, record["search"]["trials"], options)
            or _runs_problem(record["points"]))
