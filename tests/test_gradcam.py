"""Grad-CAM: maps of the images' shape in [0, 1], deterministic, and on the evidence: a tiny
ResNet trained to tell a patch's colour puts most of its map on the patch."""

from __future__ import annotations

import pytest
import torch

from resnet_core.gradcam import grad_cam, target_layer
from resnet_core.models import build_model

PATCH = 6


def patch_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised noise images, each with one PATCH x PATCH square at a random place whose
    colour (pure red, green or blue) is the class; also the squares' top-left corners."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, 32, 32, generator=g) * 0.4 + 0.3
    labels = torch.randint(0, 3, (n,), generator=g)
    corners = torch.randint(0, 32 - PATCH + 1, (n, 2), generator=g)
    for i, (r, c) in enumerate(corners.tolist()):
        images[i, :, r:r + PATCH, c:c + PATCH] = 0.0
        images[i, labels[i], r:r + PATCH, c:c + PATCH] = 1.0
    return (images - 0.5) / 0.25, labels, corners


@pytest.fixture(scope="module")
def patch_model() -> torch.nn.Module:
    """ResNet-8 trained for 40 steps on patch_images: it must find the square to tell its colour."""
    torch.manual_seed(0)
    model = build_model(8, num_classes=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(40):
        x, y, _ = patch_images(32, seed=step)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval()


@pytest.mark.slow
def test_maps_have_the_images_shape_values_in_0_1_and_a_peak_of_1(patch_model):
    x, _, _ = patch_images(5, seed=100)
    cams, logits = grad_cam(patch_model, x)
    assert cams.shape == (5, 32, 32) and logits.shape == (5, 3)
    assert cams.min() >= 0 and torch.allclose(cams.amax(dim=(1, 2)), torch.ones(5))
    # Other sizes keep theirs: the maps follow the input, not CIFAR's 32.
    assert grad_cam(patch_model, torch.randn(2, 3, 48, 40))[0].shape == (2, 48, 40)


@pytest.mark.slow
def test_maps_are_deterministic_and_leave_the_model_as_it_was(patch_model):
    x, _, _ = patch_images(8, seed=101)
    before = {k: v.clone() for k, v in patch_model.state_dict().items()}
    first, _ = grad_cam(patch_model, x)
    second, _ = grad_cam(patch_model, x)
    assert torch.equal(first, second)
    assert all(torch.equal(before[k], v) for k, v in patch_model.state_dict().items())
    assert all(p.grad is None for p in patch_model.parameters())  # autograd.grad, not backward()
    # One image alone gets the map it gets in a batch: eval-mode images do not mix.
    alone, _ = grad_cam(patch_model, x[3:4])
    assert torch.allclose(alone[0], first[3], atol=1e-5)


@pytest.mark.slow
def test_the_map_of_the_predicted_class_lies_on_the_planted_patch(patch_model):
    x, labels, corners = patch_images(64, seed=102)
    cams, logits = grad_cam(patch_model, x)
    assert (logits.argmax(1) == labels).float().mean() == 1.0  # the model learned the cue
    shares = []
    for cam, (r, c) in zip(cams, corners.tolist(), strict=True):
        near = torch.zeros(32, 32, dtype=torch.bool)
        near[max(0, r - 3):r + PATCH + 3, max(0, c - 3):c + PATCH + 3] = True  # the square and 3 px around it
        shares.append(float(cam[near].sum() / cam.sum()))
    shares = torch.tensor(shares)
    # The square and its rim are 12x12 = 14% of the image; the map puts 0.59-0.80 of its mass there.
    assert shares.median() > 0.5 and shares.min() > 0.35, shares


@pytest.mark.slow
def test_a_chosen_class_gets_its_own_map_and_training_mode_is_refused(patch_model):
    x, labels, _ = patch_images(4, seed=103)
    predicted, _ = grad_cam(patch_model, x)
    other = (labels + 1) % 3
    chosen, _ = grad_cam(patch_model, x, classes=other)
    same, _ = grad_cam(patch_model, x, classes=labels)
    assert torch.equal(same, predicted) and not torch.equal(chosen, predicted)
    patch_model.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            grad_cam(patch_model, x)
    finally:
        patch_model.eval()


@pytest.mark.parametrize("block, depth", [("basic", 8), ("bottleneck", 11)])
def test_the_layer_is_the_pooled_activated_maps_for_either_unit_order(block, depth):
    # A pre-activation unit ends in an unactivated sum: its maps are the final BN -> ReLU's output.
    torch.manual_seed(0)
    for preact in (False, True):
        model = build_model(depth, block, num_classes=3, preact=preact).eval()
        layer = target_layer(model)
        assert layer is (model.relu_final if preact else model.layer3)
        x = torch.randn(4, 3, 32, 32)
        captured = []
        hook = layer.register_forward_hook(lambda _m, _inp, out, into=captured: into.append(out))
        try:
            features = model.features(x)
        finally:
            hook.remove()
        # What Grad-CAM weighs is exactly what the classifier pools.
        assert (captured[0] >= 0).all() and torch.equal(captured[0].mean(dim=(2, 3)), features)
        cams, logits = grad_cam(model, x)
        assert cams.shape == (4, 32, 32) and torch.equal(logits, model(x))
        assert all(cam.max() == 1 and cam.min() < 0.99 for cam in cams)  # a peak, not a constant map
