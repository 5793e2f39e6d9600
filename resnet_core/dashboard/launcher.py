"""Start, stop, resume and delete trainer processes for the dashboard (no Streamlit here).

Training never runs inside the dashboard's process: :func:`launch` starts
``python -m resnet_core.train`` as its own session (``start_new_session=True``), writing
into a run folder the dashboard created, so a reload, a second tab or a restart of the
server finds the run again through that folder (see :mod:`resnet_core.runs.folder_format`). The trainer
queues itself on a busy device (state ``queued``); :func:`stop` sends it SIGTERM and the
trainer finishes its step, saves ``last.pt`` and says ``stopped``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import runs
from ..config import TrainConfig
from .form import TrainForm, trainer_args, validate
from ..sweep_options import RECORD_OPTIONS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUNS_DIR_ENV = "RESNET_STUDIO_RUNS"
DEFAULT_RUNS_DIR = TrainConfig().runs_dir  # the trainer's own


def resolve_runs_dir(runs_dir: str | os.PathLike | None = None) -> Path:
    """The runs folder: the argument, else $RESNET_STUDIO_RUNS, else ./checkpoints."""
    return Path(runs_dir or os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR).expanduser()


@dataclass(frozen=True)
class Launched:
    run_dir: Path
    pid: int
    pid_start: int | None  # runs.process_start_time(pid): tells the trainer from a later process with its pid
    argv: list[str]


# $RESNET_STUDIO_TRAINER_NICE=0 starts trainers at the dashboard's own priority (the tests
# do: beside other work on a loaded machine, niced test trainers crawled); any other value
# leaves the nice at 10, so a mistyped one cannot stop the dashboard from starting.
TRAINER_NICE = 0 if os.environ.get("RESNET_STUDIO_TRAINER_NICE", "").strip() == "0" else 10


def lower_priority(argv: list[str]) -> list[str]:
    """argv run at nice 10 where `nice` exists: a trainer that takes every core of a small
    CPU machine otherwise slows each page of the dashboard beside it about twofold, and a
    niced one still gets all the cycles the dashboard leaves. (`nice` execs the command,
    so the pid is the trainer's.) Started in its own session, it also needs
    :func:`lower_session_priority`."""
    return ["nice", "-n", str(TRAINER_NICE), *argv] if TRAINER_NICE and shutil.which("nice") else argv


# Where Linux groups processes by session (CONFIG_SCHED_AUTOGROUP, on by default in Ubuntu
# and Fedora and on this 2-core machine), each session's group gets an equal share of the
# CPU, and a process's nice counts only inside its group: a trainer in its own session
# (start_new_session) at nice 10 competed with the dashboard and the browser as an equal.
# With its group at nice 10 too, page loads beside a CPU ResNet-20 run (another tab on its
# live Monitor, 200 runs, headless Chromium, medians of 12 loads in alternating blocks)
# went from 0.92 to 0.79 s (Analyze), 0.87 to 0.66 s (Explain) and 0.90 to 0.60 s (Train).
def lower_session_priority(pid: int) -> bool:
    """Put the autogroup of pid's session at nice 10 (see above); False where the kernel has
    no autogroups or refuses. Raising a nice value needs no privilege."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(TRAINER_NICE))
        return True
    except OSError:
        return False


def _spawn(argv: list[str], log_path: Path, env: dict | None = None) -> tuple[int, int | None]:
    """Start a trainer or sweep (whose trainers inherit its priority) in its own session at
    a lower priority, with its output appended to log_path; returns its pid and pid_start."""
    argv = lower_priority(argv)
    # A link planted at the log must not send the output elsewhere, nor a FIFO hang the page.
    with runs.open_for_append(log_path) as log:
        proc = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, close_fds=True,
        )
    # Popen returns once the child has exec'd, so its session (and autogroup) exists.
    lower_session_priority(proc.pid)
    # Read before anything can reap it: until then its pid cannot go to another process.
    pid_start = runs.process_start_time(proc.pid)
    # Nobody else waits for the trainer: without this it would stay a zombie (<defunct>) from
    # its exit until the dashboard's server stops.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid, pid_start


def launch(form: TrainForm, *, data_dir: str | os.PathLike, runs_dir: str | os.PathLike,
           python: str = sys.executable, module: str = runs.TRAINER_MODULE, env: dict | None = None) -> Launched:
    """Create the run folder and start the trainer into it; returns at once. data_dir: the
    folder holding CIFAR; an image folder run takes its ROOT from the form (form.run_data_dir).

    Validate the form first (:func:`validate`); this raises ValueError on a form with errors.
    """
    errors = validate(form)
    if errors:
        raise ValueError("; ".join(f"{k}: {v}" for k, v in errors.items()))
    runs_dir = Path(runs_dir).resolve()
    run_dir = runs.new_run_dir(runs_dir, form.run_name)
    argv = trainer_command(python, module, trainer_args(form, data_dir=data_dir, runs_dir=runs_dir, run_dir=run_dir),
                           form.gpus)
    return Launched(run_dir, *_spawn(argv, run_dir / runs.CONSOLE_FILE, env), argv)


def resume(run_dir: str | os.PathLike, *, python: str = sys.executable, module: str = runs.TRAINER_MODULE,
           env: dict | None = None) -> Launched:
    """Continue a stopped, failed or crashed run in its own folder (with its recorded config)."""
    run_dir = _entry(run_dir)
    info = runs.read_run(run_dir)
    _check_resumable(f"run {run_dir.name}", info, f"{run_dir} is not a run folder",
                     lambda: _why_run_cannot_resume(info))
    argv = trainer_command(python, module, ["--resume", str(run_dir)], info.world_size)
    return Launched(run_dir, *_spawn(argv, run_dir / runs.CONSOLE_FILE, env), argv)


def _check_resumable(label: str, info: runs.RunInfo | runs.SweepInfo | None, missing: str,
                     why_not: Callable[[], str]) -> None:
    """The chain of checks resume and resume_sweep run, each refusal a ValueError in one
    line: nothing there (`missing`), a record that cannot be read, then what else keeps
    this run or sweep (`label`) from resuming (why_not(); "" when nothing does)."""
    if info is None:
        raise ValueError(missing)
    if info.problem is not None:
        raise ValueError(f"{label} cannot be read: {info.problem}")
    reason = why_not()
    if reason:
        raise ValueError(f"{label} {reason}")


def _why_run_cannot_resume(info: runs.RunInfo) -> str:
    """What keeps a readable run from resuming: still going, read-only here, or a state or
    folder with nothing to resume from; "" when it can."""
    if info.is_active:
        return f"is still {info.state}"
    if info.note is not None:
        return f"cannot be resumed here. {info.note}"
    if info.state not in runs.RESUMABLE_STATES and not info.can_resume:
        return f"is {info.state}; only stopped, failed or crashed runs resume"
    return "" if info.can_resume else f"has no {runs.LAST_CHECKPOINT} to resume from"


def trainer_command(python: str, module: str, args: list[str], processes: int = 1) -> list[str]:
    """The trainer's command: one process, or torchrun's `processes` ranks on this machine
    (one a GPU; --standalone picks a free port, so runs side by side never collide)."""
    if processes > 1:
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                "-m", module, *args]
    return [python, "-m", module, *args]


def stop(info: runs.RunInfo, sig: int = signal.SIGTERM) -> bool:
    """Ask an active run's trainer to stop (runs.signal_trainer: its process group when it
    leads its session). False, and nothing signalled, unless status.json names a live
    trainer."""
    return info.is_active and runs.signal_trainer(info.status, sig)


# --------------------------------------------------------------------- sweeps
# A sweep (python -m resnet_core.sweep) runs detached like a trainer and starts the
# trainers of its grid itself. The UI reads it with runs.read_sweep / runs.list_sweeps
# (points, their runs' states, counts, ETA, whether its process is alive); these start,
# resume and stop it. Its output goes to <runs-dir>/.sweeps/NAME.log (see sweep_log).


@dataclass(frozen=True)
class SweepLaunched:
    name: str
    log: Path  # the sweep's stdout and stderr: progress lines, a refusal, the summary
    pid: int
    pid_start: int | None  # as in Launched
    argv: list[str]


def sweep_log(runs_dir: str | os.PathLike, name: str) -> Path:
    return runs.sweep_path(resolve_runs_dir(runs_dir).resolve(), name, ".log")


def sweep_problem(name: str, args: list[str], *, data_dir: str | os.PathLike,
                  runs_dir: str | os.PathLike) -> str | None:
    """Why the sweep that launch_sweep(name, args, ...) would start is refused (the sweep's
    own checks: the name, the grid's fields and values against the dataset), in one line;
    None when it would start. Reads the dataset, writes nothing."""
    from .. import sweep  # imports the trainer and torch: only when asked (as form.sweep_args does)

    return sweep.refusal(_sweep_args(name, args, data_dir, runs_dir))


def _sweep_args(name: str, args: list[str], data_dir, runs_dir) -> list[str]:
    return [*args, f"--name={name}", "--data-dir", str(Path(data_dir).resolve()),
            "--runs-dir", str(resolve_runs_dir(runs_dir).resolve())]


def launch_sweep(name: str, args: list[str], *, data_dir: str | os.PathLike, runs_dir: str | os.PathLike,
                 python: str = sys.executable, env: dict | None = None) -> SweepLaunched:
    """Start ``python -m resnet_core.sweep ARGS --name NAME`` detached; returns at once.

    args: the sweep's other arguments, e.g. ``["--epochs", "10", "--vary", "depth=20,56",
    "--vary", "shortcut=none,A", "--parallel", "2"]``; Experiment.sweep_args() and
    :func:`~resnet_core.dashboard.form.sweep_args` give them. A grid the sweep refuses ends it
    at once, the reason as one line in the log: check with :func:`sweep_problem` first.
    """
    if runs.safe_name(name) != name:  # the name becomes file names under .sweeps/
        raise ValueError(f"{name!r} is not a sweep name: letters, digits, - _ . only (at most 48)")
    argv = [python, "-m", runs.SWEEP_MODULE, *_sweep_args(name, args, data_dir, runs_dir)]
    log = sweep_log(runs_dir, name)
    runs.sweeps_folder(log.parent.parent)
    return SweepLaunched(name, log, *_spawn(argv, log, env), argv)


def resume_sweep(name: str, *, runs_dir: str | os.PathLike, python: str = sys.executable,
                 env: dict | None = None) -> SweepLaunched:
    """Continue a stopped or crashed sweep: its completed runs are kept, the rest resumed
    or launched (``python -m resnet_core.sweep --resume NAME``)."""
    runs_dir = resolve_runs_dir(runs_dir).resolve()
    info = runs.read_sweep(runs_dir, name, RECORD_OPTIONS)
    _check_resumable(f"sweep {name}", info, f"there is no sweep {name!r} in {runs_dir}",
                     lambda: f"is still running (pid {info.record['pid']})" if info.alive else "")
    argv = [python, "-m", runs.SWEEP_MODULE, "--resume", name, "--runs-dir", str(runs_dir)]
    log = sweep_log(runs_dir, name)
    return SweepLaunched(name, log, *_spawn(argv, log, env), argv)


def stop_sweep(info: runs.SweepInfo, sig: int = signal.SIGTERM) -> bool:
    """Ask a running sweep to stop: it signals its trainers (each saves last.pt and says
    stopped), launches nothing more and records "stopped". Only the sweep process gets
    the signal, and only when the record names a live one (pid and pid_start checked);
    False, and nothing signalled, otherwise."""
    if not info.alive:
        return False
    try:
        os.kill(info.record["pid"], sig)
    except (ProcessLookupError, PermissionError):  # gone meanwhile, or another user's sweep
        return False
    return True


def log_tail(run_dir: str | os.PathLike, lines: int = 40, max_bytes: int = 64_000) -> str:
    """runs.output_tail as text; a log that cannot be shown (a symbolic link, a FIFO...) is
    named, not shown."""
    try:
        return "\n".join(runs.output_tail(Path(run_dir), lines, max_bytes))
    except runs.RunFolderError as e:
        return f"({e}; not shown)"


def folder_state(run_dir: str | os.PathLike, pid: int | None = None, pid_start: int | None = None) -> str:
    """For a folder the dashboard created: "run" once runs.read_run makes a run of it (its
    trainer wrote status.json or config.json, even a broken one), "starting" while the
    trainer (pid, pid_start as in :class:`Launched`) is alive before that, else
    runs.FAILED_TO_START (its console.log says why: an argument error, a missing dataset...).
    Without a pid (launched from another tab, or before a reload), "starting" while the
    folder may_be_starting, as list_runs judges it."""
    if runs.read_run(Path(run_dir)) is not None:
        return "run"
    if pid is None:
        return "starting" if runs.may_be_starting(Path(run_dir)) else runs.FAILED_TO_START
    if runs.trainer_alive({"pid": pid, "pid_start": pid_start}):
        return "starting"
    return runs.FAILED_TO_START


class RunActiveError(RuntimeError):
    pass


def _entry(run_dir: str | os.PathLike) -> Path:
    """run_dir with its folder resolved but not its own name: a run entry that is a symbolic
    link stays the link, never the folder it points to."""
    run_dir = Path(run_dir)
    return run_dir.parent.resolve() / run_dir.name


def delete_run(run_dir: str | os.PathLike, runs_dir: str | os.PathLike) -> None:
    """Remove exactly the entry picked: a finished run folder, or an entry that is a symbolic
    link (the link only, never what it points to); refuse an active run or anything that is
    not an entry of runs_dir."""
    runs_dir = Path(runs_dir).resolve()
    run_dir = _entry(run_dir)
    if run_dir.parent != runs_dir or run_dir.name in ("", "..") or run_dir.name.startswith("."):
        raise ValueError(f"{run_dir} is not a run folder under {runs_dir}")
    if run_dir.is_symlink():
        run_dir.unlink()
        return
    info = runs.read_run(run_dir)
    if info is not None and info.is_active:
        raise RunActiveError(f"run {info.run_id} is {info.state}: stop it before deleting it")
    # An unreadable config.json does not stop a trainer that still writes to the folder.
    if info is not None and info.status.get("state") in runs.ACTIVE_STATES and runs.trainer_alive(info.status):
        raise RunActiveError(f"run {info.run_id} has a live trainer (pid {info.status['pid']}): stop it first")
    # One rename takes the run out of every listing at once; then rmtree, which stops at the
    # first file it cannot remove, leaves a hidden folder (named in its error), never half a
    # run among the others. rmtree removes links inside without following them, and refuses
    # an entry that was swapped for a link meanwhile (OSError).
    doomed = runs_dir / f"{runs.DELETING_PREFIX}{secrets.token_hex(6)}"
    os.rename(run_dir, doomed)
    try:
        shutil.rmtree(doomed)
    except OSError as e:
        raise OSError(f"deleting {run_dir.name} stopped at {e.filename or 'a file'}: {e.strerror or e}; what is "
                      f"left is in {doomed}, no longer listed") from None
