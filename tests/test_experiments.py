import pytest

from resnet_core.config import TrainConfig, apply_presets
from resnet_core.dashboard.experiments import (
    DEGRADATION,
    DEGRADATION_SHORT,
    Speed,
    experiment_seconds,
    measure_speed,
    run_seconds,
    speed_key,
)


def test_the_degradation_experiment_is_plain_and_residual_20_and_56_with_the_papers_recipe():
    assert DEGRADATION.grid() == [{"depth": 20, "shortcut": "none"}, {"depth": 20, "shortcut": "A"},
                                  {"depth": 56, "shortcut": "none"}, {"depth": 56, "shortcut": "A"}]
    configs = DEGRADATION.configs()
    assert [(c.depth, c.shortcut, c.max_steps, c.val_size, c.preset) for c in configs] == [
        (20, "none", 64_000, 0, "paper"), (20, "A", 64_000, 0, "paper"),
        (56, "none", 64_000, 0, "paper"), (56, "A", 64_000, 0, "paper")]
    assert DEGRADATION.sweep_args(2) == ["--preset", "paper", "--vary", "depth=20,56",
                                         "--vary", "shortcut=none,A", "--parallel", "2"]
    short = DEGRADATION_SHORT.configs()
    assert {(c.subset, c.epochs, c.val_size, c.warmup_epochs) for c in short} == {(10_000, 10, 0, 1.0)}


def test_the_short_experiments_text_gives_its_runs_epochs_warm_up_included():
    # The warm-up is part of --epochs (10 in all): "10 epochs after a 1-epoch warm-up" read as 11.
    epochs = {c.epochs for c in DEGRADATION_SHORT.configs()}
    assert epochs == {10}
    assert "10 epochs (the first a warm-up)" in DEGRADATION_SHORT.description
    assert "after a" not in DEGRADATION_SHORT.description


def test_run_time_counts_training_steps_and_every_evaluation():
    cfg = apply_presets(TrainConfig(epochs=2, batch_size=100, subset=1000, val_size=5000), set(), 50_000)
    # 2 epochs of 10 steps of 100 images, then 2 validations of 5,000 and the final test of 10,000,
    # training at 50 images/s, evaluating at 200.
    assert run_seconds(cfg, Speed(50.0, 200.0)) == pytest.approx(2000 / 50 + (2 * 5000 + 10_000) / 200)
    no_val = apply_presets(TrainConfig(epochs=2, batch_size=100, subset=1000, val_size=0), set(), 50_000)
    # Without a validation split the test set is evaluated after each epoch, the last being the final test.
    assert run_seconds(no_val, Speed(50.0, 200.0)) == pytest.approx(2000 / 50 + 2 * 10_000 / 200)


def test_a_plain_network_shares_its_twins_speed_and_runs_spread_over_devices():
    plain, resnet = DEGRADATION_SHORT.configs()[:2]
    assert speed_key(plain) == speed_key(resnet)
    speeds = {speed_key(c): Speed(100.0, 300.0) for c in DEGRADATION_SHORT.configs()}
    one = run_seconds(plain, Speed(100.0, 300.0))
    assert experiment_seconds(DEGRADATION_SHORT.configs(), speeds, parallel=1) == pytest.approx(4 * one)
    assert experiment_seconds(DEGRADATION_SHORT.configs(), speeds, parallel=4) == pytest.approx(one)
    assert experiment_seconds(DEGRADATION_SHORT.configs(), speeds, parallel=8) == pytest.approx(one)


@pytest.mark.slow
def test_speed_is_measured_by_the_benchmark_on_this_machine(cifar_dir):
    cfg = TrainConfig(depth=8, batch_size=32, device="cpu")
    speed = measure_speed(cfg, cifar_dir, steps=2, warmup=1, eval_images=100)
    assert speed.train > 0 and speed.eval > 0
    with pytest.raises(RuntimeError, match="depth 9"):
        measure_speed(TrainConfig(depth=9, batch_size=32, device="cpu"), cifar_dir, eval_images=100)
    with pytest.raises(RuntimeError, match="took more than 0 s"):
        measure_speed(cfg, cifar_dir, eval_images=100, timeout=0.01)
    with pytest.raises(RuntimeError, match="printed no speed"):
        measure_speed(cfg, cifar_dir, python="true")
