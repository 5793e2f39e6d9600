"""Home: what the tool does, the compute device, the dataset's state, the latest runs."""

from __future__ import annotations

import streamlit as st

import time

from app_pages import caches, common
from resnet_core import cifar, cifar_download, placement, runs
from resnet_core import formatting
from resnet_core.evaluation_labels import evaluation_labels
from resnet_core.dashboard import experiments, folder_listing, launcher, runs_table


def _device() -> None:
    """The compute device training runs on, and any other accelerators."""
    st.subheader("Compute device")
    info = caches.system_info()
    primary = info.primary
    icon = ":material/memory:" if primary.kind == "cpu" else ":material/developer_board:"
    st.markdown(f"{icon} **{primary.name}**")
    details = []
    if primary.memory_gb:
        details.append(f"{primary.memory_gb:.1f} GB {'RAM' if primary.kind == 'cpu' else 'memory'}")
    if primary.cuda_version:
        details.append(f"CUDA {primary.cuda_version}")
    if primary.kind == "cpu" and primary.cores:
        details.append(f"{primary.cores} cores")
    if primary.count > 1:
        details.append(f"{primary.count} GPUs")
    details.append(f"PyTorch {info.torch_version}")
    st.caption(" · ".join(details))
    if primary.kind == "cpu":
        st.caption("No GPU found: training runs on the CPU (fine for small subsets and a few epochs).")
    for other in info.devices[1:]:
        if other.kind != "cpu":
            st.caption(f"also: {other.summary()}")


def _download(folder, spec: cifar.Dataset) -> bool:
    """The dataset's download button and its progress; True if the download failed."""
    if not st.button(f"Download {spec.title} ({spec.archive_mb} MB)", icon=":material/download:",
                     key=f"home_download_{spec.name}"):
        return False
    bar = st.progress(0.0, text="connecting…")

    def report(done: int, total: int) -> None:
        if total:
            bar.progress(min(1.0, done / total), text=f"{done / 2**20:.0f} of {total / 2**20:.0f} MB")
        else:
            bar.progress(0.0, text=f"{done / 2**20:.0f} MB")

    try:
        cifar_download.download_cifar(spec.name, folder, progress=report)
    except cifar.DataError as e:
        bar.empty()
        st.error(f"Download failed: {e}", icon=":material/cloud_off:")
        return True
    bar.progress(1.0, text="done")
    st.rerun()


def _dataset(folders: bool) -> None:
    """Which datasets the data folder holds; for each one it lacks, a download and the steps
    to place it by hand (folders: whether image folders are listed, which train without it)."""
    st.subheader("Dataset")
    folder = common.data_dir()
    found = cifar.datasets_present(folder)
    for name in found:
        st.success(f"{cifar.dataset_title(name)} is ready in `{folder.resolve()}`.", icon=":material/check_circle:")
    for spec in (cifar.SPECS[name] for name in cifar.DATASETS if name not in found):
        text = f"{spec.title} is not in `{folder.resolve()}` yet."
        if found or folders:  # runs train already: this one is only needed for --dataset {name}
            st.info(f"{text} Runs with dataset {spec.name} need it.", icon=":material/info:")
        else:
            st.warning(text, icon=":material/warning:")
        failed = _download(folder, spec)
        files = "".join(f"    {name}\n" for name in (*spec.train_files, spec.test_file, spec.meta_file))
        with st.expander(f"No internet here? Put {spec.title} in place by hand", expanded=failed):
            st.markdown(
                f"Copy the official archive's contents so that this layout exists, then reload:\n\n"
                f"```\n{folder.resolve()}/\n  {spec.folder}/\n{files}```\n"
                f"from `{spec.archive}` ({spec.url}):\n\n"
                f"```\ntar -xzf {spec.archive} -C {folder.resolve()}\n```\n"
                f"Or start the dashboard with `RESNET_STUDIO_DATA=/path/to/folder streamlit run app.py`, "
                f"where the folder holds `{spec.folder}/`."
            )


def _image_folders(found: list) -> None:
    """The image folders runs trained on and those of the data folder: classes, images, decoded copies."""
    st.markdown("**Image folders**")
    if not found:
        st.caption(f"None yet: a folder of `{common.data_dir().resolve()}` that holds train/<class>/<images>, or "
                   "one a run trained on, is listed here. Choose Image folder on the Train page to train on your "
                   "own images.")
    for known in found:
        cached = folder_listing.cached_settings(known, common.runs_dir())
        st.markdown(folder_listing.folder_line(known, caches.folder_preview(known.root, images=False), cached))


def _run_card(info: runs.RunInfo) -> None:
    row = runs_table.run_summary_row(info)
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([4, 2, 3, 3], vertical_alignment="center")
        esc = formatting.md_escape
        settings = [common.model_text(info) or row["model"], row["block"],
                    row["shortcut"] and f"shortcut {row['shortcut']}"]
        c1.markdown(f"**{esc(info.title)}**  \n" + " · ".join(esc(s) for s in settings if s))  # none: left out
        with c2:
            common.state_badge(info.state)
        if info.problem:
            c3.caption(esc(info.problem))
        else:
            best = evaluation_labels(info.config).best_text(row["best val acc"], row["best epoch"])
            c3.markdown(f"epoch {row['epochs']}  \n{best}")
        with c4:
            st.page_link(common.MONITOR, label="Monitor", icon=":material/monitoring:",
                         query_params={"run": info.run_id})
            st.page_link(common.ANALYZE, label="Analyze", icon=":material/grid_on:",
                         query_params={"run": info.run_id})


@st.cache_resource(show_spinner=False)
def _measured_speeds() -> dict:
    """Training speeds measured on this machine, shared by all sessions: speed_key -> images/s."""
    return {}


def _estimate(configs) -> None:
    """Measure each distinct network's speed here (a few real steps each), with progress."""
    bar = st.progress(0.0, text="measuring…")

    def report(done: int, total: int, key: tuple) -> None:
        bar.progress(done / total, text=f"measuring {key[0]}-layer {key[1]} networks ({done + 1} of {total})…")

    missing = [c for c in configs if experiments.speed_key(c) not in _measured_speeds()]
    try:
        _measured_speeds().update(experiments.measure_speeds(missing, common.data_dir(), report))
    except (RuntimeError, OSError, ValueError) as e:
        st.session_state["exp_msg"] = ("error", f"Could not measure the speed here: {e}")
    bar.empty()


def _launch(exp: experiments.Experiment, parallel: int) -> None:
    name = f"{exp.key}-{time.strftime('%Y%m%d-%H%M%S')}"
    args = exp.sweep_args(parallel)
    try:
        problem = launcher.sweep_problem(name, args, data_dir=common.data_dir(), runs_dir=common.runs_dir())
        if problem is None:
            launcher.launch_sweep(name, args, data_dir=common.data_dir(), runs_dir=common.runs_dir())
    except OSError as e:
        problem = str(e)
    st.session_state["exp_msg"] = ("error", f"Not launched: {problem}") if problem else (
        "success", f"Launched sweep {name}: follow it on the Train page, compare its runs on Compare.")


def _reproduce() -> None:
    """The paper's degradation experiment as one sweep, with its time here shown first."""
    st.subheader("Reproduce the paper")
    by_key = {e.key: e for e in experiments.EXPERIMENTS}
    key = st.segmented_control("Experiment", list(by_key), format_func=lambda k: by_key[k].title,
                               key="exp_pick", default=experiments.EXPERIMENTS[0].key, required=True)
    exp = by_key[key]
    st.caption(exp.description)
    configs = exp.configs()
    parallel = len(placement.candidate_devices("auto"))
    speeds = _measured_speeds()
    device = caches.system_info().primary.name
    if not cifar.dataset_present("cifar10", common.data_dir()):
        st.caption("Download CIFAR-10 (above) first: the estimate trains a few real steps.")
        return
    known = all(experiments.speed_key(c) in speeds for c in configs)
    if known:
        total = experiments.experiment_seconds(configs, speeds, parallel)
        each = ", ".join(f"{c.depth}-layer "
                         + formatting.format_duration(experiments.run_seconds(c, speeds[experiments.speed_key(c)]))
                         for c in configs[::2])
        st.markdown(f"**About {formatting.format_duration(total)}** on {formatting.md_escape(device)} for "
                    f"{len(configs)} runs, {parallel} at a time (each: {each}; a plain network takes as long as "
                    f"its residual twin). Measured from a few training steps here.")
    c1, c2 = st.columns(2)
    if c1.button("Estimate the time here", icon=":material/timer:", key="exp_estimate", disabled=known,
                 help="trains a few steps of each network on this device"):
        _estimate(configs)
        st.rerun()
    c2.button("Launch the sweep", icon=":material/rocket_launch:", key="exp_launch", type="primary",
              on_click=_launch, args=(exp, parallel), disabled=not known,
              help=None if known else "estimate the time first")
    msg = st.session_state.pop("exp_msg", None)
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])


def _latest_runs() -> None:
    st.subheader("Latest runs")
    all_runs = runs.list_runs(common.runs_dir())
    if not all_runs:
        st.info(f"No runs yet in `{common.runs_dir().resolve()}`.", icon=":material/info:")
        st.page_link(common.TRAIN, label="Configure and launch a run", icon=":material/rocket_launch:")
        return
    for info in all_runs[:6]:
        _run_card(info)
    if len(all_runs) > 6:
        st.page_link(common.RUNS, label=f"All {len(all_runs)} runs", icon=":material/folder_open:")


st.title("ResNet Studio")
st.markdown(
    "Train the CIFAR ResNets of He et al. (2016) — ResNet-20 to ResNet-1202, basic or bottleneck "
    "blocks, shortcut options A/B/C or none (the paper's plain networks), original or pre-activation units — "
    "on CIFAR-10, CIFAR-100 or your own image folder, and watch them learn live.  \n"
    "Then open any epoch's confusion matrix and click a cell to see exactly which images the network "
    "confused."
)
left, right = st.columns(2, gap="large")
with left:
    _device()
with right:
    folders = folder_listing.known_folders(common.runs_dir(), common.data_dir())
    _dataset(bool(folders))
    _image_folders(folders)
_reproduce()
_latest_runs()
st.caption(common.env_summary())
