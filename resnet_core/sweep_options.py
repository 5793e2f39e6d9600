"""The training options a sweep record may hold, as its reader checks them: every reader
of sweep records passes :data:`RECORD_OPTIONS` to ``runs.read_sweep`` / ``runs.list_sweeps``.

The record's format (resnet_core.runs.sweep_checks) lives below the trainer's
configuration, so the options come from here: each value of its type and in range, argv
parsed as the trainer's flags. Imports neither torch nor the trainer: the dashboard reads
sweeps with it.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from . import runs
from .config import FIELD_TYPES, TrainConfig
from .config_flags import add_config_arguments
from .runs.values import MAX_COUNT, as_float, as_int, is_int, quoted

OPTION_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def value_problem(name: str, value: Any) -> str | None:
    """Why value cannot be a grid's value of training option name, or None. Numbers must be
    in range (integers within MAX_COUNT, floats finite); whether the trainer accepts the
    whole configuration is its own check, which a point that fails to start reports."""
    f, t = OPTION_FIELDS[name], FIELD_TYPES[name]
    shown = f"{f.name} {quoted(value)}"
    if t.base is int:
        if not is_int(value):
            return f"{shown} is not a whole number"
        if as_int(value, -MAX_COUNT, MAX_COUNT) is None:
            return f"{shown} is out of range"
    elif t.base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{shown} is not a number"
        if as_float(value) is None:
            return f"{shown} is not a finite number"
    elif t.base is bool:
        if not (isinstance(value, bool) or (value is None and t.optional)):
            return f"{shown} is not true or false"
    elif t.base is str:
        if not (isinstance(value, str) or (value is None and t.optional)):
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


def argv_problem(argv: list[str]) -> str | None:
    """Why a list of strings is not training options the trainer takes, or None."""
    parser = _OptionParser(add_help=False, allow_abbrev=False)
    add_config_arguments(parser)
    try:
        parser.parse_args(argv)
    except _UsageError as e:
        return f"argv: {str(e)[:200]}"
    return None


RECORD_OPTIONS = runs.TrainingOptions(names=frozenset(OPTION_FIELDS), value_problem=value_problem,
                                      argv_problem=argv_problem)
