"""Compare's view of two runs' training dynamics: how far they agree on which training images
are unforgettable and which are hard to learn (resnet_core.dashboard.dynamics_overlap)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import caches, common
from resnet_core import runs
from resnet_core.dashboard import comparison, dynamics_overlap, run_images
from resnet_core.dynamics import COUNTED
from resnet_core.formatting import md_escape


def _pick(chosen: list[runs.RunInfo]) -> tuple[runs.RunInfo, runs.RunInfo] | None:
    """Runs A and B among the chosen runs with a record of their training images (seeded
    from the URL's ?a= and ?b=, as the other two-run views)."""
    recorded = {r.run_id: r for r in chosen if runs.dynamics_epochs(r.path)}
    without = [r.run_id for r in chosen if r.run_id not in recorded]
    if without:
        st.caption("Without a record of their training images (older runs, or runs that ended before their first "
                   f"epoch): {md_escape(', '.join(without))}.")
    if len(recorded) < 2:
        st.info("Pick two or more runs that recorded their training images to compare their training dynamics.",
                icon=":material/touch_app:")
        return None
    ids = list(recorded)
    c_a, c_b = st.columns(2)
    common.seed_from_query("cmp_dyn_a", "a", ids, next(i for i in ids if i != st.query_params.get("b")), "run A")
    a = c_a.selectbox("Run A", ids, key="cmp_dyn_a", format_func=lambda i: common.run_title(recorded[i]))
    common.seed_from_query("cmp_dyn_b", "b", ids, next(i for i in ids if i != a), "run B")
    b = c_b.selectbox("Run B", ids, key="cmp_dyn_b", format_func=lambda i: common.run_title(recorded[i]))
    common.set_query("a", a)
    common.set_query("b", b)
    return recorded[a], recorded[b]


def overlap_view(chosen: list[runs.RunInfo]) -> None:
    pair = _pick(chosen)
    if pair is None:
        return
    if pair[0].dataset != pair[1].dataset:  # the records index other images under the same numbers
        a, b = pair
        st.error(md_escape(comparison.other_datasets(f"A ({a.run_id})", a.dataset, f"B ({b.run_id})", b.dataset,
                                                     "training images")), icon=":material/block:")
        return
    a, b = pair
    files = comparison.other_files(f"A ({a.run_id})", run_images.source_paths(a.path, "train"), f"B ({b.run_id})",
                                   run_images.source_paths(b.path, "train"), "training images")
    if files:  # image folder runs: the same index is another file
        st.error(md_escape(files), icon=":material/block:")
        return
    loaded = []
    for tag, info in zip("AB", pair, strict=True):
        try:
            loaded.append(caches.dynamics(info.path))
        except runs.RunFolderError as e:
            st.error(f"{tag} ({md_escape(info.run_id)}): {md_escape(e)}", icon=":material/broken_image:")
            return
    o = dynamics_overlap.runs_overlap(*loaded)
    st.markdown(md_escape(o.images_text()))
    number = st.column_config.NumberColumn
    common.table(pd.DataFrame(dynamics_overlap.overlap_rows(o)), hide_index=True, width="stretch", column_config={
        "set": st.column_config.TextColumn("set", help="unforgettable: right at some presentation and never "
                                                        "forgotten; hard-to-learn: the data map's region"),
        "A": number("A", format="%,d"), "B": number("B", format="%,d"),
        "both": number("A ∩ B", format="%,d"), "only A": number("only A", format="%,d"),
        "only B": number("only B", format="%,d"),
        "jaccard": number("Jaccard", format="%.3f", help="|A ∩ B| / |A ∪ B|; empty when both sets are empty"),
    })
    st.caption(f"Each run's sets come from its own record of its training steps. Counted: {COUNTED}. The images are "
               "matched by dataset index.")
