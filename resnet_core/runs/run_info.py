"""What a reader knows about one run folder: :class:`RunInfo` and the run states."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from .annotations import Annotations
from .layout import model_name
from .layout import ACTIVE_STATES, CHECKPOINTS, CRASHED, FAILED_TO_START, LAST_CHECKPOINT, RESUMABLE_STATES, UNREADABLE
from .values import as_int


class State(str, Enum):
    """A run's state: the six that status.json holds, and three that readers derive. Members
    equal their plain strings (``State.RUNNING == "running"``)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    DIVERGED = "diverged"
    CRASHED = CRASHED  # derived by readers, never written
    FAILED_TO_START = FAILED_TO_START  # derived by readers, never written
    UNREADABLE = UNREADABLE  # derived by readers, never written

    def __str__(self) -> str:
        return self.value


STATES = tuple(s.value for s in State if s not in (State.CRASHED, State.FAILED_TO_START, State.UNREADABLE))
# (STATES: what status.json may say)


def _record(config: Any, key: str) -> dict:
    """config[key] if config is a dict and that is a dict, else {}."""
    value = config.get(key) if isinstance(config, dict) else None
    return value if isinstance(value, dict) else {}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


@dataclass
class RunInfo:
    """What a reader knows about one run folder. Read its config.json through the typed
    properties (train_config, resolved, model_name, classes), which never raise for odd values."""

    path: Path
    run_id: str
    state: str  # a written state, "crashed", "failed to start" or "unreadable"
    config: dict = field(default_factory=dict)  # {} when unreadable
    status: dict = field(default_factory=dict)  # {} when status.json is missing or unreadable
    problem: str | None = None  # why the folder is unreadable (one line), else None
    note: str | None = None  # set when the folder's format is not FORMAT_VERSION: why it is not resumed
    read_only: bool = False  # written in a newer format: shown, never resumed into or cleaned up
    warning: str | None = None  # what a page should say beside the run's state (e.g. clock skew), else None
    annotations: Annotations = field(default_factory=Annotations)  # its display name, tags and note

    @property
    def title(self) -> str:
        """The run as a user named it, "name (id)", else its id (the folder's name, always unique)."""
        return f"{self.annotations.name} ({self.run_id})" if self.annotations.name else self.run_id

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def can_resume(self) -> bool:
        return (self.state in RESUMABLE_STATES and self.note is None
                and (self.path / LAST_CHECKPOINT).exists())

    @property
    def checkpoints(self) -> dict[str, str]:
        """The checkpoints this run holds, by the name a user picks them by ("best", "last")."""
        return {which: name for which, name in CHECKPOINTS.items() if os.path.lexists(self.path / name)}

    @property
    def state_enum(self) -> State | None:
        """state as a State; None for a state that a newer format added."""
        try:
            return State(self.state)
        except ValueError:
            return None

    @property
    def train_config(self) -> dict:
        """The training options config.json records (its "config"); {} when missing."""
        return _record(self.config, "config")

    @property
    def resolved(self) -> dict:
        """What the trainer resolved (device, precision, split sizes, steps); {} until it has."""
        return _record(self.config, "resolved")

    @property
    def world_size(self) -> int:
        """The run's processes (torchrun's ranks); 1 when the record has no usable count."""
        size = self.resolved.get("world_size")
        return as_int(size, 1, 65_536) or 1

    @property
    def model_name(self) -> str:
        """The recorded model name, else "ResNet-<depth>" (or "plain-<depth>") from the config,
        else ""; a value that is not a string shows as its repr."""
        name = _record(self.config, "model").get("name")
        if name is not None and name != "":
            return _as_text(name)
        depth = self.train_config.get("depth")
        return "" if depth is None or depth == "" else model_name(_as_text(depth), self.train_config.get("shortcut"),
                                                                      self.train_config.get("preact") is True)

    @property
    def classes(self) -> list[str]:
        """The class names config.json records, in label order; [] when there are none."""
        classes = self.config.get("classes") if isinstance(self.config, dict) else None
        return [_as_text(c) for c in classes] if isinstance(classes, list) else []

    @property
    def dataset(self) -> str:
        """The dataset the run trained on ("cifar10", "cifar100"); "cifar10" for records
        written before the choice existed, a value that is not a string as its repr."""
        dataset = self.train_config.get("dataset")
        return "cifar10" if dataset is None else _as_text(dataset)

    @property
    def superclasses(self) -> list[str]:
        """CIFAR-100's 20 superclass (coarse) names as config.json records them; [] for a
        dataset without superclasses, or where the record does not hold a list of names."""
        names = self.config.get("superclasses") if isinstance(self.config, dict) else None
        return list(names) if isinstance(names, list) and all(isinstance(n, str) for n in names) else []

    @property
    def superclass_of(self) -> list[int]:
        """Each class's superclass index, in label order (an image's coarse label is
        superclass_of[its label]); [] unless the record holds one valid index per class."""
        mapping = self.config.get("superclass_of") if isinstance(self.config, dict) else None
        n_super, n_classes = len(self.superclasses), len(self.classes)
        valid = (isinstance(mapping, list) and n_super and len(mapping) == n_classes
                 and all(type(i) is int and 0 <= i < n_super for i in mapping))
        return list(mapping) if valid else []
