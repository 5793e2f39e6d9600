"""Every number a run folder holds is untrusted: a hostile table of values through every reader."""

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from fake_runs import make_run
from streamlit.dataframe_util import convert_pandas_df_to_arrow_bytes

from resnet_core import results, runs
from resnet_core.progress import compute_progress
from resnet_core.dashboard import comparison, metrics_cache, monitor_text, runs_table
from resnet_core.runs import values

# Raw JSON text of numbers (and would-be numbers) a file may hold.
HOSTILE = {
    "5000 digits": "1" * 5000,
    "-5000 digits": "-" + "9" * 5000,
    "2**63": str(2 ** 63),
    "2**64": str(2 ** 64),
    "-2**63-1": str(-2 ** 63 - 1),
    "10**400": "1" + "0" * 400,
    "1e400": "1e400",
    "-1e400": "-1e400",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "negative": "-5",
    "1e300": "1e300",
    "a bool": "true",
    "a string": '"12"',
    "a list": "[1]",
    "an object": "{}",
}

STATUS_FIELDS = ("epoch", "step", "total_epochs", "total_steps", "created_at", "started_at", "updated_at",
                 "finished_at", "elapsed_before_s", "best_val_acc", "best_epoch", "test_acc", "phase_started_at",
                 "phase_done", "phase_total", "first_step_s", "pid_start", "format_version", "pid")
CONFIG_FIELDS = ("created", "format_version", "config.epochs", "config.batch_size", "config.lr", "config.depth",
                 "resolved.steps_per_epoch", "resolved.total_steps", "resolved.train_size", "resolved.val_size",
                 "resolved.world_size", "model.params", "model.macs")
METRIC_FIELDS = ("epoch", "step", "loss", "acc", "images_per_s", "time", "val_acc", "train_acc", "peak_memory_mb",
                 "epoch_seconds", "eval_seconds", "test_acc", "lr")


def _with_token(record: dict, dotted: str, token: str) -> str:
    """record as JSON text with the field at dotted ("config.lr") holding the raw token."""
    record = json.loads(json.dumps(record))
    *path, key = dotted.split(".")
    target = record
    for part in path:
        target = target[part]
    target[key] = "@@TOKEN@@"
    return json.dumps(record).replace('"@@TOKEN@@"', token)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> runs.RunInfo:
    """A run of ordinary values, only read: made once, not once a field (make_run was a
    fifth of these tests' time)."""
    return runs.read_run(make_run(tmp_path_factory.mktemp("good"), "good"))


def _read_everything(runs_dir: Path, good: runs.RunInfo) -> None:
    """Every reader of the dashboard and the reports, over every run listed; good: a good run."""
    listed = runs.list_runs(runs_dir)
    assert listed, "the run must still be listed"
    for info in listed:
        again = runs.read_run(info.path)
        assert again is not None
        result = results.run_result(again)
        results.table_rows(results.group_results([result]))
        history = metrics_cache.MetricsHistory(info.path)
        history.update()
        progress = compute_progress(info, history)
        monitor_text.phase_bar(progress)
        monitor_text.run_caption(info)
        for rows in (history.step_rows, history.epoch_rows, history.system_rows):
            for column in ("loss", "acc", "val_acc", "images_per_s", "cpu_percent", "time"):
                rows.smoothed(column, 0.6)
    table = runs_table.runs_table(listed)
    convert_pandas_df_to_arrow_bytes(table)  # what st.dataframe does with it
    assert isinstance(table, pd.DataFrame) and len(table) == len(listed)
    # Compare's results table, beside a good run so that the hostile field is a varied one
    groups = results.group_results([results.run_result(good)] + [results.run_result(r) for r in listed])
    convert_pandas_df_to_arrow_bytes(comparison.results_table(groups))


@pytest.mark.parametrize("record, fields", [(runs.STATUS_FILE, STATUS_FIELDS), (runs.CONFIG_FILE, CONFIG_FIELDS)])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_numbers_in_status_and_config_json_never_raise(tmp_path, good_run, name, record, fields):
    run_dir = make_run(tmp_path, "hostile", epochs_done=2)
    original = json.loads((run_dir / record).read_text())
    for key in fields:
        (run_dir / record).write_text(_with_token(original, key, HOSTILE[name]))
        _read_everything(tmp_path, good_run)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_numbers_in_metrics_rows_never_raise(tmp_path, good_run, name):
    run_dir = make_run(tmp_path, "hostile", epochs_done=2)
    lines = (run_dir / runs.METRICS_FILE).read_text().splitlines()
    for key in METRIC_FIELDS:
        hostile = [_with_token(json.loads(line), key, HOSTILE[name]) if key in json.loads(line) else line
                   for line in lines]
        (run_dir / runs.METRICS_FILE).write_text("\n".join(hostile) + "\n")
        _read_everything(tmp_path, good_run)


def test_a_huge_best_epoch_converts_to_arrow_in_the_runs_table(tmp_path):
    run_dir = make_run(tmp_path, "huge")
    status = json.loads((run_dir / runs.STATUS_FILE).read_text())
    (run_dir / runs.STATUS_FILE).write_text(_with_token(status, "best_epoch", str(2 ** 63)))
    make_run(tmp_path, "good")
    table = runs_table.runs_table(runs.list_runs(tmp_path))
    convert_pandas_df_to_arrow_bytes(table)
    pa.Table.from_pandas(table)
    assert table["best epoch"].isna().sum() == 1  # the huge one says nothing, the good one its epoch


def test_a_5000_digit_status_keeps_the_other_runs_listed(tmp_path):
    bad = make_run(tmp_path, "bad")
    make_run(tmp_path, "good")
    status = json.loads((bad / runs.STATUS_FILE).read_text())
    (bad / runs.STATUS_FILE).write_text(_with_token(status, "epoch", "1" * 5000))
    listed = {r.run_id: r for r in runs.list_runs(tmp_path)}
    assert len(listed) == 2
    assert all(r.state == "completed" for r in listed.values())


def test_run_result_takes_numbers_that_no_file_could_parse_to(tmp_path):
    """A RunInfo built in Python may hold what no JSON file yields: 10**400 as an int."""
    info = runs.read_run(make_run(tmp_path, "big"))
    info.status = {**info.status, "test_acc": 10 ** 400, "best_val_acc": 10 ** 400, "started_at": 10 ** 400}
    result = results.run_result(info)
    assert (result.test_error, result.val_error) == (None, None)


@pytest.mark.parametrize("text, expected", [
    ("1" * 5000, float("inf")), ("-" + "1" * 5000, float("-inf")), (str(2 ** 64), 2 ** 64),
    ("1" + "0" * 30, 1e30), ("12", 12), ("1e400", float("inf")),
])
def test_loads_never_raises_for_a_number(text, expected):
    assert values.loads(text) == expected


@pytest.mark.parametrize("value, count, number", [
    (5, 5, 5.0), (True, None, None), (-1, None, -1.0), (2 ** 53, 2 ** 53, float(2 ** 53)),
    (2 ** 53 + 1, None, float(2 ** 53 + 1)), (3.0, 3, 3.0), (2.5, None, 2.5), (1e300, None, 1e300),
    (10 ** 400, None, None),
    (float("nan"), None, None), (float("inf"), None, None), ("3", None, None), (None, None, None), ([1], None, None),
])
def test_counts_and_floats_take_only_numbers_in_range(value, count, number):
    assert values.as_count(value) == count
    assert values.as_float(value) == number


@pytest.mark.parametrize("pid, ok", [(1, True), (2 ** 31 - 1, True), (2 ** 31, False), (0, False), (True, False),
                                     (-3, False), (4.0, False), ("7", False)])
def test_a_pid_is_an_int_that_pid_t_holds(pid, ok):
    assert values.is_pid(pid) is ok


# ----------------------------------------------------------------- cost grows with data, not numbers

def _peak_mib(fn) -> tuple[object, float]:
    """fn()'s result (or the exception it raised) and the peak of memory it allocated, in MiB
    (numpy's buffers included: numpy reports them to tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn()
    except Exception as e:  # the caller asserts what it is
        out = e
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    print(f"peak {peak:.1f} MiB")
    return out, peak


@pytest.mark.parametrize("epoch", [3_000_000, 99_999_999])
def test_a_far_epoch_in_a_file_name_costs_no_more_than_its_files(tmp_path, epoch):
    from resnet_core.dashboard import history

    run_dir = make_run(tmp_path, "far", epochs_done=3)
    runs.prediction_path(run_dir, "val", epoch).write_bytes(runs.prediction_path(run_dir, "val", 1).read_bytes())
    result, peak = _peak_mib(lambda: history.load_history(run_dir, "val"))
    assert result.history is None and f"Epochs 4-{epoch - 1} of this split are not recorded" in result.problem
    assert peak < 20


def test_a_predictions_file_that_inflates_is_refused_before_it_is_read(tmp_path):
    import io

    import numpy as np

    run_dir = make_run(tmp_path, "bomb", epochs_done=2)
    buf = io.BytesIO()
    np.savez_compressed(buf, labels=np.zeros(runs.MAX_PREDICTION_BYTES // 8 + 1, dtype=np.int64))
    runs.prediction_path(run_dir, "val", 1).write_bytes(buf.getvalue())
    print(f"{len(buf.getvalue()):,} bytes on disk")
    error, peak = _peak_mib(lambda: runs.load_predictions(run_dir, "val", 1))
    assert isinstance(error, runs.RunFolderError) and "uncompressed" in str(error)
    assert peak < 20


def test_a_recorded_depth_beyond_the_checkpoint_builds_no_model(tmp_path, monkeypatch):
    from fake_runs import write_checkpoint
    from resnet_core import models, run_model

    run_dir = make_run(tmp_path, "deep")
    write_checkpoint(run_dir, runs.BEST_CHECKPOINT)
    config = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    config["config"]["depth"] = 60002
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(config))
    built = []

    def spy(depth, *args):
        built.append(depth)
        return models.build_model(depth, *args) if depth < 1000 else None  # 60002 would take minutes

    monkeypatch.setattr(run_model, "build_model", spy)
    with pytest.raises(run_model.ModelLoadError, match="corrupt"):
        run_model.load_run_model(run_dir)
    assert built == []


def test_a_deep_recorded_depth_without_a_size_record_is_counted_in_closed_form_unbuilt(tmp_path, monkeypatch):
    """A run that predates the model record gets its size from its config, however deep
    (building ResNet-60002 takes minutes): counted, nothing built."""
    from resnet_core import model_names, models

    run_dir = make_run(tmp_path, "deep")
    config = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    config["config"]["depth"] = 60002
    del config["model"]
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(config))

    def never(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(models, "build_model", never)
    result = results.run_result(runs.read_run(run_dir))
    counts = model_names.family_counts(60002, "basic")
    assert (result.params, result.macs) == (counts.params, counts.macs)


def test_a_class_list_beyond_any_dataset_is_refused_before_a_page_squares_it(tmp_path):
    """Analyze builds a classes x classes confusion matrix: 100,000 short names fit
    config.json's 1 MiB and would ask for 80 GB."""
    run_dir = make_run(tmp_path, "classes")
    config = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    config["classes"] = [f"{i:x}" for i in range(100_000)]
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(config))
    info = runs.read_run(run_dir)
    assert info.state == runs.UNREADABLE and info.problem == (
        f"config.json: classes lists 100,000 names, more than the {runs.MAX_CLASSES:,} a run may have")
