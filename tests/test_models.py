import pytest
import torch
import torch.nn as nn

from resnet_core.models import (
    BasicBlock,
    Bottleneck,
    ShortcutA,
    build_model,
    describe_model,
)
from resnet_core.model_names import (NO_PAPER_RESULT, blocks_per_stage, default_shortcut, family_counts, paper_result,
                                     valid_depths)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, image_size: int = 32) -> int:
    """Forward multiply-accumulates of convolutions and linear layers for one image, counted
    by running the model: the reference for the closed-form family_counts."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    hooks = [m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        for h in hooks:
            h.remove()
    return total


@pytest.mark.parametrize("depth, params", [(20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018),
                                           (110, 1_727_962)])
def test_option_a_parameter_counts_match_the_paper(depth, params):
    assert n_params(build_model(depth)) == params


@pytest.mark.parametrize("depth", [20, 56])
def test_plain_networks_have_option_a_parameters_and_the_papers_name(depth):
    assert n_params(build_model(depth, shortcut="none")) == n_params(build_model(depth, shortcut="A"))
    summary = describe_model(depth, "basic", "none")
    assert (summary.name, summary.shortcut, summary.paper_error) == (f"plain-{depth}", "none", None)
    assert describe_model(depth, "basic", "A").name == f"ResNet-{depth}"


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck])
def test_a_plain_block_adds_nothing_to_its_output(block_cls):
    # With the last BN's scale at zero the residual branch outputs 0: a residual block then
    # passes its input through (relu(0 + x) = x for x >= 0), a plain block outputs zeros.
    torch.manual_seed(0)
    x = torch.rand(2, 16 * block_cls.expansion, 8, 8)
    out = {}
    for shortcut in ("A", "none"):
        b = block_cls(16 * block_cls.expansion, 16, 1, shortcut).eval()
        last_bn = b.bn3 if block_cls is Bottleneck else b.bn2
        torch.nn.init.zeros_(last_bn.weight)
        out[shortcut] = b(x)
    assert torch.equal(out["A"], x)
    assert torch.count_nonzero(out["none"]) == 0


def test_a_plain_network_of_164_layers_runs():
    # Once, not in each block's test above: it depends on neither (a forward took ~1.7 s on the loaded 2 cores).
    assert build_model(164, "bottleneck", "none")(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_option_b_adds_projections_only_where_the_shape_changes():
    # Two stage transitions: 16->32 (1x1 conv 512 + BN 64) and 32->64 (2048 + 128).
    assert n_params(build_model(20, shortcut="B")) == 269_722 + 512 + 64 + 2048 + 128


def test_option_c_projects_every_shortcut():
    # ResNet-20: 3 blocks per stage; every block gets a 1x1 conv + BN.
    stage1 = 3 * (16 * 16 + 2 * 16)
    stage2 = (16 * 32 + 64) + 2 * (32 * 32 + 64)
    stage3 = (32 * 64 + 128) + 2 * (64 * 64 + 128)
    assert n_params(build_model(20, shortcut="C")) == 269_722 + stage1 + stage2 + stage3


def test_bottleneck_resnet_164_count_by_hand():
    n = 18
    stem = 3 * 16 * 9 + 32
    total = stem
    in_planes = 16
    for planes in (16, 32, 64):
        for _ in range(n):
            out = planes * 4
            total += in_planes * planes + 2 * planes + planes * planes * 9 + 2 * planes + planes * out + 2 * out
            in_planes = out
    total += 256 * 10 + 10
    model = build_model(164, block="bottleneck", shortcut="A")
    assert n_params(model) == total == 1_661_274
    assert isinstance(model.layer1[0], Bottleneck)
    # The first bottleneck goes 16 -> 64 channels with a parameter-free option-A shortcut.
    assert isinstance(model.layer1[0].shortcut, ShortcutA)


def test_the_default_shortcut_is_a_for_basic_and_b_for_bottleneck_blocks():
    assert (default_shortcut("basic"), default_shortcut("bottleneck")) == ("A", "B")
    with pytest.raises(ValueError, match="valid: basic, bottleneck"):
        default_shortcut("wide")
    assert n_params(build_model(20)) == 269_722  # basic: option A, no projections
    model = build_model(164, block="bottleneck")
    # Option B projects where the shape changes, the first block of each stage:
    # 16->64 (1x1 conv 1,024 + BN 128), 64->128 (8,192 + 256), 128->256 (32,768 + 512).
    assert n_params(model) == 1_661_274 + 1_024 + 128 + 8_192 + 256 + 32_768 + 512
    assert isinstance(model.layer1[0].shortcut, torch.nn.Sequential)
    assert isinstance(model.layer1[1].shortcut, torch.nn.Identity)
    assert describe_model(164, "bottleneck").shortcut == "B"
    assert describe_model(20).shortcut == "A"


@pytest.mark.parametrize("block, shortcut", [("basic", "A"), ("basic", "B"), ("basic", "C"),
                                             ("bottleneck", "A"), ("bottleneck", "B")])
def test_forward_shapes(block, shortcut):
    depth = 8 if block == "basic" else 11
    model = build_model(depth, block, shortcut, num_classes=7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_shortcut_a_subsamples_and_zero_pads():
    x = torch.arange(2 * 4 * 4 * 4, dtype=torch.float32).view(2, 4, 4, 4)
    out = ShortcutA(4, 8, stride=2)(x)
    assert out.shape == (2, 8, 2, 2)
    assert torch.equal(out[:, 2:6], x[:, :, ::2, ::2])
    assert out[:, :2].abs().sum() == 0 and out[:, 6:].abs().sum() == 0


def test_macs_match_the_reference_figures():
    assert round(describe_model(20).macs / 1e6, 1) == 40.6
    assert round(describe_model(56).macs / 1e6, 1) == 125.5
    assert round(describe_model(110).macs / 1e6, 1) == 252.9


def test_describe_reports_the_paper_error_where_there_is_one():
    s = describe_model(110)
    assert (s.name, s.params, s.paper_error) == ("ResNet-110", 1_727_962, 6.43)
    assert describe_model(26).paper_error is None
    assert describe_model(1202).params > 19_000_000  # shapes only: no weights allocated


@pytest.mark.parametrize("block, depth, shortcut, error", [
    ("basic", 20, "A", 8.75), ("basic", 32, "A", 7.51), ("basic", 44, "A", 7.17), ("basic", 56, "A", 6.97),
    ("basic", 110, "A", 6.43), ("basic", 1202, "A", 7.93),
    ("bottleneck", 164, "B", 5.93), ("bottleneck", 1001, "B", 7.61),
])
def test_paper_errors_are_keyed_by_block_depth_and_shortcut(block, depth, shortcut, error):
    result = paper_result("cifar10", False, block, depth, shortcut)
    assert result.error == error
    assert result.source == ("He et al. 2016, Table 6" if block == "basic"
                             else 'He et al. 2016, "Identity Mappings", Table 3 (original unit)')


@pytest.mark.parametrize("dataset, depth, original, preact", [
    ("cifar10", 164, 5.93, 5.46), ("cifar10", 1001, 7.61, 4.92),
    ("cifar100", 164, 25.16, 24.33), ("cifar100", 1001, 27.82, 22.71)])
def test_identity_mappings_table_3_is_keyed_by_dataset_and_unit(dataset, depth, original, preact):
    table = 'He et al. 2016, "Identity Mappings", Table 3'
    for is_preact, error, unit in ((False, original, "original unit"), (True, preact, "pre-activation unit")):
        result = paper_result(dataset, is_preact, "bottleneck", depth, "B")
        # "we report the median accuracy of 5 runs for each architecture on CIFAR" (its section 3.1);
        # Table 4 gives the pre-activation ResNet-1001's mean ± std beside the median.
        mean = {"cifar10": "; mean 4.89 ± 0.14", "cifar100": "; mean 22.68 ± 0.22"}[dataset] \
            if is_preact and depth == 1001 else ""
        assert (result.error, result.source, result.note) == (error, f"{table} ({unit})", f"median of 5 runs{mean}")
        summary = describe_model(depth, "bottleneck", None, 100 if dataset == "cifar100" else 10, is_preact, dataset)
        assert (summary.paper_error, summary.dataset) == (error, dataset)
        assert paper_result(dataset, is_preact, "bottleneck", depth, "A") is None  # they projected (B)
    # Table 6 is CIFAR-10 with the original unit only.
    assert paper_result("cifar100", False, "basic", 110, "A") is None
    assert paper_result("cifar10", True, "basic", 110, "A") is None


@pytest.mark.parametrize("block, depth, shortcut", [
    ("basic", 20, "B"), ("basic", 110, "C"), ("bottleneck", 164, "A"), ("bottleneck", 1001, "C"),
    ("basic", 26, "A"), ("bottleneck", 110, "B"),
])
def test_combinations_the_papers_did_not_train_have_no_paper_error(block, depth, shortcut):
    assert paper_result("cifar10", False, block, depth, shortcut) is None
    s = describe_model(depth, block, shortcut) if depth <= 164 else None
    if s is not None:
        assert (s.paper_error, s.paper_source, s.paper_note) == (None, None, None)
        assert s.paper_text == NO_PAPER_RESULT == "the paper reports no CIFAR error for this combination"


def test_resnet_110_is_reported_as_the_paper_gives_it():
    s = describe_model(110)
    assert s.paper_note == "best of 5 runs; mean 6.61 ± 0.16"
    assert s.paper_text == "6.43% (best of 5 runs; mean 6.61 ± 0.16)"
    assert describe_model(56).paper_text == "6.97%"
    assert describe_model(164, "bottleneck").paper_text == "5.93% (median of 5 runs)"


@pytest.mark.parametrize("num_classes", [1, 0])
def test_fewer_than_two_classes_are_refused_by_every_model_function(num_classes):
    for make in (build_model, describe_model, family_counts):
        with pytest.raises(ValueError, match=f"num_classes must be at least 2, got {num_classes}"):
            make(20, "basic", None, num_classes)


def test_count_macs_on_a_real_model_equals_describe():
    assert count_macs(build_model(20)) == describe_model(20).macs


@pytest.mark.parametrize("block, depths", [("basic", (8, 14, 20, 56)), ("bottleneck", (11, 20, 29))])
@pytest.mark.parametrize("shortcut", ["A", "B", "C", "none"])
def test_the_closed_form_counts_are_the_built_networks(block, depths, shortcut):
    for depth in depths:
        for classes in (10, 3):
            # Built on the meta device: its forward gives every layer's output shape, all the
            # count reads, without computing a value (on the CPU a ResNet-56's single-image
            # forward took 0.7-1.7 s on the loaded 2-core machine, on meta ~0.1 s).
            with torch.device("meta"):
                model = build_model(depth, block, shortcut, classes)
            counts = family_counts(depth, block, shortcut, classes)
            assert (counts.params, counts.macs) == (n_params(model), count_macs(model)), (depth, classes)


@pytest.mark.parametrize("image_size", [48, 64, 33])
@pytest.mark.parametrize("block, depth, shortcut, preact", [
    ("basic", 20, "A", False), ("basic", 8, "B", True), ("bottleneck", 11, "B", False), ("bottleneck", 11, "C", True)])
def test_the_closed_form_counts_scale_with_the_image_size(image_size, block, depth, shortcut, preact):
    # 33: an odd side, each stride-2 stage rounding up (33 -> 17 -> 9) as the convolutions do.
    with torch.device("meta"):
        model = build_model(depth, block, shortcut, 10, preact=preact)
    counts = family_counts(depth, block, shortcut, 10, preact, image_size=image_size)
    assert counts.macs == count_macs(model, image_size) > family_counts(depth, block, shortcut, 10, preact).macs
    assert counts.params == n_params(model)
    assert describe_model(depth, block, shortcut, 10, preact, image_size=image_size).macs == counts.macs


@pytest.mark.parametrize("image_size", [48, 64])
def test_kept_activations_scale_with_the_image_size(image_size):
    model, kept = build_model(20).train(), {}
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def keep(t):
        kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        model(torch.randn(2, 3, image_size, image_size)).sum()
    saved = sum(size for ptr, size in kept.items() if ptr not in weights)
    estimate = family_counts(20, "basic", image_size=image_size).activations * 2 * 4
    assert estimate <= saved <= 1.25 * estimate
    assert family_counts(20, "basic", image_size=image_size).activations == \
        family_counts(20, "basic").activations * image_size ** 2 // 32 ** 2


@pytest.mark.parametrize("block, depth, shortcut", [("basic", 20, "A"), ("basic", 20, "C"), ("basic", 14, "none"),
                                                    ("bottleneck", 20, "B")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("preact", [False, True])
def test_kept_activations_are_a_lower_bound_of_what_autograd_keeps(block, depth, shortcut, dtype, preact):
    model, batch, kept = build_model(depth, block, shortcut, preact=preact).train(), 4, {}
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def keep(t):
        kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with (torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t),
          torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32)):
        model(torch.randn(batch, 3, 32, 32)).float().sum()
    saved = sum(size for ptr, size in kept.items() if ptr not in weights)
    estimate = family_counts(depth, block, shortcut, preact=preact).activations * batch * dtype.itemsize
    assert estimate <= saved <= 1.25 * estimate  # bf16: the fp32 input and its cast weigh more in a small net


def test_counting_an_absurd_depth_builds_nothing():
    counts = family_counts(6 * 10**29 + 2, "basic")
    assert counts.params > 10**30 and counts.activations > 10**33


def test_bad_depth_names_the_nearest_valid_ones():
    with pytest.raises(ValueError, match=r"depth 21 is not 6n\+2 for basic blocks; nearest: 20, 26"):
        build_model(21)
    with pytest.raises(ValueError, match=r"9n\+2 for bottleneck blocks; nearest: 164, 173"):
        build_model(165, block="bottleneck")
    with pytest.raises(ValueError, match="nearest: 8"):
        build_model(2)


def test_unknown_block_or_shortcut_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: basic, bottleneck"):
        build_model(20, block="wide")
    with pytest.raises(ValueError, match="valid: A, B, C"):
        build_model(20, shortcut="D")


def test_valid_depths():
    assert valid_depths("basic", 56) == [8, 14, 20, 26, 32, 38, 44, 50, 56]
    assert valid_depths("bottleneck", 40) == [11, 20, 29, 38]
    assert blocks_per_stage(164, "bottleneck") == 18


def test_kaiming_init_and_block_types():
    model = build_model(20)
    assert isinstance(model.layer2[0], BasicBlock)
    w = model.conv1.weight
    # He init, forward case: std = sqrt(2 / fan_in) = sqrt(2 / (3 * 3 * 3)) = 0.27
    assert 0.22 < w.std().item() < 0.33
    assert 0.13 < model.fc.weight.std().item() < 0.22  # sqrt(2 / 64) = 0.18
