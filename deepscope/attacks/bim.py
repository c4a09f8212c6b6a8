"""Basic Iterative Method (Kurakin et al., 2017): iterated FGSM projected on the eps-ball."""

from __future__ import annotations

import torch
from torch import nn

from deepscope.attacks._checks import check_number
from deepscope.attacks._ops import Rows, ce_and_grad, is_adversarial, linf_start, margins
from deepscope.attacks._signed import SignedGradientAttack
from deepscope.attacks.base import ATTACKS


@ATTACKS.register("bim")
class BIM(SignedGradientAttack):
    """Iterated signed-gradient steps, projected on the L∞ ball of radius ``eps`` and [0, 1].

    Each step: ``x ← clip_{x0, eps}(x + step_size·sign(∇ CE(x, y)))`` (targeted: minus the
    gradient of the cross-entropy towards the target).

    Parameters
    ----------
    steps : int
        Maximum number of steps.
    step_size : float or None
        Size of one step; ``None`` means ``2.5 * eps / steps`` (enough to cross the ball
        and come back, as in Madry et al.).
    random_start : bool
        Start from a uniform random point of the eps-ball (seeded) instead of ``x``.
    early_stop : bool
        Stop iterating on a sample as soon as it is adversarial (smaller perturbations,
        fewer gradient evaluations). With False, every sample takes all ``steps``.
    model, eps, batch_size, seed, progress
        See :class:`~deepscope.attacks._signed.SignedGradientAttack`.
    """

    name = "bim"

    def __init__(
        self, model: nn.Module, *, eps: float = 0.1, steps: int = 10,
        step_size: float | None = None, random_start: bool = False, early_stop: bool = True,
        batch_size: int = 256, seed: int | None = 0, progress: bool = True,
    ) -> None:
        super().__init__(model, eps=eps, batch_size=batch_size, seed=seed, progress=progress)
        self.steps = check_number("steps", steps, low=1, integer=True)
        if step_size is not None:
            check_number("step_size", step_size, low=0.0, low_open=True)
        self.step_size = step_size
        self.random_start = bool(random_start)
        self.early_stop = bool(early_stop)

    def _attack_batch(self, x, y, target, aux, gen):
        targeted = target is not None
        labels = target if targeted else y
        alpha = self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps
        sign = -1.0 if targeted else 1.0
        lo, hi, start = linf_start(x, self.eps, self.random_start, gen)
        out = start.clone()
        iters = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        r = Rows(idx=torch.arange(x.shape[0], device=x.device), x=start, lo=lo, hi=hi,
                 lab=labels)
        for _ in range(self.steps):
            logits, grad = ce_and_grad(self.model, r.x, r.lab)
            if self.early_stop:
                done = is_adversarial(margins(logits, r.lab, targeted), 0.0)
                if bool(done.any()):
                    out[r.idx[done]] = r.x[done]
                    r.keep(~done)
                    grad = grad[~done]
                    if len(r) == 0:
                        break
            r.x = torch.minimum(torch.maximum(r.x + sign * alpha * grad.sign(), r.lo), r.hi)
            iters[r.idx] += 1
        out[r.idx] = r.x
        return out, iters
