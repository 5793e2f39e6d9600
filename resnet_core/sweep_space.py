"""A search's ranges: ``--vary lr=0.01..0.5:log`` beside the grid's value lists.

A range is LOW..HIGH of a numeric training option, ``:log`` for a log-uniform one; an
integer option stays an integer (Optuna's suggest_int), a float one a float
(suggest_float). Only a random or tpe search samples ranges; a grid takes value lists.
Parsing is pure (no Optuna, no torch); runs.range_problem says why bounds are no range,
for the command line and the record's reader alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .config import FIELD_TYPES
from .runs import range_problem
from .train_checks import Refused

RANGE_MARK = ".."
LOG_SUFFIX = ":log"


@dataclass(frozen=True)
class Range:
    """LOW..HIGH of one numeric option; log: sampled log-uniformly."""

    low: float | int
    high: float | int
    log: bool = False

    def record(self, name: str) -> dict:
        """The record's entry: {"field", "low", "high", "log"}."""
        return {"field": name, **asdict(self)}

    def shown(self) -> str:
        """As --vary takes it: 0.01..0.5:log."""
        return f"{self.low}{RANGE_MARK}{self.high}{LOG_SUFFIX if self.log else ''}"


def is_range(text: str) -> bool:
    """Whether a --vary value list is a range (LOW..HIGH) rather than values."""
    return RANGE_MARK in text


def parse_range(name: str, text: str) -> Range:
    """--vary NAME=TEXT as a range; Refused in one line for a field that is not numeric,
    bounds that are not numbers (whole numbers for an integer field), an empty or
    inverted range, or a log range that reaches 0 or below."""
    where = f"--vary {name.replace('_', '-')}={text}"
    t = FIELD_TYPES[name]
    if t.base not in (int, float):
        raise Refused(f"{where}: a range needs a numeric option; {name} takes values (V1,V2,...)")
    body, log = (text[:-len(LOG_SUFFIX)], True) if text.endswith(LOG_SUFFIX) else (text, False)
    low_text, _, high_text = (s.strip() for s in body.partition(RANGE_MARK))
    try:
        low, high = (t.base(s) for s in (low_text, high_text))
    except ValueError:
        kind = "whole numbers" if t.base is int else "numbers"
        raise Refused(f"{where}: expected LOW..HIGH of {kind}, optionally :log") from None
    problem = range_problem(low, high, log)
    if problem:
        raise Refused(f"{where}: {problem}")
    return Range(low, high, log)
