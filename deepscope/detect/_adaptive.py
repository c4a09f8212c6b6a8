"""What the detectors hand to adaptive attacks: :class:`AdaptiveTerms`.

``deepscope.attacks`` defines the contract (:class:`deepscope.attacks.DefenseTerms`, a
protocol: ``kind``, ``model``, ``views(x)``, ``penalty(x, labels, views)``, ``flags(x)``);
``detect`` may not import ``attacks`` (sibling layers), so a detector's ``adaptive_terms()``
returns this small dataclass, which satisfies the protocol structurally.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["AdaptiveTerms", "model_view", "straight_through"]

Views = list[torch.Tensor]


def straight_through(x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """``fx`` in the forward pass, the identity in the backward pass (BPDA, Athalye et al.):
    the gradient of a non-differentiable ``f`` (rounding, a gradient-sign step) is taken as
    the gradient of the identity."""
    return x + (fx - x).detach()


def model_view(model: nn.Module, device: torch.device) -> Callable[[torch.Tensor], Views]:
    """``x -> [model(x)]``: the protected model as the only view (detectors whose evasion is a
    penalty, not an agreement between models)."""

    def views(x: torch.Tensor) -> Views:
        return [model(x.to(device))]

    return views


@dataclass(frozen=True)
class AdaptiveTerms:
    """Differentiable views and penalty of a fitted detector, and its decision.

    Attributes
    ----------
    kind : str
        The detector's registered name (which adaptive attack it answers).
    model : torch.nn.Module
        The protected model.
    view_fn : callable
        ``x -> [logits of every view]``, the model's own first, differentiable in ``x``.
    penalty_fn : callable or None
        ``(x, labels, views) -> (N,)``, differentiable, low when ``x`` looks benign.
    flag_fn : callable
        ``x -> bool (N,)``: the detector's own decision.
    """

    kind: str
    model: nn.Module
    view_fn: Callable[[torch.Tensor], Views]
    penalty_fn: Callable[[torch.Tensor, torch.Tensor, Views], torch.Tensor] | None
    flag_fn: Callable[[torch.Tensor], torch.Tensor]

    def views(self, x: torch.Tensor) -> Views:
        return self.view_fn(x)

    def penalty(self, x: torch.Tensor, labels: torch.Tensor, views: Views
                ) -> torch.Tensor | None:
        return None if self.penalty_fn is None else self.penalty_fn(x, labels, views)

    def flags(self, x: torch.Tensor) -> torch.Tensor:
        return self.flag_fn(x)
