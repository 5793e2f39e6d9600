"""Predict: classify your own PNG or JPEG images with a run's model, with each one's Grad-CAM."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app_pages import caches, common
from resnet_core import runs
from resnet_core.dashboard import uploads
from resnet_core.formatting import md_escape
from resnet_core.predict import top_classes
from resnet_core.run_model import ModelLoadError


@st.cache_data(show_spinner=False, max_entries=64)
def _read_upload(name: str, data: bytes, size: int, resize: str) -> uploads.Upload:
    """One file as the model sees it, decoded once per size and rule: picking another run or
    checkpoint reruns the page, and a 10 MB photo took 0.21 s to decode again (its hash, the
    cache key, 0.014 s)."""
    return uploads.read_uploads([(name, data)], size, resize)[0]


st.title("Predict")
all_runs = runs.list_runs(common.runs_dir())
with_model = [r for r in all_runs if r.problem is None and r.checkpoints]
if not with_model:
    st.info("No run has a checkpoint yet: a run saves last.pt after its first epoch.", icon=":material/info:")
    st.page_link(common.TRAIN, label="Launch a run", icon=":material/rocket_launch:")
    st.stop()

ids = [r.run_id for r in with_model]
by_id = {r.run_id: r for r in with_model}
left_out = {r.run_id: f"cannot be read: {r.problem}" if r.problem
            else "has no checkpoint yet (a run saves last.pt after its first epoch)"
            for r in all_runs if r.run_id not in by_id}
wanted = common.run_in_url(ids, lambda i: common.run_title(by_id[i]), left_out)
c_run, c_ckpt = st.columns([4, 2])
run_id = c_run.selectbox("Run", ids, index=ids.index(wanted) if wanted else 0, key="pr_run",
                         format_func=lambda i: common.run_title(by_id[i]))
common.set_query("run", run_id)
which = c_ckpt.segmented_control("Checkpoint", list(runs.CHECKPOINTS), key="pr_ckpt", default="best", required=True,
                                 help="best.pt: the best validation epoch (last.pt where the run has none)")
try:
    model = caches.run_model(by_id[run_id].path, which or "best")
except ModelLoadError as e:
    st.error(md_escape(e), icon=":material/error:")
    st.stop()
st.caption(f"{md_escape(model.description)}" + (f" · {md_escape(model.note)}" if model.note else ""))

st.html(uploads.REFUSED_FILE_STYLE)
files = st.file_uploader(uploads.UPLOAD_LABEL, type=list(uploads.UPLOAD_TYPES), accept_multiple_files=True,
                         key="pr_files", help=uploads.UPLOAD_HELP, max_upload_size=uploads.UPLOAD_LIMIT_MB)
st.caption(uploads.conversion_caption(model.image_size, model.resize, by_id[run_id].train_config.get("dataset", "")))
if not files:
    st.stop()
read = [_read_upload(f.name, f.getvalue(), model.image_size, model.resize) for f in files]
for upload in read:
    if upload.problem:
        st.error(md_escape(upload.problem), icon=":material/broken_image:")
good = [u for u in read if u.image is not None]
if good:
    cams, probs = model.explain(np.stack([u.image for u in good]))
    st.html("".join(uploads.prediction_card_html(u.name, u.image, cam, top)
                    for u, cam, top in zip(good, cams, top_classes(probs, model.classes, 5), strict=True)))
