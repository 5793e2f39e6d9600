"""Training dynamics of a run: forgetting events (resnet_core.forgetting) and the data map
(resnet_core.data_maps) of its training images, from the record its training steps left in
dynamics/ (see the format docstring, resnet_core/runs/folder_format.py), and, for a run with
planted label noise, where the flipped images went.

    python -m resnet_core.dynamics RUN_DIR [--json] [--csv FILE]

prints the summary (with --json: one JSON object, summary()'s) and writes the per-image
table as CSV. Exit status 2: the run has no record (trained before it existed, or ended
before its first epoch); 1: the record is damaged; each told in one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import runs
from .data_maps import AMBIGUOUS, EASY, HARD, REGIONS, DataMap, data_map
from .forgetting import Forgetting, forgetting
from .outputs import OutputRefused, check_output_path, replacing

COUNTED = ("at most one presentation per image per epoch (an epoch's dropped last partial batch and a max-steps "
           "run's untaken steps present none), the augmented image each training step trained on, "
           "BatchNorm in training mode, from the step's own forward pass (no separate evaluation)")


@dataclass(frozen=True)
class Dynamics:
    record: runs.TrainingRecord
    forgetting: Forgetting
    data_map: DataMap


def analyse(record: runs.TrainingRecord) -> Dynamics:
    """Forgetting and data map of a training record's images."""
    return Dynamics(record, forgetting(record), data_map(record))


def _noise(d: Dynamics) -> dict[str, int]:
    flipped, region = d.record.flipped, d.data_map.region
    return {"flipped": int(flipped.sum()),
            "flipped_in_hard": int((flipped & (region == HARD)).sum()),
            "flipped_in_ambiguous": int((flipped & (region == AMBIGUOUS)).sum()),
            "flipped_in_easy": int((flipped & (region == EASY)).sum()),
            "flipped_never_learned": int((flipped & d.forgetting.never_learned).sum()),
            "flipped_forgotten_at_least_once": int((flipped & d.forgetting.forgotten).sum()),
            "flipped_unforgettable": int((flipped & d.forgetting.unforgettable).sum())}


def _cut(value: float) -> float | None:
    return None if np.isnan(value) else round(value, 6)


def summary(d: Dynamics) -> dict:
    """The run's dynamics in numbers (the CLI's --json object): images, epochs, presentations
    (image-epochs presented) and images never presented; forgetting {events_total,
    unforgettable, never_learned, forgotten_at_least_once}; regions {easy, ambiguous, hard}
    (counts) with the cuts that draw them; noise {flipped, flipped_in_hard,
    flipped_in_ambiguous, flipped_in_easy, flipped_never_learned,
    flipped_forgotten_at_least_once, flipped_unforgettable}, only when a label was flipped."""
    f, m = d.forgetting, d.data_map
    out = {
        "images": int(len(d.record.indices)),
        "epochs": int(len(d.record.epochs)),
        "presentations": int(d.record.presented.sum()),
        "never_presented": int((~f.presented).sum()),
        "forgetting": {"events_total": int(f.events.sum()),
                       "unforgettable": int(f.unforgettable.sum()),
                       "never_learned": int(f.never_learned.sum()),
                       "forgotten_at_least_once": int(f.forgotten.sum())},
        "regions": {"easy": int((m.region == EASY).sum()),
                    "ambiguous": int((m.region == AMBIGUOUS).sum()),
                    "hard": int((m.region == HARD).sum())},
        "cuts": {"variability": _cut(m.variability_cut), "confidence": _cut(m.confidence_cut)},
    }
    if d.record.flipped.any():
        out["noise"] = _noise(d)
    return out


TABLE_COLUMNS = ("index", "label", "original_label", "flipped", "confidence", "variability", "correctness",
                 "region", "forgetting_events", "never_learned", "unforgettable", "first_learned", "presentations")


def per_image_table(d: Dynamics) -> pd.DataFrame:
    """One row per training image, in the record's order, with TABLE_COLUMNS; region is the
    region's name ("" for an image never presented)."""
    r, f, m = d.record, d.forgetting, d.data_map
    names = np.array([*REGIONS, ""], dtype=object)  # code -1 (never presented) picks the last
    return pd.DataFrame({
        "index": r.indices, "label": r.labels, "original_label": r.original_labels, "flipped": r.flipped,
        "confidence": m.confidence, "variability": m.variability, "correctness": m.correctness,
        "region": names[m.region], "forgetting_events": f.events, "never_learned": f.never_learned,
        "unforgettable": f.unforgettable, "first_learned": f.first_learned,
        "presentations": r.presented.sum(axis=1),
    }, columns=list(TABLE_COLUMNS))


def _share(part: int, whole: int) -> str:
    return f"{part:,} ({part / whole:.1%})" if whole else f"{part:,}"


def describe(s: dict) -> str:
    """summary()'s numbers in words: what is counted, forgetting, regions and label noise."""
    n, f, g, cuts = s["images"], s["forgetting"], s["regions"], s["cuts"]
    lines = [f"Training dynamics of {n:,} training images over {s['epochs']} epochs.",
             f"Counted: {COUNTED}; {s['presentations']:,} presentations"
             + (f", {s['never_presented']:,} image{'s' if s['never_presented'] != 1 else ''} never presented."
                if s["never_presented"] else "."),
             f"Forgetting events (right at a presentation, wrong at the next, Toneva et al. 2019): "
             f"{f['events_total']:,}; forgotten at least once: {_share(f['forgotten_at_least_once'], n)}; "
             f"unforgettable (learned, never forgotten): {_share(f['unforgettable'], n)}; never learned "
             f"(shown apart; the paper counts them as forgotten infinitely often): {_share(f['never_learned'], n)}.",
             f"Data map regions (Swayamdipta et al. 2020): easy-to-learn {_share(g['easy'], n)}; ambiguous, "
             f"variability above {cuts['variability']}: {_share(g['ambiguous'], n)}; hard-to-learn, confidence "
             f"below {cuts['confidence']} and not ambiguous: {_share(g['hard'], n)}."]
    noise = s.get("noise")
    if noise:
        parts = [f"{noise[f'flipped_in_{k}']:,} of the {g[k]:,} {name}"
                 + (f" ({noise[f'flipped_in_{k}'] / g[k]:.1%})" if g[k] else "")
                 for k, name in (("hard", REGIONS[HARD]), ("ambiguous", REGIONS[AMBIGUOUS]), ("easy", REGIONS[EASY]))]
        lines.append(f"Planted label noise: {_share(noise['flipped'], n)} labels flipped; flipped images: "
                     + ", ".join(parts) + f"; {noise['flipped_never_learned']:,} never learned.")
    return "\n".join(lines)


def _fail(message: str, status: int) -> int:
    print(message, file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_core.dynamics", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write the per-image table to FILE")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        return _fail(f"{args.run_dir} is not a run folder", 2)
    if not runs.dynamics_epochs(args.run_dir):
        return _fail(f"{args.run_dir} has no record of its training images (dynamics/): it was trained before "
                     "the record existed, or ended before its first epoch", 2)
    if args.csv:
        try:
            check_output_path(args.csv, "--csv")  # before the work: a refusal comes at once
        except OutputRefused as e:
            return _fail(str(e), 1)
    try:
        d = analyse(runs.load_dynamics(args.run_dir))
    except runs.RunFolderError as e:
        return _fail(f"{args.run_dir}: damaged training record: {e}", 1)
    if args.csv:
        try:  # a new file or one replaced whole, never through a link (resnet_core.outputs)
            with replacing(args.csv, "--csv") as tmp:
                per_image_table(d).to_csv(tmp, index=False)
        except OutputRefused as e:
            return _fail(str(e), 1)
        except OSError as e:
            return _fail(f"{args.csv} cannot be written ({e.strerror or e})", 1)
    s = summary(d)
    print(json.dumps(s) if args.json else describe(s))
    if args.csv and not args.json:
        print(f"Per-image table written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
