"""Every check that can refuse a training run before anything is written
(:class:`Refused`: one line on stderr, exit code 2): the config, whether the model and the
data fit the device, the folders, the launch tags and note, and a resume's run folder and checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

from . import runs
from .checkpoints import CHECKPOINT_KEYS
from .config import TrainConfig, config_from_record, make_plan
from .config_checks import config_errors
from .distributed import World
from .device import device_memory_bytes, format_bytes, resolve_device, resolve_precision, training_memory_bytes
from .cifar import CifarData
from .folder_dataset import changed_files, held_out
from .folder_scan import FolderScan
from .model_names import blocks_per_stage, family_counts
from .runs import model_name
from .system import total_ram_gb
from .run_model import ModelLoadError, check_weights, read_checkpoint


class Refused(Exception):
    """Input that cannot run: one line on stderr, exit code 2, nothing written."""


def model_bytes(cfg: TrainConfig, num_classes: int, ranks: int) -> int:
    """The least memory one process needs to train the model (weights, gradients, momentum
    and the activations backward keeps, for its share of the batch), from its block count."""
    device = resolve_device(cfg.device)
    counts = family_counts(cfg.depth, cfg.block, cfg.shortcut, num_classes, cfg.preact, cfg.image_size)
    return training_memory_bytes(counts, -(-cfg.batch_size // ranks), resolve_precision(cfg.precision, device))


def check_fits(cfg: TrainConfig, num_classes: int, ranks: int) -> None:
    """Refused for a model whose training step the device cannot hold, judged from its
    block count before anything is built (building ResNet-60002 alone took minutes)."""
    device = resolve_device(cfg.device)
    have, need = device_memory_bytes(device), model_bytes(cfg, num_classes, ranks)
    if have is not None and need > have:
        blocks = 3 * blocks_per_stage(cfg.depth, cfg.block)
        shown = format_bytes(need), format_bytes(have)
        if shown[0] == shown[1]:  # just over: in GiB both would read the same
            shown = f"{need:,} bytes", f"{have:,} bytes"
        raise Refused(f"--depth {cfg.depth}: {model_name(cfg.depth, cfg.shortcut, cfg.preact)} ({blocks:,} blocks) "
                      f"needs at least {shown[0]} to train with batch {-(-cfg.batch_size // ranks)} in "
                      f"{resolve_precision(cfg.precision, device)} (weights, gradients, momentum and the "
                      f"activations backward keeps), and {device} holds {shown[1]}; choose a smaller --depth or "
                      f"--batch-size")


def held_data_bytes(cfg: TrainConfig, train_set_images: int, test_images: int, ranks: int = 1) -> int:
    """Bytes of the splits one process keeps on its device, as the trainer holds them
    (resnet_core.step.Trainer.prepare_data): uint8, 3 x image_size^2 an image, the whole
    training split (after --val-size and --subset) on every rank, its share of the
    validation and test splits."""
    plan = make_plan(cfg, train_set_images)
    images = plan.train_images + -(-plan.val_images // ranks) + -(-test_images // ranks)
    return images * 3 * cfg.image_size ** 2


def check_data_fits(cfg: TrainConfig, train_set_images: int, test_images: int, num_classes: int,
                    ranks: int = 1) -> None:
    """Refused, before any image is decoded or copied, when the splits the trainer keeps on the
    device (held_data_bytes) and the model's training (model_bytes, checked alone by
    check_fits) are more than the device holds in all."""
    device = resolve_device(cfg.device)
    have, need = device_memory_bytes(device), held_data_bytes(cfg, train_set_images, test_images, ranks)
    model = model_bytes(cfg, num_classes, ranks)
    if have is not None and need + model > have:
        raise Refused(f"the data would not fit on {device}: its splits at --image-size {cfg.image_size} take "
                      f"{format_bytes(need)} as uint8 ({need:,} bytes), training the model at least "
                      f"{format_bytes(model)} more, and {device} holds {format_bytes(have)}; lower --image-size "
                      f"or --subset")


def check_folder_fits(cfg: TrainConfig, scan: FolderScan, world: World | None = None) -> None:
    """check_data_fits for an image folder from its scan, before an image is decoded: its
    test/, or the share of each class carved from train/, for the world's ranks. And the
    machine's RAM, where each of the world's processes on it (world.local_size) holds every
    file decoded, as uint8, before its device gets the splits: on a GPU, the device check
    alone let a folder that fits the GPU start decoding into a RAM that could not hold it.
    world: None for one process."""
    world = world or World()
    n = len(scan.train)
    test = len(scan.test) if scan.test is not None else sum(held_out(c, cfg.test_size) for c in scan.train.counts)
    check_data_fits(cfg, n if scan.test is not None else n - test, test, len(scan.classes), world.size)
    files = n + (len(scan.test) if scan.test is not None else 0)
    processes = world.local_size
    need, ram_gb = files * 3 * cfg.image_size ** 2 * processes, total_ram_gb()
    if ram_gb and need > ram_gb * 2**30:
        each = f", in each of the {processes} processes on this machine" if processes > 1 else ""
        raise Refused(f"the image folder would not fit in this machine's RAM: its {files:,} images decoded at "
                      f"--image-size {cfg.image_size} take {format_bytes(need // processes)} as uint8{each}, and "
                      f"the machine has {format_bytes(int(ram_gb * 2**30))} of RAM; lower --image-size or use "
                      f"fewer files")


def check_same_files(run_dir: Path, data: CifarData) -> None:
    """Refused when a resumed image folder run would train on other files than it did: the
    folder split now against its data_files.json (a run stopped before writing it has none)."""
    changed = changed_files(data, runs.read_data_files(run_dir))
    if changed:
        split, moved, was = changed
        raise Refused(f"the image folder changed since the run started: {moved:,} of its {was:,} {split} "
                      f"files are not the same at the same place (added, removed, renamed or moved between "
                      f"classes); a resume must train on the same images, so start a new run")


def check_config(cfg: TrainConfig) -> None:
    """What can be judged before reading 180 MB of data: the fields, and the device.
    Milestones and warm-up wait for the plan: a preset may still set the run's length."""
    problems = {k: v for k, v in config_errors(cfg).items() if k not in ("milestones", "warmup_epochs")}
    if problems:
        raise Refused("; ".join(problems.values()))
    try:
        resolve_device(cfg.device)  # e.g. --device cuda on a machine without one
    except ValueError as e:
        raise Refused(str(e)) from None


def check_labels(tags: list[str], note: str | None, resume: bool) -> dict:
    """The launch tags and note (--tag, --note) as config.json records them ({} without any),
    or Refused: on a resume (the record keeps its launch values; the dashboard edits a run's
    annotations), or for a tag or note that annotations.json could not hold either."""
    if not tags and note is None:
        return {}
    if resume:
        raise Refused("--tag and --note label a run at its launch; a resumed run keeps its own: edit them on the "
                      "Runs page or the Monitor")
    try:
        labels = runs.checked_annotations(tags=tags, note=note or "")
    except ValueError as e:
        raise Refused(f"--tag/--note: {e}") from None
    return {"tags": list(labels.tags), "note": labels.note}


def check_runs_dir(path: Path) -> None:
    """Refused unless path is, or can become, a folder this process can write in."""
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise Refused(f"--runs-dir {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise Refused(f"--runs-dir {path}: {existing} is not writable")


def check_new_run_dir(path: Path) -> None:
    """--run-dir must be new or empty (the dashboard's console.log aside), and a real folder:
    a run folder is never a symbolic link (see resnet_core/runs/folder_format.py)."""
    if path.is_symlink():
        raise Refused(f"--run-dir {path} is a symbolic link: give the folder itself")
    if os.path.lexists(path) and not path.is_dir():
        raise Refused(f"--run-dir {path} is not a folder")
    if path.is_dir():
        if (path / runs.CONFIG_FILE).exists():
            raise Refused(f"--run-dir {path} already holds a run; use --resume to continue it")
        if any(p.name != runs.CONSOLE_FILE for p in path.iterdir()):
            raise Refused(f"--run-dir {path} is not empty")
    check_runs_dir(path.parent)


def check_resumable(run_dir: Path) -> tuple[TrainConfig, dict | None]:
    """The recorded config and last.pt's state of a run that can be resumed, or Refused
    naming the file and what is wrong. Reads only: a refused resume changes nothing."""
    path = run_dir / runs.CONFIG_FILE
    if not run_dir.is_dir():
        raise Refused(f"--resume: {run_dir} is not a folder")
    if not os.path.lexists(path):
        raise Refused(f"--resume: {run_dir} is not a run folder (no {runs.CONFIG_FILE})")
    try:  # as every reader reads it: a FIFO there hung the resume, a link to /dev/zero filled the memory
        record = runs.read_json_object(run_dir, runs.CONFIG_FILE)
    except (OSError, runs.RunFolderError) as e:  # a directory, unreadable bytes, bad JSON, too deep
        raise Refused(f"--resume: {path} is unreadable: {e}") from None
    if not isinstance(record.get("config"), dict):
        raise Refused(f"--resume: {path} is not a run record (no 'config' object)")
    version = record.get("format_version")
    if version != runs.FORMAT_VERSION:
        raise Refused(f"--resume: {path} is run folder format {version!r} and this trainer writes "
                      f"{runs.FORMAT_VERSION}; a folder never mixes two versions, so start a new run")
    try:
        cfg = config_from_record(record["config"])
    except (TypeError, ValueError) as e:
        raise Refused(f"--resume: {path}: {e}") from None
    recorded_data = (record.get("resolved") or {}).get("data_dir")
    if isinstance(recorded_data, str) and Path(recorded_data).is_dir():
        cfg.data_dir = recorded_data  # absolute: a resume from another working folder reads the same data
    info = runs.read_run(run_dir)
    state = info.state if info is not None else "unknown"
    if info is not None and (info.problem or info.read_only):  # e.g. a status.json that cannot say who runs it
        raise Refused(f"--resume: {run_dir} cannot be resumed: {info.problem or info.note}")
    if state in runs.ACTIVE_STATES:
        raise Refused(f"--resume: {run_dir} is still {state} (pid {info.status.get('pid')})")
    if state == "completed":
        raise Refused(f"--resume: {run_dir} already completed")
    # appended to, or written into
    for name in (runs.METRICS_FILE, runs.LOG_FILE, runs.PREDICTIONS_DIR, runs.DYNAMICS_DIR):
        if (run_dir / name).is_symlink():
            raise Refused(f"--resume: {run_dir / name} is a symlink; refusing to write through it")
    checkpoint = run_dir / runs.LAST_CHECKPOINT
    if not os.path.lexists(checkpoint):
        return cfg, None  # stopped or killed before its first checkpoint: start it afresh
    try:
        state_dict = read_checkpoint(run_dir, checkpoint.name, CHECKPOINT_KEYS, follow_symlink=True)
        classes = record.get("classes")
        check_weights(state_dict["model"], cfg, len(classes) if isinstance(classes, list) else 10, checkpoint.name)
    except ModelLoadError as e:
        raise Refused(f"--resume: {e}") from None
    return cfg, state_dict
