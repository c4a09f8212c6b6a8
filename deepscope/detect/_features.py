"""What the feature-statistics detectors (Mahalanobis, LID) share.

- :func:`default_feature_layers`: every block output the model exposes (top-level containers
  with 4-D, i.e. convolutional, outputs: ``block1``, ``block2``, ... in the zoo) plus the
  penultimate layer (the leaf before the last ``nn.Linear``, as the AmI attribute probe uses).
- :func:`layer_features`: the activations of those layers read through
  :func:`deepscope.models.hooks.capture`, flattened per input, or average-pooled over space
  (N×C) for convolutional outputs.
- :func:`fgsm_examples`: one signed-gradient step on the model's own predicted label — the
  adversarial examples the detectors train their combiner on when ``fit`` gets no ``x_adv``
  (Lee et al.'s choice for tuning without samples of the attack to come).
- :class:`Logistic`: an L2-regularised logistic regression on standardised features (the
  combiner), and :func:`auroc`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepscope.detect.probe import descriptor_layer
from deepscope.errors import InputError
from deepscope.models import execution, hooks

__all__ = ["Logistic", "auroc", "default_feature_layers", "fgsm_examples", "last_layer",
           "layer_features"]


def default_feature_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Top-level containers with 4-D outputs (the blocks), then the penultimate layer."""
    top = [name for name, m in model.named_children() if list(m.children())]
    with execution.inference(model), hooks.capture(model, top or [descriptor_layer(model)]) as a:
        model(x[:1].to(execution.model_device(model)))
    blocks = [name for name in top if a[name].ndim == 4]
    penultimate = descriptor_layer(model)
    return [*blocks, penultimate] if penultimate not in blocks else blocks


def last_layer(model: nn.Module) -> str:
    """Name of the model's last leaf module (the one giving the logits in the zoo)."""
    leaves = [name for name, m in model.named_modules() if name and not list(m.children())]
    if not leaves:
        raise InputError("the model has no named layers; pass layers=[...]")
    return leaves[-1]


def _flat(a: torch.Tensor, pooled: bool) -> torch.Tensor:
    if pooled and a.ndim == 4:
        return a.mean(dim=(2, 3))
    return a.flatten(1)


def layer_features(model: nn.Module, x: torch.Tensor, layers: list[str], *, pooled: bool,
                   detach: bool = True) -> list[torch.Tensor]:
    """Per layer, the N×D features of one batch ``x`` (on the model's device).

    Runs inside the caller's :func:`~deepscope.models.execution.inference` context; with
    ``detach=False`` the features stay in the autograd graph (input pre-processing).
    """
    with hooks.capture(model, layers, detach=detach) as acts:
        model(x)
    return [_flat(acts[name], pooled) for name in layers]


def fgsm_examples(model: nn.Module, x: torch.Tensor, eps: float, *, batch_size: int
                  ) -> torch.Tensor:
    """``clip(x + eps·sign(∇ₓ CE(model(x), predicted label)), 0, 1)``, batched."""

    def step(xb: torch.Tensor) -> torch.Tensor:
        xg = xb.detach().clone().requires_grad_(True)
        logits = model(xg)
        loss = F.cross_entropy(logits, logits.argmax(1).detach(), reduction="sum")
        (g,) = torch.autograd.grad(loss, xg)
        return (xb + eps * g.sign()).clamp(0.0, 1.0).detach()

    out = execution.batched(model, x, step, batch_size=batch_size, grad=True, freeze=True)
    assert isinstance(out, torch.Tensor)
    return out


def auroc(neg: torch.Tensor, pos: torch.Tensor) -> float:
    """Area under the ROC curve of scores ``pos`` (positives) against ``neg`` (ties: ½)."""
    neg, pos = neg.double().flatten(), pos.double().flatten()
    greater = (pos[:, None] > neg[None, :]).double().sum()
    ties = (pos[:, None] == neg[None, :]).double().sum()
    return float((greater + 0.5 * ties) / (neg.numel() * pos.numel()))


@dataclass
class Logistic:
    """``w·(z − mu)/sd + b`` fitted by L-BFGS on binary cross-entropy + ``l2``·‖w‖²."""

    mu: torch.Tensor
    sd: torch.Tensor
    w: torch.Tensor
    b: torch.Tensor

    @classmethod
    def fit(cls, z: torch.Tensor, y: torch.Tensor, l2: float = 1e-2) -> Logistic:
        """Fit on features ``z`` (N×D) and labels ``y`` (1 = adversarial)."""
        z = z.detach().double().cpu()
        if not bool(torch.isfinite(z).all()):
            raise InputError("the combiner's features contain NaN or infinite values (a "
                             "layer's statistics are degenerate); pass other layers=")
        mu, sd = z.mean(0), z.std(0).clamp_min(1e-12)
        zs = (z - mu) / sd
        w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        target = y.detach().double().cpu()
        opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(zs @ w + b, target) + l2 * (w * w).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        return cls(mu, sd, w.detach(), b.detach())

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """Decision values (log-odds of "adversarial") of ``z`` (N×D), float64."""
        zd = z.detach().double().to(self.w.device)
        return ((zd - self.mu) / self.sd) @ self.w + self.b

    def log_odds(self, z: torch.Tensor) -> torch.Tensor:
        """The decision values of ``z`` (N×D) like ``__call__``, differentiable in ``z``
        (adaptive attacks minimise them), float64 on ``z``'s device."""
        dev = z.device
        return (((z.double() - self.mu.to(dev)) / self.sd.to(dev)) @ self.w.to(dev)
                + self.b.to(dev))

    def arrays(self) -> dict[str, torch.Tensor]:
        return {"lr_mu": self.mu, "lr_sd": self.sd, "lr_w": self.w, "lr_b": self.b}

    @classmethod
    def from_arrays(cls, arrays: dict[str, torch.Tensor]) -> Logistic:
        return cls(*(arrays[k].double() for k in ("lr_mu", "lr_sd", "lr_w", "lr_b")))
