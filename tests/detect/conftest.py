"""Tiny models and synthetic images with attribute boxes for the detect tests."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from deepscope.models.layers import conv_block


class Probe(nn.Module):
    """Three hand-set channels: the pixel (local), the image mean (context), the pixel half an
    image away (elsewhere). Only channel 0 witnesses an attribute in its own region."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = x[:, :1]
        context = local.mean(dim=(2, 3), keepdim=True).expand_as(local)
        elsewhere = torch.roll(local, shifts=local.shape[-1] // 2, dims=-1)
        return torch.cat([local, context, elsewhere], dim=1)


def probe_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(
        feat=Probe(), relu=nn.ReLU(), gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        head=nn.Linear(3, 2))).eval()


def tiny_cnn(num_classes: int = 4, seed: int = 0) -> nn.Sequential:
    gen = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = nn.Sequential(OrderedDict(
            block1=conv_block((1, 8)), block2=conv_block((8, 16, 16)),
            gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), head=nn.Linear(16, num_classes)))
    finally:
        torch.random.set_rng_state(gen)
    return model.eval()


def synthetic_faces(n: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor]:
    """n grey 24×20 images with two attribute boxes each (jittered), and a group per image."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 24, 20, generator=g) * 0.5 + 0.25
    jitter = torch.randint(0, 3, (n, 2, 2), generator=g)
    boxes = torch.zeros(n, 2, 4, dtype=torch.long)
    boxes[:, 0] = torch.tensor([2, 3, 8, 8])     # "left" attribute
    boxes[:, 1] = torch.tensor([11, 13, 18, 19])  # "right" attribute
    boxes[:, :, 0] += jitter[:, :, 0]
    boxes[:, :, 2] += jitter[:, :, 0]
    boxes[:, :, 1] += jitter[:, :, 1]
    boxes[:, :, 3] += jitter[:, :, 1]
    boxes[:, :, 2] = boxes[:, :, 2].clamp(max=20)
    boxes[:, :, 3] = boxes[:, :, 3].clamp(max=24)
    groups = torch.arange(n) % 6
    return x, boxes, groups


@pytest.fixture
def faces():
    return synthetic_faces()


@pytest.fixture
def cnn():
    return tiny_cnn()


@pytest.fixture
def probe():
    return probe_model()
