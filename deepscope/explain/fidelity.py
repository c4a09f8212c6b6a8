"""Fidelity tests of an explanation (higher is better for all three).

* :func:`deduction` — nullify each positive's top-k features; share no longer classified as the
  target (the seed's "adversarial samples").
* :func:`augmentation` — transplant a positive's top-k feature values into negatives; share
  classified as the target ("pathological samples").
* :func:`synthetic` — put a positive's top-k feature values on noise; share classified as the
  target.

*Positives* are the rows of ``x`` the black box assigns to ``target``; ``explanation`` must
have one row per row of ``x``. Transplanted values are copied as they are (never scaled).
:func:`generate` returns the generated inputs too, for pictures.

Token / byte sequences: LEMNA's protocol (deduction to the fill id — lower is better there —,
augmentation into negatives, synthetic on an all-fill input; ``k`` in :data:`KS`) is
:func:`sequence_test` (:mod:`deepscope.explain.sequence_fidelity`), re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepscope.errors import InputError
from deepscope.explain.base import BlackBox, check_target
from deepscope.explain.explanation import Explanation
from deepscope.explain.features import check_inputs, fill_values
from deepscope.explain.sequence_fidelity import (
    KS,
    LOWER_IS_BETTER,
    SEQUENCE_TESTS,
    SequenceFidelity,
    paired_difference,
    sequence_test,
    share_interval,
)

__all__ = ["KS", "LOWER_IS_BETTER", "SEQUENCE_TESTS", "TESTS", "FidelityResult",
           "SequenceFidelity", "augmentation", "deduction", "generate", "paired_difference",
           "sequence_test", "share_interval", "synthetic"]

TESTS = ("deduction", "augmentation", "synthetic")


@dataclass(frozen=True)
class FidelityResult:
    """Outcome of one fidelity test.

    Attributes
    ----------
    test : str
        ``"deduction"``, ``"augmentation"`` or ``"synthetic"``.
    k : int
        Number of features used.
    share : float
        Share of generated inputs that succeed (see the module docstring).
    n : int
        Number of generated inputs.
    generated : ndarray
        The generated inputs.
    source : ndarray
        Row of ``x`` (a positive) each generated input comes from.
    success : ndarray
        Per generated input, whether it succeeded.
    """

    test: str
    k: int
    share: float
    n: int
    generated: np.ndarray
    source: np.ndarray
    success: np.ndarray

    def to_dict(self) -> dict:
        """JSON-able summary (without the generated inputs)."""
        return {"test": self.test, "k": self.k, "share": self.share, "n": self.n}


def _positives(bb: BlackBox, x: np.ndarray, explanation: Explanation, target) -> np.ndarray:
    if not isinstance(explanation, Explanation):
        raise InputError(f"explanation must be an Explanation, got {type(explanation).__name__}")
    if len(explanation) != len(x):
        raise InputError(
            f"explanation has {len(explanation)} rows but x has {len(x)}; explain x itself"
        )
    if tuple(x.shape[1:]) != tuple(explanation.input_shape):
        raise InputError(
            f"x rows of shape {x.shape[1:]} do not match the explanation's "
            f"{explanation.input_shape}"
        )
    proba = bb(x)
    check_target(target, proba.shape[1])
    pos = np.flatnonzero(proba.argmax(axis=1) == target)
    if pos.size == 0:
        raise InputError(
            f"no row of x is classified as class {target}; fidelity needs positive samples"
        )
    return pos


def _noise(shape, rng, low: float, high: float, dtype) -> np.ndarray:
    return rng.uniform(low, high, size=shape).astype(dtype)


def generate(
    test: str,
    predict_proba,
    x,
    explanation: Explanation,
    k: int,
    target: int,
    *,
    baseline: str | np.ndarray = "zero",
    reference=None,
    negatives=None,
    n_pairs: int = 5,
    n_noise: int = 5,
    noise_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    batch_size: int = 512,
) -> FidelityResult:
    """Run one fidelity test and keep the generated inputs.

    Parameters
    ----------
    test : {"deduction", "augmentation", "synthetic"}
        Which test.
    predict_proba : callable
        The black box (numpy inputs → ``N×K`` probabilities).
    x : array-like
        The explained inputs, one per explanation row.
    explanation : Explanation
        Explanation of ``x`` for ``target``.
    k : int
        Number of top features.
    target : int
        The explained class.
    baseline : {"zero", "mean", "blur"} or ndarray
        Deduction only: what nullified features become (see
        :func:`~deepscope.explain.features.fill_values`).
    reference : ndarray, optional
        Deduction with ``baseline="mean"``: inputs whose mean is the baseline (default: ``x``;
        pass a slice of the training set for a class-neutral mean).
    negatives : array-like, optional
        Augmentation: inputs to transplant into (those the model does not assign to
        ``target`` are used). Default: the rows of ``x`` not classified as ``target``.
    n_pairs : int
        Augmentation: negatives drawn per positive.
    n_noise : int
        Synthetic: noise inputs per positive.
    noise_range : (float, float)
        Synthetic: uniform noise bounds.
    seed : int
        Seed of the pairing and the noise.
    batch_size : int
        Inputs per black-box call.
    """
    if test not in TESTS:
        raise InputError(f"unknown fidelity test {test!r}; choose one of {', '.join(TESTS)}")
    x = check_inputs(x)
    bb = BlackBox(predict_proba, batch_size)
    pos = _positives(bb, x, explanation, target)
    mask = explanation[pos].feature_mask(k)  # validates k
    xp = x[pos]
    rng = np.random.default_rng(seed)
    if test == "deduction":
        fill = fill_values(xp, baseline, reference=reference)
        generated = np.where(mask, fill, xp).astype(x.dtype)
        source = pos
        success = bb(generated).argmax(axis=1) != target
    elif test == "augmentation":
        if negatives is None:
            neg = x[np.setdiff1d(np.arange(len(x)), pos)]
        else:
            neg = check_inputs(negatives, name="negatives")
            if neg.shape[1:] != x.shape[1:]:
                raise InputError(f"negatives of shape {neg.shape[1:]} do not match x {x.shape[1:]}")
        if len(neg):
            neg = neg[bb(neg).argmax(axis=1) != target]
        if len(neg) == 0:
            raise InputError(
                "augmentation needs negatives (inputs not classified as the target); pass "
                "negatives= or include other classes in x"
            )
        pick = rng.integers(0, len(neg), size=(len(pos), n_pairs))
        rows = np.repeat(np.arange(len(pos)), n_pairs)
        dst = neg[pick.ravel()]
        generated = np.where(mask[rows], xp[rows], dst).astype(x.dtype)
        source = pos[rows]
        success = bb(generated).argmax(axis=1) == target
    else:
        rows = np.repeat(np.arange(len(pos)), n_noise)
        noise = _noise((len(rows), *x.shape[1:]), rng, *noise_range, x.dtype)
        generated = np.where(mask[rows], xp[rows], noise).astype(x.dtype)
        source = pos[rows]
        success = bb(generated).argmax(axis=1) == target
    return FidelityResult(
        test=test,
        k=int(k),
        share=float(success.mean()),
        n=len(generated),
        generated=generated,
        source=source,
        success=success,
    )


def deduction(predict_proba, x, explanation: Explanation, k: int, target: int = 0, **kw) -> float:
    """Share of positives no longer classified as ``target`` once their top-k are nullified.

    Keyword arguments go to :func:`generate` (``baseline``, ``reference``, ``batch_size``).
    """
    return generate("deduction", predict_proba, x, explanation, k, target, **kw).share


def augmentation(
    predict_proba, x, explanation: Explanation, k: int, target: int = 0, **kw
) -> float:
    """Share of negatives classified as ``target`` after receiving a positive's top-k values.

    Keyword arguments go to :func:`generate` (``negatives``, ``n_pairs``, ``seed``).
    """
    return generate("augmentation", predict_proba, x, explanation, k, target, **kw).share


def synthetic(predict_proba, x, explanation: Explanation, k: int, target: int = 0, **kw) -> float:
    """Share of noise inputs classified as ``target`` once they carry a positive's top-k values.

    Keyword arguments go to :func:`generate` (``n_noise``, ``noise_range``, ``seed``).
    """
    return generate("synthetic", predict_proba, x, explanation, k, target, **kw).share
