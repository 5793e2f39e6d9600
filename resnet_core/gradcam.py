"""Grad-CAM (Selvaraju et al. 2017): where in an image the evidence for a class lies.

For each image, the gradient of the chosen class's logit with respect to the last
convolutional stage's activated output (:func:`target_layer`: 64 maps of 8x8 on a 32x32
input, 12x12 on a 48x48 one; 256 for bottlenecks) is averaged over the map to weigh each channel; the ReLU of
the weighted sum of the channels is the class-activation map. It is upsampled bilinearly
to the image size and divided by its maximum, so 1 marks the strongest evidence and an
image without positive evidence gets a map of zeros.

Written by hand with a forward hook instead of Captum's ``LayerGradCam``: measured for 30
images of ResNet-20 on this 2-core CPU the two give identical maps (max difference 0.0);
ours took 0.027 s and Captum's 0.048 s on an idle machine (0.9-1.3 s against 1.2-1.8 s
while trainers kept both cores busy), and Captum would add matplotlib and tqdm to the
dashboard's dependencies (``captum.attr`` imports matplotlib) and 0.4-1 s of imports.

Images are independent in eval mode (BatchNorm uses its running statistics), so one
backward pass of the sum of the chosen logits gives every image its own gradient. CPU
convolutions are deterministic: the same model and images give the same maps, bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def target_layer(model: nn.Module) -> nn.Module:
    """The module whose output Grad-CAM weighs: the last stage's activated maps, the input of
    the pooling. That is ``layer3`` in the original order, whose units end in a ReLU; a
    pre-activation network's units end in an unactivated sum, so there it is the final
    BN -> ReLU's output (``relu_final``)."""
    return model.relu_final if model.preact else model.layer3


def grad_cam(model: nn.Module, inputs: torch.Tensor, classes: torch.Tensor | None = None,
             layer: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps (N, H, W) in [0, 1] of each input's class (classes: N ints; None: the model's
    own top-1 prediction), and the logits (N, C). inputs are the model's normalised float
    images (N, 3, H, W); layer defaults to :func:`target_layer`. The
    model must be in eval mode; its parameters' gradients are left untouched."""
    if model.training:
        raise ValueError("Grad-CAM needs the model in eval mode (BatchNorm would mix the images of the batch)")
    layer = layer if layer is not None else target_layer(model)
    captured: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, _inp, out: captured.append(out))
    try:
        with torch.enable_grad():
            logits = model(inputs)
            targets = logits.argmax(1) if classes is None else torch.as_tensor(classes, device=logits.device)
            chosen = logits.gather(1, targets.view(-1, 1).long()).sum()
            (grads,) = torch.autograd.grad(chosen, captured[0])
    finally:
        hook.remove()
    activations = captured[0].detach()
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cams = F.relu((weights * activations).sum(1, keepdim=True))
    cams = F.interpolate(cams, size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cams.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cams / peak.clamp_min(1e-12), torch.zeros_like(cams)), logits.detach()
