"""What the Monitor page says about a run, as text: the phase bar's words, the two accuracy
figures (each saying what it is and from which epoch), and the run's settings on one line.
What each evaluation number is comes from :mod:`resnet_core.evaluation_labels`; numbers
become words through :mod:`resnet_core.formatting`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import runs
from ..evaluation_labels import TEST_AS_VALIDATION, EvaluationLabels, evaluation_labels
from ..formatting import format_pct, md_escape
from ..runs import PLAIN
from ..progress import Progress
from ..runs.values import as_count
from .runs_table import setting_text

PHASE_TEXT = {
    "loading data": "loading the data onto the device…",
    "building model": "building the model and its first step (compiling included)…",
    "validating": "validating",
    "testing": "testing",
    "saving": "saving predictions and checkpoints…",
}


def phase_bar(progress: Progress) -> tuple[str, float] | None:
    """The monitor's second bar while an active run does something other than training
    steps (or waiting in the queue): its text and fraction done. None otherwise."""
    text = PHASE_TEXT.get(progress.phase or "")
    if text is None:
        return None
    if progress.phase_total:
        # status.json counts an epoch once its checkpoint is saved: all counted, the final test runs.
        of = "the final weights" if progress.epoch >= progress.total_epochs else f"epoch {progress.epoch + 1}"
        return (f"{text} {of}: {progress.phase_done:,} of {progress.phase_total:,} images",
                progress.phase_done / progress.phase_total)
    return text, 0.0


@dataclass(frozen=True)
class MetricText:
    label: str  # short: a metric's label is cut to one line
    value: str
    help: str  # the full sentence: what the number is


def accuracy_metrics(labels: EvaluationLabels, progress: Progress) -> tuple[MetricText, MetricText]:
    """The monitor's two accuracy figures, each saying what it is and from which epoch:
    the best validation accuracy (or that there is none), and the test accuracy (the
    final evaluation once there is one, else the latest monitoring evaluation)."""
    epoch = f" (epoch {progress.best_epoch})" if progress.best_epoch else ""
    value = format_pct(progress.best_val_acc)
    if labels.val_source == "test":
        best = MetricText(f"Best test acc{epoch}", value,
                          f"Best test acc, {TEST_AS_VALIDATION}: this run had no validation split of its own and "
                          "chose its best epoch (best.pt) on the test set, so this number is optimistic.")
    elif not labels.has_validation:
        # Not "trains on every training image": a --subset run (1,000 train) trains on fewer.
        best = MetricText("Validation", "none", "No validation split: no training images are held out, and the "
                                                "run picks no checkpoint by accuracy.")
    else:
        best = MetricText(f"Best val acc{epoch}", value, "Best val acc: the best accuracy on the validation split "
                                                         "(held-out training images) over the epochs so far.")
    if progress.test_acc is not None:
        test = MetricText(f"Final test acc (epoch {progress.test_epoch})", format_pct(progress.test_acc),
                          f"Final test acc: the test set evaluated once after the last epoch "
                          f"({progress.test_epoch}), with the weights training ended on.")
    elif progress.monitor_test_acc is not None:
        test = MetricText(f"Test acc (epoch {progress.monitor_test_epoch}, monitor)",
                          format_pct(progress.monitor_test_acc),
                          f"Test acc: {labels.test_epochs}, after epoch {progress.monitor_test_epoch}.")
    else:
        when = "after every epoch, for monitoring only" if labels.test_every_epoch else "once, after the last epoch"
        test = MetricText("Test acc", "—", f"Test acc: the test set is evaluated {when}.")
    return best, test


def speed_help(progress: Progress) -> str:
    """What the monitor's images/s figure is: the latest steps' speed while the run trains,
    else the average of the last epoch that finished (a run stopped 12 steps into epoch 2
    shows epoch 1's, which "the latest steps" misnamed)."""
    of = ("Training speed of the latest steps" if progress.speed_epoch is None
          else f"Average training speed of epoch {progress.speed_epoch}, the last that finished")
    return (f"{of}. Under it: this session's first step, compiling included, which would otherwise pass for a "
            "slow speed.")


def run_caption(info: runs.RunInfo) -> str:
    """The monitor's one-line description of a run's settings, as markdown-safe text."""
    cfg, resolved = info.train_config, info.resolved
    shortcut, batch, lr, schedule = (setting_text(cfg.get(k)) for k in ("shortcut", "batch_size", "lr", "schedule"))
    device = setting_text(resolved.get("device_name") or resolved.get("device") or cfg.get("device"))
    # A setting the folder does not record is left out (it read "batch None", and a device
    # missing raised TypeError).
    parts = [
        info.model_name or "ResNet-?",
        setting_text(cfg.get("block")),
        "no shortcuts" if shortcut == PLAIN else shortcut and f"option {shortcut}",
        batch and f"batch {batch}",
        (lr or schedule) and " ".join(["lr"] + [x for x in (lr, schedule) if x]),
        device and device + (f" × {info.world_size} processes (torchrun)" if info.world_size > 1 else ""),
        setting_text(resolved.get("precision") or cfg.get("precision")),
    ]
    labels = evaluation_labels(info.config if isinstance(info.config, dict) else {})
    train_size = as_count(resolved.get("train_size"), 0)
    if train_size:
        parts.append(f"{train_size:,} train"
                     + (f" / {as_count(resolved.get('val_size'), 0):,} val" if labels.has_validation else ""))
    if labels.val_source != "train":
        parts.append(labels.split)
    return " · ".join(md_escape(p) for p in parts if p)
