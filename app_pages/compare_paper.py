"""Compare's section for the paper's comparison ("Identity Mappings", Table 3): original
against pre-activation units at each depth, CIFAR-10 and CIFAR-100 side by side, the chosen
runs' final test error (mean ± std over seeds) beside the paper's numbers. Everything it
shows is computed in resnet_core.dashboard.paper_comparison."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from app_pages import common
from resnet_core.dashboard import paper_comparison
from resnet_core.formatting import md_escape
from resnet_core.results import RunResult


def section(results: Sequence[RunResult]) -> None:
    cells = paper_comparison.unit_cells(results)
    st.subheader("Original vs pre-activation units", anchor=False,
                 help='He et al. 2016, "Identity Mappings in Deep Residual Networks", Table 3')
    st.plotly_chart(paper_comparison.comparison_figure(cells), key="cmp_paper", config={"displaylogo": False})
    common.table(paper_comparison.table_rows(cells), hide_index=True, width="stretch")
    st.caption(
        "Final test error (%): the last weights, evaluated once on the test set after training, of the chosen "
        "completed runs, grouped by dataset, network and unit order over seeds (and any other setting: the last "
        "column counts the runs trained with the paper's recipe); mean ± sample std (n − 1), bars ± std. "
        "Diamonds and the paper columns: the papers' numbers, as each reports them: "
        + "; ".join(md_escape(s) for s in paper_comparison.paper_sources(cells)) + ".")
