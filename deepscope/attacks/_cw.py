"""What the three Carlini & Wagner attacks share: the margin κ and the tanh change of variables."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepscope.attacks._checks import check_number
from deepscope.attacks._ops import margin_and_grad, tanh_image, tanh_start
from deepscope.attacks.base import Attack


class CarliniWagner(Attack):
    """Base of :class:`CarliniWagnerL2`, :class:`CarliniWagnerLinf` and :class:`CarliniWagnerL0`.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    confidence : float
        κ, the logit margin an adversarial example must reach (0 = just across the boundary).
    tanh_scale : float
        ``s`` in ``w0 = atanh((2x - 1)·s)``, in (0, 1); 0.999999 reproduces the reference
        code. The default 0.9 keeps pixels at exactly 0 or 1 movable (see
        :data:`deepscope.attacks._ops.DEFAULT_TANH_SCALE`).
    batch_size, seed, progress
        See :class:`~deepscope.attacks.base.Attack`.
    """

    def __init__(self, model: nn.Module, *, confidence: float, tanh_scale: float,
                 batch_size: int, seed: int | None, progress: bool) -> None:
        super().__init__(model, batch_size=batch_size, seed=seed, progress=progress)
        self.confidence = check_number("confidence", confidence, low=0.0)
        self.tanh_scale = check_number("tanh_scale", tanh_scale, low=0.0, high=1.0 - 1e-12,
                                       low_open=True)

    def _forward(self, r: Any, targeted: bool, iters: torch.Tensor, n: int, n_step: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimisation step's forward pass over the rows ``r`` still running.

        Returns the image, d(image)/dw, the margin and its gradient; counts the step in
        ``iters`` and moves the progress bar (the larger of the share of ``n`` rows finished and
        ``n_step`` over :meth:`estimated_cost`).
        """
        xa, dxdw = tanh_image(r.x, r.w0, r.t0, r.dw)
        m, gm = margin_and_grad(self.model, xa, r.lab, targeted)
        iters[r.idx] += 1
        self._tick(max(1.0 - len(r) / n, min(n_step / self.estimated_cost(), 0.99)),
                   step=n_step)
        return xa, dxdw, m, gm

    def _start(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
               ) -> tuple[bool, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(targeted, labels, w0, t0)``: the labels the margin is taken against (the target,
        or the true label) and the tanh start of ``x``."""
        targeted = target is not None
        w0, t0 = tanh_start(x, self.tanh_scale)
        return targeted, target if targeted else y, w0, t0
