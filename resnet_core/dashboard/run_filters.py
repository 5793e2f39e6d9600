"""Narrowing the Runs table: a :class:`RunFilter` (text, tags, states, sweeps, models, and the
values of one config field) and the options each of its pickers offers, read from the runs
listed. Config values are compared as :func:`field_text` writes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .. import runs

NOT_RECORDED = "(not recorded)"  # a config field the run's config.json does not hold
NO_SWEEP = ""  # the sweep of a run launched on its own (config.json's sweep "")


def field_text(value: Any) -> str:
    """A config value as one comparable text: strings as they are, anything else as JSON
    (true, null, 0.1, [2.5, 5.0]), so that 1 and 1.0, or "1" and 1, stay apart only where
    config.json tells them apart."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):  # not from a JSON file; kept readable all the same
        return repr(value)


def config_value(info: runs.RunInfo, field: str) -> str:
    """The run's value of a config field as field_text writes it; NOT_RECORDED where it has none."""
    config = info.train_config
    return field_text(config[field]) if field in config else NOT_RECORDED


def sweep_of(info: runs.RunInfo) -> str:
    """The sweep the run belongs to (NO_SWEEP for none), as text."""
    sweep = info.train_config.get("sweep")
    return NO_SWEEP if sweep is None else field_text(sweep)


def model_of(info: runs.RunInfo) -> str:
    """The run's model as the Runs table names it ("?" where unknown)."""
    return info.model_name or "?"


@dataclass(frozen=True)
class RunFilter:
    """Which runs the table keeps: each part that is set must hold (an empty part keeps every
    run). text: in the run's name, id or note (case ignored); tags: any of them; states,
    sweeps, models: one of them; values: the config `field`'s value is one of them."""

    text: str = ""
    tags: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    sweeps: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    field: str | None = None
    values: tuple[str, ...] = ()

    def keeps(self, info: runs.RunInfo) -> bool:
        notes = info.annotations
        needle = self.text.strip().casefold()
        return ((not needle or any(needle in s.casefold() for s in (notes.name, info.run_id, notes.note)))
                and (not self.tags or bool(set(self.tags) & set(notes.tags)))
                and (not self.states or info.state in self.states)
                and (not self.sweeps or sweep_of(info) in self.sweeps)
                and (not self.models or model_of(info) in self.models)
                and (not self.field or not self.values or config_value(info, self.field) in self.values))

    @property
    def active(self) -> bool:
        """Whether it leaves out any run at all."""
        return bool(self.text.strip() or self.tags or self.states or self.sweeps or self.models
                    or (self.field and self.values))


def filter_runs(infos: Iterable[runs.RunInfo], run_filter: RunFilter) -> list[runs.RunInfo]:
    """The runs the filter keeps, in their order."""
    return [info for info in infos if run_filter.keeps(info)]


def _ordered(texts: Iterable[str]) -> list[str]:
    """Distinct texts, numbers by value first (0.01 before 0.1 before 1e-05 would not be), then the rest by name."""
    def key(text: str) -> tuple:
        try:
            return (0, float(text), text)
        except ValueError:
            return (1, 0.0, text.casefold())
    return sorted(set(texts), key=key)


def tag_options(infos: Sequence[runs.RunInfo]) -> list[str]:
    return _ordered(tag for info in infos for tag in info.annotations.tags)


def state_options(infos: Sequence[runs.RunInfo]) -> list[str]:
    return _ordered(info.state for info in infos)


def sweep_options(infos: Sequence[runs.RunInfo]) -> list[str]:
    return _ordered(sweep_of(info) for info in infos)


def model_options(infos: Sequence[runs.RunInfo]) -> list[str]:
    return _ordered(model_of(info) for info in infos)


def config_fields(infos: Sequence[runs.RunInfo]) -> list[str]:
    """Every config field any of the runs records, by name."""
    return sorted({field for info in infos for field in info.train_config})


def field_options(infos: Sequence[runs.RunInfo], field: str) -> list[str]:
    """The values the runs hold for a config field (NOT_RECORDED among them where one has none)."""
    return _ordered(config_value(info, field) for info in infos)
