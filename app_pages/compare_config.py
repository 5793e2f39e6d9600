"""Compare's config diff: the training options that differ between the chosen runs, fields as
rows and runs as columns, the values other than the first run's highlighted (the table:
resnet_core/dashboard/config_diff.py); the identical fields behind a toggle."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from resnet_core import runs
from resnet_core.dashboard import config_diff
from resnet_core.dashboard.run_filters import NOT_RECORDED


def _table(diff: config_diff.ConfigDiff) -> None:
    identical_too = st.toggle("Show the identical fields too", key="cmp_config_all")
    table, differs = diff.shown(identical_too)
    if table.empty:
        st.info("The chosen runs were trained with the same options.", icon=":material/check:")
        return
    common.table(table.style.apply(lambda _: config_diff.highlight(differs), axis=None), width="stretch",
                 key="cmp_config_table")
    st.caption(f"Highlighted: a value other than the first run's (the left column). {NOT_RECORDED}: the run's "
               "config.json has no such field (written before the option existed).")


def section(chosen: list[runs.RunInfo]) -> None:
    """For two or more runs: an expander named by how many fields differ, the table inside."""
    if len(chosen) < 2:
        return
    diff = config_diff.config_diff(chosen)
    label = (f"Config diff: {len(diff.differing)} of {len(diff.table)} options differ" if diff.differing
             else "Config diff: the same options")
    common.lazy_expander(label, "cmp_config", draw=lambda: _table(diff), icon=":material/difference:")
