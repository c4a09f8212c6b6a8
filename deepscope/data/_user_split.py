"""The roles an audit needs, cut from the user's data: :func:`audit_split`.

Roles
    ``reference`` (train-like): what per-label *train* accuracy, feature models and detector
    calibration are measured on; ``test``: held-out data every reported accuracy, attack and
    explanation uses; ``pool``: candidates MODE repair may add to training.

Rule
    With ``train_data`` (what the model was trained on): ``reference`` is ``train_data``;
    ``data`` is split, stratified and seeded, into ``pool`` (``repair_pool`` of it) and
    ``test`` (the rest). The pool must be *new* inputs, as in MODE: samples the model was
    trained on cannot repair a label the training data starves (the demo's bug is exactly
    that), so it never comes from ``train_data``. Without it: ``data`` is split into ``reference``
    (``train_like``), ``pool`` (``repair_pool``) and ``test`` (the rest), and :attr:`AuditSplit.
    notes` says that the reference is not training data, so over-fitting (train accuracy above
    test accuracy) cannot be measured. ``max_samples`` caps ``data`` and ``train_data`` each
    (seeded, stratified) before splitting. Whichever way, no sample is in two roles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from deepscope.data.dataset import Dataset
from deepscope.data.splits import stratified_split, stratified_subset
from deepscope.errors import InputError

__all__ = ["AuditSplit", "audit_split"]


@dataclass(frozen=True)
class AuditSplit:
    """The parts of :func:`audit_split`.

    Attributes
    ----------
    reference, test, pool : Dataset
        Train-like reference, held-out test data and repair pool (splits named so).
    reference_is_training : bool
        True when ``reference`` comes from the model's training data (``train_data``).
    seed : int
        Seed of the split.
    notes : tuple of str
        What the numbers computed on these parts can and cannot say.
    """

    reference: Dataset
    test: Dataset
    pool: Dataset
    reference_is_training: bool
    seed: int
    notes: tuple[str, ...] = ()

    def sizes(self) -> dict[str, int]:
        """Samples per role."""
        return {"reference": len(self.reference), "test": len(self.test),
                "pool": len(self.pool)}

    def describe(self) -> str:
        """One line with the sizes, e.g. ``"reference 3,000 (from --train-data) · test ..."``."""
        where = "--train-data" if self.reference_is_training else "--data"
        pool_from = where
        return (f"reference {len(self.reference):,} (from {where}) · test {len(self.test):,} "
                f"(from --data) · repair pool {len(self.pool):,} (from {pool_from}) · "
                f"seed {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        """Sizes, class counts per role, provenance of the reference and the notes."""
        return {
            "sizes": self.sizes(),
            "counts": {role: [int(c) for c in part.class_counts()] for role, part in
                       (("reference", self.reference), ("test", self.test),
                        ("pool", self.pool))},
            "reference_is_training": self.reference_is_training,
            "seed": self.seed,
            "notes": list(self.notes),
        }


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or not 0 <= value < 1:
        raise InputError(f"{name} must be a fraction in [0, 1), got {value!r}")
    return float(value)


def _same_kind(data: Dataset, train: Dataset) -> None:
    if train.input_shape != data.input_shape or train.x.dtype != data.x.dtype:
        raise InputError(f"--train-data has inputs of shape {train.input_shape} ({train.x.dtype})"
                         f" but --data has {data.input_shape} ({data.x.dtype}); pass both in "
                         "one format, with the same resize / grayscale options")
    if tuple(train.classes) != tuple(data.classes):
        raise InputError(f"--train-data has classes {list(train.classes)[:10]} but --data has "
                         f"{list(data.classes)[:10]}; load both with the model's classes "
                         "(classes= / --classes)")


def _nonempty(parts: dict[str, Dataset], hint: str) -> None:
    for role, part in parts.items():
        if len(part) == 0:
            raise InputError(f"the {role} part of the audit split is empty; {hint}")


def audit_split(
    data: Dataset,
    *,
    train_data: Dataset | None = None,
    seed: int = 0,
    train_like: float = 0.3,
    repair_pool: float = 0.3,
    max_samples: int | None = None,
) -> AuditSplit:
    """Cut ``data`` (held out) and optional ``train_data`` into reference, test and pool.

    Parameters
    ----------
    data : Dataset
        Held-out data (``--data``): never trained on by the model, as far as the user knows.
    train_data : Dataset, optional
        What the model was trained on (``--train-data``).
    seed : int
        Seed of the subsets and the stratified split.
    train_like : float
        Share of ``data`` taken as the reference when ``train_data`` is None (ignored
        otherwise).
    repair_pool : float
        Share of ``data`` taken as the repair pool.
    max_samples : int, optional
        Cap on ``data`` and on ``train_data``, each (seeded, stratified subset).

    Returns
    -------
    AuditSplit
        The rule is in the module docstring; :meth:`AuditSplit.describe` gives the sizes.
    """
    if not isinstance(data, Dataset) or (train_data is not None
                                         and not isinstance(train_data, Dataset)):
        raise InputError("data and train_data must be deepscope Datasets (see load_data)")
    like, pool = _fraction(train_like, "train_like"), _fraction(repair_pool, "repair_pool")
    data = stratified_subset(data, max_samples, seed=seed)
    if train_data is not None:
        _same_kind(data, train_data)
        train_data = stratified_subset(train_data, max_samples, seed=seed)
        reference = train_data.subset(slice(None), split="reference")
        test, pool_part = stratified_split(data, [1.0 - pool, pool], seed=seed,
                                           names=("test", "pool"))
        notes = ("the reference is --train-data, the data the model was trained on; the repair "
                 "pool and the test data are disjoint parts of --data",)
        parts = {"reference": reference, "test": test}
        if pool > 0:
            parts["pool"] = pool_part
        _nonempty(parts, "pass more --data or a smaller repair_pool")
        return AuditSplit(reference, test, pool_part, True, seed, notes)
    if like + pool >= 1:
        raise InputError(f"train_like + repair_pool must leave a test share, got {like} + "
                         f"{pool} >= 1")
    reference, pool_part, test = stratified_split(
        data, [like, pool, 1.0 - like - pool], seed=seed, names=("reference", "pool", "test"))
    notes = ("no --train-data: the train-like reference is a held-out share of --data, so "
             "per-label 'train' accuracy is held-out accuracy too and over-fitting (train above "
             "test) cannot be measured; pass --train-data to measure it",)
    parts = {"reference": reference, "test": test}
    if pool > 0:
        parts["pool"] = pool_part
    _nonempty(parts,
              "pass more data (at least a few samples per class)")
    return AuditSplit(reference, test, pool_part, False, seed, notes)
