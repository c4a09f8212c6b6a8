"""LEMNA's fidelity tests for token / byte sequences (Guo et al., CCS 2018, section 5).

Every explained sample is a positive (the black box assigns it to ``target``); an explanation
names its top-``k`` positions (:meth:`~deepscope.explain.Explanation.feature_mask`). Each test
builds one input per explained sample and asks whether the black box still / now predicts
``target``:

* **deduction** — the top-k positions set to the fill id (0 = padding, as LEMNA zeroes bytes);
  share *still* predicted positive: **lower is better** (the explanation found what matters);
* **augmentation** — the top-k ids copied, at the same positions, into a negative sample (one
  per explained sample, drawn with ``seed``); share *turned* positive: higher is better;
* **synthetic** — an all-fill input carrying only the top-k ids; share positive: higher is
  better.

The random-features baseline is drawn the same way: explain the same inputs with
:class:`~deepscope.explain.RandomExplainer` (random top-k among the same features) and run the
same test. LEMNA's reference code scores the top 25 features; :data:`KS` adds 5..20. Shares
come with bootstrap 95 % intervals over the explained samples, and two explainers' results on
the same samples give a paired difference (:meth:`SequenceFidelity.difference`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepscope import _stats
from deepscope._validate import check_choice, check_int
from deepscope.errors import InputError
from deepscope.explain.base import BlackBox, check_target
from deepscope.explain.explanation import RANKINGS, Explanation
from deepscope.explain.features import check_inputs

__all__ = ["KS", "LOWER_IS_BETTER", "SEQUENCE_TESTS", "SequenceFidelity", "paired_difference",
           "sequence_test", "share_interval"]

SEQUENCE_TESTS = ("deduction", "augmentation", "synthetic")
#: LEMNA's numbers of selected features (its code uses 25).
KS = (5, 10, 15, 20, 25)
#: Deduction counts the positives that *survive*: fewer is better.
LOWER_IS_BETTER = {"deduction": True, "augmentation": False, "synthetic": False}


@dataclass(frozen=True)
class SequenceFidelity:
    """One LEMNA test of one explanation at one ``k``.

    Attributes
    ----------
    test : str
        ``"deduction"``, ``"augmentation"`` or ``"synthetic"``.
    k : int
        Number of top positions used.
    positive : ndarray of bool
        Per explained sample: the black box predicts ``target`` on the generated input.
    generated : ndarray
        int64 generated inputs, one per explained sample.
    partner : ndarray, optional
        Augmentation: the row of ``negatives`` each sample's ids were copied into.
    """

    test: str
    k: int
    positive: np.ndarray
    generated: np.ndarray
    partner: np.ndarray | None = None

    @property
    def share(self) -> float:
        """Share of explained samples whose generated input is predicted positive."""
        return float(self.positive.mean())

    @property
    def lower_is_better(self) -> bool:
        """True for deduction (see the module docstring)."""
        return LOWER_IS_BETTER[self.test]

    def interval(self, *, seed: int = 0, n_boot: int = 2000) -> tuple[float, float, float]:
        """Share and its bootstrap 95 % interval over the explained samples."""
        return share_interval(self.positive, seed=seed, n_boot=n_boot)

    def difference(self, other: SequenceFidelity, *, seed: int = 0, n_boot: int = 2000
                   ) -> tuple[float, float, float]:
        """Paired ``self.share - other.share`` on the same samples, with a bootstrap 95 % CI.

        Signs stay raw: for deduction a *negative* difference means ``self`` is better.
        """
        if (other.test, other.k, len(other.positive)) != (self.test, self.k,
                                                          len(self.positive)):
            raise InputError("paired differences need the same test, k and explained samples")
        return paired_difference(self.positive, other.positive, seed=seed, n_boot=n_boot)

    def to_dict(self) -> dict:
        """JSON-able summary (share, its interval, n; without the generated inputs)."""
        share, lo, hi = self.interval()
        return {"test": self.test, "k": self.k, "share": share, "ci95": [lo, hi],
                "n": len(self.positive), "lower_is_better": self.lower_is_better}


def share_interval(values, *, seed: int = 0, n_boot: int = 2000) -> tuple[float, float, float]:
    """Mean of per-sample scores (e.g. 1/0 successes) and its bootstrap 95 % interval."""
    return _stats.bootstrap_mean(values, seed=seed, n_boot=n_boot)


def paired_difference(a, b, *, seed: int = 0, n_boot: int = 2000) -> tuple[float, float, float]:
    """Mean of ``a - b`` over the same samples and its paired bootstrap 95 % interval."""
    return _stats.paired_difference(a, b, seed=seed, n_boot=n_boot)


def _check(x, explanation: Explanation, k: int, by: str) -> tuple[np.ndarray, np.ndarray]:
    x = check_inputs(x, integer=True)
    if not isinstance(explanation, Explanation):
        raise InputError(f"explanation must be an Explanation, got {type(explanation).__name__}")
    if len(explanation) != len(x) or tuple(explanation.input_shape) != x.shape[1:]:
        raise InputError(f"the explanation ({len(explanation)} rows of shape "
                         f"{tuple(explanation.input_shape)}) does not match x {x.shape}; "
                         "explain x itself")
    check_choice("by", by, RANKINGS)
    return x, explanation.feature_mask(check_int("k", k), by=by)


def sequence_test(test: str, predict_proba, x, explanation: Explanation, k: int,
                  target: int = 1, *, negatives=None, fill: int = 0, by: str = "positive",
                  seed: int = 0, batch_size: int = 512) -> SequenceFidelity:
    """Run one of LEMNA's tests (see the module docstring).

    Parameters
    ----------
    test : {"deduction", "augmentation", "synthetic"}
        Which test.
    predict_proba : callable
        The black box: int64 ``N×T`` → ``N×K`` probabilities (for a tagger,
        :func:`deepscope.explain.tagger_proba`).
    x : array-like
        int64 ``N×T`` explained samples, every one predicted as ``target``.
    explanation : Explanation
        Their explanation (one row per sample, positions or windowed positions as features).
    k : int
        Number of top positions.
    target : int
        The explained class (1 = "a function starts here" / positive sentiment).
    negatives : array-like, optional
        Augmentation: int64 ``M×T`` inputs; those the black box does not assign to ``target``
        receive the copied ids (one drawn per explained sample).
    fill : int
        Id of nullified positions (deduction) and of the synthetic input's background.
    by : {"positive", "abs"}
        How the top-k are ranked (:meth:`Explanation.top_features`).
    seed : int
        Seed of the negatives' draw.
    batch_size : int
        Inputs per black-box call.
    """
    check_choice("test", test, SEQUENCE_TESTS)
    x, mask = _check(x, explanation, k, by)
    bb = BlackBox(predict_proba, batch_size)
    check_target(target, bb(x[:1]).shape[1])
    missed = int((bb(x).argmax(axis=1) != target).sum())
    if missed:
        raise InputError(f"{missed} of {len(x)} explained samples are not predicted as class "
                         f"{target}; LEMNA's tests explain positives only")
    partner = None
    if test == "deduction":
        generated = np.where(mask, np.int64(fill), x)
    elif test == "synthetic":
        generated = np.where(mask, x, np.int64(fill))
    else:
        if negatives is None:
            raise InputError("augmentation needs negatives= (int64 inputs of another class)")
        neg = check_inputs(negatives, name="negatives", integer=True)
        if neg.shape[1:] != x.shape[1:]:
            raise InputError(f"negatives of shape {neg.shape[1:]} do not match x {x.shape[1:]}")
        keep = np.flatnonzero(bb(neg).argmax(axis=1) != target)
        if keep.size == 0:
            raise InputError(f"no negative is predicted as another class than {target}")
        partner = keep[np.random.default_rng(seed).integers(0, keep.size, len(x))]
        generated = np.where(mask, x, neg[partner])
    positive = bb(generated).argmax(axis=1) == target
    return SequenceFidelity(test=test, k=int(k), positive=positive, generated=generated,
                            partner=partner)
