"""TrainConfig on the command line: one flag per field, built from the field's type, help
and choices (:func:`add_config_arguments`, which the trainer and the sweep parse with), and
the flags that give chosen fields of a config back (:func:`config_argv`, which the
dashboard and the sweep start trainers with).
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from .config import FIELD_TYPES, TrainConfig, flag


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, built from the field. Defaults are suppressed, so the
    parsed namespace holds exactly the fields the user typed (presets fill only the others)."""
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default, ftype = getattr(defaults, f.name), FIELD_TYPES[f.name]
        help_text = (f.metadata["help"] + (f" (default: {default})" if default not in (None, "", []) else "")
                     + ("; a resume may change it" if f.metadata["resumable"] else ""))
        kwargs = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        if ftype.base is bool:  # optional: --x and --no-x, None (the trainer's choice) when neither is given
            action = argparse.BooleanOptionalAction if ftype.optional else "store_true"
            parser.add_argument(flag(f.name), action=action, **kwargs)
        elif ftype.base is list:
            parser.add_argument(flag(f.name), type=float, nargs="*", **kwargs)
        else:
            parser.add_argument(flag(f.name), type=ftype.base, choices=f.metadata["choices"], **kwargs)


def config_argv(cfg: TrainConfig, names) -> list[str]:
    """The command line that gives these fields of cfg (the inverse of add_config_arguments)."""
    argv: list[str] = []
    for f in fields(TrainConfig):
        value, ftype = getattr(cfg, f.name), FIELD_TYPES[f.name]
        if f.name not in names or value is None or (ftype.base is not bool and value == ""):
            continue
        if ftype.base is bool and ftype.optional:
            argv.append(flag(f.name) if value else "--no-" + flag(f.name)[2:])
        elif ftype.base is bool:
            argv += [flag(f.name)] if value else []
        elif ftype.base is list:
            argv += [flag(f.name), *map(repr, value)]
        else:
            argv += [flag(f.name), repr(value) if isinstance(value, float) else str(value)]
    return argv
