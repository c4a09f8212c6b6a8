"""Explaining one decision of a per-position tagger from a window around it (LEMNA's setting).

A tagger (:mod:`deepscope.models.taggers`) maps int64 ``N×T`` ids to ``N×T×K`` logits; the
explainers expect a classifier ``N×T`` → ``N×K``. LEMNA explains "does a function start at byte
``p``?" from the 41 bytes around ``p``: :func:`windows` cuts those windows out of longer
sequences (positions beyond a sequence's ends take the fill id, as padding), and
:func:`tagger_proba` / :class:`TaggerAt` read the tagger's output at the window's centre, so
the explainers see a 41-position :class:`~deepscope.explain.features.SequenceSpace` whose
feature ``j`` is byte ``p - radius + j``.

>>> w = windows(x, rows, positions, radius=20)                          # doctest: +SKIP
>>> lime = Lime(SequenceSpace(), num_samples=500).fit(w, tagger_proba(model, 20), target=1)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from deepscope._validate import check_int
from deepscope.errors import InputError
from deepscope.explain.base import model_proba
from deepscope.explain.features import check_inputs

__all__ = ["LEMNA_RADIUS", "TaggerAt", "tagger_proba", "windows"]

#: LEMNA's window: 20 bytes on each side of the explained byte (41 in all).
LEMNA_RADIUS = 20


def windows(x, rows, positions, *, radius: int = LEMNA_RADIUS, fill: int = 0) -> np.ndarray:
    """Windows of ``2 · radius + 1`` ids centred on ``x[rows[i], positions[i]]``.

    Parameters
    ----------
    x : array-like
        int64 ``N×T`` sequences.
    rows, positions : array-like of int
        One (row, position) pair per window.
    radius : int
        Positions on each side of the centre.
    fill : int
        Id of positions that fall outside the sequence.

    Returns
    -------
    ndarray
        int64 ``M×(2·radius+1)``; the explained position is column ``radius``.
    """
    x = check_inputs(x, integer=True)
    radius = check_int("radius", radius, low=0)
    rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
    positions = np.atleast_1d(np.asarray(positions, dtype=np.int64))
    if rows.shape != positions.shape or rows.ndim != 1:
        raise InputError(f"rows and positions must be 1-D and of one length, got {rows.shape} "
                         f"and {positions.shape}")
    n, t = x.shape
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise InputError(f"rows must be in 0..{n - 1}")
    if positions.size and (positions.min() < 0 or positions.max() >= t):
        raise InputError(f"positions must be in 0..{t - 1}")
    padded = np.pad(x, ((0, 0), (radius, radius)), constant_values=fill)
    offsets = positions[:, None] + np.arange(2 * radius + 1)[None, :]
    return np.ascontiguousarray(padded[rows[:, None], offsets])


class TaggerAt(nn.Module):
    """A tagger seen as a classifier of one position: ``N×T`` ids → the ``N×K`` logits at
    ``position`` (not a new model: it holds the tagger as its child ``tagger``)."""

    def __init__(self, tagger: nn.Module, position: int) -> None:
        super().__init__()
        self.tagger = tagger
        self.position = check_int("position", position, low=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the tagger at ``position`` of every row."""
        if x.shape[1] <= self.position:
            raise InputError(f"inputs of length {x.shape[1]} have no position {self.position}")
        return self.tagger(x)[:, self.position, :]


def tagger_proba(tagger: nn.Module, position: int = LEMNA_RADIUS, *,
                 batch_size: int = 512) -> Callable[[np.ndarray], np.ndarray]:
    """Black-box ``predict_proba`` of a tagger's decision at ``position`` (default: the centre
    of a LEMNA window); int64 ``N×T`` → float64 ``N×K`` (see
    :func:`deepscope.explain.model_proba`)."""
    return model_proba(TaggerAt(tagger, position), batch_size=batch_size)
