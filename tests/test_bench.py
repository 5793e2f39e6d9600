"""The benchmark's command line: every refusal one line, exit code 2, no traceback."""

from __future__ import annotations

import pytest

from resnet_core import bench

TINY = ["--depth", "8", "--batch-size", "50", "--val-size", "100", "--device", "cpu", "--no-compile"]


@pytest.mark.parametrize("flags, message", [
    (["--steps", "0"], "--steps must be at least 1"),  # printed a speed of 0 images/s
    (["--steps", "-1"], "--steps must be at least 1"),
    (["--warmup", "-5"], "--warmup must be at least 0"),
    (["--peer", "PEER", "--rounds", "0"], "--rounds must be at least 1"),  # a StatisticsError traceback
    (["--peer", "PEER", "--peer-workers", "-1"], "--peer-workers must be at least 0"),
    (["--peer", "missing.py"], "--peer missing.py is not a file"),  # a CalledProcessError traceback
    (["--peer", "FAILING", "--rounds", "1", "--steps", "1", "--warmup", "0"],
     "failing.py failed (exit code 3): no GPU here"),  # a CalledProcessError traceback
])
def test_bad_flags_and_a_failing_peer_are_one_line_exit_2(cifar_dir, tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "peer.py").write_text("print('{\"train_images_per_s\": 1.0}')\n")
    (tmp_path / "failing.py").write_text("import sys\nsys.stderr.write('no GPU here\\n')\nsys.exit(3)\n")
    flags = [{"PEER": "peer.py", "FAILING": "failing.py"}.get(f, f) for f in flags]
    assert bench.main(["--data-dir", str(cifar_dir), *TINY, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
