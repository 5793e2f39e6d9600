"""Results over runs: each run's final numbers, and runs that differ only by seed grouped
into one row with mean ± std, the shape of the paper's Table 6.

The sweep's ``--report`` and the Compare page's table both come from :func:`group_results`,
so the command line and the dashboard never disagree on a number. Errors are in percent:
100 × (1 − accuracy). The test error is the final one (the last weights, evaluated once
after training); the validation error is the best epoch's on a held-out validation split,
None for runs without one. Only completed runs enter the means; the others are counted.
A row shows the paper's number (with its note and the paper it is from) only where its
runs trained with the paper's recipe (:func:`is_paper_recipe`).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass

from . import runs
from .cifar import IMAGE_FOLDER
from .config import PAPER_RECIPE_FIELDS, TrainConfig, image_format, paper_config
from .evaluation_labels import evaluation_labels
from .formatting import format_duration
from .progress import compute_progress
from .model_names import PaperResult, family_counts, paper_result, shortcut_label
from .runs.values import as_count, as_float

# Fields that label a run, place it or tune its speed but do not change what it learns
# (precision does, slightly, so it stays): runs that differ only in these share a row.
NOT_COMPARED = ("seed", "name", "sweep", "device", "channels_last", "compile", "data_dir", "runs_dir", "download",
                "log_every", "log_seconds")
FORMATS = ("md", "csv", "json")


@dataclass(frozen=True)
class RunResult:
    """One run's numbers as the table uses them (None where the run has none)."""

    run_id: str
    state: str
    config: dict  # config.json's "config"
    model: str  # "ResNet-20", "plain-56"
    params: int | None
    macs: int | None
    test_error: float | None  # final test error (%), completed runs only
    val_error: float | None  # best validation error (%) on a held-out split
    seconds: float | None  # wall time of training, earlier sessions of a resumed run included
    images_per_s: float | None  # mean training throughput over epochs after the first

    @property
    def completed(self) -> bool:
        return self.state == runs.State.COMPLETED.value


@dataclass(frozen=True)
class ResultGroup:
    """Runs whose configs differ only in NOT_COMPARED fields: one row of the table."""

    fields: dict  # the grouping fields' values (e.g. {"depth": 20, "shortcut": "none"})
    model: str
    block: str
    depth: int | None
    shortcut: str
    members: tuple[RunResult, ...]
    params: int | None
    macs: int | None
    paper: PaperResult | None  # the paper's number for this network, only where the config is the paper's recipe

    @property
    def done(self) -> list[RunResult]:
        return [r for r in self.members if r.completed]

    @property
    def runs(self) -> int:
        """Completed runs, the n of the means."""
        return len(self.done)

    @property
    def unfinished(self) -> int:
        return len(self.members) - self.runs

    def _values(self, name: str) -> list[float]:
        return [getattr(r, name) for r in self.done if getattr(r, name) is not None]

    def _stat(self, name: str) -> tuple[float | None, float | None]:
        return mean_std(self._values(name))

    @property
    def test_error(self) -> tuple[float | None, float | None]:
        return self._stat("test_error")

    @property
    def val_error(self) -> tuple[float | None, float | None]:
        return self._stat("val_error")

    @property
    def test_n(self) -> int:
        """Runs in the test error's mean: the completed runs that recorded one."""
        return len(self._values("test_error"))

    @property
    def val_n(self) -> int:
        """Runs in the validation error's mean (0 without a validation split)."""
        return len(self._values("val_error"))

    @property
    def seconds(self) -> float | None:
        return self._stat("seconds")[0]

    @property
    def images_per_s(self) -> float | None:
        return self._stat("images_per_s")[0]


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n − 1, as for "mean ± std over seeds"); the std
    is None for fewer than two values, both are None for none."""
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _error(acc) -> float | None:
    acc = as_float(acc)
    return None if acc is None else 100.0 * (1.0 - acc)


def _training_speed(info: runs.RunInfo) -> float | None:
    """Mean images/s of the epoch rows after the first (the first pays for cuDNN's autotuning
    and torch.compile), or the first's when it is the only one."""
    rates = [as_float(r.get("images_per_s")) for r in runs.read_metrics(info.path) if r.get("type") == "epoch"]
    rates = [r for r in rates if r is not None]
    return statistics.fmean(rates[1:] if len(rates) > 1 else rates) if rates else None


def _model_size(info: runs.RunInfo) -> tuple[int | None, int | None]:
    """Params and MACs as config.json records them, else counted from the config in closed
    form (family_counts: 17 us for a depth near 10**6 on this machine); unknown for a config
    no model fits."""
    recorded = info.config.get("model") if isinstance(info.config.get("model"), dict) else {}
    params, macs = as_count(recorded.get("params")), as_count(recorded.get("macs"))
    if params is not None and macs is not None:
        return params, macs
    cfg = info.train_config
    try:
        counts = family_counts(cfg.get("depth"), cfg.get("block", "basic"), cfg.get("shortcut") or None,
                               max(2, len(info.classes) or 10), cfg.get("preact") is True,
                               image_format(info.resolved, cfg)[0])
    except (TypeError, ValueError):
        return None, None
    return counts.params, counts.macs


def run_result(info: runs.RunInfo) -> RunResult:
    """A run's numbers; never raises for what its folder holds."""
    status, cfg = info.status if isinstance(info.status, dict) else {}, info.train_config
    completed = info.state == runs.State.COMPLETED.value
    # Held-out training images only: a format-1 run whose test set stood in for validation has none.
    has_val = evaluation_labels(info.config).val_source == "train"
    params, macs = _model_size(info)
    return RunResult(
        run_id=info.run_id, state=info.state, config=cfg, model=info.model_name or "?", params=params, macs=macs,
        test_error=_error(status.get("test_acc")) if completed else None,
        val_error=_error(status.get("best_val_acc")) if has_val else None,
        seconds=compute_progress(info).elapsed_s, images_per_s=_training_speed(info))


def _hashable(value):
    """value as a key: a config value may be any JSON, lists and objects included."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


_DEFAULTS = TrainConfig()
_DEFAULT_VALUES = dataclasses.asdict(_DEFAULTS)


def is_paper_recipe(cfg: dict) -> bool:
    """Whether a run (config.json's "config") trained as the paper did: every recipe field as
    --preset paper sets it for this network (:func:`resnet_core.config.paper_config`, so the
    rule cannot drift from the preset), a field an older record lacks at its default. The
    recipe is the same for either unit order and dataset: CIFAR-100 has 50,000 training
    images too, so the preset's epochs, lr drops and warm-up are CIFAR-10's."""
    depth, block, shortcut = cfg.get("depth"), cfg.get("block", _DEFAULTS.block), cfg.get("shortcut", "")
    if not (isinstance(depth, int) and isinstance(block, str) and isinstance(shortcut, str)):
        return False
    recipe = paper_config(depth, block, shortcut)
    return all(cfg.get(k, getattr(_DEFAULTS, k)) == getattr(recipe, k) for k in PAPER_RECIPE_FIELDS)


def paper_comparison(cfg: dict) -> PaperResult | None:
    """The paper's number for a run's network on its dataset (an older record's: CIFAR-10),
    where the run trained with the paper's recipe."""
    if not is_paper_recipe(cfg):
        return None
    dataset = cfg.get("dataset", _DEFAULTS.dataset)
    return paper_result(dataset if isinstance(dataset, str) else "", cfg.get("preact") is True,
                        cfg.get("block", _DEFAULTS.block), cfg["depth"], cfg.get("shortcut", ""))


def seed_groups(configs: Sequence[dict], by: Sequence[str] = ()) -> tuple[list[list[int]], list[str]]:
    """Positions of the configs (config.json's "config") grouped where they differ only by
    seed and NOT_COMPARED fields (a field in by splits groups even so, and an image folder's
    data_dir, its dataset, always does), in first-seen order, and the compared fields whose
    values differ between the groups. A field an older record lacks had its default then."""
    buckets: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        config = {**_DEFAULT_VALUES, **config}
        compared = {*by, *(("data_dir",) if config.get("dataset") == IMAGE_FOLDER else ())}
        key = tuple(sorted((k, _hashable(v)) for k, v in config.items() if k not in NOT_COMPARED or k in compared))
        buckets.setdefault(key, []).append(i)
    seen: dict[str, set] = {}
    for key in buckets:
        for k, v in key:
            seen.setdefault(k, set()).add(v)
    return list(buckets.values()), [k for k, values in seen.items() if len(values) > 1]


def group_results(results: Sequence[RunResult], by: Sequence[str] | None = None) -> list[ResultGroup]:
    """Rows of runs that differ only by seed (and NOT_COMPARED fields), in first-seen order
    (:func:`seed_groups`).

    by: the fields to show per row (a sweep's varied fields but seed); None shows the
    compared fields whose values differ between the rows.
    """
    # A varied field splits rows even where it only sets the speed (compile, device).
    positions, differing = seed_groups([r.config for r in results], by or ())
    by = differing if by is None else by
    groups = []
    for members in ([results[j] for j in group] for group in positions):
        cfg = {**_DEFAULT_VALUES, **members[0].config}
        depth, block, shortcut = cfg.get("depth"), str(cfg.get("block", "")), str(cfg.get("shortcut", ""))
        sizes = next(((r.params, r.macs) for r in members if r.params is not None), (None, None))
        groups.append(ResultGroup(
            fields={k: cfg.get(k) for k in by}, model=members[0].model, block=block,
            depth=as_count(depth), shortcut=shortcut, members=tuple(members),
            params=sizes[0], macs=sizes[1], paper=paper_comparison(cfg)))
    return groups


def _rounded(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def group_record(group: ResultGroup) -> dict:
    """One row as plain data: the grouping fields, then the numbers (errors in %)."""
    test_mean, test_std = group.test_error
    val_mean, val_std = group.val_error
    return {**group.fields, "model": group.model, "runs": group.runs, "unfinished": group.unfinished,
            "test_error_mean": _rounded(test_mean), "test_error_sample_std": _rounded(test_std),
            "test_error_n": group.test_n,
            "val_error_mean": _rounded(val_mean), "val_error_sample_std": _rounded(val_std), "val_error_n": group.val_n,
            "params": group.params, "macs": group.macs, "seconds_mean": _rounded(group.seconds, 1),
            "images_per_s_mean": _rounded(group.images_per_s, 1),
            "paper_test_error": group.paper.error if group.paper else None,
            "paper_note": group.paper.note if group.paper else None,
            "paper_source": group.paper.source if group.paper else None,
            "run_ids": [r.run_id for r in group.members]}


def mean_std_text(mean: float | None, std: float | None) -> str:
    """"8.75 ± 0.16", "8.75" for a single run, "—" for none."""
    if mean is None:
        return "—"
    return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def _mean_cell(stat: tuple[float | None, float | None], n: int, row_n: int) -> str:
    """A mean ± std as text, naming its own n where it averages fewer than the row's n runs."""
    return mean_std_text(*stat) + (f" (n={n})" if 0 < n < row_n else "")


# Under every Markdown table: what its ± and n are (the CSV and JSON say so in their field names).
MARKDOWN_NOTE = ("Errors in %: mean ± sample standard deviation (n − 1) over the row's n completed runs, no ± for "
                 "n = 1; a mean over fewer runs (some recorded none) gives its own n.")


def paper_text(paper: PaperResult | None) -> str:
    """"6.43 (best of 5 runs; mean 6.61 ± 0.16)": the paper's error beside how it got it, so
    that a best-of-5 is never read as the mean the row's own mean ± std compares with."""
    if paper is None:
        return "—"
    return f"{paper.error:.2f}" + (f" ({paper.note})" if paper.note else "")


def field_text(name: str, value) -> str:
    """A field's value as people read it: shortcut none is "plain"."""
    return shortcut_label(value) if name == "shortcut" and isinstance(value, str) else str(value)


def table_rows(groups: Sequence[ResultGroup]) -> list[dict]:
    """The rows as people read them: mean ± std as text, n shown, paper's number if any."""
    rows = []
    for g in groups:
        rows.append({
            **{k: field_text(k, v) for k, v in g.fields.items()},
            "model": g.model, "n": g.runs,
            "test error %": _mean_cell(g.test_error, g.test_n, g.runs),
            "best val error %": _mean_cell(g.val_error, g.val_n, g.runs),
            "params": f"{g.params:,}" if g.params is not None else "—",
            "MACs": f"{g.macs:,}" if g.macs is not None else "—",
            "time": format_duration(g.seconds), "images/s": f"{g.images_per_s:,.0f}" if g.images_per_s else "—",
            "paper test error %": paper_text(g.paper),
            **({"paper source": g.paper.source if g.paper else "—"} if any(x.paper for x in groups) else {}),
            **({"unfinished": g.unfinished} if any(x.unfinished for x in groups) else {}),
        })
    return rows


def markdown_table(rows: Sequence[dict]) -> str:
    if not rows:
        return "(no runs)\n"
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(row[k]).replace("|", "\\|") for k in head) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_table(records: Sequence[dict]) -> str:
    out = io.StringIO()
    if records:
        writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        for rec in records:
            writer.writerow({k: (" ".join(v) if isinstance(v, list) else v) for k, v in rec.items()})
    return out.getvalue()


def report(groups: Sequence[ResultGroup], fmt: str = "md") -> str:
    """The table as Markdown (for people), CSV or JSON (numbers, errors to 4 decimals)."""
    if fmt == "md":
        return markdown_table(table_rows(groups)) + (f"\n{MARKDOWN_NOTE}\n" if groups else "")
    records = [group_record(g) for g in groups]
    if fmt == "csv":
        return csv_table(records)
    if fmt == "json":
        return json.dumps(records, indent=1) + "\n"
    raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")


def sweep_report(infos: Sequence[runs.RunInfo], group_by: Sequence[str], fmt: str = "md") -> str:
    """The sweep's ``--report``: its runs grouped by the varied fields but seed."""
    return report(group_results([run_result(i) for i in infos], group_by), fmt)
