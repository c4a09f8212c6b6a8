"""Batched building blocks shared by the attacks: margins, gradients, Adam, tanh space.

Every function works on a batch at once (no loop over samples) and keeps the input's device
and dtype. Gradients are taken with :func:`torch.autograd.grad` with respect to the input
only, so nothing accumulates in the model parameters' ``.grad``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Scale applied before ``atanh`` so that pixels at exactly 0 or 1 map to finite values.
#: 0.999999 is the constant of Carlini & Wagner's reference code (and of ART and foolbox).
TANH_SCALE = 0.999999
#: deepscope's default ``tanh_scale`` of the C&W attacks. Adam moves ``w`` by about ``lr`` per
#: step whatever the gradient's size, so with the reference value 0.999999 a pixel at exactly
#: 0 or 1 (``|w0| ≈ 7.3``) needs hundreds of steps before it visibly moves, and C&W can in
#: practice only use the pixels strictly inside (0, 1) (most MNIST pixels are exactly 0).
#: With 0.9 every pixel moves from the first step; a pixel at a bound can still reach
#: ``(1 + s) / 2`` of the range (0.95). The clamp to [0, 1] keeps the box constraint exact.
DEFAULT_TANH_SCALE = 0.9


def margins(logits: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Per-sample adversarial margin; positive exactly when the sample is adversarial.

    Targeted: ``Z_t - max_{i != t} Z_i``. Untargeted: ``max_{i != y} Z_i - Z_y``.
    """
    z_lab = logits.gather(1, labels[:, None]).squeeze(1)
    hot = F.one_hot(labels, logits.shape[1]).bool()
    z_other = logits.masked_fill(hot, float("-inf")).amax(dim=1)
    return z_lab - z_other if targeted else z_other - z_lab


def is_adversarial(m: torch.Tensor, confidence: float) -> torch.Tensor:
    """True where the margin ``m`` is strictly positive and at least ``confidence``."""
    return (m > 0) & (m >= confidence)


def margin_and_grad(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, targeted: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Margins of ``x`` and their gradient with respect to ``x`` (one forward, one backward)."""
    x = x.detach().requires_grad_(True)
    m = margins(model(x), labels, targeted)
    (grad,) = torch.autograd.grad(m.sum(), x)
    return m.detach(), grad


def ce_and_grad(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of ``x`` and the gradient of the summed cross-entropy towards ``labels``."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    loss = F.cross_entropy(logits, labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return logits.detach(), grad


def expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View a per-sample vector as N×1×1×... so it broadcasts against ``like``."""
    return v.view(-1, *([1] * (like.dim() - 1)))


class Rows:
    """Working tensors of the samples still running, one row per sample.

    Iterative attacks keep their per-sample state compact: when samples finish, :meth:`keep`
    drops their rows from every tensor at once, so later steps only compute on the rest.
    ``idx`` (always present) maps rows to positions in the batch.
    """

    def __init__(self, **tensors: torch.Tensor) -> None:
        self.__dict__.update(tensors)

    def keep(self, mask: torch.Tensor) -> None:
        """Keep only the rows where ``mask`` is True."""
        for k, v in vars(self).items():
            setattr(self, k, v[mask])

    def __len__(self) -> int:
        return int(self.idx.shape[0])


def linf_start(x: torch.Tensor, eps: float, random_start: bool,
               gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The L∞ box ``[lo, hi]`` of radius ``eps`` around ``x`` clipped to [0, 1], and the
    iteration's start: ``x`` itself, or a uniform draw in the box when ``random_start``."""
    lo, hi = (x - eps).clamp_min(0.0), (x + eps).clamp_max(1.0)
    if not random_start:
        return lo, hi, x
    noise = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return lo, hi, torch.minimum(torch.maximum(x + (2 * noise - 1) * eps, lo), hi)


def tanh_start(x: torch.Tensor, scale: float = TANH_SCALE) -> tuple[torch.Tensor, torch.Tensor]:
    """The C&W variable at ``x``: ``w0 = atanh((2x - 1)·scale)`` and ``tanh(w0)``."""
    w0 = torch.atanh((2 * x - 1) * scale)
    return w0, torch.tanh(w0)


def tanh_image(
    x: torch.Tensor, w0: torch.Tensor, t0: torch.Tensor, dw: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The C&W change of variables, exact at the origin, and its derivative.

    ``x' = clamp(x + (tanh(w0 + dw) - tanh(w0)) / 2, 0, 1)``: the box constraint holds by
    construction and ``dw = 0`` gives back ``x`` bit for bit, so unchanged pixels are never
    counted as perturbed. Returns ``x'`` and ``d x' / d dw`` (zero where the clamp is active).
    """
    t = torch.tanh(w0 + dw)
    raw = x + (t - t0) / 2
    inside = (raw >= 0.0) & (raw <= 1.0)
    return raw.clamp(0.0, 1.0), (1 - t * t) / 2 * inside


def adam_step(
    rows: Rows, grad: torch.Tensor, lr: float, b1: float = 0.9, b2: float = 0.999,
    eps: float = 1e-8,
) -> torch.Tensor:
    """One Adam step with per-row moments ``rows.m``, ``rows.v`` and step counts ``rows.t``.

    Updates the moments in place on ``rows`` and returns the update to subtract.
    """
    rows.m = b1 * rows.m + (1 - b1) * grad
    rows.v = b2 * rows.v + (1 - b2) * grad * grad
    rows.t = rows.t + 1
    m_hat = rows.m / expand(1 - b1**rows.t, grad)
    v_hat = rows.v / expand(1 - b2**rows.t, grad)
    return lr * m_hat / (v_hat.sqrt() + eps)


def adam_reset(rows: Rows, mask: torch.Tensor) -> None:
    """Forget the Adam moments of the rows where ``mask`` is True."""
    rows.m = torch.where(expand(mask, rows.m), 0.0, rows.m)
    rows.v = torch.where(expand(mask, rows.v), 0.0, rows.v)
    rows.t = torch.where(mask, 0.0, rows.t)


def changed_pixels(delta: torch.Tensor, tol: float) -> torch.Tensor:
    """Boolean N×1×H×W map of pixels where any channel of ``delta`` exceeds ``tol``."""
    return delta.abs().amax(dim=1, keepdim=True) > tol


def lowest_k_mask(score: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per row of ``score`` (N×P), a boolean mask of its ``k[i]`` smallest entries."""
    order = score.argsort(dim=1)
    ranks = torch.arange(score.shape[1], device=score.device).expand_as(score)
    pick_sorted = ranks < k[:, None]
    return torch.zeros_like(pick_sorted).scatter(1, order, pick_sorted)
