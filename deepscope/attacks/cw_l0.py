"""Carlini & Wagner L0 attack: shrink the set of changeable pixels using the L2 attack."""

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
    changed_pixels,
    expand,
    is_adversarial,
    lowest_k_mask,
)
from deepscope.attacks.base import ATTACKS, L0_TOL


@ATTACKS.register("cw-l0")
class CarliniWagnerL0(CarliniWagner):
    """Iteratively freeze the least useful pixels; the L2 attack works on the others.

    Per sample, the *allowed* pixels start as the whole image. Each round:

    1. the L2 objective ``||x' - x||² + c·max(κ - margin, 0)`` is minimised with Adam in tanh
       space over the allowed pixels only (the others stay exactly at ``x``), warm-started
       from the previous round's solution, until the point is adversarial (margin ≥ κ, > 0).
       A phase of ``steps`` Adam steps (cut short when the loss stalls, as in the L2 attack)
       that finds nothing multiplies ``c`` by ``const_factor``; after ``max_const_steps``
       such increases the round has failed;
    2. on success the point is kept, and every allowed pixel gets a usefulness
       ``Σ_channels |∂margin/∂x'| · |x' - x|`` (gradient × perturbation, as in the paper).
       The allowed pixels that the solution left unchanged are frozen, plus the
       ``ceil(freeze_fraction · n_changed)`` least useful changed ones (at least 1);
    3. when a round fails, the attack backs off: it returns to the last solution and freezes
       half as many pixels as last time; when even one pixel cannot be frozen, the sample
       stops with its last solution (its L0 is then locally minimal in this sense).

    The reference implementation freezes at most ``0.3·sqrt(n_changed)`` pixels per round and
    stops at the first failure; the geometric schedule with back-off reaches comparable L0
    in far fewer rounds. Samples run in parallel, each in its own phase.

    Parameters
    ----------
    initial_const : float
        First value of ``c`` (``c`` only grows and carries over from round to round).
    const_factor : float
        Growth factor of ``c`` after a phase without success.
    max_const_steps : int
        Increases of ``c`` allowed within one round before the round fails.
    steps : int
        Adam steps per phase.
    lr : float
        Adam step size.
    freeze_fraction : float
        Share of the changed pixels frozen per round, in (0, 1).
    model, confidence, tanh_scale, batch_size, seed, progress
        See :class:`~deepscope.attacks._cw.CarliniWagner`.
    """

    name = "cw-l0"

    def __init__(
        self, model: nn.Module, *, confidence: float = 0.0, initial_const: float = 1e-2,
        const_factor: float = 10.0, max_const_steps: int = 3, steps: int = 100,
        lr: float = 1e-2, freeze_fraction: float = 0.2,
        tanh_scale: float = DEFAULT_TANH_SCALE, batch_size: int = 256,
        seed: int | None = 0, progress: bool = True,
    ) -> None:
        super().__init__(model, confidence=confidence, tanh_scale=tanh_scale,
                         batch_size=batch_size, seed=seed, progress=progress)
        self.initial_const = check_number("initial_const", initial_const, low=0.0, low_open=True)
        self.const_factor = check_number("const_factor", const_factor, low=1.0, low_open=True)
        self.max_const_steps = check_number("max_const_steps", max_const_steps, low=0,
                                            integer=True)
        self.steps = check_number("steps", steps, low=1, integer=True)
        self.lr = check_number("lr", lr, low=0.0, low_open=True)
        self.freeze_fraction = check_number("freeze_fraction", freeze_fraction, low=0.0,
                                            high=1.0 - 1e-9, low_open=True)

    def estimated_cost(self) -> int:
        """Adam steps per input, roughly: ``steps × (max_const_steps + 1)`` per freezing
        round, times 10 rounds (the number of rounds depends on the image)."""
        return int(self.steps * (self.max_const_steps + 1) * 10)

    def _attack_batch(self, x, y, target, aux, gen):
        targeted, labels, w0, t0 = self._start(x, y, target)
        n, dev = x.shape[0], x.device
        kappa = self.confidence
        best = x.clone()
        iters = torch.zeros(n, dtype=torch.int64, device=dev)
        check_every = max(1, math.ceil(self.steps / 10))
        const = x.new_full((n,), self.initial_const)
        allowed = torch.ones_like(x[:, :1], dtype=torch.bool)  # N×1×H×W

        def ints(value: int = 0) -> torch.Tensor:
            return torch.full((n,), value, dtype=torch.int64, device=dev)

        r = Rows(
            idx=torch.arange(n, device=dev), x=x, w0=w0, t0=t0, lab=labels,
            dw=torch.zeros_like(x), m=torch.zeros_like(x), v=torch.zeros_like(x),
            t=x.new_zeros(n), c=const, inner=ints(), tries=ints(),
            prev=torch.full_like(const, math.inf), allowed=allowed,
            kcap=ints(torch.iinfo(torch.int64).max),
            # The last success, to back off to.
            have=torch.zeros(n, dtype=torch.bool, device=dev), allowed_prev=allowed.clone(),
            useful_prev=x.new_zeros((n, x.shape[2] * x.shape[3])), unchanged_prev=ints(),
            klast=ints(), dw_best=torch.zeros_like(x), c_best=const.clone(),
        )
        n_step = 0
        while len(r) > 0:
            n_step += 1
            xa, dxdw, m, gm = self._forward(r, targeted, iters, n, n_step)
            delta = xa - r.x
            adv = is_adversarial(m, kappa)
            go = ~adv

            # Not adversarial yet: one Adam step on the allowed pixels.
            hinge = (kappa - m).clamp_min(0.0)
            grad_x = 2 * delta - expand(r.c * (hinge > 0), gm) * gm
            step = adam_step(r, grad_x * dxdw * r.allowed, self.lr)
            r.dw = r.dw - step * expand(go, step)
            r.inner = r.inner + go
            loss = delta.flatten(1).pow(2).sum(1) + r.c * hinge
            check = go & (r.inner % check_every == 0)
            stalled = check & (loss > 0.9999 * r.prev)
            r.prev = torch.where(check, loss, r.prev)
            # End of a phase without success: raise c; too many raises: the round failed.
            end = go & (stalled | (r.inner >= self.steps))
            r.c = torch.where(end, r.c * self.const_factor, r.c)
            r.tries = r.tries + end
            r.inner = torch.where(end, 0, r.inner)
            r.prev = torch.where(end, math.inf, r.prev)
            failed = end & (r.tries > self.max_const_steps)
            retry = failed & r.have & (r.klast > 1)
            finished = failed & ~retry

            if bool(adv.any()):
                pos = adv.nonzero().squeeze(1)
                d, al = delta[pos], r.allowed[pos]
                best[r.idx[pos]] = xa[pos]
                useful = (d.abs() * gm[pos].abs()).sum(1).flatten(1)
                n_allowed = al.flatten(1).sum(1)
                n_changed = (changed_pixels(d, L0_TOL) & al).flatten(1).sum(1)
                k = torch.ceil(self.freeze_fraction * n_changed.to(x.dtype)).long()
                k = torch.minimum(r.kcap[pos], k.clamp_min(1))
                r.have[pos] = True
                r.allowed_prev[pos] = al
                r.useful_prev[pos] = useful.masked_fill(~al.flatten(1), math.inf)
                r.unchanged_prev[pos] = n_allowed - n_changed
                r.klast[pos] = k
                r.dw_best[pos] = r.dw[pos]
                r.c_best[pos] = r.c[pos]
                finished[pos] = k >= n_changed  # nothing would be left to change
            if bool(retry.any()):
                r.kcap = torch.where(retry, r.klast // 2, r.kcap)
                r.klast = torch.where(retry, r.kcap, r.klast)
                r.c = torch.where(retry, r.c_best, r.c)
            # Freeze (after a success) or re-freeze fewer pixels (after a failure).
            refreeze = (adv | retry) & ~finished
            if bool(refreeze.any()):
                pos = refreeze.nonzero().squeeze(1)
                k = r.unchanged_prev[pos] + r.klast[pos]
                pick = lowest_k_mask(r.useful_prev[pos], k).view_as(r.allowed_prev[pos])
                r.allowed[pos] = r.allowed_prev[pos] & ~pick
                r.dw[pos] = r.dw_best[pos] * r.allowed[pos]
                adam_reset(r, refreeze)
                r.inner = torch.where(refreeze, 0, r.inner)
                r.tries = torch.where(refreeze, 0, r.tries)
                r.prev = torch.where(refreeze, math.inf, r.prev)
            if bool(finished.any()):
                r.keep(~finished)
        return best, iters
