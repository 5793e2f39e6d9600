"""Streamlit helpers shared by the pages: folders, caches, small widgets. Logic lives in
resnet_core; this module only adapts it to Streamlit (caching, badges, links)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st

from resnet_core import runs
from resnet_core.dashboard import gallery, launcher
from resnet_core.dashboard.monitor import STATE_COLOURS, STATE_HELP, STATE_ICONS
from resnet_core.data import resolve_data_dir
from resnet_core.system import describe_system

HOME, TRAIN, ANALYZE, RUNS = "app_pages/home.py", "app_pages/train.py", "app_pages/analyze.py", "app_pages/runs.py"


def runs_dir() -> Path:
    return launcher.resolve_runs_dir()


def data_dir() -> Path:
    return resolve_data_dir()


@st.cache_resource(show_spinner=False)
def system_info():
    return describe_system()


@st.cache_resource(show_spinner=False)
def _image_store(data_dir: str) -> gallery.ImageStore:
    return gallery.ImageStore(data_dir)


def image_store(folder: Path | None = None) -> gallery.ImageStore:
    """The CIFAR-10 images of the data folder, loading in the background from the first call
    (st.cache_resource: one copy for all sessions)."""
    return _image_store(str(Path(folder or data_dir()).resolve())).start()


@st.cache_resource(show_spinner=False, max_entries=48)
def _predictions(run_dir: str, split: str, epoch: int, mtime_ns: int) -> dict[str, np.ndarray]:
    return runs.load_predictions(Path(run_dir), split, epoch)


def predictions(run_dir: Path, split: str, epoch: int) -> dict[str, np.ndarray]:
    """A run's prediction arrays, cached by file and modification time (treat as read-only).
    Raises runs.RunFolderError for a file that is missing, damaged or inconsistent."""
    try:
        mtime = os.lstat(runs.prediction_path(run_dir, split, epoch)).st_mtime_ns
    except OSError:
        mtime = 0  # gone or unreadable: load_predictions says why (errors are not cached)
    return _predictions(str(run_dir), split, epoch, mtime)


def state_badge(state: str) -> None:
    st.badge(state, icon=STATE_ICONS.get(state), color=STATE_COLOURS.get(state, "gray"),
             help=STATE_HELP.get(state))


def run_title(info: runs.RunInfo) -> str:
    model = info.model_name
    return f"{info.run_id} · {model} · {info.state}" if model else f"{info.run_id} · {info.state}"


def set_query_run(run_id: str | None) -> None:
    if run_id is None:
        st.query_params.pop("run", None)
    elif st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id


def field_error(errors: dict[str, str], name: str) -> None:
    """The message next to a form field, if it has one."""
    if name in errors:
        st.markdown(f":red[:material/error: {errors[name]}]", help=None)


def env_summary() -> str:
    return (f"runs: `{runs_dir().resolve()}` · data: `{data_dir().resolve()}`"
            + (" (from $RESNET_STUDIO_DATA)" if os.environ.get("RESNET_STUDIO_DATA") else ""))
