"""Train a grid of runs: ``python -m resnet_core.sweep --help``.

A sweep is ordinary runs. Every combination of the ``--vary`` values is one point; each
point is one trainer subprocess (``python -m resnet_core.train``) writing its own run
folder, tagged ``--sweep NAME`` and named after its values. At most ``--parallel``
trainers are alive at once, and each takes a free device itself (resnet_core.placement).
With ``--executor ray`` each trainer runs inside a Ray task instead, on whichever node and
GPU Ray gives it (resnet_core.ray_executor; Ray is imported only there).

This process is the one writer of the sweep's record (``<runs-dir>/.sweeps/NAME.json``,
documented in resnet_core/runs/sweep_format.py). It records a point's run folder before
starting its trainer, so ``--resume NAME`` after a stop or a crash continues exactly the
points that did not complete, and none twice. A grid that cannot run is refused before
anything is written: one line on stderr, exit code 2, like the trainer.

This module checks a new sweep, a resume or a report and runs it; its flags are in
resnet_core.sweep_args, the ``--vary`` grid in resnet_core.sweep_grid, and the process
that starts and watches the trainers in resnet_core.sweep_runner.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import dataclasses
import io
import math
import os
import sys
import time
from typing import Callable
from pathlib import Path

from . import results, runs
from .config import TrainConfig, apply_presets, flag, make_plan
from .config_flags import config_argv
from .cifar import IMAGE_FOLDER, DataError, resolve_data_dir
from .folder_dataset import held_out
from .folder_scan import scan_image_folder
from .executors import RAY_MISSING, ExecutorError, ray_installed
from .runs import model_name
from .sweep_args import PROG, SweepArgs, parse
from .sweep_grid import check_ranges, devices_of, grid, label, parse_vary, run_name, shown
from .sweep_options import RECORD_OPTIONS
from .search_report import trials_report
from .sweep_runner import Sweep, make_executor
from .sweep_space import Range
from .train import load_data
from .train_checks import Refused, check_config, check_runs_dir

# A search's budget: far past any study trained here, and its record must read back (counts
# past 2**53 made it unreadable, seen with --trials 9007199254740993).
MAX_TRIALS = 100_000


def train_set_images(cfg: TrainConfig, test_sizes: list[float]) -> int:
    """The smallest training set cfg's dataset gives over these --test-size values (an image
    folder's from its scan, nothing decoded: its test/, or each class less its held-out
    share), or Refused with one line where the data cannot be read."""
    if cfg.dataset != IMAGE_FOLDER:
        return len(load_data(cfg).train_labels)
    try:
        scan = scan_image_folder(cfg.data_dir)
    except DataError as e:
        raise Refused(str(e)) from None
    if scan.test is not None:
        return len(scan.train)
    return min(sum(n - held_out(n, share) for n in scan.train.counts) for share in test_sizes)


def sweep_record(name: str, argv: list[str], vary: dict[str, list], parallel: int | None, devices: int,
                 executor: dict | None = None, search: dict | None = None, ranges: dict[str, Range] | None = None
                 ) -> dict:
    """A new sweep's record (format: resnet_core/runs/sweep_format.py). Each device gets enough
    slots for `parallel` runs spread over the `devices` the runs may take; executor: its
    fields (executor_fields; default local). parallel None: a Ray sweep's, set once the
    cluster is reached (RayExecutor.prepare). search (search_fields) and ranges: a random or
    tpe search's, whose points are its trials, none yet; a grid's record holds neither."""
    if search is not None:
        return {**sweep_record(name, argv, vary, parallel, devices, executor), "points": [], "search": search,
                "ranges": [r.record(field) for field, r in (ranges or {}).items()]}
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
    if executor not in runs.EXECUTORS:
        raise Refused(f"executor {executor!r} is not one of {', '.join(runs.EXECUTORS)}")
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


def new_sweep(command: SweepArgs) -> dict:
    """The record of the sweep the command line asks for, after every check; Refused
    when anything would fail. Writes nothing."""
    cfg, typed, args = command.cfg, command.typed, command.args
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
    search = search_fields(args, cfg.seed, runs_dir, name, vary)
    ranges = {k: v for k, v in vary.items() if isinstance(v, Range)}
    vary = {k: v for k, v in vary.items() if not isinstance(v, Range)}
    cfg = dataclasses.replace(cfg, sweep=name)
    check_config(cfg if local else dataclasses.replace(cfg, device="cpu"))  # on Ray: check_points, the cluster
    # Every dataset the grid trains on is read here (refused in one line where missing or damaged;
    # an image folder scanned, not decoded), once, and each point checked against its training set.
    sizes: dict[tuple, int] = {}

    def train_images(point: TrainConfig) -> int:
        key = (point.dataset, point.test_size if point.dataset == IMAGE_FOLDER else None)
        if key not in sizes:
            sizes[key] = train_set_images(point, [point.test_size])
        return sizes[key]

    for dataset in vary.get("dataset", [cfg.dataset]):  # all read before any point is judged
        train_images(dataclasses.replace(cfg, dataset=dataset))
    check_ranges(cfg, typed, vary, ranges, train_images, executor["executor"])  # every point; a range: see there
    devices = len(devices_of(cfg, vary)) if local else 1
    parallel = args.parallel if args.parallel is not None else (devices if local else None)
    if parallel is not None and parallel < 1:
        raise Refused("--parallel must be at least 1")
    # The runs read the data this sweep checked, wherever a resume starts from.
    cfg.data_dir = str(resolve_data_dir(cfg.data_dir).resolve())
    record = sweep_record(name, config_argv(cfg, (typed - {"runs_dir"}) | {"data_dir"}), vary, parallel, devices,
                          executor, search, ranges)
    if args.dry_run:
        print_dry_run(record, cfg, typed, train_images)
    return record


def refusal(argv: list[str]) -> str | None:
    """The one line a new sweep with these arguments would be refused with, or None when it
    would start; runs every check of the command line (it reads the dataset), writes nothing."""
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):  # argparse's own refusals exit: say them instead
            command = parse(argv)
    except SystemExit:
        return usage.getvalue().strip().splitlines()[-1].removeprefix(f"{PROG}: error: ")
    try:
        new_sweep(command)
    except Refused as e:
        return str(e)
    return None


def search_fields(args: argparse.Namespace, seed: int, runs_dir: Path, name: str, vary: dict) -> dict | None:
    """The record's search (format: resnet_core/runs/sweep_format.py) for a random or tpe
    search, its sampler seeded by the runs' --seed; None for a grid. Refused for a grid with
    a range or a search's options, or a search without --trials."""
    ranges = [k for k, v in vary.items() if isinstance(v, Range)]
    given = [f for f, v in (("--trials", args.trials), ("--objective", args.objective), ("--prune", args.prune),
                            ("--storage", args.storage)) if v is not None]
    if args.search == "grid":
        if ranges:
            raise Refused(f"--vary {ranges[0].replace('_', '-')}={vary[ranges[0]].shown()}: a range needs "
                          f"--search random or tpe; a grid takes values ({ranges[0]}=V1,V2,...)")
        if given:
            raise Refused(f"{given[0]} goes with --search random or tpe; a grid trains every combination")
        return None
    if args.trials is None or not 1 <= args.trials <= MAX_TRIALS:  # past 2**53 the record no longer read
        raise Refused(f"--search {args.search} needs --trials N (1 to {MAX_TRIALS:,}): how many runs to sample")
    if args.storage is not None:
        from .sweep_search import storage_url  # imports Optuna: only a search given a storage does
    storage = storage_url(args.storage) if args.storage is not None else \
        f"sqlite:///{runs.sweep_path(runs_dir.resolve(), name, '.optuna.db')}"
    return {"kind": args.search, "trials": args.trials, "seed": seed, "objective": args.objective or "best_val_acc",
            "prune": args.prune or "none", "storage": storage, "study": name}


def print_dry_run(record: dict, base: TrainConfig, typed: set[str], train_images: Callable[[TrainConfig], int]) -> None:
    vary = {v["field"]: v["values"] for v in record["vary"]}
    sizes = " x ".join(str(len(v)) for v in vary.values())
    at_once = record["parallel"] or "as many as the Ray cluster holds"
    where = "" if record["executor"] == "local" else f" on Ray ({record['address'] or 'a Ray of its own'})"
    search = record.get("search")
    if search is not None:
        print(f"sweep {record['name']}: {search['kind']} search of {search['trials']} runs (seed {search['seed']}), "
              f"maximising {search['objective']}, pruning {search['prune']}, at most {at_once} at once{where}")
        for field, values in vary.items():
            print(f"  {field}: one of {', '.join(shown(field, v) for v in values)}")
        for r in record["ranges"]:
            print(f"  {r['field']}: {r['low']} to {r['high']}{', log-uniform' if r['log'] else ''}")
        print(f"  study {search['study']} in {search['storage']}")
        return
    print(f"sweep {record['name']}: {len(record['points'])} runs ({' x '.join(vary)} = {sizes}), "
          f"at most {at_once} at once{where}")
    for values in grid(vary):
        point = dataclasses.replace(base, **values)
        cfg = apply_presets(point, typed | set(values), train_images(point))
        print(f"  {run_name(record['name'], values)}: {model_name(cfg.depth, cfg.shortcut, cfg.preact)} "
              f"({cfg.block}, shortcut {cfg.shortcut}) · {make_plan(cfg, train_images(point)).describe()}")


def report(runs_dir: Path, name: str, fmt: str) -> tuple[str, list[str]]:
    """The results table of a sweep's runs, grouped by every varied field but the seed, and
    one line for each point that has no run in it (not launched, starting, failed to start);
    a search's: its trials table (search_report)."""
    info = runs.read_sweep(runs_dir, name, RECORD_OPTIONS)
    if info is None:
        raise Refused(f"--report {name}: no such sweep in {runs_dir}")
    if info.problem:
        raise Refused(f"--report {name}: {info.problem}")
    if info.search:
        return trials_report(info, fmt), []  # every trial is a row, pruned and failed ones too
    missing = [f"point {label(p.values)}" + (f" ({p.run_dir.name})" if p.run_dir else "")
               + f" is not in the table: {p.error}" for p in info.points if p.run is None]
    return results.sweep_report(info.runs, info.group_by, fmt), missing


def main(argv: list[str] | None = None) -> int:
    command = parse(argv)
    runs_dir = Path(command.cfg.runs_dir)
    with contextlib.ExitStack() as held:  # the claim on the sweep and the executor, released on return
        try:
            record = prepare(command, held)
            if record is None:  # a report or a dry run: done
                return 0
            executor = held.enter_context(make_executor(record))
            sweep = make_sweep(runs_dir, record, executor, create=not command.args.resume)
            sweep.executor.prepare(sweep.devices())
        except (Refused, runs.SweepBusy, ExecutorError) as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
        return sweep.run()


def make_sweep(runs_dir: Path, record: dict, executor, create: bool) -> Sweep:
    """The sweep process of the record: a grid's, or a search's with its study, created
    (a new sweep) or loaded (create False: a resume); Refused where the study cannot be."""
    if record.get("search") is None:
        return Sweep(runs_dir, record, executor)
    from .search_runner import SearchSweep  # imports Optuna: only a search does
    from .sweep_search import StudyUnavailable
    try:
        return SearchSweep(runs_dir, record, executor, create)
    except StudyUnavailable as e:
        raise Refused(str(e)) from None


def prepare(command: SweepArgs, held: contextlib.ExitStack) -> dict | None:
    """The record of the sweep to run, claimed until held closes; None after --report or
    --dry-run, which print and run nothing. Refused for anything that cannot run."""
    typed, args = command.typed, command.args
    runs_dir = Path(command.cfg.runs_dir)
    if args.resume or args.report:
        extra = sorted(flag(n) for n in typed - {"runs_dir"}) + (["--vary"] if args.vary else []) + (
            ["--parallel"] if args.parallel is not None else []) + [
            f for f, v in (("--search", args.search != "grid" or None), ("--trials", args.trials),
                           ("--objective", args.objective), ("--prune", args.prune), ("--storage", args.storage))
            if v is not None]
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
    record = new_sweep(command)
    if args.dry_run:
        return None
    claim(runs_dir, record["name"], held)
    if runs.sweep_path(runs_dir, record["name"]).exists():  # created since new_sweep looked
        raise Refused(f"sweep {record['name']} already exists in {runs_dir}; --resume {record['name']} continues it")
    return record


def resumable(runs_dir: Path, args: argparse.Namespace) -> dict:
    """The record --resume runs, with the executor it runs on; Refused for a sweep that is
    missing or unreadable, or an executor that cannot run it."""
    info = runs.read_sweep(runs_dir, args.resume, RECORD_OPTIONS)
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
