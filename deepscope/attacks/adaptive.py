"""Adaptive attacks: PGD against a model *and* the detector that guards it.

One engine, :class:`AdaptiveAttack`, and four thin registrations (``adaptive-ami``,
``adaptive-squeeze``, ``adaptive-mahalanobis``, ``adaptive-lid``) that differ only in the kind
of detector they accept and their defaults::

    det = detect.AmIDetector(model, target_fpr=0.05).fit(x_benign, boxes)
    result = attacks.get("adaptive-ami", model, detector=det)(x, y, target="next")
    det.detect(result.x_adv)          # what the detector still catches

**The contract.** ``attacks`` may not import ``detect`` (sibling layers), so the contract lives
here as two protocols a detector implements structurally: :class:`AdaptiveTarget` (a fitted
detector with ``adaptive_terms()``) returning :class:`DefenseTerms`, which gives

- ``views(x)``: differentiable logits of every model that must predict the adversarial label,
  the protected model's own first (AmI: the original and the attribute-steered model,
  Carlini's construction; feature squeezing: the model on ``x`` and on every squeezed copy,
  bit-depth reduction through a straight-through estimator, BPDA; Mahalanobis / LID: the
  model alone);
- ``penalty(x, labels, views)``: a differentiable per-sample loss that is low when the
  detector finds ``x`` benign, or ``None`` (AmI: agreement of the views is the whole
  attack; squeezing: the detector's L1 score; Mahalanobis: the combiner's log-odds on the
  distances of the features to the *adversarial* class's Gaussian; LID: the combiner's
  log-odds on the LID estimates against the detector's benign reference minibatch);
- ``flags(x)``: the detector's own decision (bool, no gradient).

**The engine.** PGD in L∞ (pixels in [0, 1], so ``eps = 2.5/255`` is Carlini's 2.5 on the
0-255 scale). Each step moves by ``step_size`` against the sign of

    ĝ(mean_v CE(views_v(x), t)) + weight · ĝ(penalty(x, t) · [the model is fooled])

and projects on the eps-ball and [0, 1]; ``ĝ`` is a gradient divided by its mean absolute
value per sample, so ``weight`` is the penalty's share of the step whatever the scales of the
two losses (a log-odds and a cross-entropy differ by orders of magnitude on some models), and
the penalty only acts once the model is fooled (first cross the boundary, as plain PGD does,
then move to where the detector sees nothing). Without the gate and the rescaling, the plain
sum ``CE + penalty`` fooled the tests' small MNIST model on 0.67 of the digits through
Mahalanobis at eps 0.2 where BIM fools it on all (and on none with the default combiner's
log-odds); with them, on all. ``t`` is
the target label (targeted) or, untargeted, the model's best wrong class at the current
iterate (so every view is pushed to the *same* wrong label). A sample *evades* when the model
is fooled and the detector does not flag it; the attack returns, per sample, the latest
evading iterate (the first one with ``early_stop``, where the sample stops), else the latest
iterate that fools the model, else the last iterate. ``success`` keeps its meaning for every
attack (the model is fooled); whether the detector still catches the result is
``detector.detect(result.x_adv)``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from deepscope.attacks._checks import check_number
from deepscope.attacks._ops import Rows, linf_start
from deepscope.attacks.base import ATTACKS, Attack
from deepscope.errors import InputError

__all__ = ["ADAPTIVE_EPS", "AdaptiveAMI", "AdaptiveAttack", "AdaptiveLID",
           "AdaptiveMahalanobis", "AdaptiveSqueeze", "AdaptiveTarget", "DefenseTerms"]

#: Carlini's budget against AmI (arXiv 1902.02322): L∞ 2.5 on the 0-255 scale, in [0, 1] pixels.
ADAPTIVE_EPS = 2.5 / 255


@runtime_checkable
class DefenseTerms(Protocol):
    """What an adaptive attack needs from a fitted detector (see the module docstring)."""

    #: The detector family (``"ami"``, ``"squeeze"``, ``"mahalanobis"``, ``"lid"``).
    kind: str
    #: The protected model (the one the detector was fitted on).
    model: nn.Module

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Differentiable N×K logits of every view; ``[0]`` is the protected model's."""
        ...

    def penalty(self, x: torch.Tensor, labels: torch.Tensor, views: list[torch.Tensor]
                ) -> torch.Tensor | None:
        """Differentiable per-sample loss (N,), low when ``x`` looks benign, or ``None``;
        ``views`` are :meth:`views` of the same ``x`` (reused, not recomputed)."""
        ...

    def flags(self, x: torch.Tensor) -> torch.Tensor:
        """The detector's decision on ``x`` (bool N, True = flagged as adversarial)."""
        ...


@runtime_checkable
class AdaptiveTarget(Protocol):
    """A detector an adaptive attack can go through: ``adaptive_terms()`` after ``fit``."""

    def adaptive_terms(self) -> DefenseTerms:
        """The differentiable terms of this fitted detector."""
        ...


class AdaptiveAttack(Attack):
    """L∞ PGD on a model and a detector jointly (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits; the detector must have been fitted on it.
    detector : fitted detector
        A detector of the kind the registered attack targets (:attr:`kind`), implementing
        :class:`AdaptiveTarget` (``deepscope.detect``'s AmI, feature-squeezing, Mahalanobis
        and LID detectors do).
    eps : float
        L∞ bound in pixel units of [0, 1] inputs (default ``2.5/255``, Carlini's budget).
    steps : int
        PGD steps (Carlini: 100).
    step_size : float or None
        Size of one signed step; ``None`` means ``2.5 * eps / steps`` (as :class:`BIM`).
    weight : float
        Share of the detector's penalty in a step relative to the classification loss (both
        gradients rescaled to the same mean magnitude); 0 drops the penalty.
    random_start : bool
        Start from a uniform random point of the eps-ball (seeded).
    early_stop : bool
        Stop a sample at its first evading iterate.
    batch_size, seed, progress
        See :class:`~deepscope.attacks.base.Attack`.
    """

    bounded_linf = True
    #: The detector kind (``DefenseTerms.kind``) this attack accepts.
    kind: ClassVar[str] = ""
    #: The detector class a user should pass, named in error messages.
    detector_hint: ClassVar[str] = ""

    def __init__(
        self, model: nn.Module, *, detector: Any = None, eps: float = ADAPTIVE_EPS,
        steps: int = 100, step_size: float | None = None, weight: float = 1.0,
        random_start: bool = False, early_stop: bool = True, batch_size: int = 256,
        seed: int | None = 0, progress: bool = True,
    ) -> None:
        super().__init__(model, batch_size=batch_size, seed=seed, progress=progress)
        self.detector = detector
        self.terms = self._check_detector(model, detector)
        self.eps = check_number("eps", eps, low=0.0, high=1.0, low_open=True)
        self.steps = check_number("steps", steps, low=1, integer=True)
        if step_size is not None:
            check_number("step_size", step_size, low=0.0, low_open=True)
        self.step_size = step_size
        self.weight = float(check_number("weight", weight, low=0.0))
        self.random_start = bool(random_start)
        self.early_stop = bool(early_stop)

    def _check_detector(self, model: nn.Module, detector: Any) -> DefenseTerms:
        """The detector's terms, after checking it is a fitted detector of the right kind."""
        want = f"pass detector=<a fitted {self.detector_hint} on this model>"
        if detector is None:
            raise InputError(f"attack {self.name!r} attacks a detector: {want}")
        if not isinstance(detector, AdaptiveTarget):
            raise InputError(f"attack {self.name!r} cannot go through a "
                             f"{type(detector).__name__} (it has no adaptive_terms()); {want}")
        terms = detector.adaptive_terms()  # raises NotFittedError when not fitted
        if not isinstance(terms, DefenseTerms) or terms.kind != self.kind:
            got = getattr(terms, "kind", type(terms).__name__)
            raise InputError(f"attack {self.name!r} targets {self.kind!r} detectors, got a "
                             f"{got!r} detector ({type(detector).__name__}); {want}")
        if terms.model is not model:
            raise InputError(f"the detector passed to {self.name!r} was fitted on another model;"
                             f" {want}")
        return terms

    def get_params(self) -> dict[str, Any]:
        """The parameters, the detector given by its class name (not the object)."""
        params = super().get_params()
        params["detector"] = type(self.detector).__name__
        return params

    # ------------------------------------------------------------------ the optimisation
    def _direction(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(descent direction, the model's logits)`` at the iterate ``x`` (see the module
        docstring: classification loss over the views, plus the gated, rescaled penalty)."""
        xg = x.detach().requires_grad_(True)
        views = self.terms.views(xg)
        z0 = views[0]
        if target is None:  # the model's best wrong class, for every view alike
            labels = z0.detach().scatter(1, y[:, None], float("-inf")).argmax(1)
        else:
            labels = target
        cls = sum(F.cross_entropy(z, labels, reduction="sum") for z in views) / len(views)
        pen = self.terms.penalty(xg, labels, views) if self.weight > 0 else None
        (grad,) = torch.autograd.grad(cls, xg, retain_graph=pen is not None)
        if pen is not None:
            fooled = self._fooled(z0.detach(), y, target).to(pen.dtype)
            (g_pen,) = torch.autograd.grad((pen * fooled).sum(), xg)
            grad = _unit(grad) + self.weight * _unit(g_pen)
        return grad, z0.detach()

    def _fooled(self, z0: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
                ) -> torch.Tensor:
        pred = z0.argmax(1)
        return pred != y if target is None else pred == target

    def _attack_batch(self, x, y, target, aux, gen):
        alpha = self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps
        lo, hi, start = linf_start(x, self.eps, self.random_start, gen)
        out = start.clone()
        state = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        iters = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        tgt = target if target is not None else torch.full_like(y, -1)
        r = Rows(idx=torch.arange(x.shape[0], device=x.device), x=start, lo=lo, hi=hi, y=y,
                 t=tgt)
        for step in range(self.steps + 1):
            t = None if target is None else r.t
            grad, z0 = self._direction(r.x, r.y, t)
            fooled = self._fooled(z0, r.y, t)
            evades = fooled & ~self.terms.flags(r.x).to(fooled.device)
            self._record(out, state, r, fooled, evades)
            stop = evades if self.early_stop else torch.zeros_like(evades)
            if step == self.steps or bool(stop.all()):
                break
            if bool(stop.any()):
                r.keep(~stop)
                grad = grad[~stop]
            r.x = torch.minimum(torch.maximum(r.x - alpha * grad.sign(), r.lo), r.hi)
            iters[r.idx] += 1
            self._tick((step + 1) / self.steps, step + 1)
        return out, iters

    @staticmethod
    def _record(out: torch.Tensor, state: torch.Tensor, r: Rows, fooled: torch.Tensor,
                evades: torch.Tensor) -> None:
        """Keep, per sample, the latest iterate of the best status reached so far (evading >
        fooling the model > neither)."""
        level = evades.long() * 2 + (fooled & ~evades).long()
        take = level >= state[r.idx]
        out[r.idx[take]] = r.x[take].detach()
        state[r.idx[take]] = level[take]

    def estimated_cost(self) -> int:
        """Gradient evaluations per input, each through every view of the detector."""
        return self.steps


@ATTACKS.register("adaptive-ami")
class AdaptiveAMI(AdaptiveAttack):
    """Carlini's attack on AmI: PGD on the original and the attribute-steered model jointly,
    so both predict the adversarial label and AmI sees no inconsistency."""

    name = "adaptive-ami"
    kind = "ami"
    detector_hint = "AmIDetector"


@ATTACKS.register("adaptive-squeeze")
class AdaptiveSqueeze(AdaptiveAttack):
    """PGD through the squeezers (BPDA for the bit-depth reduction): the model on the input and
    on every squeezed copy predict the adversarial label, and their L1 gap is kept small."""

    name = "adaptive-squeeze"
    kind = "squeeze"
    detector_hint = "FeatureSqueezingDetector"


@ATTACKS.register("adaptive-mahalanobis")
class AdaptiveMahalanobis(AdaptiveAttack):
    """PGD plus the Mahalanobis detector's log-odds on the distances of the input's features to
    the adversarial class's Gaussian (pre-processing through BPDA)."""

    name = "adaptive-mahalanobis"
    kind = "mahalanobis"
    detector_hint = "MahalanobisDetector"


@ATTACKS.register("adaptive-lid")
class AdaptiveLID(AdaptiveAttack):
    """PGD plus the LID detector's log-odds on the input's LID estimates against the detector's
    benign reference minibatch (differentiable through ``torch.cdist``)."""

    name = "adaptive-lid"
    kind = "lid"
    detector_hint = "LIDDetector"


def _unit(g: torch.Tensor) -> torch.Tensor:
    """``g`` divided by its mean absolute value per sample (zero rows stay zero)."""
    scale = g.abs().flatten(1).mean(1).clamp_min(torch.finfo(g.dtype).tiny)
    return g / scale.view(-1, *([1] * (g.dim() - 1)))
