"""The comparison of "Identity Mappings in Deep Residual Networks" (He et al. 2016, Table 3):
original against pre-activation units at each depth, CIFAR-10 and CIFAR-100 side by side,
the runs' final test error as mean ± std over seeds beside the paper's number.

A run enters with its final test error: the last weights, evaluated once on the test set
after training (:attr:`resnet_core.results.RunResult.test_error`), so only completed runs
that recorded one. Runs of the same dataset, network (block, depth, shortcut) and unit order
share a cell whatever else they changed (seed, and any recipe setting): the table counts how
many of each cell's runs trained with the paper's recipe. Table 3's networks always have a
cell, runs or not, so that both datasets' targets are in view before any run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from ..cifar import DATASETS, dataset_title
from ..model_names import PAPER_RESULTS, PaperResult, paper_result, shortcut_label
from ..results import RunResult, is_paper_recipe, mean_std, mean_std_text
from ..runs.layout import PLAIN, model_name
from .figure_style import FIXED_AXIS, FIXED_MARGIN, PALETTE, frame

UNITS = {False: "original", True: "pre-activation"}
UNIT_COLOURS = {False: PALETTE[0], True: PALETTE[1]}
TABLE_3 = "Identity Mappings"  # in the source of each of Table 3's numbers


@dataclass(frozen=True)
class Network:
    """One network of the comparison, whichever the unit order: a row of Table 3."""

    block: str
    depth: int
    shortcut: str

    @property
    def label(self) -> str:
        """"ResNet-164 (bottleneck, B)"."""
        return f"{model_name(self.depth, self.shortcut)} ({self.block}, {shortcut_label(self.shortcut)})"


@dataclass(frozen=True)
class UnitCell:
    """The runs of one network with one unit order on one dataset, and the paper's number."""

    dataset: str
    network: Network
    preact: bool
    errors: tuple[float, ...]  # final test errors (%), one per run
    run_ids: tuple[str, ...]
    paper_recipe_runs: int  # how many of the runs trained with the paper's recipe
    paper: PaperResult | None

    @property
    def n(self) -> int:
        return len(self.errors)

    @property
    def error(self) -> tuple[float | None, float | None]:
        """Mean and sample std (n − 1) of the final test errors; None where there are none."""
        return mean_std(self.errors)


def _dataset(cfg: dict) -> str | None:
    """A run's dataset ("cifar10" for a record from before the field), None for one no
    comparison knows."""
    dataset = cfg.get("dataset", "cifar10")
    return dataset if dataset in DATASETS else None


def _network(cfg: dict) -> Network | None:
    """A run's network; None for one no row holds: a plain network has no residual units, so
    neither order (it drew as an "original" bar)."""
    depth, block, shortcut = cfg.get("depth"), cfg.get("block", "basic"), cfg.get("shortcut")
    if isinstance(depth, bool) or not isinstance(depth, int) or not isinstance(block, str) or shortcut == PLAIN:
        return None
    return Network(block, depth, shortcut if isinstance(shortcut, str) else "")


def unit_cells(results: Sequence[RunResult]) -> list[UnitCell]:
    """The runs with a final test error grouped by (dataset, network, unit order), over
    seeds, with Table 3's cells (runs or not), ordered by dataset, block, depth, shortcut,
    then original before pre-activation."""
    members: dict[tuple, list[RunResult]] = {key: [] for key in _table_3_keys()}
    for r in results:
        dataset, network = _dataset(r.config), _network(r.config)
        if r.test_error is not None and dataset is not None and network is not None:
            members.setdefault((dataset, network, r.config.get("preact") is True), []).append(r)
    cells = [UnitCell(dataset, network, preact, tuple(r.test_error for r in runs), tuple(r.run_id for r in runs),
                      sum(is_paper_recipe(r.config) for r in runs),
                      paper_result(dataset, preact, network.block, network.depth, network.shortcut))
             for (dataset, network, preact), runs in members.items()]
    return sorted(cells, key=lambda c: (DATASETS.index(c.dataset), c.network.block, c.network.depth,
                                        c.network.shortcut, c.preact))


def _table_3_keys() -> list[tuple[str, Network, bool]]:
    return [(dataset, Network(block, depth, shortcut), preact)
            for (dataset, preact, block, depth, shortcut), paper in PAPER_RESULTS.items() if TABLE_3 in paper.source]


def _cell_text(cell: UnitCell | None) -> str:
    """"5.81 ± 0.12 (n=3)", "—" without runs."""
    if cell is None or not cell.n:
        return "—"
    return f"{mean_std_text(*cell.error)} (n={cell.n})"


def table_rows(cells: Sequence[UnitCell]) -> list[dict]:
    """Table 3's layout: one row per network, for each dataset and unit order our mean ± std
    (n) and the paper's number, then how many runs trained with the paper's recipe."""
    by_key = {(c.dataset, c.network, c.preact): c for c in cells}
    rows = []
    for network in dict.fromkeys(c.network for c in cells):
        row = {"network": network.label}
        for dataset in DATASETS:
            for preact, unit in UNITS.items():
                cell = by_key.get((dataset, network, preact))
                name = f"{dataset_title(dataset)} {unit}"
                row[f"{name} %"] = _cell_text(cell)
                row[f"{name} paper %"] = f"{cell.paper.error:.2f}" if cell and cell.paper else "—"
        recipe = sum(c.paper_recipe_runs for c in cells if c.network == network)
        row["runs (paper's recipe)"] = f"{sum(c.n for c in cells if c.network == network)} ({recipe})"
        rows.append(row)
    return rows


def paper_sources(cells: Sequence[UnitCell]) -> list[str]:
    """The sources of the paper's numbers shown, each once, with how the paper got them where it
    says: '…Table 3 (original unit): each the median of 5 runs', or the networks whose number is
    not a single run's: 'He et al. 2016, Table 6 (ResNet-110 (basic, A): best of 5 runs; …)'.
    A run of a network Table 3 lacks (ResNet-20 on CIFAR-10) brings Table 6's number, which is
    not a median of 5: "the paper's medians of 5 runs" for every source misnamed it."""
    by_source: dict[str, list[UnitCell]] = {}
    for c in cells:
        if c.paper:
            by_source.setdefault(c.paper.source, []).append(c)
    texts = []
    for source, shown in by_source.items():
        kinds = {c.paper.note.split(";")[0] if c.paper.note else None for c in shown}
        if len(kinds) == 1 and None not in kinds:
            texts.append(f"{source}: each the {kinds.pop()}")
        else:
            noted = "; ".join(f"{c.network.label}: {c.paper.note}" for c in shown if c.paper.note)
            texts.append(f"{source} ({noted})" if noted else source)
    return texts


def comparison_figure(cells: Sequence[UnitCell], height: int = 400) -> go.Figure:
    """One panel per dataset: per network, a bar per unit order (mean final test error,
    ± sample std), and the paper's number as an open diamond on its unit's bar."""
    # Room at the top for the panels' titles, with the legend in one row at their right.
    layout = {**frame(None, height, {**FIXED_MARGIN, "t": 30}), "barmode": "group", "scattermode": "group",
              "hovermode": "closest", "uirevision": "keep",
              "legend": dict(orientation="h", x=1, xanchor="right", y=1.0, yanchor="bottom", font=dict(size=11))}
    fig = go.Figure(layout=layout)
    for i, dataset in enumerate(DATASETS):
        axis = "" if i == 0 else str(i + 1)
        fig.layout[f"xaxis{axis}"] = dict(domain=[0.55 * i, 0.55 * i + 0.45], type="category", **FIXED_AXIS)
        fig.layout[f"yaxis{axis}"] = dict(anchor=f"x{axis}", rangemode="tozero", ticksuffix="%", **FIXED_AXIS,
                                          title=dict(text="final test error (%)" if i == 0 else None))
        fig.add_annotation(text=dataset_title(dataset), xref=f"x{axis} domain", yref="paper", x=0, y=1.0,
                           xanchor="left", yanchor="bottom", showarrow=False, font=dict(size=14))
        for preact, unit in UNITS.items():
            mine = [c for c in cells if c.dataset == dataset and c.preact == preact]
            style = dict(xaxis=f"x{axis}", yaxis=f"y{axis}", offsetgroup=unit)
            fig.add_trace(go.Bar(
                x=[c.network.label for c in mine], y=[c.error[0] for c in mine], name=unit, showlegend=i == 0,
                legendgroup=unit,
                marker_color=UNIT_COLOURS[preact], error_y=dict(type="data", array=[c.error[1] or 0 for c in mine]),
                customdata=[[_cell_text(c)] for c in mine],
                hovertemplate=f"%{{x}}, {unit}: %{{customdata[0]}}<extra>{dataset_title(dataset)}</extra>", **style))
            papers = [c for c in mine if c.paper]
            fig.add_trace(go.Scatter(
                x=[c.network.label for c in papers], y=[c.paper.error for c in papers], mode="markers",
                name="the paper's", showlegend=i == 0 and preact, legendgroup="paper",
                marker=dict(symbol="diamond-open", size=12, color="black", line=dict(width=2)),
                customdata=[[f"{c.paper.text}, {c.paper.source}"] for c in papers],
                hovertemplate=f"%{{x}}, {unit}, paper: %{{customdata[0]}}<extra>{dataset_title(dataset)}</extra>",
                **style))
    return fig
