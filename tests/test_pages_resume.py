"""The Monitor right after a click on Resume: "resuming…" at once, no second Resume button,
until the resumed trainer writes its state (run_state.shown_state: the pure rule)."""

from __future__ import annotations

import time

import pytest
from fake_runs import make_run
from streamlit.testing.v1 import AppTest
from test_pages import APP
from test_pages import folders  # noqa: F401 (a fixture, for studio_runs)

from app_pages.navigation import MONITOR
from resnet_core import runs
from resnet_core import formatting
from resnet_core.dashboard import run_state


@pytest.fixture
def studio_runs(folders):  # noqa: F811 (test_pages's fixture, imported above)
    return folders


def test_the_monitor_says_resuming_at_once_after_the_click(studio_runs, monkeypatch):
    run = make_run(studio_runs, "paused", state="stopped", epochs_done=1, total_epochs=3)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(MONITOR)
    at.query_params["run"] = run.name
    at.run()
    assert [b.key for b in at.button if b.key == "mon_resume"] == ["mon_resume"]  # stopped: Resume offered
    # What _resume records on the click (its trainer just started, status.json still "stopped").
    monkeypatch.setattr(runs, "trainer_alive", lambda status, now=None: status.get("pid") == 4242)
    at.session_state["train_pending"] = {"run_id": run.name, "pid": 4242, "pid_start": 1.0, "t": time.time(),
                                         "resume": True}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert runs.read_run(run).state == "stopped"
    assert not [b for b in at.button if b.key == "mon_resume"]
    markdown = [m.value for m in at.markdown]
    assert any(run_state.RESUMING in v and "badge" in v for v in markdown), markdown
    assert at.selectbox[0].options == [f"{run.name} · ResNet-20 · {run_state.RESUMING}"]
    assert any("Resuming" in i.value for i in at.info)


def test_a_resume_whose_trainer_refused_says_why(studio_runs, monkeypatch):
    """A trainer that refuses the resume (a corrupt last.pt) exits before it writes
    status.json: the Monitor says so with its last words, not a silent "stopped" again."""
    run = make_run(studio_runs, "paused", state="stopped", epochs_done=1, total_epochs=3)
    refusal = "python -m resnet_core.train: error: --resume: last.pt is corrupt: not a PyTorch checkpoint"
    (run / runs.CONSOLE_FILE).write_text(f"{refusal}\n")
    status = runs.read_run(run).status
    runs.atomic_write_json(run / runs.STATUS_FILE, {**status, "updated_at": time.time() - 60})  # stopped a while ago
    monkeypatch.setattr(runs, "trainer_alive", lambda status, now=None: False)  # the trainer has exited
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(MONITOR)
    at.query_params["run"] = run.name
    at.session_state["train_pending"] = {"run_id": run.name, "pid": 4242, "pid_start": 1.0, "t": time.time(),
                                         "resume": True}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("resume" in e.value.lower() and formatting.md_escape(refusal) in e.value for e in at.error), \
        [e.value for e in at.error]
    # A trainer that did write (it ran, then stopped again) is no refusal.
    runs.atomic_write_json(run / runs.STATUS_FILE, {**status, "updated_at": time.time()})
    at.run()
    assert not any(formatting.md_escape(refusal) in e.value for e in at.error)


def test_resume_refused_is_a_launch_that_ended_before_writing():
    pending = {"run_id": "r", "pid": 1, "t": 100.0, "resume": True}
    assert run_state.resume_refused({"state": "stopped", "updated_at": 50.0}, "r", pending, alive=False)
    assert not run_state.resume_refused({"state": "stopped", "updated_at": 50.0}, "r", pending, alive=True)
    assert not run_state.resume_refused({"state": "stopped", "updated_at": 150.0}, "r", pending, alive=False)
    assert not run_state.resume_refused({"state": "stopped", "updated_at": 50.0}, "other", pending, alive=False)
    assert not run_state.resume_refused({"state": "stopped", "updated_at": 50.0}, "r", {**pending, "resume": False},
                                      alive=False)
    assert not run_state.resume_refused({"state": "stopped"}, "r", None, alive=False)
    assert run_state.resume_refused({"state": "crashed", "updated_at": "garbage"}, "r", pending, alive=False)


def test_a_crashed_run_shows_the_trainers_last_output_line(studio_runs):
    """A trainer that died in state queued or running (config.json written) reads crashed;
    whatever it wrote last (a traceback's last line) is shown, not "without saying why"."""
    run = make_run(studio_runs, "died", state="queued", epochs_done=0, total_epochs=3)  # its pid is long gone
    (run / runs.CONSOLE_FILE).write_text("Traceback (most recent call last):\nRuntimeError: operator "
                                         "torchvision::nms does not exist\n")
    assert runs.read_run(run).state == runs.CRASHED
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(MONITOR)
    at.query_params["run"] = run.name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = "\n".join(e.value for e in at.error)
    assert formatting.md_escape("RuntimeError: operator torchvision::nms does not exist") in errors, errors
    assert "without saying why" not in errors
