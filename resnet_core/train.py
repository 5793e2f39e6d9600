"""Train a CIFAR ResNet into one run folder: ``python -m resnet_core.train --help``.

The command line: flags generated from :class:`resnet_core.config.TrainConfig` (read
into :class:`Parsed`), every check that can refuse a run before anything is written (one
line, exit code 2; the checks: resnet_core/train_checks.py), the resume, the dry run (resnet_core/dry_run.py), the
run folder claimed (:func:`prepare`, into a :class:`resnet_core.loop.Prepared`), then
:class:`resnet_core.loop.Run`. Everything a run
writes is described in resnet_core/runs/folder_format.py; the dashboard only reads it, so a run is the
same whether it was launched from the UI or by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import distributed, runs
from .cifar import (IMAGE_FOLDER, CifarData, DataError, dataset_present, dataset_spec, load_cifar, missing_data_message,
                    resolve_data_dir)
from .cifar_download import download_cifar
from .config import Plan, TrainConfig, apply_presets, flag, make_plan, resume_config
from .config_checks import config_errors, plan_errors
from .config_flags import add_config_arguments
from .folder_dataset import load_folder_dataset
from .image_folder import cache_folder
from .loop import Prepared, Run
from .stop_request import StopRequested
from .dry_run import folder_notes, print_dry_run
from .train_checks import (Refused, check_config, check_data_fits, check_fits, check_folder_fits, check_labels,
                           check_new_run_dir, check_resumable, check_runs_dir, check_same_files)
from .train_log import setup_logging

log = logging.getLogger("resnet_core.train")

PROG = "python -m resnet_core.train"


def _progress(doing: str, unit: str):
    """Progress of a download or a decoding on stderr (runs.StartingProgress's line: the
    Monitor shows the last one as a bar, as the run folder has no record yet): at each 10%,
    and between them each new percent after 2 s, so a long decode moves on the page and a
    short one prints ten lines."""
    last = [-1, time.monotonic()]

    def report(done: int, total: int) -> None:
        step = runs.StartingProgress(doing, done, total, unit)
        if step.percent != last[0] and (step.percent % 10 == 0 or time.monotonic() - last[1] >= 2):
            print(step.line, file=sys.stderr, flush=True)
            last[:] = step.percent, time.monotonic()

    return report


# --------------------------------------------------------------------- command line

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
    p.add_argument("--tag", action="append", default=[], dest="tags", metavar="TAG",
                   help="label the run (repeat for more tags): recorded in config.json, edited later on the Runs "
                        "page; letters, digits and - _ . : + = /")
    p.add_argument("--note", default=None, metavar="TEXT", help="a note on the run, recorded beside its tags")
    p.add_argument("--dry-run", action="store_true",
                   help="resolve and check everything, print the plan (last line JSON), write nothing")
    return p


@dataclass
class Parsed:
    """A command line: the config as typed (defaults elsewhere), the parsed flags, and the
    config fields given on it, which presets leave alone."""

    cfg: TrainConfig
    args: argparse.Namespace
    typed: set[str]


def parse(argv: list[str] | None, more_arguments=None) -> Parsed:
    """The command line read; more_arguments(parser) may add flags (the benchmark's)."""
    parser = build_parser()
    if more_arguments:
        more_arguments(parser)
    args = parser.parse_args(argv)
    typed = {f.name for f in dataclasses.fields(TrainConfig)} & set(vars(args))
    return Parsed(TrainConfig(**{name: getattr(args, name) for name in typed}), args, typed)


def load_data(cfg: TrainConfig, world: distributed.World | None = None) -> CifarData:
    """cfg.dataset from cfg.data_dir (downloaded first with --download where it is missing),
    or Refused with one line naming the file and what is wrong. An image folder is refused
    before decoding when its images would not fit on the device of each of the world's
    ranks, or in the RAM of their machine (check_folder_fits; world: None for one process)."""
    if cfg.dataset == IMAGE_FOLDER:
        try:
            return load_folder_dataset(cfg.data_dir, image_size=cfg.image_size, resize=cfg.resize,
                                       test_size=cfg.test_size, split_seed=cfg.split_seed, bad_images=cfg.bad_images,
                                       cache_dir=cache_folder(cfg.runs_dir),
                                       check=lambda scan: check_folder_fits(cfg, scan, world),
                                       progress=_progress(f"decoding the images of {cfg.data_dir}", "images"))
        except DataError as e:
            raise Refused(str(e)) from None
    present = dataset_present(cfg.dataset, cfg.data_dir)
    if not cfg.download and not present:
        raise Refused(f"{missing_data_message(cfg.dataset, resolve_data_dir(cfg.data_dir), 'no batch files')} "
                      "Or add --download.")
    try:
        if not present:
            downloading = _progress(f"downloading {dataset_spec(cfg.dataset).title}", "bytes")
            download_cifar(cfg.dataset, cfg.data_dir, downloading)
        return load_cifar(cfg.dataset, cfg.data_dir)
    except (DataError, OSError) as e:
        raise Refused(str(e)) from None


def resolve(cfg: TrainConfig, typed: set[str], data: CifarData, fresh: bool = True,
            ranks: int = 1) -> tuple[TrainConfig, Plan]:
    """The config the run uses (presets applied for a fresh run; a resumed run's record
    already holds them) and its plan, or Refused when it cannot run on this data, or its
    model or its data on the device (ranks: the processes that share each batch)."""
    if fresh:
        cfg = apply_presets(cfg, typed, len(data.train_labels))
    problems = config_errors(cfg) or plan_errors(cfg, len(data.train_labels))
    if problems:
        raise Refused("; ".join(problems.values()))
    check_fits(cfg, len(data.classes), ranks)
    check_data_fits(cfg, len(data.train_labels), len(data.test_labels), len(data.classes), ranks)
    return cfg, make_plan(cfg, len(data.train_labels))


def claim(run_dir: Path, stack: contextlib.ExitStack) -> None:
    """Become the one writer of run_dir until stack closes, or Refused if a trainer is."""
    try:
        stack.callback(os.close, runs.claim_run_dir(run_dir))
    except runs.RunBusy as e:
        raise Refused(str(e)) from None


def prepare(parsed: Parsed, held: contextlib.ExitStack, world: distributed.World, backend: str,
            cuda_count: int) -> Prepared | None:
    """Every check, the data and the claimed run folder (claimed until held closes); None
    after a dry run, which writes nothing, or Refused with nothing written. In a
    distributed run only rank 0 calls this; the world's checks come before the folder is made."""
    cfg, args, typed = parsed.cfg, parsed.args, parsed.typed
    check_folder_flags(parsed)
    labels = check_labels(args.tags, args.note, bool(args.resume))
    checkpoint, changes = None, {}
    if args.resume:
        run_dir = Path(args.resume)
        if run_dir.is_dir():  # else check_resumable says what it is
            claim(run_dir, held)  # before reading it: two resumes at once never both run
        cfg, checkpoint = check_resumable(run_dir)
    check_config(cfg)
    if args.device_slots < 1:
        raise Refused("--device-slots must be at least 1")
    if not args.resume:
        run_dir = check_new_run(args, cfg, world)
    if args.dry_run and cfg.download and not dataset_present(cfg.dataset, cfg.data_dir):
        raise Refused("--dry-run writes nothing, so it does not download: drop --dry-run, or --download first")
    # A resume reads the data its typed --data-dir names, if any, else the run's own.
    data = load_data(dataclasses.replace(cfg, **{name: getattr(parsed.cfg, name) for name in ("data_dir", "download")
                                                 if args.resume and name in typed}), world)
    if args.resume:
        if data.train_files:
            check_same_files(run_dir, data)
        try:
            cfg, changes = resume_config(cfg, parsed.cfg, typed, len(data.train_labels))
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
    if not args.resume:
        run_dir = make_run_dir(cfg, run_dir, held)
    return Prepared(cfg, plan, data, run_dir, checkpoint, changes, labels)


def check_folder_flags(parsed: Parsed) -> None:
    """Refused for a folder flag given empty, which would read as no flag, or as the working folder."""
    args = parsed.args
    for name, value in (("--run-dir", args.run_dir), ("--resume", args.resume),
                        *((flag(n), getattr(parsed.cfg, n)) for n in ("runs_dir", "data_dir") if n in parsed.typed)):
        if value is not None and not value.strip():
            raise Refused(f"{name} is empty: give a folder")


def check_new_run(args: argparse.Namespace, cfg: TrainConfig, world: distributed.World) -> Path | None:
    """A new run's --run-dir, checked, or None for a fresh folder under the runs folder."""
    if args.run_dir:
        check_new_run_dir(Path(args.run_dir))
        return Path(args.run_dir)
    if world.max_restarts:
        raise Refused("torchrun --max-restarts restarts the processes with the same command: give --run-dir "
                      "so that a restart resumes that folder instead of starting another run")
    check_runs_dir(Path(cfg.runs_dir))
    return None


def make_run_dir(cfg: TrainConfig, run_dir: Path | None, held: contextlib.ExitStack) -> Path:
    """A new run's folder, made and claimed until held closes (a resume clicked while this
    run starts is refused): run_dir, or a fresh one under the runs folder."""
    if run_dir is None:
        try:
            run_dir = runs.new_run_dir(Path(cfg.runs_dir), cfg.name)
        except OSError as e:
            raise Refused(f"--runs-dir {cfg.runs_dir}: {e.strerror or e}") from None
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    claim(run_dir, held)
    return run_dir


def restarted_resume(args: argparse.Namespace, world: distributed.World) -> None:
    """Under torchrun --max-restarts a restarted rank 0 resumes the --run-dir its first
    attempt wrote (the command is the same each time), unless that attempt wrote no run."""
    if world.restart and args.run_dir and not args.resume:
        run_dir = Path(args.run_dir)
        if (run_dir / runs.CONFIG_FILE).exists():
            args.resume, args.run_dir = str(run_dir), None


def main(argv: list[str] | None = None) -> int:
    parsed = parse(argv)
    try:
        world = distributed.from_env()
    except ValueError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    backend = distributed.backend_for(parsed.args.dist_backend, parsed.cfg.device)
    group = distributed.Group(world, backend)  # a world of one: no process group, no cost
    try:
        code = run_training(parsed, world, backend, group)
    finally:
        group.close()
    return group.exit(code)


def run_training(parsed: Parsed, world: distributed.World, backend: str, group: distributed.Group) -> int:
    """Prepare the run on rank 0, share it with the other ranks, and train: the exit code."""
    with contextlib.ExitStack() as held:  # the claim on the run folder, released on return
        outcome: Prepared | Refused | None = None
        cuda_count = min(group.gather(torch.cuda.device_count()))  # the fewest of any node bound each node
        if world.is_main:
            restarted_resume(parsed.args, world)
            try:
                outcome = prepare(parsed, held, world, backend, cuda_count)
            except Refused as e:
                outcome = e
        if world.distributed:
            outcome = share_preparation(group, outcome)
        if isinstance(outcome, Refused):
            if world.is_main:
                print(f"{PROG}: error: {outcome}", file=sys.stderr)
            return 2
        if outcome is None:  # a dry run
            return 0
        return train_prepared(outcome, parsed.args, group)


def train_prepared(prepared: Prepared, args: argparse.Namespace, group: distributed.Group) -> int:
    """Logging into the run folder, then the run: the exit code."""
    world, run_dir = group.world, prepared.run_dir
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
        for note in folder_notes(prepared.data):
            log.info("%s", note)
        if args.resume:  # no trainer writes here now (claimed above): temp files are a kill's leftovers
            for path in runs.remove_stale_temp_files(run_dir):
                log.info("removed %s, left by an interrupted write", path.relative_to(run_dir))
    return Run(prepared, stop, args.device_slots, group=group, device_lock=not args.no_device_lock).execute()


def share_preparation(group: distributed.Group, outcome: Prepared | Refused | None) -> Prepared | Refused | None:
    """Rank 0's preparation, on every rank: the refusal, None after a dry run, or the run
    prepared, with each rank's own copy of the data (rank 0 alone records a resume's changes)."""
    if group.world.is_main:
        shared = (None if outcome is None else str(outcome)) if not isinstance(outcome, Prepared) else {
            "cfg": dataclasses.asdict(outcome.cfg), "run_dir": str(outcome.run_dir), "checkpoint": outcome.checkpoint}
        group.broadcast(shared)  # the refusal's line, None after a dry run, or the run
        return outcome
    shared = group.broadcast(None)
    if not isinstance(shared, dict):
        return None if shared is None else Refused(shared)
    cfg = TrainConfig(**shared["cfg"])
    try:
        if cfg.data_dir and not Path(cfg.data_dir).is_dir() and cfg.dataset == IMAGE_FOLDER:
            raise Refused(f"the image folder {cfg.data_dir} is not on this machine: every machine needs it at the "
                          "same path")
        if cfg.data_dir and not Path(cfg.data_dir).is_dir():  # rank 0's absolute path: this node's own default
            cfg.data_dir = None
        data = load_data(cfg, group.world)
        cfg, plan = resolve(cfg, set(), data, fresh=False, ranks=group.world.size)  # rank 0's config, resolved
    except Refused as e:
        raise SystemExit(f"{PROG}: error: rank {group.world.rank}: {e}") from None
    return Prepared(cfg, plan, data, Path(shared["run_dir"]), shared["checkpoint"])


if __name__ == "__main__":
    sys.exit(main())
