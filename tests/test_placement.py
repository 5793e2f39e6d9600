"""Device placement: candidates of a spec, the choice among them, and the lock queue, on fake
GPU lists (the locks are real flocks, so this runs on any CPU)."""

import fcntl
import json
import threading

import pytest
from conftest import wait_until

from resnet_core import placement, runs

GPUS = ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]


@pytest.mark.parametrize("spec, cuda, mps, expected", [
    ("auto", 4, False, GPUS),
    ("cuda", 4, False, GPUS),
    ("cuda:2", 4, False, ["cuda:2"]),
    ("cuda:02", 4, False, ["cuda:2"]),  # one GPU, one name, one lock
    ("cpu", 4, False, ["cpu"]),
    ("auto", 0, True, ["mps"]),
    ("auto", 0, False, ["cpu"]),
    ("mps", 0, True, ["mps"]),
])
def test_candidates_of_a_spec(spec, cuda, mps, expected):
    assert placement.candidate_devices(spec, cuda_count=cuda, mps=mps) == expected


@pytest.mark.parametrize("spec, message", [
    ("cuda", "no CUDA GPU"), ("cuda:4", "only 4 CUDA GPUs"), ("mps", "MPS is not available"), ("tpu", "unknown"),
])
def test_unavailable_specs_are_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        placement.candidate_devices(spec, cuda_count=0 if spec == "cuda" else 4, mps=False)


def test_pick_takes_a_free_gpu_preferring_the_least_loaded():
    assert placement.pick_device(GPUS, busy={"cuda:0", "cuda:1"}, load={}) == "cuda:2"
    assert placement.pick_device(GPUS, busy={"cuda:0"}, load={"cuda:1": 2, "cuda:2": 1, "cuda:3": 1}) == "cuda:2"
    assert placement.pick_device(GPUS, busy=set(GPUS), load={}) is None


def hold(runs_dir, device, slot=0):
    f = open(runs.device_lock_path(runs_dir, device, slot), "a+")
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return f


def test_4_gpus_2_busy_a_run_takes_a_free_one(tmp_path):
    held = [hold(tmp_path, "cuda:0"), hold(tmp_path, "cuda:2")]
    got = placement.acquire(tmp_path, GPUS)
    assert got.device == "cuda:1"
    # The free GPU not taken is left free; the taken one is now held.
    second = placement.acquire(tmp_path, GPUS)
    assert second.device == "cuda:3"
    assert placement.acquire(tmp_path, GPUS, should_stop=lambda: True) is None
    for f in held:
        f.close()


def test_among_free_gpus_the_one_with_fewest_active_runs_is_taken(tmp_path):
    # An active run (this process, so its pid is alive) recorded on cuda:0.
    run = runs.new_run_dir(tmp_path, "busy")
    (run / "config.json").write_text(json.dumps({"format_version": 2, "config": {}, "resolved": {"device": "cuda:0"}}))
    runs.RunWriter(run).set_status(state="running")
    assert placement.device_load(tmp_path) == {"cuda:0": 1}
    assert placement.acquire(tmp_path, ["cuda:0", "cuda:1"], slots=2).device == "cuda:1"


def test_a_queued_run_takes_the_first_device_freed_and_says_what_it_waits_for(tmp_path):
    held = {d: hold(tmp_path, d) for d in GPUS}
    waited_for, result = [], []
    worker = threading.Thread(target=lambda: result.append(
        placement.acquire(tmp_path, GPUS, on_queued=waited_for.append)))
    worker.start()
    assert wait_until(lambda: waited_for), "the run never said it was queued"
    assert waited_for == [GPUS] and not result
    held.pop("cuda:3").close()
    worker.join(60)
    assert result[0].device == "cuda:3"


def test_slots_let_k_runs_share_a_device(tmp_path):
    first = placement.acquire(tmp_path, ["cpu"], slots=2)
    second = placement.acquire(tmp_path, ["cpu"], slots=2)
    assert (first.device, second.device) == ("cpu", "cpu")
    assert placement.acquire(tmp_path, ["cpu"], slots=2, should_stop=lambda: True) is None
    # A single run (one slot) shares slot 0 with the sweep's runs, so it waits too.
    assert placement.acquire(tmp_path, ["cpu"], should_stop=lambda: True) is None
    assert placement.cpu_threads(2) == max(1, placement.os.cpu_count() // 2)


@pytest.mark.slow
def test_a_run_placed_by_its_launcher_takes_no_lock_and_never_queues(cifar_dir, tmp_path):
    """--no-device-lock (a sweep on Ray, which places runs itself): the CPU's lock is held by
    another run here, yet this one trains at once, and leaves the lock to its holder."""
    from test_train import TINY, only_run, trainer

    held = hold(tmp_path, "cpu")
    try:
        result = trainer("--data-dir", cifar_dir, "--runs-dir", tmp_path, "--epochs", 1, "--device", "cpu", *TINY,
                         "--no-device-lock")
        assert result.returncode == 0, result.stderr
        info = runs.read_run(only_run(tmp_path))
        assert info.state == "completed" and info.resolved["device"] == "cpu"
        assert "queued" not in (only_run(tmp_path) / runs.LOG_FILE).read_text()
    finally:
        held.close()
