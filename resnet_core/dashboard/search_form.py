"""The Train page's sweep form beyond the grid: a search's flags and what a launch would
train, shown before it starts. Pure: app_pages/sweep_form.py draws the widgets."""

from __future__ import annotations

import math

SEARCH_LABELS = {"grid": "grid: every combination", "random": "random (Optuna)", "tpe": "TPE (Optuna, Bayesian)"}
PRUNE_LABELS = {"none": "none", "asha": "successive halving (ASHA)", "median": "median"}


def is_range_text(values: list[str]) -> bool:
    """Whether a field's typed values are one range, LOW..HIGH[:log] (a search samples it)."""
    return len(values) == 1 and ".." in values[0]


def search_args(kind: str, trials: int, prune: str) -> list[str]:
    """The sweep's flags for a search of `trials` runs (none for a grid, the default)."""
    if kind == "grid":
        return []
    return ["--search", kind, "--trials", str(trials)] + (["--prune", prune] if prune != "none" else [])


def budget_text(vary: dict[str, list], kind: str, trials: int, prune: str) -> str:
    """What a launch trains, before it starts: a grid's run count (its fields' value counts
    multiplied), or a search's trial budget; a grid with a range says it needs a search."""
    ranges = [name for name, values in vary.items() if is_range_text(values)]
    if kind == "grid":
        if ranges:
            return f"no runs: {ranges[0]} is a range, which only a random or TPE search samples"
        sizes = [len(values) for values in vary.values()]
        return f"{math.prod(sizes)} runs ({' × '.join(map(str, sizes))})" if sizes else "no runs: nothing varied yet"
    sampled = ", ".join(f"{name} {'in ' + values[0] if name in ranges else 'from ' + str(len(values)) + ' values'}"
                        for name, values in vary.items())
    pruning = "" if prune == "none" else f", losing runs stopped early ({PRUNE_LABELS[prune]})"
    sampler = SEARCH_LABELS[kind].split(" (")[0]
    return f"at most {trials} runs, sampled by {sampler}: {sampled or 'nothing varied yet'}{pruning}"


def space_text(vary: dict[str, list], ranges: dict[str, dict]) -> str:
    """A sweep's varied fields for its card: depth (3) × lr (0.01..0.5 log)."""
    return " × ".join([f"{name} ({len(values)})" for name, values in vary.items()]
                      + [f"{name} ({r['low']}..{r['high']}{' log' if r['log'] else ''})" for name, r in ranges.items()])
