"""Compare: several runs' error curves (He et al.'s Figure 6; compare_curves.py: seeds averaged
with a band, smoothing, log scale, live refresh) and results table (Table 6:
runs that differ only by seed grouped, mean ± std), and two runs image by image:
the difference of their confusion matrices (click a cell for the images behind it), the
images one gets right and the other wrong, and the overlap of their unforgettable and
hard-to-learn training images (compare_dynamics.py); the two-run views are compare_pair.py's,
the config diff of the chosen runs compare_config.py's.
The runs, the view and the pair are in the URL."""

from __future__ import annotations

import streamlit as st

from app_pages import common, compare_config, compare_curves, compare_dynamics, compare_pair, compare_paper
from resnet_core import results, runs
from resnet_core.dashboard import comparison, error_curves, links
from resnet_core.formatting import md_escape

VIEWS = ["Curves", "Results", "Confusion difference", "Flips", "Training overlap"]


def _select_sweep(sweeps: dict[str, list[str]]) -> None:
    name = st.session_state.get("cmp_sweep")
    if name in sweeps:
        st.session_state["cmp_runs"] = list(sweeps[name])


def _pick_runs(readable: list[runs.RunInfo], by_id: dict[str, runs.RunInfo],
               left_out: dict[str, str]) -> list[runs.RunInfo]:
    """The runs to compare (kept in the URL as ?runs=a,b: links.join_ids), or all runs of a
    sweep; says which runs of the link are left out and why."""
    sweeps = comparison.sweeps(readable)
    chosen = st.session_state.get("cmp_runs")
    if chosen is None:  # first render: the link's runs
        chosen, problems = links.resolve_many(st.query_params.get("runs"), list(by_id), "run", left_out)
        for problem in problems:
            st.warning(f"{md_escape(problem)} Left out of the comparison.", icon=":material/search_off:")
        st.session_state["cmp_runs"] = chosen
    elif any(i not in by_id for i in chosen):  # a run deleted since
        st.session_state["cmp_runs"] = [i for i in chosen if i in by_id]
    c_runs, c_sweep = st.columns([4, 1], vertical_alignment="bottom")
    # wrap: in a column the chips otherwise stay on one scrolling row, 2 of 12 runs in view.
    chosen = c_runs.multiselect("Runs", list(by_id), key="cmp_runs", placeholder="pick runs to compare",
                                format_func=lambda i: common.run_title(by_id[i]), wrap=True)
    if set(sweeps.get(st.session_state.get("cmp_sweep"), ())) != set(chosen):
        st.session_state["cmp_sweep"] = None  # the runs no longer are the sweep picked: its box empties
    c_sweep.selectbox("…or pick a sweep", list(sweeps), index=None, key="cmp_sweep", on_change=_select_sweep,
                      args=(sweeps,), placeholder="pick a sweep" if sweeps else "no sweeps recorded",
                      disabled=not sweeps, format_func=lambda s: f"{s} ({len(sweeps[s])} runs)",
                      help="selects all runs whose config records this sweep")
    if len(chosen) > 2:  # past about ten chips the box scrolls: the count says how many it holds
        st.caption(f"{len(chosen)} runs chosen")
    common.set_query("runs", links.join_ids(chosen))
    return [by_id[i] for i in chosen]


def _results(chosen: list[runs.RunInfo]) -> None:
    run_results = [results.run_result(info) for info in chosen]
    groups = results.group_results(run_results)
    table = comparison.results_table(groups)
    number = st.column_config.NumberColumn
    std_help = "sample standard deviation (n − 1); empty for n = 1"
    common.table(table, hide_index=True, width="stretch", column_config={
        "runs": number("n", help="completed runs averaged in this row"),
        "unfinished": number("unfinished", help="runs of this config not completed: counted, never averaged"),
        "test_error_mean": number("final test error %", format="%.2f",
                                  help="100 − accuracy of the final weights on the test set, evaluated once after "
                                       "training; mean over the row's completed runs"),
        "test_error_sample_std": number("test ± std", format="%.2f", help=std_help),
        "test_error_n": number("test n", help="runs in the test mean: the completed runs that recorded a test error"),
        "val_error_mean": number("best val error %", format="%.2f",
                                 help="the best epoch's error on the held-out validation split; empty for runs "
                                      "without one"),
        "val_error_sample_std": number("val ± std", format="%.2f", help=std_help),
        "val_error_n": number("val n", help="runs in the validation mean: the completed runs with a validation error"),
        "params": number("params", format="%,d"), "macs": number("MACs / image", format="%,d"),
        "seconds_mean": number("time (s)", format="%.0f", help="mean wall time of training"),
        "images_per_s_mean": number("images/s", format="%.0f", help="mean training throughput after the first epoch"),
        "paper_test_error": number("paper test error %", format="%.2f",
                                   help="the test error the paper reports for this network on the rows' dataset, "
                                        "shown only for rows trained with the paper's recipe (--preset paper)"),
        "paper_note": st.column_config.TextColumn(
            "paper's note", help="how the paper got its number where it is not a single run: ResNet-110's is the "
                                 "best of 5, \"Identity Mappings\"' the median of 5, to read beside this row's "
                                 "mean ± std"),
        "paper_source": st.column_config.TextColumn("paper source", help="the paper and table the number is from"),
        "run_ids": st.column_config.TextColumn("runs"),
    })
    d1, d2, _ = st.columns([1, 1, 4])
    d1.download_button("Download CSV", results.report(groups, "csv"), "results.csv", "text/csv",
                       icon=":material/download:", key="cmp_csv")
    d2.download_button("Download Markdown", results.report(groups, "md"), "results.md", "text/markdown",
                       icon=":material/download:", key="cmp_md")
    lines = comparison.depth_lines(groups)
    if lines:
        st.plotly_chart(error_curves.error_vs_depth_figure(lines, title="Final test error against depth"),
                        key="cmp_depth", config={"displaylogo": False})
        st.caption("One line per shortcut option (plain networks dashed), split by any other setting that differs "
                   "between rows; bars: ± sample std over seeds. Open circles: the paper's number where a row "
                   "trained with the paper's recipe.")
    else:
        st.caption("The chart of error against depth appears once a chosen run has completed.")
    compare_paper.section(run_results)


st.title("Compare")
all_runs = runs.list_runs(common.runs_dir())
readable = [r for r in all_runs if r.problem is None]
unreadable = [r for r in all_runs if r.problem is not None]
if not readable:
    st.info("No runs to compare yet." if not all_runs else "No run folder here can be read.", icon=":material/info:")
    st.page_link(common.TRAIN, label="Launch a run", icon=":material/rocket_launch:")
    st.stop()
chosen = _pick_runs(readable, {r.run_id: r for r in readable},
                    {r.run_id: f"cannot be read: {r.problem}" for r in unreadable})
if unreadable:
    st.caption("Left out, cannot be read: " + "; ".join(f"{md_escape(r.run_id)} ({md_escape(r.problem)})"
                                                          for r in unreadable))
if not chosen:
    st.info("Pick runs (or a sweep) to compare.", icon=":material/touch_app:")
    st.stop()
compare_config.section(chosen)

common.url_choice("view", VIEWS, VIEWS[0], "view")  # st.tabs drops a ?view= it does not know without a word
curves_tab, results_tab, diff_tab, flips_tab, overlap_tab = st.tabs(VIEWS, key="view", on_change="rerun",
                                                                     bind="query-params")
for tab, view in ((curves_tab, compare_curves.view), (results_tab, _results), (diff_tab, compare_pair.difference_view),
                  (flips_tab, compare_pair.flips_view), (overlap_tab, compare_dynamics.overlap_view)):
    with tab:
        if tab.open:
            view(chosen)
