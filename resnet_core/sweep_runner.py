"""A sweep's supervisor: the process that starts its points' trainers through an executor,
at most ``parallel`` at once, watches them end, forwards a stop, and records each point's
run folder and fate in the sweep's record (its one writer while it holds the claim).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from . import runs
from .config import TrainConfig
from .config_flags import config_argv
from .executors import RAY_MISSING, LocalExecutor
from .stop_request import StopRequested
from .runs.sweep_checks import START_FAILURE_CHARS
from .sweep_args import parse
from .sweep_grid import label, run_name
from .sweep_options import RECORD_OPTIONS
from .train_checks import Refused

POLL_S = 0.5  # how often the sweep looks at its trainers


class Sweep:
    """The sweep process: launches, watches and resumes its points' trainers through its
    executor (resnet_core.executors: local children, or Ray tasks), and is the one writer
    of the record while it holds the claim (runs.claim_sweep)."""

    def __init__(self, runs_dir: Path, record: dict, executor=None):
        self.runs_dir, self.record = runs_dir.resolve(), record
        self.name = record["name"]
        self.executor = executor or LocalExecutor(record)
        self.base_device = parse(record["argv"]).cfg.device  # a point's unless it varies the device
        self.stop = StopRequested()
        # point -> our trainer (a Popen, or a ray_executor.RayTrial); None: an earlier sweep process's
        self.trainers: dict[int, subprocess.Popen | None] = {}

    def save(self, **changes) -> None:
        self.record.update(changes)
        runs.atomic_write_json(runs.sweep_path(self.runs_dir, self.name), self.record)

    def run_dir(self, i: int) -> Path | None:
        run = self.record["points"][i]["run"]
        return self.runs_dir / run if run else None

    def work(self) -> list[tuple[int, str]]:
        """(point, what to do) for every point that has not finished: "launch" (never
        started, or its trainer died before writing config.json: failed to start, relaunched
        into a fresh folder so that the failed one keeps its last words), "resume" (stopped,
        failed or crashed) or "wait" (still active under an earlier sweep process)."""
        todo = []
        for i in range(len(self.record["points"])):
            run_dir = self.run_dir(i)
            info = runs.read_run(run_dir) if run_dir is not None else None
            if info is None and run_dir is not None and runs.run_dir_busy(run_dir):
                todo.append((i, "wait"))  # an earlier sweep's trainer, claimed but not yet written config.json
            elif info is None or info.state == runs.FAILED_TO_START:
                todo.append((i, "launch"))
            elif info.state in runs.RESUMABLE_STATES:
                todo.append((i, "resume"))
            elif info.is_active:
                todo.append((i, "wait"))
            # completed runs are kept; diverged and unreadable ones stay failures
        return todo

    def device(self, i: int) -> str:
        """Point i's device spec."""
        return self.record["points"][i]["values"].get("device", self.base_device)

    def start(self, i: int, action: str) -> subprocess.Popen | None:
        """Start point i's trainer (action as in work()); None for a run that is waited on."""
        if action == "wait":
            return None
        args = self.trainer_args(i, action)
        return self.executor.start(args, self.run_dir(i) / runs.CONSOLE_FILE, self.device(i))

    def trainer_args(self, i: int, action: str) -> list[str]:
        """Point i's trainer arguments for a launch or a resume, the same under every
        executor (each adds its launch options); a launch first records its run folder."""
        point = self.record["points"][i]
        if action == "resume":
            args = ["--resume", str(self.run_dir(i))]
        else:
            run_dir = self.run_dir(i)
            if run_dir is None or not _empty(run_dir):
                run_dir = runs.new_run_dir(self.runs_dir, self.run_name(i))
                point["run"] = run_dir.name
            point.pop("start_failure", None)  # a relaunch after one
            self.save()  # before the trainer starts: a crash never loses track of it
            args = [*self.record["argv"], *config_argv(TrainConfig(**point["values"]), set(point["values"])),
                    "--sweep", self.name, "--name", self.run_name(i),
                    "--runs-dir", str(self.runs_dir), "--run-dir", str(run_dir)]
        return args

    def run_name(self, i: int) -> str:
        """Point i's run name: after its values (sweep_grid.run_name)."""
        return run_name(self.name, self.record["points"][i]["values"])

    def forget_unstarted(self, i: int) -> bool:
        """After point i's trainer ended: if its run folder is still empty, the trainer never
        started (a Ray task cancelled while it waited for resources); the point goes back to
        not launched and its folder is removed. A local trainer always has its console.log."""
        run_dir = self.run_dir(i)
        try:
            run_dir.rmdir()  # only an empty folder: checked by the file system, also a shared one
        except OSError:
            return False
        self.record["points"][i]["run"] = None
        self.save()
        return True

    def ended(self, i: int) -> str:
        """Point i's state once its trainer has ended. One that ended before writing
        status.json or config.json (no run for runs.read_run) failed to start: the record
        says so, with the trainer's last console line, so that no reader takes it for
        starting while this sweep goes on."""
        info = runs.read_run(self.run_dir(i))
        if info is not None:
            return info.state
        reason = runs.last_output_line(self.run_dir(i)) or "its trainer exited before writing config.json"
        self.record["points"][i]["start_failure"] = reason[:START_FAILURE_CHARS]
        self.save()
        return f"failed to start: {reason}"

    def stop_trainers(self) -> None:
        """SIGTERM to every trainer of the sweep: ours, and those of an earlier sweep process
        it waits on; each finishes its step, saves last.pt and says stopped."""
        for i, proc in self.trainers.items():
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                continue
            info = runs.read_run(self.run_dir(i))
            if info is not None and info.is_active:
                runs.signal_trainer(info.status)

    def finished(self, i: int) -> bool:
        """Whether point i's trainer has ended: ours once its process or task has, and its run
        no longer reads active (a Ray task whose worker was killed is reported a moment
        before the trainer, killed with it, is gone)."""
        proc = self.trainers[i]
        if proc is not None and proc.poll() is None:
            return False
        info = runs.read_run(self.run_dir(i))
        if info is None:
            return proc is not None or not runs.run_dir_busy(self.run_dir(i))
        return not info.is_active

    def progress(self, event: str) -> None:
        info = runs.read_sweep(self.runs_dir, self.name, RECORD_OPTIONS)
        counts = ", ".join(f"{n} {c}" for c, n in info.counts.items()) if info else ""
        print(f"[{self.name}] {event} ({counts})", flush=True)

    def run(self) -> int:
        """Run every unfinished point, at most parallel at once; the exit code."""
        self.stop.install()
        self.save(state="running", pid=os.getpid(), pid_start=runs.process_start_time(os.getpid()),
                  finished_at=None)
        todo = self.work()
        points = self.record["points"]
        forwarded = False
        while todo or self.trainers or self.more():
            if self.stop and not forwarded:  # launch nothing more; the trainers finish their step and save last.pt
                todo.clear()
                self.stop_trainers()
                forwarded = True
            while (todo or self.more()) and len(self.trainers) < self.record["parallel"]:
                i, action = todo.pop(0) if todo else self.ask()
                self.trainers[i] = self.start(i, action)
                verb = {"launch": "started", "resume": "resumed", "wait": "waiting for"}[action]
                self.progress(f"{verb} {label(points[i]['values'])} in {points[i]['run']}")
            for i in list(self.trainers):
                self.watch(i)
            for i in [i for i in self.trainers if self.finished(i)]:
                problem = getattr(self.trainers.pop(i), "problem", None)  # what Ray says, if anything
                state = "not started" if self.forget_unstarted(i) else self.ended(i)
                self.progress(f"{label(points[i]['values'])}: {state}" + (f" ({problem})" if problem else ""))
            time.sleep(POLL_S)
        return self.finish()

    def more(self) -> bool:
        """Whether points beyond the record's are still to be asked for: a grid has them all."""
        return False

    def ask(self) -> tuple[int, str]:
        """A new point and its action (a search's next trial); a grid never asks."""
        raise NotImplementedError

    def watch(self, i: int) -> None:
        """Look at point i's running trainer once a poll (a search feeds its pruner here)."""

    def devices(self) -> list[str]:
        """Every point's device spec, for the executor's checks."""
        return [self.device(i) for i in range(len(self.record["points"]))]

    def finish(self) -> int:
        info = runs.read_sweep(self.runs_dir, self.name, RECORD_OPTIONS)
        failed = [p for p in info.points if p.category != "done"]  # a pruned trial is done

        state = "stopped" if self.stop else ("failed" if failed else "completed")
        self.save(state=state, finished_at=time.time())
        if failed:
            print(summary(failed), flush=True)
        pruned = sum(p.state == "pruned" for p in info.points)  # a search's
        print(f"[{self.name}] {state}: {info.counts['done'] - pruned} of {len(info.points)} runs completed"
              + (f", {pruned} pruned" if pruned else ""), flush=True)
        if self.stop:
            return 128 + self.stop.signal
        return 1 if failed else 0


def _empty(run_dir: Path) -> bool:
    """A folder a trainer may start in with --run-dir: nothing but its console.log."""
    return run_dir.is_dir() and all(p.name == runs.CONSOLE_FILE for p in run_dir.iterdir())


def summary(points: list[runs.SweepPoint]) -> str:
    """A table of the points that did not complete: point, run, state, error."""
    rows = [("point", "run", "state", "error")]
    rows += [(label(p.values), p.run_dir.name if p.run_dir else "-", p.state, p.error) for p in points]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[3] for r in rows)


def make_executor(record: dict):
    """The executor the record names; Ray is imported here, and only for a Ray sweep."""
    if record["executor"] == "local":
        return LocalExecutor(record)
    try:
        from .ray_executor import RayExecutor
    except ImportError as e:
        raise Refused(RAY_MISSING if e.name == "ray" else f"--executor ray: Ray cannot be imported: {e}") from None
    except Exception as e:  # installed but broken (a build for another Python or protobuf): one line too
        raise Refused(f"--executor ray: Ray cannot be imported: {type(e).__name__}: {e}") from None
    return RayExecutor(record)
