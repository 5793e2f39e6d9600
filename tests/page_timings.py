"""Page load times of the dashboard in a real browser (a benchmark, not a pytest test).

    .venv/bin/python tests/page_timings.py [--runs 200] [--reloads 5] [--train [--live-tabs 1]] [--apptest]
        [--routes-ab] [--out FILE]

What it builds: a temp folder with a small CIFAR-format dataset (tests/conftest.py's
write_cifar_folder) and --runs fabricated run folders (tests/fake_runs.py's make_run):
depths 20..110, shortcuts A/B/none, a few failed and stopped runs, three sweeps (with
their .sweeps records), one run with 10,000 recorded predictions (Analyze's size target:
the browser test opens one too), and one run whose metrics.jsonl holds 200,000 step rows written
directly in the format of resnet_core/runs/folder_format.py; the newest completed run and the
big one hold a real (untrained) checkpoint for Predict.

What it measures: `streamlit run app.py` from the repo root on a free localhost port
(headless, no file watcher) is warmed by visiting every page once; then each page is
loaded --reloads times in a fresh navigation of headless Chromium (Playwright), and a
load's time is `performance.now()` (milliseconds since the navigation started) at the
first animation frame where both hold: stApp's data-test-script-state is "notRunning"
(the page's script run finished) and the page's own content selector is visible (a
Plotly chart on Monitor, Analyze, Compare and Explain, the runs table on Runs, the model
summary's metrics on Train, the image uploader on Predict, the "All N runs" link on Home).
It prints the first (cold) visits, each load's seconds, and a table: page, median s,
max s, and the median seconds until the script run finished (a MutationObserver on that
attribute; what follows is the browser drawing).
Then in-app navigation, as a person moves between pages: in one tab, a click on each
top-bar link in turn (--reloads rounds after a warm-up round), timed from the click until
a script run finished and the new page's content is visible (no page reload: the
frontend and the session are kept, so this is the time a click costs).

With --train a real trainer (`python -m resnet_core.train`, ResNet-20 on the tiny
dataset, on the CPU, at the lower priority the dashboard gives its trainers) runs in the
background and --live-tabs other browser tabs (default 1) keep the trainer's run open on
Monitor with live refresh while the pages are timed (the live run's own Monitor is timed
too); it prints the same table.

With --routes-ab it times only what studio_server.py's page routes buy: a second server
serves the same script as a plain st.App (no routes), and each page but Home (which has
no route) is loaded --reloads times at its own URL from each server in turn (a fresh tab
each, so the two see the same machine load); it prints both medians and the median of
the paired differences.

With --apptest it also times each page's script server-side with streamlit's AppTest
(one warm-up run, then --reloads runs; no browser, no rendering), and the sizes the pages
must stay quick with (from tests/test_pages.py, which checks that they render): Analyze of
a run with 10,000 recorded predictions (target: under 2 s) and each Explain view of a
5,000-image, 30-epoch run (target: under 1 s); and, without Streamlit, one gallery page of a
cell of 10,000 predictions (target: under 0.5 s, from tests/test_gallery.py) and loading the
per-image history of 5,000 images x 200 epochs (target: under 10 s, from tests/test_history.py).

Every process it starts (streamlit, the trainer) is killed on exit, failure or Ctrl-C,
every wait has a deadline, and the whole run is bounded by --deadline seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from conftest import write_cifar_folder  # noqa: E402
from fake_runs import make_run, write_checkpoint  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from app_pages import navigation  # noqa: E402
from resnet_core import runs  # noqa: E402
from resnet_core.dashboard import launcher  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BIG_STEP_ROWS = 200_000
DEPTHS = (20, 32, 44, 56, 110)
SHORTCUTS = ("A", "B", "none")
SWEEPS = {"depth-grid": 6, "shortcuts": 4, "seeds": 3}  # name: runs in it
LOAD_TIMEOUT_S = 90.0

# True when the page's script run finished and its content selector is visible: the time then.
JS_READY = """([sel, text]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  return window.__shown(sel, text) && performance.now();
}"""


# Installed in every page before its scripts: whether content is shown (window.__shown), the
# time the first script run finished, and (for in-app navigation) whether a script run
# started, and when one finished, after window.__navStart was set.
JS_SCRIPT_DONE = """window.__shown = (sel, text) => {  // an element of sel, laid out, holding text
  for (const el of document.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && (el.textContent || "").includes(text)) return true;
  }
  return false;
};
new MutationObserver((records) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (window.__scriptDone === undefined && app && app.getAttribute('data-test-script-state') === 'notRunning')
    window.__scriptDone = performance.now();
  for (const r of records) {
    if (window.__navStart === undefined || window.__navDone !== undefined) continue;
    const state = r.target.getAttribute('data-test-script-state');
    if (state === 'running') window.__navRunning = true;
    if (r.oldValue === 'running' && state === 'notRunning') window.__navDone = performance.now();
  }
}).observe(document, {subtree: true, childList: true, attributes: true, attributeOldValue: true,
                      attributeFilter: ['data-test-script-state']});"""

# After a click on a top-bar link: seconds from the click until a script run finished and
# the new page's content selector is visible (then the previous page's elements are gone).
# While training, 3 of about 200 clicks from Analyze (whose new-epoch notice is a fragment
# rerun every 3 s) to Compare drew Compare without the app's script state ever leaving
# "notRunning" (90 s timeouts): then the new page's content, with the state "notRunning", is the end.
JS_NAV_READY = """([sel, text, path, alt]) => {
  if (location.pathname !== path) return false;
  const app = document.querySelector('[data-testid="stApp"]');
  if (window.__navDone === undefined
      && (window.__navRunning || !app || app.getAttribute('data-test-script-state') !== 'notRunning')) return false;
  return (window.__shown(sel, text) || (alt !== null && window.__shown(alt[0], alt[1])))
         && (performance.now() - window.__navStart) / 1000;
}"""


@dataclass
class Fixture:
    data_dir: Path
    runs_dir: Path
    normal: str  # a completed run with a few epochs
    big: str  # the run with BIG_STEP_ROWS step rows
    many_predictions: str  # a run with 10,000 recorded predictions (Analyze's size target)
    pair: tuple[str, str]  # two runs to compare


@dataclass
class PageCase:
    name: str
    path: str  # URL path and query
    selector: str  # CSS: visible once the page's main content rendered...
    text: str = ""  # ...and holding this text
    alt: tuple[str, str] | None = None  # in-app navigation: another (selector, text) that is the content


# ----------------------------------------------------------------------------- the fixture

def write_big_metrics(run_dir: Path, epochs: int, steps_per_epoch: int) -> None:
    """metrics.jsonl with one step row per step and an epoch row per epoch (documented format)."""
    t = time.time() - epochs * steps_per_epoch * 0.05
    with open(run_dir / runs.METRICS_FILE, "w") as f:
        for e in range(1, epochs + 1):
            for s in range((e - 1) * steps_per_epoch + 1, e * steps_per_epoch + 1):
                t += 0.05
                f.write(json.dumps({"type": "step", "epoch": e, "step": s, "loss": 2.0 / (1 + s / 1000),
                                    "acc": min(0.95, 0.1 + s / 250_000), "lr": 0.1, "images_per_s": 2500.0,
                                    "time": t}) + "\n")
            acc = min(0.93, 0.3 + 0.012 * e)
            f.write(json.dumps({"type": "epoch", "epoch": e, "step": e * steps_per_epoch, "train_loss": 1.5 / e,
                                "train_acc": acc, "val_loss": 1.6 / e, "val_acc": acc - 0.05, "lr": 0.1 / e,
                                "epoch_seconds": 200.0, "eval_seconds": 3.0, "images_per_s": 2500.0,
                                "peak_memory_mb": 321.0, "time": t}) + "\n")
        f.write(json.dumps({"type": "test", "epoch": epochs, "step": epochs * steps_per_epoch,
                            "test_loss": 0.6, "test_acc": 0.85, "time": t}) + "\n")


def write_sweep_record(runs_dir: Path, name: str, run_dirs: list[Path], depths: list[int]) -> None:
    """A completed sweep's record in .sweeps/ (format of resnet_core/runs/sweep_format.py)."""
    now = time.time()
    record = {"format_version": runs.SWEEP_FORMAT_VERSION, "name": name, "argv": [],
              "vary": [{"field": "depth", "values": sorted(set(depths))}], "parallel": 1, "device_slots": 1,
              "points": [{"values": {"depth": d}, "run": p.name} for d, p in zip(depths, run_dirs, strict=True)],
              "state": "completed", "pid": None, "pid_start": None, "created_at": now - 3600, "finished_at": now}
    path = runs.sweep_path(runs_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def build_fixture(base: Path, n_runs: int) -> Fixture:
    """The dataset and n_runs run folders (at least 4), oldest first, so the newest is the big one."""
    data_dir = write_cifar_folder(base / "data", n_train=2000, n_test=500)
    runs_dir = base / "runs"
    runs_dir.mkdir()
    created = time.time() - 86_400
    made: list[Path] = []
    sweep_runs = [name for name, k in SWEEPS.items() for _ in range(k)]
    for i in range(max(n_runs, 4) - 1):
        depth, shortcut = DEPTHS[i % len(DEPTHS)], SHORTCUTS[(i // len(DEPTHS)) % len(SHORTCUTS)]
        state = "failed" if i % 37 == 5 else "stopped" if i % 23 == 7 else "completed"
        sweep = sweep_runs[i] if i < len(sweep_runs) and len(sweep_runs) < n_runs else ""
        made.append(make_run(runs_dir, f"r{i:03d}-d{depth}", state=state, epochs_done=3 + i % 8, total_epochs=10,
                             n_val=500, data_dir=data_dir, depth=depth, shortcut=shortcut, sweep=sweep,
                             error="boom" if state == "failed" else None, created=created + 60 * i))
    start = 0
    for name, k in SWEEPS.items():
        if start + k <= len(made):
            write_sweep_record(runs_dir, name, made[start:start + k], [DEPTHS[i % len(DEPTHS)]
                                                                       for i in range(start, start + k)])
        start += k
    many = make_run(runs_dir, "analyze-10k-predictions", epochs_done=2, total_epochs=2, n_val=10_000,
                    data_dir=data_dir, created=created + 60 * (n_runs - 1))
    epochs, spe = 50, BIG_STEP_ROWS // 50
    big = make_run(runs_dir, "big-200k-steps", epochs_done=epochs, total_epochs=epochs, steps_per_epoch=spe,
                   n_val=500, data_dir=data_dir, depth=110, created=created + 60 * n_runs)
    write_big_metrics(big, epochs, spe)
    done = [p.name for p in made if runs.read_run(p).state == "completed"]
    for run_dir in (runs_dir / done[-1], big):  # real models for Predict (by URL, and the newest run by default)
        write_checkpoint(run_dir)
    return Fixture(data_dir=data_dir, runs_dir=runs_dir, normal=done[-1], big=big.name,
                   many_predictions=many.name, pair=(done[-2], done[-3]))


# ----------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL, the process group of a process started with start_new_session."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def app_env(runs_dir: Path, data_dir: Path) -> dict[str, str]:
    return dict(os.environ, RESNET_STUDIO_RUNS=str(runs_dir), RESNET_STUDIO_DATA=str(data_dir),
                STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")


def start_streamlit(runs_dir: Path, data_dir: Path, log: Path, procs: list, app: str = "app.py") -> str:
    """`streamlit run app.py` on a free port for these folders (appended to procs); its URL
    once /_stcore/health says ok. The browser test's server is this one too."""
    port = free_port()
    proc = spawn([sys.executable, "-m", "streamlit", "run", app, "--server.port", str(port),
                  "--server.headless", "true", "--server.address", "localhost",
                  "--server.fileWatcherType", "none"], log, app_env(runs_dir, data_dir))
    procs.append(proc)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return url
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not start:\n{log.read_text()[-3000:]}")


def start_trainer(fx: Fixture, log: Path, procs: list, epochs: int) -> str:
    """A real ResNet-20 run on the tiny dataset, in the background; its run id once it has rows."""
    before = set(fx.runs_dir.iterdir())
    # Started as the dashboard starts one (launcher.lower_priority), on the CPU.
    cmd = [sys.executable, "-m", "resnet_core.train", "--data-dir", str(fx.data_dir), "--runs-dir", str(fx.runs_dir),
           "--depth", "20", "--epochs", str(epochs), "--batch-size", "32", "--val-size", "200", "--device", "cpu",
           "--no-compile", "--log-every", "5", "--log-seconds", "1", "--name", "live"]
    proc = spawn(launcher.lower_priority(cmd), log, app_env(fx.runs_dir, fx.data_dir))
    procs.append(proc)
    launcher.lower_session_priority(proc.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        for run_dir in set(fx.runs_dir.iterdir()) - before:
            info = runs.read_run(run_dir) if (run_dir / runs.CONFIG_FILE).exists() else None
            if info is not None and info.state == "running" and runs.read_metrics(run_dir):
                return run_dir.name
        time.sleep(0.5)
    raise RuntimeError(f"the trainer did not start training:\n{log.read_text()[-3000:]}")


# ----------------------------------------------------------------------------- browser timing

def page_cases(fx: Fixture, live_run: str | None) -> list[PageCase]:
    chart = ".js-plotly-plot .main-svg"
    cases = [
        PageCase("Home", "/", "[data-testid='stPageLink']", "All "),
        PageCase("Train", "/train", "[data-testid='stMetric']"),
        PageCase("Monitor", f"/monitor?run={fx.normal}", chart),
        PageCase(f"Monitor {BIG_STEP_ROWS // 1000}k steps", f"/monitor?run={fx.big}", chart),
        PageCase("Runs", "/runs", "[data-testid='stDataFrame']"),
        PageCase("Analyze", f"/analyze?run={fx.normal}", chart),
        PageCase("Analyze 10k predictions", f"/analyze?run={fx.many_predictions}", chart),
        PageCase("Compare", f"/compare?runs={fx.pair[0]},{fx.pair[1]}", chart),
        PageCase("Explain", f"/explain?run={fx.normal}", chart),
        PageCase("Predict", f"/predict?run={fx.normal}", "[data-testid='stFileUploader']"),
    ]
    if live_run:
        cases.insert(4, PageCase("Monitor (training)", f"/monitor?run={live_run}", chart))
    return cases


def load_time(page, url: str, case: PageCase) -> tuple[float, float]:
    """Seconds from navigation start until the script run finished and the content is
    visible, and until the script run finished (the rest is the browser's rendering)."""
    page.goto(url + case.path, wait_until="commit", timeout=LOAD_TIMEOUT_S * 1000)
    handle = page.wait_for_function(JS_READY, arg=[case.selector, case.text], polling="raf",
                                    timeout=LOAD_TIMEOUT_S * 1000)
    return handle.json_value() / 1000, page.evaluate("window.__scriptDone") / 1000


def new_page(browser):
    page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
    page.add_init_script(JS_SCRIPT_DONE)
    return page


def time_pages(browser, url: str, cases: list[PageCase], reloads: int) -> list[tuple[str, list[float], list[float]]]:
    """Warm every page once, then load each one `reloads` times: [(page, seconds of each
    load, seconds until its script run finished)]."""
    page = new_page(browser)
    try:
        warm = [load_time(page, url, case)[0] for case in cases]
        print("  warm-up (first visits): " + ", ".join(f"{c.name} {t:.2f}" for c, t in zip(cases, warm, strict=True)))
        results = []
        for case in cases:
            loads = [load_time(page, url, case) for _ in range(reloads)]
            results.append((case.name, [t for t, _ in loads], [s for _, s in loads]))
            print(f"  {case.name}: {', '.join(f'{t:.2f} ({s:.2f})' for t, s in loads)}", flush=True)
        return results
    finally:
        page.context.close()


def nav_cases(fx: Fixture) -> list[PageCase]:
    """The top bar's pages, in an order where no page's content selector was already on the
    page before it; path is the link's. Monitor opens the active run, else the newest."""
    cases = {c.name: c for c in page_cases(fx, None)}
    return [PageCase("Home", "/", cases["Home"].selector, cases["Home"].text),
            PageCase("Monitor", "/monitor", cases["Monitor"].selector),
            PageCase("Runs", "/runs", cases["Runs"].selector),
            PageCase("Analyze", "/analyze", cases["Analyze"].selector),
            PageCase("Compare", "/compare", "[data-testid='stMultiSelect']"),
            # Explain opens the active run: while a run trains it may have one recorded epoch
            # (a 90 s timeout once), and then no per-image history to chart, only a notice.
            PageCase("Explain", "/explain", cases["Explain"].selector,
                     alt=("[data-testid='stAlert']", "No per-image history")),
            PageCase("Predict", "/predict", cases["Predict"].selector),
            PageCase("Train", "/train", cases["Train"].selector)]


def time_navigation(browser, url: str, cases: list[PageCase], rounds: int) -> list[tuple[str, list[float]]]:
    """In-app navigation as a person clicks through the top bar (no page reload, the
    session kept): for each page, `rounds` times, the seconds from the click until its
    script run finished and its content is visible."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = new_page(browser)
    try:
        load_time(page, url, PageCase("start", "/", "[data-testid='stTopNavLink']"))
        times: dict[str, list[float]] = {c.name: [] for c in cases}
        for _ in range(rounds + 1):  # the first round warms each page's session state
            for case in cases[1:] + cases[:1]:
                page.evaluate("window.__navDone = window.__navRunning = undefined; "
                              "window.__navStart = performance.now()")
                page.locator(f"[data-testid='stTopNavLink'][href$='{case.path.rstrip('/') or '/'}']").first.click()
                try:
                    handle = page.wait_for_function(JS_NAV_READY, arg=[case.selector, case.text, case.path, case.alt],
                                                    polling="raf", timeout=LOAD_TIMEOUT_S * 1000)
                except PlaywrightTimeout:
                    shot = Path(tempfile.gettempdir()) / f"page-timings-{case.name.lower()}.png"
                    page.screenshot(path=str(shot), full_page=True)
                    raise RuntimeError(f"in-app navigation to {case.name} did not finish in {LOAD_TIMEOUT_S:.0f} s "
                                       f"(screenshot: {shot})") from None
                times[case.name].append(handle.json_value())
        results = [(name, t[1:]) for name, t in times.items()]
        print("  in-app: " + "; ".join(f"{n} {', '.join(f'{x:.2f}' for x in t)}" for n, t in results), flush=True)
        return results
    finally:
        page.context.close()


def print_table(title: str, results: list[tuple], out) -> None:
    """page, median s, max s (and, for browser loads, the median time until the script run finished)."""
    lines = [title, f"{'page':<24} {'median s':>9} {'max s':>7}" + (f" {'script done s':>14}" if len(results[0]) > 2
                                                                    else "")]
    lines += [f"{r[0]:<24} {statistics.median(r[1]):>9.2f} {max(r[1]):>7.2f}"
              + (f" {statistics.median(r[2]):>14.2f}" if len(r) > 2 else "") for r in results]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    if out:
        out.write(text + "\n")


def time_routes_ab(browser, fx: Fixture, base: Path, procs: list, reloads: int) -> None:
    """Full loads of each routed page at its own URL, from app.py's server and from one
    without studio_server.py's routes, alternated; prints medians and the paired difference."""
    plain = base / "app_without_routes.py"  # app.py less its routes (and its browser tab)
    plain.write_text(f"import streamlit as st\napp = st.App({str(ROOT / 'studio.py')!r})\n")
    urls = {"routes": start_streamlit(fx.runs_dir, fx.data_dir, base / "streamlit.log", procs),
            "plain": start_streamlit(fx.runs_dir, fx.data_dir, base / "streamlit-plain.log", procs, str(plain))}
    cases = [c for c in page_cases(fx, None) if c.path != "/"]
    for url in urls.values():  # warm both servers (imports, caches)
        time_pages(browser, url, cases, 0)
    print(f"{'page':<24} {'routes s':>9} {'plain s':>8} {'paired diff s':>14}  (medians of {reloads})")
    for case in cases:
        times: dict[str, list[float]] = {k: [] for k in urls}
        for i in range(reloads):
            for key in (list(urls) if i % 2 else list(urls)[::-1]):
                page = new_page(browser)
                try:
                    times[key].append(load_time(page, urls[key], case)[0])
                finally:
                    page.context.close()
        diffs = [a - b for a, b in zip(times["routes"], times["plain"], strict=True)]
        print(f"{case.name:<24} {statistics.median(times['routes']):>9.2f} {statistics.median(times['plain']):>8.2f} "
              f"{statistics.median(diffs):>+14.2f}", flush=True)


# ----------------------------------------------------------------------------- AppTest timing

def apptest_times(fx: Fixture, cases: list[PageCase], reloads: int) -> list[tuple[str, list[float]]]:
    """Server-side seconds of each page's script (AppTest: no browser, no rendering)."""
    from urllib.parse import parse_qsl, urlsplit

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage())  # harmless under AppTest

    os.environ.update(RESNET_STUDIO_RUNS=str(fx.runs_dir), RESNET_STUDIO_DATA=str(fx.data_dir))
    files = {"" if page.default else page.url_path: page.file for page in navigation.PAGES}  # URL path: script
    results = []
    for case in cases:
        parts = urlsplit(case.path)
        times = []
        for i in range(reloads + 1):
            at = AppTest.from_file(str(ROOT / "studio.py"), default_timeout=LOAD_TIMEOUT_S)
            at.switch_page(files[parts.path.strip("/")])
            for k, v in parse_qsl(parts.query):
                at.query_params[k] = v
            t0 = time.perf_counter()
            at.run()
            if i:  # the first run imports the page's modules
                times.append(time.perf_counter() - t0)
            if at.exception:
                raise RuntimeError(f"{case.name}: {at.exception[0].message}")
        results.append((case.name, times))
    return results


def apptest_big_runs(base: Path, data_dir: Path, reloads: int) -> list[tuple[str, list[float]]]:
    """Server-side seconds of Analyze with 10,000 predictions and of each Explain view of a
    5,000-image, 30-epoch run (the targets, 2 s and 1 s, once asserted by tests/test_pages.py)."""
    analyze_dir, explain_dir = base / "runs-10k-predictions", base / "runs-5000-images-30-epochs"
    for runs_dir in (analyze_dir, explain_dir):
        runs_dir.mkdir()
    make_run(analyze_dir, "big", epochs_done=2, total_epochs=2, n_val=10_000, source_size=50_000)
    make_run(explain_dir, "big", epochs_done=30, total_epochs=30, n_val=5000, source_size=45_000)
    views = ("Held-out flips", "Top losses", "Calibration", "Label errors")
    cases = [("Analyze 10k predictions", analyze_dir, "analyze", None)]
    cases += [(f"Explain {v}", explain_dir, "explain", v) for v in views]
    files = {page.url_path: page.file for page in navigation.PAGES}
    results = []
    for name, runs_dir, page, view in cases:
        os.environ.update(RESNET_STUDIO_RUNS=str(runs_dir), RESNET_STUDIO_DATA=str(data_dir))
        times = []
        for i in range(reloads + 1):
            at = AppTest.from_file(str(ROOT / "studio.py"), default_timeout=LOAD_TIMEOUT_S)
            if view:
                at.query_params["view"] = view
            at.run()
            at.switch_page(files[page])
            if view:
                at.query_params["view"] = view
            t0 = time.perf_counter()
            at.run()
            if i:  # the first run imports the page's modules and fills its caches, as on a running server
                times.append(time.perf_counter() - t0)
            if at.exception:
                raise RuntimeError(f"{name}: {at.exception[0].message}")
            shown = {m.label: m.value for m in at.metric}.get("Images") if view is None else \
                at.segmented_control(key="ex_view").value
            if shown != ("10,000" if view is None else view):  # what tests/test_pages.py checks
                raise RuntimeError(f"{name}: the page did not show the big run ({shown!r})")
        results.append((name, times))
    return results


def write_long_history(run_dir: Path, n: int = 5000, epochs: int = 200) -> None:
    """Validation predictions of n images for epochs epochs, written as the trainer writes
    them (the size the Explain page's history must handle; tests/test_history.py loads it too)."""
    import numpy as np

    rng = np.random.default_rng(0)
    indices = np.sort(rng.choice(45_000, n, replace=False)).astype(np.int64)
    labels = rng.integers(0, 10, n).astype(np.int64)
    for e in range(1, epochs + 1):
        preds = np.where(rng.random(n) < 0.5 + e / 500, labels, (labels + 1) % 10)
        top = np.stack([(preds + j) % 10 for j in range(5)], axis=1).astype(np.int64)
        runs.save_predictions(run_dir, "val", e, indices=indices, labels=labels, preds=preds.astype(np.int64),
                              topk_classes=top, topk_probs=np.full((n, 5), 0.2, np.float32),
                              loss=np.ones(n, np.float32))


def size_timings(base: Path, reloads: int) -> list[tuple[str, list[float]]]:
    """Seconds of one gallery page of a 10,000-prediction cell and of loading the history of
    5,000 images x 200 epochs (npz files written as the trainer writes them), each `reloads` times."""
    import numpy as np
    from fake_runs import fake_predictions

    from resnet_core.cifar import CLASSES
    from resnet_core.dashboard import gallery_cards, gallery_records, history
    from resnet_core.dashboard.cell_selection import Cell

    preds = fake_predictions(10_000, accuracy=0.5, seed=2, source_size=50_000)
    images = np.random.default_rng(0).integers(0, 256, (50_000, 3, 32, 32), dtype=np.uint8)
    gallery_s = []
    for _ in range(reloads):
        t0 = time.perf_counter()
        pos = gallery_records.cell_positions(preds, Cell(3, 5), "confidence")
        page = gallery_records.paginate(len(pos), 1, 30)
        gallery_cards.gallery_html(gallery_records.records(preds, pos[page.start:page.stop]), images, CLASSES)
        gallery_s.append(time.perf_counter() - t0)
    (base / "runs-history").mkdir()
    run_dir = make_run(base / "runs-history", epochs_done=1, total_epochs=1, n_val=10)
    write_long_history(run_dir)
    history_s = []
    for _ in range(reloads):
        t0 = time.perf_counter()
        history.load_history(run_dir, "val")
        history_s.append(time.perf_counter() - t0)
    return [("Gallery page, 10k cell", gallery_s), ("Held-out flips 5,000 x 200", history_s)]


# ----------------------------------------------------------------------------- main

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=200, help="fabricated runs (default: 200)")
    p.add_argument("--reloads", type=int, default=5, help="timed loads of each page (default: 5)")
    p.add_argument("--train", action="store_true", help="also time the pages while a real run trains")
    p.add_argument("--epochs", type=int, default=50, help="epochs of the --train run (default: 50)")
    p.add_argument("--live-tabs", type=int, default=1, help="with --train: other tabs on the live Monitor (default: 1)")
    p.add_argument("--apptest", action="store_true", help="also time each page's script with AppTest")
    p.add_argument("--routes-ab", action="store_true", help="only: full loads with and without the page routes")
    p.add_argument("--out", type=Path, help="also append the tables to this file")
    p.add_argument("--deadline", type=float, default=1500, help="give up after this many seconds (default: 1500)")
    return p.parse_args(argv)


def _give_up(signum, frame):
    raise SystemExit(f"page_timings: stopped by signal {signum}")


def run(args: argparse.Namespace, base: Path, procs: list, out) -> None:
    from playwright.sync_api import sync_playwright

    t0 = time.monotonic()
    fx = build_fixture(base, args.runs)
    print(f"fixture: {args.runs} runs in {fx.runs_dir} ({time.monotonic() - t0:.0f} s)", flush=True)
    if args.routes_ab:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                time_routes_ab(browser, fx, base, procs, args.reloads)
            finally:
                browser.close()
        return
    url = start_streamlit(fx.runs_dir, fx.data_dir, base / "streamlit.log", procs)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            cases = page_cases(fx, None)
            print_table(f"Page load, {args.runs} runs, idle server ({args.reloads} loads each)",
                        time_pages(browser, url, cases, args.reloads), out)
            print_table(f"In-app navigation (top-bar click), {args.runs} runs, idle server",
                        time_navigation(browser, url, nav_cases(fx), args.reloads), out)
            if args.train:
                live = start_trainer(fx, base / "trainer.log", procs, args.epochs)
                for _ in range(args.live_tabs):  # tabs that keep the live run's Monitor refreshing
                    load_time(new_page(browser), url, PageCase("live", f"/monitor?run={live}",
                                                               ".js-plotly-plot .main-svg"))
                results = time_pages(browser, url, page_cases(fx, live), args.reloads)
                state = runs.read_run(fx.runs_dir / live).state
                print_table(f"Page load, {args.runs} runs, while a run trains ({args.live_tabs} other tab(s) on its "
                            f"live Monitor; trainer {state} at the end)", results, out)
                nav = time_navigation(browser, url, nav_cases(fx), args.reloads)
                state = runs.read_run(fx.runs_dir / live).state
                print_table(f"In-app navigation (top-bar click), {args.runs} runs, while a run trains (Monitor shows "
                            f"it live; trainer {state} at the end)", nav, out)
        finally:
            browser.close()
    if args.apptest:
        print_table(f"AppTest script run, {args.runs} runs ({args.reloads} runs each after one warm-up)",
                    apptest_times(fx, page_cases(fx, None), args.reloads), out)
        print_table(f"AppTest script run of big runs: Analyze of 10,000 predictions (target < 2 s), Explain of "
                    f"5,000 images x 30 epochs (target < 1 s); {args.reloads} runs each after one warm-up",
                    apptest_big_runs(base, fx.data_dir, args.reloads), out)
        print_table(f"Without Streamlit: one gallery page of a 10,000-prediction cell (target < 0.5 s), the history "
                    f"of 5,000 images x 200 epochs (target < 10 s); {args.reloads} times each",
                    size_timings(base, args.reloads), out)


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _give_up)
    signal.signal(signal.SIGALRM, _give_up)
    signal.alarm(int(args.deadline))
    procs: list[subprocess.Popen] = []
    out = open(args.out, "a") if args.out else None
    try:
        with tempfile.TemporaryDirectory(prefix="page-timings-") as base:
            try:
                run(args, Path(base), procs, out)
            finally:
                signal.alarm(0)
                for proc in reversed(procs):
                    stop(proc)
    finally:
        if out:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
