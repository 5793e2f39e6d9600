"""The Monitor right after a click on Resume: "resuming…" at once, no second Resume button,
until the resumed trainer writes its state (monitor.shown_state: the pure rule)."""

from __future__ import annotations

import time

import pytest
from fake_runs import make_run
from streamlit.testing.v1 import AppTest
from test_pages import APP
from test_pages import folders  # noqa: F401 (a fixture, for studio_runs)

from app_pages.navigation import MONITOR
from resnet_core import runs
from resnet_core.dashboard import monitor


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
    assert any(monitor.RESUMING in m.value and "badge" in m.value for m in at.markdown), [m.value for m in at.markdown]
    assert at.selectbox[0].options == [f"{run.name} · ResNet-20 · {monitor.RESUMING}"]
    assert any("Resuming" in i.value for i in at.info)
