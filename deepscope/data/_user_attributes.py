"""Attribute regions that come with ``.npz`` images, for AmI (:mod:`deepscope.detect.ami`).

Either (not both):

``boxes``
    N×A×4 numbers ``(x0, y0, x1, y1)`` in pixels, x1/y1 exclusive, ``0 <= x0 < x1 <= W`` and
    ``0 <= y0 < y1 <= H``; stored as int64 in ``extras["boxes"]``, names from ``box_names``
    in ``info["box_names"]`` (the layout of the AT&T landmark boxes).
``masks``
    N×A×H×W, bool or numbers in [0, 1] (soft masks allowed), H×W those of the images; stored as
    float32 in ``extras["masks"]``, names from ``mask_names`` in ``info["mask_names"]``.

When the images are resized, boxes are scaled and rounded to whole pixels, masks resized with
the images' bilinear rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deepscope.data._user_common import UserDataError

__all__ = ["fit_attributes", "read_attributes"]


def _names(arrays: dict[str, np.ndarray], key: str, count: int, path: Path) -> list[str] | None:
    if key not in arrays:
        return None
    names = [str(b) for b in np.asarray(arrays[key]).ravel()]
    if len(names) != count:
        raise UserDataError(f"{path}: {len(names)} {key} for {count} attributes per image; "
                            "pass one name per attribute")
    return names


def _boxes(boxes: np.ndarray, n: int, path: Path) -> torch.Tensor:
    if boxes.ndim != 3 or boxes.shape[0] != n or boxes.shape[2] != 4 or not (
            np.issubdtype(boxes.dtype, np.integer) or np.issubdtype(boxes.dtype, np.floating)):
        raise UserDataError(f"{path}: boxes must be numeric N×A×4 (x0, y0, x1, y1) with N = {n}, "
                            f"got {boxes.dtype} {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise UserDataError(f"{path}: boxes hold NaN or infinite values")
    return torch.from_numpy(np.rint(boxes).astype(np.int64))


def _masks(masks: np.ndarray, n: int, path: Path) -> torch.Tensor:
    if masks.ndim != 4 or masks.shape[0] != n or not (
            masks.dtype == bool or np.issubdtype(masks.dtype, np.number)):
        raise UserDataError(f"{path}: masks must be N×A×H×W (bool or numbers in [0, 1]) with "
                            f"N = {n}, got {masks.dtype} {masks.shape}")
    values = masks.astype(np.float32)
    if not np.isfinite(values).all() or values.min(initial=0) < 0 or values.max(initial=0) > 1:
        raise UserDataError(f"{path}: masks must hold values in [0, 1] (bool, or soft masks)")
    return torch.from_numpy(values)


def read_attributes(arrays: dict[str, np.ndarray], n: int, path: Path
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(extras, info)`` with the ``boxes`` or ``masks`` of an ``.npz`` (empty without)."""
    if "boxes" in arrays and "masks" in arrays:
        raise UserDataError(f"{path} holds both boxes and masks; keep one of them (AmI reads "
                            "one attribute set)")
    for key, read in (("boxes", _boxes), ("masks", _masks)):
        if key in arrays:
            t = read(np.asarray(arrays[key]), n, path)
            if t.shape[1] == 0:
                raise UserDataError(f"{path}: {key} has no attributes (A = 0)")
            name_key = "box_names" if key == "boxes" else "mask_names"
            names = _names(arrays, name_key, int(t.shape[1]), path)
            return {key: t}, ({} if names is None else {name_key: names})
    return {}, {}


def fit_attributes(extras: dict[str, torch.Tensor], before: tuple[int, int],
                   after: tuple[int, int], path: Path) -> dict[str, torch.Tensor]:
    """Check the regions against the ``before`` (H, W) images; scale them to ``after``."""
    h, w = before
    out = dict(extras)
    if "boxes" in out:
        boxes = out["boxes"]
        outside = ((boxes[..., 0] < 0) | (boxes[..., 1] < 0) | (boxes[..., 2] > w)
                   | (boxes[..., 3] > h))
        empty = (boxes[..., 2] <= boxes[..., 0]) | (boxes[..., 3] <= boxes[..., 1])
        if bool((outside | empty).any()):
            raise UserDataError(f"{path}: some boxes are empty or outside the {h}×{w} images; "
                                "boxes are (x0, y0, x1, y1) pixels with 0 <= x0 < x1 <= W, "
                                "0 <= y0 < y1 <= H")
        if before != after:
            sx, sy = after[1] / w, after[0] / h
            scale = torch.tensor([sx, sy, sx, sy], dtype=torch.float64)
            out["boxes"] = torch.round(boxes.to(torch.float64) * scale).to(torch.int64)
    if "masks" in out:
        masks = out["masks"]
        if tuple(masks.shape[2:]) != before:
            raise UserDataError(f"{path}: masks are {masks.shape[2]}×{masks.shape[3]} but the "
                                f"images are {h}×{w}; save one mask pixel per image pixel")
        if before != after:
            out["masks"] = F.interpolate(masks, size=after, mode="bilinear", antialias=True,
                                         align_corners=False).clamp_(0.0, 1.0)
    return out
