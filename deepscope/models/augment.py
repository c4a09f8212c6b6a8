"""Seeded training-batch augmentations for :func:`deepscope.models.fit`.

An augmentation is a callable ``(x, generator) -> x`` on a batch N×C×H×W of pixels in [0, 1]; all
random draws come from the CPU ``generator`` (so they are reproducible) and are then moved to
``x``'s device. The output keeps ``x``'s device, dtype and shape.

Example
-------
>>> from deepscope.models import augment, fit
>>> fit(model, train, augment=augment.digits())          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deepscope.errors import InputError

__all__ = ["ShiftFlip", "digits", "faces", "shift_flip"]


@dataclass(frozen=True)
class ShiftFlip:
    """Random shifts (zero fill), horizontal flips and brightness changes.

    Parameters
    ----------
    max_shift : int
        Each sample is translated by integers ``dy, dx`` drawn uniformly from
        ``[-max_shift, max_shift]``; uncovered pixels become 0 (black).
    flip : bool
        Mirror each sample left-right with probability 1/2.
    brightness : float
        Multiply each sample by a factor drawn uniformly from ``[1 - b, 1 + b]``, then clip to
        [0, 1].
    """

    max_shift: int = 2
    flip: bool = False
    brightness: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_shift, int) or self.max_shift < 0:
            raise InputError(f"max_shift must be an int >= 0, got {self.max_shift!r}")
        if not 0.0 <= self.brightness < 1.0:
            raise InputError(f"brightness must be in [0, 1), got {self.brightness!r}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.ndim != 4:
            raise InputError(f"augmentation expects N×C×H×W batches, got shape {tuple(x.shape)}")
        n, c, h, w = x.shape
        gdev = generator.device
        if self.max_shift > 0:
            s = self.max_shift
            offsets = torch.randint(0, 2 * s + 1, (2, n), generator=generator, device=gdev)
            oy, ox = offsets.to(x.device)
            padded = F.pad(x, (s, s, s, s))
            rows = (oy[:, None] + torch.arange(h, device=x.device)[None, :])  # N×H
            cols = (ox[:, None] + torch.arange(w, device=x.device)[None, :])  # N×W
            x = padded[
                torch.arange(n, device=x.device)[:, None, None, None],
                torch.arange(c, device=x.device)[None, :, None, None],
                rows[:, None, :, None],
                cols[:, None, None, :],
            ]
        if self.flip:
            mask = torch.rand(n, generator=generator, device=gdev).to(x.device) < 0.5
            x = torch.where(mask[:, None, None, None], x.flip(-1), x)
        if self.brightness > 0:
            u = torch.rand(n, generator=generator, device=gdev).to(device=x.device, dtype=x.dtype)
            factor = 1.0 + self.brightness * (2.0 * u - 1.0)
            x = (x * factor[:, None, None, None]).clamp(0.0, 1.0)
        return x


def shift_flip(
    max_shift: int = 2, *, flip: bool = False, brightness: float = 0.0
) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Build a :class:`ShiftFlip` augmentation (see there for the parameters)."""
    return ShiftFlip(max_shift=max_shift, flip=flip, brightness=brightness)


def digits(max_shift: int = 2) -> ShiftFlip:
    """Augmentation for digits and clothes (28×28): random shifts of up to ``max_shift`` px."""
    return ShiftFlip(max_shift=max_shift)


def faces(max_shift: int = 6, brightness: float = 0.2) -> ShiftFlip:
    """Augmentation for faces: shifts, horizontal flips and brightness changes."""
    return ShiftFlip(max_shift=max_shift, flip=True, brightness=brightness)
