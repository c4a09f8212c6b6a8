"""Per-position byte taggers: function-start detection over raw bytes (LEMNA's setting).

A tagger maps int64 ids N×T (byte value + 1, 0 = padding) to float logits N×T×K (K = 2: class 1
= a function starts at this byte). Like the image zoo, every tagger is a
:class:`torch.nn.Sequential` with named children, and its hidden layers (``rnn1``, ``block2``,
...) output channels-first N×C×T maps, so hooks and :func:`deepscope.models.hooks.split` work as
on images (a hidden map is pooled over time the way an image map is pooled over space):

``embed`` (:class:`Embed`, N×T → N×E×T) → ``rnn1`` (:class:`BiGRU`) or ``stem`` +
``block1..`` (:class:`DilatedResidual`) → ``head`` (1×1 convolution, N×K×T) → ``positions``
(:class:`PositionsLast`, N×T×K).

The decision threshold chosen on validation data is folded into ``head``'s bias by
:func:`deepscope.models.tagging.calibrate_threshold`, so ``argmax`` of the logits is the
tagger's decision everywhere (evaluate, predict, explainers).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BiGRU", "DilatedResidual", "Embed", "PositionsLast", "bigru_tagger", "cnn_tagger"]


class Embed(nn.Module):
    """Embedding of ids (0 = padding, mapped to a zero vector), channels first: N×T → N×E×T."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed ``x`` (int64 N×T) as float N×E×T."""
        return self.embedding(x).transpose(1, 2)


class BiGRU(nn.Module):
    """A bidirectional GRU over channels-first maps: N×C×T → N×2H×T."""

    def __init__(self, in_channels: int, hidden: int, layers: int = 1) -> None:
        super().__init__()
        self.gru = nn.GRU(in_channels, hidden, layers, batch_first=True, bidirectional=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Run both directions over time; the outputs are concatenated per position."""
        out, _ = self.gru(h.transpose(1, 2))
        return out.transpose(1, 2)


class DilatedResidual(nn.Module):
    """``h + GELU(BN(conv_k,d(h)))``: a same-length dilated 1-D convolution with a skip.

    Stacking dilations 1, 2, 4, ... widens the receptive field exponentially: each block sees
    ``(k - 1) · d`` more positions.
    """

    def __init__(self, channels: int, dilation: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size // 2))
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Residual update of ``h`` (N×C×T)."""
        return h + F.gelu(self.norm(self.conv(h)))


class PositionsLast(nn.Module):
    """N×K×T → N×T×K (per-position logits, classes last)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Swap the class and time dimensions."""
        return h.transpose(1, 2)


def bigru_tagger(num_classes: int, *, vocab_size: int, embed: int, hidden: int,
                 layers: int = 1, dropout: float = 0.0) -> nn.Sequential:
    """``embed`` → ``rnn1`` (bi-GRU, ``layers`` deep) → ``head`` → ``positions``."""
    parts: OrderedDict[str, nn.Module] = OrderedDict(embed=Embed(vocab_size, embed))
    parts["rnn1"] = BiGRU(embed, hidden, layers)
    if dropout > 0:
        parts["dropout"] = nn.Dropout(dropout)
    parts["head"] = nn.Conv1d(2 * hidden, num_classes, 1)
    parts["positions"] = PositionsLast()
    return nn.Sequential(parts)


def cnn_tagger(num_classes: int, *, vocab_size: int, embed: int, channels: int,
               dilations: tuple[int, ...], dropout: float = 0.0) -> nn.Sequential:
    """``embed`` → ``stem`` (1×1) → ``block1..`` (dilated residual) → ``head`` → ``positions``.

    The receptive field is ``1 + 2 · sum(dilations)`` bytes (kernel 3), centred on the byte.
    """
    parts: OrderedDict[str, nn.Module] = OrderedDict(embed=Embed(vocab_size, embed))
    parts["stem"] = nn.Conv1d(embed, channels, 1)
    for i, d in enumerate(dilations, start=1):
        parts[f"block{i}"] = DilatedResidual(channels, d)
    if dropout > 0:
        parts["dropout"] = nn.Dropout(dropout)
    parts["head"] = nn.Conv1d(channels, num_classes, 1)
    parts["positions"] = PositionsLast()
    return nn.Sequential(parts)
