"""The run monitor's numbers: incremental metrics, progress, ETA, speed, memory, formats."""

from __future__ import annotations

import json
import os
import re
import string
import time

import pytest
from fake_runs import make_run

from resnet_core import runs
from resnet_core import formatting
from resnet_core.evaluation_labels import evaluation_labels
from resnet_core import progress
from resnet_core.dashboard import curve_axes, live_curves, metrics_cache, monitor_text, run_state, runs_table
from resnet_core.dashboard.metrics_cache import MetricsHistory


def append(path, rows, partial: str = ""):
    with open(path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows) + partial)


def step(e, s):
    return {"type": "step", "epoch": e, "step": s, "loss": 1.0, "acc": 0.5, "lr": 0.1, "images_per_s": 100.0,
            "time": 1.0}


def test_history_reads_only_what_was_appended(tmp_path):
    path = tmp_path / runs.METRICS_FILE
    hist = MetricsHistory(tmp_path)
    assert hist.update() == 0 and hist.cursor is None  # no file yet
    append(path, [step(1, 5), step(1, 10)])
    assert hist.update() == 2
    offset = hist.cursor.offset
    assert offset == path.stat().st_size
    # A half-written line is left for the next tick.
    append(path, [{"type": "epoch", "epoch": 1, "step": 10, "val_acc": 0.4}], partial='{"type": "step", "ep')
    assert hist.update() == 1
    assert len(hist.step_rows) == 2 and len(hist.epoch_rows) == 1
    assert hist.cursor.offset < path.stat().st_size
    with open(path, "a") as f:
        f.write('och": 2, "step": 15, "loss": 1}\n')
    assert hist.update() == 1 and hist.step_rows[-1]["step"] == 15
    assert hist.update() == 0  # nothing new: nothing read again
    assert hist.reads == 5 and hist.cursor.offset == path.stat().st_size


def test_history_starts_over_when_a_resume_rewrites_the_file(tmp_path):
    path = tmp_path / runs.METRICS_FILE
    append(path, [step(1, 5), step(1, 10), step(2, 15)])
    hist = MetricsHistory(tmp_path)
    hist.update()
    # The trainer truncates to what its checkpoint covers, atomically (a new inode).
    runs.atomic_write_bytes(path, (json.dumps(step(1, 5)) + "\n").encode())
    hist.update()
    assert [r["step"] for r in hist.step_rows] == [5]


def test_what_is_built_from_the_rows_is_kept_until_new_rows_come(tmp_path):
    path = tmp_path / runs.METRICS_FILE
    append(path, [step(1, 5), step(1, 10)])
    hist = MetricsHistory(tmp_path)
    hist.update()
    built = []

    def steps_seen(key):  # a stand-in for a chart: what the rows held when it was built
        return lambda: built.append(key) or [r["step"] for r in hist.step_rows]

    assert hist.memo("a", steps_seen("a")) == [5, 10]
    assert hist.memo("a", steps_seen("a")) == [5, 10] and built == ["a"]  # kept: not built again
    assert hist.memo("b", steps_seen("b")) == [5, 10] and built == ["a", "b"]  # another key, its own
    assert hist.update() == 0 and hist.memo("a", steps_seen("a")) == [5, 10] and built == ["a", "b"]
    append(path, [step(1, 15)])
    hist.update()  # new rows: everything is built again, from them
    assert hist.memo("a", steps_seen("a")) == [5, 10, 15] and built == ["a", "b", "a"]
    runs.atomic_write_bytes(path, (json.dumps(step(1, 5)) + "\n").encode())  # a resume rewrote the file
    hist.update()
    assert hist.memo("a", steps_seen("a")) == [5]
    for i in range(metrics_cache.MEMO_ENTRIES + 5):  # bounded: the oldest keys go first
        hist.memo(i, steps_seen(i))
    entries = metrics_cache.MEMO_ENTRIES
    assert len(hist.built) == entries and "a" not in hist.built and entries + 4 in hist.built


def test_progress_of_a_running_run(tmp_path):
    run_dir = make_run(tmp_path, "r", state="running", epochs_done=2, total_epochs=4, steps_per_epoch=10,
                       pid=os.getpid())
    status_path = run_dir / runs.STATUS_FILE
    status = runs.read_json(status_path)
    status["step"] = 25  # half way through epoch 3
    runs.atomic_write_json(status_path, status)
    info = runs.read_run(run_dir)
    assert info.state == "running"
    hist = MetricsHistory(run_dir)
    hist.update()
    p = progress.compute_progress(info, hist, now=status["started_at"] + 100)
    assert (p.epoch, p.total_epochs, p.step, p.total_steps, p.steps_per_epoch) == (2, 4, 25, 40, 10)
    assert p.epoch_fraction == pytest.approx(25 / 40)
    assert (p.step_in_epoch, p.step_fraction) == (5, 0.5)
    assert p.images_per_s == 500.0  # the latest step row's speed
    # epoch_seconds per epoch for the 15 steps left, and eval_seconds for the 2 evaluations to come
    assert p.eta_s == pytest.approx(5.0 * 15 / 10 + 2 * 1.0)
    assert (p.phase, p.phase_done, p.first_step_s) == (None, None, None)  # a folder that records no phase
    assert p.peak_memory_mb == 321.0
    assert p.elapsed_s == pytest.approx(100)
    assert p.best_val_acc == pytest.approx(0.55)
    # After a resume the earlier sessions' time counts too.
    status["elapsed_before_s"] = 30.0
    runs.atomic_write_json(status_path, status)
    info = runs.read_run(run_dir)
    assert progress.compute_progress(info, hist, now=status["started_at"] + 100).elapsed_s == pytest.approx(130)


def test_progress_of_finished_queued_and_crashed_runs(tmp_path):
    done = runs.read_run(make_run(tmp_path, "done"))
    p = progress.compute_progress(done, None)
    assert p.epoch_fraction == 1.0 and p.eta_s is None and p.test_acc is not None
    queued = runs.read_run(make_run(tmp_path, "q", state="queued", epochs_done=0, pid=os.getpid()))
    q = progress.compute_progress(queued, None)
    assert q.state == "queued" and q.epoch_fraction == 0.0 and q.eta_s is None and q.images_per_s is None
    crashed = runs.read_run(make_run(tmp_path, "c", state="running", epochs_done=1, pid=999_999_999))
    assert crashed.state == runs.CRASHED
    assert progress.compute_progress(crashed, None).eta_s is None


def test_progress_shows_the_phase_and_counts_the_evaluation_in_the_eta(tmp_path):
    # Validating epoch 3 of 4 (10 steps an epoch): its 30 steps done, 50 of 200 images in 10 s.
    run_dir = make_run(tmp_path, "v", state="running", epochs_done=2, total_epochs=4, steps_per_epoch=10,
                       pid=os.getpid(), n_val=200, phase="validating", phase_done=50, first_step_s=41.0)
    status = runs.read_json(run_dir / runs.STATUS_FILE)
    status["step"] = 30
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)
    info = runs.read_run(run_dir)
    hist = MetricsHistory(run_dir)
    hist.update()
    p = progress.compute_progress(info, hist, now=status["updated_at"])
    assert (p.phase, p.phase_done, p.phase_total, p.first_step_s) == ("validating", 50, 200, 41.0)
    assert monitor_text.phase_bar(p) == ("validating epoch 3: 50 of 200 images", 0.25)
    # 10 steps at 5 s an epoch, this evaluation's other 150 images at 50 in 10 s, epoch 4's at 1 s.
    assert p.eta_s == pytest.approx(5.0 + 30.0 + 1.0)

    # The final test: every step and epoch done, the ETA is the test's rest.
    status.update(step=40, epoch=4, phase="testing", phase_done=100, phase_total=400)
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)
    p = progress.compute_progress(runs.read_run(run_dir), hist, now=status["updated_at"])
    assert monitor_text.phase_bar(p) == ("testing the final weights: 100 of 400 images", 0.25)
    assert p.eta_s == pytest.approx(10.0 * 300 / 100)
    for phase, text in (("building model", "compiling included"), ("loading data", "loading"), ("saving", "saving")):
        status.update(phase=phase, phase_done=None, phase_total=None)
        runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)
        bar = monitor_text.phase_bar(progress.compute_progress(runs.read_run(run_dir), hist))
        assert text in bar[0] and bar[1] == 0.0, phase
    status["phase"] = "training"
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)
    assert monitor_text.phase_bar(progress.compute_progress(runs.read_run(run_dir), hist)) is None  # steps show instead
    # An ended run does nothing now, whatever its status last said; a phase this reader does not know is unknown.
    done = runs.read_run(make_run(tmp_path, "d", phase="saving"))
    assert progress.compute_progress(done).phase is None
    status["phase"] = "dreaming"
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)
    assert progress.compute_progress(runs.read_run(run_dir), hist).phase is None


def test_formats():
    assert formatting.format_duration(None) == "—"
    assert formatting.format_duration(42.4) == "42 s"
    assert formatting.format_duration(0.44) == "0.4 s"  # not "0 s"
    assert formatting.format_duration(9.94) == "9.9 s"
    assert formatting.format_duration(9.96) == "10 s"
    assert formatting.format_duration(185) == "3 min 05 s"
    assert formatting.format_duration(7440) == "2 h 04 min"
    assert formatting.format_duration(3 * 86400 + 7200) == "3 d 2 h"
    assert formatting.format_count(269_722) == "270K"
    assert formatting.format_count(1_727_962) == "1.7M"
    assert formatting.format_count(40_551_040) == "40.6M"
    assert formatting.format_count(2_829_238_912) == "2.8G"
    assert formatting.format_count(512) == "512"
    assert formatting.format_pct(0.9134) == "91.34%" and formatting.format_pct(None) == "—"


def test_run_summary_row(tmp_path):
    row = runs_table.run_summary_row(runs.read_run(make_run(tmp_path, "sum", epochs_done=3, total_epochs=3)))
    assert row["state"] == "completed" and row["model"] == "ResNet-20" and row["epochs"] == "3/3"
    assert row["best val acc"] == pytest.approx(0.7) and row["run"].endswith("-sum")
    assert row["time"] > 0 and row["sweep"] == ""  # seconds, a number the Runs table sorts by
    swept = runs_table.run_summary_row(runs.read_run(make_run(tmp_path, "swept", sweep="grid", shortcut="none")))
    assert (swept["sweep"], swept["model"], swept["shortcut"]) == ("grid", "plain-20", "plain")


# ----------------------------------------------------------------------------- what the numbers are

def progress_of(run_dir):
    info = runs.read_run(run_dir)
    hist = MetricsHistory(run_dir)
    hist.update()
    return evaluation_labels(info.config), progress.compute_progress(info, hist)


def test_the_speed_help_names_the_epoch_whose_average_a_stopped_run_shows(tmp_path):
    # Stopped 12 steps into epoch 2 (a real CIFAR-10 run), the Monitor showed epoch 1's average
    # speed under the help "Training speed of the latest steps".
    stopped_dir = make_run(tmp_path, "stopped", state="stopped", epochs_done=1, total_epochs=6)
    _, stopped = progress_of(stopped_dir)
    last_epoch = [r for r in runs.read_metrics(stopped_dir) if r["type"] == "epoch"][-1]
    assert (stopped.speed_epoch, stopped.images_per_s) == (1, last_epoch["images_per_s"])
    assert monitor_text.speed_help(stopped).startswith("Average training speed of epoch 1, the last that finished")
    running_dir = make_run(tmp_path, "running", state="running", epochs_done=1, total_epochs=6, pid=os.getpid())
    _, running = progress_of(running_dir)
    assert running.speed_epoch is None
    assert monitor_text.speed_help(running).startswith("Training speed of the latest steps")


def test_labels_of_a_run_with_a_validation_split(tmp_path):
    labels, p = progress_of(make_run(tmp_path, "val", epochs_done=3, total_epochs=3))
    assert (labels.val_source, labels.has_validation, labels.val) == ("train", True, "validation")
    assert labels.split_name("val") == "validation" and labels.split_name("test") == "test"
    assert labels.best_text(p.best_val_acc, p.best_epoch) == "best val acc 70.00% (epoch 3)"
    best, test = monitor_text.accuracy_metrics(labels, p)
    assert (best.label, best.value) == ("Best val acc (epoch 3)", "70.00%")
    assert "validation split (held-out training images)" in best.help
    assert (test.label, test.value) == ("Final test acc (epoch 3)", formatting.format_pct(p.test_acc))
    assert "once after the last epoch (3)" in test.help


def test_a_version_1_run_validated_on_the_test_set_says_so(tmp_path):
    labels, p = progress_of(make_run(tmp_path, "valtest", val_source="test", epochs_done=2, total_epochs=3,
                                     state="stopped"))
    assert labels.val == labels.split_name("val") == "test (used as validation)"
    assert labels.best_text(p.best_val_acc, p.best_epoch) == "best test acc (used as validation) 55.00% (epoch 2)"
    best, test = monitor_text.accuracy_metrics(labels, p)
    assert best.label == "Best test acc (epoch 2)" and "test (used as validation)" in best.help
    assert (test.label, test.value) == ("Test acc", "—")  # stopped before the final evaluation
    assert "once, after the last epoch" in test.help
    # Before the trainer resolved it, a version 1 run with val_size 0 validated on the test set.
    assert evaluation_labels({"format_version": 1, "config": {"val_size": 0}}).val_source == "test"


def test_a_version_2_run_without_validation_shows_no_best_val_and_monitors_the_test_set(tmp_path):
    run_dir = make_run(tmp_path, "noval", val_source=None, state="stopped", epochs_done=2, total_epochs=3)
    labels, p = progress_of(run_dir)
    assert (labels.val_source, labels.has_validation, labels.val) == (None, False, None)
    assert labels.best_text(p.best_val_acc, p.best_epoch) == "no validation split"
    best, test = monitor_text.accuracy_metrics(labels, p)
    assert (best.label, best.value) == ("Validation", "none") and "No validation split" in best.help
    # A --subset run without validation trains on part of the training set, not on every image.
    assert "no training images are held out" in best.help and "every training image" not in best.help
    monitored = [r for r in runs.read_metrics(run_dir) if r["type"] == "epoch"][-1]["test_acc"]
    assert (test.label, test.value) == ("Test acc (epoch 2, monitor)", formatting.format_pct(monitored))
    assert "test (monitoring only, never used to pick a checkpoint), after epoch 2" in test.help
    # Once completed, the final evaluation is what the studio reports.
    done_labels, done = progress_of(make_run(tmp_path, "nodone", val_source=None, epochs_done=3, total_epochs=3))
    assert monitor_text.accuracy_metrics(done_labels, done)[1].label == "Final test acc (epoch 3)"
    # Before the trainer resolved it, a version 2 run with val_size 0 has no validation split.
    assert evaluation_labels({"format_version": 2, "config": {"val_size": 0}}).val_source is None


def test_summary_rows_say_what_best_val_is(tmp_path):
    noval = runs_table.run_summary_row(runs.read_run(make_run(tmp_path, "noval", val_source=None)))
    assert noval["best val acc"] is None and noval["val split"] == "no validation split"
    valtest = runs_table.run_summary_row(runs.read_run(make_run(tmp_path, "valtest", val_source="test")))
    assert valtest["val split"] == "test (used as validation)" and valtest["best epoch"] == 3
    assert runs_table.run_summary_row(runs.read_run(make_run(tmp_path, "v")))["val split"] == "validation split"


def test_odd_values_in_status_config_and_rows_read_as_unknown(tmp_path):
    info = runs.RunInfo(
        path=tmp_path, run_id="odd", state="running",
        config={"created": "yesterday", "model": {"name": ["ResNet"]},
                "config": {"epochs": "ten", "batch_size": [], "depth": {"n": 3}, "lr": "fast", "block": 7},
                "resolved": {"steps_per_epoch": "x", "total_steps": None, "train_size": "many", "val_size": [1],
                             "device": ["cpu"]}},
        status={"epoch": "x", "total_epochs": [], "step": {}, "total_steps": "100", "started_at": "noon",
                "finished_at": float("nan"), "updated_at": float("inf"), "elapsed_before_s": 10 ** 400,
                "best_val_acc": "high", "best_epoch": "3", "test_acc": True})
    hist = MetricsHistory(tmp_path, step_rows=[{"step": "x", "images_per_s": "fast", "time": "now"}],
                          epoch_rows=[{"epoch": None, "epoch_seconds": [], "peak_memory_mb": "big", "time": -1e309}])
    p = progress.compute_progress(info, hist, now=1000.0)
    assert (p.epoch, p.total_epochs, p.step, p.total_steps, p.steps_per_epoch) == (0, 0, 0, 0, 0)
    assert (p.images_per_s, p.eta_s, p.elapsed_s, p.peak_memory_mb) == (None, None, None, None)
    assert (p.best_val_acc, p.best_epoch, p.test_acc, p.last_update_age_s) == (None, None, None, None)
    row = runs_table.run_summary_row(info)
    assert row["epochs"] == "0/?" and row["time"] is None and row["created"] is None
    assert (row["model"], row["block"], row["batch"], row["lr"], row["device"]) == ("['ResNet']", "7", None, None,
                                                                                  "['cpu']")
    assert "many" not in monitor_text.run_caption(info)  # no train/val sizes that are not numbers
    # Numbers written as floats still count.
    info.status = {"epoch": 2.0, "total_epochs": 4.0, "started_at": 10, "finished_at": 70, "elapsed_before_s": 5}
    p = progress.compute_progress(info, None, now=1000.0)
    assert (p.epoch, p.total_epochs, p.elapsed_s) == (2, 4, 65.0)


def test_an_unreadable_run_has_a_row_with_its_problem_and_a_badge(tmp_path):
    info = runs.RunInfo(path=tmp_path, run_id="bad", state=runs.UNREADABLE, problem="status.json holds a list")
    row = runs_table.run_summary_row(info)
    assert (row["state"], row["problem"], row["model"], row["epochs"]) == ("unreadable", "status.json holds a list",
                                                                           "?", "0/?")
    assert runs.UNREADABLE in run_state.STATE_COLOURS and runs.UNREADABLE in run_state.STATE_ICONS
    assert runs.UNREADABLE in run_state.STATE_HELP


def rendered(md: str) -> str:
    """The text CommonMark leaves of md: a backslash before ASCII punctuation only escapes it."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md)


HOSTILE = [
    ":red[boom] and :blue-background[x] and :orange-badge[y]",
    ":material/delete_forever: gone, :material_home: too",
    ":smile: :+1: :streamlit:",
    "<img src=x onerror=alert(1)> <script>alert(1)</script> &lt;b&gt;",
    "**bold** __also__ _it_ *it* `code` ~~strike~~ [link](https://example.com) ![img](x.png) <https://x.y>",
    "links without markup: https://example.com, WWW.example.com and me@example.com",
    "# heading\n- item\n+ item\n1. one\n> quote\n---\n| a | b |\n|---|---|",
    "$x^2$ and $$\\int$$",
    "already \\:red[escaped\\] \\\\ back",
    "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 7.79 GiB total)",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_md_escape_shows_the_same_characters_and_no_markdown(text):
    md = formatting.md_escape(text)
    shown = rendered(md)
    assert shown.replace("\u2060", "") == text  # the same characters, word joiners aside
    # Every ASCII punctuation character is escaped, but for - . _ inside a word, where they mean nothing.
    i = 0
    while i < len(md):
        if md[i] == "\\":
            i += 2
            continue
        if md[i] in string.punctuation:
            assert md[i] in "-._" and md[i - 1].isalnum() and md[i + 1].isalnum(), (md, i)
        i += 1
    # Streamlit replaces these in the text left after escapes are resolved: icons, emoji, the
    # logo, and GitHub-flavoured markdown's links without markup.
    assert ":material/" not in md
    assert not re.search(r":[\w+-]+:", shown), shown
    assert not re.search(r"(?i)https?://|www\.|[-.\w+]+@[-\w]+\.", shown), shown


def test_md_escape_leaves_run_ids_and_plain_words_as_they_are():
    assert formatting.md_escape("20250101-120000-r20_a.b") == "20250101-120000-r20_a.b"
    assert formatting.md_escape("ResNet 20") == "ResNet 20"
    assert formatting.md_escape(3) == "3"


def test_a_long_run_reads_incrementally_and_draws_within_the_point_budget(tmp_path):
    """50,000 step rows (a long run logging every step): every trace of the monitor's
    figures keeps at most MAX_POINTS points, whatever the x axis."""
    path = tmp_path / runs.METRICS_FILE
    rows = [dict(step(1 + s // 1000, s), time=1000.0 + s / 10) for s in range(1, 50_001)]
    epochs = [{"type": "epoch", "epoch": e, "step": 1000 * e, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0,
               "val_acc": 0.5, "lr": 0.1, "time": 1000.0 + 100 * e} for e in range(1, 51)]
    append(path, rows[:25_000] + epochs[:25])
    hist = MetricsHistory(tmp_path)
    hist.update()
    append(path, rows[25_000:] + epochs[25:])
    assert hist.update() == 25_025 and len(hist.step_rows) == 50_000
    for x_axis in curve_axes.LIVE_X_AXES:
        view = curve_axes.CurveView(x_axis=x_axis, smoothing=0.6)
        built = (live_curves.loss_figure(hist.step_rows, hist.epoch_rows, 1000, view=view),
                 live_curves.accuracy_figure(hist.step_rows, hist.epoch_rows, 1000, view=view),
                 live_curves.lr_figure(hist.step_rows, hist.epoch_rows, 1000, view=view))
        assert all(0 < len(t.x) <= curve_axes.MAX_POINTS for fig in built for t in fig.data)


def test_one_history_per_run_folder_is_shared_and_the_oldest_are_let_go(tmp_path):
    """A reload or a second tab continues from the rows the server already read."""
    def step_rows(steps):
        return "".join(json.dumps({"type": "step", "epoch": 1, "step": s, "loss": 1.0}) + "\n" for s in steps)

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / runs.METRICS_FILE).write_text(step_rows(range(1, 4)))
    first = metrics_cache.shared_history(run_dir)
    with first.lock:
        assert first.update() == 3
    with open(run_dir / runs.METRICS_FILE, "a") as f:
        f.write(step_rows([4]))
    again = metrics_cache.shared_history(tmp_path / "." / "run")  # the same folder, however it is spelled
    assert again is first
    with again.lock:
        assert again.update() == 1 and [r["step"] for r in again.step_rows] == [1, 2, 3, 4]
    for i in range(metrics_cache.SHARED_HISTORIES):
        (tmp_path / f"other{i}").mkdir()
        metrics_cache.shared_history(tmp_path / f"other{i}")
    assert metrics_cache.shared_history(run_dir) is not first  # let go: read afresh


def test_a_row_whose_type_is_no_string_is_skipped_and_the_rows_after_it_are_kept(tmp_path):
    lines = [{"type": "step", "epoch": 1, "step": 1}, {"type": ["step"]}, {"type": {"a": 1}},
             {"type": "step", "epoch": 1, "step": 2}]
    (tmp_path / runs.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in lines))
    hist = MetricsHistory(tmp_path)
    hist.update()
    assert [r["step"] for r in hist.step_rows] == [1, 2]


def _short_run(tmp_path, test_size: int = 10_000):
    """A running 2-epoch run of 16 steps an epoch (batch 32) that validates 1,000 images each
    epoch and tests 10,000 after the last, as a short CPU run does (12 s in all here)."""
    run_dir = make_run(tmp_path, "short", state="running", epochs_done=0, total_epochs=2, steps_per_epoch=16,
                       n_val=1000, pid=os.getpid())
    config = runs.read_json(run_dir / runs.CONFIG_FILE)
    config["resolved"]["test_size"] = test_size
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, config)
    return run_dir


def test_the_eta_at_step_1_counts_the_evaluations_to_come(tmp_path):
    run_dir = _short_run(tmp_path)
    status = runs.read_json(run_dir / runs.STATUS_FILE)
    status.update(step=1, epoch=0)
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)
    append(run_dir / runs.METRICS_FILE, [{"type": "step", "epoch": 1, "step": 1, "images_per_s": 200.0,
                                          "time": status["updated_at"]}])
    hist = MetricsHistory(run_dir)
    hist.update()
    p = progress.compute_progress(runs.read_run(run_dir), hist, now=status["updated_at"])
    training = 31 * 32 / 200.0  # 4.96 s: all an ETA that ignores the evaluations says
    # No evaluation measured yet: 2 validations and the final test at EVAL_SPEEDUP x the training speed.
    evaluations = (2 * 1000 + 10_000) / (200.0 * progress.EVAL_SPEEDUP)
    print(f"ETA at step 1: {p.eta_s:.1f} s (training alone {training:.1f} s)")
    assert p.eta_s == pytest.approx(training + evaluations)

    # After epoch 1, its validation's measured speed (1,000 images in 0.9 s) times the rest.
    append(run_dir / runs.METRICS_FILE, [{"type": "epoch", "epoch": 1, "step": 16, "epoch_seconds": 8.0,
                                          "eval_seconds": 0.9, "val_acc": 0.2, "time": status["updated_at"]}])
    status.update(step=16, epoch=1)
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)
    hist.update()
    p = progress.compute_progress(runs.read_run(run_dir), hist, now=status["updated_at"])
    assert p.eta_s == pytest.approx(8.0 + 0.9 + 10_000 * 0.9 / 1000)

    # The final test under way: its own pace only (nothing counted twice).
    status.update(step=32, epoch=2, phase="testing", phase_done=2000, phase_total=10_000,
                  phase_started_at=status["updated_at"] - 2.0)
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)
    p = progress.compute_progress(runs.read_run(run_dir), hist, now=status["updated_at"])
    assert p.eta_s == pytest.approx(2.0 * 8000 / 2000)


def test_a_resumed_run_shows_resuming_until_its_trainer_writes():
    pending = {"run_id": "r", "pid": 123, "pid_start": 4.0, "t": 0.0, "resume": True}
    for state in runs.RESUMABLE_STATES:  # the folder still says how the run ended
        assert run_state.shown_state(state, "r", pending, alive=True) == run_state.RESUMING
    assert run_state.shown_state("queued", "r", pending, alive=True) == "queued"  # the trainer wrote: its state
    assert run_state.shown_state("running", "r", pending, alive=True) == "running"
    assert run_state.shown_state("stopped", "r", pending, alive=False) == "stopped"  # it exited: the folder's state
    assert run_state.shown_state("stopped", "other", pending, alive=True) == "stopped"
    assert run_state.shown_state("stopped", "r", None, alive=True) == "stopped"
    assert run_state.RESUMING in run_state.STATE_ICONS and run_state.RESUMING in run_state.STATE_HELP


def test_the_caption_leaves_out_settings_a_run_does_not_record(tmp_path):
    run_dir = make_run(tmp_path, "bare")
    config = runs.read_json(run_dir / runs.CONFIG_FILE)
    for field in ("block", "shortcut", "batch_size", "lr", "schedule", "device", "precision"):
        config["config"].pop(field)
    for field in ("device", "device_name", "precision"):
        config["resolved"].pop(field, None)
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, config)
    caption = monitor_text.run_caption(runs.read_run(run_dir))
    assert "None" not in caption and "batch" not in caption and "lr" not in caption, caption
    assert caption.startswith("ResNet-20 · ")


def test_a_heartbeat_from_the_future_does_not_stretch_a_runs_time(tmp_path):
    """A crashed run whose status.json says updated_at 10 days ahead (clock skew) took as
    long as its rows say, not 10 days: the skewed heartbeat is no time the run reached."""
    now = time.time()  # the Runs table's row is of now
    info = runs.RunInfo(path=tmp_path, run_id="skewed", state=runs.CRASHED, config={},
                        status={"state": "running", "started_at": now - 300, "updated_at": now + 10 * 86_400})
    hist = MetricsHistory(tmp_path, step_rows=[{"step": 5, "time": now - 250}],
                          epoch_rows=[{"epoch": 1, "time": now - 200}])
    p = progress.compute_progress(info, hist, now=now)
    assert p.elapsed_s == pytest.approx(100.0), p.elapsed_s
    # Without rows (the Runs table reads none) its time is unknown, not "until now".
    assert progress.compute_progress(info, None, now=now).elapsed_s is None
    assert runs_table.run_summary_row(info)["time"] is None
    # A heartbeat only seconds ahead (within one heartbeat) is no skew: it still ends the run.
    info.status["updated_at"] = now - 150
    assert progress.compute_progress(info, hist, now=now).elapsed_s == pytest.approx(150.0)
