"""What ``--dry-run`` prints: the network, the data, the schedule and the paper's number
for a resolved config and plan, then the same as one JSON line; nothing is written (an image
folder is decoded to be checked, and its decoded cache kept, as for a run)."""

from __future__ import annotations

import dataclasses
import json

from .cifar import CifarData, dataset_title
from .config import PAPER_DEVIATIONS, Plan, TrainConfig, lr_drop_steps, warmup_steps
from .model_names import PaperResult
from .models import describe_model
from .results import paper_comparison


def dry_run_report(cfg: TrainConfig, plan: Plan, data: CifarData) -> dict:
    """The plan as data (the dry run's last line); "paper": the test error the paper reports
    for this network on this dataset, where the run trains with its recipe, else None."""
    model = describe_model(cfg.depth, cfg.block, cfg.shortcut, len(data.classes), cfg.preact, cfg.dataset,
                           cfg.image_size)
    paper = paper_comparison(dataclasses.asdict(cfg))
    return {"dataset": cfg.dataset, "classes": len(data.classes), "epochs": plan.epochs,
            "steps_per_epoch": plan.steps_per_epoch, "total_steps": plan.total_steps,
            "train_images": plan.train_images, "val_images": plan.val_images, "test_images": len(data.test_labels),
            "test_every_epoch": plan.val_images == 0,
            "model": {"name": model.name, "params": model.params, "macs": model.macs},
            "paper": dataclasses.asdict(paper) if paper else None,
            "config": dataclasses.asdict(cfg), **({"paper_deviations": list(PAPER_DEVIATIONS)} if cfg.preset else {})}


def folder_notes(data: CifarData) -> list[str]:
    """An image folder's warnings, files ignored and images skipped, a line each (none for CIFAR):
    printed by the dry run and logged by the run itself."""
    notes = [f"note: {problem}" for problem in data.source.get("problems", ())]
    if data.source.get("ignored"):
        n = data.source["ignored"]
        notes.append(f"ignored {n:,} {'file that is not an image' if n == 1 else 'files that are not images'}")
    if data.source.get("skipped"):
        n = data.source["skipped_count"]
        notes.append(f"skipped {n:,} unreadable image{'' if n == 1 else 's'} (--bad-images skip)")
    return notes


def print_dry_run(cfg: TrainConfig, plan: Plan, data: CifarData) -> None:
    report = dry_run_report(cfg, plan, data)
    model = report["model"]
    print(f"{model['name']} ({cfg.block} blocks, shortcut {cfg.shortcut}): {model['params']:,} parameters, "
          f"{model['macs']:,} MACs per {cfg.image_size}x{cfg.image_size} image")
    where = f" {data.source['root']}" if data.source.get("root") else ""
    test = " (carved from train/)" if data.source.get("test_source") == "carved" else ""
    print(f"{dataset_title(cfg.dataset)}{where} ({len(data.classes)} classes): " + plan.describe()
          + f" · {report['test_images']:,} test images{test}")
    for note in folder_notes(data):
        print(note)
    schedule = f"{cfg.schedule} from lr {cfg.lr:g}, batch {cfg.batch_size}, momentum {cfg.momentum:g}, " \
               f"weight decay {cfg.weight_decay:g}"
    if cfg.schedule == "multistep":
        schedule += f", lr /10 at steps {', '.join(f'{d:,}' for d in lr_drop_steps(cfg, plan))}"
    if cfg.warmup_epochs:
        start = f"at lr {cfg.lr / 10:g}" if cfg.warmup_mode == "constant" else f"rising linearly to lr {cfg.lr:g}"
        schedule += f", {cfg.warmup_mode} warm-up for {warmup_steps(cfg, plan):,} steps {start}"
    print(schedule)
    if report["paper"]:
        paper = PaperResult(**report["paper"])
        print(f"the paper's {dataset_title(cfg.dataset)} test error for {model['name']}: {paper.text}, {paper.source}")
    if cfg.preset == "paper":
        print("departs from the paper in:" + "".join(f"\n  - {d}" for d in PAPER_DEVIATIONS))
    print(json.dumps(report))
