"""Export with the normalisation built in: TorchScript and ONNX files that give PyTorch's
logits on images in [0, 1], a refusal that leaves nothing behind when the check fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fake_runs import make_run, write_checkpoint

from resnet_core import export
from resnet_core.run_model import load_run_model

TOLERANCE = 1e-4  # fp32 logits of O(10); measured 0 for TorchScript and 3e-6 for ONNX Runtime


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = make_run(tmp_path_factory.mktemp("runs"), "export", depth=8)
    write_checkpoint(run, "best.pt", seed=3)
    return run


def images(n: int = 5) -> torch.Tensor:
    """Images in [0, 1] other than the export's own check batch."""
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(42))


def pytorch_logits(run_dir: Path, x: torch.Tensor) -> torch.Tensor:
    """What the run's model gives for images in [0, 1], normalised as in training."""
    model = load_run_model(run_dir, "best")
    with torch.no_grad():
        return model.model(model.inputs((x * 255).round().to(torch.uint8)))


def test_torchscript_round_trip_in_float_and_uint8(run_dir, tmp_path, capsys):
    out = tmp_path / "model.pt"
    assert export.main([str(run_dir), "--format", "torchscript", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (torchscript, ResNet-8, best.pt" in printed and "max abs difference" in printed
    loaded = torch.jit.load(str(out))
    x = (images() * 255).round() / 255  # exactly representable as uint8
    expected = pytorch_logits(run_dir, x)
    with torch.no_grad():
        assert (loaded(x) - expected).abs().max() <= TOLERANCE
        assert (loaded((x * 255).round().to(torch.uint8)) - expected).abs().max() <= TOLERANCE
        assert loaded(images(1)).shape == (1, 10)  # any batch size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temporary file left


def test_onnx_round_trip_with_onnx_runtime(run_dir, tmp_path, capsys):
    onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX extra (requirements-export.txt) is not installed")
    out = tmp_path / "model.onnx"
    assert export.main([str(run_dir), "--format", "onnx", "--out", str(out)]) == 0
    assert "(onnx, ResNet-8, best.pt" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for n in (5, 1):  # the batch dimension is dynamic
        x = (images(n) * 255).round() / 255
        got = torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])
        assert (got - pytorch_logits(run_dir, x)).abs().max() <= TOLERANCE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_an_export_that_does_not_match_is_refused_and_nothing_is_written(run_dir, tmp_path, capsys, monkeypatch,
                                                                         fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="the ONNX extra (requirements-export.txt) is not installed")
    monkeypatch.setattr(export, "max_difference", lambda expected, got: 0.5)
    out = tmp_path / f"model.{fmt}"
    assert export.main([str(run_dir), "--format", fmt, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "differ from PyTorch's by 0.5 (over 0.0001): not written" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_onnx_without_the_extra_says_how_to_install_it(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export, "onnx_missing", lambda: ["onnxscript", "onnxruntime"])
    assert export.main([str(run_dir), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err == ("python -m resnet_core.export: --format onnx needs onnxscript, onnxruntime: "
                   "pip install -r requirements-export.txt\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case, message", [
    ("bad run", "is not a run folder"),
    ("no checkpoint", "has no best.pt and no last.pt"),
    ("out a folder", "is a folder"),
    ("out in no folder", "is not a folder"),
])
def test_refusals_are_one_line_with_exit_code_2(run_dir, tmp_path, capsys, case, message):
    run, out = run_dir, tmp_path / "m.pt"
    if case == "bad run":
        run = tmp_path
    elif case == "no checkpoint":
        run = make_run(tmp_path, "empty", depth=8, with_checkpoint=False)
    elif case == "out a folder":
        out = tmp_path
    else:
        out = tmp_path / "nowhere" / "m.pt"
    assert export.main([str(run), "--format", "torchscript", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "m.pt").exists()


SPECIAL_TARGETS = {  # what --out may be, as made in a folder: none of it may be followed or replaced
    "a symlink to a file outside": lambda out, outside: out.symlink_to(outside),
    "a dangling symlink": lambda out, outside: out.symlink_to(outside.parent / "gone"),
    "a symlink to a device": lambda out, outside: out.symlink_to("/dev/null"),
    "a symlink to stdout": lambda out, outside: out.symlink_to("/proc/self/fd/1"),
    "a FIFO": lambda out, outside: os.mkfifo(out),
    "a folder": lambda out, outside: out.mkdir(),
}


@pytest.mark.parametrize("kind", SPECIAL_TARGETS)
def test_an_out_that_is_not_a_regular_file_is_refused_and_left_alone(run_dir, tmp_path, capsys, kind):
    outside = tmp_path / "outside" / "notes.txt"
    outside.parent.mkdir()
    outside.write_text("keep\n")
    out = tmp_path / "out" / "m.pt"
    out.parent.mkdir()
    SPECIAL_TARGETS[kind](out, outside)
    before = os.lstat(out)
    assert export.main([str(run_dir), "--format", "torchscript", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m resnet_core.export: --out {out} is ") and err.count("\n") == 1
    assert "not a regular file" in err
    after = os.lstat(out)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode) and outside.read_text() == "keep\n"
    assert os.listdir(out.parent) == ["m.pt"]  # no temporary file either


def test_an_out_that_is_a_regular_file_is_replaced_whole(run_dir, tmp_path, capsys):
    out = tmp_path / "m.pt"
    out.write_bytes(b"an older export")
    other = tmp_path / "hardlink.pt"
    os.link(out, other)  # replaced, not written into: a hard link keeps the old bytes
    assert export.main([str(run_dir), "--format", "torchscript", "--out", str(out)]) == 0
    assert torch.jit.load(str(out))(images(1)).shape == (1, 10) and other.read_bytes() == b"an older export"


NOISY_LIBRARY = """
import logging, sys, warnings
import torch

real_export = torch.onnx.export


def noisy_export(*args, **kwargs):  # what exporters of other versions say on the way
    warnings.warn("a library's UserWarning", UserWarning)
    warnings.warn("a library's DeprecationWarning", DeprecationWarning)
    logging.getLogger("onnxscript.optimizer").warning("a library's logged warning")
    logging.getLogger("torch.onnx._internal.exporter").warning("a library's logged warning")
    logging.getLogger("torch._dynamo").warning("a library's logged warning")
    return real_export(*args, **kwargs)


if sys.argv.pop(1) == "noisy":
    torch.onnx.export = noisy_export
from resnet_core import export
sys.exit(export.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_the_onnx_export_command_prints_no_library_warnings(run_dir, tmp_path):
    """Only the command's own line: the exporter's and ONNX Runtime's warnings say nothing a
    user of this command can act on (PYTHONWARNINGS=always shows even the hidden ones). The
    libraries as installed and made noisy, in two processes side by side (each ~7 s of imports)."""
    pytest.importorskip("onnxruntime", reason="the ONNX extra (requirements-export.txt) is not installed")
    outs = {library: tmp_path / library.split()[-1] / "model.onnx" for library in ("as installed", "noisy")}
    procs = {}
    for library, out in outs.items():
        out.parent.mkdir()
        procs[library] = subprocess.Popen(
            [sys.executable, "-c", NOISY_LIBRARY, library, str(run_dir), "--format", "onnx", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "PYTHONWARNINGS": "always"})
    for library, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0 and stderr == "", (library, stderr)
        assert stdout.startswith(f"wrote {outs[library]} (onnx,") and stdout.count("\n") == 1, (library, stdout)


def test_an_out_whose_name_is_as_long_as_a_folder_allows_is_written(run_dir, tmp_path, capsys):
    """The temporary file beside it must fit the same limit (255 bytes a name on Linux):
    a name of .{name}.{token}.tmp made a 250-byte --out a traceback."""
    out = tmp_path / ("é" * 120 + ".pt")  # 243 bytes in UTF-8
    assert export.main([str(run_dir), "--format", "torchscript", "--out", str(out)]) == 0
    assert torch.jit.load(str(out))(images(1)).shape == (1, 10) and os.listdir(tmp_path) == [out.name]


def test_an_out_that_ends_in_a_slash_names_a_folder_and_is_refused(run_dir, tmp_path, capsys):
    """pathlib drops a trailing slash: "m.pt/" replaced the file m.pt."""
    out = tmp_path / "m.pt"
    out.write_bytes(b"an older export")
    assert export.main([str(run_dir), "--format", "torchscript", "--out", f"{out}/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m resnet_core.export: --out {out}/ ") and err.count("\n") == 1
    assert "names a folder" in err and out.read_bytes() == b"an older export"


def test_an_out_in_a_folder_this_user_cannot_write_is_refused_before_the_work(run_dir, tmp_path, capsys,
                                                                              monkeypatch):
    """Was "torchscript export failed: RuntimeError: [enforce fail at inline_container.cc:747] .
    open file failed with strerror: Permission denied", after loading and tracing the model."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    real_access = os.access  # tests run as root, who may write anywhere: stand in for a read-only folder
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder else real_access(p, mode))
    assert export.main([str(run_dir), "--format", "torchscript", "--out", str(folder / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err == f"python -m resnet_core.export: --out {folder / 'm.pt'}: {folder} is not writable\n"
