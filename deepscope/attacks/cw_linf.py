"""Carlini & Wagner L∞ attack: the iterative τ-shrinking variant of Carlini & Wagner (2017)."""

from __future__ import annotations

import math

import torch
from torch import nn

from deepscope.attacks._checks import check_number
from deepscope.attacks._cw import CarliniWagner
from deepscope.attacks._ops import (
    DEFAULT_TANH_SCALE,
    Rows,
    adam_reset,
    adam_step,
    expand,
    is_adversarial,
)
from deepscope.attacks.base import ATTACKS


@ATTACKS.register("cw-linf")
class CarliniWagnerLinf(CarliniWagner):
    """Minimise ``c·max(κ - margin(x'), 0) + Σ_i max(|x'_i - x_i| - τ, 0)``, shrinking τ.

    The L∞ norm is not optimised directly: the penalty only charges the pixels that move by
    more than τ. Per sample, starting with τ = 1 and ``c = initial_const``:

    1. run Adam in tanh space (warm-started from the last solution) until the point *works*:
       it is adversarial (margin ≥ κ and > 0) and the penalty is below ``1e-4·c``;
    2. on success, keep the point, set ``τ ← min(τ, ||x' - x||_∞)·decrease_factor`` and go
       on (Adam's moments are reset, ``c`` is kept); stop once τ < 1/256;
    3. when ``max_iter`` steps pass without success, ``c ← c·const_factor``; once
       ``c ≥ largest_const`` the sample stops with its last working point (or ``x``).

    All samples of a batch advance together, each in its own phase of this loop (one
    forward/backward pass per step for the samples still running); finished samples leave
    the batch.

    Parameters
    ----------
    lr : float
        Adam step size (the reference code uses 5e-3).
    max_iter : int
        Adam steps per value of ``c`` before ``c`` is increased.
    initial_const, largest_const, const_factor : float
        Start, bound and growth factor of ``c``.
    decrease_factor : float
        Factor applied to τ after each success, in (0, 1).
    model, confidence, tanh_scale, batch_size, seed, progress
        See :class:`~deepscope.attacks._cw.CarliniWagner`.
    """

    name = "cw-linf"

    def __init__(
        self, model: nn.Module, *, confidence: float = 0.0, lr: float = 5e-3,
        max_iter: int = 100, initial_const: float = 1e-5, largest_const: float = 20.0,
        const_factor: float = 2.0, decrease_factor: float = 0.9,
        tanh_scale: float = DEFAULT_TANH_SCALE, batch_size: int = 256,
        seed: int | None = 0, progress: bool = True,
    ) -> None:
        super().__init__(model, confidence=confidence, tanh_scale=tanh_scale,
                         batch_size=batch_size, seed=seed, progress=progress)
        self.lr = check_number("lr", lr, low=0.0, low_open=True)
        self.max_iter = check_number("max_iter", max_iter, low=1, integer=True)
        self.initial_const = check_number("initial_const", initial_const, low=0.0, low_open=True)
        self.largest_const = check_number("largest_const", largest_const, low=initial_const,
                                          low_open=True)
        self.const_factor = check_number("const_factor", const_factor, low=1.0, low_open=True)
        self.decrease_factor = check_number("decrease_factor", decrease_factor, low=0.0,
                                            high=1.0 - 1e-9, low_open=True)

    def estimated_cost(self) -> int:
        """Adam steps per input, roughly: ``max_iter`` per value of ``c`` (each ×const_factor
        up to ``largest_const``) — an upper estimate, successes end sooner."""
        rounds = math.ceil(math.log(self.largest_const / self.initial_const)
                           / math.log(self.const_factor))
        return int(self.max_iter * max(1, rounds))

    def _attack_batch(self, x, y, target, aux, gen):
        targeted, labels, w0, t0 = self._start(x, y, target)
        n = x.shape[0]
        kappa = self.confidence
        best = x.clone()
        iters = torch.zeros(n, dtype=torch.int64, device=x.device)
        r = Rows(idx=torch.arange(n, device=x.device), x=x, w0=w0, t0=t0, lab=labels,
                 dw=torch.zeros_like(x), m=torch.zeros_like(x), v=torch.zeros_like(x),
                 t=x.new_zeros(n), tau=x.new_ones(n), c=x.new_full((n,), self.initial_const),
                 inner=torch.zeros(n, dtype=torch.int64, device=x.device))
        n_step = 0
        while len(r) > 0:
            n_step += 1
            xa, dxdw, m, gm = self._forward(r, targeted, iters, n, n_step)
            delta = xa - r.x
            tau = expand(r.tau, delta)
            over = delta.abs() > tau
            penalty = ((delta.abs() - tau) * over).flatten(1).sum(1)
            hinge = (kappa - m).clamp_min(0.0)
            works = is_adversarial(m, kappa) & (penalty <= 1e-4 * r.c)

            # Everyone but the successes takes an Adam step.
            grad_x = over * delta.sign() - expand(r.c * (hinge > 0), gm) * gm
            go = ~works
            r.dw = r.dw - adam_step(r, grad_x * dxdw, self.lr) * expand(go, delta)
            r.inner = r.inner + go
            bump = go & (r.inner >= self.max_iter)
            r.c = torch.where(bump, r.c * self.const_factor, r.c)
            r.inner = torch.where(bump, 0, r.inner)

            # Successes: keep the point, shrink tau, restart Adam from here.
            if bool(works.any()):
                best[r.idx[works]] = xa[works]
                linf = delta.abs().flatten(1).amax(1)
                r.tau = torch.where(works, torch.minimum(r.tau, linf) * self.decrease_factor,
                                    r.tau)
                r.inner = torch.where(works, 0, r.inner)
                adam_reset(r, works)

            done = (r.tau < 1.0 / 256) | (r.c >= self.largest_const)
            if bool(done.any()):
                r.keep(~done)
        return best, iters
