"""Shared optimiser of the masked attacks (patch, glasses).

Only the pixels of a per-sample mask may change, and they may take any value in [0, 1]
(no norm bound): ``x' = where(mask, v, x)``. The values ``v`` follow signed-gradient ascent
on the adversarial margin, ``v ← clip(v + α_s·sign(∇ margin))``, with a step size decaying
linearly from ``step_size`` to ``step_size / 10``. A sample stops as soon as it is adversarial
with margin ≥ κ. Pixels outside the mask are copied from ``x``, so they are bit-identical.
"""

from __future__ import annotations

import torch
from torch import nn

from deepscope.attacks._checks import check_choice, check_number
from deepscope.attacks._ops import Rows, is_adversarial, margin_and_grad
from deepscope.attacks.base import Attack


class MaskedAttack(Attack):
    """Base of attacks confined to a mask; subclasses build the mask in :meth:`_prepare`.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    steps : int
        Maximum optimisation steps.
    step_size : float
        Initial step size α (pixel units); it decays linearly to α/10.
    confidence : float
        κ, the margin required to stop early.
    init : {"original", "random"}
        Start from the original pixels or from uniform noise inside the mask (seeded).
    batch_size, seed, progress
        See :class:`~deepscope.attacks.base.Attack`.
    """

    masked = True

    def __init__(
        self, model: nn.Module, *, steps: int = 300, step_size: float = 0.05,
        confidence: float = 0.0, init: str = "original", batch_size: int = 256,
        seed: int | None = 0, progress: bool = True,
    ) -> None:
        super().__init__(model, batch_size=batch_size, seed=seed, progress=progress)
        self.steps = check_number("steps", steps, low=1, integer=True)
        self.step_size = check_number("step_size", step_size, low=0.0, high=1.0, low_open=True)
        self.confidence = check_number("confidence", confidence, low=0.0)
        self.init = check_choice("init", init, ("original", "random"))

    def _attack_batch(self, x, y, target, aux, gen):
        targeted = target is not None
        labels = target if targeted else y
        mask = aux["mask"].expand_as(x)
        v = x
        if self.init == "random":
            noise = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            v = torch.where(mask, noise, x)
        out = v.clone()
        iters = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        r = Rows(idx=torch.arange(x.shape[0], device=x.device), v=v, x=x, mask=mask,
                 lab=labels)
        for step in range(self.steps):
            m, g = margin_and_grad(self.model, r.v, r.lab, targeted)
            done = is_adversarial(m, self.confidence)
            if bool(done.any()):
                out[r.idx[done]] = r.v[done]
                r.keep(~done)
                g = g[~done]
                if len(r) == 0:
                    break
            alpha = self.step_size * (1.0 - 0.9 * step / max(1, self.steps - 1))
            r.v = torch.where(r.mask, (r.v + alpha * g.sign()).clamp(0.0, 1.0), r.x)
            iters[r.idx] += 1
        out[r.idx] = r.v
        return torch.where(mask, out, x), iters
