from __future__ import annotations

import pytest
import torch

from deepscope.errors import InputError
from deepscope.models import augment


def _dot_images(n: int, h: int = 9, w: int = 9) -> torch.Tensor:
    x = torch.zeros(n, 1, h, w, dtype=torch.float64)
    x[:, 0, h // 2, w // 2] = 1.0
    return x


def test_shifts_move_content_within_the_limit_and_are_seeded():
    x = _dot_images(200)
    aug = augment.shift_flip(2)
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a.sum((1, 2, 3)), torch.ones(200, dtype=torch.float64))  # dot never lost
    pos = a.flatten(1).argmax(1)
    dy, dx = pos // 9 - 4, pos % 9 - 4
    assert int(dy.abs().max()) == 2 and int(dx.abs().max()) == 2
    assert len(set(zip(dy.tolist(), dx.tolist(), strict=True))) == 25  # all 5×5 offsets occur


def test_shift_fills_with_zeros():
    x = torch.ones(50, 1, 5, 5)
    out = augment.shift_flip(1)(x, torch.Generator().manual_seed(1))
    shifted = out.sum((1, 2, 3)) < 25
    assert bool(shifted.any()) and set(out.unique().tolist()) <= {0.0, 1.0}


def test_flip_and_brightness():
    x = torch.zeros(100, 1, 3, 4)
    x[:, 0, :, 0] = 0.8  # left column lit
    out = augment.shift_flip(0, flip=True)(x, torch.Generator().manual_seed(0))
    flipped = out[:, 0, 0, 3] == 0.8
    assert 20 < int(flipped.sum()) < 80
    assert torch.equal(out[flipped], x[flipped].flip(-1))
    bright = augment.shift_flip(0, brightness=0.5)(x, torch.Generator().manual_seed(0))
    factors = bright[:, 0, 0, 0] / 0.8
    assert float(factors.min()) >= 0.5 - 1e-6 and float(bright.max()) <= 1.0
    assert float(factors.std()) > 0.1


def test_presets_and_errors():
    assert augment.faces().flip and augment.faces().brightness > 0
    assert augment.digits().max_shift == 2 and not augment.digits().flip
    with pytest.raises(InputError):
        augment.shift_flip(-1)
    with pytest.raises(InputError, match="N×C×H×W"):
        augment.digits()(torch.zeros(3, 4), torch.Generator())
