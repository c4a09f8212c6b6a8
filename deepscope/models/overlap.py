"""Held out means held out: keep a model's own training samples out of the test data.

:func:`check_held_out` compares the user's test data (``--data``) with what is known about the
model's training data, by content (:func:`deepscope.models.provenance.sample_ids`: the sha256
of each sample's input and label, so order and file format do not matter):

- with ``train_data`` (``--train-data``), test samples that are also training samples are left
  out of the test data, and counted;
- with the checkpoint's record (:class:`~deepscope.models.provenance.TrainingData`), test data
  whose fingerprint is the recorded training set's is refused, and ``train_data`` other than
  the recorded set is noted;
- with neither, nothing can be verified, and the notes say which numbers may be optimistic.

Run it before :func:`deepscope.data.audit_split`, on the data that split will cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deepscope.data.dataset import Dataset
from deepscope.errors import InputError
from deepscope.models.provenance import TrainingData, data_fingerprint, sample_ids

__all__ = ["HeldOutCheck", "check_held_out"]

UNVERIFIED = ("nothing says what the model was trained on, so whether --data is held out "
              "cannot be checked: if it overlaps the training data, accuracy, per-label "
              "accuracy and the under-fitting diagnosis are optimistic; pass --train-data to "
              "check")


@dataclass(frozen=True)
class HeldOutCheck:
    """The outcome of :func:`check_held_out`.

    Attributes
    ----------
    test : Dataset
        The test data with every known training sample left out.
    removed : int
        How many samples of ``--data`` were training samples.
    verified : bool
        True when the test data was checked against the training data (``train_data`` given).
    notes : tuple of str
        Sentences for the report: what was removed, what could not be checked.
    """

    test: Dataset
    removed: int
    verified: bool
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary (test size, removed count, verified, notes)."""
        return {"n_test": len(self.test), "removed": self.removed, "verified": self.verified,
                "notes": list(self.notes)}


def check_held_out(
    test: Dataset,
    *,
    train_data: Dataset | None = None,
    training_data: TrainingData | None = None,
) -> HeldOutCheck:
    """Leave the model's own training samples out of ``test`` and say what is known.

    Parameters
    ----------
    test : Dataset
        The held-out data of the audit (``--data``).
    train_data : Dataset, optional
        What the model was trained on (``--train-data``).
    training_data : TrainingData, optional
        The record of a deepscope checkpoint (``LoadedModel.checkpoint.training_data``).

    Returns
    -------
    HeldOutCheck

    Raises
    ------
    InputError
        ``test`` is the recorded training set, or every test sample is in ``train_data``.
    """
    if not isinstance(test, Dataset) or (train_data is not None
                                         and not isinstance(train_data, Dataset)):
        raise InputError("test and train_data must be deepscope Datasets (see load_data)")
    notes: list[str] = []
    if training_data is not None:
        if data_fingerprint(test) == training_data.fingerprint:
            raise InputError(
                f"--data is exactly the model's training set ({training_data.describe()}, by "
                "its checkpoint's fingerprint); pass held-out data as --data and this as "
                "--train-data")
        if train_data is not None and data_fingerprint(train_data) != training_data.fingerprint:
            notes.append(f"--train-data ({len(train_data)} samples) is not the training set the "
                         f"checkpoint records ({training_data.describe()})")
    if train_data is None:
        if training_data is None:
            notes.append(UNVERIFIED)
        else:
            notes.append(f"the checkpoint records its training set ({training_data.describe()})"
                         " but not sample by sample: --data is not that set, yet may share "
                         "samples with it; pass --train-data to check")
        return HeldOutCheck(test, 0, False, tuple(notes))
    seen = np.isin(sample_ids(test), sample_ids(train_data))
    removed = int(seen.sum())
    if removed == len(test):
        raise InputError(f"all {len(test)} samples of --data are also in --train-data; pass "
                         "held-out data as --data")
    if removed:
        test = test.subset(torch.from_numpy(~seen))
        notes.append(f"{removed} of {len(seen)} samples of --data are also in --train-data "
                     f"and were left out of the test data ({len(test)} remain)")
    return HeldOutCheck(test, removed, True, tuple(notes))
