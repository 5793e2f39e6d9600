"""Time to read and analyse a 50,000-image, 165-epoch training record (a benchmark, not a
pytest test; the issue's target: well under 1 s, for the Explain page warm).

    .venv/bin/python tests/dynamics_timing.py [--images 50000] [--epochs 165] [--repeats 5] [--compressed]

It writes the record with tests/conftest.py's write_dynamics_record (numpy, exactly as the
format says; --compressed: np.savez_compressed instead) into a temp folder: probabilities
uniform in 0..1, 1% of presentations missing, 20% of the labels flipped; then times
runs.load_dynamics, dynamics.analyse, summary and per_image_table, and prints each
repeat's seconds and the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import write_dynamics_record  # noqa: E402
from resnet_core import runs  # noqa: E402
from resnet_core.dynamics import analyse, per_image_table, summary  # noqa: E402


def build(run_dir: Path, images: int, epochs: int, compressed: bool) -> None:
    rng = np.random.default_rng(0)
    prob = rng.random((images, epochs), dtype=np.float32)
    prob[rng.random((images, epochs)) < 0.01] = np.nan
    labels = rng.integers(0, 10, images)
    original = labels.copy()
    flipped = rng.choice(images, images // 5, replace=False)
    original[flipped] = (labels[flipped] + 1) % 10
    write_dynamics_record(run_dir, prob, prob > 0.5, rng.permutation(images), labels, original,
                          save=np.savez_compressed if compressed else np.savez)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=165)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compressed", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        build(run_dir, args.images, args.epochs, args.compressed)
        size = sum(p.stat().st_size for p in (run_dir / runs.DYNAMICS_DIR).iterdir())
        print(f"record: {args.images:,} images x {args.epochs} epochs, {size / 2 ** 20:.1f} MiB on disk")
        rows, cpu = [], []
        for _ in range(args.repeats):
            c0 = time.process_time()
            t0 = time.perf_counter()
            record = runs.load_dynamics(run_dir)
            t1 = time.perf_counter()
            d = analyse(record)
            t2 = time.perf_counter()
            summary(d)
            per_image_table(d)
            t3 = time.perf_counter()
            cpu.append(time.process_time() - c0)
            rows.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
            print("load {:.3f} s  analyse {:.3f} s  summary+table {:.3f} s  total {:.3f} s".format(*rows[-1]),
                  f"(CPU {cpu[-1]:.3f} s)")
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        # CPU seconds beside wall seconds: on a machine shared with other work the wall time
        # includes waiting for a core, the CPU time only this process's own work.
        print("median: load {:.3f} s  analyse {:.3f} s  summary+table {:.3f} s  total {:.3f} s".format(*medians),
              f"(CPU {statistics.median(cpu):.3f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
