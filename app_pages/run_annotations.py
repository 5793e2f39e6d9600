"""The form that names, tags and notes a run, on the Runs page and the Monitor: saved on
submit, atomically, to the run's annotations.json (the dashboard's file: resnet_core/runs/
annotations.py); a refusal is one line under it."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import streamlit as st

from resnet_core import runs
from resnet_core.formatting import md_escape

TAGS_HELP = (f"each tag {runs.MAX_TAG_CHARS} characters at most: letters, digits and "
             f"- _ . : + = / (no spaces); at most {runs.MAX_TAGS}")


def _save(run_dir: Path, key: str) -> None:
    state = st.session_state
    try:
        runs.write_annotations(run_dir, state[f"{key}_name"], state[f"{key}_tags"], state[f"{key}_note"])
    except (ValueError, OSError) as e:
        state[f"{key}_msg"] = ("error", f"Not saved: {md_escape(e)}")
        return
    for part in ("name", "tags", "note"):  # the form shows the saved values next (trimmed, duplicates dropped)
        state.pop(f"{key}_{part}", None)
    state[f"{key}_msg"] = ("success", "Saved.")


def editor(info: runs.RunInfo, known_tags: Sequence[str], prefix: str) -> None:
    """The run's name, tags (known_tags offered, any new one accepted) and note in a form;
    read-only for a run written in a newer format or a symbolic link."""
    key = f"{prefix}_notes_{info.run_id}"
    shown = info.annotations
    locked = info.read_only or info.problem == runs.SYMLINKED_RUN
    with st.form(f"{key}_form", border=False):
        st.text_input("Name", value=shown.name, key=f"{key}_name", max_chars=runs.MAX_NAME_CHARS,
                      placeholder=info.run_id, disabled=locked,
                      help="shown in every picker and table beside the run's id; its folder keeps the id")
        st.multiselect("Tags", sorted(set(known_tags) | set(shown.tags)), default=list(shown.tags),
                       key=f"{key}_tags", accept_new_options=True, placeholder="add tags", disabled=locked,
                       help=f"pick a tag or type a new one; {TAGS_HELP}")
        st.text_area("Note", value=shown.note, key=f"{key}_note", max_chars=runs.MAX_NOTE_CHARS, height=100,
                     disabled=locked, placeholder="what this run tried, what it showed")
        st.form_submit_button("Save", icon=":material/save:", on_click=_save, args=(info.path, key),
                              disabled=locked)
    msg = st.session_state.pop(f"{key}_msg", None)
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])
    elif shown.updated is None and (shown.tags or shown.note):
        st.caption("Tags and note given at launch (`--tag`, `--note`); saving here takes their place.")
