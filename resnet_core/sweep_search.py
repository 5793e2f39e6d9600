"""A search's Optuna study: its sampler, pruner and storage from the sweep record's
``search``, each trial's values asked from it, and the run's numbers it is told.

Only a random or tpe sweep, and the views of one, import this module (it imports Optuna).
The study lives in an RDB storage (``search.storage``: a SQLite file beside the record by
default), named ``search.study``; every trial keeps the run folder it trained in as the
user attribute ``run``, and the metric its value came from as ``metric``.
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
from optuna.trial import TrialState

from .config import FIELD_TYPES
from .runs.values import as_float
from .train_checks import Refused

def tpe_sampler(seed: int, trials: int) -> optuna.samplers.TPESampler:
    """TPE that models the results after a third of the budget (2 to 10 random trials first):
    with Optuna's default of 10, a 10-trial "tpe" search never modelled anything (measured:
    three 10-trial tpe searches of one seed, told different results as they pruned
    differently, tried the same 10 points)."""
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))


SAMPLERS = {"random": lambda seed, trials: optuna.samplers.RandomSampler(seed=seed), "tpe": tpe_sampler}
# MedianPruner's default waits for 5 finished trials: half of the 8-12-trial budgets this
# studio runs on a GPU-hour would never be judged, so it waits for 2. Successive halving
# starts judging at epoch 1 (min_resource 1), keeping the best 1/3 at each rung.
PRUNERS = {"none": optuna.pruners.NopPruner, "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2),
           "asha": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)}

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep prints its own progress lines


class StudyUnavailable(Exception):
    """The study cannot be created or loaded (one line: the storage and why)."""


SQLITE = "sqlite:///"


def sqlite_file(url: str | None) -> Path | None:
    """The file of a SQLite storage URL, as SQLAlchemy reads the URL; None for another
    database, one in memory, no URL (an in-memory study) or one SQLAlchemy cannot parse."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url) if url is not None else None
    except (ArgumentError, ValueError):
        return None
    if parsed is None or parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create_sqlite_whole(storage: str | None) -> None:
    """Give a SQLite storage that does not exist yet its schema under a temporary name and
    link it into place, so that the file appears whole. A reader (the Searches page, a
    test) connecting while the schema was being written wrote it too, and one of the two
    failed: 16 of 30 creations with a reader polling beside them died with "table studies
    already exists" or "UNIQUE constraint failed: alembic_version" (the CI run of stop 35)."""
    path = sqlite_file(storage)
    if path is None or path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        optuna.storages.RDBStorage(SQLITE + str(tmp)).engine.dispose()
        os.link(tmp, path)
    except FileExistsError:  # another process created it meanwhile: its schema is whole too
        pass
    finally:
        tmp.unlink(missing_ok=True)


def storage_url(url: str) -> str:
    """A --storage URL as the record keeps it: a relative SQLite file made absolute (read as it
    was, from the sweep's working folder, the dashboard and a resume started elsewhere found
    no study); Refused, before anything is written, for what SQLAlchemy cannot parse, a
    database it has no dialect for, or a SQLite file whose folder does not exist."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as e:
        raise Refused(f"--storage {url}: not a database URL SQLAlchemy knows ({e})") from None
    file = sqlite_file(url)
    if file is None:
        return url
    path = file.expanduser().resolve()
    if not path.parent.is_dir():
        raise Refused(f"--storage {url}: the folder {path.parent} does not exist")
    return parsed.set(database=str(path)).render_as_string(hide_password=False)


def load_study(search: dict, create: bool) -> optuna.Study:
    """The record's study: created for a new sweep, loaded for a resume; StudyUnavailable
    where the storage cannot be reached, already holds a new sweep's study, or lacks a
    resumed one's."""
    sampler = SAMPLERS[search["kind"]](search["seed"], search["trials"])
    pruner = PRUNERS[search["prune"]]()
    where = f"study {search['study']} in {search['storage']}"
    try:
        if create:
            create_sqlite_whole(search["storage"])
            return optuna.create_study(storage=search["storage"], study_name=search["study"], sampler=sampler,
                                       pruner=pruner, direction="maximize")
        return optuna.load_study(storage=search["storage"], study_name=search["study"], sampler=sampler,
                                 pruner=pruner)
    except optuna.exceptions.DuplicatedStudyError:
        raise StudyUnavailable(f"{where} already exists: name the sweep otherwise or remove it") from None
    except KeyError:
        raise StudyUnavailable(f"{where} is missing: the record cannot be resumed without it") from None
    except Exception as e:  # the storage's own errors (SQLAlchemy's, a driver's): one line
        raise StudyUnavailable(f"{where}: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from None


def space_of(record: dict) -> dict:
    """The record's search space: {field: values} for fields varied by values (categorical),
    {field: {low, high, log}} for ranges."""
    return {v["field"]: v["values"] for v in record["vary"]} | {r["field"]: r for r in record["ranges"]}


def suggest(trial: optuna.Trial, space: dict) -> dict:
    """The trial's values, one per field of the space: integer options stay integers."""
    values = {}
    for name, allowed in space.items():
        if isinstance(allowed, list):
            values[name] = trial.suggest_categorical(name, allowed)
        elif FIELD_TYPES[name].base is int:
            values[name] = trial.suggest_int(name, allowed["low"], allowed["high"], log=allowed["log"])
        else:
            values[name] = trial.suggest_float(name, allowed["low"], allowed["high"], log=allowed["log"])
    return values


def ask(study: optuna.Study, space: dict, values: dict | None = None) -> tuple[optuna.Trial, dict]:
    """A new trial and its values: the sampler's, or the given ones (a resumed trial asked again)."""
    if values is not None:
        study.enqueue_trial(values)
    trial = study.ask()
    return trial, suggest(trial, space)


def objective(status: dict, metric: str) -> tuple[float | None, str]:
    """A completed run's objective and the status.json field it came from: best_val_acc
    falls back to the final test_acc for a run without a validation split."""
    if metric == "best_val_acc" and as_float(status.get("best_val_acc")) is None:
        metric = "test_acc"
    return as_float(status.get(metric)), metric


def epoch_metric(row: dict) -> float | None:
    """What the pruner is fed at an epoch's end: its validation accuracy, else the test
    accuracy a run without a validation split monitors each epoch."""
    val = as_float(row.get("val_acc"))
    return val if val is not None else as_float(row.get("test_acc"))


def running_trials(study: optuna.Study) -> set[int]:
    """Numbers of the study's trials still running (told nothing yet)."""
    return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
