"""Streamlit helpers shared by the pages: the folders, small widgets (badges, pickers, lazy
sections) and choices kept in the URL. What the pages cache is in app_pages/caches.py. Logic
lives in resnet_core; this module only adapts it to Streamlit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import streamlit as st

from app_pages.caches import gradcam_maps, image_store, loaded_store, run_model
from app_pages.navigation import ANALYZE, COMPARE, EXPLAIN, HOME, MONITOR, PREDICT, RUNS, TRAIN  # noqa: F401 (for st.page_link)
from resnet_core import cifar, runs
from resnet_core.dashboard import gallery_records, launcher, links, run_images
from resnet_core.formatting import md_escape
from resnet_core.dashboard.run_state import STATE_COLOURS, STATE_HELP, STATE_ICONS


def runs_dir() -> Path:
    return launcher.resolve_runs_dir()


def data_dir() -> Path:
    return cifar.resolve_data_dir()


def split_images(info: runs.RunInfo, split: str, preds: dict[str, np.ndarray],
                 images_from: run_images.ImageFolder) -> tuple[np.ndarray | None, str]:
    """The images that a run's records of a split point into, and where they come from (see source_images)."""
    return source_images(run_images.image_source(info.config, split), preds, images_from)


def source_images(source: run_images.SplitImages, records: dict[str, np.ndarray],
                  images_from: run_images.ImageFolder) -> tuple[np.ndarray | None, str]:
    """The images of a set of the run's dataset ("train" or "test") that records ("indices" into it and
    their "labels" there) point into, and where they come from (a caption,
    markdown-escaped). Without them (no data folder, or one whose labels differ from the
    records'), shows a warning and returns None: the cards go without images."""
    store = loaded_store(images_from.path, images_from.dataset, images_from.settings)
    images, problem = None, None
    try:
        images = store.images(source)
        # An image folder run: the files themselves, as recorded, first: a file added or removed
        # shifts the labels too, and the label check alone called that "another order, or another dataset".
        if images_from.run_dir is not None:
            problem = run_images.files_problem(store.get(), images_from.run_dir, images_from.path, (source,))
        # Every record, not only the page shown: a wrong folder shows at once.
        problem = problem or run_images.labels_match(store.labels(source), records).problem(images_from.path, source)
    except Exception as e:  # no data folder here: show the records without pictures
        problem = f"Images unavailable: {e}"
    if problem:
        images = None
        st.warning(md_escape(problem), icon=":material/image_not_supported:")
    # The folder comes from config.json: escaped, not put in a code span it could close.
    return images, (f"images from the {run_images.SET_NAMES[source]} set in {md_escape(images_from.path)}, "
                    f"{md_escape(images_from.note)}")


def runs_with_epochs(splits: Sequence[str] = runs.SPLITS) -> tuple[list[runs.RunInfo], dict[str, str]]:
    """Readable runs with at least one recorded epoch of any of these splits, and why each
    other run is left out (for a link that asks for one: run_in_url)."""
    shown: list[runs.RunInfo] = []
    left_out: dict[str, str] = {}
    for r in runs.list_runs(runs_dir()):
        if r.problem is not None:
            left_out[r.run_id] = f"cannot be read: {r.problem}"
        elif any(runs.recorded_epochs(r.path, s) for s in splits):
            shown.append(r)
        else:
            left_out[r.run_id] = "has no recorded epoch to show yet"
    return shown, left_out


URL_PICK_KEY = "url_run_pick"


def _take_url_pick() -> None:
    st.query_params["run"] = st.session_state.pop(URL_PICK_KEY)


def run_in_url(ids: list[str], format_func: Callable[[str], str], left_out: dict[str, str] | None = None) -> str | None:
    """The run the URL's ?run= names among ids; None without ?run=. When it names none of
    them (not found, not a run name, or in left_out: a run this page cannot show, with
    why), says so, offers the list and stops the page: never another run in its place."""
    requested = links.resolve(st.query_params.get("run"), ids, "run", left_out)
    if requested.problem:
        st.error(f"{md_escape(requested.problem)} Pick a run:", icon=":material/search_off:")
        st.selectbox("Run", ids, index=None, key=URL_PICK_KEY, placeholder="pick a run", format_func=format_func,
                     on_change=_take_url_pick)
        st.stop()
    return requested.value


def wanted_run(all_runs: list[runs.RunInfo], left_out: dict[str, str]) -> str | None:
    """run_in_url over these runs (before pick_run, outside its column: a problem takes the page)."""
    by_id = {r.run_id: r for r in all_runs}
    return run_in_url(list(by_id), lambda i: run_title(by_id[i]), left_out)


def pick_run(all_runs: list[runs.RunInfo], prefix: str, wanted: str | None) -> runs.RunInfo:
    """The run selector: wanted (wanted_run's), else the first (the newest); kept in the URL."""
    ids = [r.run_id for r in all_runs]
    by_id = {r.run_id: r for r in all_runs}
    wanted = wanted if wanted in by_id else ids[0]
    run_id = st.selectbox("Run", ids, index=ids.index(wanted), key=f"{prefix}_run_{wanted}",
                          format_func=lambda i: run_title(by_id[i]))
    set_query("run", run_id)
    return by_id[run_id]


def from_url(param: str, options: Sequence[str], what: str) -> links.Requested:
    """The option the URL's ?param= names (links.resolve, values not file names). A value
    this session put there itself (set_query), carried over to where it is not an option
    (an epoch of another run), is dropped without a problem: only a link's is reported."""
    value = st.query_params.get(param)
    requested = links.resolve(value, options, what, names=False)
    if requested.problem and value == st.session_state.get(f"url_set::{param}"):
        return links.Requested(None)
    return requested


def pick_epoch(info: runs.RunInfo, split: str, prefix: str, in_url: bool = False) -> int:
    """The epoch slider (the latest recorded epoch first), and while the run trains, a notice
    of newly recorded ones. in_url: start from ?epoch= when it is recorded (else say it is
    not), and keep the choice there."""
    epochs = runs.recorded_epochs(info.path, split)
    key = f"{prefix}_epoch_{info.run_id}_{split}"
    if st.session_state.get(key) not in epochs:
        requested = from_url("epoch", [str(e) for e in epochs], "epoch") if in_url else links.Requested(None)
        if requested.problem:
            st.warning(f"{md_escape(requested.problem)} Showing epoch {epochs[-1]}, the latest recorded.",
                       icon=":material/search_off:")
        st.session_state[key] = int(requested.value) if requested.value is not None else epochs[-1]
    if len(epochs) > 1:
        epoch = st.select_slider("Epoch", epochs, key=key, help="slide through the recorded epochs")
    else:
        epoch = epochs[0]
        st.caption(f"Epoch {epoch} (the only one recorded for this split).")
    if in_url:
        set_query("epoch", str(epoch))
    if info.is_active:
        _new_epoch_notice(info, split, len(epochs), key, f"{prefix}_show_latest")
    return epoch


@st.fragment(run_every=3.0)
def _new_epoch_notice(info: runs.RunInfo, split: str, shown: int, slider_key: str, button_key: str) -> None:
    """While the run trains, announce newly recorded epochs instead of jumping to them
    under the user's pointer; one click shows the latest."""
    latest = runs.recorded_epochs(info.path, split)
    if len(latest) > shown:
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.info(f"Epoch {latest[-1]} of this run is recorded.", icon=":material/update:")
        if c2.button("Show it", key=button_key):
            st.session_state.pop(slider_key, None)
            st.query_params.pop("epoch", None)
            st.rerun(scope="app")
    else:
        st.caption(f"This run is {info.state}: new epochs are announced here as they are recorded.")


def image_folder(info: runs.RunInfo) -> run_images.ImageFolder:
    """Where the run's images come from; starts loading them in the background, for the first click."""
    images_from = run_images.image_folder(info.config, data_dir(), info.dataset, runs_dir(), info.path)
    if cifar.dataset_present(info.dataset, images_from.path):
        image_store(images_from.path, info.dataset, images_from.settings)
    return images_from


def page_picker(total: int, per_page: int, key: str, where: Callable[[], Any] = lambda: st,
                width: int | str = "stretch") -> gallery_records.Page:
    """The page of `total` records to show: a page number input keyed `key` (width px wide, or
    "stretch"), in the container where() makes, only when there is more than one page; back on
    page 1 when a page picked earlier is gone (fewer records than when it was picked)."""
    count = gallery_records.paginate(total, 1, per_page).count
    number = 1
    if count > 1:
        if st.session_state.get(key, 1) > count:
            st.session_state[key] = 1
        number = where().number_input(f"Page (of {count})", min_value=1, max_value=count, step=1, key=key,
                                      width=width)
    return gallery_records.paginate(total, number, per_page)


def lazy_expander(label: str, key: str, draw: Callable[[], None], *, expanded: bool = False,
                  icon: str | None = None) -> None:
    """An expander whose content is drawn only while it is open: opening it reruns the page
    (st.expander's on_change="rerun"). A closed expander's content is otherwise still sent
    and drawn; the Runs page's config.json, status.json and log tail, highlighted while
    nobody looked, loaded a 1.5 MB syntax-highlighting script and took 0.16 s of the
    browser's 1.0 s page load. key: the open state across reruns (put the run in it where
    `expanded` follows the run)."""
    box = st.expander(label, expanded=expanded, key=key, icon=icon, on_change="rerun")
    if box.open:
        with box:
            draw()


def table(data, **kwargs):
    """st.dataframe with a missing value drawn as an empty cell (its default draws "None"); the
    column's help says when its cells are empty. Returns st.dataframe's (the selection, with on_select)."""
    return st.dataframe(data, placeholder="", **kwargs)


def state_badge(state: str) -> None:
    st.badge(state, icon=STATE_ICONS.get(state), color=STATE_COLOURS.get(state, "gray"),
             help=STATE_HELP.get(state))


def model_text(info: runs.RunInfo) -> str:
    """A run's model, and its dataset where it is not CIFAR-10 (the default, what every run before
    CIFAR-100 trained on: named on each, it would lengthen every picker, card and legend of a
    studio of CIFAR-10 runs and tell nothing); "" without a model."""
    if not info.model_name or info.dataset == "cifar10":
        return info.model_name
    return f"{info.model_name} · {cifar.dataset_title(info.dataset)}"


def run_title(info: runs.RunInfo, state: str | None = None) -> str:
    """A run as a picker names it: its title (the name a user gave it and its id, else the id),
    model (and dataset, see model_text) and state (the folder's, unless state is given)."""
    model, state = model_text(info), state or info.state
    return f"{info.title} · {model} · {state}" if model else f"{info.title} · {state}"


def set_query(param: str, value: str | None) -> None:
    """Keep a choice in the URL (?param=value; none: removed), so a reload or a shared link lands on it."""
    st.session_state[f"url_set::{param}"] = value or None
    if value is None or value == "":
        st.query_params.pop(param, None)
    elif st.query_params.get(param) != value:
        st.query_params[param] = value


def seed_from_query(key: str, param: str, options: Sequence[str], fallback: str, what: str | None = None) -> None:
    """Before the widget keyed `key` (a selectbox or segmented control over options)
    renders: keep its value while it is one of options, else take the URL's ?param= if it
    is one, else fallback, saying so when a link asked for something else (what: how the
    message names the parameter). Write the choice back with set_query."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = url_choice(param, options, fallback, what or param)


def url_choice(param: str, options: Sequence[str], fallback: str, what: str) -> str:
    """The option the URL's ?param= names (from_url), else fallback, with a warning when a
    link asked for something else."""
    requested = from_url(param, options, what)
    if requested.problem:
        st.warning(f"{md_escape(requested.problem)} Showing “{md_escape(fallback)}” instead.",
                   icon=":material/search_off:")
    return requested.value if requested.value is not None else fallback


def field_error(errors: dict[str, str], name: str) -> None:
    """The message next to a form field, if it has one."""
    if name in errors:
        st.markdown(f":red[:material/error: {errors[name]}]", help=None)


def env_summary() -> str:
    return (f"runs: `{runs_dir().resolve()}` · data: `{data_dir().resolve()}`"
            + (" (from $RESNET_STUDIO_DATA)" if os.environ.get("RESNET_STUDIO_DATA") else ""))


def gradcam_toggle(info: runs.RunInfo, source: run_images.SplitImages, items: list[gallery_records.GalleryRecord],
                   images_from: run_images.ImageFolder, key: str,
                   cards_show: str = "the predictions recorded at the chosen epoch",
                   ) -> tuple[dict[int, np.ndarray], str]:
    """A gallery's Grad-CAM toggle (widget keys from key) and, when on, the maps of the shown
    page's images (of the run's dataset's set source) from the chosen checkpoint (torch is imported
    only then), by image index, and the images' tooltip; the caption says the cards show
    cards_show."""
    # Columns only while it is on: off (as a page opens), the toggle alone is three elements fewer.
    g1, g2, g3 = st.columns([2, 2, 3], vertical_alignment="bottom") if st.session_state.get(key) else (st, st, st)
    if not g1.toggle("Grad-CAM", key=key, help="lay each image's class-activation map over it: where the "
                     "model found the evidence (red strongest), computed for the images shown"):
        return {}, ""
    which = g2.segmented_control("Checkpoint", list(runs.CHECKPOINTS), key=key + "_ckpt", default="best", required=True)
    target = g3.segmented_control("Map of the", ["predicted", "true"], key=key + "_class", default="predicted",
                                  required=True, format_func=lambda t: f"{t} class")
    from resnet_core.run_model import ModelLoadError

    try:
        model = run_model(info.path, which or "best")
        maps = gradcam_maps(info.path, which or "best", images_from, source,
                            [(r.index, r.true if target == "true" else r.pred) for r in items])
    except ModelLoadError as e:
        st.warning(f"No Grad-CAM: {md_escape(e)}", icon=":material/visibility_off:")
        return {}, ""
    st.caption(f"Grad-CAM of each card's {target or 'predicted'} class from {md_escape(model.description)}"
               + (f" ({md_escape(model.note)})" if model.note else "")
               + f". The cards show {cards_show}.")
    return maps, f"Grad-CAM of the {target} class, {model.description}"
