"""Compare's Curves view: the chosen runs' error curves (He et al.'s Figure 6; the figure is
resnet_core/dashboard/error_curves.py's), runs that differ only by seed averaged into one
curve with a band, smoothed and on a log scale as on the Monitor, and redrawn every
REFRESH_S seconds while a shown run is active (a fragment, as the Monitor's panel)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages import common, compare_pair
from app_pages.monitor_charts import REFRESH_S, smoothing_slider
from resnet_core import runs
from resnet_core.dashboard import error_curves
from resnet_core.dashboard.seed_bands import BANDS
from resnet_core.evaluation_labels import evaluation_labels
from resnet_core.formatting import md_escape
from resnet_core.runs.values import as_count


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


def _figure(chosen: list[runs.RunInfo]) -> tuple[list[error_curves.CurveRun], bool]:
    """The controls above the chart, the chart, and the runs' curves; whether seeds were averaged."""
    c_x, c_smooth, c_log = st.columns([3, 3, 1.4], vertical_alignment="bottom")
    x_axis = c_x.segmented_control("x axis", list(error_curves.ERROR_X_AXES), key="cmp_x", default="iterations",
                                   required=True) or "iterations"
    smoothing = smoothing_slider(c_smooth, "cmp_smoothing", "the smoothed line replaces it")
    log_y = c_log.toggle("Log-scale error", key="cmp_log")
    c_avg, c_band, c_paper = st.columns([2, 2, 3], vertical_alignment="bottom")
    average = c_avg.toggle("Average seeds", value=True, key="cmp_average",
                           help="runs whose configs differ only by seed (or by name, sweep, device, compile, "
                                "channels_last, folders and logging, which do not change what is trained: the "
                                "Results tab's rows) drawn as one curve, their mean with a band")
    band_kind = c_band.segmented_control("Band", list(BANDS), format_func=BANDS.get, default="std", required=True,
                                         key="cmp_band", disabled=not average) or "std"
    paper_range = c_paper.toggle("y axis 0–20% as in the paper", key="cmp_y20", disabled=log_y,
                                 help="on a linear axis")
    curves = []
    for info in chosen:
        steps, epochs = _rows(info)
        curves.append(error_curves.CurveRun(compare_pair.run_name(info), steps, epochs, evaluation_labels(info.config),
                                            as_count(info.resolved.get("steps_per_epoch")) or None))
    shown = (error_curves.seed_curve_groups(curves, [i.train_config for i in chosen],
                                            [common.model_text(i) or "?" for i in chosen]) if average else curves)
    st.plotly_chart(error_curves.error_curves_figure(shown, x_axis, y_max=20 if paper_range else None,
                                                     smoothing=smoothing, log_y=log_y, band_kind=band_kind),
                    key="cmp_curves", config={"displaylogo": False})
    return curves, average and len(shown) < len(curves)


def _panel(paths: list[Path], was_active: bool) -> None:
    """The chart of the runs read afresh (a refresh sees new rows and states), and its captions."""
    chosen = [i for i in map(runs.read_run, paths) if i is not None and i.problem is None]
    if was_active and not any(i.is_active for i in chosen):
        st.rerun()  # the last active run ended: redraw the page, which stops the refresh
    curves, averaged = _figure(chosen)
    from_epochs = [c.name for c in curves if not c.step_rows and c.epoch_rows]
    empty = [c.name for c in curves if not c.step_rows and not c.epoch_rows]
    st.caption(
        "Error (%) = 100 − accuracy. **Dashed**: training error on the augmented training batches, from the step "
        "rows' `acc` (the mean over the steps since the previous step row)"
        + (f", from the epoch rows' `train_acc` for {md_escape(', '.join(from_epochs))}" if from_epochs else "")
        + ". **Bold**: validation error after each epoch; for runs without a validation split, the test error "
          "evaluated after each epoch for monitoring only, labelled “test (monitoring)”. "
          "Wall time adds up the epochs' `epoch_seconds`.")
    if averaged:
        st.caption("**Shaded**: runs that differ only by seed, as their mean with a band (± sample std, n − 1, or "
                   "min–max) over the runs that reach each x: a run still training or stopped early counts where "
                   "it has values (hover says how many); step rows logged at other steps are interpolated.")
    if empty:
        st.caption(f"No metrics recorded yet: {md_escape(', '.join(empty))}.")


def view(chosen: list[runs.RunInfo]) -> None:
    """The curves, redrawn every REFRESH_S seconds while a shown run is active and Live refresh is on."""
    active = any(i.is_active for i in chosen)
    live = active and st.toggle("Live refresh", value=True, key="cmp_live",
                                help="Turn off to zoom into the chart: each refresh redraws it.")
    st.fragment(_panel, run_every=REFRESH_S if live else None)([i.path for i in chosen], active)
