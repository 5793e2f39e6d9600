"""End to end in a real browser (Playwright + Debian's Chromium): start the dashboard on a
free localhost port with a tiny CIFAR-format dataset, launch a short run from the Train
page, watch the live chart gain epoch points, open Analyze, click an off-diagonal cell of
the confusion matrix at its pixel position, and check that the gallery shows exactly that
cell's images and count. A second test opens Analyze with 10,000 recorded predictions
and clicks to the gallery (printing the seconds; tests/page_timings.py is the benchmark,
Analyze 10k predictions); a third clicks a cell of the Compare
page's difference matrix and sees the images that entered and left it; a fourth drags a box
on Explain's data map (and a freeform area) and sees the training images inside it.

A missing browser or Playwright fails under CI ($CI set) and skips elsewhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_cifar_folder
from fake_runs import make_run, repredict
from page_timings import CHROMIUM, CHROMIUM_ARGS, start_streamlit, stop, write_big_metrics

from resnet_core import runs
from resnet_core.dashboard import comparison
from resnet_core.dashboard.cell_selection import Cell

pytestmark = pytest.mark.slow  # a server, a browser and a trainer



def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        _unavailable(f"playwright is not installed ({e})")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no browser at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as e:  # a broken browser install
            _unavailable(f"chromium did not start: {e}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` on a free port, with a tiny dataset and an empty runs folder."""
    base = tmp_path_factory.mktemp("e2e")
    data_dir = write_cifar_folder(base / "data", n_train=500, n_test=200)
    runs_dir = base / "runs"
    runs_dir.mkdir()
    procs: list = []
    try:
        url = start_streamlit(runs_dir, data_dir, base / "streamlit.log", procs)
        yield {"url": url, "runs_dir": runs_dir, "data_dir": data_dir, "log": base / "streamlit.log"}
    finally:
        # The trainers the app started run in their own sessions: stop them too.
        for info in runs.list_runs(runs_dir):
            pid = (info.status or {}).get("pid")
            if info.is_active and pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        for proc in procs:
            stop(proc)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    pg = context.new_page()
    yield pg
    context.close()


def wait_app_idle(page, timeout: float = 30.0) -> None:
    """Wait until Streamlit finished the current script run (no running indicator)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout * 1000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout * 1000)


def set_number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_timeout(300)


def choose(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(300)


JS_TRACE_POINTS = """(name) => {
  const out = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    // _fullData: the arrays as plotly decoded them (the figure sends numpy arrays as binary)
    for (const t of (gd._fullData || [])) if (t.name === name) out.push((t.x || []).length);
  }
  return out;
}"""

JS_CELL_POSITION = """([t, p]) => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const d = gd.data || [];
    if (d.length < 2 || d[0].type !== 'heatmap' || !d[1].customdata) continue;
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    const r = gd.getBoundingClientRect();
    return {x: r.left + xa._offset + xa.l2p(p), y: r.top + ya._offset + ya.l2p(t)};
  }
  return null;
}"""


JS_WATCH_GALLERY = """(sel) => {
  // In-page timing: from the pointer press on the cell to the gallery of that cell in the DOM.
  window.__rs = {click: null, shown: null};
  document.addEventListener('mousedown', () => { window.__rs.click = performance.now(); },
                            {capture: true, once: true});
  const obs = new MutationObserver(() => {
    if (window.__rs.shown === null && document.querySelector(sel)) {
      window.__rs.shown = performance.now();
      obs.disconnect();
    }
  });
  obs.observe(document.body, {childList: true, subtree: true});
}"""


def gallery_selector(t: int, p: int) -> str:
    return f".rs-gallery[data-true='{t}'][data-pred='{p}']"


def click_cell(page, t: int, p: int) -> None:
    """Click cell (true t, predicted p) of the confusion matrix at its pixel position."""
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some("
                           "gd => gd.data && gd.data[0] && gd.data[0].type === 'heatmap')", timeout=30_000)
    plot = page.locator(".js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    pos = page.evaluate(JS_CELL_POSITION, [t, p])
    assert pos, "no confusion matrix on the page"
    page.mouse.move(pos["x"], pos["y"])
    page.wait_for_timeout(150)  # let plotly register the hover, as a person's pointer would
    page.evaluate(JS_WATCH_GALLERY, gallery_selector(t, p))
    page.mouse.click(pos["x"], pos["y"])


def check_gallery(page, t: int, p: int, expected: int, per_page: int = 30) -> float:
    """Wait for the gallery of cell (t, p); check its count and that every card is of that
    cell. Returns the seconds from the click to the gallery in the page."""
    sel = gallery_selector(t, p)
    page.wait_for_selector(sel, timeout=20_000)
    gallery = page.locator(sel)
    assert int(gallery.get_attribute("data-total")) == expected
    cards = gallery.locator(".rs-card")
    assert cards.count() == min(expected, per_page)
    for i in range(cards.count()):
        card = cards.nth(i)
        assert (card.get_attribute("data-true"), card.get_attribute("data-pred")) == (str(t), str(p))
    images = gallery.locator("img")
    assert images.count() == min(expected, per_page)
    assert images.first.evaluate("img => img.complete && img.naturalWidth") == 32
    assert "pixelated" in images.first.evaluate("img => getComputedStyle(img).imageRendering")
    timing = page.evaluate("() => window.__rs")
    return (timing["shown"] - timing["click"]) / 1000


def worst_off_diagonal(run_dir: Path, epoch: int) -> tuple[int, int, int]:
    preds = runs.load_predictions(run_dir, "val", epoch)
    cm = np.zeros((10, 10), dtype=np.int64)
    np.add.at(cm, (preds["labels"], preds["preds"]), 1)
    np.fill_diagonal(cm, 0)
    t, p = np.unravel_index(np.argmax(cm), cm.shape)
    return int(t), int(p), int(cm[t, p])


# Long enough for the live Monitor (refreshed every 1.5 s) to redraw the chart while the run
# trains: an epoch of this tiny run takes about 0.25 s here, so with 4 epochs the first and
# last validation rows were 0.7 s apart and the chart showed only the finished run's 4 points
# in 3 of 6 tries; 16 epochs span about 4 s.
EPOCHS = 16


def test_launch_watch_and_click_a_cell(server, page):
    url, runs_dir = server["url"], server["runs_dir"]
    page.goto(url + "/train")
    wait_app_idle(page)
    page.get_by_text("Launch training").wait_for()
    # A short run: ResNet-8 on 400 images, 50 for validation, EPOCHS epochs on the CPU.
    choose(page, "Depth", "ResNet-8")
    set_number(page, "Epochs", EPOCHS)
    set_number(page, "Batch size", 32)
    page.get_by_text("Advanced:").click()  # a section drawn while open
    page.get_by_label("Validation size", exact=True).wait_for()
    set_number(page, "Validation size", 50)
    set_number(page, "Subset", 400)
    page.get_by_label("Learning rate", exact=True).fill("0.05")
    page.get_by_label("Learning rate", exact=True).press("Enter")
    choose(page, "Device", "cpu")
    page.get_by_label("Run name", exact=True).fill("e2e")
    page.get_by_label("Run name", exact=True).press("Enter")
    wait_app_idle(page)
    page.get_by_role("button", name="Launch training").click()
    page.get_by_text("Launched").wait_for(timeout=20_000)

    # The live accuracy chart gains validation points, epoch by epoch, without a reload.
    seen: list[int] = []
    deadline = time.time() + 240
    run_dir = None
    while time.time() < deadline:
        counts = page.evaluate(JS_TRACE_POINTS, "validation")
        if counts:
            n = max(counts)
            if not seen or n != seen[-1]:
                seen.append(n)
        found = [r for r in runs.list_runs(runs_dir)]
        if found:
            run_dir = found[0].path
            if found[0].state == "completed" and seen and seen[-1] == EPOCHS:
                break
            assert found[0].state in ("queued", "running", "completed"), runs.read_run(run_dir).status
        time.sleep(0.25)
    assert run_dir is not None and run_dir.name.endswith("-e2e")
    assert seen and seen[-1] == EPOCHS, f"validation points seen over time: {seen}"
    print(f"\nvalidation points seen over time: {seen}")
    assert len(seen) >= 2 and seen == sorted(seen), f"the chart did not grow live: {seen}"
    page.get_by_text("all epochs done").wait_for(timeout=20_000)

    # Analyze, through the run's link; the run is in the URL. The tiny synthetic classes are
    # easy: take the last epoch that still made mistakes (the slider starts at the last one).
    epoch = max((e for e in range(1, EPOCHS + 1) if worst_off_diagonal(run_dir, e)[2] > 0), default=None)
    assert epoch is not None, "the tiny run made no mistake to click on in any epoch"
    t, p, expected = worst_off_diagonal(run_dir, epoch)
    page.goto(f"{url}/analyze?run={run_dir.name}")
    wait_app_idle(page)
    if epoch < EPOCHS:
        slider = page.get_by_role("slider")
        slider.focus()
        for _ in range(EPOCHS - epoch):
            page.keyboard.press("ArrowLeft")
        page.wait_for_timeout(500)
        wait_app_idle(page)
        assert slider.get_attribute("aria-valuetext") in (str(epoch), None) or \
            slider.get_attribute("aria-valuenow") == str(epoch - 1)
    click_cell(page, t, p)
    seconds = check_gallery(page, t, p, expected)
    print(f"\nclick -> gallery: {seconds:.2f} s for cell ({t}, {p}) with {expected} images")
    body = page.locator("[data-testid='stApp']").inner_text()
    assert f"{expected:,} misclassified image" in body
    assert f"run={run_dir.name}" in page.url


def test_a_deep_link_asks_the_server_once_and_the_top_bar_keeps_its_urls(server, page):
    """Opened at /monitor?run=..., the frontend asks the server's root for its health at once
    (studio_server.py's hint), not /monitor/_stcore/health first and then, 100 ms later,
    the root; the page runs, and a click in the top bar goes to /train, not /monitor/train."""
    url, runs_dir = server["url"], server["runs_dir"]
    run_dir = make_run(runs_dir, "deeplink", epochs_done=1, total_epochs=1)
    probes: list[str] = []
    page.on("request", lambda r: probes.append(r.url) if "_stcore/health" in r.url else None)
    page.goto(f"{url}/monitor?run={run_dir.name}")
    wait_app_idle(page)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    assert probes == [f"{url}/_stcore/health"], probes
    page.get_by_role("link", name="Train", exact=True).click()
    page.get_by_text("Launch training").wait_for(timeout=30_000)
    # the document's own location: Playwright's page.url lagged one click behind here
    assert page.evaluate("location.pathname") == "/train"


def test_gallery_and_analyze_with_10k_predictions(server, page):
    """10,000 recorded predictions: the Analyze page's first render, and a click's gallery.
    Their seconds are printed, not asserted (the targets, 2 s and 1 s, are the benchmark's:
    tests/page_timings.py)."""
    runs_dir = server["runs_dir"]
    run_dir = make_run(runs_dir, "big", epochs_done=2, total_epochs=2, n_val=10_000, data_dir=server["data_dir"])
    url = f"{server['url']}/analyze?run={run_dir.name}"
    # Warm the server once (imports, the dataset cache), as a running dashboard is.
    page.goto(url)
    wait_app_idle(page)
    page.wait_for_selector(".js-plotly-plot", timeout=30_000)

    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some("
                           "gd => gd.data && gd.data[0] && gd.data[0].type === 'heatmap')", timeout=30_000)
    page.get_by_text("Per-class metrics").wait_for()
    first_render = time.perf_counter() - t0

    t, p, expected = worst_off_diagonal(run_dir, 2)
    click_cell(page, t, p)
    gallery_s = check_gallery(page, t, p, expected)
    print(f"\nAnalyze first render {first_render:.2f} s; click -> gallery {gallery_s:.2f} s "
          f"({expected} images in the cell, 10,000 predictions)")


def test_compare_click_a_difference_cell_shows_the_images_that_moved(server, page):
    """Compare two runs on the same test images: click a cell of the B - A difference and
    see the images that entered it and left it, each gallery with its exact count."""
    runs_dir, data_dir = server["runs_dir"], server["data_dir"]
    a = make_run(runs_dir, "cmp-a", n_val=200, data_dir=data_dir)
    b = make_run(runs_dir, "cmp-b", n_val=200, data_dir=data_dir)
    paired = comparison.pair(runs.load_predictions(a, "test", 3), repredict(b, "test", 3, accuracy=0.5, seed=7))
    d = comparison.difference(paired, 10)
    # The off-diagonal cell with the most images moving in or out.
    moved = [(len(e) + len(lft), t, p) for t in range(10) for p in range(10) if t != p
             for e, lft in [comparison.cell_changes(paired, Cell(t, p))]]
    _, t, p = max(moved)
    entered, left = comparison.cell_changes(paired, Cell(t, p))
    page.goto(f"{server['url']}/compare?runs={a.name},{b.name}&a={a.name}&b={b.name}&view=Confusion+difference")
    wait_app_idle(page)
    click_cell(page, t, p)
    for kind, expected in (("entered", len(entered)), ("left", len(left))):
        if not expected:
            continue
        gallery = page.locator(f".rs-gallery[data-kind='{kind}']")
        gallery.wait_for(timeout=20_000)
        assert int(gallery.get_attribute("data-total")) == expected
        assert gallery.locator(".rs-card").count() == min(expected, 30)
        assert gallery.locator("img").count() == min(expected, 30)
    body = page.locator("[data-testid='stApp']").inner_text()
    assert f"A {d.a[t, p]:,} images, B {d.b[t, p]:,} ({d.diff[t, p]:+,})" in body
    assert "runs=" in page.url and a.name in page.url


JS_DRAWN = """() => (document.querySelector('.js-plotly-plot').layout.shapes || [])  // the areas on the map
  .filter(s => s.type === 'rect' || s.type === 'path')
  .map(s => s.type === 'rect' ? ['box', Math.min(s.x0, s.x1), Math.max(s.x0, s.x1), Math.min(s.y0, s.y1),
                                 Math.max(s.y0, s.y1)] : ['lasso', s.path])"""
JS_TOTAL_CHANGED = """(before) => {
  const app = document.querySelector('[data-testid="stApp"]'), grid = document.querySelector('.rs-gallery');
  return app.getAttribute('data-test-script-state') === 'notRunning' && grid && grid.dataset.total !== before;
}"""


def _drag(page, box, points, steps=10):
    """Press at the first of points (fractions of the plot area, from its top left), move
    through the others and release."""
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point, steps=steps)
    page.mouse.up()


def _shown_rows(gallery, record) -> np.ndarray:
    """The record's rows of the gallery's cards."""
    shown = [int(i) for i in gallery.locator(".rs-card").evaluate_all("cs => cs.map(c => c.dataset.index)")]
    position = {int(i): p for p, i in enumerate(record.indices)}
    return np.array([position[i] for i in shown])


def test_a_box_or_a_freeform_area_on_the_data_map_opens_the_training_images_inside_it(server, page):
    """Drag a box over the lower left of the data map: the gallery holds exactly the training
    images whose (variability, confidence) lie in the box drawn, flipped ones marked. A
    freeform area drawn next (the mode bar's pen) replaces it; Clear removes both the
    gallery and the area on the map."""
    from test_pages_dynamics import planted_record

    from resnet_core.dashboard.data_map_selection import Area, inside
    from resnet_core.dynamics import analyse

    runs_dir, data_dir = server["runs_dir"], server["data_dir"]
    run_dir = make_run(runs_dir, "data-map", n_val=100, data_dir=data_dir)
    planted_record(run_dir, data_dir, n=400, epochs=12, noise=0.2)
    record = runs.load_dynamics(run_dir)
    m = analyse(record).data_map
    page.goto(f"{server['url']}/explain?run={run_dir.name}&view=Data+map+(training)")
    wait_app_idle(page)
    area = page.locator(".js-plotly-plot .nsewdrag").first
    area.wait_for(timeout=30_000)
    box = area.bounding_box()
    _drag(page, box, [(0.01, 0.99), (0.6, 0.45)])
    gallery = page.locator(".rs-gallery")
    gallery.wait_for(timeout=30_000)
    ((kind, x0, x1, y0, y1),) = page.evaluate(JS_DRAWN)  # the box, drawn again from what the page kept
    chosen = (m.variability >= x0) & (m.variability <= x1) & (m.confidence >= y0) & (m.confidence <= y1)
    total = int(gallery.get_attribute("data-total"))
    assert kind == "box" and total == int(chosen.sum()) > 0
    rows = _shown_rows(gallery, record)
    assert len(rows) == min(total, 30) and gallery.locator("img").count() == len(rows) and chosen[rows].all()
    assert gallery.locator(".rs-card[data-flipped='1']").count() == int(record.flipped[rows].sum())
    assert "images selected" in page.locator("[data-testid='stApp']").inner_text()
    tools = page.evaluate("() => [...document.querySelectorAll('.modebar-btn')].map(b => b.dataset.title)")
    assert {"Draw rectangle", "Draw closed freeform"} <= set(tools)
    assert not {"Box Select", "Lasso Select", "Share chart..."} & set(tools)  # nothing offers an upload

    page.locator(".modebar-btn[data-title='Draw closed freeform']").click()
    _drag(page, box, [(0.02, 0.98), (0.5, 0.98), (0.5, 0.5), (0.05, 0.6)], steps=6)
    page.wait_for_function(JS_TOTAL_CHANGED, arg=str(total), timeout=30_000)
    ((kind, path),) = page.evaluate(JS_DRAWN)
    corners = [tuple(map(float, c.split(","))) for c in path.strip("MZ").split("L")]
    xs, ys = zip(*corners, strict=True)
    chosen = inside([Area("lasso", xs, ys)], m.variability, m.confidence)
    assert kind == "lasso" and len(corners) >= 4 and int(gallery.get_attribute("data-total")) == int(chosen.sum()) > 0
    assert chosen[_shown_rows(gallery, record)].all()

    page.get_by_role("button", name="Clear").click()
    gallery.wait_for(state="detached", timeout=30_000)
    wait_app_idle(page)
    page.wait_for_function(f"() => ({JS_DRAWN})().length === 0", timeout=30_000)


def test_a_live_run_of_200k_rows_keeps_the_chart_controls_defaults(server, page):
    """The first run of a 200,000-row Monitor takes over a second; the chart controls then
    once came back as the widgets' own first values (x axis step, smoothing 0.00)."""
    runs_dir = server["runs_dir"]
    sleeper = subprocess.Popen(["sleep", "120"], start_new_session=True)  # stands in for a live trainer
    try:
        run_dir = make_run(runs_dir, "long", state="running", pid=sleeper.pid, epochs_done=50, total_epochs=60,
                           steps_per_epoch=4000, n_val=100, data_dir=server["data_dir"])
        write_big_metrics(run_dir, 50, 4000)  # 200,000 step rows and 50 epoch rows
        page.goto(f"{server['url']}/monitor?run={run_dir.name}")
        with open(run_dir / runs.METRICS_FILE, "a") as f:  # the run goes on: a row every 0.3 s
            for s in range(200_001, 200_021):
                f.write(json.dumps({"type": "step", "epoch": 51, "step": s, "loss": 0.01, "acc": 0.9, "lr": 0.1,
                                    "images_per_s": 2500.0, "time": time.time()}) + "\n")
                f.flush()
                page.wait_for_timeout(300)
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        controls = page.evaluate("""() => [
            document.querySelector('[data-testid="stRadio"] input:checked').closest('label').innerText,
            document.querySelector('[data-testid="stSliderThumbValue"]').innerText]""")
        assert controls == ["epoch", "0.60"]
        assert "200,0" in page.locator("[data-testid='stApp']").inner_text()  # "200,0NN step rows"
    finally:
        sleeper.kill()
        sleeper.wait()
