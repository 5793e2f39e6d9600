"""The Train form as data: validation (the form's own checks and the trainer's, per field),
the config it resolves to, and the trainer's and the sweep's arguments it gives."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from resnet_core.config import CIFAR10_TRAIN_IMAGES, TrainConfig
from resnet_core.dashboard.form import (
    NOT_IN_FORM,
    SWITCH_FIELDS,
    TrainForm,
    form_config,
    paper_epochs,
    parse_vary_text,
    recipe_summary,
    sweep_args,
    trainer_args,
    validate,
)

# ----------------------------------------------------------------------------- the schema

def test_the_form_holds_the_schemas_fields_with_the_trainers_defaults():
    shown = [f.name for f in fields(TrainConfig) if f.name not in NOT_IN_FORM]
    assert TrainForm.field_names() == [*shown, "gpus", "tags", "note"]  # a new TrainConfig field is a form field too
    form, cfg = TrainForm(), TrainConfig()
    assert all(getattr(form, name) == getattr(cfg, name) for name in shown if name != "shortcut")
    assert form.shortcut == "A" and form.gpus == 1  # the basic block's own shortcut; one process
    assert SWITCH_FIELDS == ("channels_last", "compile")  # typed bool | None: auto, on or off


# ----------------------------------------------------------------------------- validation

def test_the_default_form_is_valid():
    assert validate(TrainForm()) == {}
    assert validate(TrainForm().with_paper_recipe()) == {}


def test_the_recipe_summary_says_what_the_trainer_will_use():
    summary = lambda form: recipe_summary(form_config(form))  # noqa: E731
    assert summary(TrainForm()) == ("cosine schedule · weight decay 0.0001 · momentum 0.9 · precision, channels-last "
                                    "and compile auto · a row every 20 steps or 2 s")
    # Presets applied, as the trainer applies them: the paper's warm-up from ResNet-110 on.
    assert summary(replace(TrainForm(), depth=110).with_paper_recipe()).startswith(
        "multistep schedule · weight decay 0.0001 · momentum 0.9 · warm-up 1.03 epochs · ")
    assert "warm-up" not in summary(replace(TrainForm(), depth=56).with_paper_recipe())
    # Typed text as the trainer reads it; the switches only when not left to the trainer; by steps only.
    form = replace(TrainForm(), weight_decay="5e-4", warmup_epochs=1.0, precision="bf16", channels_last=False,
                   compile=True, log_every=1, log_seconds=0.0)
    assert summary(form) == ("cosine schedule · weight decay 0.0005 · momentum 0.9 · warm-up 1 epoch · "
                             "precision bf16 · channels-last off · compile on · a row every 1 step")
    assert "label noise 0.2 (seed 4)" in summary(replace(TrainForm(), label_noise=0.2, label_noise_seed=4))


@pytest.mark.parametrize("changes, field, words", [
    (dict(depth=21), "depth", "6n+2"),
    (dict(block="bottleneck", depth=26), "depth", "9n+2"),
    (dict(block="wide"), "block", "valid: basic, bottleneck"),
    (dict(shortcut="D"), "shortcut", "A, B, C"),
    (dict(epochs=0), "epochs", "Epochs must be at least 1"),
    (dict(epochs=2.5), "epochs", "whole number"),
    (dict(batch_size=0), "batch_size", "Batch size must be at least 1"),
    (dict(lr="fast"), "lr", "must be a number"),
    (dict(lr="-0.1"), "lr", "must be a positive number"),
    (dict(lr="nan"), "lr", "must be a number"),
    (dict(momentum="1.2"), "momentum", "[0, 1)"),
    (dict(weight_decay="x"), "weight_decay", "must be a number"),
    (dict(schedule="step"), "schedule", "multistep"),
    (dict(warmup_epochs=30), "warmup_epochs", "shorter than the run"),
    (dict(warmup_epochs=-1), "warmup_epochs", "cannot be negative"),
    (dict(seed=-1), "seed", "must lie in 0..4294967295"),
    (dict(val_size=50_000), "val_size", "leaves no training images"),
    (dict(val_size=49_950), "val_size", "50 training images are fewer than one batch of 128"),
    (dict(subset=46_000), "subset", "larger than the 45,000"),
    (dict(subset=100), "subset", "100 training images are fewer than one batch of 128"),
    (dict(precision="fp8"), "precision", "fp32"),
    (dict(device="gpu"), "device", "cuda:N"),
    (dict(name="/../.."), "name", "letter or digit"),
    (dict(channels_last="maybe"), "channels_last", "auto, on or off"),
    (dict(compile="yes"), "compile", "auto, on or off"),
    (dict(compile=1), "compile", "auto, on or off"),
    (dict(preset="imagenet"), "preset", "The only preset is 'paper'"),
    (dict(log_every=0), "log_every", "at least 1 step"),
    (dict(log_every=2.5), "log_every", "whole number"),
    (dict(log_seconds="often"), "log_seconds", "must be a number"),
    (dict(log_seconds=-1), "log_seconds", "0 or more"),
    (dict(log_seconds=1e308), "log_seconds", "at most 86,400"),
    (dict(lr="1e308"), "lr", "at most 3.4e+38"),
    (dict(weight_decay="1e308"), "weight_decay", "must lie in [0, 3.4e+38]"),
    (dict(label_noise=1.0), "label_noise", "[0, 1)"),
    (dict(label_noise="some"), "label_noise", "must be a number"),
    (dict(label_noise_seed=-1), "label_noise_seed", "must lie in 0..4294967295"),
])
def test_bad_input_gets_a_message_on_its_field(changes, field, words):
    errors = validate(replace(TrainForm(), **changes))
    assert field in errors, errors
    assert words in errors[field]


def test_validation_knows_the_machine_and_the_data():
    errors = validate(TrainForm(device="cuda"), devices=["auto", "cpu"], data_present=False)
    assert "no cuda device" in errors["device"]
    assert "download it on the Home page" in errors["data"]
    assert validate(TrainForm(device="cuda:1"), devices=["auto", "cuda", "cuda:0", "cuda:1", "cpu"]) == {}


def test_depth_choices_and_run_names():
    assert validate(TrainForm(block="bottleneck", depth=164)) == {}
    assert TrainForm(name="my run/../../etc").run_name == "my-run-..-..-etc"
    assert "/" not in TrainForm(name="../../x").run_name


# ----------------------------------------------------------------------------- argv

def test_trainer_args_round_trip_through_the_trainers_own_parser(tmp_path):
    train = pytest.importorskip("resnet_core.train")
    form = TrainForm(depth=32, block="basic", shortcut="B", epochs=7, batch_size=64, lr="0.05", momentum="0.8",
                     weight_decay="5e-4", schedule="onecycle", warmup_epochs=1.5, seed=3, device="cpu",
                     precision="bf16", channels_last=False, compile=True, val_size=1000, subset=2000, name="a b",
                     log_every=7, log_seconds=0.5, label_noise=0.2, label_noise_seed=5)
    args = trainer_args(form, data_dir=tmp_path / "d", runs_dir=tmp_path / "r", run_dir=tmp_path / "r/x")
    parsed = train.parse(args)
    cfg, ns = parsed.cfg, parsed.args
    assert (cfg.depth, cfg.block, cfg.shortcut, cfg.epochs, cfg.batch_size) == (32, "basic", "B", 7, 64)
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.schedule) == (0.05, 0.8, 5e-4, "onecycle")
    assert (cfg.warmup_epochs, cfg.seed, cfg.device, cfg.precision, cfg.channels_last) == (1.5, 3, "cpu", "bf16", False)
    assert (cfg.val_size, cfg.subset, cfg.name, cfg.compile) == (1000, 2000, "a-b", True)
    assert ns.run_dir == str(tmp_path / "r/x") and cfg.data_dir == str(tmp_path / "d")
    assert (cfg.log_every, cfg.log_seconds) == (7, 0.5)
    assert (cfg.label_noise, cfg.label_noise_seed) == (0.2, 5)


def test_the_forms_tags_and_note_reach_the_trainer_as_launch_labels(tmp_path):
    train = pytest.importorskip("resnet_core.train")
    form = TrainForm(tags=" baseline, lr:0.1 ,, ", note="first try")
    assert form.tag_list == ["baseline", "lr:0.1"] and validate(form) == {}
    args = train.parse(trainer_args(form, data_dir=tmp_path, runs_dir=tmp_path)).args
    assert (args.tags, args.note) == (["baseline", "lr:0.1"], "first try")
    plain = train.parse(trainer_args(TrainForm(), data_dir=tmp_path, runs_dir=tmp_path)).args
    assert (plain.tags, plain.note) == ([], None)
    assert "--tag" not in sweep_args(form, {"seed": ["1", "2"]}, 1)  # a sweep's runs carry no launch labels
    errors = validate(TrainForm(tags="two words, ok", note="n" * 2001))
    assert errors["tags"].startswith("Tag 'two words' may hold only letters, digits")
    assert errors["note"] == "The note has 2,001 characters: at most 2,000."


def test_the_paper_preset_leaves_the_recipe_to_the_trainer(tmp_path):
    train = pytest.importorskip("resnet_core.train")
    form = TrainForm(depth=110, epochs=3, lr="0.5").with_paper_recipe()
    args = trainer_args(form, data_dir=tmp_path, runs_dir=tmp_path)
    assert "--preset" in args and "--lr" not in args and "--epochs" not in args
    parsed = train.parse(args)
    cfg = train.apply_presets(parsed.cfg, parsed.typed, CIFAR10_TRAIN_IMAGES)
    assert (cfg.batch_size, cfg.lr, cfg.schedule, cfg.val_size, cfg.weight_decay) == (128, 0.1, "multistep", 0, 1e-4)
    assert cfg.epochs == paper_epochs() == form.epochs == 165 and cfg.max_steps == 64_000
    assert cfg.warmup_mode == "constant" and cfg.warmup_epochs > 0  # ResNet-110: lr 0.01 warm-up


def test_auto_switches_pass_no_flag(tmp_path):
    args = trainer_args(TrainForm(), data_dir=tmp_path, runs_dir=tmp_path)
    assert not {"--channels-last", "--no-channels-last", "--compile", "--no-compile"} & set(args)
    args = trainer_args(TrainForm(channels_last=True, compile=False), data_dir=tmp_path, runs_dir=tmp_path)
    assert "--channels-last" in args and "--no-compile" in args


@pytest.mark.parametrize("form", [
    TrainForm(depth=32, shortcut="B", epochs=7, batch_size=64, lr="0.05", momentum="0.8", weight_decay="5e-4",
              schedule="onecycle", warmup_epochs=1.5, seed=3, device="cpu", precision="bf16", channels_last=False,
              compile=True, val_size=1000, subset=2000, name="a b"),
    TrainForm(depth=110, seed=4, name="paper").with_paper_recipe(),
    TrainForm(block="bottleneck", depth=164, shortcut="B"),
])
def test_the_form_resolves_exactly_as_the_trainer_resolves_its_argv(form, tmp_path):
    train = pytest.importorskip("resnet_core.train")
    parsed = train.parse(trainer_args(form, data_dir=tmp_path, runs_dir=tmp_path))
    trainer_cfg = train.apply_presets(parsed.cfg, parsed.typed, CIFAR10_TRAIN_IMAGES)
    form_cfg = form_config(form)
    assert replace(form_cfg, data_dir=None, runs_dir="") == replace(trainer_cfg, data_dir=None, runs_dir="")


def test_the_form_refuses_whatever_the_trainer_would_refuse():
    # The split sizes are judged by the trainer's own plan check, presets applied: a
    # 100-image training set cannot fill one batch of the paper's 128.
    errors = validate(TrainForm().with_paper_recipe(), train_size=100)
    assert errors == {"batch_size": "100 training images are fewer than one batch of 128."}


def test_sweep_args_take_the_forms_fields_but_the_varied_ones_and_the_run_name():
    form = TrainForm(depth=20, epochs=3, seed=5, name="mine", device="cpu")
    args = sweep_args(form, {"depth": [20, 56], "seed": ["0", "1"]}, parallel=2)
    assert "--name" not in args and "--seed" not in args and args.count("--depth") == 0
    assert args[-6:] == ["--vary", "depth=20,56", "--vary", "seed=0,1", "--parallel", "2"]
    assert args[args.index("--epochs") + 1] == "3" and args[args.index("--device") + 1] == "cpu"
    assert sweep_args(form, {"seed": ["0", "1"]}, 2, "ray", " head:6379 ")[-4:] == [
        "--executor", "ray", "--address", "head:6379"]
    assert sweep_args(form, {"seed": ["0", "1"]}, 2, "ray", "")[-3:] == ["2", "--executor", "ray"]  # a Ray of its own
    assert parse_vary_text("lr=0.1, 0.05; weight-decay=1e-4,5e-4\nmomentum=0.9") == {
        "lr": ["0.1", "0.05"], "weight_decay": ["1e-4", "5e-4"], "momentum": ["0.9"]}
    assert parse_vary_text("  ;  ") == {}
    for bad in ("lr", "lr=", "=0.1", "lr=,"):
        with pytest.raises(ValueError, match="field=value1,value2"):
            parse_vary_text(bad)
    with pytest.raises(ValueError, match="lr is given twice"):
        parse_vary_text("lr=0.1; lr=0.2")
