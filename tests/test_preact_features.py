"""Every feature of a run works for pre-activation networks (issue 26): export (TorchScript,
ONNX), predict, Grad-CAM through the run's model, resume, two Gloo ranks, and a sweep over
--preact. Tiny networks: ResNet-8 (basic) and ResNet-11 (bottleneck)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_runs import make_run, write_checkpoint
from test_distributed import TINY as DDP_TINY
from test_distributed import only_run, run_torchrun
from test_sweep import TINY as SWEEP_TINY

from resnet_core import export, predict, runs, sweep, train
from resnet_core.images import model_input
from resnet_core.run_model import load_run_model

NETWORKS = [("basic", 8), ("bottleneck", 11)]


def preact_run(runs_dir: Path, block: str, depth: int) -> Path:
    """A fake completed run of a pre-activation network with a real best.pt."""
    run_dir = make_run(runs_dir, f"preact-{block}", depth=depth, shortcut="A" if block == "basic" else "B")
    record = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    record["config"].update(block=block, preact=True)
    del record["model"]  # the fake's is ResNet-20's
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, record)
    write_checkpoint(run_dir, "best.pt", seed=3)
    return run_dir


@pytest.fixture(scope="module", params=NETWORKS, ids=[b for b, _ in NETWORKS])
def run_dir(request, tmp_path_factory) -> Path:
    block, depth = request.param
    return preact_run(tmp_path_factory.mktemp("runs"), block, depth)


def images(n: int = 4) -> torch.Tensor:
    """uint8 images (n, 3, 32, 32)."""
    return torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)


def test_the_run_loads_as_a_pre_activation_network(run_dir):
    model = load_run_model(run_dir, "best")
    assert model.name.startswith("PreAct-ResNet-") and model.model.preact
    assert torch.equal(torch.load(run_dir / "best.pt", weights_only=True)["model"]["bn_final.running_var"],
                       model.model.bn_final.running_var)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_round_trips_a_preact_run(run_dir, tmp_path, capsys, fmt):
    if fmt == "onnx":
        onnxruntime = pytest.importorskip("onnxruntime",
                                          reason="the ONNX extra (requirements-export.txt) is not installed")
    out = tmp_path / f"model.{fmt}"
    assert export.main([str(run_dir), "--format", fmt, "--out", str(out)]) == 0
    assert f"({fmt}, PreAct-ResNet-" in capsys.readouterr().out
    x = images()
    model = load_run_model(run_dir, "best")
    with torch.no_grad():
        expected = model.model(model.inputs(x))
    float_x = x.float() / 255
    if fmt == "torchscript":
        with torch.no_grad():
            got = torch.jit.load(str(out))(float_x)
    else:
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(["logits"], {"images": float_x.numpy()})[0])
    assert (got - expected).abs().max() <= 1e-4


def test_predict_and_grad_cam_of_a_preact_run(run_dir, tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
    assert predict.main([str(run_dir), str(path), "--json", "--top", "3"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    model = load_run_model(run_dir, "best")
    probs = model.probabilities(torch.from_numpy(model_input(path.read_bytes(), "x")[None]))[0]
    assert result["top"][0] == [model.classes[int(probs.argmax())], pytest.approx(float(probs.max()))]
    cams, explained = model.explain(images().numpy())
    assert cams.shape == (4, 32, 32) and np.allclose(explained, model.probabilities(images()).numpy(), atol=1e-6)
    assert all(cam.max() == 1 and cam.min() < 0.99 for cam in cams)


# ----------------------------------------------------------------------------- training processes

TINY = ["--preact", "--depth", "11", "--block", "bottleneck", "--batch-size", "50", "--val-size", "100",
        "--log-every", "2", "--seed", "1", "--device", "cpu", "--precision", "fp32", "--no-compile"]


class StopAfter:
    """StopRequested that asks for a stop at its n-th look (the loop looks after every step)."""

    looks = 12

    def __init__(self):
        self.seen = 0

    def install(self) -> None:
        pass

    def __bool__(self) -> bool:
        self.seen += 1
        return self.seen >= self.looks


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / runs.LAST_CHECKPOINT, weights_only=True)["model"]


@pytest.mark.slow
def test_a_stopped_preact_run_resumes_to_the_uninterrupted_runs_weights(cifar_dir, tmp_path, monkeypatch):
    common = ["--data-dir", str(cifar_dir), "--epochs", "2", *TINY]
    assert train.main([*common, "--runs-dir", str(tmp_path / "whole")]) == 0
    reference = only_run(tmp_path / "whole")
    with monkeypatch.context() as patches:
        patches.setattr(train, "StopRequested", StopAfter)
        assert train.main([*common, "--runs-dir", str(tmp_path / "stopped")]) == 0
    run_dir = only_run(tmp_path / "stopped")
    info = runs.read_run(run_dir)
    assert info.state == "stopped" and info.model_name == "PreAct-ResNet-11"
    assert 0 < torch.load(run_dir / runs.LAST_CHECKPOINT, weights_only=True)["step"] < 16
    assert train.main(["--resume", str(run_dir)]) == 0
    assert runs.read_run(run_dir).state == "completed"
    ours, theirs = weights(run_dir), weights(reference)
    assert "bn_final.weight" in ours and all(torch.equal(ours[k], theirs[k]) for k in theirs)


@pytest.mark.slow
def test_two_gloo_ranks_train_a_preact_run(cifar_dir, tmp_path):
    runs_dir = tmp_path / "runs"
    done = run_torchrun("--data-dir", str(cifar_dir), "--runs-dir", str(runs_dir), "--epochs", "1", *DDP_TINY,
                        "--preact", "--no-compile")
    assert done.returncode == 0, done.stdout + done.stderr
    info = runs.read_run(only_run(runs_dir))
    assert info.state == "completed" and info.config["resolved"]["world_size"] == 2
    assert info.model_name == "PreAct-ResNet-8" and info.train_config["preact"] is True
    model = load_run_model(info.path, "last")
    assert model.model.preact and np.isfinite(model.probabilities(images()).numpy()).all()


def test_a_sweep_over_preact_plans_both_unit_orders(cifar_dir, tmp_path, capsys):
    assert sweep.main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path / "runs"), "--name", "units",
                       *SWEEP_TINY, "--epochs", "1", "--depth", "8", "--vary", "preact=false,true", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "sweep units: 2 runs (preact = 2), at most 1 at once"
    assert out[1].startswith("  units-preactfalse: ResNet-8 (basic, shortcut A)")
    assert out[2].startswith("  units-preacttrue: PreAct-ResNet-8 (basic, shortcut A)")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_sweep_over_preact_trains_both_and_reports_them_apart(cifar_dir, tmp_path, capsys):
    from test_sweep import sweep as sweep_process

    runs_dir = tmp_path / "runs"
    done = sweep_process("--data-dir", cifar_dir, "--runs-dir", runs_dir, "--name", "units", *SWEEP_TINY,
                         "--epochs", "1", "--depth", "8", "--device", "cpu", "--vary", "preact=false,true")
    assert done.returncode == 0, done.stdout + done.stderr
    infos = sorted(runs.list_runs(runs_dir), key=lambda i: i.run_id)
    assert [(i.model_name, i.state) for i in infos] == [("ResNet-8", "completed"), ("PreAct-ResNet-8", "completed")]
    assert sweep.main(["--runs-dir", str(runs_dir), "--report", "units", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(r["preact"], r["model"], r["runs"]) for r in report] == [(False, "ResNet-8", 1),
                                                                     (True, "PreAct-ResNet-8", 1)]
