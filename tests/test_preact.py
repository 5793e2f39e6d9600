"""Pre-activation ResNets (He et al. 2016b, "Identity Mappings in Deep Residual Networks")."""

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_core.config import TrainConfig, apply_presets, config_from_record, make_plan
from resnet_core.config_flags import config_argv
from resnet_core.dashboard.form import TrainForm, form_config, trainer_args, validate
from resnet_core.model_names import family_counts
from resnet_core.models import PreActBasicBlock, PreActBottleneck, build_model, describe_model
from resnet_core.runs.layout import model_name
from resnet_core.runs.run_info import RunInfo
from resnet_core.dry_run import print_dry_run
from resnet_core.train import main, parse
from tests.test_models import count_macs, n_params


def weights_without_batch_norm(model: nn.Module) -> int:
    return sum(p.numel() for m in model.modules() if not isinstance(m, nn.BatchNorm2d)
               for p in m.parameters(recurse=False))


@pytest.mark.parametrize("depth, classes, params, without_bn, paper", [
    (164, 10, 1_703_258, 1_679_034, "1.7M"), (1001, 10, 10_327_706, 10_178_490, "10.2M"),
    (164, 100, 1_726_388, 1_702_164, "1.7M"), (1001, 100, 10_350_836, 10_201_620, "10.2M")])
def test_parameter_counts_of_the_papers_networks(depth, classes, params, without_bn, paper):
    with torch.device("meta"):
        model = build_model(depth, "bottleneck", None, classes, preact=True)
    assert n_params(model) == params == family_counts(depth, "bottleneck", None, classes, preact=True).params
    # The paper's Table 3 gives 1.7M and 10.2M: ResNet-164 rounds to it either way, ResNet-1001
    # only without BatchNorm's affine parameters (149,216 of them); with them it is 10.3M.
    assert f"{without_bn / 1e6:.1f}M" == paper
    assert depth == 1001 or f"{params / 1e6:.1f}M" == paper


def reference_preresnet(depth: int, num_classes: int) -> nn.Sequential:
    """The authors' CIFAR pre-activation ResNet with bottlenecks, transcribed independently of
    resnet_core from fb.resnet.torch's models/preresnet.lua (Kaiming He's): a 3x3 conv, BN,
    ReLU; stages of n = (depth - 2) / 9 units of 16/32/64 planes (x4 out), the first unit
    taking the stem's activation ("no_preact"), the first of the other stages BN -> ReLU
    shared by both paths ("both_preact"), a 1x1 projection shortcut where the shape changes;
    then BN, ReLU, average pooling and the linear classifier. Only its parameters are counted."""
    n = (depth - 2) // 9
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    channels = 16
    for stage, planes in enumerate((16, 32, 64)):
        for unit in range(n):
            first_of_net = stage == 0 and unit == 0
            residual = [] if first_of_net else [nn.BatchNorm2d(channels), nn.ReLU()]
            residual += [nn.Conv2d(channels, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
                         nn.Conv2d(planes, planes, 3, stride=2 if stage and not unit else 1, padding=1, bias=False),
                         nn.BatchNorm2d(planes), nn.ReLU(), nn.Conv2d(planes, 4 * planes, 1, bias=False)]
            layers += residual
            if channels != 4 * planes:
                layers.append(nn.Conv2d(channels, 4 * planes, 1, bias=False))  # the shortcut's projection
            channels = 4 * planes
    return nn.Sequential(*layers, nn.BatchNorm2d(channels), nn.ReLU(), nn.Linear(channels, num_classes))


@pytest.mark.parametrize("depth", [164, 1001])
@pytest.mark.parametrize("classes", [10, 100])
def test_parameter_counts_equal_the_authors_reference_network(depth, classes):
    with torch.device("meta"):
        ours = build_model(depth, "bottleneck", None, classes, preact=True)
        reference = reference_preresnet(depth, classes)
    assert n_params(ours) == n_params(reference)
    assert weights_without_batch_norm(ours) == weights_without_batch_norm(reference)


@pytest.mark.parametrize("block, depths", [("basic", (8, 20)), ("bottleneck", (11, 20))])
@pytest.mark.parametrize("shortcut", ["A", "B", "C", "none"])
def test_the_closed_form_counts_are_the_built_preact_networks(block, depths, shortcut):
    for depth in depths:
        for classes in (10, 3):
            with torch.device("meta"):
                model = build_model(depth, block, shortcut, classes, preact=True)
            counts = family_counts(depth, block, shortcut, classes, preact=True)
            assert (counts.params, counts.macs) == (n_params(model), count_macs(model)), (depth, classes)


@pytest.mark.parametrize("block, depth, width", [("basic", 8, 64), ("bottleneck", 11, 256)])
def test_forward_shapes_and_features_then_fc_is_forward(block, depth, width):
    torch.manual_seed(0)
    model = build_model(depth, block, preact=True).eval()
    x = torch.randn(2, 3, 32, 32)
    features = model.features(x)
    assert features.shape == (2, width)
    assert (features >= 0).all()  # pooled after the final ReLU
    assert torch.equal(model.fc(features), model(x))
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize("block_cls", [PreActBasicBlock, PreActBottleneck])
def test_the_first_unit_of_each_stage_shortcuts_the_activated_input_and_the_network_ends_in_bn_relu(block_cls):
    block = "basic" if block_cls is PreActBasicBlock else "bottleneck"
    model = build_model(20, block, "B", preact=True)
    assert not hasattr(model, "bn1") and isinstance(model.bn_final, nn.BatchNorm2d)
    assert model.bn_final.num_features == 64 * block_cls.expansion
    for stage in (model.layer1, model.layer2, model.layer3):
        assert all(isinstance(unit, block_cls) for unit in stage)
        assert [unit.activate_shortcut for unit in stage] == [True] + [False] * (len(stage) - 1)
    projections = [m for m in model.modules() if isinstance(m, nn.Sequential) and isinstance(m[0], nn.Conv2d)]
    assert projections and all(len(p) == 1 for p in projections)  # the 1x1 convolution alone


def test_a_preact_bottleneck_forward_is_the_hand_written_one():
    torch.manual_seed(0)
    unit = PreActBottleneck(16, 8, 2, "B", activate_shortcut=True).train()
    x = torch.randn(4, 16, 8, 8)

    def bn_relu(bn, t):
        return F.relu(F.batch_norm(t, None, None, bn.weight, bn.bias, training=True))

    act = bn_relu(unit.bn1, x)
    out = F.conv2d(act, unit.conv1.weight)
    out = F.conv2d(bn_relu(unit.bn2, out), unit.conv2.weight, stride=2, padding=1)
    out = F.conv2d(bn_relu(unit.bn3, out), unit.conv3.weight)
    expected = out + F.conv2d(act, unit.shortcut[0].weight, stride=2)
    torch.testing.assert_close(unit(x), expected)

    later = PreActBasicBlock(16, 16, 1, "A").train()
    residual = F.conv2d(bn_relu(later.bn2, F.conv2d(bn_relu(later.bn1, x), later.conv1.weight, padding=1)),
                        later.conv2.weight, padding=1)
    torch.testing.assert_close(later(x), residual + x)  # the identity of the raw input


def test_the_original_order_is_unchanged():
    keys = set(build_model(20).state_dict())
    assert "bn1.weight" in keys and "layer1.0.bn2.running_var" in keys and not any("bn_final" in k for k in keys)
    assert n_params(build_model(20)) == 269_722 == family_counts(20, "basic").params
    # Basic blocks with option A move the same BatchNorm widths around: equal counts.
    assert n_params(build_model(20, preact=True)) == 269_722


def test_preact_is_a_config_field_on_the_command_line_in_the_form_and_in_older_records(cifar_dir, tmp_path, capsys):
    assert parse(["--preact"]).cfg.preact is True and parse([]).cfg.preact is False
    assert config_argv(TrainConfig(preact=True), {"preact"}) == ["--preact"]
    assert config_from_record({"depth": 20}).preact is False  # a run recorded before the field
    assert config_from_record({"preact": True}).preact is True
    form = replace(TrainForm(), block="bottleneck", depth=164, preact=True)
    assert validate(form) == {} and form_config(form).preact is True
    assert "--preact" in trainer_args(form, data_dir=tmp_path, runs_dir=tmp_path)
    code = main(["--data-dir", str(cifar_dir), "--runs-dir", str(tmp_path / "runs"), "--preact", "--depth", "164",
                 "--block", "bottleneck", "--val-size", "0", "--batch-size", "50", "--dry-run"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and report["config"]["preact"] is True
    assert report["model"] == {"name": "PreAct-ResNet-164", "params": 1_703_258,
                               "macs": describe_model(164, "bottleneck", preact=True).macs}


def test_the_name_says_pre_activation_everywhere_a_model_is_named():
    assert model_name(164, "B", preact=True) == "PreAct-ResNet-164" and model_name(164, "B") == "ResNet-164"
    summary = describe_model(1001, "bottleneck", preact=True)
    assert (summary.name, summary.params, summary.paper_error) == ("PreAct-ResNet-1001", 10_327_706, 4.92)
    assert describe_model(1001, "bottleneck").paper_error == 7.61  # the original order keeps its number
    recorded = {"depth": 164, "block": "bottleneck", "shortcut": "B", "preact": True}
    info = RunInfo(path=Path("run"), run_id="run", state="finished", config={"config": recorded})
    assert info.model_name == "PreAct-ResNet-164"
    older = RunInfo(path=Path("run"), run_id="run", state="finished", config={"config": {"depth": 20}})
    assert older.model_name == "ResNet-20"


@pytest.mark.parametrize("dataset, classes, error", [("cifar10", 10, "4.92% (median of 5 runs; mean 4.89 ± 0.14)"),
                                                     ("cifar100", 100, "22.71% (median of 5 runs; mean 22.68 ± 0.22)")])
def test_the_paper_presets_dry_run_of_preact_resnet_1001_states_the_recipe_and_the_papers_number(
        dataset, classes, error, capsys):
    # Both datasets have 50,000 training images: the same 64k steps, lr drops and warm-up.
    typed = {"depth", "block", "preact", "dataset", "preset"}
    cfg = apply_presets(TrainConfig(depth=1001, block="bottleneck", preact=True, dataset=dataset, preset="paper"),
                        typed, 50_000)
    data = SimpleNamespace(classes=[str(i) for i in range(classes)], train_labels=[0] * 50_000, test_labels=[0] * 10,
                           source={})
    print_dry_run(cfg, make_plan(cfg, 50_000), data)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("PreAct-ResNet-1001 (bottleneck blocks, shortcut B): "
                               f"{10_327_706 if classes == 10 else 10_350_836:,} parameters")
    assert "64,000 steps in 165 epochs" in lines[1]
    assert lines[2].endswith("lr /10 at steps 32,000, 48,000, constant warm-up for 400 steps at lr 0.01")
    name = "CIFAR-10" if classes == 10 else "CIFAR-100"
    assert lines[3] == (f"the paper's {name} test error for PreAct-ResNet-1001: {error}, "
                        'He et al. 2016, "Identity Mappings", Table 3 (pre-activation unit)')
    # "Identity Mappings" warmed every CIFAR network up for 400 iterations: the departure is the first paper's.
    assert lines.index("departs from the paper in:") > 3
    assert ("  - ResNet-110 and deeper warm up at lr 0.01 for a fixed 400 steps; the first paper's ResNet-110 until "
            'the training error is below 80% ("Identity Mappings" for 400 iterations, as here)') in lines
    report = json.loads(lines[-1])
    assert report["paper"]["error"] == float(error.split("%")[0]) and report["total_steps"] == 64_000
    cfg.lr = 0.05  # no longer the paper's recipe: no number to compare with
    print_dry_run(cfg, make_plan(cfg, 50_000), data)
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["paper"] is None


def test_the_readme_states_the_counted_parameters_of_the_papers_preact_networks():
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    assert "`--preact`" in readme and "Pre-activation units" in readme
    for depth in (164, 1001):
        counts = [family_counts(depth, "bottleneck", None, classes, preact=True).params for classes in (10, 100)]
        assert f"PreAct-ResNet-{depth} {counts[0]:,}" in readme
        assert f"{counts[1] - counts[0]:,} more with 100 classes" in readme
    with torch.device("meta"):
        model = build_model(1001, "bottleneck", None, 10, preact=True)
    assert f"{weights_without_batch_norm(model):,} without BatchNorm's scale and shift" in readme
