"""Patch attack: a square region of free pixel values, optimised per image."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepscope.attacks._checks import check_number
from deepscope.attacks._masked import MaskedAttack
from deepscope.attacks.base import ATTACKS
from deepscope.errors import InputError


def square_mask(
    shape: tuple[int, int, int, int], size: int, corners: torch.Tensor
) -> torch.Tensor:
    """Boolean N×1×H×W masks of squares of side ``size``, top-left ``corners`` (N×2: row, col)."""
    n, _, h, w = shape
    rows = torch.arange(h, device=corners.device)
    cols = torch.arange(w, device=corners.device)
    r0, c0 = corners[:, 0, None], corners[:, 1, None]
    in_r = (rows >= r0) & (rows < r0 + size)  # N×H
    in_c = (cols >= c0) & (cols < c0 + size)  # N×W
    return (in_r[:, :, None] & in_c[:, None, :]).view(n, 1, h, w)


@ATTACKS.register("patch")
class Patch(MaskedAttack):
    """Per-image adversarial patch: only a square of side ``size`` changes, to any value.

    The patch's pixels are optimised towards the target (or away from the true label) with
    the masked optimiser of :mod:`deepscope.attacks._masked`; every pixel outside the square
    is left exactly as it was.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    size : int or float
        Side of the square: pixels (int) or a fraction of ``min(H, W)`` (float in (0, 1]).
    location : "random", "center" or (row, col)
        Top-left corner: drawn uniformly per image (seeded), centred, or fixed. A call-time
        ``location=`` tensor N×2 of (row, col) corners overrides it.
    steps, step_size, confidence, init, batch_size, seed, progress
        See :class:`~deepscope.attacks._masked.MaskedAttack`.
    """

    name = "patch"

    def __init__(
        self, model: nn.Module, *, size: int | float = 0.25,
        location: str | tuple[int, int] = "random", steps: int = 300, step_size: float = 0.05,
        confidence: float = 0.0, init: str = "original", batch_size: int = 256,
        seed: int | None = 0, progress: bool = True,
    ) -> None:
        super().__init__(model, steps=steps, step_size=step_size, confidence=confidence,
                         init=init, batch_size=batch_size, seed=seed, progress=progress)
        if isinstance(size, float):
            check_number("size", size, low=0.0, high=1.0, low_open=True)
        else:
            check_number("size", size, low=1, integer=True)
        self.size = size
        if isinstance(location, str):
            if location not in ("random", "center"):
                raise InputError(f"location must be 'random', 'center' or (row, col), got "
                                 f"{location!r}")
        elif (not isinstance(location, (tuple, list)) or len(location) != 2
              or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                         for v in location)):
            raise InputError(f"location must be 'random', 'center' or (row, col) of two "
                             f"non-negative ints, got {location!r}")
        self.location = location if isinstance(location, str) else tuple(location)

    def side(self, height: int, width: int) -> int:
        """Side of the square in pixels for an H×W image."""
        if isinstance(self.size, float):
            side = max(1, round(self.size * min(height, width)))
        else:
            side = self.size
        if side > min(height, width):
            raise InputError(f"patch size {side} does not fit in {height}×{width} images")
        return side

    def _prepare(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
                 **kwargs: Any) -> dict[str, torch.Tensor]:
        location = kwargs.pop("location", None)
        if kwargs:
            raise InputError(f"patch takes only location= at call time, got {sorted(kwargs)}")
        n, _, h, w = x.shape
        s = self.side(h, w)
        if location is not None:
            if not isinstance(location, torch.Tensor) or location.shape != (n, 2):
                raise InputError(f"location must be an int tensor of shape ({n}, 2) holding "
                                 "(row, col) top-left corners")
            corners = location.to(device=x.device, dtype=torch.int64)
        elif self.location == "random":
            lim = torch.tensor([h - s + 1, w - s + 1], device=x.device, dtype=x.dtype)
            u = torch.rand((n, 2), generator=gen, device=x.device, dtype=x.dtype)
            corners = (u * lim).long().minimum((lim - 1).long())
        elif self.location == "center":
            corners = torch.tensor([(h - s) // 2, (w - s) // 2], device=x.device).expand(n, 2)
        else:
            corners = torch.tensor(self.location, device=x.device).expand(n, 2)
        if bool((corners < 0).any()) or bool((corners[:, 0] > h - s).any()) \
                or bool((corners[:, 1] > w - s).any()):
            raise InputError(f"patch corners must lie in [0, {h - s}]×[0, {w - s}] so the "
                             f"{s}×{s} square fits the {h}×{w} image")
        return {"mask": square_mask(tuple(x.shape), s, corners)}
