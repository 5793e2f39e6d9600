"""Compare's config diff: the training options of two or more runs side by side, fields as
rows and runs as columns, with the fields whose values differ and, in each, the cells that
differ from the first run's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from .. import runs
from .run_filters import config_fields, config_value


@dataclass(frozen=True)
class ConfigDiff:
    """table: one row a config field (by name), one column a run (its title), each value as
    run_filters.field_text writes it (NOT_RECORDED where the run has none); differs: whether
    a cell's value is not the first run's (same shape); differing: the fields whose runs do
    not all agree, in the table's order."""

    table: pd.DataFrame
    differs: pd.DataFrame
    differing: list[str]

    def shown(self, identical_too: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The table and its mask, the identical fields left out unless identical_too."""
        rows = list(self.table.index) if identical_too else self.differing
        return self.table.loc[rows], self.differs.loc[rows]


def config_diff(infos: Sequence[runs.RunInfo]) -> ConfigDiff:
    """The config diff of these runs (two or more make a difference; one has none)."""
    fields = config_fields(infos)
    table = pd.DataFrame({info.title: [config_value(info, f) for f in fields] for info in infos}, index=fields,
                         dtype=object)
    table.index.name = "field"
    if table.empty:
        differs = pd.DataFrame(False, index=table.index, columns=table.columns)
    else:
        differs = table.ne(table.iloc[:, 0], axis=0)
    return ConfigDiff(table, differs, [f for f in fields if differs.loc[f].any()])


def highlight(differs: pd.DataFrame, style: str = "background-color: rgba(255, 170, 0, 0.35)") -> pd.DataFrame:
    """CSS for pandas' Styler.apply(axis=None): `style` on the cells that differ, none elsewhere."""
    return differs.map(lambda d: style if d else "")
