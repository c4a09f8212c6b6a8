"""Attribute operations: substitution and preservation of image regions, for any attribute set.

An *attribute set* gives, for every image, A regions either as boxes (N×A×4, ``(x0, y0, x1,
y1)`` with x1/y1 exclusive, like the AT&T landmark file) or as masks (N×A×H×W, values in
[0, 1]). Nothing here is specific to faces.

- :func:`substitute` replaces attribute ``a`` of each recipient image by the donor's: with
  boxes, the donor's box content is resampled into the recipient's box (so differently sized
  regions line up); with masks, the donor's pixels under the recipient's mask are used. The
  seam is feathered (a linear ramp of ``feather`` pixels) so no hard edge is introduced.
- :func:`preserve` keeps attribute ``a`` of the recipient and takes everything else from the
  donor (pixel-aligned), with the same feathered seam.
- :func:`pair_up` draws seeded (recipient, donor) pairs, donors from another group (person)
  when groups are given.

All operations are vectorised over the pairs and keep the input's device and dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from deepscope.errors import InputError

__all__ = ["AttributeSet", "boxes_to_masks", "pair_up", "preserve", "substitute"]


@dataclass(frozen=True)
class AttributeSet:
    """Per-image attribute regions as boxes or masks (exactly one of them).

    Parameters
    ----------
    boxes : torch.Tensor, optional
        N×A×4 ``(x0, y0, x1, y1)`` pixel boxes, x1/y1 exclusive.
    masks : torch.Tensor, optional
        N×A×H×W region masks in [0, 1] (soft masks allowed).
    names : tuple of str
        A attribute names (default ``attr0``, ``attr1``, ...).
    """

    boxes: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.boxes is None) == (self.masks is None):
            raise InputError("an AttributeSet needs exactly one of boxes (N×A×4) or masks "
                             "(N×A×H×W)")
        t = self.boxes if self.boxes is not None else self.masks
        if not isinstance(t, torch.Tensor):
            raise InputError(f"attribute boxes/masks must be a tensor, got {type(t).__name__}")
        if self.boxes is not None and (t.ndim != 3 or t.shape[2] != 4):
            raise InputError(f"boxes must be N×A×4 (x0, y0, x1, y1), got shape {tuple(t.shape)}")
        if self.masks is not None:
            if t.ndim != 4 or (not t.is_floating_point() and t.dtype != torch.bool):
                raise InputError(f"masks must be N×A×H×W (float in [0, 1] or bool), got shape "
                                 f"{tuple(t.shape)} and dtype {t.dtype}")
        if t.shape[1] == 0:
            raise InputError("the attribute set has no attributes (A = 0)")
        names = tuple(self.names) or tuple(f"attr{i}" for i in range(t.shape[1]))
        if len(names) != t.shape[1]:
            raise InputError(f"{len(names)} attribute names given for {t.shape[1]} attributes")
        object.__setattr__(self, "names", names)

    @classmethod
    def coerce(cls, boxes: Any = None, masks: Any = None, names: Any = None) -> AttributeSet:
        if isinstance(boxes, AttributeSet):
            return boxes
        if isinstance(boxes, torch.Tensor) is False and boxes is not None:
            try:
                boxes = torch.as_tensor(boxes)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise InputError(f"boxes must be an N×A×4 array, got {type(boxes).__name__}"
                                 ) from exc
        return cls(boxes=boxes, masks=masks, names=tuple(names or ()))

    def __len__(self) -> int:
        t = self.boxes if self.boxes is not None else self.masks
        return int(t.shape[0])  # type: ignore[union-attr]

    @property
    def num_attributes(self) -> int:
        return len(self.names)

    def subset(self, index: torch.Tensor) -> AttributeSet:
        """The regions of the images ``index`` (same names)."""
        return AttributeSet(
            boxes=None if self.boxes is None else self.boxes[index.to(self.boxes.device)],
            masks=None if self.masks is None else self.masks[index.to(self.masks.device)],
            names=self.names)

    def check(self, x: torch.Tensor) -> AttributeSet:
        """Check that the set matches images ``x`` (N×C×H×W); return self."""
        n, _, h, w = x.shape
        if len(self) != n:
            raise InputError(f"{n} images but attribute regions for {len(self)}")
        if self.boxes is not None:
            b = self.boxes
            if b.is_floating_point() and not bool(torch.isfinite(b).all()):
                raise InputError("boxes contain NaN or infinite values")
            x0, y0, x1, y1 = b.unbind(-1)
            bad = (x0 < 0) | (y0 < 0) | (x1 > w) | (y1 > h) | (x1 <= x0) | (y1 <= y0)
            if bool(bad.any()):
                i, a = (int(v) for v in torch.nonzero(bad)[0])
                raise InputError(f"box {tuple(int(v) for v in b[i, a])} of image {i}, attribute "
                                 f"{self.names[a]!r} is empty or outside the {w}×{h} image "
                                 "(expected 0 <= x0 < x1 <= W, 0 <= y0 < y1 <= H)")
        else:
            m = self.masks
            if tuple(m.shape[2:]) != (h, w):  # type: ignore[union-attr]
                raise InputError(f"masks are {tuple(m.shape[2:])} but images are {(h, w)}")  # type: ignore[union-attr]
        return self

    def region(self, index: torch.Tensor, attribute: int, size: tuple[int, int], *,
               feather: float = 0.0, dtype: torch.dtype = torch.float32,
               device: Any = None) -> torch.Tensor:
        """Soft masks (n×1×H×W) of ``attribute`` for images ``index`` at image ``size``."""
        if self.boxes is not None:
            return boxes_to_masks(self.boxes[index.to(self.boxes.device), attribute][:, None],
                                  size, feather=feather, dtype=dtype, device=device)
        m = self.masks[index.to(self.masks.device), attribute][:, None]  # type: ignore[index]
        m = m.to(device=device, dtype=dtype)
        if feather > 0:
            m = _blur(m, feather)
        return m.clamp(0, 1)


def _blur(m: torch.Tensor, feather: float) -> torch.Tensor:
    k = max(1, round(feather) * 2 + 1)
    return F.avg_pool2d(m, k, stride=1, padding=k // 2, count_include_pad=False)


def boxes_to_masks(boxes: torch.Tensor, size: tuple[int, int], *, feather: float = 0.0,
                   dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
    """N×A×H×W masks of N×A×4 boxes; with ``feather > 0`` the edge ramps over that many pixels.

    A pixel's value is ``clip(d / feather + 0.5, 0, 1)`` where ``d`` is the signed distance of
    its centre inside the box (negative outside), so a box of width ``w`` keeps a total weight
    of ``w`` along each row.
    """
    h, w = size
    device = boxes.device if device is None else device
    b = boxes.to(device=device, dtype=dtype)
    ys = torch.arange(h, device=device, dtype=dtype).view(1, 1, h, 1) + 0.5
    xs = torch.arange(w, device=device, dtype=dtype).view(1, 1, 1, w) + 0.5
    x0, y0, x1, y1 = (b[..., i, None, None] for i in range(4))
    dx = torch.minimum(xs - x0, x1 - xs)
    dy = torch.minimum(ys - y0, y1 - ys)
    d = torch.minimum(dx, dy)
    if feather > 0:
        return (d / feather + 0.5).clamp(0, 1)
    return (d > 0).to(dtype)


def pair_up(n: int, n_pairs: int, *, groups: torch.Tensor | None = None, seed: int = 0
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (recipient, donor) index pairs over ``n`` images, donor ≠ recipient.

    With ``groups`` (e.g. the person of each face) the donor always comes from another group.
    Recipients cycle through a random permutation, so every image is used about equally.
    """
    if n < 2:
        raise InputError(f"pairing needs at least 2 images, got {n}")
    if n_pairs < 1:
        raise InputError(f"n_pairs must be >= 1, got {n_pairs}")
    gen = torch.Generator().manual_seed(seed)
    reps = -(-n_pairs // n)
    rec = torch.cat([torch.randperm(n, generator=gen) for _ in range(reps)])[:n_pairs]
    if groups is None:
        off = torch.randint(1, n, (n_pairs,), generator=gen)
        return rec, (rec + off) % n
    g = torch.as_tensor(groups).cpu()
    if g.shape != (n,):
        raise InputError(f"groups must have one entry per image ({n}), got {tuple(g.shape)}")
    if len(torch.unique(g)) < 2:
        raise InputError("pairing across groups needs at least two groups")
    donors = torch.empty(n_pairs, dtype=torch.long)
    for i, r in enumerate(rec.tolist()):
        candidates = torch.nonzero(g != g[r]).flatten()
        donors[i] = candidates[torch.randint(len(candidates), (1,), generator=gen)]
    return rec, donors


def _check_pairs(x: torch.Tensor, attrs: AttributeSet, attribute: int,
                 recipients: torch.Tensor, donors: torch.Tensor) -> None:
    if not 0 <= attribute < attrs.num_attributes:
        raise InputError(f"attribute index {attribute} out of range "
                         f"(0..{attrs.num_attributes - 1})")
    if recipients.shape != donors.shape or recipients.ndim != 1:
        raise InputError("recipients and donors must be 1-D index tensors of the same length")
    n = x.shape[0]
    for name, idx in (("recipient", recipients), ("donor", donors)):
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise InputError(f"{name} indices must lie in [0, {n})")


def substitute(x: torch.Tensor, attrs: AttributeSet, attribute: int, recipients: torch.Tensor,
               donors: torch.Tensor, *, feather: float = 2.0) -> torch.Tensor:
    """Recipient images with ``attribute`` replaced by the donor's (feathered seam).

    Parameters
    ----------
    x : torch.Tensor
        N×C×H×W images.
    attrs : AttributeSet
        Regions of the N images.
    attribute : int
        Which attribute to replace.
    recipients, donors : torch.Tensor
        1-D index tensors into ``x`` (e.g. from :func:`pair_up`).
    feather : float
        Width of the blended border in pixels (0 = hard edge).

    Returns
    -------
    torch.Tensor
        len(recipients)×C×H×W images, on ``x``'s device and dtype.
    """
    _check_pairs(x, attrs, attribute, recipients, donors)
    h, w = x.shape[2:]
    r, d = recipients.to(x.device), donors.to(x.device)
    xr, xd = x[r], x[d]
    mask = attrs.region(recipients, attribute, (h, w), feather=feather, dtype=x.dtype,
                        device=x.device)
    if attrs.boxes is not None:
        xd = _warp_boxes(xd, attrs.boxes[donors.to(attrs.boxes.device), attribute],
                         attrs.boxes[recipients.to(attrs.boxes.device), attribute])
    return mask * xd + (1 - mask) * xr


def preserve(x: torch.Tensor, attrs: AttributeSet, attribute: int, recipients: torch.Tensor,
             donors: torch.Tensor, *, feather: float = 2.0) -> torch.Tensor:
    """Donor images with the recipient's ``attribute`` region kept in place (feathered seam).

    The result shows the recipient's attribute at the recipient's position and the donor's
    pixels everywhere else. Same parameters as :func:`substitute`.
    """
    _check_pairs(x, attrs, attribute, recipients, donors)
    h, w = x.shape[2:]
    r, d = recipients.to(x.device), donors.to(x.device)
    mask = attrs.region(recipients, attribute, (h, w), feather=feather, dtype=x.dtype,
                        device=x.device)
    return mask * x[r] + (1 - mask) * x[d]


def _warp_boxes(src: torch.Tensor, src_boxes: torch.Tensor, dst_boxes: torch.Tensor
                ) -> torch.Tensor:
    """Resample ``src`` so that each source box lands on the matching destination box."""
    h, w = src.shape[2:]
    sb = src_boxes.to(device=src.device, dtype=src.dtype)
    db = dst_boxes.to(device=src.device, dtype=src.dtype)
    sx = (sb[:, 2] - sb[:, 0]) / (db[:, 2] - db[:, 0])
    sy = (sb[:, 3] - sb[:, 1]) / (db[:, 3] - db[:, 1])
    # continuous pixel coords: c_src = x0_src + (c_dst - x0_dst) * s; normalised n = 2c/W - 1
    bx = sx - 1 + 2 * (sb[:, 0] - sx * db[:, 0]) / w
    by = sy - 1 + 2 * (sb[:, 1] - sy * db[:, 1]) / h
    theta = torch.zeros(src.shape[0], 2, 3, device=src.device, dtype=src.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = sx, bx
    theta[:, 1, 1], theta[:, 1, 2] = sy, by
    grid = F.affine_grid(theta, list(src.shape), align_corners=False)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
