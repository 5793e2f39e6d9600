"""Loading a run's model, reading images from outside CIFAR-10, and the predict command line:
outputs on PNG and JPEG files made here, --top, --json, and one-line refusals (exit code 2)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_runs import make_run, write_checkpoint
from PIL import Image

from resnet_core import images as images_module
from resnet_core import predict, run_model
from resnet_core.images import ImageRefused, model_input

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A ResNet-8 run with a real last.pt and a different best.pt."""
    run = make_run(tmp_path_factory.mktemp("runs"), "predict", depth=8)
    write_checkpoint(run, "last.pt", seed=0, epoch=3)
    write_checkpoint(run, "best.pt", seed=1, epoch=2)
    return run


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    made = {"photo.png": (60, 45), "photo.jpg": (40, 64)}
    out = {}
    for name, (w, h) in made.items():
        path = folder / name
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        out[name] = path
    (folder / "notes.txt").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    Image.new("RGB", (images_module.MAX_SIDE + 1, 1)).save(folder / "wide.png")  # a tiny file of a huge width
    out.update({n: folder / n for n in ("notes.txt", "empty.png", "wide.png")})
    return out


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = predict.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- loading a run's model

def test_a_last_pt_saved_mid_epoch_says_the_steps_it_holds_beyond_its_completed_epochs(tmp_path):
    # A stop 3 steps into epoch 2 saves last.pt with epoch 1 and partial_epoch; "epoch 1" alone
    # claimed epoch 1's end weights, whose test predictions Analyze shows and Predict's differed from.
    run = make_run(tmp_path, "stopped-mid", depth=8)
    write_checkpoint(run, "last.pt", epoch=1)
    state = torch.load(run / "last.pt", weights_only=True)
    torch.save({**state, "step": 10, "partial_epoch": {"epoch": 2, "batch": 3, "seconds": 0.3}}, run / "last.pt")
    mid = run_model.load_run_model(run, "last")
    assert (mid.epoch, mid.steps_into_epoch) == (1, 3)
    assert mid.description == "ResNet-8, last.pt, epoch 1 and 3 steps of epoch 2"
    write_checkpoint(run, "last.pt", epoch=2)  # saved at an epoch's end: partial_epoch absent (or null)
    assert run_model.load_run_model(run, "last").description == "ResNet-8, last.pt, epoch 2"


def test_best_and_last_load_their_own_weights_and_best_falls_back_to_last(run_dir, tmp_path):
    best, last = run_model.load_run_model(run_dir, "best"), run_model.load_run_model(run_dir, "last")
    assert (best.checkpoint, best.epoch, best.note) == ("best.pt", 2, None)
    assert (last.checkpoint, last.epoch, last.name) == ("last.pt", 3, "ResNet-8")
    assert not best.model.training and best.classes[0] == "airplane"
    assert best.stats.mean == (0.4914, 0.4822, 0.4465)
    x = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    assert not torch.equal(best.probabilities(x), last.probabilities(x))
    only_last = make_run(tmp_path, "no-best", depth=8)
    write_checkpoint(only_last, "last.pt")
    fallback = run_model.load_run_model(only_last, "best")
    assert fallback.checkpoint == "last.pt" and "has no best.pt" in fallback.note and "using last.pt" in fallback.note


@pytest.mark.parametrize("case, message", [
    ("not a folder", "is not a folder"),
    ("no config", "is not a run folder (no config.json)"),
    ("no checkpoint", "has no best.pt and no last.pt"),
    ("corrupt", "last.pt is corrupt: not a checkpoint of weights (Unsupported operand 110)"),
    ("code", "best.pt is corrupt: not a checkpoint of weights (Trying to load unsupported GLOBAL posix.system"),
    ("truncated", "best.pt is corrupt: RuntimeError: PytorchStreamReader failed reading zip archive"),
    ("no model", "best.pt is corrupt: it lacks model"),
    ("other model", "best.pt is corrupt: its weights are not those of the recorded ResNet-20"),
    ("no normalization", "records no usable normalization"),
    ("symlinked", "best.pt is corrupt: best.pt is a symbolic link"),  # readers never follow one
])
def test_a_model_that_cannot_load_says_why_in_one_line(tmp_path, case, message):
    run = make_run(tmp_path, case.replace(" ", "-"), depth=8, with_checkpoint=case != "no checkpoint")
    which = "best"
    if case == "not a folder":
        run = run / "config.json"
    elif case == "no config":
        (run / "config.json").unlink()
    elif case == "corrupt":
        which = "last"  # make_run's last.pt holds text
    elif case == "no model":
        torch.save({"epoch": 1}, run / "best.pt")
    elif case == "code":
        torch.save({"model": _RunsCode()}, run / "best.pt")
    elif case == "truncated":
        write_checkpoint(run, "best.pt")
        (run / "best.pt").write_bytes((run / "best.pt").read_bytes()[:100])
    elif case == "other model":
        write_checkpoint(run, "best.pt")
        config = json.loads((run / "config.json").read_text())
        config["config"]["depth"] = 20
        (run / "config.json").write_text(json.dumps(config))
    elif case == "no normalization":
        write_checkpoint(run, "best.pt")
        config = json.loads((run / "config.json").read_text())
        del config["resolved"]["normalization"]
        (run / "config.json").write_text(json.dumps(config))
    elif case == "symlinked":
        write_checkpoint(run, "elsewhere.pt")
        (run / "best.pt").symlink_to("elsewhere.pt")
    with pytest.raises(run_model.ModelLoadError) as e:
        run_model.load_run_model(run, which)
    assert message in str(e.value) and "\n" not in str(e.value)
    # torch's advice (load it with weights_only=False: running its code) is never passed on.
    assert "weights_only" not in str(e.value) and "internal miniz error" not in str(e.value), str(e.value)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


# ----------------------------------------------------------------------------- images from outside

def _png(image: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **options)
    return buf.getvalue()


class _RunsAShellCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_checkpoint_whose_pickle_runs_code_is_refused_unrun_without_unsafe_advice(tmp_path, files, capsys):
    """torch's refusal opened with "Re-running torch.load with weights_only set to False
    will likely succeed": the one line a user saw advised running the file's code."""
    run = make_run(tmp_path, "crafted", depth=8)
    marker = tmp_path / "MARKER"
    torch.save({"model": _RunsAShellCommand(f"touch {marker}")}, run / "best.pt")
    code, out, err = run_cli(capsys, run, files["photo.png"])
    assert code == 2 and out == "" and not marker.exists()
    assert err.startswith("python -m resnet_core.predict: best.pt is corrupt: not a checkpoint of weights (Trying "
                          "to load unsupported GLOBAL posix.system")
    assert err.count("\n") == 1 and "weights_only=False" not in err


def test_an_image_is_centre_cropped_to_a_square_and_resized_to_32x32_rgb():
    wide = np.zeros((32, 96, 3), dtype=np.uint8)
    wide[:, :, 2] = 255  # blue sides
    wide[:, 32:64] = (255, 0, 0)  # a red middle square
    x = model_input(_png(Image.fromarray(wide)), "wide.png")
    assert x.shape == (3, 32, 32) and x.dtype == np.uint8
    assert (x[0] == 255).all() and (x[2] == 0).all()  # the middle, not squashed
    grey = model_input(_png(Image.new("L", (64, 64), 77)), "grey.png")
    assert (grey == 77).all()  # greyscale to three equal channels; a plain image stays plain when shrunk
    clear = model_input(_png(Image.new("RGBA", (40, 40), (0, 0, 0, 0))), "clear.png")
    assert (clear == 255).all()  # transparency on white, not on the black its pixels hold


def test_exif_orientation_is_applied():
    tall = np.zeros((64, 32, 3), dtype=np.uint8)
    tall[:32] = 255  # white top half, as stored
    image = Image.fromarray(tall)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif, quality=95)
    x = model_input(buf.getvalue(), "rotated.jpg")
    # Viewed upright, the stored top half is on the right: after the centre crop, the right columns are white.
    assert x[:, :, -4:].mean() > 200 and x[:, :, :4].mean() < 50


@pytest.mark.parametrize("data, message", [
    (b"", "empty file"),
    (b"GIF89a not what we take", "not a PNG, JPEG or WebP image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a PNG, JPEG or WebP image"),
])
def test_bytes_that_are_no_usable_image_are_refused_in_one_line(data, message):
    with pytest.raises(ImageRefused, match=message):
        model_input(data, "upload")


def test_a_truncated_jpeg_is_refused_as_damaged():
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    with pytest.raises(ImageRefused, match="damaged image"):
        model_input(buf.getvalue()[:600], "cut.jpg")


def test_size_and_pixel_limits_are_judged_before_decoding(monkeypatch):
    with pytest.raises(ImageRefused, match=r"10,001x1 pixels is over the 10,000x10,000 limit"):
        model_input(_png(Image.new("RGB", (10_001, 1))), "wide.png")
    monkeypatch.setattr(images_module, "MAX_BYTES", 100)
    with pytest.raises(ImageRefused, match=r"MB is over the 0.0 MB limit"):
        model_input(_png(Image.effect_noise((64, 64), 50)), "big.png")
    monkeypatch.undo()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a bomb: more pixels than allowed, from the header
    with pytest.raises(ImageRefused, match="decompression-bomb limit"):
        model_input(_png(Image.new("RGB", (40, 40))), "bomb.png")


# ----------------------------------------------------------------------------- the command line

def test_text_output_names_each_file_and_its_top_5(run_dir, files, capsys):
    code, out, err = run_cli(capsys, run_dir, files["photo.png"], files["photo.jpg"])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{files['photo.png']}: ") and lines[1].startswith(
        f"{files['photo.jpg']}: ")
    model = run_model.load_run_model(run_dir, "best")
    expected = predict.predict(model, model_input(files["photo.png"].read_bytes(), "x")[None], 5)[0]
    assert lines[0] == predict.text_line(str(files["photo.png"]), expected)
    assert lines[0].count("%") == 5


def test_json_output_with_top_and_the_last_checkpoint(run_dir, files, capsys):
    code, out, _ = run_cli(capsys, run_dir, files["photo.jpg"], "--json", "--top", "3", "--checkpoint", "last")
    assert code == 0
    result = json.loads(out)
    assert [r["file"] for r in result] == [str(files["photo.jpg"])]
    top = result[0]["top"]
    assert len(top) == 3 and all(isinstance(c, str) and 0 <= p <= 1 for c, p in top)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    model = run_model.load_run_model(run_dir, "last")
    probs = model.probabilities(torch.from_numpy(model_input(files["photo.jpg"].read_bytes(), "x")[None]))[0]
    assert top[0] == [model.classes[int(probs.argmax())], pytest.approx(float(probs.max()))]
    _, best_out, _ = run_cli(capsys, run_dir, files["photo.jpg"], "--json", "--top", "3")
    assert json.loads(best_out) != result  # best.pt holds other weights


@pytest.mark.parametrize("which, message", [
    ("missing", "no such file"),
    ("notes.txt", "not a PNG, JPEG or WebP image"),
    ("empty.png", "empty file"),
    ("wide.png", "over the 10,000x10,000 limit"),
    ("bad run", "is not a run folder (no config.json)"),
    ("no checkpoint", "has no last.pt"),
    ("top 0", "--top must be at least 1"),
    ("a FIFO", "is a FIFO, not an image file"),  # was "empty file", as stat gives it no size
    ("a device", "is a device, not an image file"),
])
def test_refusals_are_one_line_with_exit_code_2_and_nothing_on_stdout(run_dir, files, tmp_path, capsys, which,
                                                                       message):
    run, image, extra = run_dir, files["photo.png"], []
    if which == "missing":
        image = tmp_path / "missing.png"
    elif which in files:
        image = files[which]
    elif which == "bad run":
        run = tmp_path
    elif which == "no checkpoint":
        run, extra = make_run(tmp_path, "empty", depth=8, with_checkpoint=False), ["--checkpoint", "last"]
    elif which == "a FIFO":
        image = tmp_path / "pipe.png"
        os.mkfifo(image)
    elif which == "a device":
        image = Path("/dev/zero")
    else:
        extra = ["--top", "0"]
    code, out, err = run_cli(capsys, run, image, *extra)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_the_module_runs_from_the_command_line(run_dir, files):
    out = subprocess.run([sys.executable, "-m", "resnet_core.predict", str(run_dir), str(files["photo.png"]),
                          "--json", "--top", "2"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)[0]["top"]) == 2


# ----------------------------------------------------------------------------- memory of large images

def zero_png(width: int, height: int, colour_type: int = 2) -> bytes:
    """A PNG of zeros (colour type 2: RGB, 6: RGBA) made row by row, never held decoded: a
    9400x9400 one is 0.4 MB here and 265 MB of pixels to whoever decodes it."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\0" * (1 + width * {2: 3, 6: 4}[colour_type])  # filter byte 0, then the pixels
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def large_jpeg(width: int, height: int) -> bytes:
    """A JPEG photo-sized and small on disk: a red square in the middle of a blue one."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    side = min(width, height) // 2
    image.paste((255, 0, 0), ((width - side) // 2, (height - side) // 2, (width + side) // 2, (height + side) // 2))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_a_png_too_large_to_hold_decoded_is_refused_from_its_header():
    with pytest.raises(ImageRefused) as e:
        model_input(zero_png(9400, 9400), "zeros.png")
    assert str(e.value) == ("zeros.png: 9,400x9,400 is 88.4 megapixels decoded, over the "
                            f"{images_module.MAX_PIXELS / 1e6:g} megapixel limit")
    assert model_input(zero_png(5000, 5000, 6), "at the limit.png").shape == (3, 32, 32)


def test_a_large_jpeg_is_decoded_reduced_and_still_seen_right():
    x = model_input(large_jpeg(9000, 6000), "photo.jpg")
    assert x.shape == (3, 32, 32)
    centre, corner = x[:, 14:18, 14:18].reshape(3, -1).mean(1), x[:, :3, :3].reshape(3, -1).mean(1)
    assert centre[0] > 240 and centre[2] < 15 and corner[2] > 240 and corner[0] < 15


def _jpeg(image: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", **options)
    return buf.getvalue()


def test_a_progressive_jpeg_is_judged_by_what_it_holds_whole():
    """A phone's 48-megapixel progressive photo (4:2:0: 72 million samples, 143 MB measured)
    decodes; a 9,400 px square one in 4:4:4 is refused from its header."""
    assert model_input(_jpeg(Image.new("RGB", (8000, 6000)), progressive=True), "phone.jpg").shape == (3, 32, 32)
    with pytest.raises(ImageRefused, match="^square.jpg: a progressive JPEG of 9,400x9,400 is held whole"):
        model_input(_jpeg(Image.new("RGB", (9400, 9400)), progressive=True, subsampling=0), "square.jpg")


# The peak resident memory of the process (VmHWM), reset first (clear_refs 5): ru_maxrss would
# carry over the forking pytest's own peak across exec.
PEAK_SCRIPT = """
import json, sys
from resnet_core.dashboard import uploads

def kb(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field + ":"))

data = open(sys.argv[1], "rb").read()
open("/proc/self/clear_refs", "w").write("5")
before = kb("VmRSS")
(upload,) = uploads.read_uploads([(sys.argv[1], data)])
print(json.dumps({"mb": (kb("VmHWM") - before) / 1024, "problem": upload.problem}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["zeros 9400x9400.png", "zeros 5000x5000 RGBA.png", "palette 5000x5000 with a "
                                  "transparent colour.png", "photo 9000x6000.jpg",
                                  "progressive 9400x9400 4:4:4.jpg", "progressive CMYK 9400x9400.jpg"])
def test_one_uploads_peak_memory_stays_under_300_mb(tmp_path, name):
    """What the Predict page does with one file, in a fresh process: its peak resident memory
    above what the process held before (the file's bytes included)."""
    path = tmp_path / name
    path.write_bytes({"zeros 9400x9400.png": lambda: zero_png(9400, 9400),
                      "zeros 5000x5000 RGBA.png": lambda: zero_png(5000, 5000, 6),
                      "palette 5000x5000 with a transparent colour.png": lambda: _png(Image.new("P", (5000, 5000)),
                                                                                       transparency=0),
                      "photo 9000x6000.jpg": lambda: large_jpeg(9000, 6000),
                      # libjpeg keeps a progressive file's coefficients at full size whatever the
                      # scale it decodes to: 514 MB and 682 MB here before they were bounded.
                      "progressive 9400x9400 4:4:4.jpg": lambda: _jpeg(Image.new("RGB", (9400, 9400)),
                                                                       progressive=True, subsampling=0),
                      "progressive CMYK 9400x9400.jpg": lambda: _jpeg(Image.new("CMYK", (9400, 9400)),
                                                                      progressive=True)}[name]())
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    measured = json.loads(out.stdout)
    print(f"{name} ({path.stat().st_size / 1e6:.2f} MB on disk): peak {measured['mb']:.0f} MB above the "
          f"process's baseline; refused: {measured['problem']}")
    assert measured["mb"] < 300


def test_the_upload_limit_is_one_number_in_config_widget_and_readme():
    import tomllib

    from resnet_core.dashboard import uploads

    limit_mb = images_module.MAX_BYTES // 2**20
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == limit_mb == uploads.UPLOAD_LIMIT_MB
    assert f"at most {limit_mb} MB each" in uploads.UPLOAD_LABEL
    assert f"at most {limit_mb} MB" in " ".join((ROOT / "README.md").read_text().split())
    assert "megapixel" in uploads.UPLOAD_HELP and f"{images_module.MAX_SIDE:,} px" in uploads.UPLOAD_HELP
