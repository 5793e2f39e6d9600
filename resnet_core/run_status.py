"""status.json and config.json as the trainer process of one run writes them around its
training (:class:`RunStatus`): the phases, the queued start (a resumed run's earlier
training time and changed settings), the config record with the versions and nodes it
ran on, and the final state with the one line and exit code a failure ends in (the
format: resnet_core/runs/folder_format.py)."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import platform
import time
import traceback

import numpy as np
import torch

from . import __version__, distributed, runs
from .cifar import DataError, resolve_data_dir
from .config import Plan, TrainConfig
from .distributed import Group
from .models import describe_model
from .runs.values import as_float
from .step import Trainer
from .train_log import trace_log

log = logging.getLogger("resnet_core.train")


class Diverged(Exception):
    pass


class RunStatus:
    """What a run's status.json and config.json say, written through its writer (rank 0's
    RunWriter; a PeerWriter, which writes nothing, on the other ranks)."""

    def __init__(self, writer: runs.RunWriter | runs.PeerWriter, cfg: TrainConfig, labels: dict | None = None):
        """labels: a new run's launch tags and note, config.json's top-level "tags" and "note"
        (beside the training options, not among them: no sweep varies or compares them)."""
        self.writer, self.cfg, self.labels = writer, cfg, labels or {}

    def set_phase(self, phase: str | None, total: int | None = None, **changes) -> None:
        """status.json's phase (None once the run has ended) with these other changes; an
        evaluation's progress starts at 0 of `total` images. Entering the phase the run is
        in already changes nothing (its start time stays)."""
        if phase == self.writer.status.get("phase") and total is None and not changes:
            return
        self.writer.set_status(phase=phase, phase_started_at=time.time() if phase else None,
                               phase_done=None if total is None else 0, phase_total=total, **changes)

    def write_config(self, **resolved) -> None:
        new_record = {"run_id": self.writer.run_dir.name, "created": time.time(),
                      "config": dataclasses.asdict(self.cfg),
                      "versions": {"python": platform.python_version(), "torch": torch.__version__,
                                   "torchvision": installed_version("torchvision"), "numpy": np.__version__,
                                   "resnet_core": __version__}, **self.labels}
        self.writer.write_config(new_record, **resolved)

    def record_setup(self, plan: Plan, trainer: Trainer, test_size: int, folder: dict | None = None) -> None:
        """Complete config.json once the data and model are known (test_size: every rank's;
        folder: an image folder's CifarData.source)."""
        cfg, t = self.cfg, trainer
        summary = describe_model(cfg.depth, cfg.block, cfg.shortcut, len(t.classes), cfg.preact,
                                 image_size=cfg.image_size)
        grouping = {"superclasses": t.superclasses, "superclass_of": t.superclass_of} if t.superclasses else {}
        self.writer.config.update(classes=t.classes, **grouping,
                                  model={"name": summary.name, "params": summary.params, "macs": summary.macs})
        self.write_config(
            steps_per_epoch=plan.steps_per_epoch, total_steps=plan.total_steps, max_steps=cfg.max_steps,
            train_size=t.train_loader.num_images, val_size=plan.val_images,
            val_source="train" if t.val_loader is not None else None, test_every_epoch=t.test_every_epoch,
            test_size=test_size, image_size=cfg.image_size, data_dir=str(resolve_data_dir(cfg.data_dir).resolve()),
            normalization=t.stats.as_record(),
            **({"folder": {k: v for k, v in folder.items() if k != "root"}} if folder else {}))

    def start_queued(self, plan: Plan, checkpoint: dict | None, changes: dict[str, list]) -> None:
        """State queued, then config.json; on a resume with the training time of its earlier
        sessions and the settings it changed. OSError where the folder takes no writes."""
        status, now = self.writer.status, time.time()
        # A resumed run keeps the training time of its earlier sessions.
        earlier = as_float(status.get("elapsed_before_s")) or 0.0
        started = as_float(status.get("started_at"))
        if checkpoint is not None and started:
            end = as_float(status.get("finished_at")) or as_float(status.get("updated_at")) or started
            earlier += max(0.0, end - started)
        # Status before config: readers take a folder with config.json but no live status
        # for a crashed run, so that order must never be visible.
        self.set_phase("queued", state="queued", epoch=status.get("epoch", 0), step=status.get("step", 0),
                       total_epochs=plan.epochs, total_steps=plan.total_steps,
                       created_at=status.get("created_at", now), started_at=None, finished_at=None,
                       error=None, elapsed_before_s=earlier, first_step_s=None)
        if changes:  # the record holds the settings the run goes on with, and when they changed
            done = checkpoint or {}
            self.writer.config["config"] = dataclasses.asdict(self.cfg)
            self.writer.config.setdefault("resumed_with", []).append(
                {"at": now, "epoch": done.get("epoch", 0), "step": done.get("step", 0), "changes": changes})
        self.write_config()

    def failure_exit(self, e: Exception, group: Group) -> int:
        """The exit code of a run that raised e, with its one line on stderr and the final
        state written (none when another process of the run is gone). Called while handling e."""
        if isinstance(e, Diverged):
            log.error("%s%s", e, self.end("diverged", str(e)))
            return 3
        if group.world.distributed and distributed.peer_lost(e):
            # The run is not over: the folder keeps saying running, and readers report it
            # crashed once this process is gone; --resume continues from last.pt.
            log.error("another process of this run is gone (%s); stopping without a final state: the run "
                      "reads as crashed, and --resume continues from its last checkpoint", str(e)[:300])
            return 1
        if isinstance(e, OSError) and e.filename:  # a full disk, a folder made unwritable: no bug to trace
            message = f"cannot write {e.filename}: {e.strerror}"
            log.error("run failed: %s%s%s", message, self.end("failed", message), self.resume_hint())
            return 1
        message = str(e) if isinstance(e, (DataError, ValueError)) else f"{type(e).__name__}: {e}"
        trace_log.error("%s", traceback.format_exc())
        log.error("run failed: %s (traceback in %s)%s", message, self.writer.run_dir / runs.LOG_FILE,
                  self.end("failed", message))
        return 1

    def end(self, state: str, error: str) -> str:
        """Write the final state where the folder still takes it: '' when written, else what
        the one line on stderr adds about it."""
        try:
            self.set_phase(None, state=state, error=error, finished_at=time.time())
            return ""
        except OSError as e:
            return f"; status.json could not be written either ({e.strerror}): the run reads as crashed once ended"

    def resume_hint(self) -> str:
        return f"; once it can be written, --resume {self.writer.run_dir} continues from the last checkpoint"


def nodes(ranks: list[tuple[str, str, str]]) -> list[dict]:
    """config.json's nodes: each host with its ranks' devices and device names, from every
    rank's (host, device, device name)."""
    by_host: dict[str, dict] = {}
    for host, dev, name in ranks:
        node = by_host.setdefault(host, {"host": host, "devices": [], "device_names": []})
        node["devices"].append(dev)
        node["device_names"].append(name)
    return list(by_host.values())


def installed_version(package: str) -> str:
    """A package's version from its installed metadata, without importing it: importing a
    torchvision built for another torch raises RuntimeError, and recording a version must
    never stop a run."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "missing"
    except Exception as e:  # unreadable metadata
        return f"unknown ({type(e).__name__})"
