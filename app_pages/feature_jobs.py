"""Background jobs that compute a run's features (resnet_core.embeddings) or a map of them,
started by a button and followed by a progress bar that survives a reload: what the atlas
and every gallery's similar training images share."""

from __future__ import annotations

from typing import Callable, Hashable

import streamlit as st

from app_pages import caches, common
from resnet_core import runs
from resnet_core.dashboard.background_jobs import Job
from resnet_core.formatting import md_escape


@st.fragment(run_every=1.0)
def _progress(job: Job, what: str) -> None:
    """The job's progress, every second; the whole page again once it has finished."""
    if job.finished:
        st.rerun(scope="app")
    st.progress(job.fraction, text=f"{what}: {job.fraction:.0%}")


def background(key: Hashable, what: str, button: str, work: Callable, button_key: str) -> None:
    """A job's progress while it runs, else a button that starts it (and its last error)."""
    job = caches.jobs().get(key)
    if job is not None and not job.finished:
        _progress(job, what)
        return
    if job is not None and job.error:
        st.error(md_escape(job.error), icon=":material/error:")
    if st.button(button, key=button_key, icon=":material/play_arrow:"):
        _progress(caches.jobs().start(key, what, work), what)


def features_work(info: runs.RunInfo, split: str, which: str) -> Callable:
    """A job computing the features of the split under the checkpoint (cached in the run folder)."""
    def work(progress):
        from resnet_core.embeddings import compute_features

        compute_features(info.path, split, which, progress, data_dir=common.data_dir())
    return work
