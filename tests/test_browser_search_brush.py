"""A search's trials in a real browser (Playwright + Debian's Chromium): a drag along the
parallel coordinates' objective axis sends its range (app_pages/parcoords_chart.py), the
trials table keeps the trials inside it, the range is drawn again after the rerun and Clear
brings every trial back; a trial's point clicked on the objective chart offers its run.

A missing browser or Playwright fails under CI ($CI set) and skips elsewhere."""

from __future__ import annotations

import pytest
from test_browser_e2e import browser, page, server, wait_app_idle  # noqa: F401 (fixtures)
from test_pages_search import searched

pytestmark = pytest.mark.slow  # a server and a browser

JS_RANGES = """() => {
  const gd = document.querySelector('.rs-parcoords-chart');
  return gd && gd._fullData ? gd._fullData[0].dimensions.map(d => d.constraintrange || null) : null;
}"""

JS_TRIAL_POSITION = """(trial) => {  // trial's point on the objective chart (trace "completed"), in the page
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = (gd._fullData || []).find(t => t.name === 'completed');
    if (!t) continue;
    const i = Array.from(t.x).indexOf(trial), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    const r = gd.getBoundingClientRect();
    return {x: r.left + xa._offset + xa.l2p(t.x[i]), y: r.top + ya._offset + ya.l2p(t.y[i])};
  }
  return null;
}"""


def test_a_brush_filters_the_trials_and_a_clicked_trial_offers_its_run(server, page):  # noqa: F811
    searched(server["runs_dir"])
    page.goto(f"{server['url']}/train")
    wait_app_idle(page)
    page.get_by_text("Trials", exact=True).click()
    axis = page.locator(".rs-parcoords-chart .axis-brush .background").last  # the objective's
    axis.wait_for(timeout=30_000)
    wait_app_idle(page)
    axis.scroll_into_view_if_needed()  # a drag outside the viewport reaches nothing
    box = axis.bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + 2)  # from the top (the best trials) a third of the way down
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] / 3, steps=10)
    page.mouse.up()
    caption = page.get_by_text("of 12 trials inside the ranges brushed")
    caption.wait_for(timeout=30_000)
    assert 0 < int(caption.inner_text().split()[0]) < 10  # of the 10 completed trials, the best few
    wait_app_idle(page)
    page.wait_for_function(f"() => {{ const r = ({JS_RANGES})(); return r && r[3] !== null; }}", timeout=30_000)
    page.get_by_role("button", name="Clear").click()
    caption.wait_for(state="detached", timeout=30_000)
    page.wait_for_function(f"() => {{ const r = ({JS_RANGES})(); return r && r.every(x => x === null); }}",
                           timeout=30_000)
    wait_app_idle(page)
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    pos = page.evaluate(JS_TRIAL_POSITION, 9)
    page.mouse.move(pos["x"], pos["y"])
    page.wait_for_timeout(150)  # let plotly register the hover, as a person's pointer would
    page.mouse.click(pos["x"], pos["y"])
    page.get_by_text("Open r9 in the Monitor").wait_for(timeout=30_000)
