"""Run folders fabricated with the writers of resnet_core.runs, following its documented
format, for tests of the readers and the dashboard (no trainer involved)."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np

from resnet_core import runs
from resnet_core.cifar import CLASSES, load_cifar
from resnet_core.runs import model_name

from cifar100_format import COARSE_NAMES, FINE_NAMES, SUPERCLASS_OF


# config.json's resolved.normalization as the trainer records it (the published CIFAR-10 statistics).
NORMALIZATION = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616], "images": 50000}


def fake_predictions(n: int, num_classes: int = 10, accuracy: float = 0.7, seed: int = 0,
                     source_size: int | None = None, k: int = 5,
                     source_labels: np.ndarray | None = None, image_seed: int | None = None) -> dict[str, np.ndarray]:
    """Arrays of predictions/{split}_epoch_NNN.npz: n records, about `accuracy` correct.

    With source_labels (the labels of the image set the indices point into) the records
    are images of that set with their true labels, as a trainer would record them.
    image_seed: which images (and labels) are picked, apart from the predictions (seed), so
    that the epochs of one run record the same images as a trainer's do; None: seed picks both.
    """
    rng = np.random.default_rng(seed)
    pick = rng if image_seed is None else np.random.default_rng(image_seed)
    if source_labels is not None:
        picked = np.sort(pick.choice(len(source_labels), n, replace=n > len(source_labels))).astype(np.int64)
        labels = np.asarray(source_labels, dtype=np.int64)[picked]
    else:
        labels = np.arange(n) % num_classes
        pick.shuffle(labels)
    predicted = _predict(labels, accuracy, rng, num_classes, k)
    if source_labels is not None:
        indices = picked
    else:
        source_size = source_size or n
        indices = np.sort(pick.choice(source_size, n, replace=n > source_size)).astype(np.int64)
    return dict(indices=indices, labels=labels.astype(np.int64), **predicted)


def _predict(labels: np.ndarray, accuracy: float, rng: np.random.Generator, num_classes: int,
             k: int) -> dict[str, np.ndarray]:
    """preds, topk_classes, topk_probs and loss for these true labels, about `accuracy` right."""
    n = len(labels)
    preds = labels.copy()
    wrong = rng.random(n) > accuracy
    preds[wrong] = (labels[wrong] + rng.integers(1, num_classes, wrong.sum())) % num_classes
    logits = rng.normal(0, 1, (n, num_classes))
    logits[np.arange(n), preds] += 4
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    order = np.argsort(-probs, axis=1)[:, :k]
    return dict(preds=order[:, 0].astype(np.int64), topk_classes=order.astype(np.int64),
                topk_probs=np.take_along_axis(probs, order, 1).astype(np.float32),
                loss=-np.log(probs[np.arange(n), labels]).astype(np.float32))


def repredict(run_dir: Path, split: str, epoch: int, accuracy: float, seed: int) -> dict[str, np.ndarray]:
    """Give a run other predictions for the same images (its indices and labels kept), as
    another model would make: two runs made by make_run otherwise record the same mistakes."""
    old = runs.load_predictions(run_dir, split, epoch)
    num_classes = len(runs.read_run(run_dir).classes)
    new = dict(indices=old["indices"], labels=old["labels"], **_predict(
        old["labels"], accuracy, np.random.default_rng(seed), num_classes, old["topk_classes"].shape[1]))
    runs.save_predictions(run_dir, split, epoch, **new)
    return new


def make_run(runs_dir: Path, name: str = "fake", *, state: str = "completed", epochs_done: int = 3,
             total_epochs: int = 3, n_val: int = 200, val_source: str | None = "train", pid: int | None = None,
             steps_per_epoch: int = 10, error: str | None = None, test: bool | None = None,
             source_size: int | None = None, with_checkpoint: bool = True, created: float | None = None,
             data_dir: Path | None = None, sweep: str = "", depth: int = 20, shortcut: str = "A",
             phase: str | None = None, phase_done: int | None = None, first_step_s: float | None = None,
             dataset: str = "cifar10", seed: int = 0) -> Path:
    """A run folder in the given state with epochs_done epochs of metrics and predictions.

    val_source: "train" (a validation split of the training set), "test" (a version 1
    run whose test set stood in for validation) or None (a version 2 run without a
    validation split: the test set is evaluated after every epoch for monitoring, epoch
    rows carry test_loss/test_acc and null val_loss/val_acc, best_val_acc is null).
    data_dir: a CIFAR-format folder the run records as resolved.data_dir; the records are
    then images of that folder with their true labels, as a trainer would record them.
    sweep, depth, shortcut: recorded in config.json's config (the model name follows them).
    phase: status.json's phase, begun 10 s before the last write; an evaluation phase has
    done phase_done of its split's images (n_val images to validate, 2 * n_val to test).
    first_step_s: status.json's first step time.
    dataset: "cifar100" records CIFAR-100's 100 classes, 20 superclasses and their grouping.
    seed: recorded in config.json's config; the step and epoch rows' accuracies are seed / 100
    higher, so that runs of several seeds differ.
    """
    run_dir = runs.new_run_dir(runs_dir, name)
    now = created or time.time()
    batch = 32
    train_size = steps_per_epoch * batch
    no_val = val_source is None
    source_labels = {"train": None, "test": None}
    classes = FINE_NAMES if dataset == "cifar100" else CLASSES
    superclasses = {"superclasses": list(COARSE_NAMES), "superclass_of": list(SUPERCLASS_OF)} \
        if dataset == "cifar100" else {}
    if data_dir is not None:
        cifar = load_cifar(dataset, data_dir)
        source_labels = {"train": cifar.train_labels, "test": cifar.test_labels}
    resolved = {"device": "cpu", "device_name": "CPU", "precision": "fp32", "channels_last": True,
                "steps_per_epoch": steps_per_epoch, "total_steps": steps_per_epoch * total_epochs,
                "train_size": train_size, "val_size": 0 if no_val else n_val, "val_source": val_source,
                "normalization": NORMALIZATION}
    if no_val:
        resolved["test_every_epoch"] = True
    if data_dir is not None:
        resolved["data_dir"] = str(Path(data_dir).resolve())
    # val_source "test" exists in version 1 folders only, null only from version 2 on.
    version = {"test": 1, None: 2}.get(val_source, runs.FORMAT_VERSION)
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, {
        "format_version": version, "run_id": run_dir.name, "created": now,
        "config": {"depth": depth, "block": "basic", "shortcut": shortcut, "epochs": total_epochs, "batch_size": batch,
                   "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "schedule": "cosine", "warmup_epochs": 0.0,
                   "seed": seed, "split_seed": 0, "sweep": sweep, "device": "cpu", "precision": "fp32",
                   "channels_last": None, "data_dir": None, "runs_dir": str(runs_dir), "name": name,
                   "val_size": 0 if val_source in ("test", None) else n_val, "subset": train_size, "preset": "",
                   "dataset": dataset},
        "resolved": resolved,
        "classes": list(classes), **superclasses,
        "model": {"name": model_name(depth, shortcut), "params": 269722, "macs": 40551040},
        "versions": {"python": "3", "torch": "x", "torchvision": "x", "numpy": np.__version__, "resnet_core": "0"},
    })
    rows = []
    t = now
    for e in range(1, epochs_done + 1):
        for s in range(1, steps_per_epoch + 1, 5):
            step = (e - 1) * steps_per_epoch + s
            t += 0.5
            rows.append({"type": "step", "epoch": e, "step": step, "loss": 2.0 / (1 + step / 10),
                         "acc": min(0.95, 0.1 + step / 50) + seed / 100, "lr": 0.1, "images_per_s": 500.0, "time": t})
            rows.append({"type": "system", "epoch": e, "step": step, "cpu_percent": 45.0, "machine_cpu_percent": 60.0,
                         "cores": 2, "ram_mb": 900.0 + step, "machine_ram_percent": 30.0, "time": t})
        acc = min(0.95, 0.3 + 0.15 * e) + seed / 100
        row = {"type": "epoch", "epoch": e, "step": e * steps_per_epoch, "train_loss": 1.5 / e,
               "train_acc": acc, "val_loss": 1.6 / e, "val_acc": acc - 0.05, "lr": 0.1 / e,
               "epoch_seconds": 5.0, "eval_seconds": 1.0, "images_per_s": 480.0, "peak_memory_mb": 321.0, "time": t}
        split, source = ("test", "test") if no_val else ("val", val_source)
        p = fake_predictions(n_val, len(classes), accuracy=acc - 0.05, seed=e, source_size=source_size,
                             source_labels=source_labels[source], image_seed=0)
        if no_val:
            row.update(val_loss=None, val_acc=None, test_loss=1.7 / e,
                       test_acc=float((p["labels"] == p["preds"]).mean()))
        rows.append(row)
        runs.save_predictions(run_dir, split, e, **p)
        cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(cm, (p["labels"], p["preds"]), 3)
        runs.save_predictions(run_dir, "train", e, confusion=cm)
    test = state == "completed" if test is None else test
    test_acc = None
    if test and epochs_done and no_val:
        # The final evaluation is of the model the last monitoring evaluation saw: the same numbers.
        test_acc = rows[-1]["test_acc"]
        rows.append({"type": "test", "epoch": epochs_done, "test_loss": rows[-1]["test_loss"],
                     "test_acc": test_acc, "time": t})
    elif test and epochs_done:
        p = fake_predictions(n_val, len(classes), accuracy=0.8, seed=99, source_size=source_size,
                             source_labels=source_labels["test"])
        runs.save_predictions(run_dir, "test", epochs_done, **p)
        test_acc = float((p["labels"] == p["preds"]).mean())
        rows.append({"type": "test", "epoch": epochs_done, "test_loss": 0.6, "test_acc": test_acc, "time": t})
    (run_dir / runs.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    if with_checkpoint and epochs_done:
        (run_dir / runs.LAST_CHECKPOINT).write_bytes(b"not a real checkpoint")
    best = max((r["val_acc"] for r in rows if r["type"] == "epoch" and r["val_acc"] is not None), default=None)
    status = runs.StatusRecord(
        format_version=version, state=state, pid=pid if pid is not None else 999_999_999,
        pid_start=runs.process_start_time(pid), epoch=epochs_done, step=epochs_done * steps_per_epoch,
        total_epochs=total_epochs, total_steps=total_epochs * steps_per_epoch, created_at=now, started_at=now + 0.1,
        updated_at=t, finished_at=None if state in runs.ACTIVE_STATES else t, elapsed_before_s=0.0,
        best_val_acc=best, best_epoch=epochs_done if best is not None else None, test_acc=test_acc, error=error,
        phase=phase, phase_started_at=t - 10 if phase else None,
        phase_done=phase_done if phase in runs.EVALUATION_PHASES else None,
        phase_total={"validating": n_val, "testing": 2 * n_val}.get(phase), first_step_s=first_step_s)
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, status)  # the record the trainer's RunWriter writes
    (run_dir / runs.LOG_FILE).write_text("\n".join(f"log line {i}" for i in range(60))
                                         + (f"\nTraceback (most recent call last):\nRuntimeError: {error}\n"
                                            if error else "\n"))
    return run_dir


def write_checkpoint(run_dir: Path, name: str = runs.LAST_CHECKPOINT, seed: int = 0, epoch: int = 1) -> dict:
    """A real checkpoint of the run's recorded model (freshly initialised from seed) at name;
    returns its model state dict. Imports torch, so only the tests that load models pay it."""
    import torch

    from resnet_core.models import build_model

    record = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    config = record["config"]
    torch.manual_seed(seed)
    model = build_model(config["depth"], config["block"], config["shortcut"], len(record.get("classes", CLASSES)),
                        config.get("preact", False))
    # Non-trivial BatchNorm statistics, so that a model that skips them would be caught.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    state = {"format_version": runs.FORMAT_VERSION, "model": model.state_dict(), "epoch": epoch, "step": 10 * epoch}
    torch.save(state, run_dir / name)
    return state["model"]


# ----------------------------------------------------------------------------- broken run folders

def _rewrite_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _replace_with_symlink(path: Path) -> None:
    target = path.with_name("elsewhere.json")
    path.rename(target)
    path.symlink_to(target.name)


# Each makes a good run folder (from make_run) one that no reader can read as the format says.
UNREADABLE_CASES = {
    "config binary": lambda d: (d / runs.CONFIG_FILE).write_bytes(b"\x00\xff\xfe\x89PNG\r\n"),
    "config not UTF-8": lambda d: (d / runs.CONFIG_FILE).write_bytes('{"x": "caf\xe9"}'.encode("latin-1")),
    "config truncated": lambda d: (d / runs.CONFIG_FILE).write_text('{"created": 1, "config": {"dep'),
    "config a list": lambda d: (d / runs.CONFIG_FILE).write_text("[1, 2, 3]"),
    "config a number": lambda d: (d / runs.CONFIG_FILE).write_text("42"),
    "config a string": lambda d: (d / runs.CONFIG_FILE).write_text('"a run"'),
    "config nested too deeply": lambda d: (d / runs.CONFIG_FILE).write_text("[" * 100_000),
    "config too large": lambda d: (d / runs.CONFIG_FILE).write_text('{"x": "' + "y" * runs.MAX_JSON_BYTES + '"}'),
    "config a folder": lambda d: _replace_with_folder(d / runs.CONFIG_FILE),
    "config a symlink": lambda d: _replace_with_symlink(d / runs.CONFIG_FILE),
    "config section a list": lambda d: _rewrite_json(d / runs.CONFIG_FILE, config=[20, "basic"]),
    "classes not names": lambda d: _rewrite_json(d / runs.CONFIG_FILE, classes=[1, 2]),
    "created not a time": lambda d: _rewrite_json(d / runs.CONFIG_FILE, created="yesterday"),
    "format_version a string": lambda d: _rewrite_json(d / runs.CONFIG_FILE, format_version="2"),
    "status binary": lambda d: (d / runs.STATUS_FILE).write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF"),
    "status a list": lambda d: (d / runs.STATUS_FILE).write_text('["running"]'),
    "status a number": lambda d: (d / runs.STATUS_FILE).write_text("3.5"),
    "status a string": lambda d: (d / runs.STATUS_FILE).write_text('"running"'),
    "status a folder": lambda d: _replace_with_folder(d / runs.STATUS_FILE),
    "status a FIFO": lambda d: ((d / runs.STATUS_FILE).unlink(), os.mkfifo(d / runs.STATUS_FILE)),
    "pid a string": lambda d: _rewrite_json(d / runs.STATUS_FILE, state="running", pid="1234"),
    "pid 2**40": lambda d: _rewrite_json(d / runs.STATUS_FILE, state="running", pid=2 ** 40),
    "pid negative": lambda d: _rewrite_json(d / runs.STATUS_FILE, state="running", pid=-1),
    "pid a bool": lambda d: _rewrite_json(d / runs.STATUS_FILE, state="running", pid=True),
    "pid 0": lambda d: _rewrite_json(d / runs.STATUS_FILE, state="running", pid=0),
    "pid_start a string": lambda d: _rewrite_json(d / runs.STATUS_FILE, pid_start="yesterday"),
    "state a list": lambda d: _rewrite_json(d / runs.STATUS_FILE, state=["running"]),
    "state unknown": lambda d: _rewrite_json(d / runs.STATUS_FILE, state="exploded"),
}


def _save_raw(run_dir: Path, split: str, epoch: int, data: bytes) -> None:
    runs.prediction_path(run_dir, split, epoch).write_bytes(data)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _good_val(**changes) -> bytes:
    return _npz(**{**fake_predictions(50), **changes})


# Each breaks epoch 1 of one split's predictions of a good run (from make_run: 10 classes).
BAD_PREDICTIONS = {
    "truncated": ("val", lambda d: _save_raw(d, "val", 1, _good_val()[:300])),
    "not a zip": ("val", lambda d: _save_raw(d, "val", 1, b"hello, not numpy")),
    "a single .npy array": ("val", lambda d: _save_raw(d, "val", 1, _npy(np.arange(5)))),
    "a pickled object": ("val", lambda d: _save_raw(d, "val", 1, _npz(labels=np.array([{"a": 1}], dtype=object)))),
    "no labels": ("val", lambda d: _save_raw(d, "val", 1, _npz(**{k: v for k, v in fake_predictions(50).items()
                                                                   if k != "labels"}))),
    "labels above the classes": ("val", lambda d: _save_raw(d, "val", 1, _good_val(labels=np.full(50, 12)))),
    "negative preds": ("val", lambda d: _save_raw(d, "val", 1, _good_val(preds=np.full(50, -1)))),
    "topk classes above the classes": ("val", lambda d: _save_raw(d, "val", 1, _good_val(
        topk_classes=np.full((50, 5), 10)))),
    "lengths differ": ("val", lambda d: _save_raw(d, "val", 1, _good_val(preds=np.zeros(49, dtype=np.int64)))),
    "labels of floats": ("val", lambda d: _save_raw(d, "val", 1, _good_val(labels=np.zeros(50)))),
    "labels 2-D": ("val", lambda d: _save_raw(d, "val", 1, _good_val(labels=np.zeros((50, 2), dtype=np.int64)))),
    "confusion the wrong shape": ("train", lambda d: _save_raw(d, "train", 1, _npz(
        confusion=np.ones((3, 3), dtype=np.int64)))),
    "confusion a scalar": ("train", lambda d: _save_raw(d, "train", 1, _npz(confusion=np.int64(5)))),
    "a folder": ("val", lambda d: (runs.prediction_path(d, "val", 1).unlink(),
                                   runs.prediction_path(d, "val", 1).mkdir())),
    "a symlink": ("val", lambda d: (runs.prediction_path(d, "val", 1).unlink(),
                                    runs.prediction_path(d, "val", 1).symlink_to(
                                        runs.prediction_path(d, "val", 2)))),
}


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def make_unreadable_run(runs_dir: Path, case: str, **kwargs) -> Path:
    run_dir = make_run(runs_dir, case, **kwargs)
    UNREADABLE_CASES[case](run_dir)
    return run_dir
