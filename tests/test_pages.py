"""Every page through Streamlit's AppTest, against temp runs and data folders: an empty runs
folder, a finished run, a running run, a failed run, a crashed run, and form validation.

AppTest cannot click a Plotly chart or fire run_every timers; the click-to-gallery path is
covered by the pure functions (test_gallery.py) and the browser test (test_browser_e2e.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fake_runs import BAD_PREDICTIONS, UNREADABLE_CASES, make_run, make_unreadable_run, repredict
from streamlit.testing.v1 import AppTest

from app_pages.navigation import ANALYZE, COMPARE, EXPLAIN, HOME, MONITOR, RUNS, TRAIN
from resnet_core import runs
from resnet_core.config import paper_config
from resnet_core import formatting
from resnet_core.dashboard import comparison
from resnet_core.dashboard.cell_selection import Cell
from resnet_core.metrics import class_report, confusion_matrix
from resnet_core.sweep_options import RECORD_OPTIONS

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "studio.py")  # the script Streamlit runs (app.py is the server)


@pytest.fixture
def folders(tmp_path, monkeypatch, cifar_dir):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    monkeypatch.setenv("RESNET_STUDIO_RUNS", str(runs_dir))
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(cifar_dir))
    return runs_dir


@pytest.fixture
def sleeper():
    """A live process standing in for a trainer (so a "running" run stays running)."""
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def open_section(at: AppTest, key: str, is_open: bool = True) -> AppTest:
    """Open (or close) a section drawn only while open (common.lazy_expander), as a click on it does."""
    at.session_state[key] = is_open
    return at.run()


def open_page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if query:
        at.query_params.update(query)
    at.run()
    if page != HOME:
        at.switch_page(page)
        if query:
            at.query_params.update(query)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """All visible text of the page, for loose assertions."""
    parts = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "error", "success", "code",
                 "metric"):
        for el in getattr(at, kind):
            parts.append(str(getattr(el, "value", "")))
            if kind == "metric":
                parts.append(el.label)
    for bar in at.get("progress"):
        parts.append(str(bar.proto.text))
    for b in at.button:
        parts.append(b.label)
    return "\n".join(parts)


def html_blocks(at: AppTest) -> list[str]:
    return [el.proto.body for el in at.get("html")]


def pair_of(at: AppTest, which: int) -> tuple[int, int]:
    """Analyze's which-th most-confused pair: (true, predicted)."""
    radio = at.radio(key="an_pairs")

    def shown(pair):
        try:
            return radio.format_func(pair)
        except (IndexError, KeyError):  # no such class, or not a listed pair
            return None

    return next((t, p) for t in range(100) for p in range(100) if t != p and shown((t, p)) == radio.options[which])


def choose_pair(at: AppTest, which: int = 0) -> tuple[int, int]:
    """Choose Analyze's which-th most-confused pair (as a click on it does); its (true, predicted)."""
    pair = pair_of(at, which)
    at.radio(key="an_pairs").set_value(pair).run()
    return pair


def _tiny_form(at: AppTest) -> None:
    open_section(at, "tf_advanced_open")
    at.selectbox(key="tf_depth").set_value(8)
    at.number_input(key="tf_epochs").set_value(1)
    at.number_input(key="tf_batch_size").set_value(32)
    at.number_input(key="tf_val_size").set_value(50)
    at.number_input(key="tf_subset").set_value(64)
    at.selectbox(key="tf_device").set_value("cpu")


# ----------------------------------------------------------------------------- empty runs folder

def test_every_page_handles_an_empty_runs_folder(folders):
    home = open_page(HOME)
    assert "ResNet Studio" in texts(home)
    assert "No runs yet" in texts(home)
    assert "CIFAR-10 is ready" in texts(home)
    assert re.search(r"(GB RAM|cores|CUDA)", texts(home))  # the device line
    assert "Launch training" in texts(open_page(TRAIN))
    assert "No runs yet: launch one on the Train page" in texts(open_page(MONITOR))
    analyze = open_page(ANALYZE)
    assert "No run has finished an epoch yet" in texts(analyze)
    assert "No run has recorded per-image predictions yet" in texts(open_page(EXPLAIN))
    assert "No runs in" in texts(open_page(RUNS))


def test_home_offers_a_download_and_offline_steps_without_data(folders, tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(tmp_path / "nodata"))
    home = open_page(HOME)
    assert "not in" in texts(home)
    assert any("Download CIFAR-10" in b.label for b in home.button)
    assert any("No internet" in e.label for e in home.expander)
    assert "cifar-10-batches-py" in texts(home)
    # The Train form refuses to launch without data, next to the form.
    train = open_page(TRAIN)
    assert "download it on the Home page" in texts(train)


# ----------------------------------------------------------------------------- the Train form

def test_the_form_offers_only_valid_depths_and_a_live_model_summary(folders):
    at = open_page(TRAIN)
    depth = at.selectbox(key="tf_depth")
    assert depth.options[:4] == ["ResNet-8", "ResNet-14", "ResNet-20", "ResNet-26"]
    assert depth.value == 20
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"] == "270K" and metrics["Paper error"] == "8.75%"
    assert metrics["MACs / image"] == "40.6M"
    at.segmented_control(key="tf_block").set_value("bottleneck").run()
    depth = at.selectbox(key="tf_depth")
    assert depth.options[:3] == ["ResNet-11", "ResNet-20", "ResNet-29"]
    assert all((int(o.split("-")[1]) - 2) % 9 == 0 for o in depth.options)
    at.selectbox(key="tf_depth").set_value(164).run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Paper error"] == "5.93%" and metrics["Parameters"] == "1.7M"
    at.selectbox(key="tf_depth").set_value(29).run()
    assert {m.label: m.value for m in at.metric}["Paper error"] == "—"


def test_the_preact_toggle_names_and_counts_the_pre_activation_network(folders):
    at = open_page(TRAIN)
    at.segmented_control(key="tf_block").set_value("bottleneck").run()
    at.selectbox(key="tf_depth").set_value(164).run()
    at.toggle(key="tf_preact").set_value(True).run()
    assert "PreAct-ResNet-164" in at.selectbox(key="tf_depth").options
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"] == "1.7M" and metrics["Paper error"] == "5.46%"
    assert "PreAct-ResNet-164" in texts(at)
    assert ('Paper: CIFAR-10 test error 5.46% (median of 5 runs), He et al. 2016, "Identity Mappings", Table 3 '
            '(pre-activation unit).' in texts(at))


def test_the_shortcut_follows_the_block_type_and_the_paper_error_the_combination(folders):
    at = open_page(TRAIN)
    assert at.segmented_control(key="tf_shortcut").value == "A"
    at.segmented_control(key="tf_block").set_value("bottleneck").run()
    assert at.segmented_control(key="tf_shortcut").value == "B"
    at.selectbox(key="tf_depth").set_value(164).run()
    assert {m.label: m.value for m in at.metric}["Paper error"] == "5.93%"
    # Option A stays selectable for bottlenecks, but no paper trained that network.
    at.segmented_control(key="tf_shortcut").set_value("A").run()
    assert at.segmented_control(key="tf_shortcut").value == "A" and "Unknown shortcut" not in texts(at)
    assert {m.label: m.value for m in at.metric}["Paper error"] == "—"
    assert "the paper reports no CIFAR error for this combination" in texts(at)
    at.segmented_control(key="tf_block").set_value("basic").run()
    assert at.segmented_control(key="tf_shortcut").value == "A"
    at.selectbox(key="tf_depth").set_value(110).run()
    assert {m.label: m.value for m in at.metric}["Paper error"] == "6.43%"
    assert "6.43% (best of 5 runs; mean 6.61 ± 0.16), He et al. 2016, Table 6" in texts(at)
    at.segmented_control(key="tf_shortcut").set_value("B").run()
    assert {m.label: m.value for m in at.metric}["Paper error"] == "—"


def test_the_paper_preset_fills_in_and_locks_the_recipe(folders):
    at = open_page(TRAIN)
    at.number_input(key="tf_epochs").set_value(5).run()
    at.toggle(key="tf_preset_paper").set_value(True).run()
    open_section(at, "tf_advanced_open")
    assert at.number_input(key="tf_epochs").value == 165
    assert at.number_input(key="tf_epochs").disabled
    assert at.number_input(key="tf_batch_size").value == 128
    assert at.text_input(key="tf_lr").value == "0.1"
    assert at.selectbox(key="tf_schedule").value == "multistep"
    assert at.number_input(key="tf_val_size").value == 0
    # The form shows the trainer's own resolution of the preset: exactly 64k iterations.
    assert ("50,000 training images · no validation split (the test set is monitored every epoch) · "
            "390 steps per epoch · 64,000 steps in 165 epochs, the last one 40 steps") in texts(at)


def test_bad_input_is_refused_next_to_the_field_and_nothing_starts(folders):
    at = open_section(open_page(TRAIN), "tf_advanced_open")
    at.number_input(key="tf_subset").set_value(10).run()
    at.text_input(key="tf_lr").set_value("fast").run()
    at.text_input(key="tf_name").set_value("../../").run()
    page = texts(at)
    assert "10 training images are fewer than one batch of 128" in page
    assert "Learning rate must be a number" in page
    assert "The name needs at least one letter or digit" in page
    at.button(key="train_launch").click().run()
    assert "Not launched: fix the fields marked in red." in texts(at)
    assert list(folders.iterdir()) == []  # no run folder, no trainer


def test_the_form_keeps_its_values_across_pages(folders):
    at = open_page(TRAIN)
    at.number_input(key="tf_epochs").set_value(7).run()
    at.segmented_control(key="tf_block").set_value("bottleneck").run()
    at.text_input(key="tf_name").set_value("keep me").run()
    at.switch_page(HOME).run()
    at.switch_page(TRAIN).run()
    assert at.number_input(key="tf_epochs").value == 7
    assert at.segmented_control(key="tf_block").value == "bottleneck"
    assert at.text_input(key="tf_name").value == "keep me"


def test_a_run_name_is_shown_sanitised(folders):
    at = open_page(TRAIN)
    at.text_input(key="tf_name").set_value("my run/../../etc").run()
    assert "saved as `my-run-..-..-etc`" in texts(at)


def test_the_advanced_section_is_drawn_while_open_and_its_values_show_closed(folders):
    at = open_page(TRAIN)
    assert not [w for w in at.number_input if w.key in ("tf_val_size", "tf_log_every")]  # closed and undrawn
    esc = formatting.md_escape
    assert esc("cosine schedule · weight decay 0.0001 · momentum 0.9 · precision, channels-last") in texts(at)
    open_section(at, "tf_advanced_open")
    at.text_input(key="tf_weight_decay").set_value("5e-4")
    at.number_input(key="tf_subset").set_value(10000).run()
    open_section(at, "tf_advanced_open", False)
    assert esc("cosine schedule · weight decay 0.0005 · momentum 0.9") in texts(at)
    assert "10,000 training images · 5,000 validation images" in texts(at)  # the plan's line above it


@pytest.mark.parametrize("field, value, message", [("log_every", 0, "at least 1 step"),
                                                   ("subset", 10, "fewer than one batch of 128")])
def test_the_advanced_section_stays_open_while_a_value_in_it_is_invalid(folders, field, value, message):
    at = open_section(open_page(TRAIN), "tf_advanced_open")
    at.number_input(key="tf_" + field).set_value(value).run()
    open_section(at, "tf_advanced_open", False)  # a click to close it
    assert at.session_state["tf_advanced_open"] and at.number_input(key="tf_" + field).value == value
    assert message in texts(at)


@pytest.mark.slow
def test_launching_from_the_form_starts_a_trainer(folders, cifar_dir):
    pytest.importorskip("resnet_core.train")
    at = open_page(TRAIN)
    _tiny_form(at)
    at.text_input(key="tf_name").set_value("from the form")
    at.number_input(key="tf_log_every").set_value(3)  # the Advanced section reaches the trainer
    at.number_input(key="tf_log_seconds").set_value(0.0)
    at.run()
    open_section(at, "tf_advanced_open", False)  # and keeps its values closed again
    at.button(key="train_launch").click().run()
    assert not at.exception
    assert "Launched" in texts(at) and at.title[0].value == "Monitor"  # the launch opens the new run's monitor
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    run_dir = folders / run_id
    assert run_dir.is_dir() and run_id.endswith("-from-the-form")
    deadline = time.time() + 90
    info = None
    while time.time() < deadline:
        info = runs.read_run(run_dir)
        if info is not None and not info.is_active:
            break
        time.sleep(0.2)
    assert info is not None and info.state == "completed", (run_dir / runs.CONSOLE_FILE).read_text()
    assert (info.train_config["log_every"], info.train_config["log_seconds"]) == (3, 0.0)
    assert (info.train_config["val_size"], info.train_config["subset"]) == (50, 64)
    # 64 images in batches of 32: steps 1 (the first) and 2 (the epoch's end); by time never (0 s)
    assert [r["step"] for r in runs.read_metrics(run_dir) if r["type"] == "step"] == [1, 2]
    at.switch_page(MONITOR)  # where the launch went (AppTest reruns the page it was told, not st.switch_page's)
    at.query_params["run"] = run_id
    at.run()
    assert "completed" in texts(at) and at.title[0].value == "Monitor"


# ----------------------------------------------------------------------------- the monitor

def test_a_finished_run_everywhere(folders):
    run_dir = make_run(folders, "done", epochs_done=3, total_epochs=3)
    home = open_page(HOME)
    assert run_dir.name in texts(home) and "completed" in texts(home)
    train = open_page(MONITOR, {"run": run_dir.name})
    page = texts(train)
    assert "all epochs done" in page and "run: epoch 3 of 3 done (100%)" in page
    assert "Stop" not in [b.label for b in train.button] and "Resume" not in [b.label for b in train.button]
    metrics = {m.label: m.value for m in train.metric}
    assert metrics["Best val acc (epoch 3)"] == "70.00%" and metrics["Memory (peak RSS)"] == "321 MB"
    assert metrics["Final test acc (epoch 3)"].endswith("%")
    assert "best val acc 70.00% (epoch 3)" in texts(home)
    assert "3 epochs, " in page
    table = open_page(RUNS).dataframe[0].value
    assert list(table["run"]) == [run_dir.name] and list(table["state"]) == ["completed"]
    assert table["best val acc"][0] == pytest.approx(70.0)


def test_the_monitors_chart_controls_keep_their_values_and_redraw_the_curves(folders):
    run_dir = make_run(folders, "curves", epochs_done=3, total_epochs=3)
    at = open_page(MONITOR, {"run": run_dir.name})
    assert at.radio(key="mon_x_axis").value == "epoch" and at.slider(key="mon_smoothing").value == 0.6
    assert at.toggle(key="mon_log_loss").value is False

    def loss_chart() -> dict:
        return json.loads(next(c for c in at.get("plotly_chart") if c.key == "live_loss").proto.spec)

    before = loss_chart()
    assert before["layout"]["xaxis"]["title"]["text"] == "epoch" and before["layout"]["yaxis"].get("type") != "log"
    at.radio(key="mon_x_axis").set_value("wall time").run()
    at.slider(key="mon_smoothing").set_value(0.9).run()
    at.toggle(key="mon_log_loss").set_value(True).run()
    assert not at.exception
    # The charts follow the controls (not a chart built for other controls and kept: MetricsHistory.memo).
    after = loss_chart()
    assert after["layout"]["xaxis"]["title"]["text"].startswith("wall time")
    assert after["layout"]["yaxis"]["type"] == "log"
    assert any("smoothed 0.9" in (t.get("name") or "") for t in after["data"])
    assert (at.radio(key="mon_x_axis").value, at.slider(key="mon_smoothing").value,
            at.toggle(key="mon_log_loss").value) == ("wall time", 0.9, True)
    # loss, accuracy, learning rate; speed, utilisation and memory only once their section is open
    assert [c.key for c in at.get("plotly_chart")] == ["live_loss", "live_acc", "live_lr"]
    open_section(at, "mon_system_open")
    assert not at.exception
    assert [c.key for c in at.get("plotly_chart")] == ["live_loss", "live_acc", "live_lr", "live_speed", "live_util",
                                                       "live_mem"]
    # the section stays open across the page's reruns, with the controls' values
    at.slider(key="mon_smoothing").set_value(0.5).run()
    assert len(at.get("plotly_chart")) == 6 and at.radio(key="mon_x_axis").value == "wall time"


def test_a_running_run_is_shown_live_and_can_be_stopped(folders, sleeper):
    run_dir = make_run(folders, "live", state="running", pid=sleeper.pid, epochs_done=1, total_epochs=4)
    at = open_page(MONITOR)  # no ?run=: the active run is picked
    page = texts(at)
    assert run_dir.name in page and "running" in page
    assert "run: epoch 1 of 4 done" in page and "epoch 2: step" in page
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ETA"] != "—" and metrics["Images / s"] == "500"
    assert at.toggle(key="mon_live").value is True
    stop = at.button(key="mon_stop")
    assert stop.label == "Stop"
    stop.click().run()
    # The stand-in trainer got SIGTERM and is gone (the page's pid check may have reaped it).
    sleeper.wait(timeout=5)
    assert not runs.pid_alive(sleeper.pid)
    assert "Stop requested" in [t.value for t in at.toast][0]
    # Pausing live refresh keeps the page drawing.
    at.toggle(key="mon_live").set_value(False).run()
    assert not at.exception


@pytest.mark.parametrize("state", ["queued", "running", "completed", "stopped", "crashed"])
def test_the_run_selector_names_the_state_the_badge_shows(folders, sleeper, state):
    live = state in ("queued", "running")
    run_dir = make_run(folders, state, state="running" if state == "crashed" else state,
                       pid=sleeper.pid if live else None, epochs_done=1, total_epochs=3)
    at = open_page(MONITOR, {"run": run_dir.name})
    picker = at.selectbox(key=f"mon_pick_{run_dir.name}_{state}")
    badges = [m.value for m in at.markdown if m.value.startswith(":") and "-badge[" in m.value]
    assert picker.format_func(run_dir.name).endswith(f" · {state}")
    assert any(b.endswith(f" {state}]") for b in badges), badges


def test_the_run_selector_is_a_new_widget_when_the_shown_runs_state_changes(folders, sleeper):
    """The browser shows the label a selectbox drew first for as long as the widget keeps its
    id (a keyed selectbox keeps it when only the labels change), so "<run> · starting" stayed
    beside a "running" badge. A new state must give the selector a new id, on the same run."""
    run_dir = make_run(folders, "flip", state="running", pid=sleeper.pid, epochs_done=1, total_epochs=3)
    at = open_page(MONITOR, {"run": run_dir.name})
    before = at.selectbox[0]
    assert before.value == run_dir.name and before.format_func(run_dir.name).endswith(" · running")
    sleeper.kill()  # the trainer dies: the run reads as crashed
    sleeper.wait()
    at.run()
    after = at.selectbox[0]
    assert after.value == run_dir.name and after.format_func(run_dir.name).endswith(" · crashed")
    assert after.id != before.id
    at.run()  # and a redraw without a change keeps it
    assert at.selectbox[0].id == after.id


def test_the_monitor_shows_what_the_trainer_does_instead_of_step_0(folders, sleeper):
    make_run(folders, "eval", state="running", pid=sleeper.pid, epochs_done=1, total_epochs=4, n_val=200,
             phase="validating", phase_done=50, first_step_s=41.0)
    at = open_page(MONITOR)
    page = texts(at)
    assert "validating epoch 2: 50 of 200 images" in page and "step 0 of" not in page
    images = next(m for m in at.metric if m.label == "Images / s")
    assert images.delta == "first step 41 s"


def test_a_queued_run_says_it_waits(folders, sleeper):
    make_run(folders, "waiting", state="queued", pid=sleeper.pid, epochs_done=0, total_epochs=4)
    assert "Waiting for the device" in texts(open_page(MONITOR))


def test_a_failed_run_shows_its_error_log_tail_and_resume(folders):
    run_dir = make_run(folders, "bad", state="failed", error="CUDA out of memory", epochs_done=1, total_epochs=3)
    at = open_page(MONITOR, {"run": run_dir.name})
    page = texts(at)
    assert "failed: CUDA out of memory" in page
    assert "RuntimeError: CUDA out of memory" in page  # the log tail
    assert at.button(key="mon_resume").label == "Resume" and not at.button(key="mon_resume").disabled
    runs_page = open_page(RUNS)
    assert "RuntimeError: CUDA out of memory" in texts(runs_page)


def test_a_killed_trainer_shows_as_crashed_with_resume(folders):
    run_dir = make_run(folders, "killed", state="running", pid=999_999_999, epochs_done=2, total_epochs=5)
    at = open_page(MONITOR, {"run": run_dir.name})
    page = texts(at)
    assert "crashed" in page and "The trainer process is gone" in page
    assert not at.button(key="mon_resume").disabled
    assert "crashed" in texts(open_page(HOME))


def test_a_folder_whose_trainer_never_started_is_listed_with_its_output(folders):
    folder = runs.new_run_dir(folders, "broken")
    (folder / runs.CONSOLE_FILE).write_text("usage: train.py\ntrain.py: error: --run-dir: already holds a run\n")
    import os
    for path in (folder / runs.CONSOLE_FILE, folder):  # quiet for longer than STALE_S
        os.utime(path, (time.time() - 120, time.time() - 120))
    at = open_page(RUNS)
    page = texts(at)
    assert "exited before starting the run" in page and "already holds a run" in page


def test_the_runs_pages_records_are_drawn_only_once_their_expander_opens(folders):
    run_dir = make_run(folders, "done")
    at = open_page(RUNS)
    assert [e.label for e in at.expander] == ["config.json", "status.json", "Log tail"]
    assert not at.code  # closed, and a completed run's log tail starts closed
    at.session_state["runs_config"] = True  # what a click on "config.json" sets
    at.run()
    assert [json.loads(c.value) for c in at.code] == [json.loads((run_dir / runs.CONFIG_FILE).read_text())]


# ----------------------------------------------------------------------------- Analyze

def test_analyze_shows_the_matrix_metrics_pairs_and_a_cells_gallery(folders, cifar_dir):
    old = make_run(folders, "old", created=time.time() - 100, data_dir=cifar_dir)
    run_dir = make_run(folders, "new", epochs_done=3, total_epochs=3, n_val=200, data_dir=cifar_dir)
    at = open_page(ANALYZE, {"run": old.name})
    assert at.selectbox[0].value == old.name  # the run from ?run= (a shared link)
    at = open_page(ANALYZE)
    assert at.selectbox[0].value == run_dir.name  # else the newest
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "200" and metrics["Accuracy"].endswith("%")
    shown = runs.load_predictions(run_dir, "val", 3)
    report = class_report(confusion_matrix(shown["labels"], shown["preds"], 10))
    assert metrics["Macro F1"] == f"{100 * report.macro_f1:.2f}%"
    assert at.segmented_control(key="an_split").options == ["validation", "training", "test"]
    assert at.select_slider[0].options == ["1", "2", "3"] and at.select_slider[0].value == 3
    assert "Click a cell" in texts(at)
    table = at.dataframe[0].value
    assert list(table.columns) == ["class", "precision", "recall", "F1", "support"]
    assert table["support"].sum() == 200
    assert at.radio(key="an_pairs").options, "most-confused pairs are listed"
    third = pair_of(at, 2)
    at.session_state["an_cell"] = third  # a click on that cell of the matrix
    at.run()
    assert at.radio(key="an_pairs").index == 2  # the open cell's pair shows as chosen
    t, p = choose_pair(at)
    assert at.radio(key="an_pairs").index == 0
    assert not at.exception
    blocks = html_blocks(at)
    assert len(blocks) == 1
    grid = blocks[0]
    preds = runs.load_predictions(run_dir, "val", 3)
    expected = int(((preds["labels"] == t) & (preds["preds"] == p)).sum())
    assert f'data-true="{t}" data-pred="{p}" data-total="{expected}"' in grid
    assert grid.count('class="rs-card"') == min(expected, 30)
    assert grid.count("data:image/png;base64,") == min(expected, 30)
    assert f"{expected:,} misclassified image" in texts(at)
    own_folder = formatting.md_escape("the run's own data folder")
    assert f"images from the training set in {formatting.md_escape(cifar_dir)}, {own_folder}" in texts(at)
    # Sorting by loss reorders the same images.
    at.segmented_control(key="an_sort").set_value("loss").run()
    resorted = html_blocks(at)[0]
    assert sorted(re.findall(r'data-index="(\d+)"', resorted)) == sorted(re.findall(r'data-index="(\d+)"', grid))
    # The epoch slider keeps the cell; the normalisation changes the matrix, not the cell.
    at.select_slider[0].set_value(1).run()
    at.segmented_control(key="an_norm").set_value("recall").run()
    assert not at.exception
    early = runs.load_predictions(run_dir, "val", 1)
    n1 = int(((early["labels"] == t) & (early["preds"] == p)).sum())
    assert (f'data-true="{t}" data-pred="{p}" data-total="{n1}"' in html_blocks(at)[0]) if n1 else True
    # The training split has only a matrix: its cells have no gallery, and the page says so.
    at.segmented_control(key="an_split").set_value("train").run()
    assert "no gallery" in texts(at) and not html_blocks(at)
    at.button(key="an_clear").click().run()
    assert "Click a cell" in texts(at)
    assert at.radio(key="an_pairs").index is None  # no cell open: no pair chosen


def test_analyze_takes_val_images_from_the_test_set_when_the_run_says_so(folders, cifar_dir):
    run_dir = make_run(folders, "valtest", val_source="test", n_val=150, data_dir=cifar_dir)
    at = open_page(ANALYZE, {"run": run_dir.name})
    assert at.segmented_control(key="an_split").options[0] == "test (used as validation)"
    choose_pair(at)
    assert "images from the test set" in texts(at)
    assert "data:image/png;base64," in html_blocks(at)[0]


def test_analyze_shows_no_images_from_a_folder_whose_labels_differ(folders, cifar_dir):
    # Recorded labels that are not the data folder's: another dataset, or another order.
    run_dir = make_run(folders, "elsewhere", n_val=200, source_size=500)
    at = open_page(ANALYZE, {"run": run_dir.name})
    t, p = choose_pair(at)
    assert not at.exception
    preds = runs.load_predictions(run_dir, "val", 3)
    from resnet_core.cifar import load_cifar
    differ = int((load_cifar("cifar10", cifar_dir).train_labels[preds["indices"]] != preds["labels"]).sum())
    assert differ > 0
    page = texts(at)
    # Shown as markdown, escaped: the folder's path comes from the run's config.json.
    esc = formatting.md_escape
    assert esc(f"{differ:,} of 200 recorded labels differ from the labels at the same indices of the "
               f"training set in {cifar_dir}") in page
    assert esc("the dashboard's data folder (the run did not record its own)") in page
    grid = html_blocks(at)[0]
    expected = int(((preds["labels"] == t) & (preds["preds"] == p)).sum())
    assert grid.count('class="rs-card"') == min(expected, 30) and "<img" not in grid


def test_analyze_prefers_the_runs_own_data_folder_while_it_holds_cifar(folders, cifar_dir, tmp_path, monkeypatch):
    from conftest import write_cifar_folder
    own = write_cifar_folder(tmp_path / "own", n_train=500, n_test=200, seed=7)  # another order than cifar_dir's
    run_dir = make_run(folders, "own", n_val=200, data_dir=own)
    at = open_page(ANALYZE, {"run": run_dir.name})
    choose_pair(at)
    esc = formatting.md_escape  # folders come from config.json: shown escaped
    own_note = esc("the run's own data folder")
    assert f"in {esc(own)}, {own_note}" in texts(at)
    assert "data:image/png;base64," in html_blocks(at)[0] and "recorded labels differ" not in texts(at)
    # The run's folder is gone: the dashboard's (cifar_dir, another order) is used, caught and named.
    import shutil
    shutil.rmtree(own)
    at = open_page(ANALYZE, {"run": run_dir.name})
    choose_pair(at)
    page = texts(at)
    assert esc(f"the dashboard's data folder: the run's own, {own}, holds no CIFAR-10 any more") in page
    assert esc(f"of 200 recorded labels differ from the labels at the same indices of the training set in "
               f"{cifar_dir}") in page
    assert "<img" not in html_blocks(at)[0]


def test_analyze_renders_a_run_with_10k_predictions(folders):
    """Its speed (the target: a script run under 2 s) is timed by tests/page_timings.py --apptest."""
    make_run(folders, "big", epochs_done=2, total_epochs=2, n_val=10_000, source_size=50_000)
    at = open_page(ANALYZE)
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Images"] == "10,000"


def test_analyze_announces_new_epochs_of_a_running_run(folders, sleeper):
    run_dir = make_run(folders, "live", state="running", pid=sleeper.pid, epochs_done=2, total_epochs=4)
    at = open_page(ANALYZE, {"run": run_dir.name})
    assert "new epochs are announced here" in texts(at)
    # The trainer records epoch 3 while the page is open.
    for split in ("val", "train"):
        src, dst = runs.prediction_path(run_dir, split, 2), runs.prediction_path(run_dir, split, 3)
        dst.write_bytes(src.read_bytes())
    # AppTest never fires run_every, so the notice itself is checked in a browser; a full
    # rerun must offer the new epoch.
    at.run()
    assert "3" in at.select_slider(key=f"an_epoch_{run_dir.name}_val").options  # AppTest lists them as text


# ----------------------------------------------------------------------------- explain

def _grid_indices(at: AppTest) -> list[int]:
    return [int(i) for i in re.findall(r'class="rs-card" data-index="(\d+)"', html_blocks(at)[0])]


def test_explain_shows_histories_top_losses_calibration_and_label_errors(folders, cifar_dir):
    from resnet_core.dashboard import calibration, history, label_errors

    run_dir = make_run(folders, "explain", epochs_done=4, total_epochs=4, n_val=200, data_dir=cifar_dir)
    at = open_page(EXPLAIN)
    assert at.title[0].value == "Explain" and at.selectbox[0].value == run_dir.name
    assert at.segmented_control(key="ex_view").value == "Held-out flips"  # no record of its training images
    assert at.query_params["split"] == "val" and at.query_params["epoch"] == "4"
    hist = history.load_history(run_dir, "val").history
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Never right"] == f"{int(hist.never_right.sum()):,}"
    assert metrics["Flips"] == f"{int(hist.flips.sum()):,}"
    assert "not forgetting events" in texts(at) and "Toneva" not in texts(at)
    most = hist.indices[history.view_rows(hist, "most flipped")]
    assert _grid_indices(at) == most[:30].tolist()
    grid = html_blocks(at)[0]
    assert grid.count('class="rs-strip"') == min(30, len(most)) and "data:image/png;base64," in grid
    first = int(np.searchsorted(hist.indices, most[0]))
    assert f'data-right="{"".join("1" if x else "0" for x in hist.right[first])}"' in grid
    at.segmented_control(key="ex_hist").set_value("never right").run()
    assert _grid_indices(at) == hist.indices[history.view_rows(hist, "never right")][:30].tolist()

    preds = runs.load_predictions(run_dir, "val", 4)
    at.segmented_control(key="ex_view").set_value("Top losses").run()
    assert not at.exception and at.query_params["view"] == "Top losses"
    assert _grid_indices(at) == preds["indices"][np.argsort(-preds["loss"], kind="stable")[:30]].tolist()
    at.number_input(key="ex_page_loss").set_value(7).run()  # 200 images: the last page has 20
    assert len(_grid_indices(at)) == 20

    at.segmented_control(key="ex_view").set_value("Calibration").run()
    rel = calibration.of_records(preds)
    assert {m.label: m.value for m in at.metric}["ECE"] == f"{100 * rel.ece:.2f}%"
    assert "Click a bar" in texts(at) and not html_blocks(at)
    fullest = int(np.argmax(rel.counts))
    at.selectbox(key="ex_bin").set_value(fullest).run()  # what a click on the bar sets
    assert sorted(_grid_indices(at)) == sorted(preds["indices"][calibration.bin_positions(preds, fullest)[:30]])

    at.segmented_control(key="ex_view").set_value("Label errors").run()
    found = label_errors.find_label_errors(preds, 10)
    assert f"{len(found.positions):,} candidate" in texts(at) and "not verdicts" in texts(at)
    assert "of 200 validation images" in texts(at) and "out-of-sample" in texts(at)
    if len(found.positions):
        assert _grid_indices(at) == preds["indices"][found.positions[:30]].tolist()
        assert html_blocks(at)[0].count('class="rs-note"') == min(30, len(found.positions))


def test_explain_says_what_is_missing_and_shows_what_is_there(folders):
    run_dir = make_run(folders, "gaps", epochs_done=4, total_epochs=4, n_val=100)
    runs.prediction_path(run_dir, "val", 2).unlink()
    esc = formatting.md_escape  # reasons are shown escaped
    at = open_page(EXPLAIN)
    assert esc("Epoch 2 of this split is not recorded (recorded: 1, 3-4)") in texts(at)
    at.segmented_control(key="ex_view").set_value("Top losses").run()
    assert len(_grid_indices(at)) == 30 and "rs-strip" not in html_blocks(at)[0]
    assert "No history strips on the cards: " + esc("Epoch 2 of this split is not recorded") in texts(at)
    # A run recorded before per-epoch predictions: one epoch of its split only.
    for e in (1, 3):
        runs.prediction_path(run_dir, "val", e).unlink()
    at = open_page(EXPLAIN)
    assert esc("only epoch 4 is recorded") in texts(at)
    # A run with only a training matrix has no per-image records: not offered.
    only_train = make_run(folders, "train-only", epochs_done=1, total_epochs=1, n_val=50, test=False)
    runs.prediction_path(only_train, "val", 1).unlink()
    assert only_train.name not in open_page(EXPLAIN).selectbox[0].options


def test_explain_deep_links_and_the_link_from_analyze(folders):
    old = make_run(folders, "monitored", val_source=None, epochs_done=3, total_epochs=3, n_val=80,
                   created=time.time() - 100)
    make_run(folders, "newer", epochs_done=2, total_epochs=2)
    at = open_page(EXPLAIN, {"run": old.name, "split": "test", "epoch": "2", "view": "Calibration"})
    assert at.selectbox[0].value == old.name
    assert at.segmented_control(key="ex_split").value == "test"
    assert at.select_slider(key=f"ex_epoch_{old.name}_test").value == 2
    assert at.segmented_control(key="ex_view").value == "Calibration" and "ECE" in {m.label for m in at.metric}
    analyze = open_page(ANALYZE, {"run": old.name})
    link = next(el.proto for el in analyze.get("page_link") if "explain" in el.proto.page)
    assert link.query_string == f"run={old.name}&split=test&epoch=3"


def test_explain_renders_each_view_of_a_5000_image_30_epoch_run(folders):
    """Their speed (the target: each view's script run under 1 s) is timed by
    tests/page_timings.py --apptest."""
    make_run(folders, "big", epochs_done=30, total_epochs=30, n_val=5000, source_size=45_000)
    for view in ("Held-out flips", "Top losses", "Calibration", "Label errors"):
        at = open_page(EXPLAIN, {"view": view})
        assert not at.exception and at.segmented_control(key="ex_view").value == view


# ----------------------------------------------------------------------------- what the numbers are

def chart_traces(at: AppTest) -> list[str]:
    """The trace names of every Plotly chart on the page."""
    return [t.get("name") for chart in at.get("plotly_chart") for t in json.loads(chart.proto.spec)["data"]]


def test_a_run_validated_on_the_test_set_says_so_everywhere(folders, cifar_dir):
    run_dir = make_run(folders, "valtest", val_source="test", data_dir=cifar_dir)
    assert "best test acc (used as validation) 70.00% (epoch 3)" in texts(open_page(HOME))
    train = open_page(MONITOR, {"run": run_dir.name})
    metrics = {m.label: m.value for m in train.metric}
    assert metrics["Best test acc (epoch 3)"] == "70.00%" and "Best val acc (epoch 3)" not in metrics
    assert "test (used as validation)" in texts(train)
    assert "test (used as validation)" in chart_traces(train) and "validation" not in chart_traces(train)
    runs_page = open_page(RUNS)
    assert list(runs_page.dataframe[0].value["val split"]) == ["test (used as validation)"]
    compare = open_page(COMPARE, {"runs": run_dir.name})
    assert f"ResNet-20 · {run_dir.name} · test (used as validation)" in chart_traces(compare)


def test_a_run_without_validation_split_shows_test_monitoring_and_no_best_val(folders, cifar_dir):
    done = make_run(folders, "noval", val_source=None, data_dir=cifar_dir, created=time.time() - 100)
    stopped = make_run(folders, "noval-stopped", val_source=None, state="stopped", epochs_done=2, total_epochs=3,
                       data_dir=cifar_dir)
    home = open_page(HOME)
    assert texts(home).count("no validation split") == 2 and "best val" not in texts(home)

    train = open_page(MONITOR, {"run": done.name})
    metrics = {m.label: m.value for m in train.metric}
    assert metrics["Validation"] == "none" and not any(k.startswith("Best") for k in metrics)
    final = runs.read_json(done / runs.STATUS_FILE)["test_acc"]
    assert metrics["Final test acc (epoch 3)"] == f"{100 * final:.2f}%"
    page = texts(train)
    assert "no validation split" in page and "No validation split" in page
    traces = chart_traces(train)
    assert "test (monitoring only, never used to pick a checkpoint)" in traces and "test (final)" in traces
    assert "validation" not in traces

    train = open_page(MONITOR, {"run": stopped.name})
    metrics = {m.label: m.value for m in train.metric}
    monitored = [r for r in runs.read_metrics(stopped) if r["type"] == "epoch"][-1]["test_acc"]
    assert metrics["Test acc (epoch 2, monitor)"] == f"{100 * monitored:.2f}%"
    assert "test (monitoring only, never used to pick a checkpoint), after epoch 2" in texts(train)

    runs_page = open_page(RUNS)
    table = runs_page.dataframe[0].value
    assert list(table["val split"]) == ["no validation split"] * 2 and table["best val acc"].isna().all()
    compare = open_page(COMPARE, {"runs": f"{done.name},{stopped.name}"})
    # The same config and seed: averaged, as repeats ("runs"), into one curve with bands.
    assert "ResNet-20 · mean of 2 runs · test (monitoring)" in chart_traces(compare)
    compare.toggle(key="cmp_average").set_value(False).run()
    bold = [name for name in chart_traces(compare) if not name.endswith(" · train")]
    assert bold == [f"ResNet-20 · {done.name} · test (monitoring)", f"ResNet-20 · {stopped.name} · test (monitoring)"]

    analyze = open_page(ANALYZE, {"run": stopped.name})
    split = analyze.segmented_control(key="an_split")
    assert split.options == ["training", "test"] and split.value == "test"
    assert analyze.select_slider[0].options == ["1", "2"]
    choose_pair(analyze)
    assert not analyze.exception and "data:image/png;base64," in html_blocks(analyze)[0]
    split.set_value("train").run()
    assert "Switch to the test split to see images." in texts(analyze)


# ----------------------------------------------------------------------------- Runs

def test_runs_table_and_delete_after_a_confirm(folders, sleeper):
    a = make_run(folders, "a", created=time.time() - 50)
    b = make_run(folders, "b", epochs_done=2, total_epochs=2)
    live = make_run(folders, "live", state="running", pid=sleeper.pid, epochs_done=1, total_epochs=3)
    at = open_page(RUNS)
    table = at.dataframe[0].value
    assert set(table["run"]) == {a.name, b.name, live.name}
    # An active run cannot be deleted.
    at.selectbox(key="runs_pick").set_value(live.name).run()
    assert at.button(key="runs_delete").disabled
    # A finished one goes after a confirm.
    at.selectbox(key="runs_pick").set_value(a.name).run()
    at.button(key="runs_delete").click().run()
    assert "cannot be undone" in texts(at) and a.exists()
    at.button(key="runs_delete_no").click().run()
    assert a.exists()
    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert not a.exists()
    assert f"Deleted {a.name}" in texts(at)
    assert set(at.dataframe[0].value["run"]) == {b.name, live.name}


# ----------------------------------------------------------------------------- Compare

def _two_models(folders, cifar_dir):
    """Two finished runs on the same images that make different mistakes on the test set."""
    a = make_run(folders, "a", data_dir=cifar_dir, created=time.time() - 60)
    b = make_run(folders, "b", data_dir=cifar_dir, shortcut="none")
    return a, b, runs.load_predictions(a, "test", 3), repredict(b, "test", 3, accuracy=0.6, seed=5)


def test_compare_takes_runs_from_the_url_and_shows_curves_difference_and_flips(folders, cifar_dir):
    a, b, pa, pb = _two_models(folders, cifar_dir)
    make_unreadable_run(folders, "config a list")
    at = open_page(COMPARE, {"runs": f"{b.name},{a.name}", "a": a.name, "b": b.name})
    assert at.multiselect(key="cmp_runs").value == [b.name, a.name]
    assert "Left out, cannot be read" in texts(at) and "config.json holds a list" in texts(at)
    assert "Dashed" in texts(at)  # the curves' legend of line styles
    at.segmented_control(key="cmp_x").set_value("wall time").run()
    assert not at.exception

    at.session_state["view"] = "Confusion difference"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"ResNet-20 · {a.name}: final test \\(epoch 3\\)" in texts(at)
    assert f"plain-20 · {b.name}: final test \\(epoch 3\\)" in texts(at)
    paired = comparison.pair(pa, pb)
    diff = comparison.difference(paired, 10)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["A correct"] == f"{int(diff.a.trace())} of {len(paired)}"
    # A click (the chart's on_select) stores the cell; the galleries show what entered and left it.
    t, p = (int(i) for i in np.argwhere(diff.diff != 0)[0])
    entered, left = comparison.cell_changes(paired, Cell(t, p))
    at.session_state["cmp_cell"] = (t, p)
    at.run()
    blocks = html_blocks(at)
    assert any(f'data-kind="entered" data-total="{len(entered)}"' in h for h in blocks) or not len(entered)
    assert any(f'data-kind="left" data-total="{len(left)}"' in h for h in blocks) or not len(left)
    assert len(entered) + len(left) > 0  # the cell changed, so at least one gallery was checked above
    assert sum(h.count('class="rs-card"') for h in blocks) == min(len(entered), 30) + min(len(left), 30)
    assert all("data:image/png;base64," in h for h in blocks)

    at.session_state["view"] = "Flips"
    at.run()
    assert not at.exception
    a_only, b_only = comparison.flips(paired)
    table = at.dataframe[0].value
    assert list(table["class"])[-1] == "all"
    assert table["A right, B wrong"].iloc[-1] == len(a_only) and table["B right, A wrong"].iloc[-1] == len(b_only)
    blocks = html_blocks(at)
    assert any(f'data-kind="a-right" data-total="{len(a_only)}"' in h for h in blocks)
    assert any(f'data-kind="b-right" data-total="{len(b_only)}"' in h for h in blocks)
    # More than a page of flips: the second page holds the rest.
    assert len(a_only) > 30
    at.number_input(key="cmp_page_a").set_value(2).run()
    a_right = next(h for h in html_blocks(at) if 'data-kind="a-right"' in h)
    assert a_right.count('class="rs-card"') == len(a_only) - 30


def test_compare_refuses_runs_with_different_validation_splits(folders):
    a = make_run(folders, "a", n_val=200)
    b = make_run(folders, "b", n_val=100)
    at = open_page(COMPARE, {"runs": f"{a.name},{b.name}", "a": a.name, "b": b.name, "split": "val",
                             "view": "Flips"})
    assert at.segmented_control(key="cmp_split").value == "val"
    errors = [e.value for e in at.error]
    assert any("their validation splits differ" in e and "compare on the test set instead" in e for e in errors), \
        errors
    assert not at.dataframe and not html_blocks(at)
    # The best-validation epoch of a run without a validation split does not exist: said, not raised.
    c = make_run(folders, "c", val_source=None)
    at = open_page(COMPARE, {"runs": f"{a.name},{c.name}", "a": a.name, "b": c.name, "epoch": "best",
                             "view": "Confusion difference"})
    assert any("has no best validation epoch" in w.value for w in at.warning)


def test_compare_picks_a_whole_sweep_and_tabulates_its_results(folders):
    s1 = make_run(folders, "s1", sweep="depths", shortcut="none")
    s2 = make_run(folders, "s2", sweep="depths")
    s3 = make_run(folders, "s3", sweep="depths", depth=56, state="stopped", epochs_done=2)
    lone = make_run(folders, "lone")
    at = open_page(COMPARE, {"runs": f"{lone.name},gone"})
    assert at.multiselect(key="cmp_runs").value == [lone.name]
    at.selectbox(key="cmp_sweep").set_value("depths").run()
    assert not at.exception
    assert set(at.multiselect(key="cmp_runs").value) == {s1.name, s2.name, s3.name}
    assert at.selectbox(key="cmp_sweep").value == "depths"

    at.session_state["view"] = "Results"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value.set_index("model")
    assert set(table.index) == {"plain-20", "ResNet-20", "ResNet-56"}
    final = runs.read_json(s1 / runs.STATUS_FILE)["test_acc"]
    assert table.loc["plain-20", "test_error_mean"] == pytest.approx(100 * (1 - final), abs=1e-4)
    assert table.loc["ResNet-56", "runs"] == 0 and table.loc["ResNet-56", "unfinished"] == 1
    assert [b.label for b in at.get("download_button")] == ["Download CSV", "Download Markdown"]
    assert {"plain", "shortcut A"} <= set(chart_traces(at))
    at.multiselect(key="cmp_runs").set_value([]).run()
    assert "Pick runs (or a sweep) to compare." in texts(at)


def test_compare_gives_resnet_110s_paper_number_with_its_note_beside_the_mean(folders):
    run_dir = make_run(folders, "p110", depth=110, val_source=None)
    record = runs.read_json(run_dir / runs.CONFIG_FILE)
    record["config"].update(dataclasses.asdict(paper_config(110)))  # trained with --preset paper
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, record)
    at = open_page(COMPARE, {"runs": run_dir.name})
    at.session_state["view"] = "Results"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    row = at.dataframe[0].value.iloc[0]
    assert (row["paper_test_error"], row["paper_note"]) == (6.43, "best of 5 runs; mean 6.61 ± 0.16")
    assert row["paper_source"] == "He et al. 2016, Table 6"


# ----------------------------------------------------------------------------- sweeps

@pytest.mark.slow
def test_a_sweep_from_the_train_form_trains_its_grid_and_shows_its_progress(folders):
    at = open_page(TRAIN)
    assert not [w for w in at.button if w.key == "sweep_launch"]  # the section is closed and undrawn
    open_section(at, "sw_open")
    _tiny_form(at)
    at.multiselect(key="sw_shortcut").set_value(["A", "none"])
    at.text_input(key="sw_name").set_value("grid")
    at.number_input(key="sw_parallel").set_value(2)
    at.run()
    at.button(key="sweep_launch").click().run()
    assert not at.exception and "Launched sweep grid" in texts(at)
    deadline = time.time() + 120
    while time.time() < deadline and getattr(runs.read_sweep(folders, "grid", RECORD_OPTIONS), "state",
                                             None) != "completed":
        time.sleep(0.3)
    info = runs.read_sweep(folders, "grid", RECORD_OPTIONS)
    assert info.state == "completed", (folders / runs.SWEEPS_DIR / "grid.log").read_text()
    assert sorted(r.model_name for r in info.runs) == ["ResNet-8", "plain-8"]
    assert {r.train_config["sweep"] for r in info.runs} == {"grid"}
    at.run()
    page = texts(at)
    assert "2 of 2 done" in page and "0 failed" in page and "Stop sweep" not in page
    links = {link.proto.label: link.proto.page for link in at.get("page_link")}
    assert "Compare" in links


def test_a_sweep_the_sweep_refuses_says_why_and_starts_nothing(folders):
    at = open_section(open_page(TRAIN), "sw_open")
    at.button(key="sweep_launch").click().run()
    assert "Pick at least one field to vary." in texts(at)
    at.text_input(key="sw_more").set_value("lr").run()
    at.button(key="sweep_launch").click().run()
    assert "More fields to vary: 'lr': write field=value1,value2" in texts(at)
    at.text_input(key="sw_more").set_value("").run()
    at.text_input(key="sw_seeds").set_value("0,0")
    at.text_input(key="sw_name").set_value("dup").run()
    at.button(key="sweep_launch").click().run()
    assert "Not launched: --vary seed" in texts(at) and "twice" in texts(at)
    assert not (folders / runs.SWEEPS_DIR / "dup.json").exists()
    assert runs.list_runs(folders) == []


def test_the_sweep_form_offers_ray_only_where_it_is_installed(folders, monkeypatch):
    from resnet_core import executors
    from resnet_core.dashboard import launcher

    monkeypatch.setattr(executors, "ray_installed", lambda: False)
    at = open_section(open_page(TRAIN), "sw_open")
    run_on = at.selectbox(key="sw_executor")
    assert run_on.value == "local" and run_on.disabled and "pip install -r requirements-cluster.txt" in run_on.help
    assert at.text_input(key="sw_address").disabled

    monkeypatch.setattr(executors, "ray_installed", lambda: True)
    launched = []
    monkeypatch.setattr(launcher, "sweep_problem", lambda *a, **k: None)
    monkeypatch.setattr(launcher, "launch_sweep", lambda name, args, **k: launched.append(args)
                        or launcher.SweepLaunched(name, folders / "log", 1, None, args))
    at.run()
    assert not at.selectbox(key="sw_executor").disabled
    at.selectbox(key="sw_executor").set_value("ray").run()
    assert not at.text_input(key="sw_address").disabled
    _tiny_form(at)
    at.text_input(key="sw_seeds").set_value("0,1")
    at.text_input(key="sw_name").set_value("cluster")
    at.text_input(key="sw_address").set_value(" head:6379 ").run()
    at.button(key="sweep_launch").click().run()
    assert launched and launched[0][-4:] == ["--executor", "ray", "--address", "head:6379"]
    at.selectbox(key="sw_executor").set_value("local").run()
    at.button(key="sweep_launch").click().run()
    assert "--executor" not in launched[1]
    # The sweeps panel says where a Ray sweep ran.
    (folders / runs.SWEEPS_DIR).mkdir()
    _sweep_record(folders, "cluster", 2 ** 31 - 1, [{"values": {"depth": 20}, "run": None}],
                  executor="ray", address="head:6379", cpus_per_trial=1)
    at.run()
    assert f"at most 1 at once · on Ray ({formatting.md_escape('head:6379')})" in texts(at)


def _sweep_record(folders: Path, name: str, pid: int, points: list[dict], **more) -> None:
    runs.atomic_write_json(runs.sweep_path(folders, name), {
        "format_version": runs.SWEEP_FORMAT_VERSION, "name": name, "argv": [],
        "vary": [{"field": "depth", "values": [p["values"]["depth"] for p in points]}], "parallel": 1,
        "device_slots": 1, "points": points, "state": "running", "pid": pid, "pid_start": runs.process_start_time(pid),
        "created_at": time.time(), "finished_at": None, **more})


def test_a_running_sweep_shows_failures_and_stops_in_one_click(folders, sleeper):
    failed = make_run(folders, "bad", state="failed", error="CUDA out of memory", depth=56)
    done = make_run(folders, "good")
    (folders / runs.SWEEPS_DIR).mkdir()
    _sweep_record(folders, "live", sleeper.pid, [{"values": {"depth": 20}, "run": done.name},
                                                 {"values": {"depth": 56}, "run": failed.name},
                                                 {"values": {"depth": 110}, "run": None}])
    at = open_page(TRAIN)
    page = texts(at)
    assert "1 of 3 done" in page and "1 not started · 0 stopped · 1 failed" in page
    assert "**depth\\=56** · failed: CUDA out of memory" in page  # markdown-escaped
    at.button(key="sweep_stop_live").click().run()
    sleeper.wait(timeout=5)  # the stand-in sweep process got SIGTERM
    assert "Stopping sweep live" in texts(at)
    at.run()
    # Its process gone while the record says running: crashed, and it may be resumed.
    assert "crashed" in texts(at) and "Resume sweep" in [b.label for b in at.button]


def test_home_estimates_the_degradation_experiment_here_before_it_launches(folders, monkeypatch):
    from resnet_core.dashboard import experiments, launcher

    measured = []
    monkeypatch.setattr(experiments, "measure_speed",
                        lambda cfg, data_dir: measured.append(cfg.depth) or experiments.Speed(100.0, 300.0))
    at = open_page(HOME)
    assert at.button(key="exp_launch").disabled
    at.button(key="exp_estimate").click().run()
    assert not at.exception and sorted(measured) == [20, 56]  # plain networks share their twin's speed
    # 4 runs one at a time, each 10 epochs of 78 steps of 128 images at 100 images/s, and a
    # test pass of 10,000 images per epoch (no validation split) at 300 images/s.
    seconds = 4 * (10 * 78 * 128 / 100 + 10 * 10_000 / 300)
    assert f"About {formatting.format_duration(seconds)}" in texts(at)
    # The synthetic data set holds 500 images: the sweep's own check refuses the 10,000-image subset.
    at.button(key="exp_launch").click().run()
    assert "Not launched: --vary" in texts(at) or "Not launched: subset 10,000" in texts(at)
    launched = []
    monkeypatch.setattr(launcher, "sweep_problem", lambda *a, **k: None)
    monkeypatch.setattr(launcher, "launch_sweep", lambda name, args, **k: launched.append((name, args)))
    at.button(key="exp_launch").click().run()
    assert launched[0][0].startswith("degradation-short-")
    assert launched[0][1] == experiments.DEGRADATION_SHORT.sweep_args(1)
    assert "Launched sweep degradation-short-" in texts(at)


# ----------------------------------------------------------------------------- bad run folders

HOSTILE_ERROR = ":red[boom] <b>bold</b> :material/delete: **loud** [link](https://example.com)"


def _rewrite(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _read_only(run_dir: Path) -> None:
    _rewrite(run_dir / runs.STATUS_FILE, format_version=runs.FORMAT_VERSION + 1, state="paused")


def _format_1(run_dir: Path) -> None:
    for name in (runs.CONFIG_FILE, runs.STATUS_FILE):
        _rewrite(run_dir / name, format_version=1)


def _odd_values(run_dir: Path) -> None:
    _rewrite(run_dir / runs.STATUS_FILE, epoch="x", total_epochs=[], step={}, best_val_acc="high",
             started_at="noon", error=["not", "text"])
    config = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    config["resolved"].update(train_size="many", steps_per_epoch="x", device=["cpu"])
    config["model"]["name"] = 20
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(config))


def _bad_metrics(run_dir: Path) -> None:
    with open(run_dir / runs.METRICS_FILE, "ab") as f:
        f.write(b'42\n["x"]\n"step"\n\xff\xfe\n{"type": "step", "step": "x", "epoch": 1}\n{"type": "epoch"}\n')


def _linked_log(run_dir: Path) -> None:
    (run_dir / runs.LOG_FILE).unlink()
    (run_dir / runs.LOG_FILE).symlink_to("/etc/passwd")


def _raw_numbers(path: Path, **tokens: str) -> None:
    """Set the record's fields to raw JSON number text (which json.dumps cannot write)."""
    record = json.loads(path.read_text())
    record.update({key: f"@@{key}@@" for key in tokens})
    text = json.dumps(record)
    for key, token in tokens.items():
        text = text.replace(f'"@@{key}@@"', token)
    path.write_text(text)


def _huge_numbers(run_dir: Path) -> None:
    """Numbers no reader may trust: past Python's int-string limit, past int64, past any float."""
    _raw_numbers(run_dir / runs.STATUS_FILE, epoch="1" * 5000, best_epoch=str(2 ** 63), best_val_acc="1" + "0" * 400,
                 updated_at="NaN", total_steps=str(-2 ** 70))
    _raw_numbers(run_dir / runs.CONFIG_FILE, created="1e400")
    config = json.loads((run_dir / runs.CONFIG_FILE).read_text(), parse_constant=float)
    config["config"]["batch_size"] = 2 ** 64
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(config))
    with open(run_dir / runs.METRICS_FILE, "a") as f:
        f.write('{"type": "epoch", "epoch": 1, "step": 10, "images_per_s": 1' + "0" * 400 + ', "val_acc": 1e400}\n')


def _far_epoch(run_dir: Path) -> None:
    """A predictions file of epoch 99,999,999 beside epochs 1 and 2: Explain took 35 s and 11 GB."""
    runs.prediction_path(run_dir, "val", 99_999_999).write_bytes(runs.prediction_path(run_dir, "val", 1).read_bytes())


# What the pages must show of runs that are not unreadable but odd in other ways.
ODD_RUNS = {
    "read-only": (dict(state="stopped"), _read_only),
    "format 1": (dict(state="stopped"), _format_1),
    "odd values": (dict(state="failed", error="x"), _odd_values),
    "bad metrics rows": (dict(state="running", pid=999_999_999), _bad_metrics),
    "linked log": (dict(state="failed", error="see the log"), _linked_log),
    "hostile error": (dict(state="failed", error=HOSTILE_ERROR), lambda d: None),
    "huge numbers": (dict(state="completed"), _huge_numbers),
    "far epoch": (dict(state="completed"), _far_epoch),
}


def _make_bad(runs_dir: Path, case: str) -> Path:
    if case in UNREADABLE_CASES:
        return make_unreadable_run(runs_dir, case, state="stopped", epochs_done=1, total_epochs=2)
    if case in ODD_RUNS:
        kwargs, spoil = ODD_RUNS[case]
        run_dir = make_run(runs_dir, case, epochs_done=1, total_epochs=2, **kwargs)
        spoil(run_dir)
        return run_dir
    split_damage = BAD_PREDICTIONS[case.removeprefix("predictions ")]
    run_dir = make_run(runs_dir, case, epochs_done=2, total_epochs=2)
    split_damage[1](run_dir)
    return run_dir


ALL_BAD = [*UNREADABLE_CASES, *ODD_RUNS, *(f"predictions {c}" for c in BAD_PREDICTIONS)]


@pytest.fixture(scope="module")
def all_bad_runs(tmp_path_factory):
    """One good run, the newest, beside every kind of bad run folder (shared: read, never changed)."""
    runs_dir = tmp_path_factory.mktemp("bad-runs")
    good = make_run(runs_dir, "good", created=time.time() + 1000)
    return runs_dir, good, {case: _make_bad(runs_dir, case) for case in ALL_BAD}


@pytest.fixture
def bad_folders(all_bad_runs, monkeypatch, cifar_dir):
    runs_dir, good, bad = all_bad_runs
    monkeypatch.setenv("RESNET_STUDIO_RUNS", str(runs_dir))
    monkeypatch.setenv("RESNET_STUDIO_DATA", str(cifar_dir))
    return good, bad


def markdown_texts(at: AppTest) -> str:
    """The text of every element that renders markdown."""
    return "\n".join(str(el.value) for kind in ("markdown", "caption", "info", "warning", "error", "success", "toast")
                     for el in getattr(at, kind))


@pytest.mark.parametrize("page", [HOME, TRAIN, MONITOR, ANALYZE, EXPLAIN, RUNS])
def test_every_page_renders_beside_bad_run_folders_and_shows_the_good_run(bad_folders, page):
    good, bad = bad_folders
    at = open_page(page)  # asserts that no exception was raised
    page_text = texts(at)
    if page == HOME:
        assert good.name in page_text
    elif page == TRAIN:
        assert "Launch training" in page_text
    elif page == MONITOR:
        assert at.selectbox(key=f"mon_pick_{good.name}_completed").value == good.name and "all epochs done" in page_text
    elif page == ANALYZE:
        options = at.selectbox[0].options
        assert at.selectbox[0].value == good.name and {m.label for m in at.metric} >= {"Accuracy", "Images"}
        assert not {bad[c].name for c in UNREADABLE_CASES} & set(options)  # unreadable runs are left out
    elif page == EXPLAIN:
        assert at.selectbox[0].value == good.name and {m.label for m in at.metric} >= {"Never right"}
        assert not {bad[c].name for c in UNREADABLE_CASES} & set(at.selectbox[0].options)
    else:
        table = at.dataframe[0].value.set_index("run")
        assert len(table) == len(bad) + 1 and table.loc[good.name, "state"] == "completed"
        for case in UNREADABLE_CASES:
            assert table.loc[bad[case].name, "state"] == runs.UNREADABLE
            assert table.loc[bad[case].name, "problem"] == runs.read_run(bad[case]).problem
        assert "read-only" in table.loc[bad["read-only"].name, "problem"]


@pytest.mark.parametrize("case", ["status a FIFO", "config a list", *ODD_RUNS])
def test_a_bad_runs_monitor_and_details_render_and_it_can_be_deleted(folders, case):
    good = make_run(folders, "good", epochs_done=1, total_epochs=1)
    run_dir = _make_bad(folders, case)
    info = runs.read_run(run_dir)
    train = open_page(MONITOR, {"run": run_dir.name})
    runs_page = open_page(RUNS)
    runs_page.selectbox(key="runs_pick").set_value(run_dir.name).run()
    assert not runs_page.exception, [e.value for e in runs_page.exception]
    for at in (train, runs_page):
        page = texts(at)
        assert "root:x:0:0" not in page  # a linked log stays unread
        if info.problem:
            assert formatting.md_escape(info.problem) in page
        if info.note:
            assert info.note in page
        assert HOSTILE_ERROR not in markdown_texts(at)  # never as markdown
    if info.problem or info.note:
        assert not [b for b in train.button if b.key == "mon_resume"]
    if case == "hostile error":
        assert f"failed: {formatting.md_escape(HOSTILE_ERROR)}" in texts(train)
    if case == "linked log":
        assert f"({runs.LOG_FILE} is a symbolic link; not shown)" in texts(runs_page)
    # Deleting it works as for any other run.
    runs_page.button(key="runs_delete").click().run()
    runs_page.button(key="runs_delete_yes").click().run()
    assert not run_dir.exists() and good.exists()


# Every case of BAD_PREDICTIONS raises the same error (test_runs.py); one of each split is enough here.
@pytest.mark.parametrize("case", ["truncated", "labels above the classes", "confusion the wrong shape"])
def test_analyze_says_which_epoch_cannot_be_shown(bad_folders, case):
    _, bad = bad_folders
    split, _ = BAD_PREDICTIONS[case]
    at = open_page(ANALYZE, {"run": bad[f"predictions {case}"].name})
    at.segmented_control(key="an_split").set_value(split).run()
    at.select_slider[0].set_value(1).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Epoch 1 of the ") and "cannot be shown" in errors[0]
    at.select_slider[0].set_value(2).run()  # the next epoch reads well
    assert not at.error and {m.label for m in at.metric} >= {"Accuracy", "Images"}


def test_explain_says_which_epoch_cannot_be_shown_and_why_there_is_no_history(bad_folders):
    _, bad = bad_folders
    at = open_page(EXPLAIN, {"run": bad["predictions truncated"].name, "epoch": "1"})
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Epoch 1 of the validation split cannot be shown")
    at.select_slider[0].set_value(2).run()  # the next epoch reads well; the history has a gap
    assert not at.error and "No per-image history for this split: Epoch 1 cannot be read" in texts(at)
    at.segmented_control(key="ex_view").set_value("Calibration").run()
    assert not at.exception and "ECE" in {m.label for m in at.metric}


def test_analyze_shows_class_names_as_text_not_markdown(folders):
    run_dir = make_run(folders, "hostile-classes")
    hostile = [":red[cat]", "**dog**", "<b>bird</b>", ":material/delete:", "[frog](https://x.y)", "deer", "horse",
               "ship", "truck", "plane"]
    _rewrite(run_dir / runs.CONFIG_FILE, classes=hostile)
    at = open_page(ANALYZE)
    esc = formatting.md_escape
    names = {(t, p): f"{esc(hostile[t])} → {esc(hostile[p])} · " for t in range(10) for p in range(10) if t != p}
    assert all(any(label.startswith(name) for name in names.values()) for label in at.radio(key="an_pairs").options)
    t, p = choose_pair(at)
    assert at.radio(key="an_pairs").options[0].startswith(names[(t, p)])
    assert f"**true {esc(hostile[t])} → predicted {esc(hostile[p])}**" in markdown_texts(at)


def test_the_switches_show_a_choice_and_reach_the_form_as_config_values(folders):
    # A selectbox whose value is None shows "Choose an option": the widgets hold words.
    at = open_section(open_page(TRAIN), "tf_advanced_open")
    assert at.selectbox(key="tf_channels_last").value == "auto" and at.selectbox(key="tf_compile").value == "auto"
    at.selectbox(key="tf_channels_last").set_value("off").run()
    at.selectbox(key="tf_compile").set_value("on").run()
    assert not at.exception
    from app_pages import train_form

    values = {name: at.session_state[train_form.K + name] for name in train_form.SWITCH_FIELDS}
    assert {name: train_form.SWITCH_OPTIONS[word] for name, word in values.items()} == {
        "channels_last": False, "compile": True}


PAGE_WITHOUT_TORCH = """
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=60)
if sys.argv[2] != "-":
    at.switch_page(sys.argv[2])
at.query_params.update({"run": sys.argv[3], "runs": sys.argv[3]})
at.run()
assert not at.exception, [e.value for e in at.exception]
print("torch" in sys.modules, at.title[0].value)
"""


@pytest.mark.slow
@pytest.mark.parametrize("page", [MONITOR, RUNS, ANALYZE, COMPARE, EXPLAIN])
def test_pages_that_draw_no_model_never_import_torch(folders, page):
    """torch takes 1.3 s to import: a server whose first visitor opens one of these pages
    does not pay it (Home describes the GPU and Train counts parameters: they do)."""
    run_dir = make_run(folders, "plain", epochs_done=2, total_epochs=2)
    # Before a first run AppTest finds a page by its file name, and Explain's url_path is not
    # errors; a first run would run Home, which imports torch: that page's file runs on its own.
    script, to = (str(ROOT / page), "-") if page == EXPLAIN else (APP, page)
    out = subprocess.run([sys.executable, "-c", PAGE_WITHOUT_TORCH, script, to, run_dir.name], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    imported, title = out.stdout.split()
    assert imported == "False" and title == {EXPLAIN: "Explain"}.get(page, Path(page).stem.title())  # the page ran


def test_with_several_gpus_the_form_offers_gpus_for_the_run(folders, monkeypatch):
    from app_pages import caches
    from resnet_core.system import DeviceInfo, SystemInfo

    gpu = DeviceInfo(kind="cuda", name="NVIDIA H200", memory_gb=139.8, cuda_version="12.8", count=4)
    cpu = DeviceInfo(kind="cpu", name="CPU", memory_gb=64.0, cores=16)
    caches.system_info.clear()
    monkeypatch.setattr(caches, "describe_system", lambda: SystemInfo([gpu, cpu]))
    try:
        at = open_page(TRAIN)
        gpus = at.number_input(key="tf_gpus")
        assert gpus.label == "GPUs for this run" and gpus.value == 1
        gpus.set_value(3).run()
        assert "cannot be split over 3 processes" in texts(at)  # batch 128
        at.number_input(key="tf_gpus").set_value(4).run()
        assert "cannot be split" not in texts(at)
    finally:
        monkeypatch.undo()
        caches.system_info.clear()
    assert "tf_gpus" not in [w.key for w in open_page(TRAIN).number_input]  # one device: no such field


# ----------------------------------------------------------------------------- explaining a model

PREDICT = "app_pages/predict.py"


def _png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (48, 40), fmt: str = "PNG") -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def test_predict_classifies_uploads_and_refuses_a_bad_one_without_stopping_the_others(folders):
    from fake_runs import write_checkpoint

    run_dir = make_run(folders, "model", depth=8)
    write_checkpoint(run_dir, "best.pt", epoch=2)
    at = open_page(PREDICT)
    assert at.selectbox(key="pr_run").value == run_dir.name
    assert formatting.md_escape("ResNet-8, best.pt, epoch 2") in texts(at)
    # a CIFAR-10 run's images were never resized: the page does not say they were
    assert "the size of the run's CIFAR images" in texts(at)
    assert "as the run's images were" not in texts(at)
    # the browser offers only these types: WebP too, which the decoder and image folders read
    assert set(at.file_uploader(key="pr_files").proto.type) == {".png", ".jpg", ".jpeg", ".webp"}
    webp = _png_bytes((20, 220, 20), fmt="WEBP")
    at.file_uploader(key="pr_files").set_value([("red.png", _png_bytes((220, 20, 20)), "image/png"),
                                                ("notes.png", b"not an image at all", "image/png"),
                                                ("blue.png", _png_bytes((20, 20, 220)), "image/png"),
                                                ("green.webp", webp, "image/webp")]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [formatting.md_escape("notes.png: not a PNG, JPEG or WebP image")]
    cards = "".join(html_blocks(at))
    assert cards.count('class="rs-predict"') == 3 and 'data-file="red.png"' in cards and 'data-file="blue.png"' in cards
    assert 'data-file="green.webp"' in cards
    assert cards.count(">Grad-CAM of ") == 3 and cards.count("%</span>") == 15  # top-5 each
    assert cards.count("data:image/png;base64,") == 6  # the input as the model sees it, and its map


def test_predict_shows_why_a_file_over_the_upload_limit_is_refused(folders):
    """Streamlit refuses a file over the limit in the browser (the page never gets it) with a
    red icon; its reason ("File must be 20.0MB or smaller.") is a visually hidden alert next
    to the file's chip. The page's style shows it under the chip."""
    from fake_runs import write_checkpoint

    from resnet_core.dashboard import uploads

    write_checkpoint(make_run(folders, "model", depth=8), "best.pt", epoch=2)
    styles = [h for h in html_blocks(open_page(PREDICT)) if "<style>" in h]
    refused = '[data-testid="stFileChip"][aria-invalid="true"] [role="alert"]'
    assert any(refused in h and "position: static" in h for h in styles), styles
    assert f"{uploads.UPLOAD_LIMIT_MB} MB" in uploads.UPLOAD_LABEL


def test_predict_says_when_no_run_has_a_checkpoint_and_when_one_cannot_load(folders):
    make_run(folders, "no-checkpoint", with_checkpoint=False)
    assert "No run has a checkpoint yet" in texts(open_page(PREDICT))
    make_run(folders, "fake-checkpoint")  # its last.pt holds text
    at = open_page(PREDICT)
    assert [e.value for e in at.error][0].startswith(formatting.md_escape("last.pt is corrupt:"))


def test_analyze_lays_grad_cam_over_the_shown_page_of_images(folders, cifar_dir):
    from fake_runs import write_checkpoint

    run_dir = make_run(folders, "cams", depth=8, data_dir=cifar_dir)
    write_checkpoint(run_dir, "last.pt", epoch=3)
    at = open_page(ANALYZE, {"run": run_dir.name})
    choose_pair(at)
    plain = html_blocks(at)[0]
    assert "rs-heatmap" not in plain
    at.toggle(key="an_cam").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    overlaid = html_blocks(at)[0]
    shown = overlaid.count('class="rs-card"')
    assert shown and overlaid.count('class="rs-heatmap"') == shown
    assert overlaid != plain
    model = formatting.md_escape("ResNet-8, last.pt, epoch 3")
    assert f"Grad-CAM of each card's predicted class from {model}" in texts(at)
    assert formatting.md_escape("has no best.pt") in texts(at)  # best falls back to last, and says so
    at.segmented_control(key="an_cam_class").set_value("true").run()
    assert html_blocks(at)[0] != overlaid and "Grad-CAM of each card's true class" in texts(at)


def test_every_explain_gallery_takes_the_grad_cam_toggle_too(folders, cifar_dir):
    from fake_runs import write_checkpoint

    run_dir = make_run(folders, "cams", depth=8, epochs_done=3, total_epochs=3, data_dir=cifar_dir)
    write_checkpoint(run_dir, "last.pt", epoch=3)
    at = open_page(EXPLAIN, {"run": run_dir.name, "view": "Top losses"})
    assert "rs-heatmap" not in html_blocks(at)[0]
    at.toggle(key="ex_cam").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    grid = html_blocks(at)[0]
    shown = grid.count('class="rs-card"')
    assert shown and grid.count('class="rs-heatmap"') == shown and grid.count('class="rs-strip"') == shown
    at.segmented_control(key="ex_view").set_value("Held-out flips").run()  # the toggle's choice carries over
    assert html_blocks(at)[0].count('class="rs-heatmap"') == html_blocks(at)[0].count('class="rs-card"') > 0


def test_analyze_offers_downloads_and_builds_torchscript_on_click(folders, cifar_dir):
    from fake_runs import write_checkpoint

    run_dir = make_run(folders, "files", depth=8, data_dir=cifar_dir)
    at = open_page(ANALYZE, {"run": run_dir.name})
    assert not at.get("download_button")  # the section is closed and undrawn
    keys = {b.key for b in open_section(at, "an_dl_open").get("download_button")}
    assert {"an_dl_cm_csv", "an_dl_cm_png", "an_dl_preds", "an_dl_ckpt"} <= keys and "an_dl_ts_file" not in keys
    at.button(key="an_dl_ts").click().run()  # make_run's last.pt holds text
    assert "No TorchScript: " + formatting.md_escape("last.pt is corrupt:") in texts(at)
    write_checkpoint(run_dir, "last.pt")
    other = open_section(open_page(ANALYZE, {"run": run_dir.name}), "an_dl_open")
    other.button(key="an_dl_ts").click().run()
    assert not other.exception, [e.value for e in other.exception]
    assert "an_dl_ts_file" in {b.key for b in other.get("download_button")}
    other.segmented_control(key="an_split").set_value("train").run()
    assert "records no per-image predictions" in texts(other)
    assert "an_dl_preds" not in {b.key for b in other.get("download_button")}


def _failed_start(runs_dir: Path) -> Path:
    """A folder whose trainer wrote status.json (queued) and died before config.json."""
    folder = runs.new_run_dir(runs_dir, "early")
    runs.atomic_write_json(folder / runs.STATUS_FILE, {"format_version": runs.FORMAT_VERSION, "state": "queued",
                                                       "pid": 999_999_999, "pid_start": None, "epoch": 0, "step": 0,
                                                       "created_at": time.time(), "updated_at": time.time()})
    (folder / runs.CONSOLE_FILE).write_text("Traceback (most recent call last):\n  ...\n"
                                            "RuntimeError: operator torchvision::nms does not exist\n")
    return folder


def test_a_trainer_that_died_before_its_config_is_failed_to_start_on_every_page(folders):
    folder = _failed_start(folders)
    home = texts(open_page(HOME))
    assert "No runs yet" not in home and "failed to start" in home
    monitor = texts(open_page(MONITOR))
    assert "No runs yet" not in monitor and "failed to start" in monitor
    assert "operator torchvision::nms does not exist" in monitor
    at = open_page(RUNS)
    assert "1 failed to start" in texts(at)
    assert folder.name in at.dataframe[0].value["run"].tolist()


def test_explain_of_a_run_with_a_far_epochs_file_says_which_epochs_are_missing(folders):
    run_dir = make_run(folders, "far", epochs_done=3)
    _far_epoch(run_dir)
    assert "Epochs 4-99999998 of this split are not recorded" in texts(open_page(EXPLAIN, {"run": run_dir.name}))


def test_explain_of_a_run_with_epochs_past_int64_in_file_names_renders(folders):
    """Prediction files named for epochs 2**63 and 2**63 + 1 (of every split): Explain's
    calibration by epoch raised OverflowError converting them to int64."""
    run_dir = make_run(folders, "past int64", epochs_done=2)
    for split in ("val", "test", "train"):
        recorded = runs.prediction_path(run_dir, split, runs.recorded_epochs(run_dir, split)[-1])
        for epoch in (2 ** 63, 2 ** 63 + 1):
            runs.prediction_path(run_dir, split, epoch).hardlink_to(recorded)
    for query in ({"run": run_dir.name}, {"run": run_dir.name, "split": "val", "epoch": str(2 ** 63)}):
        assert "Never right" in {m.label for m in open_page(EXPLAIN, query).metric}
