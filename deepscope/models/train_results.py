"""Result objects of training and evaluation: :class:`EpochStats` (one epoch of
:func:`~deepscope.models.fit`) and :class:`Evaluation` (:func:`~deepscope.models.evaluate`).
Re-exported by :mod:`deepscope.models.train` and :mod:`deepscope.models`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["EpochStats", "Evaluation"]


@dataclass(frozen=True)
class EpochStats:
    """Statistics of one training epoch.

    Attributes
    ----------
    epoch : int
        1-based epoch number.
    train_loss, train_accuracy : float
        Running means over the epoch's batches (in train mode, with augmentation).
    val_loss, val_accuracy : float or None
        On the validation set in eval mode; ``None`` without ``val``.
    lr : float
        Learning rate at the end of the epoch.
    seconds : float
        Wall-clock time of the epoch, validation included.
    improved : bool
        Whether this epoch became the best one so far (always ``True`` without ``val``).
    val_f1 : float or None
        Validation F1 of class 1 per position, for taggers (what early stopping compares).
    """

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float
    seconds: float
    improved: bool
    val_f1: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy."""
        return asdict(self)


@dataclass(frozen=True, eq=False)  # numpy fields: compare to_dict() instead
class Evaluation:
    """Accuracy of a classifier on a labelled dataset (and P/R/F1 of a tagger).

    For a tagger (per-position labels, e.g. function starts) every count is over the
    non-padding positions: ``accuracy``, ``per_label`` and ``confusion`` count bytes, and
    ``precision``/``recall``/``f1`` are those of class 1 (see :mod:`deepscope.models.tagging`);
    for classifiers these three are ``None``.

    Attributes
    ----------
    accuracy : float
        Share of correctly classified samples.
    per_label : numpy.ndarray
        Shape (K,): accuracy (recall) of each true label; NaN for labels without samples.
    confusion : numpy.ndarray
        Shape (K, K), int64; ``confusion[i, j]`` counts samples of true label ``i`` predicted ``j``.
    classes : tuple of str
        Class names, index = label id.
    n : int
        Number of samples (sequences, for a tagger).
    loss : float
        Mean cross-entropy (per non-padding position, for a tagger).
    precision, recall, f1 : float or None
        Of class 1 per position, for taggers; ``None`` for classifiers.
    """

    accuracy: float
    per_label: np.ndarray
    confusion: np.ndarray
    classes: tuple[str, ...]
    n: int
    loss: float
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None

    @property
    def per_position(self) -> bool:
        """True for a tagger's evaluation (``precision``/``recall``/``f1`` are set)."""
        return self.f1 is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy (NaN per-label accuracies become ``None``; P/R/F1 for taggers)."""
        out = {
            "accuracy": self.accuracy,
            "per_label": [None if math.isnan(v) else float(v) for v in self.per_label],
            "confusion": self.confusion.tolist(),
            "classes": list(self.classes),
            "n": self.n,
            "loss": self.loss,
        }
        if self.per_position:
            out.update(precision=self.precision, recall=self.recall, f1=self.f1)
        return out


# ----------------------------------------------------------------------------------------------
# prediction and evaluation
