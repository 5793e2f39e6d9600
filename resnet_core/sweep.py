"""Train a grid of runs: ``python -m resnet_core.sweep --help``.

A sweep is ordinary runs. Every combination of the ``--vary`` values is one point; each
point is one trainer subprocess (``python -m resnet_core.train``) writing its own run
folder, tagged ``--sweep NAME`` and named after its values. At most ``--parallel``
trainers are alive at once, and each takes a free device itself (resnet_core.placement).
With ``--executor ray`` each trainer runs inside a Ray task instead, on whichever node and
GPU Ray gives it (resnet_core.ray_executor; Ray is imported only there).

This process is the one writer of the sweep's record (``<runs-dir>/.sweeps/NAME.json``,
documented in resnet_core/runs/__init__.py). It records a point's run folder before
starting its trainer, so ``--resume NAME`` after a stop or a crash continues exactly the
points that did not complete, and none twice. A grid that cannot run is refused before
anything is written: one line on stderr, exit code 2, like the trainer.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import dataclasses
import difflib
import io
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import placement, results, runs
from .config import (TrainConfig, add_config_arguments, apply_presets, config_argv, config_errors, flag, make_plan,
                     plan_errors)
from .cifar import resolve_data_dir
from .executors import EXECUTORS, RAY_MISSING, ExecutorError, LocalExecutor, ray_installed
from .model_names import model_name
from .runs.sweeps import FIXED, START_FAILURE_CHARS, grid
from .train import Parser, load_data
from .train_checks import Refused, check_config, check_runs_dir
from .loop import StopRequested

PROG = "python -m resnet_core.sweep"
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
SWITCH_VALUES = {"auto": None, "on": True, "off": False}
BOOL_VALUES = {"true": True, "false": False}
POLL_S = 0.5  # how often the sweep looks at its trainers


# --------------------------------------------------------------------- the grid

def parse_value(name: str, text: str):
    """One --vary value of field `name`, parsed by the field's type and choices."""
    f, where = FIELDS[name], f"--vary {name.replace('_', '-')}={text}"
    if f.type == "bool":
        if text.lower() not in BOOL_VALUES:
            raise Refused(f"{where}: not true or false")
        return BOOL_VALUES[text.lower()]
    if f.type == "bool | None":
        if text.lower() not in SWITCH_VALUES:
            raise Refused(f"{where}: not auto, on or off")
        return SWITCH_VALUES[text.lower()]
    kind = {"int": int, "float": float}.get(f.type, str)
    try:
        value = kind(text)
    except ValueError:
        raise Refused(f"{where}: not {'a whole number' if kind is int else 'a number'}") from None
    choices = f.metadata["choices"]
    if choices and value not in choices:
        raise Refused(f"{where}: not one of {', '.join(choices)}")
    return value


def parse_vary(items: list[str], typed: set[str]) -> dict[str, list]:
    """--vary FIELD=V1,V2,... options as {field: values}, in the order given."""
    vary: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        name = key.strip().lstrip("-").replace("-", "_")
        if not sep:
            raise Refused(f"--vary {item}: expected FIELD=V1,V2,...")
        if name not in FIELDS:
            close = difflib.get_close_matches(name, list(FIELDS), n=1)
            raise Refused(f"--vary {item}: no such option" + (f"; did you mean {close[0]}?" if close else ""))
        if name in FIXED:
            raise Refused(f"--vary {key}: cannot be varied ({FIXED[name]})")
        if FIELDS[name].type == "list[float]":
            raise Refused(f"--vary {key}: a list-valued option cannot be varied")
        if name in typed:
            raise Refused(f"--vary {key}: also given as {flag(name)}; give it one way")
        if name in vary:
            raise Refused(f"--vary {key} is given twice; list all its values in one")
        tokens = [t.strip() for t in values.split(",")]
        if not values.strip() or "" in tokens:
            raise Refused(f"--vary {item}: {'an empty value' if values.strip() else 'no values'}")
        parsed = [parse_value(name, t) for t in tokens]
        for i, value in enumerate(parsed):
            if value in parsed[:i]:  # 0.1 and 0.10 too: one run would train twice
                raise Refused(f"--vary {key}: {tokens[i]} is given twice")
        vary[name] = parsed
    return vary


def vary_argv(vary: dict[str, list]) -> list[str]:
    """The --vary options that give these values (parsed, or as typed): parse_vary's inverse."""
    return [a for name, values in vary.items()
            for a in ("--vary", f"{name}={','.join(v if isinstance(v, str) else shown(name, v) for v in values)}")]


def shown(name: str, value) -> str:
    """A value of field `name` as --vary takes it."""
    if FIELDS[name].type == "bool | None":
        return {v: k for k, v in SWITCH_VALUES.items()}[value]
    return str(value).lower() if isinstance(value, bool) else str(value)


def label(values: dict) -> str:
    """A point for people: depth=20 shortcut=none."""
    return " ".join(f"{k}={shown(k, v)}" for k, v in values.items())


def run_name(sweep: str, values: dict) -> str:
    """A readable run name from the point's values: NAME-depth20-shortcutnone-seed0. Names
    keep 48 characters (runs.safe_name): a long sweep name is cut, never the values, which
    tell the runs apart."""
    point = runs.safe_name("-".join(f"{k.replace('_', '')}{shown(k, v)}" for k, v in values.items()))
    room = 48 - len(point) - 1
    return runs.safe_name(f"{runs.safe_name(sweep, max_len=room)}-{point}" if room > 0 else point)


def check_points(base: TrainConfig, typed: set[str], vary: dict[str, list], train_images: int,
                 executor: str = "local") -> None:
    """Refused naming the field and value of the first point the trainer would refuse. The
    devices are this machine's for a local sweep; on Ray the cluster's, checked once it is
    reached (RayExecutor.prepare), and Ray picks each run's GPU."""
    for values in grid(vary):
        cfg = apply_presets(dataclasses.replace(base, **values), typed | set(values), train_images)
        problems = config_errors(cfg) or plan_errors(cfg, train_images)
        try:
            if executor == "local":
                placement.candidate_devices(cfg.device)
            elif cfg.device.startswith("cuda:"):
                raise ValueError(f"device {cfg.device}: Ray picks each run's GPU; use --device cuda or auto")
        except ValueError as e:
            problems.setdefault("device", str(e))
        for name, message in problems.items():
            if name in values:
                raise Refused(f"--vary {name.replace('_', '-')}={shown(name, values[name])}: {message}")
            raise Refused(f"{message} (at {label(values)})")


def devices_of(base: TrainConfig, vary: dict[str, list]) -> list[str]:
    """Every device the grid's runs may take."""
    specs = vary.get("device", [base.device])
    return list(dict.fromkeys(d for spec in specs for d in placement.candidate_devices(spec)))


# --------------------------------------------------------------------- the command line

def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, conflict_handler="resolve",
               description="Train every combination of --vary values as its own run, a few at a time.")
    add_config_arguments(p)  # every training option, from TrainConfig, fixed for the whole grid
    p.add_argument("--name", default=None, help="the sweep's name (letters, digits, - _ .; needed for a new sweep)")
    p.add_argument("--vary", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help="train each value of a training option (repeatable: the grid is every combination), "
                        "e.g. --vary depth=20,32 --vary shortcut=A,none --vary seed=0,1,2; switches take "
                        "true/false or auto/on/off")
    p.add_argument("--parallel", type=int, default=None, metavar="K",
                   help="runs alive at once (default: one per device the runs may take: the GPUs, else 1; "
                        "with --executor ray the cluster's GPUs, or its CPUs / --cpus-per-trial)")
    p.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="local: trainers are this process's children (default); ray: each trainer runs in a Ray "
                        "task, on the cluster of --address (the runs folder must be shared by its nodes). "
                        "With --resume: the recorded one unless given")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="with --executor ray: the Ray cluster to join (default: start a Ray on this machine "
                        "for the sweep's lifetime)")
    p.add_argument("--cpus-per-trial", type=int, default=None, metavar="N",
                   help="with --executor ray: CPUs each run on the CPU asks Ray for (default: 1); a run on a "
                        "GPU asks for one GPU")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--resume", metavar="NAME", help="continue a stopped or crashed sweep: completed runs are "
                                                       "kept, the others resumed or launched")
    what.add_argument("--report", metavar="NAME", help="print the results table of a sweep's runs")
    what.add_argument("--dry-run", action="store_true", help="print the grid and each run's plan, launch nothing")
    p.add_argument("--format", choices=("md", "csv", "json"), default="md", help="of --report (default: md)")
    return p


def sweep_record(name: str, argv: list[str], vary: dict[str, list], parallel: int | None, devices: int,
                 executor: dict | None = None) -> dict:
    """A new sweep's record (format: resnet_core/runs/__init__.py). Each device gets enough
    slots for `parallel` runs spread over the `devices` the runs may take; executor: its
    fields (executor_fields; default local). parallel None: a Ray sweep's, set once the
    cluster is reached (RayExecutor.prepare)."""
    return {"format_version": runs.SWEEP_FORMAT_VERSION, "name": name, "argv": argv,
            "vary": [{"field": k, "values": v} for k, v in vary.items()], "parallel": parallel,
            "device_slots": math.ceil(parallel / devices) if parallel is not None else None,
            **(executor or {"executor": "local", "address": None, "cpus_per_trial": None}),
            "points": [{"values": values, "run": None} for values in grid(vary)],
            "state": "running", "pid": None, "pid_start": None, "created_at": time.time(), "finished_at": None}


def executor_fields(args: argparse.Namespace, recorded: dict | None = None) -> dict:
    """The record's executor, address and cpus_per_trial: as given on the command line, else
    as recorded (a resume; a record older than executors reads as local), else the defaults.
    Refused for options that do not go together, or Ray where it is not installed."""
    recorded = recorded or {}
    executor = args.executor or recorded.get("executor", "local")
    if executor not in EXECUTORS:
        raise Refused(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    if executor == "local":
        if args.address is not None or args.cpus_per_trial is not None:
            raise Refused("--address and --cpus-per-trial go with --executor ray")
        return {"executor": "local", "address": None, "cpus_per_trial": None}
    if not ray_installed():
        raise Refused(RAY_MISSING)
    cpus = args.cpus_per_trial if args.cpus_per_trial is not None else recorded.get("cpus_per_trial") or 1
    address = args.address if args.address is not None else recorded.get("address")
    if not (isinstance(cpus, int) and not isinstance(cpus, bool) and cpus >= 1):
        raise Refused(f"--cpus-per-trial must be a whole number of at least 1, not {cpus!r}")
    if address is not None and not isinstance(address, str):
        raise Refused(f"address {address!r} is not HOST:PORT")
    return {"executor": "ray", "address": None if address in (None, "", "local") else address, "cpus_per_trial": cpus}


def new_sweep(cfg: TrainConfig, typed: set[str], args: argparse.Namespace) -> dict:
    """The record of the sweep the command line asks for, after every check; Refused
    when anything would fail. Writes nothing."""
    name = args.name
    if not name:
        raise Refused("--name NAME is needed for a new sweep (or --resume NAME, --report NAME)")
    if runs.safe_name(name) != name:
        raise Refused(f"--name {name}: a sweep name may hold only letters, digits, - _ . (at most 48)")
    if "sweep" in typed:
        raise Refused("--sweep is set by the sweep itself; name the sweep with --name")
    executor = executor_fields(args)
    local = executor["executor"] == "local"
    runs_dir = Path(cfg.runs_dir)
    check_runs_dir(runs_dir)
    if os.path.lexists(runs.sweep_path(runs_dir, name)):
        raise Refused(f"sweep {name} already exists in {runs_dir}; --resume {name} continues it")
    vary = parse_vary(args.vary, typed)
    if not vary:
        raise Refused("--vary FIELD=V1,V2,... is needed: a sweep of one run is a plain run")
    cfg = dataclasses.replace(cfg, sweep=name)
    check_config(cfg if local else dataclasses.replace(cfg, device="cpu"))  # on Ray: check_points, the cluster
    data = load_data(cfg)
    check_points(cfg, typed, vary, len(data.train_labels), executor["executor"])
    devices = len(devices_of(cfg, vary)) if local else 1
    parallel = args.parallel if args.parallel is not None else (devices if local else None)
    if parallel is not None and parallel < 1:
        raise Refused("--parallel must be at least 1")
    # The runs read the data this sweep checked, wherever a resume starts from.
    cfg.data_dir = str(resolve_data_dir(cfg.data_dir).resolve())
    record = sweep_record(name, config_argv(cfg, (typed - {"runs_dir"}) | {"data_dir"}), vary, parallel, devices,
                          executor)
    if args.dry_run:
        print_dry_run(record, cfg, typed, len(data.train_labels))
    return record


def refusal(argv: list[str]) -> str | None:
    """The one line a new sweep with these arguments would be refused with, or None when it
    would start; runs every check of the command line (it reads the dataset), writes nothing."""
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):  # argparse's own refusals exit: say them instead
            cfg, typed, args = parse(argv)
    except SystemExit:
        return usage.getvalue().strip().splitlines()[-1].removeprefix(f"{PROG}: error: ")
    try:
        new_sweep(cfg, typed, args)
    except Refused as e:
        return str(e)
    return None


def print_dry_run(record: dict, base: TrainConfig, typed: set[str], train_images: int) -> None:
    vary = {v["field"]: v["values"] for v in record["vary"]}
    sizes = " x ".join(str(len(v)) for v in vary.values())
    at_once = record["parallel"] or "as many as the Ray cluster holds"
    where = "" if record["executor"] == "local" else f" on Ray ({record['address'] or 'a Ray of its own'})"
    print(f"sweep {record['name']}: {len(record['points'])} runs ({' x '.join(vary)} = {sizes}), "
          f"at most {at_once} at once{where}")
    for values in grid(vary):
        cfg = apply_presets(dataclasses.replace(base, **values), typed | set(values), train_images)
        print(f"  {run_name(record['name'], values)}: {model_name(cfg.depth, cfg.shortcut)} ({cfg.block}, shortcut "
              f"{cfg.shortcut}) · {make_plan(cfg, train_images).describe()}")


def report(runs_dir: Path, name: str, fmt: str) -> tuple[str, list[str]]:
    """The results table of a sweep's runs, grouped by every varied field but the seed, and
    one line for each point that has no run in it (not launched, starting, failed to start)."""
    info = runs.read_sweep(runs_dir, name)
    if info is None:
        raise Refused(f"--report {name}: no such sweep in {runs_dir}")
    if info.problem:
        raise Refused(f"--report {name}: {info.problem}")
    missing = [f"point {label(p.values)}" + (f" ({p.run_dir.name})" if p.run_dir else "")
               + f" is not in the table: {p.error}" for p in info.points if p.run is None]
    return results.sweep_report(info.runs, info.group_by, fmt), missing


# --------------------------------------------------------------------- running it

class Sweep:
    """The sweep process: launches, watches and resumes its points' trainers through its
    executor (resnet_core.executors: local children, or Ray tasks), and is the one writer
    of the record while it holds the claim (runs.claim_sweep)."""

    def __init__(self, runs_dir: Path, record: dict, executor=None):
        self.runs_dir, self.record = runs_dir.resolve(), record
        self.name = record["name"]
        self.executor = executor or LocalExecutor(record)
        self.base_device = parse(record["argv"])[0].device  # a point's unless it varies the device
        self.stop = StopRequested()
        # point -> our trainer (a Popen, or a ray_executor.RayTrial); None: an earlier sweep process's
        self.trainers: dict[int, subprocess.Popen | None] = {}

    def save(self, **changes) -> None:
        self.record.update(changes)
        runs.atomic_write_json(runs.sweep_path(self.runs_dir, self.name), self.record)

    def run_dir(self, i: int) -> Path | None:
        run = self.record["points"][i]["run"]
        return self.runs_dir / run if run else None

    def work(self) -> list[tuple[int, str]]:
        """(point, what to do) for every point that has not finished: "launch" (never
        started, or its trainer died before writing config.json: failed to start, relaunched
        into a fresh folder so that the failed one keeps its last words), "resume" (stopped,
        failed or crashed) or "wait" (still active under an earlier sweep process)."""
        todo = []
        for i in range(len(self.record["points"])):
            run_dir = self.run_dir(i)
            info = runs.read_run(run_dir) if run_dir is not None else None
            if info is None and run_dir is not None and runs.run_dir_busy(run_dir):
                todo.append((i, "wait"))  # an earlier sweep's trainer, claimed but not yet written config.json
            elif info is None or info.state == runs.FAILED_TO_START:
                todo.append((i, "launch"))
            elif info.state in runs.RESUMABLE_STATES:
                todo.append((i, "resume"))
            elif info.is_active:
                todo.append((i, "wait"))
            # completed runs are kept; diverged and unreadable ones stay failures
        return todo

    def device(self, i: int) -> str:
        """Point i's device spec."""
        return self.record["points"][i]["values"].get("device", self.base_device)

    def start(self, i: int, action: str) -> subprocess.Popen | None:
        """Start point i's trainer (action as in work()); None for a run that is waited on."""
        if action == "wait":
            return None
        args = self.trainer_args(i, action)
        return self.executor.start(args, self.run_dir(i) / runs.CONSOLE_FILE, self.device(i))

    def trainer_args(self, i: int, action: str) -> list[str]:
        """Point i's trainer arguments for a launch or a resume, the same under every
        executor (each adds its launch options); a launch first records its run folder."""
        point = self.record["points"][i]
        if action == "resume":
            args = ["--resume", str(self.run_dir(i))]
        else:
            run_dir = self.run_dir(i)
            if run_dir is None or not _empty(run_dir):
                run_dir = runs.new_run_dir(self.runs_dir, run_name(self.name, point["values"]))
                point["run"] = run_dir.name
            point.pop("start_failure", None)  # a relaunch after one
            self.save()  # before the trainer starts: a crash never loses track of it
            args = [*self.record["argv"], *config_argv(TrainConfig(**point["values"]), set(point["values"])),
                    "--sweep", self.name, "--name", run_name(self.name, point["values"]),
                    "--runs-dir", str(self.runs_dir), "--run-dir", str(run_dir)]
        return args

    def forget_unstarted(self, i: int) -> bool:
        """After point i's trainer ended: if its run folder is still empty, the trainer never
        started (a Ray task cancelled while it waited for resources); the point goes back to
        not launched and its folder is removed. A local trainer always has its console.log."""
        run_dir = self.run_dir(i)
        try:
            run_dir.rmdir()  # only an empty folder: checked by the file system, also a shared one
        except OSError:
            return False
        self.record["points"][i]["run"] = None
        self.save()
        return True

    def ended(self, i: int) -> str:
        """Point i's state once its trainer has ended. One that ended before writing
        status.json or config.json (no run for runs.read_run) failed to start: the record
        says so, with the trainer's last console line, so that no reader takes it for
        starting while this sweep goes on."""
        info = runs.read_run(self.run_dir(i))
        if info is not None:
            return info.state
        reason = runs.last_output_line(self.run_dir(i)) or "its trainer exited before writing config.json"
        self.record["points"][i]["start_failure"] = reason[:START_FAILURE_CHARS]
        self.save()
        return f"failed to start: {reason}"

    def stop_trainers(self) -> None:
        """SIGTERM to every trainer of the sweep: ours, and those of an earlier sweep process
        it waits on; each finishes its step, saves last.pt and says stopped."""
        for i, proc in self.trainers.items():
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                continue
            info = runs.read_run(self.run_dir(i))
            if info is not None and info.is_active:
                runs.signal_trainer(info.status)

    def finished(self, i: int) -> bool:
        """Whether point i's trainer has ended: ours once its process or task has, and its run
        no longer reads active (a Ray task whose worker was killed is reported a moment
        before the trainer, killed with it, is gone)."""
        proc = self.trainers[i]
        if proc is not None and proc.poll() is None:
            return False
        info = runs.read_run(self.run_dir(i))
        if info is None:
            return proc is not None or not runs.run_dir_busy(self.run_dir(i))
        return not info.is_active

    def progress(self, event: str) -> None:
        info = runs.read_sweep(self.runs_dir, self.name)
        counts = ", ".join(f"{n} {c}" for c, n in info.counts.items()) if info else ""
        print(f"[{self.name}] {event} ({counts})", flush=True)

    def run(self) -> int:
        """Run every unfinished point, at most parallel at once; the exit code."""
        self.stop.install()
        self.save(state="running", pid=os.getpid(), pid_start=runs.process_start_time(os.getpid()),
                  finished_at=None)
        todo = self.work()
        points = self.record["points"]
        forwarded = False
        while todo or self.trainers:
            if self.stop and not forwarded:  # launch nothing more; the trainers finish their step and save last.pt
                todo.clear()
                self.stop_trainers()
                forwarded = True
            while todo and len(self.trainers) < self.record["parallel"]:
                i, action = todo.pop(0)
                self.trainers[i] = self.start(i, action)
                verb = {"launch": "started", "resume": "resumed", "wait": "waiting for"}[action]
                self.progress(f"{verb} {label(points[i]['values'])} in {points[i]['run']}")
            for i in [i for i in self.trainers if self.finished(i)]:
                problem = getattr(self.trainers.pop(i), "problem", None)  # what Ray says, if anything
                state = "not started" if self.forget_unstarted(i) else self.ended(i)
                self.progress(f"{label(points[i]['values'])}: {state}" + (f" ({problem})" if problem else ""))
            time.sleep(POLL_S)
        return self.finish()

    def finish(self) -> int:
        info = runs.read_sweep(self.runs_dir, self.name)
        failed = [p for p in info.points if p.state != "completed"]
        state = "stopped" if self.stop else ("failed" if failed else "completed")
        self.save(state=state, finished_at=time.time())
        if failed:
            print(summary(failed), flush=True)
        print(f"[{self.name}] {state}: {info.counts['done']} of {len(info.points)} runs completed", flush=True)
        if self.stop:
            return 128 + self.stop.signal
        return 1 if failed else 0


def _empty(run_dir: Path) -> bool:
    """A folder a trainer may start in with --run-dir: nothing but its console.log."""
    return run_dir.is_dir() and all(p.name == runs.CONSOLE_FILE for p in run_dir.iterdir())


def summary(points: list[runs.SweepPoint]) -> str:
    """A table of the points that did not complete: point, run, state, error."""
    rows = [("point", "run", "state", "error")]
    rows += [(label(p.values), p.run_dir.name if p.run_dir else "-", p.state, p.error) for p in points]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[3] for r in rows)


def parse(argv: list[str] | None) -> tuple[TrainConfig, set[str], argparse.Namespace]:
    """The training options as typed (fixed for the whole grid), the fields typed, and
    the parsed flags; a usage error exits with code 2."""
    args = build_parser().parse_args(argv)
    typed = {name for name in FIELDS if name in vars(args) and name != "name"}  # --name is the sweep's
    return TrainConfig(**{name: getattr(args, name) for name in typed}), typed, args


def main(argv: list[str] | None = None) -> int:
    cfg, typed, args = parse(argv)
    runs_dir = Path(cfg.runs_dir)
    with contextlib.ExitStack() as held:  # the claim on the sweep and the executor, released on return
        try:
            record = prepare(cfg, typed, args, held)
            if record is None:  # a report or a dry run: done
                return 0
            sweep = Sweep(runs_dir, record, held.enter_context(make_executor(record)))
            sweep.executor.prepare([sweep.device(i) for i in range(len(record["points"]))])
        except (Refused, runs.SweepBusy, ExecutorError) as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
        return sweep.run()


def make_executor(record: dict):
    """The executor the record names; Ray is imported here, and only for a Ray sweep."""
    if record["executor"] == "local":
        return LocalExecutor(record)
    try:
        from .ray_executor import RayExecutor
    except ImportError as e:
        raise Refused(RAY_MISSING if e.name == "ray" else f"--executor ray: Ray cannot be imported: {e}") from None
    except Exception as e:  # installed but broken (a build for another Python or protobuf): one line too
        raise Refused(f"--executor ray: Ray cannot be imported: {type(e).__name__}: {e}") from None
    return RayExecutor(record)


def prepare(cfg: TrainConfig, typed: set[str], args: argparse.Namespace, held: contextlib.ExitStack) -> dict | None:
    """The record of the sweep to run, claimed until held closes; None after --report or
    --dry-run, which print and run nothing. Refused for anything that cannot run."""
    runs_dir = Path(cfg.runs_dir)
    if args.resume or args.report:
        extra = sorted(flag(n) for n in typed - {"runs_dir"}) + (["--vary"] if args.vary else []) + (
            ["--parallel"] if args.parallel is not None else [])
        if args.report:  # a resume may choose another executor
            launch = {"--executor": args.executor, "--address": args.address, "--cpus-per-trial": args.cpus_per_trial}
            extra += [name for name, value in launch.items() if value is not None]
        if extra or args.name:
            raise Refused(f"{'--resume' if args.resume else '--report'} takes only --runs-dir"
                          f"{' and the executor options' if args.resume else ''} (the record holds the rest), "
                          f"not {', '.join(extra or ['--name'])}")
    if args.report:
        table, missing = report(runs_dir, args.report, args.format)
        print(table)
        for line in missing:  # beside the table, which stays one format
            print(line, file=sys.stderr)
        return None
    if args.resume:
        resumable(runs_dir, args)  # every check first: a claim creates a file
        claim(runs_dir, args.resume, held)
        return resumable(runs_dir, args)  # again under the claim: a sweep that just ended wrote last
    record = new_sweep(cfg, typed, args)
    if args.dry_run:
        return None
    claim(runs_dir, record["name"], held)
    if runs.sweep_path(runs_dir, record["name"]).exists():  # created since new_sweep looked
        raise Refused(f"sweep {record['name']} already exists in {runs_dir}; --resume {record['name']} continues it")
    return record


def resumable(runs_dir: Path, args: argparse.Namespace) -> dict:
    """The record --resume runs, with the executor it runs on; Refused for a sweep that is
    missing or unreadable, or an executor that cannot run it."""
    info = runs.read_sweep(runs_dir, args.resume)
    if info is None:
        raise Refused(f"--resume {args.resume}: no such sweep in {runs_dir}")
    if info.problem:
        raise Refused(f"--resume {args.resume}: {info.problem}")
    try:  # the recorded executor, unless the command line names another
        info.record.update(executor_fields(args, info.record))
    except Refused as e:
        raise Refused(f"--resume {args.resume}: {e}") from None
    return info.record


def claim(runs_dir: Path, name: str, held: contextlib.ExitStack) -> None:
    """Claim the sweep until held closes, when the claim and its lock file go, whether the
    sweep ran or was refused; Refused where the lock file cannot be (a symlink, no right)."""
    try:
        fd = runs.claim_sweep(runs_dir, name)
    except OSError as e:
        where = e.filename if e.errno == errno.ELOOP and e.filename else runs.sweep_path(runs_dir, name, '.lock')
        raise Refused(f"sweep {name}: cannot claim {where}: {e.strerror or e}") from None
    held.callback(runs.release_sweep, runs_dir, name, fd)


if __name__ == "__main__":
    sys.exit(main())
