"""Start, stop, resume and delete trainer processes for the dashboard (no Streamlit here).

Training never runs inside the dashboard's process: :func:`launch` starts
``python -m resnet_core.train`` as its own session (``start_new_session=True``), writing
into a run folder the dashboard created, so a reload, a second tab or a restart of the
server finds the run again through that folder (see :mod:`resnet_core.runs`). The trainer
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
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .. import distributed, runs
from ..config import (
    CIFAR10_TRAIN_IMAGES,
    PAPER_RECIPE,
    TrainConfig,
    apply_presets,
    config_argv,
    config_errors,
    plan_errors,
)
from ..model_names import default_shortcut
from ..runs.values import as_float, is_int

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUNS_DIR_ENV = "RESNET_STUDIO_RUNS"
DEFAULT_RUNS_DIR = "checkpoints"

SWITCHES = (None, True, False)  # tri-state trainer options, as in TrainConfig: None leaves the choice to the trainer
MAX_DEPTH = 1202
_CONFIG = TrainConfig()  # the form starts from the trainer's own defaults


def resolve_runs_dir(runs_dir: str | os.PathLike | None = None) -> Path:
    """The runs folder: the argument, else $RESNET_STUDIO_RUNS, else ./checkpoints."""
    return Path(runs_dir or os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR).expanduser()


def paper_epochs(train_size: int = CIFAR10_TRAIN_IMAGES) -> int:
    """Epochs that hold the paper's 64k iterations on all training images (165 of 390
    steps, the last one cut short), exactly as the trainer's --preset paper computes them."""
    return apply_presets(TrainConfig(preset="paper"), set(), train_size).epochs


@dataclass
class TrainForm:
    """What the Train page's form holds; field names double as error keys."""

    depth: int = _CONFIG.depth
    block: str = _CONFIG.block
    shortcut: str = default_shortcut(_CONFIG.block)
    epochs: int = _CONFIG.epochs
    batch_size: int = _CONFIG.batch_size
    lr: float = _CONFIG.lr
    momentum: float = _CONFIG.momentum
    weight_decay: float = _CONFIG.weight_decay
    schedule: str = _CONFIG.schedule
    warmup_epochs: float = _CONFIG.warmup_epochs
    seed: int = _CONFIG.seed
    device: str = _CONFIG.device
    precision: str = _CONFIG.precision
    channels_last: bool | None = _CONFIG.channels_last  # one of SWITCHES
    compile: bool | None = _CONFIG.compile  # one of SWITCHES
    val_size: int = _CONFIG.val_size
    subset: int = _CONFIG.subset
    log_every: int = _CONFIG.log_every
    log_seconds: float = _CONFIG.log_seconds
    name: str = ""
    preset: str = _CONFIG.preset  # "" or "paper", as in TrainConfig
    gpus: int = 1  # processes of the run, one a GPU: torchrun above 1 (a launch choice, not a TrainConfig field)
    sync_bn: bool = _CONFIG.sync_bn  # only with gpus above 1

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def with_paper_recipe(self) -> "TrainForm":
        values = asdict(self) | paper_recipe()
        values["epochs"] = paper_epochs()
        values["preset"] = "paper"
        return TrainForm(**values)

    @property
    def run_name(self) -> str:
        """The name as it will appear in the run id (sanitised, never a path)."""
        return runs.safe_name(self.name)


def paper_recipe() -> dict:
    """The form fields --preset paper sets (epochs aside, which depend on the split); the
    trainer adds the ResNet-110 warm-up itself."""
    recipe = {k: v for k, v in PAPER_RECIPE.items() if k in TrainForm.field_names()}
    return recipe | {"subset": 0}


PRESET_FIELDS = tuple(paper_recipe()) + ("epochs",)


def _is_int(value) -> bool:
    """A form's whole number: an int, or a float such as 3.0 (a number input's value)."""
    return is_int(value) or (isinstance(value, float) and value.is_integer())


def _as_float(value) -> float | None:
    """A form's number: a number, or text that reads as one; None unless finite."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    return as_float(value)


def validate(form: TrainForm, *, train_size: int = CIFAR10_TRAIN_IMAGES, devices: list[str] | None = None,
             data_present: bool | None = None, cuda_count: int | None = None) -> dict[str, str]:
    """Per-field error messages (an empty dict means the form may launch).

    train_size: images in the training set (50,000 for CIFAR-10); devices: the --device
    values this machine offers (None accepts any well-formed one); data_present: False adds
    an error under "data"; cuda_count: this machine's CUDA GPUs, which bound "gpus" (None:
    as many as asked).
    """
    # The form's own checks are only what a form adds to the config: text that must be a
    # number, three-way switches, the devices of this machine, the name's length. Every
    # bound is the trainer's own (config_errors and plan_errors, below).
    errors: dict[str, str] = {}
    for name, what in (("depth", "Depth"), ("epochs", "Epochs"), ("batch_size", "Batch size"), ("seed", "Seed"),
                       ("val_size", "Validation size"), ("subset", "Subset"), ("log_every", "Log every")):
        if not _is_int(getattr(form, name)):
            errors[name] = f"{what} must be a whole number."
    for name, what in (("lr", "Learning rate"), ("momentum", "Momentum"), ("weight_decay", "Weight decay"),
                       ("warmup_epochs", "Warm-up"), ("log_seconds", "Log seconds")):
        if _as_float(getattr(form, name)) is None:
            errors[name] = f"{what} must be a number, e.g. {getattr(TrainForm(), name)}."
    for name, label in (("channels_last", "Channels-last"), ("compile", "torch.compile")):
        if not any(getattr(form, name) is value for value in SWITCHES):  # 1 == True, but 1 is no switch
            errors[name] = f"{label} must be auto, on or off."
    if devices is not None and form.device not in devices:
        errors["device"] = f"There is no {form.device} device on this machine; choose one of {', '.join(devices)}."
    if not _is_int(form.gpus) or form.gpus < 1:
        errors["gpus"] = "GPUs must be a whole number, at least 1."
    elif form.gpus > 1 and cuda_count is not None and form.gpus > cuda_count:
        errors["gpus"] = f"This machine has {cuda_count} CUDA GPU(s): a run can use at most that many."
    elif form.gpus > 1 and form.device not in ("auto", "cuda"):
        errors["gpus"] = f"Several GPUs take the device auto or cuda, not {form.device}."
    if form.name and not form.run_name:  # the form hands the trainer the name as it will be kept
        errors["name"] = "The name needs at least one letter or digit (allowed: letters, digits, - _ .)."
    elif len(form.name) > 200:
        errors["name"] = "The name is too long (at most 200 characters; 48 are kept)."

    # Then the trainer's own checks, whatever it would refuse, on the form with each field
    # already refused above put back to its default, so both kinds of message show at once.
    usable = replace(form, **{name: getattr(TrainForm(), name) for name in errors})
    cfg = form_config(usable, train_size)
    for name, message in {**plan_errors(cfg, train_size), **config_errors(cfg)}.items():
        errors.setdefault(name, message[0].upper() + message[1:] + ".")
    if "gpus" not in errors and form.gpus > 1:  # the trainer's refusals under torchrun, as it would say them
        world = distributed.World(size=form.gpus, local_size=form.gpus)
        problems = distributed.setup_problems(world, cfg.batch_size, cfg.device, "nccl", cfg.sync_bn,
                                              form.gpus if cuda_count is None else cuda_count)
        if problems:
            errors["gpus"] = "; ".join(p[0].upper() + p[1:] for p in problems) + "."
    if data_present is False:
        errors["data"] = "CIFAR-10 is not in the data folder: download it on the Home page first."
    return errors


def form_typed(form: TrainForm) -> tuple[TrainConfig, set[str]]:
    """The TrainConfig a form without type errors (see :func:`validate`) types, and the
    fields it types: with the paper preset on, only those the preset leaves to the user."""
    values = dict(depth=int(form.depth), block=form.block, shortcut=form.shortcut, seed=int(form.seed),
                  device=form.device, precision=form.precision, channels_last=form.channels_last,
                  compile=form.compile, name=form.run_name, log_every=int(form.log_every),
                  log_seconds=_as_float(form.log_seconds), sync_bn=bool(form.sync_bn) and form.gpus > 1)
    if form.preset:
        values["preset"] = form.preset  # config_errors refuses any but "paper"
    else:
        values.update(epochs=int(form.epochs), batch_size=int(form.batch_size), lr=_as_float(form.lr),
                      momentum=_as_float(form.momentum), weight_decay=_as_float(form.weight_decay),
                      schedule=form.schedule, warmup_epochs=_as_float(form.warmup_epochs),
                      val_size=int(form.val_size), subset=int(form.subset))
    return TrainConfig(**values), set(values)


def form_config(form: TrainForm, train_size: int = CIFAR10_TRAIN_IMAGES) -> TrainConfig:
    """The TrainConfig the trainer will resolve from the form, presets applied as on the
    command line: what the form's summary shows."""
    return apply_presets(*form_typed(form), train_size)


def recipe_summary(cfg: TrainConfig) -> str:
    """What the form's Advanced section resolves to, in one line, for the model summary (the
    data split is in the plan's line): the trainer's own values, presets applied (the paper
    preset's warm-up from ResNet-110 on shows)."""
    def plural(n: float, unit: str) -> str:
        return f"{n:g} {unit}" + ("" if n == 1 else "s")

    parts = [f"{cfg.schedule} schedule", f"weight decay {cfg.weight_decay:g}", f"momentum {cfg.momentum:g}"]
    if cfg.warmup_epochs:
        parts.append(f"warm-up {plural(round(cfg.warmup_epochs, 2), 'epoch')}")
    word = {None: "auto", True: "on", False: "off"}
    switches = {"precision": cfg.precision, "channels-last": word[cfg.channels_last], "compile": word[cfg.compile]}
    chosen = [f"{name} {value}" for name, value in switches.items() if value != "auto"]
    parts += chosen or ["precision, channels-last and compile auto"]
    by_time = f" or {cfg.log_seconds:g} s" if cfg.log_seconds else ""  # 0: by steps only
    parts.append(f"a row every {plural(cfg.log_every, 'step')}{by_time}")
    return " · ".join(parts)


def trainer_args(form: TrainForm, *, data_dir: str | os.PathLike, runs_dir: str | os.PathLike,
                 run_dir: str | os.PathLike | None = None) -> list[str]:
    """The trainer's command-line arguments for a valid form (after the module name),
    generated from the same schema the trainer parses them with."""
    cfg, typed = form_typed(form)
    cfg = replace(cfg, data_dir=str(data_dir), runs_dir=str(runs_dir))
    args = config_argv(cfg, typed | {"data_dir", "runs_dir"})
    return args + (["--run-dir", str(run_dir)] if run_dir is not None else [])


def sweep_args(form: TrainForm, vary: dict[str, list], parallel: int, executor: str = "local",
               address: str = "") -> list[str]:
    """The sweep's arguments for the Train form's fields with `vary` varied (field -> values;
    the sweep parses and judges each value): the form's fields but the varied ones and the
    run name (a sweep names its runs after their values); on Ray (executor "ray") also the
    cluster's address, where one is given (else the sweep starts a Ray of its own)."""
    from .. import sweep  # the sweep's command line imports the trainer and torch: only when a sweep is launched

    cfg, typed = form_typed(form)
    args = config_argv(cfg, typed - set(vary) - {"name"}) + sweep.vary_argv(vary) + ["--parallel", str(parallel)]
    if executor == "ray":
        args += ["--executor", "ray"] + (["--address", address.strip()] if address.strip() else [])
    return args


def parse_vary_text(text: str) -> dict[str, list[str]]:
    """Extra varied fields typed as ``lr=0.1,0.05; weight_decay=1e-4,5e-4`` (also one per
    line): field -> values as typed. ValueError names an entry without "=" or values."""
    out: dict[str, list[str]] = {}
    for entry in (e.strip() for e in text.replace("\n", ";").split(";")):
        if not entry:
            continue
        name, sep, values = entry.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name.strip() or not items:
            raise ValueError(f"{entry!r}: write field=value1,value2")
        name = name.strip().replace("-", "_")
        if name in out:
            raise ValueError(f"{name} is given twice: list all its values in one entry")
        out[name] = items
    return out


@dataclass(frozen=True)
class Launched:
    run_dir: Path
    pid: int
    pid_start: int | None  # runs.process_start_time(pid): tells the trainer from a later process with its pid
    argv: list[str]


# $RESNET_STUDIO_TRAINER_NICE=0 starts trainers at the dashboard's own priority (the tests
# do: beside other work on a loaded machine, niced test trainers crawled).
TRAINER_NICE = int(os.environ.get("RESNET_STUDIO_TRAINER_NICE", "10"))


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
    """Create the run folder and start the trainer into it; returns at once.

    Validate the form first (:func:`validate`); this raises ValueError on a form with errors.
    """
    errors = validate(form)
    if errors:
        raise ValueError("; ".join(f"{k}: {v}" for k, v in errors.items()))
    runs_dir = Path(runs_dir).resolve()
    run_dir = runs.new_run_dir(runs_dir, form.run_name)
    argv = trainer_command(python, module, trainer_args(form, data_dir=Path(data_dir).resolve(), runs_dir=runs_dir,
                                                        run_dir=run_dir), form.gpus)
    return Launched(run_dir, *_spawn(argv, run_dir / runs.CONSOLE_FILE, env), argv)


def resume(run_dir: str | os.PathLike, *, python: str = sys.executable, module: str = runs.TRAINER_MODULE,
           env: dict | None = None) -> Launched:
    """Continue a stopped, failed or crashed run in its own folder (with its recorded config)."""
    run_dir = _entry(run_dir)
    info = runs.read_run(run_dir)
    if info is None:
        raise ValueError(f"{run_dir} is not a run folder")
    if info.problem is not None:
        raise ValueError(f"run {info.run_id} cannot be read: {info.problem}")
    if info.is_active:
        raise ValueError(f"run {info.run_id} is still {info.state}")
    if info.note is not None:
        raise ValueError(f"run {info.run_id} cannot be resumed here. {info.note}")
    if not info.can_resume:
        if info.state not in runs.RESUMABLE_STATES:
            raise ValueError(f"run {info.run_id} is {info.state}; only stopped, failed or crashed runs resume")
        raise ValueError(f"run {info.run_id} has no {runs.LAST_CHECKPOINT} to resume from")
    argv = trainer_command(python, module, ["--resume", str(run_dir)], info.world_size)
    return Launched(run_dir, *_spawn(argv, run_dir / runs.CONSOLE_FILE, env), argv)


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
    from .. import sweep  # as in sweep_args

    return sweep.refusal(_sweep_args(name, args, data_dir, runs_dir))


def _sweep_args(name: str, args: list[str], data_dir, runs_dir) -> list[str]:
    return [*args, f"--name={name}", "--data-dir", str(Path(data_dir).resolve()),
            "--runs-dir", str(resolve_runs_dir(runs_dir).resolve())]


def launch_sweep(name: str, args: list[str], *, data_dir: str | os.PathLike, runs_dir: str | os.PathLike,
                 python: str = sys.executable, env: dict | None = None) -> SweepLaunched:
    """Start ``python -m resnet_core.sweep ARGS --name NAME`` detached; returns at once.

    args: the sweep's other arguments, e.g. ``["--epochs", "10", "--vary", "depth=20,56",
    "--vary", "shortcut=none,A", "--parallel", "2"]``; Experiment.sweep_args() and
    :func:`sweep_args` give them. A grid the sweep refuses ends it at once, the reason as one line in
    the log: check with :func:`sweep_problem` first.
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
    info = runs.read_sweep(runs_dir, name)
    if info is None:
        raise ValueError(f"there is no sweep {name!r} in {runs_dir}")
    if info.problem is not None:
        raise ValueError(f"sweep {name} cannot be read: {info.problem}")
    if info.alive:
        raise ValueError(f"sweep {name} is still running (pid {info.record['pid']})")
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
    runs.FAILED_TO_START (its console.log says why: an argument error, a missing dataset...)."""
    if runs.read_run(Path(run_dir)) is not None:
        return "run"
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
