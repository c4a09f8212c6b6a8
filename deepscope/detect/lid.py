"""The LID detector (Ma et al., ICLR'18, "Characterizing Adversarial Subspaces Using Local
Intrinsic Dimensionality").

Per layer (default: every block output, the penultimate layer and the logits; activations
flattened, as the paper), the maximum-likelihood estimate of the local intrinsic dimensionality
of an input's activation ``a`` within a **minibatch** of benign reference activations is

    LID(a) = −( (1/k) Σ_{i=1..k} log(r_i(a) / r_k(a)) )⁻¹

with ``r_1 ≤ ... ≤ r_k`` the Euclidean distances to its ``k`` nearest reference activations
(``k = 20`` and minibatches of 100 by default, the paper's MNIST setting; a reference point at
distance exactly 0 is the input itself and is skipped). A logistic regression on the per-layer
LID vectors separates adversarial inputs (label 1) from benign **and noisy** inputs (label 0;
Gaussian noise of std ``noise_std``, clipped to [0, 1]), as in the paper: every benign
minibatch gives the LIDs of its own points (self excluded), of their noisy copies and of a
slice of the adversarial inputs, all against that minibatch.

**Without** ``x_adv``, the adversarial set is one-step FGSM copies of the benign fitting inputs
(ε = ``fgsm_eps``, the model's predicted labels) — the same rule as the Mahalanobis detector
(Lee et al. validate on FGSM samples they make themselves): noise cannot be the positive class
here because the paper uses it as a negative one.

At inference an input's LIDs are estimated against one fixed benign minibatch (the first of
the fitting inputs, stored with the detector); the score is the combiner's log-odds of
"adversarial", thresholded at ``target_fpr`` on held-out benign inputs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from deepscope._validate import check_int, check_number, check_probability
from deepscope.detect._adaptive import AdaptiveTerms, model_view
from deepscope.detect._features import (
    Logistic,
    default_feature_layers,
    fgsm_examples,
    last_layer,
    layer_features,
)
from deepscope.detect.base import DETECTORS, Detector, check_images
from deepscope.errors import InputError
from deepscope.models import execution, hooks

__all__ = ["LIDDetector", "lid_mle", "minibatches"]


def lid_mle(query: torch.Tensor, reference: torch.Tensor, k: int) -> torch.Tensor:
    """MLE of the LID of every row of ``query`` (N×D) among the rows of ``reference`` (M×D).

    Distances of exactly 0 (the query point itself) are skipped; ``k`` nearest of the rest.
    """
    d = torch.cdist(query.double(), reference.double())
    d = torch.where(d > 0, d, torch.full_like(d, float("inf")))
    if reference.shape[0] < k or not bool(torch.isfinite(d.topk(k, largest=False).values)
                                          .all()):
        raise InputError(f"LID with k={k} needs at least {k} reference points at a non-zero "
                         f"distance from each input; got {reference.shape[0]} references")
    r = d.topk(k, dim=1, largest=False).values  # ascending
    return -1.0 / torch.log(r / r[:, -1:]).mean(1)


def minibatches(n: int, size: int) -> list[torch.Tensor]:
    """Index chunks of exactly ``size`` covering ``range(n)`` (the last one overlaps the one
    before when ``size`` does not divide ``n``); one chunk of everything when ``n < size``."""
    if n <= size:
        return [torch.arange(n)]
    starts = list(range(0, n - size + 1, size))
    if starts[-1] + size < n:
        starts.append(n - size)
    return [torch.arange(s, s + size) for s in starts]


@DETECTORS.register("lid")
class LIDDetector(Detector):
    """Local intrinsic dimensionality of the activations, combined by logistic regression.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (returns logits).
    target_fpr : float
        False-positive rate on benign calibration inputs.
    layers : list of str, optional
        Layers whose flattened activations are used; default every block output, the
        penultimate layer and the last layer (logits).
    k : int
        Nearest neighbours of the estimate (paper: 20 for MNIST, 10-20 elsewhere).
    minibatch : int
        Size of the benign reference minibatches (paper: 100); smaller when fewer benign
        fitting inputs are given.
    noise_std : float
        Std of the Gaussian noise of the noisy (benign-labelled) copies, pixel units.
    fgsm_eps : float
        Step of the FGSM copies used as adversarial examples when ``fit`` gets no ``x_adv``.
    l2 : float
        L2 penalty of the logistic combiner (on standardised LIDs).
    calib_fraction : float
        Share of ``x_benign`` held out for calibration when ``fit`` gets no ``x_calib``.
    seed : int
        Seed of the calibration split, the minibatch order and the noise.
    batch_size, progress
        See :class:`~deepscope.detect.base.Detector`.
    """

    name: ClassVar[str] = "lid"

    def __init__(self, model: nn.Module, *, target_fpr: float = 0.05,
                 layers: list[str] | None = None, k: int = 20, minibatch: int = 100,
                 noise_std: float = 0.05, fgsm_eps: float = 0.05, l2: float = 1e-2,
                 calib_fraction: float = 0.3, seed: int = 0, batch_size: int = 64,
                 progress: bool = True) -> None:
        super().__init__(model, target_fpr=target_fpr, batch_size=batch_size, progress=progress)
        if layers is not None:
            if not layers:
                raise InputError("layers must name at least one layer (or be None)")
            for layer in layers:
                hooks.resolve(model, layer)
        self.layers = list(layers) if layers is not None else None
        self.k = check_int("k", k, low=1)
        self.minibatch = check_int("minibatch", minibatch, low=2)
        if self.minibatch <= self.k:
            raise InputError(f"minibatch ({minibatch}) must exceed k ({k}): each point needs k "
                             "neighbours in its minibatch besides itself")
        self.noise_std = float(check_number("noise_std", noise_std, low=0.0))
        self.fgsm_eps = float(check_number("fgsm_eps", fgsm_eps, low=0.0))
        self.l2 = float(check_number("l2", l2, low=0.0))
        self.calib_fraction = check_probability("calib_fraction", calib_fraction)
        self.seed = check_int("seed", seed, low=0)

    # ------------------------------------------------------------------ fitting
    def fit(self, x_benign: torch.Tensor, *, x_adv: torch.Tensor | None = None,
            x_calib: torch.Tensor | None = None) -> LIDDetector:
        """Estimate LIDs per minibatch, train the combiner, set the threshold.

        Parameters
        ----------
        x_benign : torch.Tensor
            N×C×H×W benign inputs in [0, 1] (more than ``k`` after the calibration split).
        x_adv : torch.Tensor, optional
            Adversarial inputs (default: FGSM copies of the benign fitting inputs).
        x_calib : torch.Tensor, optional
            Benign calibration inputs (default: ``calib_fraction`` of ``x_benign``).

        Returns
        -------
        LIDDetector
            ``self``, fitted.
        """
        x_fit, x_calib, _ = self._split_benign(x_benign, x_calib, x_adv=x_adv)
        if x_fit.shape[0] <= self.k:
            raise InputError(f"LID needs more than k={self.k} benign fitting inputs, got "
                             f"{x_fit.shape[0]}; pass more inputs or a smaller k")
        self.layers_ = self.layers or [*default_feature_layers(self.model, x_fit),
                                       last_layer(self.model)]
        g = torch.Generator().manual_seed(self.seed)
        x_fit = x_fit[torch.randperm(x_fit.shape[0], generator=g)]
        x_pos = x_adv if x_adv is not None else fgsm_examples(
            self.model, x_fit, self.fgsm_eps, batch_size=self.batch_size)
        noise = torch.randn(x_fit.shape, generator=g).to(x_fit.device, x_fit.dtype)
        x_noisy = (x_fit + self.noise_std * noise).clamp(0.0, 1.0)
        chunks = minibatches(x_fit.shape[0], self.minibatch)
        self.minibatch_ = len(chunks[0])
        neg, pos = [], []
        for j, idx in enumerate(chunks):
            ref = self._activations(x_fit[idx])
            neg += [self._lids(x_fit[idx], ref), self._lids(x_noisy[idx], ref)]
            adv_idx = torch.tensor_split(torch.arange(x_pos.shape[0]), len(chunks))[j]
            if len(adv_idx):
                pos.append(self._lids(x_pos[adv_idx], ref))
        self.reference_ = self._activations(x_fit[chunks[0]])
        z_neg, z_pos = torch.cat(neg), torch.cat(pos)
        self.combiner_ = Logistic.fit(torch.cat([z_neg, z_pos]),
                                      torch.cat([torch.zeros(len(z_neg)),
                                                 torch.ones(len(z_pos))]), self.l2)
        self._calibrate(x_calib)
        return self

    # ------------------------------------------------------------------ scoring
    def _activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = execution.batched(
            self.model, x,
            lambda xb: tuple(layer_features(self.model, xb, self.layers_, pooled=False)),
            batch_size=self.batch_size, to="cpu")
        return [a.double() for a in out]

    def _lids(self, x: torch.Tensor, reference: list[torch.Tensor]) -> torch.Tensor:
        acts = self._activations(x)
        return torch.stack([lid_mle(a, r, self.k) for a, r in zip(acts, reference, strict=True)],
                           1)

    def lids(self, x: torch.Tensor) -> torch.Tensor:
        """N×L LID estimates of ``x`` against the stored reference minibatch (float64)."""
        self._check_fitted()
        check_images(x, model_shape=self.input_shape_)
        return self._lids(x, self.reference_)

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        feats = layer_features(self.model, x, self.layers_, pooled=False)
        z = torch.stack([lid_mle(a.double().cpu(), r, self.k)
                         for a, r in zip(feats, self.reference_, strict=True)], 1)
        return self.combiner_(z).to(x.device, x.dtype)

    # ------------------------------------------------------------------ adaptive attacks
    def adaptive_terms(self) -> AdaptiveTerms:
        """The terms :class:`deepscope.attacks.AdaptiveLID` attacks: the model as the one view;
        as the penalty, the combiner's log-odds on the LID estimates of the input's activations
        against the stored benign reference minibatch (the detector's own score, differentiable
        through ``torch.cdist``); this detector's decision."""
        self._check_fitted()
        device = execution.model_device(self.model)

        def penalty(x: torch.Tensor, labels: torch.Tensor, _: list[torch.Tensor]
                    ) -> torch.Tensor:
            feats = layer_features(self.model, x.to(device), self.layers_, pooled=False,
                                   detach=False)
            z = torch.stack([lid_mle(a, r.to(a.device), self.k)
                             for a, r in zip(feats, self.reference_, strict=True)], 1)
            return self.combiner_.log_odds(z)

        return AdaptiveTerms(self.name, self.model, model_view(self.model, device), penalty,
                             self.detect)

    # ------------------------------------------------------------------ state
    def _learned_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        meta = {"params": self._own_params(), "feature_layers": list(self.layers_),
                "minibatch_used": self.minibatch_}
        arrays = dict(self.combiner_.arrays())
        arrays.update({f"reference.{i}": r for i, r in enumerate(self.reference_)})
        return meta, arrays

    def _set_learned_state(self, meta: dict[str, Any], arrays: dict[str, torch.Tensor]
                           ) -> None:
        self.layers_ = list(meta["feature_layers"])
        for name in self.layers_:
            hooks.resolve(self.model, name)
        self.minibatch_ = int(meta["minibatch_used"])
        self.combiner_ = Logistic.from_arrays(arrays)
        self.reference_ = [arrays[f"reference.{i}"].double() for i in range(len(self.layers_))]
