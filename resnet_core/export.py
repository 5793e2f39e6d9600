"""Export a run's model for use outside this project:
``python -m resnet_core.export RUN_DIR --format torchscript|onnx --out FILE [--checkpoint best|last]``.

The exported model has the run's normalisation built in. Its input is a batch of RGB
images, N x 3 x S x S (channels first, any N), S the run's image size (config.json's
``resolved.image_size``; 32 for CIFAR):

* float32 with values in [0, 1] (pixel / 255), for both formats;
* TorchScript also takes uint8 in [0, 255] (divided by 255 inside).

TorchScript is what ``torch.jit.load`` (Python) and LibTorch (C++) load; torch 2.14 calls
it deprecated in favour of ``torch.export`` but still loads and runs it.

Its output is the logits, N x classes, in the order of the run's config.json ``classes``
(softmax them for probabilities). Images of another size must be brought to S x S first,
by the run's resize rule, as :mod:`resnet_core.images` does.

--out must be a new file name or a regular file (replaced whole); a symbolic link, folder,
device or FIFO is refused (see :mod:`resnet_core.outputs`). Before anything is written at
--out, the exported file is written to a temporary file beside it, loaded back
(``torch.jit.load``; ONNX Runtime for ONNX) and run on a fixed batch of random images; its
logits must match PyTorch's within TOLERANCE (absolute) or the export is refused and the
temporary file removed. The max abs difference is printed.

ONNX needs the extra in requirements-export.txt: torch's exporter (``dynamo=True``, the
default and only maintained one in this torch) needs ``onnxscript`` and ``onnx``, the check
``onnxruntime``. Without them ``--format onnx`` is refused in one line saying how to
install them. Their warnings are not shown (see _quiet_libraries): the command prints its
own line, or its refusal.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from . import runs
from .outputs import OutputRefused, check_output_path, replacing
from .run_model import ModelLoadError, RunModel, load_run_model

PROG = "python -m resnet_core.export"
FORMATS = ("torchscript", "onnx")
TOLERANCE = 1e-4  # logits are O(10) in fp32; measured differences: 0 (TorchScript), ~1e-6 (ONNX Runtime)
CHECK_BATCH = 16
ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")
ONNX_INSTALL = "pip install -r requirements-export.txt"


class ExportRefused(Exception):
    """An export that cannot be made or did not match: one line, nothing written."""


class Normalized(nn.Module):
    """The model behind the run's normalisation: images in [0, 1] (or uint8) to logits."""

    def __init__(self, run_model: RunModel):
        super().__init__()
        self.model = run_model.model
        self.register_buffer("mean", torch.tensor(run_model.stats.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(run_model.stats.std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            x = images.float() / 255.0
        else:
            x = images.float()
        return self.model((x - self.mean) / self.std)


def check_batch(image_size: int) -> torch.Tensor:
    """The fixed batch every export is traced and checked on: uniform random images in [0, 1]
    of the run's size."""
    return torch.rand(CHECK_BATCH, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))


def onnx_missing() -> list[str]:
    return [m for m in ONNX_MODULES if importlib.util.find_spec(m) is None]


def check_format(fmt: str) -> None:
    """ExportRefused for a format unknown, or one this installation cannot write."""
    if fmt not in WRITERS:
        raise ExportRefused(f"unknown format {fmt!r}: choose {' or '.join(FORMATS)}")
    missing = onnx_missing() if fmt == "onnx" else []
    if missing:
        raise ExportRefused(f"--format onnx needs {', '.join(missing)}: {ONNX_INSTALL}")


def _write_torchscript(wrapper: Normalized, path: Path, example: torch.Tensor) -> None:
    # Trace the network (its ShortcutA pads with a tuple TorchScript cannot script) and script the
    # wrapper around it, so the uint8 branch survives: a trace would keep only the dtype it saw.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 calls TorchScript deprecated; it still works
        wrapper.model = torch.jit.trace(wrapper.model, (example,))
        torch.jit.save(torch.jit.script(wrapper), str(path))


def _run_torchscript(path: Path, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu")(images)


# The ONNX export's libraries: what they warn of on the way (their own deprecations, optimizer
# passes, opset conversion) is nothing a user of this command can act on, and a failure still
# raises. ONNX Runtime logs from C++, at severity 3 and up: errors only.
ONNX_LOGGERS = ("torch", "onnx", "onnxscript", "onnx_ir", "onnxruntime")
ORT_ERRORS_ONLY = 3


@contextlib.contextmanager
def _quiet_libraries():
    """No Python warning, and no log record below ERROR from ONNX_LOGGERS (those existing and
    those made meanwhile), while the block runs; levels restored after."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name.split(".", 1)[0] in ONNX_LOGGERS] + [logging.getLogger(name) for name in ONNX_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _write_onnx(wrapper: Normalized, path: Path, example: torch.Tensor) -> None:
    batch = torch.export.Dim("batch", min=1)
    with _quiet_libraries():
        program = torch.onnx.export(wrapper, (example,), input_names=["images"], output_names=["logits"],
                                    dynamic_shapes={"images": {0: batch}}, dynamo=True, verbose=False)
        program.save(str(path), external_data=False)  # one file: ResNet-110's 1.7M weights are 7 MB


def _run_onnx(path: Path, images: torch.Tensor) -> torch.Tensor:
    import onnxruntime

    with _quiet_libraries():
        onnxruntime.set_default_logger_severity(ORT_ERRORS_ONLY)  # before the session makes its environment
        options = onnxruntime.SessionOptions()
        options.log_severity_level = ORT_ERRORS_ONLY
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(["logits"], {"images": images.numpy()})[0])


# format: (write, run, the input dtypes it takes and is checked with)
WRITERS = {"torchscript": (_write_torchscript, _run_torchscript, (torch.float32, torch.uint8)),
           "onnx": (_write_onnx, _run_onnx, (torch.float32,))}


def max_difference(expected: torch.Tensor, got: torch.Tensor) -> float:
    """The largest absolute difference of two logit batches (inf when their shapes differ)."""
    if tuple(expected.shape) != tuple(got.shape):
        return float("inf")
    return float((expected.float() - got.float()).abs().max())


def export(run_model: RunModel, fmt: str, out: str | os.PathLike) -> float:
    """Write the exported model to out and return the max abs difference of its logits from
    PyTorch's on the check batch (as float, and as uint8 where the format takes it);
    ExportRefused (nothing at out, no temporary file left)
    when it cannot be exported or differs by more than TOLERANCE, OutputRefused when out is
    neither a new name nor a regular file."""
    check_format(fmt)
    check_output_path(out, "--out")  # before the work: a refusal comes at once
    write, run, dtypes = WRITERS[fmt]
    wrapper = Normalized(run_model).eval()
    example = check_batch(run_model.image_size)
    batches = [example if dtype == torch.float32 else (example * 255).round().to(dtype) for dtype in dtypes]
    with torch.no_grad():
        expected = [wrapper(images) for images in batches]
    with replacing(out, "--out") as tmp:
        try:
            write(wrapper, tmp, example)
            diff = max(max_difference(want, run(tmp, images)) for want, images in zip(expected, batches, strict=True))
        except Exception as e:  # the exporter's own failures, one line
            raise ExportRefused(f"{fmt} export failed: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"
                                ) from None
        if not diff <= TOLERANCE:
            raise ExportRefused(f"the exported {fmt} model's logits differ from PyTorch's by {diff:.3g} (over "
                                f"{TOLERANCE:g}): not written")
    return diff


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog=PROG, description="Export a run's model, normalisation included, to TorchScript or ONNX.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=FORMATS, required=True, dest="fmt")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--checkpoint", choices=tuple(runs.CHECKPOINTS), default="best",
                   help="best.pt (default; last.pt where the run has none) or last.pt")
    args = p.parse_args(argv)
    try:
        check_format(args.fmt)  # before loading anything
        check_output_path(args.out, "--out")
        run_model = load_run_model(args.run_dir, args.checkpoint)
        if run_model.note:
            print(run_model.note, file=sys.stderr)
        diff = export(run_model, args.fmt, args.out)
    except (ModelLoadError, ExportRefused, OutputRefused) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({args.fmt}, {run_model.description}); max abs difference of the logits from "
          f"PyTorch on {CHECK_BATCH} images: {diff:.3g} (tolerance {TOLERANCE:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
