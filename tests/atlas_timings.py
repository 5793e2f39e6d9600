"""Timings of Explain's view "Atlas (features)" with 10,000 images (a benchmark, not a pytest
test).

    .venv/bin/python tests/atlas_timings.py [--images 10000] [--reloads 5]

What it builds: a temp CIFAR-format folder with that many training images
(tests/conftest.py's write_cifar_folder), a run (tests/fake_runs.py's make_run) and 64-d
features of its validation split in ten clusters, planted in its features/ cache
(tests/atlas_features.py), and a cached t-SNE map of them.

What it measures (targets: each under 1 s warm): with AppTest, the script run of the
atlas once its caches are warm (PCA, and the cached t-SNE map), coloured by true class and
by confidence, and the script run after a selection (set as the chart's callback sets
it: a box over a quarter of the map, a box over all of it, then a clicked cell), which
shows its images.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from atlas_features import plant_features  # noqa: E402
from conftest import write_cifar_folder  # noqa: E402
from fake_runs import make_run  # noqa: E402

from app_pages import explain_atlas  # noqa: E402
from resnet_core import embeddings, projections  # noqa: E402
from resnet_core.cifar import load_cifar  # noqa: E402
from resnet_core.dashboard.data_map_selection import Area  # noqa: E402


def build(base: Path, n: int):
    data_dir = write_cifar_folder(base / "data", n_train=n, n_test=100)
    runs_dir = base / "runs"
    runs_dir.mkdir()
    run_dir = make_run(runs_dir, "atlas", epochs_done=3, total_epochs=3, n_val=200, data_dir=data_dir)
    f = plant_features(run_dir, load_cifar("cifar10", data_dir).train_labels, "val", n, clusters=10)
    coords = projections.pca(f.features)
    projections.save_projection(run_dir, "val", "best", projections.TSNE, coords, f.features)  # as t-SNE leaves it
    return data_dir, runs_dir, run_dir, coords


def apptest_times(data_dir: Path, runs_dir: Path, run_id: str, coords, reloads: int) -> list[tuple[str, list, list]]:
    """[(case, wall seconds of each script run, CPU seconds of this process during it)]."""
    from streamlit.testing.v1 import AppTest

    os.environ.update(RESNET_STUDIO_RUNS=str(runs_dir), RESNET_STUDIO_DATA=str(data_dir))

    def opened(method: str, colour_by: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "studio.py"), default_timeout=120)
        at.run()
        at.switch_page("app_pages/explain.py")
        at.query_params.update(run=run_id, view=explain_atlas.ATLAS)
        at.session_state["ex_atlas_method"] = method
        at.session_state["ex_atlas_colour_val"] = colour_by
        return at

    def timed(at) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        at.run()
        assert not at.exception, at.exception[0].message
        return time.perf_counter() - t0, time.process_time() - c0

    results = []
    for method, colour_by in ((projections.PCA, "true class"), (projections.TSNE, "true class"),
                              (projections.PCA, "confidence")):
        times = []
        for i in range(reloads + 1):
            at = opened(method, colour_by)
            took = timed(at)
            assert at.get("bidi_component"), "no map"
            times += [took] if i else []  # the first run reads the features and fills the caches
        results.append((f"open: {method}, {colour_by}", *map(list, zip(*times, strict=True))))
    x0, x1 = float(coords[:, 0].min()), float(coords[:, 0].max())
    y0, y1 = float(coords[:, 1].min()), float(coords[:, 1].max())
    features = embeddings.cached_features(runs_dir / run_id, "val", "best").features
    key = (run_id, "val", "best", projections.PCA, projections.features_digest(features))
    for name, area, cell in (("box over a quarter", Area("box", (x0, (x0 + x1) / 2), (y0, (y0 + y1) / 2)), None),
                             ("box over everything", Area("box", (x0 - 1, x1 + 1), (y0 - 1, y1 + 1)), None),
                             ("box over everything + a cell", Area("box", (x0 - 1, x1 + 1), (y0 - 1, y1 + 1)),
                              (3, 4))):
        times = []
        for _ in range(reloads):
            at = opened(projections.PCA, "true class")
            at.run()
            at.session_state[explain_atlas.AREAS_KEY] = (key, (area,))
            if cell:
                at.session_state[explain_atlas.CELL_KEY] = (key, cell)
            times.append(timed(at))
            assert at.get("html"), "no gallery"
        results.append((f"select: {name}", *map(list, zip(*times, strict=True))))
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--reloads", type=int, default=5)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="atlas-timings-") as tmp:
        data_dir, runs_dir, run_dir, coords = build(Path(tmp), args.images)
        print(f"AppTest script runs, {args.images:,} images ({args.reloads} each, warm; load "
              f"{os.getloadavg()[0]:.1f}): median and max wall s, median CPU s")
        for name, wall, cpu in apptest_times(data_dir, runs_dir, run_dir.name, coords, args.reloads):
            print(f"{name:<44} {statistics.median(wall):6.2f} {max(wall):6.2f} {statistics.median(cpu):6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
