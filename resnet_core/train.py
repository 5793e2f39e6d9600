"""Train a CIFAR ResNet into one run folder: ``python -m resnet_core.train --help``.

The command line: flags generated from :class:`resnet_core.config.TrainConfig`, every
check that can refuse a run before anything is written (one line, exit code 2), the
resume checks, the dry run, then :class:`resnet_core.loop.Run`. Everything a run
writes is described in resnet_core/runs/folder_format.py; the dashboard only reads it, so a run is the
same whether it was launched from the UI or by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import torch

from . import distributed, runs
from .config import (PAPER_DEVIATIONS, Plan, TrainConfig, apply_presets, config_from_record, flag, lr_drop_steps,
                     make_plan, resume_config, warmup_steps)
from .config_checks import config_errors, plan_errors
from .config_flags import add_config_arguments
from .cifar import Cifar10, DataError, dataset_present, load_cifar10, missing_data_message, resolve_data_dir
from .device import device_memory_bytes, format_bytes, resolve_device, resolve_precision, training_memory_bytes
from .model_names import blocks_per_stage, family_counts, model_name
from .models import describe_model
from .run_model import ModelLoadError, check_weights, read_checkpoint
from .loop import Run, StopRequested, trace_log

log = logging.getLogger("resnet_core.train")

PROG = "python -m resnet_core.train"
CHECKPOINT_KEYS = ("model", "optimizer", "scaler", "schedule", "rng", "epoch", "step", "best_val_acc",
                   "best_epoch", "partial_epoch")


def _download_progress():
    """Download progress on stderr, every 10%: the run folder does not exist yet."""
    last = [-1]

    def report(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else -1
        if pct != last[0] and pct % 10 == 0:
            print(f"downloading CIFAR-10: {pct}%", file=sys.stderr, flush=True)
            last[0] = pct

    return report


# --------------------------------------------------------------------- command line

class Refused(Exception):
    """Input that cannot run: one line on stderr, exit code 2, nothing written."""


class Parser(argparse.ArgumentParser):
    """Usage errors as one line, exit code 2, like every other refusal."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists every flag)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Train a CIFAR ResNet of He et al. (2016) into one run folder.")
    add_config_arguments(p)  # every training option, from TrainConfig
    folder = p.add_mutually_exclusive_group()  # each names the run's folder: never one silently dropped
    folder.add_argument("--run-dir", default=None,
                        help="write into this new or empty folder instead of a fresh one under --runs-dir")
    folder.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue a stopped, failed or killed run")
    p.add_argument("--device-slots", type=int, default=1, metavar="K",
                   help="runs that may compute on one device at once, the CPU's threads divided among them (a "
                        "sweep's --parallel sets it; default: 1, others wait queued)")
    p.add_argument("--dist-backend", choices=distributed.BACKENDS, default="auto",
                   help="under torchrun: the process group's backend (auto: nccl with CUDA GPUs, else gloo)")
    p.add_argument("--no-device-lock", action="store_true",
                   help="compute without taking the device's lock in the runs folder (for schedulers that place "
                        "runs themselves, such as Ray; torchrun's ranks never take it)")
    p.add_argument("--dry-run", action="store_true",
                   help="resolve and check everything, print the plan (last line JSON), write nothing")
    return p


def parse(argv: list[str] | None, more_arguments=None) -> tuple[TrainConfig, argparse.Namespace, set[str]]:
    """The config as typed (defaults elsewhere), the parsed flags, and the config fields
    given on the command line, which presets leave alone; more_arguments(parser) may add
    flags (the benchmark's)."""
    parser = build_parser()
    if more_arguments:
        more_arguments(parser)
    args = parser.parse_args(argv)
    typed = {f.name for f in dataclasses.fields(TrainConfig)} & set(vars(args))
    return TrainConfig(**{name: getattr(args, name) for name in typed}), args, typed


def load_data(cfg: TrainConfig) -> Cifar10:
    """CIFAR-10 for cfg, or Refused with one line naming the file and what is wrong."""
    if not cfg.download and not dataset_present(cfg.data_dir):
        raise Refused(f"{missing_data_message(resolve_data_dir(cfg.data_dir), 'no batch files')} Or add --download.")
    try:
        return load_cifar10(cfg.data_dir, download=cfg.download, progress=_download_progress())
    except (DataError, OSError) as e:
        raise Refused(str(e)) from None


def resolve(cfg: TrainConfig, typed: set[str], data: Cifar10, fresh: bool = True,
            ranks: int = 1) -> tuple[TrainConfig, Plan]:
    """The config the run uses (presets applied for a fresh run; a resumed run's record
    already holds them) and its plan, or Refused when it cannot run on this data, or its
    model on the device (ranks: the processes that share each batch)."""
    if fresh:
        cfg = apply_presets(cfg, typed, len(data.train_labels))
    problems = config_errors(cfg) or plan_errors(cfg, len(data.train_labels))
    if problems:
        raise Refused("; ".join(problems.values()))
    check_fits(cfg, len(data.classes), ranks)
    return cfg, make_plan(cfg, len(data.train_labels))


def check_fits(cfg: TrainConfig, num_classes: int, ranks: int) -> None:
    """Refused for a model whose training step the device cannot hold, judged from its
    block count before anything is built (building ResNet-60002 alone took minutes)."""
    device = resolve_device(cfg.device)
    have = device_memory_bytes(device)
    batch = -(-cfg.batch_size // ranks)  # each process's share of the batch
    precision = resolve_precision(cfg.precision, device)
    need = training_memory_bytes(family_counts(cfg.depth, cfg.block, cfg.shortcut, num_classes), batch, precision)
    if have is not None and need > have:
        blocks = 3 * blocks_per_stage(cfg.depth, cfg.block)
        shown = format_bytes(need), format_bytes(have)
        if shown[0] == shown[1]:  # just over: in GiB both would read the same
            shown = f"{need:,} bytes", f"{have:,} bytes"
        raise Refused(f"--depth {cfg.depth}: {model_name(cfg.depth, cfg.shortcut)} ({blocks:,} blocks) needs at "
                      f"least {shown[0]} to train with batch {batch} in {precision} (weights, gradients, "
                      f"momentum and the activations backward keeps), and {device} holds {shown[1]}; "
                      f"choose a smaller --depth or --batch-size")


def check_config(cfg: TrainConfig) -> None:
    """What can be judged before reading 180 MB of data: the fields, and the device.
    Milestones and warm-up wait for the plan: a preset may still set the run's length."""
    problems = {k: v for k, v in config_errors(cfg).items() if k not in ("milestones", "warmup_epochs")}
    if problems:
        raise Refused("; ".join(problems.values()))
    try:
        resolve_device(cfg.device)  # e.g. --device cuda on a machine without one
    except ValueError as e:
        raise Refused(str(e)) from None


def check_runs_dir(path: Path) -> None:
    """Refused unless path is, or can become, a folder this process can write in."""
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise Refused(f"--runs-dir {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise Refused(f"--runs-dir {path}: {existing} is not writable")


def check_new_run_dir(path: Path) -> None:
    """--run-dir must be new or empty (the dashboard's console.log aside), and a real folder:
    a run folder is never a symbolic link (see resnet_core.runs)."""
    if path.is_symlink():
        raise Refused(f"--run-dir {path} is a symbolic link: give the folder itself")
    if os.path.lexists(path) and not path.is_dir():
        raise Refused(f"--run-dir {path} is not a folder")
    if path.is_dir():
        if (path / runs.CONFIG_FILE).exists():
            raise Refused(f"--run-dir {path} already holds a run; use --resume to continue it")
        if any(p.name != runs.CONSOLE_FILE for p in path.iterdir()):
            raise Refused(f"--run-dir {path} is not empty")
    check_runs_dir(path.parent)


def check_resumable(run_dir: Path) -> tuple[TrainConfig, dict | None]:
    """The recorded config and last.pt's state of a run that can be resumed, or Refused
    naming the file and what is wrong. Reads only: a refused resume changes nothing."""
    path = run_dir / runs.CONFIG_FILE
    if not run_dir.is_dir():
        raise Refused(f"--resume: {run_dir} is not a folder")
    if not os.path.lexists(path):
        raise Refused(f"--resume: {run_dir} is not a run folder (no {runs.CONFIG_FILE})")
    try:  # as every reader reads it: a FIFO there hung the resume, a link to /dev/zero filled the memory
        record = runs.read_json_object(run_dir, runs.CONFIG_FILE)
    except (OSError, runs.RunFolderError) as e:  # a directory, unreadable bytes, bad JSON, too deep
        raise Refused(f"--resume: {path} is unreadable: {e}") from None
    if not isinstance(record.get("config"), dict):
        raise Refused(f"--resume: {path} is not a run record (no 'config' object)")
    version = record.get("format_version")
    if version != runs.FORMAT_VERSION:
        raise Refused(f"--resume: {path} is run folder format {version!r} and this trainer writes "
                      f"{runs.FORMAT_VERSION}; a folder never mixes two versions, so start a new run")
    try:
        cfg = config_from_record(record["config"])
    except (TypeError, ValueError) as e:
        raise Refused(f"--resume: {path}: {e}") from None
    recorded_data = (record.get("resolved") or {}).get("data_dir")
    if isinstance(recorded_data, str) and Path(recorded_data).is_dir():
        cfg.data_dir = recorded_data  # absolute: a resume from another working folder reads the same data
    info = runs.read_run(run_dir)
    state = info.state if info is not None else "unknown"
    if info is not None and (info.problem or info.read_only):  # e.g. a status.json that cannot say who runs it
        raise Refused(f"--resume: {run_dir} cannot be resumed: {info.problem or info.note}")
    if state in runs.ACTIVE_STATES:
        raise Refused(f"--resume: {run_dir} is still {state} (pid {info.status.get('pid')})")
    if state == "completed":
        raise Refused(f"--resume: {run_dir} already completed")
    for name in (runs.METRICS_FILE, runs.LOG_FILE, runs.PREDICTIONS_DIR):  # appended to, or written into
        if (run_dir / name).is_symlink():
            raise Refused(f"--resume: {run_dir / name} is a symlink; refusing to write through it")
    checkpoint = run_dir / runs.LAST_CHECKPOINT
    if not os.path.lexists(checkpoint):
        return cfg, None  # stopped or killed before its first checkpoint: start it afresh
    try:
        state_dict = read_checkpoint(run_dir, checkpoint.name, CHECKPOINT_KEYS, follow_symlink=True)
        classes = record.get("classes")
        check_weights(state_dict["model"], cfg, len(classes) if isinstance(classes, list) else 10, checkpoint.name)
    except ModelLoadError as e:
        raise Refused(f"--resume: {e}") from None
    return cfg, state_dict


def dry_run_report(cfg: TrainConfig, plan: Plan, data: Cifar10) -> dict:
    model = describe_model(cfg.depth, cfg.block, cfg.shortcut, len(data.classes))
    return {"epochs": plan.epochs, "steps_per_epoch": plan.steps_per_epoch, "total_steps": plan.total_steps,
            "train_images": plan.train_images, "val_images": plan.val_images, "test_images": len(data.test_labels),
            "test_every_epoch": plan.val_images == 0,
            "model": {"name": model.name, "params": model.params, "macs": model.macs},
            "config": dataclasses.asdict(cfg), **({"paper_deviations": list(PAPER_DEVIATIONS)} if cfg.preset else {})}


def print_dry_run(cfg: TrainConfig, plan: Plan, data: Cifar10) -> None:
    report = dry_run_report(cfg, plan, data)
    model = report["model"]
    print(f"{model['name']} ({cfg.block} blocks, shortcut {cfg.shortcut}): {model['params']:,} parameters, "
          f"{model['macs']:,} MACs per image")
    print(plan.describe() + f" · {report['test_images']:,} test images")
    schedule = f"{cfg.schedule} from lr {cfg.lr:g}, batch {cfg.batch_size}, momentum {cfg.momentum:g}, " \
               f"weight decay {cfg.weight_decay:g}"
    if cfg.schedule == "multistep":
        schedule += f", lr /10 at steps {', '.join(f'{d:,}' for d in lr_drop_steps(cfg, plan))}"
    if cfg.warmup_epochs:
        schedule += f", {cfg.warmup_mode} warm-up for {warmup_steps(cfg, plan):,} steps"
    print(schedule)
    if cfg.preset == "paper":
        print("departs from the paper in:" + "".join(f"\n  - {d}" for d in PAPER_DEVIATIONS))
    print(json.dumps(report))


class LogFileHandler(logging.StreamHandler):
    """train.log's handler. A write that fails (a full disk) silences it for the rest of the
    process: logging's default prints a traceback on stderr for every later line, while the
    run's failure is one line there."""

    def handleError(self, record: logging.LogRecord) -> None:
        self.setLevel(logging.CRITICAL + 1)
        with contextlib.suppress(OSError):
            self.stream.close()  # drops what a full disk left buffered: no second error at exit


def setup_logging(run_dir: Path | None, world: distributed.World) -> None:
    """Log to train.log in run_dir and to stderr; the ranks other than 0 of a distributed
    run (run_dir None) only their warnings and errors, to stderr, each line naming its rank."""
    root = logging.getLogger("resnet_core")
    root.setLevel(logging.INFO if world.is_main else logging.WARNING)  # rank 0 says what all do
    root.handlers.clear()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(f"[rank {world.rank}] %(message)s" if world.distributed else "%(message)s"))
    root.addHandler(console)
    trace_log.propagate = False
    trace_log.handlers.clear()
    if run_dir is None:
        trace_log.addHandler(console)
        return
    file_handler = LogFileHandler(runs.open_for_append(run_dir / runs.LOG_FILE))
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root.addHandler(file_handler)
    trace_log.addHandler(file_handler)


def claim(run_dir: Path, stack: contextlib.ExitStack) -> None:
    """Become the one writer of run_dir until stack closes, or Refused if a trainer is."""
    try:
        stack.callback(os.close, runs.claim_run_dir(run_dir))
    except runs.RunBusy as e:
        raise Refused(str(e)) from None


def prepare(cfg: TrainConfig, args: argparse.Namespace, typed: set[str], held: contextlib.ExitStack,
            world: distributed.World, backend: str, cuda_count: int) -> tuple | None:
    """Every check, the data and the claimed run folder: (cfg, plan, data, run_dir,
    checkpoint, changes: a resume's, see resume_config), None after a dry run, or Refused
    with nothing written. In a distributed
    run only rank 0 calls this; the world's checks come before the folder is made."""
    checkpoint, changes, given = None, {}, cfg
    for name, value in (("--run-dir", args.run_dir), ("--resume", args.resume),
                        *((flag(n), getattr(cfg, n)) for n in ("runs_dir", "data_dir") if n in typed)):
        if value is not None and not value.strip():  # else read as no flag, or as the working folder
            raise Refused(f"{name} is empty: give a folder")
    if args.resume:
        run_dir = Path(args.resume)
        if run_dir.is_dir():  # else check_resumable says what it is
            claim(run_dir, held)  # before reading it: two resumes at once never both run
        cfg, checkpoint = check_resumable(run_dir)
    check_config(cfg)
    if args.device_slots < 1:
        raise Refused("--device-slots must be at least 1")
    if not args.resume:
        run_dir = Path(args.run_dir) if args.run_dir else None
        if run_dir is not None:
            check_new_run_dir(run_dir)
        else:
            if world.max_restarts:
                raise Refused("torchrun --max-restarts restarts the processes with the same command: give --run-dir "
                              "so that a restart resumes that folder instead of starting another run")
            check_runs_dir(Path(cfg.runs_dir))
    if args.dry_run and cfg.download and not dataset_present(cfg.data_dir):
        raise Refused("--dry-run writes nothing, so it does not download: drop --dry-run, or --download first")
    # A resume reads the data its typed --data-dir names, if any, else the run's own.
    data = load_data(dataclasses.replace(cfg, **{name: getattr(given, name) for name in ("data_dir", "download")
                                                 if args.resume and name in typed}))
    if args.resume:
        try:
            cfg, changes = resume_config(cfg, given, typed, len(data.train_labels))
        except ValueError as e:
            raise Refused(str(e)) from None
        check_config(cfg)  # a changed device, say, that this machine lacks
    cfg, plan = resolve(cfg, typed, data, fresh=not args.resume, ranks=world.size)
    if checkpoint is not None and plan.total_steps < checkpoint["step"]:
        length = " ".join(f"{flag(name)} {getattr(cfg, name)}" for name in ("epochs", "max_steps") if name in typed)
        raise Refused(f"{length}: the run's checkpoint is at step {checkpoint['step']} (epoch {checkpoint['epoch']}) "
                      f"and a resume cannot cut a run behind it; give a longer run or none")
    problems = distributed.setup_problems(world, cfg.batch_size, cfg.device, backend, cfg.sync_bn, cuda_count)
    if problems:
        raise Refused("; ".join(problems))
    if args.dry_run:
        print_dry_run(cfg, plan, data)
        return None
    if run_dir is None:
        try:
            run_dir = runs.new_run_dir(Path(cfg.runs_dir), cfg.name)
        except OSError as e:
            raise Refused(f"--runs-dir {cfg.runs_dir}: {e.strerror or e}") from None
    elif not args.resume:
        run_dir.mkdir(parents=True, exist_ok=True)
    if not args.resume:
        claim(run_dir, held)  # a resume clicked while this run starts is refused
    return cfg, plan, data, run_dir, checkpoint, changes


def restarted_resume(args: argparse.Namespace, world: distributed.World) -> None:
    """Under torchrun --max-restarts a restarted rank 0 resumes the --run-dir its first
    attempt wrote (the command is the same each time), unless that attempt wrote no run."""
    if world.restart and args.run_dir and not args.resume:
        run_dir = Path(args.run_dir)
        if (run_dir / runs.CONFIG_FILE).exists():
            args.resume, args.run_dir = str(run_dir), None


def main(argv: list[str] | None = None) -> int:
    cfg, args, typed = parse(argv)
    try:
        world = distributed.from_env()
    except ValueError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    backend = distributed.backend_for(args.dist_backend, cfg.device)
    group = distributed.Group(world, backend)  # a world of one: no process group, no cost
    try:
        code = run_training(cfg, args, typed, world, backend, group)
    finally:
        group.close()
    return group.exit(code)


def run_training(cfg: TrainConfig, args: argparse.Namespace, typed: set[str], world: distributed.World,
                 backend: str, group: distributed.Group) -> int:
    """Prepare the run on rank 0, share it with the other ranks, and train: the exit code."""
    with contextlib.ExitStack() as held:  # the claim on the run folder, released on return
        outcome = None
        cuda_count = min(group.gather(torch.cuda.device_count()))  # the fewest of any node bound each node
        if world.is_main:
            restarted_resume(args, world)
            try:
                outcome = prepare(cfg, args, typed, held, world, backend, cuda_count)
            except Refused as e:
                outcome = f"{PROG}: error: {e}"
        if world.distributed:
            outcome = share_preparation(group, outcome)
        if outcome is None:  # a dry run
            return 0
        if isinstance(outcome, str):
            if world.is_main:
                print(outcome, file=sys.stderr)
            return 2
        cfg, plan, data, run_dir, checkpoint, changes = outcome
        stop = StopRequested()
        stop.install()
        try:
            setup_logging(run_dir if world.is_main else None, world)
        except OSError as e:  # train.log cannot be opened: a resume into a folder still unwritable
            what = f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e)
            print(f"{PROG}: error: cannot write {what}", file=sys.stderr)
            return 2
        if world.is_main:
            log.info("run folder: %s", run_dir)
            if args.resume:  # no trainer writes here now (claimed above): temp files are a kill's leftovers
                for path in runs.remove_stale_temp_files(run_dir):
                    log.info("removed %s, left by an interrupted write", path.relative_to(run_dir))
        return Run(cfg, plan, data, run_dir, stop, checkpoint, args.device_slots, group=group,
                   device_lock=not args.no_device_lock, changes=changes).execute()


def share_preparation(group: distributed.Group, outcome):
    """Rank 0's preparation, on every rank: the refusal (a string), None after a dry run, or
    (cfg, plan, data, run_dir, checkpoint, changes) with each rank's own copy of the data."""
    if group.world.is_main:
        shared = outcome if not isinstance(outcome, tuple) else {
            "cfg": dataclasses.asdict(outcome[0]), "run_dir": str(outcome[3]), "checkpoint": outcome[4]}
        group.broadcast(shared)
        return outcome
    shared = group.broadcast(None)
    if not isinstance(shared, dict):
        return shared
    cfg = TrainConfig(**shared["cfg"])
    if cfg.data_dir and not Path(cfg.data_dir).is_dir():  # rank 0's absolute path: this node's own default
        cfg.data_dir = None
    try:
        data = load_data(cfg)
        cfg, plan = resolve(cfg, set(), data, fresh=False, ranks=group.world.size)  # rank 0's config, resolved
    except Refused as e:
        raise SystemExit(f"{PROG}: error: rank {group.world.rank}: {e}") from None
    return cfg, plan, data, Path(shared["run_dir"]), shared["checkpoint"], {}  # rank 0 records the changes


if __name__ == "__main__":
    sys.exit(main())
