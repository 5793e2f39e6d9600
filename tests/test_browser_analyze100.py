"""Analyze on a fabricated 100-class run in a real browser (Playwright + Debian's Chromium):
click a cell of the superclass matrix at its pixel position and get that pair's 5 x 5 class
matrix, click a class cell there and get its gallery; in the view of all classes grouped by
superclass, click a cell at its drawn position and get the gallery of its labels.

A missing browser or Playwright fails under CI ($CI set) and skips elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from cifar100_format import FINE_NAMES, SUPERCLASS_OF
from fake_runs import make_run
from test_browser_e2e import browser, page, server, wait_app_idle  # noqa: F401 (fixtures)

from resnet_core import runs
from resnet_core.dashboard import class_groups
from resnet_core.metrics import coarse_confusion, confusion_matrix

pytestmark = pytest.mark.slow  # a server and a browser

# The drawn position (row, column) of a cell of the matrix whose x title starts with title.
JS_POSITION = """([title, i, j]) => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const lay = gd._fullLayout, d = gd.data || [];
    if (!lay || d.length < 2 || d[0].type !== 'heatmap') continue;
    if (!lay.xaxis.title.text.startsWith(title)) continue;
    const r = gd.getBoundingClientRect();
    return {x: r.left + lay.xaxis._offset + lay.xaxis.l2p(j), y: r.top + lay.yaxis._offset + lay.yaxis.l2p(i)};
  }
  return null;
}"""


# Whether plotly registered the pointer on the cell whose customdata is [t, p] (labels).
JS_HOVERED = """([t, p]) => [...document.querySelectorAll('.js-plotly-plot')].some(
  gd => (gd._hoverdata || []).some(h => h.customdata && h.customdata[0] === t && h.customdata[1] === p))"""


def click_at(page, title: str, i: int, j: int, labels: tuple[int, int]) -> None:  # noqa: F811 (page: a fixture's name)
    """Click the cell drawn at row i, column j of the matrix whose x title starts with title,
    once plotly shows the hover of the cell of these (true, predicted) labels there."""
    page.wait_for_function(f"() => [...document.querySelectorAll('.js-plotly-plot')].some(gd => gd._fullLayout "
                           f"&& gd._fullLayout.xaxis.title.text.startsWith({title!r}))", timeout=30_000)
    wait_app_idle(page)
    for attempt in range(40):  # a script run still drawing the page can redraw the chart under the pointer
        pos = page.evaluate(JS_POSITION, [title, i, j])
        assert pos, f"no matrix titled {title}"
        page.mouse.move(pos["x"] + attempt % 2 * 0.5, pos["y"])
        try:
            page.wait_for_function(JS_HOVERED, list(labels), timeout=250)
            break
        except Exception:  # not hovered yet: move again
            continue
    page.mouse.click(pos["x"], pos["y"])


def check_cell_gallery(page, t: int, p: int, expected: int) -> None:  # noqa: F811 (page: a fixture's name)
    sel = f".rs-gallery[data-true='{t}'][data-pred='{p}']"
    page.wait_for_selector(sel, timeout=20_000)
    gallery = page.locator(sel)
    assert int(gallery.get_attribute("data-total")) == expected
    assert gallery.locator(".rs-card").count() == min(expected, 30)


def test_click_a_superclass_cell_then_a_class_cell_then_one_of_all_classes(server, page):  # noqa: F811
    run_dir = make_run(server["runs_dir"], "c100", dataset="cifar100", n_val=2000)
    preds = runs.load_predictions(run_dir, "val", 3)
    cm = confusion_matrix(preds["labels"], preds["preds"], 100)
    coarse = coarse_confusion(cm, SUPERCLASS_OF, 20)
    off = coarse - np.diag(np.diag(coarse))
    a, b = (int(v) for v in np.unravel_index(np.argmax(off), off.shape))
    page.goto(f"{server['url']}/analyze?run={run_dir.name}")
    wait_app_idle(page)
    click_at(page, "predicted superclass", a, b, (a, b))
    # The pair's classes: rows those of a, columns those of b, each by name.
    rows, cols = (class_groups.members(FINE_NAMES, SUPERCLASS_OF, s) for s in (a, b))
    page.get_by_text(f"{int(cm[np.ix_(rows, cols)].sum()):,} of the {int(cm[rows].sum()):,} images of").wait_for(
        timeout=20_000)
    i, j = (int(v) for v in np.unravel_index(np.argmax(cm[np.ix_(rows, cols)]), (5, 5)))
    t, p = rows[i], cols[j]
    wait_app_idle(page)
    click_at(page, "predicted class (in", i, j, (t, p))
    check_cell_gallery(page, t, p, int(cm[t, p]))

    # All classes, grouped: a cell clicked at its drawn position opens its labels' images.
    page.get_by_text("all 100 classes", exact=True).click()
    wait_app_idle(page)
    order = class_groups.superclass_order(FINE_NAMES, SUPERCLASS_OF)
    at = class_groups.positions(order)
    off = cm - np.diag(np.diag(cm))
    t, p = (int(v) for v in np.unravel_index(np.argmax(off), off.shape))
    click_at(page, "predicted class", at[t], at[p], (t, p))
    check_cell_gallery(page, t, p, int(cm[t, p]))
