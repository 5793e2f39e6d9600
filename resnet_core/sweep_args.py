"""The sweep's command line (``python -m resnet_core.sweep``): its flags, and
:func:`parse`, which reads them into a :class:`SweepArgs`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from .config import TrainConfig

from .config_flags import add_config_arguments
from .runs import EXECUTORS, OBJECTIVES, PRUNERS, SEARCHES
from .sweep_options import OPTION_FIELDS
from .train import Parser

PROG = "python -m resnet_core.sweep"


@dataclass(frozen=True)
class SweepArgs:
    """A parsed sweep command line."""

    cfg: TrainConfig  # the training options as typed, fixed for the whole grid
    typed: set[str]  # the training options typed
    args: argparse.Namespace  # every flag, the sweep's own (--name, --vary, --resume...) included


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, conflict_handler="resolve",
               description="Train every combination of --vary values (or --trials sampled ones) as its own run, "
                           "a few at a time.")
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
    p.add_argument("--search", choices=SEARCHES, default="grid",
                   help="grid: every combination of the --vary values (default); random, tpe: --trials points "
                        "sampled by Optuna's RandomSampler or TPESampler, seeded by --seed (the same number every "
                        "run trains with), over value lists and ranges (--vary lr=0.01..0.5:log, warmup_epochs=0..2)")
    p.add_argument("--trials", type=int, default=None, metavar="N", help="with --search random or tpe: runs to train")
    p.add_argument("--objective", choices=OBJECTIVES, default=None,
                   help="with --search random or tpe: what it maximises, from each completed run's status.json "
                        "(default best_val_acc; a run without a validation split gives its final test_acc)")
    p.add_argument("--prune", choices=PRUNERS, default=None,
                   help="with --search random or tpe: stop trials that fall behind (asha: successive halving, "
                        "median: below the median of earlier trials at the same epoch), fed each epoch's validation "
                        "accuracy (test accuracy without a validation split); default none")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="with --search random or tpe: the Optuna storage holding the study (default: SQLite "
                        "<runs-dir>/.sweeps/NAME.optuna.db; e.g. postgresql://... for a cluster's shared one)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--resume", metavar="NAME", help="continue a stopped or crashed sweep: completed runs are "
                                                       "kept, the others resumed or launched")
    what.add_argument("--report", metavar="NAME", help="print the results table of a sweep's runs")
    what.add_argument("--dry-run", action="store_true", help="print the grid and each run's plan, launch nothing")
    p.add_argument("--format", choices=("md", "csv", "json"), default="md", help="of --report (default: md)")
    return p


def parse(argv: list[str] | None) -> SweepArgs:
    """The sweep's command line; a usage error exits with code 2."""
    args = build_parser().parse_args(argv)
    typed = {name for name in OPTION_FIELDS if name in vars(args) and name != "name"}  # --name is the sweep's
    return SweepArgs(cfg=TrainConfig(**{name: getattr(args, name) for name in typed}), typed=typed, args=args)
