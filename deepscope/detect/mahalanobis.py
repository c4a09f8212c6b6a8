"""The Mahalanobis detector (Lee et al., NeurIPS'18, "A Simple Unified Framework for Detecting
Out-of-Distribution Samples and Adversarial Attacks").

Per feature layer ℓ (default: every block output plus the penultimate layer; convolutional
features average-pooled over space to N×C), class-conditional Gaussians with one **tied**
covariance are fitted on benign inputs: ``μ_c`` the class means and
``Σ = 1/N Σ_c Σ_{i∈c} (f_i − μ_c)(f_i − μ_c)ᵀ`` (numpy's ``cov(bias=True)`` of the
class-centred features), used through its pseudo-inverse ``P = Σ⁺``. The layer's confidence is

    M_ℓ(x) = max_c −(f_ℓ(x) − μ_c)ᵀ P (f_ℓ(x) − μ_c)

computed after **input pre-processing**: ``x̂ = clip(x − ε·sign(∇ₓ (f−μ_ĉ)ᵀP(f−μ_ĉ)), 0, 1)``
with ``ĉ`` the closest class, one gradient per layer (as the paper's code). ε is chosen from
:data:`EPSILONS` (the grid of the paper's code, in pixel units of [0, 1] inputs) by the
combiner's AUROC on a seeded validation half. A **logistic regression** on the per-layer
confidences (label 1 = adversarial) combines them; the score is its log-odds of "adversarial"
(higher = more suspicious), thresholded at ``target_fpr`` on held-out benign inputs.

**Without** ``x_adv``, the combiner is trained on benign vs. one-step FGSM copies of the benign
fitting inputs (ε = ``fgsm_eps``, computed on the model's own predicted labels): the paper's
own way of tuning without samples of the attacks to come (it validates on FGSM samples it
generates itself). The alternatives were weaker: noise-perturbed inputs teach the combiner
"noise", not "adversarial", and an untrained sum of standardised scores lets the layers that
separate nothing dilute the ones that do.

Labels: the Gaussians use ``labels=`` when given, else the model's predictions (the benign
inputs a detector is fitted on are those the model classifies correctly, see
:func:`deepscope.audit.detector_fit.fit_detector`). The Gaussians and the combiner are fitted on
the same benign inputs; the threshold on held-out ones (``x_calib`` or ``calib_fraction``).
Cost per input: 1 forward pass with ε = 0; with ε > 0, one forward, one backward per layer and
one forward per layer.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from deepscope._validate import check_int, check_number, check_probability
from deepscope.detect._adaptive import AdaptiveTerms, model_view, straight_through
from deepscope.detect._features import (
    Logistic,
    auroc,
    default_feature_layers,
    fgsm_examples,
    layer_features,
)
from deepscope.detect.base import DETECTORS, Detector, check_images
from deepscope.errors import InputError
from deepscope.models import execution, hooks

__all__ = ["EPSILONS", "MahalanobisDetector", "class_gaussians", "mahalanobis_distances"]

#: The pre-processing magnitudes of the paper's code (``m_list``), for inputs in [0, 1].
EPSILONS = (0.0, 0.0005, 0.001, 0.0014, 0.002, 0.005, 0.01)


def class_gaussians(f: torch.Tensor, labels: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(classes, means K×D, tied precision D×D)`` of features ``f`` (N×D), in float64."""
    f = f.detach().double().cpu()
    labels = labels.detach().cpu()
    classes = torch.unique(labels)
    means = torch.stack([f[labels == c].mean(0) for c in classes])
    centred = f - means[torch.searchsorted(classes, labels)]
    cov = centred.T @ centred / f.shape[0]
    return classes, means, torch.linalg.pinv(cov, hermitian=True)


def mahalanobis_distances(f: torch.Tensor, means: torch.Tensor, precision: torch.Tensor
                          ) -> torch.Tensor:
    """N×K squared Mahalanobis distances ``(f − μ_c)ᵀ P (f − μ_c)`` (float64, differentiable)."""
    diff = f.double()[:, None, :] - means.to(f.device)[None]
    return torch.einsum("nkd,de,nke->nk", diff, precision.to(f.device), diff)


@DETECTORS.register("mahalanobis")
class MahalanobisDetector(Detector):
    """Class-conditional Gaussians with a tied covariance on several layers (Lee et al.).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (returns logits).
    target_fpr : float
        False-positive rate on benign calibration inputs.
    layers : list of str, optional
        Feature layers; default every block output plus the penultimate layer.
    epsilons : sequence of float
        Pre-processing magnitudes tried (default :data:`EPSILONS`); ``(0.0,)`` turns it off.
    fgsm_eps : float
        Step of the FGSM copies the combiner is trained on when ``fit`` gets no ``x_adv``.
    l2 : float
        L2 penalty of the logistic combiner (on standardised scores).
    calib_fraction : float
        Share of ``x_benign`` held out for calibration when ``fit`` gets no ``x_calib``.
    seed : int
        Seed of the calibration split and of the ε-selection split.
    batch_size, progress
        See :class:`~deepscope.detect.base.Detector`.
    """

    name: ClassVar[str] = "mahalanobis"

    def __init__(self, model: nn.Module, *, target_fpr: float = 0.05,
                 layers: list[str] | None = None, epsilons: tuple[float, ...] = EPSILONS,
                 fgsm_eps: float = 0.05, l2: float = 1e-2, calib_fraction: float = 0.3,
                 seed: int = 0, batch_size: int = 64, progress: bool = True) -> None:
        super().__init__(model, target_fpr=target_fpr, batch_size=batch_size, progress=progress)
        if layers is not None:
            if not layers:
                raise InputError("layers must name at least one layer (or be None)")
            for layer in layers:
                hooks.resolve(model, layer)
        self.layers = list(layers) if layers is not None else None
        if not epsilons:
            raise InputError("epsilons must be a non-empty sequence of numbers >= 0")
        self.epsilons = tuple(float(check_number("every epsilon", e, low=0.0))
                              for e in epsilons)
        self.fgsm_eps = float(check_number("fgsm_eps", fgsm_eps, low=0.0))
        self.l2 = float(check_number("l2", l2, low=0.0))
        self.calib_fraction = check_probability("calib_fraction", calib_fraction)
        self.seed = check_int("seed", seed, low=0)

    # ------------------------------------------------------------------ fitting
    def fit(self, x_benign: torch.Tensor, *, x_adv: torch.Tensor | None = None,
            labels: torch.Tensor | None = None, x_calib: torch.Tensor | None = None
            ) -> MahalanobisDetector:
        """Fit the Gaussians and the combiner, choose ε, set the threshold.

        Parameters
        ----------
        x_benign : torch.Tensor
            N×C×H×W benign inputs in [0, 1].
        x_adv : torch.Tensor, optional
            Adversarial inputs to train the combiner on (default: FGSM copies of the benign
            fitting inputs, see the module docstring).
        labels : torch.Tensor, optional
            Class of every benign input (default: the model's predictions).
        x_calib : torch.Tensor, optional
            Benign calibration inputs (default: ``calib_fraction`` of ``x_benign``).

        Returns
        -------
        MahalanobisDetector
            ``self``, fitted.
        """
        x_fit, x_calib, labels = self._split_benign(x_benign, x_calib, x_adv=x_adv,
                                                    labels=labels)
        self.layers_ = self.layers or default_feature_layers(self.model, x_fit)
        if labels is None:
            labels = execution.predict_logits(self.model, x_fit,
                                              batch_size=self.batch_size).argmax(1)
        feats = self._features(x_fit)
        self.gaussians_ = [class_gaussians(f, labels.cpu()) for f in feats]
        x_pos = x_adv if x_adv is not None else fgsm_examples(
            self.model, x_fit, self.fgsm_eps, batch_size=self.batch_size)
        self.epsilon_, self.selection_ = self._choose_epsilon(x_fit, x_pos)
        neg = self.confidences(x_fit, self.epsilon_)
        pos = self.confidences(x_pos, self.epsilon_)
        self.combiner_ = Logistic.fit(torch.cat([neg, pos]),
                                      torch.cat([torch.zeros(len(neg)), torch.ones(len(pos))]),
                                      self.l2)
        self._calibrate(x_calib)
        return self

    def _choose_epsilon(self, x_neg: torch.Tensor, x_pos: torch.Tensor
                        ) -> tuple[float, list[dict[str, float]]]:
        """The ε whose combiner, trained on one seeded half, has the best AUROC on the other
        (ties: the smaller ε); with one ε, that one."""
        if len(self.epsilons) == 1:
            return self.epsilons[0], []
        g = torch.Generator().manual_seed(self.seed)
        pn, pp = torch.randperm(len(x_neg), generator=g), torch.randperm(len(x_pos), generator=g)
        tn, vn = pn[: len(pn) // 2], pn[len(pn) // 2:]
        tp, vp = pp[: len(pp) // 2], pp[len(pp) // 2:]
        if min(len(tn), len(vn), len(tp), len(vp)) == 0:
            raise InputError("choosing epsilon needs at least 2 benign and 2 adversarial "
                             "inputs; pass more, or a single epsilon (epsilons=(0.0,))")
        rows = []
        for eps in sorted(self.epsilons):
            neg, pos = self.confidences(x_neg, eps), self.confidences(x_pos, eps)
            lr = Logistic.fit(torch.cat([neg[tn], pos[tp]]),
                              torch.cat([torch.zeros(len(tn)), torch.ones(len(tp))]), self.l2)
            rows.append({"epsilon": eps, "val_auroc": auroc(lr(neg[vn]), lr(pos[vp]))})
        best = max(rows, key=lambda r: (r["val_auroc"], -r["epsilon"]))
        return best["epsilon"], rows

    # ------------------------------------------------------------------ scoring
    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = execution.batched(
            self.model, x,
            lambda xb: tuple(layer_features(self.model, xb, self.layers_, pooled=True)),
            batch_size=self.batch_size, to="cpu")
        return list(out)

    def confidences(self, x: torch.Tensor, epsilon: float | None = None) -> torch.Tensor:
        """N×L confidences ``M_ℓ`` (``max_c`` of minus the distance) after pre-processing by
        ``epsilon`` (default the chosen ε), float64 on the CPU."""
        eps = self.epsilon_ if epsilon is None else float(epsilon)
        out = execution.batched(self.model, x, lambda xb: self._confidences(xb, eps),
                                batch_size=self.batch_size, to="cpu")
        assert isinstance(out, torch.Tensor)
        return out

    def _layer_conf(self, i: int, f: torch.Tensor) -> torch.Tensor:
        _, means, precision = self.gaussians_[i]
        return -mahalanobis_distances(f, means, precision).min(1).values

    def preprocess(self, x: torch.Tensor, epsilon: float | None = None) -> list[torch.Tensor]:
        """Per feature layer, the pre-processed inputs ``clip(x − ε·sign(∇ₓ d_ĉ), 0, 1)``
        (``d_ĉ`` the squared distance to the closest class mean at that layer)."""
        self._check_fitted()
        check_images(x, model_shape=self.input_shape_)
        eps = self.epsilon_ if epsilon is None else float(epsilon)
        out = execution.batched(self.model, x, lambda xb: tuple(self._preprocess(xb, eps)),
                                batch_size=self.batch_size)
        return list(out)

    def _preprocess(self, x: torch.Tensor, eps: float) -> list[torch.Tensor]:
        n_layers = len(self.layers_)
        with execution.inference(self.model, grad=True, freeze=True):
            xg = x.detach().clone().requires_grad_(True)
            feats = layer_features(self.model, xg, self.layers_, pooled=True, detach=False)
            grads = []
            for i, f in enumerate(feats):
                _, means, precision = self.gaussians_[i]
                loss = mahalanobis_distances(f, means, precision).min(1).values.sum()
                (g,) = torch.autograd.grad(loss, xg, retain_graph=i < n_layers - 1)
                grads.append(g)
        return [(x - eps * g.sign()).clamp(0.0, 1.0).detach() for g in grads]

    def _confidences(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        if eps == 0.0:
            feats = layer_features(self.model, x, self.layers_, pooled=True)
            return torch.stack([self._layer_conf(i, f) for i, f in enumerate(feats)], 1)
        feats = layer_features(self.model, torch.cat(self._preprocess(x, eps)), self.layers_,
                               pooled=True)
        n = x.shape[0]
        return torch.stack([self._layer_conf(i, f[i * n:(i + 1) * n])
                            for i, f in enumerate(feats)], 1)

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        return self.combiner_(self._confidences(x, self.epsilon_)).to(x.device, x.dtype)

    # ------------------------------------------------------------------ adaptive attacks
    def adaptive_terms(self) -> AdaptiveTerms:
        """The terms :class:`deepscope.attacks.AdaptiveMahalanobis` attacks: the model as the
        one view; as the penalty, the combiner's log-odds on ``−d_ℓ(f_ℓ(x̂_ℓ), t)``, the
        squared distance of every layer's features to the Gaussian of the *adversarial* label
        ``t`` (the nearest class's when ``t`` had no benign fitting input), with the
        pre-processing ``x̂_ℓ`` through a straight-through estimator (BPDA); this detector's
        decision."""
        self._check_fitted()
        device = execution.model_device(self.model)

        def penalty(x: torch.Tensor, labels: torch.Tensor, _: list[torch.Tensor]
                    ) -> torch.Tensor:
            x = x.to(device)
            n = x.shape[0]
            if self.epsilon_ > 0:
                pre = self._preprocess(x.detach(), self.epsilon_)
                batch = torch.cat([straight_through(x, p) for p in pre])
                feats = layer_features(self.model, batch, self.layers_, pooled=True,
                                       detach=False)
                feats = [f[i * n:(i + 1) * n] for i, f in enumerate(feats)]
            else:
                feats = layer_features(self.model, x, self.layers_, pooled=True, detach=False)
            z = torch.stack([-self._class_distance(i, f, labels) for i, f in enumerate(feats)],
                            1)
            return self.combiner_.log_odds(z)

        return AdaptiveTerms(self.name, self.model, model_view(self.model, device), penalty,
                             self.detect)

    def _class_distance(self, i: int, f: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Squared distance of features ``f`` (layer ``i``) to the Gaussian of each label."""
        classes, means, precision = self.gaussians_[i]
        d = mahalanobis_distances(f, means, precision)
        classes = classes.to(d.device)
        labels = labels.to(d.device)
        idx = torch.searchsorted(classes, labels).clamp(max=len(classes) - 1)
        own = d.gather(1, idx[:, None]).squeeze(1)
        return torch.where(classes[idx] == labels, own, d.min(1).values)

    # ------------------------------------------------------------------ state
    def _learned_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        params = self._own_params()
        params["epsilons"] = list(params["epsilons"])
        meta = {"params": params, "feature_layers": list(self.layers_),
                "epsilon": self.epsilon_, "selection": self.selection_}
        arrays = dict(self.combiner_.arrays())
        for i, (classes, means, precision) in enumerate(self.gaussians_):
            arrays.update({f"classes.{i}": classes, f"means.{i}": means,
                           f"precision.{i}": precision})
        return meta, arrays

    def _set_learned_state(self, meta: dict[str, Any], arrays: dict[str, torch.Tensor]
                           ) -> None:
        self.layers_ = list(meta["feature_layers"])
        for name in self.layers_:
            hooks.resolve(self.model, name)
        self.epsilon_ = float(meta["epsilon"])
        self.selection_ = list(meta["selection"])
        self.combiner_ = Logistic.from_arrays(arrays)
        self.gaussians_ = [(arrays[f"classes.{i}"].long(), arrays[f"means.{i}"].double(),
                            arrays[f"precision.{i}"].double())
                           for i in range(len(self.layers_))]
