"""Compare's banded curves refresh live in a real browser (Playwright + Debian's Chromium):
a seed still training gains an epoch row and the chart's mean of two seeds counts it without
a click; when its trainer dies, the page stops refreshing (the Live refresh switch goes).

A missing browser or Playwright fails under CI ($CI set) and skips elsewhere."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from fake_runs import make_run
from test_browser_e2e import browser, page, server, wait_app_idle  # noqa: F401 (fixtures)

from resnet_core import runs

pytestmark = pytest.mark.slow  # a server and a browser

MEAN = "ResNet-20 · mean of 2 seeds"
JS_RUNS_PER_EPOCH = """(name) => {
  for (const gd of document.querySelectorAll('.js-plotly-plot'))
    for (const t of (gd._fullData || [])) if (t.name === name) return (t.customdata || []).map(c => c[0]);
  return null;
}"""


def test_the_mean_of_a_seed_still_training_grows_without_a_click(server, page):  # noqa: F811
    sleeper = subprocess.Popen(["sleep", "120"], start_new_session=True)  # stands in for a live trainer
    try:
        done = make_run(server["runs_dir"], "done", seed=1)
        live = make_run(server["runs_dir"], "live", seed=2, state="running", pid=sleeper.pid, epochs_done=1)
        page.goto(f"{server['url']}/compare?runs={done.name},{live.name}")
        wait_app_idle(page)
        page.wait_for_function(f"() => JSON.stringify(({JS_RUNS_PER_EPOCH})({json.dumps(MEAN)})) == '[2,1,1]'",
                               timeout=30_000)
        with open(live / runs.METRICS_FILE, "a") as f:  # the live seed finishes its second epoch
            f.write(json.dumps({"type": "epoch", "epoch": 2, "step": 20, "train_loss": 0.7, "train_acc": 0.62,
                                "val_loss": 0.8, "val_acc": 0.57, "time": time.time()}) + "\n")
        page.wait_for_function(f"() => JSON.stringify(({JS_RUNS_PER_EPOCH})({json.dumps(MEAN)})) == '[2,2,1]'",
                               timeout=30_000)
        assert page.get_by_text("Live refresh").count() == 1
        sleeper.kill()  # the trainer dies: the run reads as crashed and the refresh stops
        sleeper.wait()
        page.get_by_text("Live refresh").wait_for(state="detached", timeout=30_000)
    finally:
        sleeper.kill()
        sleeper.wait()
