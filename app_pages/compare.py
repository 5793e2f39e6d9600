"""Compare: several runs' error curves (He et al.'s Figure 6) and results table (Table 6:
runs that differ only by seed grouped, mean ± std), and two runs image by image:
the difference of their confusion matrices (click a cell for the images behind it), the
images one gets right and the other wrong, and the overlap of their unforgettable and
hard-to-learn training images (compare_dynamics.py). The runs, the view and the pair are in the URL."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import caches, common, compare_dynamics, compare_paper
from resnet_core import results, runs
from resnet_core.evaluation_labels import evaluation_labels
from resnet_core.dashboard import (cell_selection, class_view, comparison, confusion_figures, error_curves,
                                   gallery_cards, gallery_records, links, run_images)
from resnet_core.formatting import format_pct, md_escape
from resnet_core.runs.values import as_count

PER_PAGE = 30
CELL_KEY = "cmp_cell"  # our own copy of the clicked difference cell: (true, pred)
VIEWS = ["Curves", "Results", "Confusion difference", "Flips", "Training overlap"]
SPLITS = {"val": "validation", "test": "test"}
# Past this many classes the difference matrix takes the page's width and MANY_CLASSES_HEIGHT,
# its images below it: beside the gallery, 100 classes (CIFAR-100's) left a cell 4 px.
MANY_CLASSES = 20
MANY_CLASSES_HEIGHT = 900


def _name(info: runs.RunInfo) -> str:
    return f"{info.model_name} · {info.run_id}" if info.model_name else info.run_id


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


@st.cache_data(show_spinner=False, max_entries=256)
def _metrics(run_dir: str, mtime_ns: int, size: int) -> tuple[list[dict], list[dict]]:
    rows = runs.read_metrics(run_dir)
    return [r for r in rows if r.get("type") == "step"], [r for r in rows if r.get("type") == "epoch"]


def _rows(info: runs.RunInfo) -> tuple[list[dict], list[dict]]:
    """A run's step and epoch rows, cached by metrics.jsonl's modification time and size."""
    try:
        st_ = (info.path / runs.METRICS_FILE).lstat()
        key = (st_.st_mtime_ns, st_.st_size)
    except OSError:
        key = (0, 0)  # none yet: read_metrics reads it as empty
    return _metrics(str(info.path), *key)


def _curves(chosen: list[runs.RunInfo]) -> None:
    c_x, c_y = st.columns([3, 2], vertical_alignment="bottom")
    x_axis = c_x.segmented_control("x axis", list(error_curves.ERROR_X_AXES), key="cmp_x", default="iterations",
                                   required=True)
    paper_range = c_y.toggle("y axis 0–20% as in the paper", key="cmp_y20")
    curves = []
    for info in chosen:
        steps, epochs = _rows(info)
        spe = info.resolved.get("steps_per_epoch")
        curves.append(error_curves.CurveRun(_name(info), steps, epochs, evaluation_labels(info.config),
                                            as_count(spe) or None))
    st.plotly_chart(error_curves.error_curves_figure(curves, x_axis or "iterations", y_max=20 if paper_range else None),
                    key="cmp_curves", config={"displaylogo": False})
    from_epochs = [c.name for c in curves if not c.step_rows and c.epoch_rows]
    empty = [c.name for c in curves if not c.step_rows and not c.epoch_rows]
    st.caption(
        "Error (%) = 100 − accuracy. **Dashed**: training error on the augmented training batches, from the step "
        "rows' `acc` (the mean over the steps since the previous step row)"
        + (f", from the epoch rows' `train_acc` for {md_escape(', '.join(from_epochs))}" if from_epochs else "")
        + ". **Bold**: validation error after each epoch; for runs without a validation split, the test error "
          "evaluated after each epoch for monitoring only, labelled “test (monitoring)”. "
          "Wall time adds up the epochs' `epoch_seconds`.")
    if empty:
        st.caption(f"No metrics recorded yet: {md_escape(', '.join(empty))}.")


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
                                 "best of 5, to read beside this row's mean ± std"),
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


@dataclass(frozen=True)
class Pair:
    """Two runs' records of the same images, ready to compare."""

    a: runs.RunInfo
    b: runs.RunInfo
    a_preds: dict
    b_preds: dict
    paired: comparison.Paired
    classes: list[str]
    split: str


def _evaluation_pickers(chosen: list[runs.RunInfo]) -> tuple[runs.RunInfo, runs.RunInfo, str, str]:
    """Runs A and B among those chosen, the split and the epoch choice (kept in the URL as
    ?a=...&b=...&split=...&epoch=...)."""
    by_id = {r.run_id: r for r in chosen}
    ids = list(by_id)
    c_a, c_b, c_split, c_epoch = st.columns([3, 3, 2, 3])
    # A run standing in for one the link names is never the other side's: a run compared with
    # itself shows no differences, as if there were none.
    common.seed_from_query("cmp_a", "a", ids, next(i for i in ids if i != st.query_params.get("b")), "run A")
    a = c_a.selectbox("Run A", ids, key="cmp_a", format_func=lambda i: common.run_title(by_id[i]))
    common.seed_from_query("cmp_b", "b", ids, next(i for i in ids if i != a), "run B")
    b = c_b.selectbox("Run B", ids, key="cmp_b", format_func=lambda i: common.run_title(by_id[i]))
    common.seed_from_query("cmp_split", "split", list(SPLITS), "test", "split")
    split = c_split.segmented_control("Split", list(SPLITS), key="cmp_split", required=True,
                                      format_func=SPLITS.get) or "test"
    both = sorted(set(runs.recorded_epochs(by_id[a].path, split)) & set(runs.recorded_epochs(by_id[b].path, split)))
    choices = [comparison.FINAL, comparison.BEST] + [str(e) for e in both]
    names = {comparison.FINAL: "final (each run's last)", comparison.BEST: "best validation epoch (each run's)"}
    common.seed_from_query("cmp_epoch", "epoch", choices, comparison.FINAL, "epoch")
    epoch = c_epoch.selectbox("Epoch", choices, key="cmp_epoch",
                              format_func=lambda c: names.get(c, f"epoch {c} (recorded by both)"))
    for param, value in (("a", a), ("b", b), ("split", split), ("epoch", epoch)):
        common.set_query(param, value)
    return by_id[a], by_id[b], split, epoch


def _load_pair(chosen: list[runs.RunInfo]) -> Pair | None:
    """The pickers, then A's and B's records; None (with the reason shown) when they cannot
    be compared."""
    if len(chosen) < 2:
        st.info("Pick two or more runs above to compare two of them image by image.", icon=":material/touch_app:")
        return None
    a, b, split, choice = _evaluation_pickers(chosen)
    loaded, texts = [], []
    for tag, info in (("A", a), ("B", b)):
        split_name = evaluation_labels(info.config).split_name(split)
        pick = comparison.pick_epoch(runs.recorded_epochs(info.path, split), choice, split_name,
                                     comparison.best_epoch(info))
        if pick.problem:
            st.warning(f"{tag} ({md_escape(_name(info))}) {md_escape(pick.problem)}.", icon=":material/block:")
            return None
        try:
            preds = caches.predictions(info.path, split, pick.epoch)
        except runs.RunFolderError as e:
            st.error(f"{tag} ({md_escape(_name(info))}): {md_escape(e)}", icon=":material/broken_image:")
            return None
        loaded.append(comparison.evaluated(tag, info, split, preds))
        texts.append(f"**{tag}** = {md_escape(_name(info))}: {md_escape(pick.text)}")
    problem = comparison.comparability_problem(*loaded)
    if problem:
        st.error(md_escape(problem), icon=":material/compare_arrows:")
        return None
    paired = comparison.pair(loaded[0].preds, loaded[1].preds)
    st.caption(" · ".join(texts) + f" · {len(paired):,} images evaluated by both")
    # load_predictions checked the records against config.json's classes: there are some.
    return Pair(a, b, loaded[0].preds, loaded[1].preds, paired, list(loaded[0].classes), split)


def _compared_gallery(pair: Pair, positions: np.ndarray, kind: str, title: str, by: str, key: str) -> None:
    """One page of images (positions into pair.paired), most confident first by run `by`
    ("a" or "b"), with both runs' predictions."""
    st.markdown(f"**{title}** · {len(positions):,} image{'s' if len(positions) != 1 else ''}")
    if not len(positions):
        st.caption("None.")
        return
    ordered = comparison.most_confident_first(pair.paired, positions, pair.a_preds if by == "a" else pair.b_preds, by)
    page = common.page_picker(len(ordered), PER_PAGE, key, width=220)
    shown = ordered[page.start:page.stop]
    items = list(zip(gallery_records.records(pair.a_preds, pair.paired.a_pos[shown]),
                     gallery_records.records(pair.b_preds, pair.paired.b_pos[shown]), strict=True))
    images_from = run_images.image_folder(pair.a.config, common.data_dir(), pair.a.dataset)
    images, origin = common.split_images(pair.a, pair.split, pair.a_preds, images_from)
    st.caption(f"Showing {page.start + 1}–{page.stop}, most confident {by.upper()} first · {origin}")
    st.html(gallery_cards.compared_gallery_html(items, images, pair.classes, size=80,
                                                attrs={"kind": kind, "total": len(positions)}))


def _on_diff_select(view: class_view.ClassView, classes: list[str]) -> None:
    """on_select: keep the clicked cell's classes in our own key (the chart's selection is
    lost whenever the figure changes, e.g. to outline the cell)."""
    cell = cell_selection.selection_from_event(st.session_state.get("cmp_cm"), view.names(classes))
    if cell is not None:
        cell = view.cell_of(cell)
        st.session_state[CELL_KEY] = (cell.true, cell.pred)


def _difference(pair: Pair) -> None:
    n = len(pair.classes)
    diff = comparison.difference(pair.paired, n)
    a_right, b_right = int(np.trace(diff.a)), int(np.trace(diff.b))
    total = len(pair.paired)
    k1, k2, k3 = st.columns(3)
    k1.metric("A correct", f"{a_right:,} of {total:,}", help=f"{format_pct(a_right / total)} accuracy")
    k2.metric("B correct", f"{b_right:,} of {total:,}", delta=f"{b_right - a_right:+,} vs A",
              help=f"{format_pct(b_right / total)} accuracy")
    k3.metric("Predictions changed", f"{int((pair.paired.a_pred != pair.paired.b_pred).sum()):,}",
              help="images that B puts in another cell than A")
    value = st.session_state.get(CELL_KEY)
    cell = cell_selection.Cell(*value) if value and max(value) < n else None
    # Superclass by superclass where both runs group their classes alike (the classes are the same).
    grouped = pair.a.superclass_of == pair.b.superclass_of and len(pair.a.superclass_of) == n
    view = class_view.ClassView(class_view.grouped_order(pair.classes, pair.a.superclass_of if grouped else []))
    many = n > MANY_CLASSES
    mat_col, gal_col = (st.container(), st.container()) if many else st.columns([11, 10], gap="medium")
    with mat_col:
        st.plotly_chart(confusion_figures.difference_figure(view.matrix(diff.a), view.matrix(diff.b),
                                                            view.names(pair.classes), selected=view.drawn_at(cell),
                                                            height=MANY_CLASSES_HEIGHT if many else 600),
                        key="cmp_cm", on_select=lambda: _on_diff_select(view, pair.classes), selection_mode="points",
                        config={"displayModeBar": False})
        st.caption("Each cell: B's count − A's count (rows: true class, columns: predicted class"
                   + (", superclass by superclass" if grouped else "") + "); blue where B puts more images, red "
                   "where fewer. Hover for both counts; click a cell for the images that moved into or out of it.")
    with gal_col:
        if cell is None:
            st.info("Click a cell of the difference to see the images behind it.", icon=":material/touch_app:")
            return
        at = (cell.true, cell.pred)
        h1, h2 = st.columns([5, 1], vertical_alignment="center")
        h1.markdown(f"**true {md_escape(pair.classes[cell.true])} → predicted {md_escape(pair.classes[cell.pred])}**"
                    f": A {diff.a[at]:,} images, B {diff.b[at]:,} ({diff.diff[at]:+,})")
        h2.button("Clear", key="cmp_clear", on_click=st.session_state.pop, args=(CELL_KEY, None),
                  icon=":material/close:")
        entered, left = comparison.cell_changes(pair.paired, cell)
        _compared_gallery(pair, entered, "entered", "Entered: in this cell for B, not for A", "b", "cmp_page_in")
        _compared_gallery(pair, left, "left", "Left: in this cell for A, not for B", "a", "cmp_page_out")


def _flips(pair: Pair) -> None:
    a_only, b_only = comparison.flips(pair.paired)
    a_counts, b_counts = comparison.flip_counts(pair.paired, len(pair.classes))
    c_table, c_chart = st.columns([2, 3], gap="large")
    with c_table:
        table = pd.DataFrame(comparison.flip_table(a_counts, b_counts, pair.classes))
        common.table(table, hide_index=True, width="stretch",
                     height=35 * (len(pair.classes) + 2) + 3)
    with c_chart:
        st.plotly_chart(confusion_figures.flip_counts_figure(a_counts, b_counts, pair.classes), key="cmp_flip_bars",
                        config={"displayModeBar": False})
    g_a, g_b = st.columns(2, gap="medium")
    with g_a:
        _compared_gallery(pair, a_only, "a-right", "A right, B wrong", "b", "cmp_page_a")
    with g_b:
        _compared_gallery(pair, b_only, "b-right", "B right, A wrong", "a", "cmp_page_b")


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

common.url_choice("view", VIEWS, VIEWS[0], "view")  # st.tabs drops a ?view= it does not know without a word
curves_tab, results_tab, diff_tab, flips_tab, overlap_tab = st.tabs(VIEWS, key="view", on_change="rerun",
                                                                     bind="query-params")
for tab, view in ((curves_tab, _curves), (results_tab, _results), (overlap_tab, compare_dynamics.overlap_view)):
    with tab:
        if tab.open:
            view(chosen)
for tab, view in ((diff_tab, _difference), (flips_tab, _flips)):
    with tab:
        if tab.open:
            pair = _load_pair(chosen)
            if pair is not None:
                view(pair)
