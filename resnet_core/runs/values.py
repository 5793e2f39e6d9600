"""Numbers read from files, checked once: every reader of a run folder, a sweep record or a
metrics row takes its numbers through these, and none trusts one a file holds.

A file may hold any JSON number: an integer of 5,000 digits (which Python's int parser
refuses with ValueError, past its 4,300-digit limit), 2**63 and beyond (which pandas and
Arrow cannot store in an int64 column), 1e400 (inf), NaN, a boolean (an int to Python),
a negative count. :func:`loads` parses any JSON text without raising on its numbers; the
``as_*`` functions give a number in range, or None, never raising either.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Counts (epochs, steps, images, sizes) a float holds exactly: the charts divide and plot them.
MAX_COUNT = 2 ** 53
# pid_t is 32-bit: os.kill and os.waitpid raise OverflowError above it.
MAX_PID = 2 ** 31 - 1
# An integer of more digits is read as a float (inf past 308 digits), so that no file can make
# the parser raise (4,300 digits) or a reader carry an integer no column can hold; 2**64 has 20.
_INT_DIGITS = 24


def _parse_int(text: str) -> int | float:
    # A Python call per integer: 200,000 step rows (two integers each) decode in 0.81 s
    # instead of json's 0.63 s here; the price of no file ever yielding an int past 24 digits.
    return int(text) if len(text) <= _INT_DIGITS else float(text)


_DECODER = json.JSONDecoder(parse_int=_parse_int)


def loads(text: str) -> Any:
    """json.loads for text a file holds: integers too long for an int come back as floats
    (inf beyond any float), NaN and Infinity as floats. Raises json.JSONDecodeError (a
    ValueError) for text that is not JSON and RecursionError for nesting too deep, as
    json.loads does, and nothing for any number."""
    return _DECODER.decode(text)


def raw_decode(text: str) -> tuple[Any, int]:
    """json.JSONDecoder.raw_decode with loads' numbers: the value at the start of text and
    where it ends."""
    return _DECODER.raw_decode(text)


# Of a value quoted in a one-line problem ("pid '...' is not a process id"): a line, not a dump.
QUOTED_CHARS = 40


def quoted(value: Any) -> str:
    """repr(value) for a one-line problem, cut to QUOTED_CHARS: a file may hold any size."""
    text = repr(value)
    return text if len(text) <= QUOTED_CHARS else text[:QUOTED_CHARS - 3] + "..."


def is_int(value: Any) -> bool:
    """A JSON integer: an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def as_int(value: Any, lo: int, hi: int) -> int | None:
    """value if it is an integer (not a bool, not a float) in lo..hi, else None."""
    return value if is_int(value) and lo <= value <= hi else None


def as_count(value: Any, default: int | None = None) -> int | None:
    """value as an int if it is a whole number (an int, or a float such as 3.0) in
    0..MAX_COUNT, else default."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    count = as_int(value, 0, MAX_COUNT)
    return default if count is None else count


def is_pid(value: Any) -> bool:
    """A plausible process id: an integer in 1..MAX_PID."""
    return as_int(value, 1, MAX_PID) is not None


def as_float(value: Any, default: float | None = None) -> float | None:
    """value as a finite float if it is a JSON number (not a bool); default for anything
    else: a string, a list, NaN, inf, an integer beyond any float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    try:
        value = float(value)
    except OverflowError:
        return default
    return value if math.isfinite(value) else default
