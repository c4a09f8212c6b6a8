"""Fast Gradient Sign Method (Goodfellow et al., 2015)."""

from __future__ import annotations

import torch
from torch import nn

from deepscope.attacks._ops import ce_and_grad
from deepscope.attacks._signed import SignedGradientAttack
from deepscope.attacks.base import ATTACKS


@ATTACKS.register("fgsm")
class FGSM(SignedGradientAttack):
    """One signed-gradient step of size ``eps`` on the cross-entropy loss.

    Untargeted: ``x' = clip(x + eps·sign(∇ CE(x, y)))``; targeted (supported as well):
    ``x' = clip(x - eps·sign(∇ CE(x, t)))``. ``clip`` keeps pixels in [0, 1]; ``|x' - x| <= eps``.

    Parameters
    ----------
    model, eps, batch_size, seed, progress
        See :class:`~deepscope.attacks._signed.SignedGradientAttack`.
    """

    name = "fgsm"

    def __init__(
        self, model: nn.Module, *, eps: float = 0.1, batch_size: int = 256,
        seed: int | None = 0, progress: bool = True,
    ) -> None:
        super().__init__(model, eps=eps, batch_size=batch_size, seed=seed, progress=progress)

    def _attack_batch(self, x, y, target, aux, gen):
        labels = y if target is None else target
        _, grad = ce_and_grad(self.model, x, labels)
        sign = 1.0 if target is None else -1.0
        x_adv = (x + sign * self.eps * grad.sign()).clamp(0.0, 1.0)
        return x_adv, torch.ones(x.shape[0], dtype=torch.int64, device=x.device)
