"""What a run's evaluation numbers are: a validation split carved from the training set,
the test set standing in for one (format 1), or no validation split with the test set
monitored every epoch (format 2), in the words every page, table and chart uses."""

from __future__ import annotations

from dataclasses import dataclass

from .formatting import format_pct
from .runs.values import as_int

VALIDATION = "validation"
TEST_AS_VALIDATION = "test (used as validation)"
NO_VALIDATION = "no validation split"
TEST_MONITORING = "test (monitoring only, never used to pick a checkpoint)"
TEST_FINAL = "test (final)"
SPLIT_NAMES = {"train": "training", "test": "test"}


@dataclass(frozen=True)
class EvaluationLabels:
    """What a run's evaluation numbers are, from its config.json.

    val_source "train": a validation split carved from the training set; "test" (format
    1 only): the test set stood in for validation, so every "validation" number is a test
    number; None (format 2): no validation split, the test set may be evaluated after
    every epoch for monitoring, and nothing picks a checkpoint by accuracy.
    """

    val_source: str | None
    test_every_epoch: bool
    val: str | None  # the name of the per-epoch validation numbers; None where there are none
    best: str  # what the best-validation figure is, or that there is none
    split: str  # the validation split in a few words, for tables
    test_epochs: str = TEST_MONITORING  # the per-epoch test numbers
    test_final: str = TEST_FINAL  # the test evaluation after the last epoch

    @property
    def has_validation(self) -> bool:
        return self.val_source is not None

    def split_name(self, split: str) -> str:
        """How a predictions split (val, train, test) is named on the pages."""
        return (self.val or VALIDATION) if split == "val" else SPLIT_NAMES[split]

    def best_text(self, acc: float | None, epoch: int | None) -> str:
        """'best val acc 70.00% (epoch 3)', or that the run has no validation split."""
        if not self.has_validation:
            return NO_VALIDATION
        return f"{self.best} {format_pct(acc)}" + (f" (epoch {epoch})" if acc is not None and epoch else "")


def _val_source(config_record: dict) -> str | None:
    resolved = config_record.get("resolved") or {}
    if "val_source" in resolved and resolved["val_source"] in ("train", "test", None):
        return resolved["val_source"]
    # Not resolved yet (the trainer completes config.json once the data is loaded): val
    # size 0 meant "validate on the test set" in format 1 and "no validation split" since.
    if (config_record.get("config") or {}).get("val_size") == 0:
        version = config_record.get("format_version")
        return "test" if as_int(version, 2, 2 ** 31) is None else None
    return "train"


def evaluation_labels(config_record: dict | None) -> EvaluationLabels:
    """The labels of a run's validation and test numbers (config_record: its config.json)."""
    config_record = config_record or {}
    source = _val_source(config_record)
    every_epoch = (config_record.get("resolved") or {}).get("test_every_epoch") is True
    if source == "test":
        return EvaluationLabels(source, every_epoch, TEST_AS_VALIDATION, "best test acc (used as validation)",
                                TEST_AS_VALIDATION)
    if source is None:
        return EvaluationLabels(source, every_epoch, None, NO_VALIDATION, NO_VALIDATION)
    return EvaluationLabels(source, every_epoch, VALIDATION, "best val acc", "validation split")
