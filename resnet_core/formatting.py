"""Numbers and run-folder text as people read them: durations, counts, percentages, and
text made safe to put into the markdown Streamlit renders (no Streamlit here)."""

from __future__ import annotations

import string
from typing import Any


def format_duration(seconds: float | None) -> str:
    """'—', '0.4 s', '42 s', '3 min 05 s', '2 h 04 min'. Under 10 s with a tenth: a CPU run's
    first step (0.4 s) read "0 s"."""
    if seconds is None:
        return "—"
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {m:02d} min"
    days, h = divmod(hours, 24)
    return f"{days} d {h} h"


def format_count(n: float | None, unit: str = "") -> str:
    """269722 -> '270K', 40_551_680 -> '40.6M'."""
    if n is None:
        return "—"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            value = n / size
            text = f"{value:.1f}" if value < 100 else f"{value:.0f}"
            return f"{text}{suffix}{unit}"
    return f"{n:.0f}{unit}"


def format_pct(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}%"


# Backslash escapes make the markdown renderer take these literally: emphasis, links, code,
# headings, lists, tables, HTML, LaTeX ($), and Streamlit's :red[...] directives (":").
_MD_PUNCTUATION = frozenset(string.punctuation)
# Inside a word these never start markdown, so run ids ("20250101-120000-r20_a.b") stay as typed.
_MD_INTRAWORD = frozenset("-._")
# Streamlit finds ":name:" icons and emoji, and GitHub-flavoured markdown finds "https://",
# "www." and "name@host" links, in the text left after escapes are resolved: an invisible
# word joiner after ":" and "@" and before the dot of "www." breaks those up.
_WORD_JOINER = "\u2060"


def md_escape(text: Any) -> str:
    """Text from a run folder (an error message, a class or model name, a config value) made
    safe to put into markdown that Streamlit renders: it shows as the same characters (and
    invisible word joiners), never as formatting, a link, HTML, an icon
    (``:material/...:``), an emoji shortcode or a colour (``:red[...]``)."""
    text = str(text)
    out = []
    for i, ch in enumerate(text):
        www = ch == "." and text[max(0, i - 3):i].lower() == "www"
        if www:
            out.append(_WORD_JOINER)
        inside_word = not www and 0 < i < len(text) - 1 and _ascii_alnum(text[i - 1]) and _ascii_alnum(text[i + 1])
        if ch in _MD_PUNCTUATION and not (ch in _MD_INTRAWORD and inside_word):
            out.append("\\" + ch)
        else:
            out.append(ch)
        if ch in ":@":
            out.append(_WORD_JOINER)
    return "".join(out)


def _ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()
