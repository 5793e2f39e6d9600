"""Compare's difference of two fabricated 100-class runs in a real browser (Playwright +
Debian's Chromium): a cell clicked at its drawn position (superclass by superclass, not its
labels' place) opens the images that moved into or out of that cell of its labels.

A missing browser or Playwright fails under CI ($CI set) and skips elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from cifar100_format import FINE_NAMES, SUPERCLASS_OF
from fake_runs import make_run, repredict
from test_browser_analyze100 import click_at
from test_browser_e2e import browser, page, server, wait_app_idle  # noqa: F401 (fixtures)

from resnet_core import runs
from resnet_core.dashboard import class_groups, comparison
from resnet_core.dashboard.cell_selection import Cell

pytestmark = pytest.mark.slow  # a server and a browser


def test_click_a_cell_of_the_grouped_difference_and_get_its_labels_images(server, page):  # noqa: F811
    a = make_run(server["runs_dir"], "a", dataset="cifar100", n_val=2000)
    b = make_run(server["runs_dir"], "b", dataset="cifar100", n_val=2000, shortcut="none")
    paired = comparison.pair(runs.load_predictions(a, "test", 3), repredict(b, "test", 3, accuracy=0.5, seed=5))
    diff = comparison.difference(paired, 100)
    at = class_groups.positions(class_groups.superclass_order(FINE_NAMES, SUPERCLASS_OF))
    changed = np.abs(diff.diff - np.diag(np.diag(diff.diff)))
    t, p = (int(v) for v in np.unravel_index(np.argmax(changed), changed.shape))  # the most changed mistake
    assert (at[t], at[p]) != (t, p)  # drawn elsewhere than its labels' place
    page.goto(f"{server['url']}/compare?runs={a.name},{b.name}&a={a.name}&b={b.name}&view=Confusion+difference")
    wait_app_idle(page)
    click_at(page, "predicted class", at[t], at[p], (t, p))
    entered, left = comparison.cell_changes(paired, Cell(t, p))
    for kind, images in (("entered", entered), ("left", left)):
        if len(images):
            page.wait_for_selector(f".rs-gallery[data-kind='{kind}'][data-total='{len(images)}']", timeout=20_000)
    page.get_by_text(f"true {FINE_NAMES[t]} → predicted {FINE_NAMES[p]}").wait_for(timeout=20_000)
