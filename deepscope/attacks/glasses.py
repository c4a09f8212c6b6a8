"""Eyeglass-frame attack: the perturbation is confined to a frame drawn around the eyes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from deepscope.attacks._checks import check_number
from deepscope.attacks._masked import MaskedAttack
from deepscope.attacks.base import ATTACKS
from deepscope.errors import InputError


def _as_boxes(boxes: Any, n: int, height: int, width: int, eyes: Sequence[int],
              device: torch.device) -> torch.Tensor:
    """Validate landmark boxes (N×A×4, x0, y0, x1, y1) and return the two eye boxes N×2×4."""
    if isinstance(boxes, np.ndarray):
        boxes = torch.from_numpy(boxes)
    if not isinstance(boxes, torch.Tensor):
        raise InputError(f"boxes must be a tensor or array of shape (N, A, 4), got "
                         f"{type(boxes).__name__}")
    if boxes.dim() != 3 or boxes.shape[0] != n or boxes.shape[2] != 4:
        raise InputError(f"boxes must have shape ({n}, A, 4) (x0, y0, x1, y1 per landmark "
                         f"region, one row per image), got {tuple(boxes.shape)}")
    if max(eyes) >= boxes.shape[1]:
        raise InputError(f"eyes={tuple(eyes)} needs at least {max(eyes) + 1} boxes per image, "
                         f"got {boxes.shape[1]}")
    if boxes.is_complex() or not bool(torch.isfinite(boxes.double()).all()):
        raise InputError("boxes must hold finite real coordinates")
    b = boxes[:, list(eyes)].to(device=device, dtype=torch.float32)
    x0, y0, x1, y1 = b.unbind(-1)
    if bool((x1 <= x0).any()) or bool((y1 <= y0).any()):
        raise InputError("every eye box needs x0 < x1 and y0 < y1 (x1, y1 exclusive)")
    if bool((x0 < 0).any()) or bool((y0 < 0).any()) or bool((x1 > width).any()) \
            or bool((y1 > height).any()):
        raise InputError(f"eye boxes must lie inside the {height}×{width} image")
    return b


def glasses_mask(
    boxes: Any, height: int, width: int, *, eyes: Sequence[int] = (0, 1), pad: float = 2.0,
    thickness: float = 2.5,
) -> torch.Tensor:
    """Eyeglass-frame masks (bool N×1×H×W) built from per-image eye boxes.

    Each eye gets an elliptical rim: the ring between the ellipse inscribed in its box grown
    by ``pad`` pixels on every side and the same ellipse shrunk by ``thickness``. A bridge of
    the same thickness joins the two eye centres along the line between them, outside both
    lenses. Pixel (i, j) is tested at its centre (j + 0.5, i + 0.5).

    Parameters
    ----------
    boxes : tensor or array, N×A×4
        Landmark boxes (x0, y0, x1, y1; x1, y1 exclusive), e.g. ``extras["boxes"]`` of the
        ``att-faces`` dataset (order left_eye, right_eye, nose, mouth).
    height, width : int
        Image size.
    eyes : pair of int
        Indices of the two eye boxes along A.
    pad : float
        Growth of the rims' outer edge beyond the eye box, in pixels.
    thickness : float
        Rim and bridge thickness in pixels.
    """
    check_number("pad", pad, low=0.0)
    check_number("thickness", thickness, low=0.0, low_open=True)
    dev = boxes.device if isinstance(boxes, torch.Tensor) else torch.device("cpu")
    n = int(boxes.shape[0]) if hasattr(boxes, "shape") and len(boxes.shape) > 0 else 0
    b = _as_boxes(boxes, n, height, width, eyes, dev)
    cx, cy = (b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2  # N×2
    ax, ay = (b[..., 2] - b[..., 0]) / 2 + pad, (b[..., 3] - b[..., 1]) / 2 + pad
    xs = torch.arange(width, device=dev, dtype=torch.float32) + 0.5
    ys = torch.arange(height, device=dev, dtype=torch.float32) + 0.5

    def ellipse(e: int, shrink: float) -> torch.Tensor:  # N×H×W, < 1 inside
        sx = (ax[:, e] - shrink).clamp_min(0.5)
        sy = (ay[:, e] - shrink).clamp_min(0.5)
        dx = ((xs[None, :] - cx[:, e, None]) / sx[:, None]) ** 2
        dy = ((ys[None, :] - cy[:, e, None]) / sy[:, None]) ** 2
        return dy[:, :, None] + dx[:, None, :]

    frame = torch.zeros((n, height, width), dtype=torch.bool, device=dev)
    lens = torch.zeros_like(frame)
    for e in range(2):
        frame |= ellipse(e, 0.0) <= 1.0
        lens |= ellipse(e, thickness) < 1.0
    rims = frame & ~lens
    # Bridge: band of the given thickness around the line joining the two eye centres.
    left = cx.argmin(dim=1)
    rows = torch.arange(n, device=dev)
    lx, ly = cx[rows, left], cy[rows, left]
    rx, ry = cx[rows, 1 - left], cy[rows, 1 - left]
    slope = (ry - ly) / (rx - lx).clamp_min(1e-6)
    line_y = ly[:, None] + (xs[None, :] - lx[:, None]) * slope[:, None]  # N×W
    near = (ys[None, :, None] - line_y[:, None, :]).abs() <= max(thickness / 2, 0.5)
    between = (xs[None, :] >= lx[:, None]) & (xs[None, :] <= rx[:, None])  # N×W
    bridge = near & between[:, None, :] & ~lens
    return (rims | bridge)[:, None]


@ATTACKS.register("glasses")
class Glasses(MaskedAttack):
    """Adversarial eyeglass frames (after Sharif et al., 2016), one per image.

    The perturbation is confined to :func:`glasses_mask` of the image's eye boxes; inside
    it pixels take any value in [0, 1], outside they stay exactly as they were. Pass the
    landmark boxes at call time, ``attack(x, y, target="first", boxes=boxes)``, or once as
    the ``boxes`` parameter (for a fixed set of images).

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    boxes : tensor or array N×A×4, optional
        Default landmark boxes (x0, y0, x1, y1); call-time ``boxes=`` overrides them.
    eyes : pair of int
        Indices of the two eye boxes along A (``att-faces``: 0 = left_eye, 1 = right_eye).
    pad, thickness : float
        Frame geometry, see :func:`glasses_mask`.
    steps, step_size, confidence, init, batch_size, seed, progress
        See :class:`~deepscope.attacks._masked.MaskedAttack`.
    """

    name = "glasses"

    def __init__(
        self, model: nn.Module, *, boxes: Any = None, eyes: tuple[int, int] = (0, 1),
        pad: float = 2.0, thickness: float = 2.5, steps: int = 300, step_size: float = 0.05,
        confidence: float = 0.0, init: str = "original", batch_size: int = 256,
        seed: int | None = 0, progress: bool = True,
    ) -> None:
        super().__init__(model, steps=steps, step_size=step_size, confidence=confidence,
                         init=init, batch_size=batch_size, seed=seed, progress=progress)
        if (not isinstance(eyes, (tuple, list)) or len(eyes) != 2 or len(set(eyes)) != 2
                or not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0
                           for e in eyes)):
            raise InputError(f"eyes must be two distinct non-negative box indices, got {eyes!r}")
        self.eyes = tuple(eyes)
        self.pad = check_number("pad", pad, low=0.0)
        self.thickness = check_number("thickness", thickness, low=0.0, low_open=True)
        self.boxes = boxes

    def _prepare(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
                 **kwargs: Any) -> dict[str, torch.Tensor]:
        boxes = kwargs.pop("boxes", None)
        if kwargs:
            raise InputError(f"glasses takes only boxes= at call time, got {sorted(kwargs)}")
        if boxes is None:
            boxes = self.boxes
        if boxes is None:
            raise InputError("the glasses attack needs the eye boxes: call it with "
                             "boxes=dataset.extras['boxes'] (N×A×4: x0, y0, x1, y1)")
        n, _, h, w = x.shape
        _as_boxes(boxes, n, h, w, self.eyes, x.device)  # checks N against x first
        if isinstance(boxes, np.ndarray):
            boxes = torch.from_numpy(boxes)
        mask = glasses_mask(boxes.to(x.device), h, w, eyes=self.eyes, pad=self.pad,
                            thickness=self.thickness)
        return {"mask": mask}
