"""Timings of Explain's training-dynamics views with a record of 50,000 images x 165 epochs
(issue 24's size; a benchmark, not a pytest test).

    .venv/bin/python tests/data_map_timings.py [--reloads 5] [--browser]

What it builds: a temp CIFAR-format folder of 50,000 training images (tests/conftest.py's
write_cifar_folder), a run (tests/fake_runs.py's make_run) and its dynamics/ record written
as the format says (conftest.write_dynamics_record): each image learned at an epoch of its
own, 20% of the labels flipped and never learned, the 80 images of each epoch's dropped
last batch not presented.

What it measures (targets: each under 1 s warm): with AppTest, the script run of the
Explain views "Forgetting (training)" and "Data map (training)" once their caches are warm,
and the script run after a selection on the data map (set as the chart's callback sets it:
a box over the hard-to-learn region, a lasso, a box over everything), which shows its
images. With --browser, in headless Chromium (tests/page_timings.py's server and helpers):
the data-map page's load until the map is drawn, and a box dragged over the map, from the
mouse's release until the selected images' gallery is shown.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from conftest import write_cifar_folder, write_dynamics_record  # noqa: E402
from fake_runs import make_run  # noqa: E402
from page_timings import CHROMIUM, CHROMIUM_ARGS, new_page, print_table, start_streamlit, stop  # noqa: E402

from app_pages import explain_training  # noqa: E402
from resnet_core import runs  # noqa: E402
from resnet_core.cifar import load_cifar  # noqa: E402
from resnet_core.dashboard.data_map_selection import Area  # noqa: E402
from resnet_core.dynamics import analyse  # noqa: E402

N, EPOCHS, NOISE, DROPPED = 50_000, 165, 0.2, 80


def build(base: Path) -> tuple[Path, Path, str]:
    """The data folder, the runs folder and the run with the big record."""
    data_dir = write_cifar_folder(base / "data", n_train=N, n_test=100)
    runs_dir = base / "runs"
    runs_dir.mkdir()
    run_dir = make_run(runs_dir, "dynamics", epochs_done=3, total_epochs=3, n_val=200, data_dir=data_dir)
    rng = np.random.default_rng(0)
    original = load_cifar("cifar10", data_dir).train_labels.astype(np.int64)
    labels = original.copy()
    flipped = rng.choice(N, round(NOISE * N), replace=False)
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    learned_at = rng.integers(1, EPOCHS, N).astype(np.float32)
    learned_at[flipped] = EPOCHS * 4  # far past the last epoch: never learned
    epochs = np.arange(EPOCHS, dtype=np.float32)
    prob = 1 / (1 + np.exp(-(epochs[None, :] - learned_at[:, None]) / 8))
    prob = np.clip(prob + rng.normal(0, 0.15, prob.shape).astype(np.float32), 0, 1).astype(np.float32)
    for e in range(EPOCHS):  # the last partial batch of each epoch: not presented
        prob[rng.choice(N, DROPPED, replace=False), e] = np.nan
    write_dynamics_record(run_dir, prob, prob > 0.5, indices=np.arange(N), labels=labels, original_labels=original)
    return data_dir, runs_dir, run_dir.name


def selections(run_dir: Path) -> list[tuple[str, Area]]:
    m = analyse(runs.load_dynamics(run_dir)).data_map
    v, c = float(m.variability_cut), float(m.confidence_cut)
    return [("box over hard-to-learn", Area("box", (0.0, v), (0.0, c))),
            ("lasso triangle", Area("lasso", (0.0, 0.5, 0.0), (0.0, 1.0, 1.0))),
            ("box over everything", Area("box", (0.0, 1.0), (-0.1, 1.1)))]


def apptest_times(runs_dir: Path, data_dir: Path, run_id: str, reloads: int) -> list[tuple[str, list, list]]:
    """[(case, wall seconds of each script run, CPU seconds of this process during it)]: on a
    machine whose cores other work holds, the CPU seconds say what the page itself costs."""
    import os

    from streamlit.testing.v1 import AppTest

    os.environ.update(RESNET_STUDIO_RUNS=str(runs_dir), RESNET_STUDIO_DATA=str(data_dir))
    results = []

    def opened(view: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "studio.py"), default_timeout=120)
        at.run()
        at.switch_page("app_pages/explain.py")
        at.query_params.update(run=run_id, view=view)
        return at

    for view in explain_training.VIEWS:
        times = []
        for i in range(reloads + 1):
            at = opened(view)
            t0, c0 = time.perf_counter(), time.process_time()
            at.run()
            if i:  # the first run reads the record and fills the caches
                times.append((time.perf_counter() - t0, time.process_time() - c0))
            assert not at.exception, at.exception[0].message
        results.append((f"open {view}", *map(list, zip(*times, strict=True))))
    for name, area in selections(runs_dir / run_id):
        times = []
        for _ in range(reloads):
            at = opened(explain_training.DATA_MAP)
            at.run()
            at.session_state[explain_training.AREAS_KEY] = (run_id, (area,))
            t0, c0 = time.perf_counter(), time.process_time()
            at.run()
            times.append((time.perf_counter() - t0, time.process_time() - c0))
            assert not at.exception and at.get("html"), "no gallery"
        shown = next(m.value for m in at.markdown if "images selected" in m.value).split("**")[1]
        results.append((f"select: {name} ({shown})", *map(list, zip(*times, strict=True))))
    return results


JS_MAP_DRAWN = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const gl = document.querySelector('.js-plotly-plot .gl-canvas-context');
  return app && app.getAttribute('data-test-script-state') === 'notRunning' && gl && performance.now();
}"""
JS_GALLERY_SHOWN = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app && app.getAttribute('data-test-script-state') === 'notRunning' && document.querySelector('.rs-gallery')
         && performance.now();
}"""
JS_GALLERY = """(before) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const grid = document.querySelector('.rs-gallery');
  return app && app.getAttribute('data-test-script-state') === 'notRunning' && grid
         && grid.getAttribute('data-total') !== before && grid.getAttribute('data-total');
}"""


def _load(browser, url: str, path: str, js: str) -> tuple[object, float]:
    """A fresh tab at url + path: (the page, seconds until js said it is drawn)."""
    page = new_page(browser)
    page.goto(url + path, wait_until="commit", timeout=120_000)
    return page, page.wait_for_function(js, polling="raf", timeout=120_000).json_value() / 1000


def _drag_boxes(page) -> list[float]:
    """Boxes dragged over the map from its bottom left, each larger (more images): seconds
    from each release until the gallery of its images is shown."""
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    before, times = None, []
    for fx, fy in ((0.3, 0.75), (0.5, 0.5), (0.99, 0.01)):
        page.mouse.move(box["x"] + 5, box["y"] + box["height"] - 5)
        page.mouse.down()
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=8)
        t0 = page.evaluate("performance.now()")
        page.mouse.up()
        before = page.wait_for_function(JS_GALLERY, arg=before, polling="raf", timeout=120_000).json_value()
        times.append((page.evaluate("performance.now()") - t0) / 1000)
    return times


def browser_times(runs_dir: Path, data_dir: Path, run_id: str, reloads: int, base: Path) -> list[tuple]:
    """Loads of the data map (until its WebGL canvas is there and the script run finished)
    and, as the machine's baseline at the same moment, of the held-out flips view (until
    its gallery is shown), alternated; then the boxes of _drag_boxes on each loaded map."""
    from playwright.sync_api import sync_playwright

    procs: list = []
    url = start_streamlit(runs_dir, data_dir, base / "streamlit.log", procs)
    data_map = f"/explain?run={run_id}&view={explain_training.DATA_MAP.replace(' ', '+')}"
    flips = f"/explain?run={run_id}&view=Held-out+flips"
    loads, baseline, selects = [], [], []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for i in range(reloads + 1):  # the first round warms the server's caches
                page, drawn = _load(browser, url, flips, JS_GALLERY_SHOWN)
                page.context.close()
                baseline += [drawn] if i else []
                page, drawn = _load(browser, url, data_map, JS_MAP_DRAWN)
                loads += [drawn] if i else []
                selected = _drag_boxes(page)
                selects += selected if i else []
                page.context.close()
            browser.close()
    finally:
        for proc in procs:
            stop(proc)
    return [("load: data map drawn", loads), ("load: held-out flips", baseline),
            ("box drawn -> its gallery", selects)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reloads", type=int, default=5)
    p.add_argument("--browser", action="store_true", help="also time the page and a box in headless Chromium")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="data-map-timings-") as tmp:
        base = Path(tmp)
        t0 = time.monotonic()
        data_dir, runs_dir, run_id = build(base)
        t1 = time.monotonic()
        analyse(runs.load_dynamics(runs_dir / run_id))
        print(f"fixture: {N:,} x {EPOCHS} record in {t1 - t0:.0f} s; load + analyse "
              f"{time.monotonic() - t1:.2f} s (cold)", flush=True)
        print(f"AppTest script runs, {N:,} x {EPOCHS} record ({args.reloads} each, warm): median and max wall s, "
              "median CPU s")
        for name, wall, cpu in apptest_times(runs_dir, data_dir, run_id, args.reloads):
            print(f"{name:<56} {statistics.median(wall):6.2f} {max(wall):6.2f} {statistics.median(cpu):6.2f}")
        if args.browser:
            results = browser_times(runs_dir, data_dir, run_id, args.reloads, base)
            print_table("Headless Chromium (software WebGL)", results, None)
            print("median of each:", {name: round(statistics.median(t), 2) for name, t in results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
