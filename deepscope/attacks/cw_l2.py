"""Carlini & Wagner L2 attack (Carlini & Wagner, 2017, "Towards evaluating the robustness")."""

from __future__ import annotations

import math

import torch
from torch import nn

from deepscope.attacks._checks import check_number
from deepscope.attacks._cw import CarliniWagner
from deepscope.attacks._ops import (
    DEFAULT_TANH_SCALE,
    Rows,
    adam_step,
    expand,
    is_adversarial,
    margin_and_grad,
    tanh_image,
)
from deepscope.attacks.base import ATTACKS


@ATTACKS.register("cw-l2")
class CarliniWagnerL2(CarliniWagner):
    """Minimise ``||x' - x||² + c·max(κ - margin(x'), 0)`` in tanh space with Adam.

    ``margin`` is ``Z_t - max_{i≠t} Z_i`` towards a target, ``max_{i≠y} Z_i - Z_y`` untargeted
    (Z = logits). A binary search over ``c`` per sample (×10 while no adversarial was found,
    bisection afterwards) runs ``binary_search_steps`` optimisations of up to ``steps`` Adam
    steps each, all starting from ``x``. The smallest-L2 adversarial seen (margin ≥ κ and > 0)
    is returned; failures return ``x``.

    Early abort (per sample): every ``max(10, ceil(steps / 10))`` steps the sample's loss must
    have dropped below 0.9999 of its value at the previous check, otherwise that sample stops
    for this binary-search step. Aborted samples leave the batch, so later steps cost less.
    (The reference code checks every ``steps / 10`` steps, meant for 10,000 steps; with few
    steps that interval is so short that Adam's normal oscillation aborts samples early.)

    Parameters
    ----------
    initial_const : float
        First value of ``c``.
    binary_search_steps : int
        Number of optimisations (values of ``c``) per sample. With 10 or more, the last one
        uses the best ``c`` found so far, as in the reference code.
    steps : int
        Maximum Adam steps per optimisation.
    lr : float
        Adam step size.
    abort_early : bool
        Enable the per-sample early abort above.
    model, confidence, tanh_scale, batch_size, seed, progress
        See :class:`~deepscope.attacks._cw.CarliniWagner`.
    """

    name = "cw-l2"

    def __init__(
        self, model: nn.Module, *, confidence: float = 0.0, initial_const: float = 1e-2,
        binary_search_steps: int = 9, steps: int = 1000, lr: float = 1e-2,
        abort_early: bool = True, tanh_scale: float = DEFAULT_TANH_SCALE,
        batch_size: int = 256, seed: int | None = 0, progress: bool = True,
    ) -> None:
        super().__init__(model, confidence=confidence, tanh_scale=tanh_scale,
                         batch_size=batch_size, seed=seed, progress=progress)
        self.initial_const = check_number("initial_const", initial_const, low=0.0, low_open=True)
        self.binary_search_steps = check_number(
            "binary_search_steps", binary_search_steps, low=1, integer=True)
        self.steps = check_number("steps", steps, low=1, integer=True)
        self.lr = check_number("lr", lr, low=0.0, low_open=True)
        self.abort_early = bool(abort_early)

    def estimated_cost(self) -> int:
        """Adam steps per input at most: ``binary_search_steps × steps``."""
        return int(self.binary_search_steps * self.steps)

    def _attack_batch(self, x, y, target, aux, gen):
        targeted, labels, w0, t0 = self._start(x, y, target)
        n = x.shape[0]
        kappa = self.confidence
        const = x.new_full((n,), self.initial_const)
        lower = torch.zeros_like(const)
        upper = torch.full_like(const, math.inf)
        best = x.clone()
        best_l2 = torch.full_like(const, math.inf)
        iters = torch.zeros(n, dtype=torch.int64, device=x.device)
        check_every = max(10, math.ceil(self.steps / 10))
        total = self.binary_search_steps * self.steps

        for bs in range(self.binary_search_steps):
            if self.binary_search_steps >= 10 and bs == self.binary_search_steps - 1:
                const = torch.where(torch.isinf(upper), const, upper.clamp_max(1e10))
            found = torch.zeros(n, dtype=torch.bool, device=x.device)
            r = Rows(idx=torch.arange(n, device=x.device), x=x, w0=w0, t0=t0, lab=labels,
                     c=const, dw=torch.zeros_like(x), m=torch.zeros_like(x),
                     v=torch.zeros_like(x), t=torch.zeros_like(const),
                     prev=torch.full_like(const, math.inf))
            for step in range(self.steps):
                xa, dxdw = tanh_image(r.x, r.w0, r.t0, r.dw)
                m, gm = margin_and_grad(self.model, xa, r.lab, targeted)
                delta = xa - r.x
                l2sq = delta.flatten(1).pow(2).sum(1)
                hinge = (kappa - m).clamp_min(0.0)
                # Record the current point (before the step), as the reference code does.
                adv = is_adversarial(m, kappa)
                if bool(adv.any()):
                    found[r.idx[adv]] = True
                    better = adv & (l2sq < best_l2[r.idx])
                    rows = r.idx[better]
                    best_l2[rows] = l2sq[better]
                    best[rows] = xa[better]
                grad_x = 2 * delta - expand(r.c * (hinge > 0), gm) * gm
                r.dw = r.dw - adam_step(r, grad_x * dxdw, self.lr)
                iters[r.idx] += 1
                self._tick((bs * self.steps + step + 1) / total, step=bs * self.steps + step + 1)
                if self.abort_early and step % check_every == 0:
                    loss = l2sq + r.c * hinge
                    going = loss <= 0.9999 * r.prev
                    r.prev = loss
                    if not bool(going.all()):
                        r.keep(going)
                        if len(r) == 0:
                            break
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            const = torch.where(torch.isinf(upper), const * 10, (lower + upper) / 2)
        return best, iters
