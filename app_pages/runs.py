"""Runs: every run in the runs folder, filtered (app_pages/runs_filter.py) and sorted, the rows
selected opened in Compare; a run's details, its name, tags and note (app_pages/run_annotations.py),
delete after a confirm."""

from __future__ import annotations

import json
import zlib

import pandas as pd
import streamlit as st

from app_pages import common, run_annotations, runs_filter
from resnet_core import runs
from resnet_core import formatting
from resnet_core.dashboard import launcher, links, run_filters, run_state, runs_table

COLUMN_ORDER = ["run", "name", "tags", "state", "problem", "model", "dataset", "epochs done", "of epochs",
                "best val acc", "best epoch", "val split", "test acc", "time", "monitor", "analyze", "sweep", "block",
                "shortcut", "batch", "lr", "schedule", "device", "precision", "created", "note"]


def _column_config() -> dict:
    return {
        "run": st.column_config.TextColumn("run", width="medium", help="the run folder's id"),
        "name": st.column_config.TextColumn("name", help="the name given on the Runs page or the Monitor"),
        "tags": st.column_config.ListColumn("tags", help="given at launch (--tag) or on the Runs page"),
        "note": st.column_config.TextColumn("note", width="large"),
        "time": st.column_config.NumberColumn("time", format="duration", help="training time so far"),
        "problem": st.column_config.TextColumn(
            "problem", help="why the folder cannot be read, else a note on it (an older or newer format), else a "
                            "warning (clock skew, a failed start's last output); empty when there is none"),
        "dataset": st.column_config.TextColumn(
            "dataset", help="what the run trained on (--dataset): cifar10 or cifar100; empty for a folder that "
                            "cannot be read"),
        "best epoch": st.column_config.NumberColumn("best epoch", help="empty before the first validation"),
        "epochs done": st.column_config.NumberColumn("epochs done", help="epochs completed so far"),
        "of epochs": st.column_config.NumberColumn("of epochs", help="the epochs the run trains in all; empty where "
                                                                    "its records do not say"),
        "best val acc": st.column_config.NumberColumn(
            "best val acc", format="%.2f%%",
            help="the best accuracy on what the run validated on: see 'val split' (empty without one)"),
        "val split": st.column_config.TextColumn(
            "val split", help="validation split: held-out training images; test (used as validation): an "
                              "older run validated on the test set; no validation split: none was kept"),
        "test acc": st.column_config.NumberColumn("test acc", format="%.2f%%",
                                                  help="the final test evaluation, after the last epoch"),
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
        "lr": st.column_config.NumberColumn("lr", format="%g"),
        "analyze": st.column_config.LinkColumn("analyze", display_text="open"),
        "monitor": st.column_config.LinkColumn("monitor", display_text="open"),
    }


def _table(all_runs: list[runs.RunInfo], folder) -> None:
    """The runs the filter keeps, one row each, with links to its monitor and its analysis
    (a click on a header sorts), the count by state, and the rows selected opened in Compare."""
    shown = run_filters.filter_runs(all_runs, runs_filter.run_filter(all_runs))
    counts = pd.Series([r.state for r in shown]).value_counts()
    st.caption(f"{len(shown)} of {len(all_runs)} runs in `{folder.resolve()}` · "
               + " · ".join(f"{n} {state}" for state, n in counts.items()))
    if not shown:
        st.info("No run matches the filter.", icon=":material/filter_alt_off:")
        return
    table, ids = runs_table.runs_table(shown), [r.run_id for r in shown]
    table["analyze"] = [links.page_url("analyze", run=r.run_id) for r in shown]
    table["monitor"] = [links.page_url("monitor", run=r.run_id) for r in shown]
    event = common.table(table, hide_index=True, width="stretch", column_order=COLUMN_ORDER,
                         # Keyed by the rows shown: a selection never points at the rows of another filter.
                         column_config=_column_config(), key=f"runs_table_{zlib.crc32(' '.join(ids).encode())}",
                         on_select="rerun", selection_mode="multi-row")
    picked = [ids[i] for i in event.selection.rows if i < len(ids)]
    st.page_link(common.COMPARE, label=f"Compare the {len(picked)} selected runs" if picked else
                 "Compare runs: select rows above, or pick runs there", icon=":material/compare_arrows:",
                 query_params={"runs": links.join_ids(picked)} if picked else None)


def _ask_delete(path: str) -> None:
    st.session_state["runs_confirm_delete"] = path


def _cancel_delete() -> None:
    st.session_state.pop("runs_confirm_delete", None)


def _do_delete(path: str) -> None:
    st.session_state.pop("runs_confirm_delete", None)
    try:
        launcher.delete_run(path, folder)
    except (launcher.RunActiveError, ValueError, OSError) as e:
        st.session_state["runs_msg"] = ("error", formatting.md_escape(e))
    else:
        st.session_state["runs_msg"] = ("success", f"Deleted {formatting.md_escape(path.rsplit('/', 1)[-1])}.")


def _details(info: runs.RunInfo, path) -> None:
    """The run's config.json and status.json (or why they cannot be read) and its log's tail."""
    if info.problem is not None:
        st.error(f"This run folder cannot be read: {formatting.md_escape(info.problem)}",
                 icon=":material/broken_image:")
    else:
        if info.note:
            st.info(info.note, icon=":material/lock:")
        if info.warning:
            st.warning(formatting.md_escape(info.warning), icon=":material/schedule:")
        common.lazy_expander("config.json", "runs_config",
                             lambda: st.code(json.dumps(info.config, indent=2), language="json"))
        common.lazy_expander("status.json", "runs_status",
                             lambda: st.code(json.dumps(info.status, indent=2), language="json"))
    failed = info.state in ("failed", "diverged", runs.CRASHED, runs.FAILED_TO_START, runs.UNREADABLE)
    common.lazy_expander("Log tail", f"runs_log::{path}", expanded=failed,
                         draw=lambda: st.code(launcher.log_tail(path, 25) or "(no log)", language=None, height=320))


def _delete(info: runs.RunInfo, picked: str, path) -> None:
    """Delete, after a confirm; never a run that still trains."""
    active = info.is_active
    if st.session_state.get("runs_confirm_delete") == str(path):
        st.warning(f"Delete **{formatting.md_escape(picked)}** with its checkpoints, metrics and predictions? "
                   f"This cannot be undone.", icon=":material/warning:")
        y, n = st.columns(2)
        y.button("Yes, delete", type="primary", key="runs_delete_yes", on_click=_do_delete, args=(str(path),),
                 icon=":material/delete_forever:", disabled=active)
        n.button("Cancel", key="runs_delete_no", on_click=_cancel_delete)
    else:
        st.button("Delete run…", key="runs_delete", on_click=_ask_delete, args=(str(path),),
                  icon=":material/delete:", disabled=active,
                  help="stop the run first" if active else "asks for confirmation")
    if active:
        st.caption(f"This run is {info.state}: stop it on the Train page before deleting it.")


st.title("Runs")
folder = common.runs_dir()
all_runs = run_state.with_pruned(runs.list_runs(folder), runs.pruned_run_ids(folder))

if not all_runs:
    st.info(f"No runs in `{folder.resolve()}` yet.", icon=":material/info:")
    st.page_link(common.TRAIN, label="Configure and launch a run", icon=":material/rocket_launch:")
    st.stop()

_table(all_runs, folder)

st.subheader("Details, name and tags, delete")
infos = {r.run_id: r for r in all_runs}
picked = st.selectbox("Run", list(infos), key="runs_pick", format_func=lambda i: common.run_title(infos[i]))
path = folder / picked
info = infos[picked]
msg = st.session_state.pop("runs_msg", None)
if msg:
    (st.error if msg[0] == "error" else st.success)(msg[1])

d1, d2 = st.columns([3, 2], gap="large")
with d1:
    _details(info, path)
with d2:
    run_annotations.editor(info, run_filters.tag_options(all_runs), "runs")
    _delete(info, picked, path)
