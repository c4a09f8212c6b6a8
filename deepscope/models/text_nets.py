"""Building blocks and builders of the zoo's text classifiers (registered in :mod:`.zoo`).

Inputs are token ids, int64 N×T, 0 = padding (trailing) or a nullified token. Both models are
trees of :class:`torch.nn.Sequential` with named children (so :func:`.hooks.split` and MODE's
feature models work on them), and their *sequence* layers are channel-first, N×D×T, like a
``Conv1d`` (and like the C×H×W maps of the image models).

Padding
    Both models guarantee that appending padding (0) to a sentence does not change its logits
    (up to float rounding). The embedding of id 0 is the zero vector and stays zero
    (``padding_idx=0``).

    * :func:`kim_cnn`: the convolutions have **no bias** and are followed by a ReLU; each width
      ``w`` sees ``w - 1`` extra zero columns after the sequence. A window that starts in the
      padding is all zeros, so its activation is exactly 0, and max-over-time of non-negative
      values ignores such zeros. The filter bias of Kim's original is therefore dropped (the
      linear head keeps its bias).
    * :func:`bigru`: the GRU runs on a packed sequence of each sentence's length, the position
      of its last non-zero embedding column plus one (a real token's embedding is never the
      zero vector; an all-padding row counts as length 1).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = ["BiGRUEncoder", "MaxOverTime", "ParallelConv1d", "TokenEmbedding", "bigru",
           "kim_cnn"]

#: Vocabulary size of SST-2's training split (13,395 tokens with [PAD] and [UNK]): the
#: default ``vocab_size`` of the text models, so their zoo names state SST-2 sizes.
SST2_VOCAB = 13_395


class TokenEmbedding(nn.Module):
    """Token ids N×T → embeddings N×D×T (channel-first); id 0 maps to the zero vector."""

    def __init__(self, vocab_size: int, dim: int, scale: float = 0.25) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        # Kim's CNN-rand: uniform in [-0.25, 0.25] (not torch's N(0, 1), which Adam barely moves)
        with torch.no_grad():
            self.embedding.weight.uniform_(-scale, scale)
            self.embedding.weight[0].zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed ``x`` (int64 N×T) and move the features to dimension 1."""
        return self.embedding(x).transpose(1, 2)


class ParallelConv1d(nn.Module):
    """Kim's parallel convolutions: one bias-free ``Conv1d`` + ReLU per width, concatenated.

    N×D×T → N×(F·len(widths))×T; every width is padded with ``w - 1`` zero columns on the right,
    so position ``t`` is the window starting at token ``t``.
    """

    def __init__(self, dim: int, filters: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, w, bias=False) for w in widths)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Apply every convolution to ``h`` (N×D×T)."""
        return torch.cat([F.relu(conv(F.pad(h, (0, w - 1))))
                          for w, conv in zip(self.widths, self.convs, strict=True)], dim=1)


class MaxOverTime(nn.Module):
    """N×D×T → N×D: the maximum over the last (time) dimension."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Max-pool ``h`` over time."""
        return h.amax(dim=2)


def _lengths(h: torch.Tensor) -> torch.Tensor:
    """Per row, the last non-zero column of ``h`` (N×D×T) plus one, at least 1 (on the CPU)."""
    used = h.detach().abs().sum(dim=1) > 0  # N×T
    t = torch.arange(1, h.shape[2] + 1, device=h.device)
    return (used * t).amax(dim=1).clamp(min=1).cpu()


class BiGRUEncoder(nn.Module):
    """A bidirectional GRU over N×D×T embeddings → N×2H: the last states of both directions."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Run the GRU over each row's length (see the module docstring)."""
        packed = pack_padded_sequence(h.transpose(1, 2), _lengths(h), batch_first=True,
                                      enforce_sorted=False)
        _, last = self.gru(packed)  # 2×N×H: forward direction's last, backward direction's
        return torch.cat([last[0], last[1]], dim=1)


def kim_cnn(num_classes: int, *, vocab_size: int = SST2_VOCAB, embedding_dim: int = 128,
            filters: int = 100, widths: tuple[int, ...] = (3, 4, 5),
            dropout: float = 0.5) -> nn.Sequential:
    """Kim (2014)'s CNN for sentence classification over embeddings trained from scratch.

    ``embed`` (N×E×T) → ``convs`` (widths 3/4/5, ``filters`` each, ReLU; N×3F×T) → ``pool``
    (max over time, N×3F) → ``dropout`` → ``head`` (linear).
    """
    return nn.Sequential(OrderedDict(
        embed=TokenEmbedding(vocab_size, embedding_dim),
        convs=ParallelConv1d(embedding_dim, filters, widths),
        pool=MaxOverTime(),
        dropout=nn.Dropout(dropout),
        head=nn.Linear(filters * len(widths), num_classes),
    ))


def bigru(num_classes: int, *, vocab_size: int = SST2_VOCAB, embedding_dim: int = 128,
          hidden: int = 128, dropout: float = 0.5) -> nn.Sequential:
    """A bidirectional GRU classifier over embeddings trained from scratch.

    ``embed`` (N×E×T) → ``embed_dropout`` → ``rnn`` (packed bi-GRU, last states, N×2H) →
    ``dropout`` → ``head`` (linear).
    """
    return nn.Sequential(OrderedDict(
        embed=TokenEmbedding(vocab_size, embedding_dim),
        embed_dropout=nn.Dropout(dropout / 2),
        rnn=BiGRUEncoder(embedding_dim, hidden),
        dropout=nn.Dropout(dropout),
        head=nn.Linear(2 * hidden, num_classes),
    ))
