"""The dashboard's URLs: what a query parameter asks for, checked against what a page can
show, and the links the pages build. A page never shows something other than what its URL
asked for as if it were that: a value that names nothing shown is reported (found, not
found, not available with a reason, or not a valid name) and the user picks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import quote, unquote, urlencode

NAME_MAX = 255  # bytes in a file name (Linux NAME_MAX): a run id is a folder name of the runs folder
SHOWN_MAX = 60  # characters of a rejected value quoted back in a message (a link may hold 20,000)


def shown(value: str) -> str:
    """A value from a URL as a message quotes it: in quotes, control characters escaped, cut
    to SHOWN_MAX characters with the full length said."""
    text = value.encode("unicode_escape").decode("ascii") if not value.isprintable() else value
    if len(text) > SHOWN_MAX:
        return f"“{text[:SHOWN_MAX]}…” ({len(value):,} characters)"
    return f"“{text}”"


def is_name(value: str) -> bool:
    """Whether value can be a file name in a folder (a run id): not empty, not . or .., no
    '/' or NUL, at most NAME_MAX bytes."""
    return (value not in ("", ".", "..") and "/" not in value and "\0" not in value
            and len(value.encode("utf-8", "surrogatepass")) <= NAME_MAX)


@dataclass(frozen=True)
class Requested:
    """What a URL's parameter asked for: value is the option it names (None when it names
    none, or when the URL has no such parameter); problem says, in one line, why a value
    given is not shown."""

    value: str | None
    problem: str | None = None


def resolve(requested: str | None, options: Sequence[str], what: str = "run",
            unavailable: Mapping[str, str] | None = None, names: bool = True) -> Requested:
    """The option a URL's parameter names, or why it names none. unavailable: values that
    exist but this page cannot show, with the reason ("cannot be read: ...", "has no
    checkpoint yet"). names: the values are file names (run ids), so one that cannot be a
    name (../../etc/passwd) is refused as such rather than looked up."""
    if requested is None or requested == "":
        return Requested(None)
    if requested in options:
        return Requested(requested)
    if names and not is_name(requested):
        return Requested(None, f"The link's {what} {shown(requested)} is not a valid {what} name.")
    if unavailable and requested in unavailable:
        return Requested(None, f"The link's {what} {shown(requested)} {unavailable[requested]}.")
    return Requested(None, f"The link's {what} {shown(requested)} was not found.")


def resolve_many(text: str | None, options: Sequence[str], what: str = "run",
                 unavailable: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """The options a list parameter (join_ids) names, in its order, once each, and one
    problem line per value that names none."""
    picked: list[str] = []
    problems: list[str] = []
    for value in split_ids(text):
        found = resolve(value, options, what, unavailable)
        if found.value is not None and found.value not in picked:
            picked.append(found.value)
        elif found.problem and found.problem not in problems:
            problems.append(found.problem)
    return picked, problems


def join_ids(ids: Sequence[str]) -> str:
    """Ids as one query value, comma-separated (?runs=a,b): each id percent-encoded first, so
    an id holding a comma or a percent sign comes back whole (split_ids)."""
    return ",".join(quote(i, safe="") for i in ids)


def split_ids(text: str | None) -> list[str]:
    """The ids of a join_ids value (blanks left out)."""
    return [unquote(part.strip()) for part in (text or "").split(",") if part.strip()]


def page_url(url_path: str, **params: str) -> str:
    """A relative link to a page of the app with its query parameters, every value encoded
    (a run id with &, #, ? or spaces stays one value of one parameter)."""
    return f"./{quote(url_path)}" + (f"?{urlencode(params, quote_via=quote)}" if params else "")
