"""A sweep's grid: ``--vary FIELD=V1,V2,...`` values parsed by each training option's type
and choices, shown back as typed, the points' labels and run names, and the check that the
trainer would take every point before anything starts.
"""

from __future__ import annotations

import dataclasses
from typing import Callable
import difflib
import itertools

from . import placement, runs
from .config import FIELD_TYPES, FieldType, TrainConfig, apply_presets, flag
from .config_checks import config_errors, plan_errors
from .runs.sweep_checks import FIXED
from .sweep_options import OPTION_FIELDS
from .sweep_space import Range, is_range, parse_range
from .train_checks import Refused

SWITCH_VALUES = {"auto": None, "on": True, "off": False}
BOOL_VALUES = {"true": True, "false": False}


def grid(vary: dict[str, list]) -> list[dict]:
    """Every combination of the values, the first field varying slowest."""
    return [dict(zip(vary, combo, strict=True)) for combo in itertools.product(*vary.values())]


def parse_value(name: str, text: str):
    """One --vary value of field `name`, parsed by the field's type and choices."""
    f, t, where = OPTION_FIELDS[name], FIELD_TYPES[name], f"--vary {name.replace('_', '-')}={text}"
    if t.base is bool and not t.optional:
        if text.lower() not in BOOL_VALUES:
            raise Refused(f"{where}: not true or false")
        return BOOL_VALUES[text.lower()]
    if t.base is bool:  # a three-way switch: auto leaves it to the trainer
        if text.lower() not in SWITCH_VALUES:
            raise Refused(f"{where}: not auto, on or off")
        return SWITCH_VALUES[text.lower()]
    kind = t.base if t.base in (int, float) else str
    try:
        value = kind(text)
    except ValueError:
        raise Refused(f"{where}: not {'a whole number' if kind is int else 'a number'}") from None
    choices = f.metadata["choices"]
    if choices and value not in choices:
        raise Refused(f"{where}: not one of {', '.join(choices)}")
    return value


def parse_vary(items: list[str], typed: set[str]) -> dict[str, list | Range]:
    """--vary FIELD=V1,V2,... options as {field: values}, in the order given; a
    FIELD=LOW..HIGH[:log] one as {field: Range} (resnet_core.sweep_space), for a search."""
    vary: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        name = key.strip().lstrip("-").replace("-", "_")
        if not sep:
            raise Refused(f"--vary {item}: expected FIELD=V1,V2,...")
        if name not in OPTION_FIELDS:
            close = difflib.get_close_matches(name, list(OPTION_FIELDS), n=1)
            raise Refused(f"--vary {item}: no such option" + (f"; did you mean {close[0]}?" if close else ""))
        if name in FIXED:
            raise Refused(f"--vary {key}: cannot be varied ({FIXED[name]})")
        if FIELD_TYPES[name].base is list:
            raise Refused(f"--vary {key}: a list-valued option cannot be varied")
        if name in typed:
            raise Refused(f"--vary {key}: also given as {flag(name)}; give it one way")
        if name in vary:
            raise Refused(f"--vary {key} is given twice; list all its values in one")
        if is_range(values):
            vary[name] = parse_range(name, values.strip())
            continue
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
    if FIELD_TYPES[name] == FieldType(bool, True):
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


def check_points(base: TrainConfig, typed: set[str], vary: dict[str, list], train_images: Callable[[TrainConfig], int],
                 executor: str = "local") -> None:
    """Refused naming the field and value of the first point the trainer would refuse
    (train_images: a point's training set, by its dataset and test share). The devices are
    this machine's for a local sweep; on Ray the cluster's, checked once it is reached
    (RayExecutor.prepare), and Ray picks each run's GPU."""
    for values in grid(vary):
        point = dataclasses.replace(base, **values)
        cfg = apply_presets(point, typed | set(values), train_images(point))
        problems = config_errors(cfg) or plan_errors(cfg, train_images(point))
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


MAX_CHECKED_WHOLE_NUMBERS = 1000  # an integer range's values each checked (1,000 points: 0.1 s)


def check_ranges(base: TrainConfig, typed: set[str], vary: dict[str, list], ranges: dict[str, Range],
                 train_images: Callable[[TrainConfig], int], executor: str = "local") -> None:
    """check_points for a search: its value lists with its ranges' ends, then each integer range
    of at most MAX_CHECKED_WHOLE_NUMBERS at every whole number it may sample. Checked at its
    ends only, --vary depth=8..20 sampled 15 and 17 and none of its 3 trials started (a
    depth must be 6n+2)."""
    check_points(base, typed, vary | {k: [r.low, r.high] for k, r in ranges.items()}, train_images, executor)
    for name, r in ranges.items():
        if isinstance(r.low, int) and r.high - r.low < MAX_CHECKED_WHOLE_NUMBERS:
            try:
                check_points(base, typed, vary | {name: list(range(r.low, r.high + 1))}, train_images, executor)
            except Refused as e:
                raise Refused(f"{e} (--vary {name.replace('_', '-')}={r.shown()} samples every whole number in "
                              f"it: list the values instead)") from None


def devices_of(base: TrainConfig, vary: dict[str, list]) -> list[str]:
    """Every device the grid's runs may take."""
    specs = vary.get("device", [base.device])
    return list(dict.fromkeys(d for spec in specs for d in placement.candidate_devices(spec)))
