"""Training throughput: ``python -m resnet_core.bench --data-dir DIR [trainer flags] [--peer PEER.py]``.

Times real training steps of the trainer's own Trainer (on-device data, augmentation,
mixed precision, the optimizer step, the record of each training image) and prints one JSON line with
``train_images_per_s``. With ``--peer`` it alternates fresh processes of this benchmark
and of a peer script that prints the same key (e.g. the standard PyTorch recipe:
torchvision dataset, PIL transforms, DataLoader, fp32), round by round on the same
machine, and prints each round and the median ratio.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from .config import TrainConfig
from .dynamics_recorder import DynamicsRecorder
from .train import load_data, parse, resolve
from .train_checks import Refused, check_config
from .step import Trainer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure(trainer: Trainer, steps: int, warmup: int) -> float:
    """Images per second over `steps` training steps after `warmup` untimed ones, each step
    recording its images as a run does (resnet_core.dynamics_recorder)."""
    done, epoch, t0 = 0, 1, 0.0
    record = DynamicsRecorder(trainer.train_indices, trainer.device)
    record.start()
    while done < warmup + steps:
        for idx, x, y in trainer.train_loader.epoch(epoch):
            if done == warmup:
                _sync(trainer.device)
                t0 = time.perf_counter()
            _, logits = trainer.train_step(x, y)
            record.add(idx, logits, y)
            done += 1
            if done == warmup + steps:
                break
        epoch += 1
    _sync(trainer.device)
    return steps * trainer.cfg.batch_size / (time.perf_counter() - t0)


def measure_eval(trainer: Trainer) -> float:
    """Images per second of one evaluation pass over the validation split, exactly as the
    run evaluates (fp32, recording every image's predictions)."""
    _sync(trainer.device)
    t0 = time.perf_counter()
    trainer.predict(trainer.val_loader)
    _sync(trainer.device)
    return trainer.val_loader.num_images / (time.perf_counter() - t0)


def run_json(cmd: list[str]) -> dict:
    """The JSON object on the last line a benchmark process printed, or Refused naming the
    script and its last words (a peer that failed, or printed no speed)."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    try:
        if done.returncode:
            raise ValueError
        result = json.loads(lines[-1])
        float(result["train_images_per_s"])
        return result
    except (ValueError, IndexError, KeyError, TypeError):
        said = next((line.strip() for line in reversed(done.stderr.splitlines()) if line.strip()), "")[:200]
        script = cmd[1] if cmd[1] != "-m" else cmd[2]
        raise Refused(f"{script} failed (exit code {done.returncode}): {said or 'it printed no train_images_per_s'}"
                      ) from None


def compare(argv: list[str], cfg: TrainConfig, args) -> dict:
    """Alternate fresh processes of ours and the peer's; the median ratio of their images/s."""
    ours_cmd = [sys.executable, "-m", "resnet_core.bench", *_without_peer_flags(argv)]
    peer_cmd = [sys.executable, args.peer, "--data", cfg.data_dir, "--workers", str(args.peer_workers),
                "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(cfg.batch_size),
                "--depth", str(cfg.depth)]
    if cfg.device != "auto":
        peer_cmd += ["--device", cfg.device.split(":")[0] if cfg.device.startswith("cuda") else cfg.device]
    rounds = []
    for r in range(args.rounds):
        peer = run_json(peer_cmd)["train_images_per_s"]
        ours = run_json(ours_cmd)
        rounds.append({"round": r + 1, "ours": round(ours["train_images_per_s"], 1), "peer": round(peer, 1),
                       "ratio": round(ours["train_images_per_s"] / peer, 3)})
        print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
    return {"median_ratio": statistics.median(r["ratio"] for r in rounds), "rounds": rounds,
            "ours": {k: v for k, v in ours.items() if k != "train_images_per_s"}}


def _without_peer_flags(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--peer", "--rounds", "--peer-workers"):
            skip = True
            continue
        if a.split("=")[0] in ("--peer", "--rounds", "--peer-workers"):
            continue
        out.append(a)
    return out


def add_bench_arguments(parser) -> None:
    parser.prog = "python -m resnet_core.bench"
    parser.description = __doc__.split("\n")[0]
    parser.add_argument("--steps", type=int, default=60, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--peer", default=None, help="a peer script to alternate with (prints train_images_per_s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ours + peer with --peer")
    parser.add_argument("--peer-workers", type=int, default=0, help="DataLoader workers for the peer")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parsed = parse(argv, add_bench_arguments)
    cfg, args = parsed.cfg, parsed.args
    try:
        for name, value, least in (("--steps", args.steps, 1), ("--warmup", args.warmup, 0),
                                   ("--rounds", args.rounds, 1), ("--peer-workers", args.peer_workers, 0)):
            if value < least:
                raise Refused(f"{name} must be at least {least}")
        if args.peer and not Path(args.peer).is_file():
            raise Refused(f"--peer {args.peer} is not a file")
        if args.peer and not cfg.data_dir:
            raise Refused("--peer needs --data-dir")
        check_config(cfg)
        data = load_data(cfg)
        cfg, plan = resolve(cfg, parsed.typed, data)  # the trainer's own checks and plan
    except Refused as e:
        print(f"python -m resnet_core.bench: error: {e}", file=sys.stderr)
        return 2
    if args.peer:
        try:
            print(json.dumps(compare(argv, cfg, args)))
        except Refused as e:
            print(f"python -m resnet_core.bench: error: {e}", file=sys.stderr)
            return 2
        return 0
    trainer = Trainer(cfg, plan)
    trainer.setup(data)
    rate = measure(trainer, args.steps, args.warmup)
    eval_rate = measure_eval(trainer) if trainer.val_loader is not None else None
    print(json.dumps({"train_images_per_s": rate, "eval_images_per_s": eval_rate, "depth": cfg.depth,
                      "block": cfg.block, "batch_size": cfg.batch_size,
                      "device": str(trainer.device), "precision": trainer.precision,
                      "channels_last": trainer.channels_last, "compile": trainer.compile, "steps": args.steps,
                      "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
