"""Per-label diagnosis of under- and over-fitting bugs (MODE's bug definitions).

Rules (accuracies are per-label recalls, computed with :func:`deepscope.models.evaluate`):

* **under-fitting** on label ``L``: both its train and its test accuracy are below the model's
  mean per-label accuracy on that split minus ``threshold`` (default 5 points). The lowest label
  is thus a candidate, but only when it is clearly worse than the rest.
* **over-fitting** on label ``L``: its train accuracy is *not* low (at least the train mean minus
  ``threshold``) and its train–test gap exceeds the median gap of all labels by at least
  ``overfit_gap`` (default 5 points). Comparing with the median gap keeps a model that simply
  generalises a little worse everywhere from flagging every label.

A label is reported at most once; under-fitting wins when both rules fire. Bugs are sorted by
severity (test accuracy, lowest first).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from torch import nn

from deepscope._jsonable import to_jsonable
from deepscope._validate import check_number
from deepscope.errors import InputError
from deepscope.models import evaluate
from deepscope.protocol import Persistent

__all__ = ["Bug", "Diagnosis", "diagnose", "given_bug"]

KINDS = ("underfit", "overfit")


@dataclass(frozen=True)
class Bug:
    """One per-label bug.

    Attributes
    ----------
    label : int
        The buggy label.
    kind : str
        ``"underfit"`` or ``"overfit"``.
    train_acc, test_acc : float
        The label's accuracy on the training and the test data.
    evidence : str
        Why the rule fired, in words and numbers.
    threshold : float
        The accuracy (under-fitting: test threshold) or gap (over-fitting) the label crossed.
    """

    label: int
    kind: str
    train_acc: float
    test_acc: float
    evidence: str
    threshold: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"bug kind must be one of {KINDS}, got {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy."""
        return to_jsonable(asdict(self))


@dataclass(frozen=True, eq=False)
class Diagnosis(Persistent):
    """Per-label accuracies of a model and the bugs found in them (``save`` / ``load``)."""

    _format = "diagnosis"

    train_per_label: np.ndarray
    test_per_label: np.ndarray
    train_accuracy: float
    test_accuracy: float
    classes: tuple[str, ...]
    bugs: tuple[Bug, ...]
    threshold: float
    overfit_gap: float
    params: dict[str, Any] = field(default_factory=dict)

    def bug_for(self, label: int) -> Bug | None:
        """The bug found on ``label``, if any."""
        return next((b for b in self.bugs if b.label == label), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy (NaN accuracies become ``None``)."""
        return to_jsonable({
            "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
            "train_per_label": self.train_per_label, "test_per_label": self.test_per_label,
            "classes": list(self.classes), "bugs": [b.to_dict() for b in self.bugs],
            "threshold": self.threshold, "overfit_gap": self.overfit_gap, **self.params})

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
                "classes": list(self.classes), "bugs": [b.to_dict() for b in self.bugs],
                "threshold": self.threshold, "overfit_gap": self.overfit_gap,
                "params": self.params}
        return meta, {"train_per_label": self.train_per_label,
                      "test_per_label": self.test_per_label}

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Diagnosis:
        return cls(arrays["train_per_label"], arrays["test_per_label"], meta["train_accuracy"],
                   meta["test_accuracy"], tuple(meta["classes"]),
                   tuple(Bug(**b) for b in meta["bugs"]), meta["threshold"],
                   meta["overfit_gap"], dict(meta["params"]))


def _check_fraction(value: Any, name: str) -> float:
    return float(check_number(f"{name} (accuracy points)", value, low=0.0, high=1.0,
                              high_open=True))


def diagnose(model: nn.Module, train: Any, test: Any, *, threshold: float = 0.05,
             overfit_gap: float = 0.05, batch_size: int = 512) -> Diagnosis:
    """Find labels with under-fitting or over-fitting bugs.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (evaluated in eval mode; its state is restored).
    train, test : Dataset
        The data the model was trained on, and held-out data.
    threshold : float
        Under-fitting margin below the mean per-label accuracy (both splits), default 0.05.
    overfit_gap : float
        How much a label's train–test gap must exceed the median gap, default 0.05.
    batch_size : int
        Samples per forward pass.

    Returns
    -------
    Diagnosis
    """
    threshold = _check_fraction(threshold, "threshold")
    overfit_gap = _check_fraction(overfit_gap, "overfit_gap")
    ev_train = evaluate(model, train, batch_size=batch_size)
    ev_test = evaluate(model, test, batch_size=batch_size)
    if ev_train.per_label.shape != ev_test.per_label.shape:
        raise InputError("train and test have a different number of classes")
    tr, te = ev_train.per_label, ev_test.per_label
    present = ~(np.isnan(tr) | np.isnan(te))
    if present.sum() < 2:
        raise InputError("diagnose needs at least two labels present in both train and test")
    t_train = float(np.mean(tr[present])) - threshold
    t_test = float(np.mean(te[present])) - threshold
    gaps = tr - te
    t_gap = float(np.median(gaps[present])) + overfit_gap
    bugs: list[Bug] = []
    for label in np.flatnonzero(present):
        a, b = float(tr[label]), float(te[label])
        if a < t_train and b < t_test:
            bugs.append(Bug(int(label), "underfit", a, b, (
                f"train accuracy {a:.1%} < {t_train:.1%} and test accuracy {b:.1%} < "
                f"{t_test:.1%} (mean per-label accuracy minus {threshold:.0%})"), t_test))
        elif a >= t_train and a - b > t_gap:
            bugs.append(Bug(int(label), "overfit", a, b, (
                f"train accuracy {a:.1%} exceeds test accuracy {b:.1%} by {a - b:.1%} > "
                f"{t_gap:.1%} (median gap plus {overfit_gap:.0%})"), t_gap))
    bugs.sort(key=lambda bug: (bug.test_acc, bug.label))
    return Diagnosis(tr, te, ev_train.accuracy, ev_test.accuracy, ev_test.classes, tuple(bugs),
                     threshold, overfit_gap,
                     {"underfit_train_threshold": t_train, "underfit_test_threshold": t_test,
                      "overfit_gap_threshold": t_gap})


def given_bug(model: nn.Module, train: Any, test: Any, label: int, kind: str, *,
              evidence: str = "given by the caller", batch_size: int = 512) -> Bug:
    """A :class:`Bug` named by the caller (not diagnosed), with the label's measured accuracies.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier.
    train, test : Dataset
        Where the label's train and test accuracy are measured.
    label : int
        The buggy label, in ``[0, K)``.
    kind : str
        ``"underfit"`` or ``"overfit"``.
    evidence : str
        Why this bug is repaired (e.g. ``"given on the command line"``).
    """
    if kind not in KINDS:
        raise InputError(f"bug kind must be one of {KINDS}, got {kind!r}")
    ev_train = evaluate(model, train, batch_size=batch_size)
    if isinstance(label, bool) or not isinstance(label, int) or not (
            0 <= label < len(ev_train.per_label)):
        raise InputError(f"label must be in [0, {len(ev_train.per_label)}), got {label!r}")
    ev_test = evaluate(model, test, batch_size=batch_size)
    return Bug(label, kind, float(ev_train.per_label[label]), float(ev_test.per_label[label]),
               evidence, 0.0)
