"""Small building blocks shared by the zoo models.

Every zoo model is a tree of :class:`torch.nn.Sequential` with named children, so a layer is
addressed by its dotted path (``"block2.pool"``) and :func:`deepscope.models.hooks.split` can cut
the model in two. These helpers build the named blocks.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from deepscope.errors import InputError


class Normalize(nn.Module):
    """Per-channel standardisation ``(x - mean) / std`` as the first layer of a model.

    ``mean`` and ``std`` are buffers, so they travel with the ``state_dict`` and follow the
    model's device and dtype.

    Parameters
    ----------
    mean, std : float or sequence of float
        One value for all channels, or one value per channel.
    channels : int
        Number of input channels.
    """

    def __init__(
        self, mean: float | Sequence[float], std: float | Sequence[float], channels: int
    ) -> None:
        super().__init__()
        mean_t = _per_channel(mean, channels, "mean")
        std_t = _per_channel(std, channels, "std")
        if bool((std_t <= 0).any()):
            raise InputError(f"normalisation std must be > 0, got {std_t.tolist()}")
        self.register_buffer("mean", mean_t.view(1, channels, 1, 1))
        self.register_buffer("std", std_t.view(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


def _per_channel(value: float | Sequence[float], channels: int, what: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if t.numel() == 1:
        t = t.repeat(channels)
    if t.numel() != channels:
        raise InputError(
            f"normalisation {what} needs 1 or {channels} values (one per channel), got {t.numel()}"
        )
    if not bool(torch.isfinite(t).all()):
        raise InputError(f"normalisation {what} must be finite, got {t.tolist()}")
    return t


def conv_block(
    channels: Sequence[int], *, pool: bool = True, kernel_size: int = 3
) -> nn.Sequential:
    """A VGG-style block: ``len(channels) - 1`` × (conv → BN → ReLU), then a 2×2 max-pool.

    Children are named ``conv``/``bn``/``relu`` for a single convolution and
    ``conv1``/``bn1``/``relu1``/``conv2``/... for several, then ``pool``.

    Parameters
    ----------
    channels : sequence of int
        Input channels followed by the output channels of each convolution.
    pool : bool
        Append ``nn.MaxPool2d(2)`` named ``pool``.
    kernel_size : int
        Odd kernel size; padding keeps the spatial size.
    """
    if len(channels) < 2:
        raise InputError("conv_block needs input channels and at least one output width")
    n = len(channels) - 1
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i, (cin, cout) in enumerate(itertools.pairwise(channels), start=1):
        suffix = "" if n == 1 else str(i)
        layers[f"conv{suffix}"] = nn.Conv2d(
            cin, cout, kernel_size, padding=kernel_size // 2, bias=False
        )
        layers[f"bn{suffix}"] = nn.BatchNorm2d(cout)
        layers[f"relu{suffix}"] = nn.ReLU()
    if pool:
        layers["pool"] = nn.MaxPool2d(2)
    return nn.Sequential(layers)


def dense_block(
    in_features: int, out_features: int, *, dropout: float = 0.0, batch_norm: bool = False
) -> nn.Sequential:
    """A hidden dense layer: ``linear`` (→ ``bn``) → ``relu`` (→ ``dropout``)."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["linear"] = nn.Linear(in_features, out_features, bias=not batch_norm)
    if batch_norm:
        layers["bn"] = nn.BatchNorm1d(out_features)
    layers["relu"] = nn.ReLU()
    if dropout > 0:
        layers["dropout"] = nn.Dropout(dropout)
    return nn.Sequential(layers)
