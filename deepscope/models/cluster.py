"""Seeded k-means, shared by bug injection (:mod:`deepscope.models.bugs`) and input selection
(:mod:`deepscope.debug.selection`).

>>> import torch
>>> from deepscope.models.cluster import kmeans
>>> pts = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
>>> centres, assign = kmeans(pts, 2, generator=torch.Generator().manual_seed(0))
>>> bool(assign[0] == assign[1]) and bool(assign[2] == assign[3])
True
"""

from __future__ import annotations

import torch

from deepscope.errors import InputError

__all__ = ["kmeans"]


def _plus_plus(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ initial centres (distance-squared sampling; uniform when all points coincide)."""
    n = len(points)
    first = int(torch.randint(n, (1,), generator=generator))
    centres = [points[first]]
    d2 = torch.cdist(points, points[first : first + 1]).squeeze(1) ** 2
    for _ in range(1, k):
        if float(d2.sum()) > 0:
            nxt = int(torch.multinomial(d2 / d2.sum(), 1, generator=generator))
        else:
            nxt = int(torch.randint(n, (1,), generator=generator))
        centres.append(points[nxt])
        d2 = torch.minimum(d2, torch.cdist(points, points[nxt : nxt + 1]).squeeze(1) ** 2)
    return torch.stack(centres)


def kmeans(
    points: torch.Tensor, k: int, *, generator: torch.Generator, iterations: int = 50
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded k-means (k-means++ initialisation, Lloyd iterations) on the rows of ``points``.

    Parameters
    ----------
    points : torch.Tensor
        N×D points.
    k : int
        Number of clusters, ``1 <= k <= N``.
    generator : torch.Generator
        Seeds the initialisation.
    iterations : int
        At most this many Lloyd iterations (stops earlier when the assignment is stable).

    Returns
    -------
    (centres, assignment) : (k×D tensor, N int64 tensor)
        Empty clusters keep their previous centre.
    """
    n = len(points)
    if not 1 <= k <= n:
        raise InputError(f"k-means needs 1 <= k <= {n} clusters, got {k}")
    c = _plus_plus(points, k, generator)
    assign = torch.cdist(points, c).argmin(1)
    for _ in range(iterations):
        sums = torch.zeros_like(c).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)
        nonempty = counts > 0
        c = torch.where(nonempty[:, None], sums / counts.clamp(min=1)[:, None], c)
        new_assign = torch.cdist(points, c).argmin(1)
        if torch.equal(new_assign, assign):
            break
        assign = new_assign
    return c, assign
