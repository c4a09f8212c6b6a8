"""The data MODE may diagnose and repair a model on: only samples the model did not train on.

:func:`heldout_split` reads the checkpoint's :class:`~deepscope.models.TrainingData` and picks
the data accordingly:

* trained on the **MODE train part** (``deepscope train --split mode --seed S``): the same MODE
  split (same seed, same ``--limit`` slice) is cut again and checked against the recorded
  fingerprint; diagnose compares its train and test parts, repair uses all four parts. Another
  seed is refused (its test and pool parts would overlap the training data).
* trained on the **official train split** (``deepscope train``): diagnose compares the training
  set (cut again and checked) with the official test split, which the model never saw. Repair is
  refused: MODE's pool, validation and test parts are cut from train + test, so most of them
  were trained on; retrain on the MODE train part to repair.
* **no record** (older or foreign checkpoints, ``protocol="custom"``): the MODE split of the
  whole dataset with the given seed, as before, with a :attr:`HeldOut.warning` that test numbers
  may be optimistic.

``limit`` caps each evaluated part at that many samples (a seeded, stratified slice) once the
training data is reproduced; without a record it slices the whole dataset before splitting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deepscope.data import Dataset, mode_split, stratified_subset
from deepscope.errors import InputError
from deepscope.models.provenance import TrainingData, data_fingerprint, training_split

__all__ = ["PURPOSES", "HeldOut", "heldout_split"]

PURPOSES = ("diagnose", "repair")

Loader = Callable[[str], Dataset]


@dataclass(frozen=True)
class HeldOut:
    """Data for MODE that the model did not train on (see :func:`heldout_split`).

    Attributes
    ----------
    train : Dataset
        The training data (what train accuracy is measured on; repair replays it).
    test : Dataset
        Unseen samples (test accuracy).
    validation, pool : Dataset or None
        MODE's validation and pool parts (None on the official protocol, used by diagnose only).
    protocol : str
        ``"mode"``, ``"official"`` or ``"mode-unverified"`` (no record of the training data).
    seed : int
        Seed of the split.
    training_data : TrainingData or None
        The checkpoint's record.
    warning : str or None
        Set when the data cannot be shown to be unseen.
    """

    train: Dataset
    test: Dataset
    validation: Dataset | None
    pool: Dataset | None
    protocol: str
    seed: int
    training_data: TrainingData | None
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Which data was used: protocol, seed, sizes and fingerprints, the record, warning."""

        def part(ds: Dataset | None) -> dict[str, Any] | None:
            return None if ds is None else {"split": ds.split, "n": len(ds)}

        return {
            "protocol": self.protocol,
            "seed": self.seed,
            "verified_unseen": self.warning is None,
            "train": part(self.train),
            "validation": part(self.validation),
            "test": {**part(self.test), "fingerprint": data_fingerprint(self.test)},
            "pool": part(self.pool),
            "trained_on": None if self.training_data is None else self.training_data.to_dict(),
            "warning": self.warning,
        }


def _cap(ds: Dataset | None, limit: int | None, seed: int) -> Dataset | None:
    return None if ds is None else stratified_subset(ds, limit, seed=seed)


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive integer, got {limit!r}")


def heldout_split(
    training_data: TrainingData | None,
    load: Loader,
    *,
    dataset: str,
    purpose: str = "diagnose",
    seed: int | None = None,
    limit: int | None = None,
) -> HeldOut:
    """Train / test (and, for repair, validation / pool) data the model did not train on.

    Parameters
    ----------
    training_data : TrainingData or None
        The checkpoint's record (``Checkpoint.training_data``); None for older checkpoints.
    load : callable
        ``load(split)`` returns the ``"train"``, ``"test"`` or ``"all"`` split of ``dataset``.
    dataset : str
        Name of the dataset; must be the one the model was trained on when that is recorded.
    purpose : {"diagnose", "repair"}
        Repair needs MODE's pool and validation parts.
    seed : int, optional
        Seed of the split; default the recorded one (0 without a record). A seed other than the
        recorded MODE seed is refused.
    limit : int, optional
        Cap on each evaluated part (see the module docstring).

    Raises
    ------
    InputError
        Another dataset or seed than the model was trained with, repair of a model trained on
        the official split, or data that no longer matches the recorded fingerprint.
    """
    if purpose not in PURPOSES:
        raise InputError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    _check_limit(limit)
    td = training_data
    if td is None or td.protocol == "custom":
        return _unverified(td, load, seed=0 if seed is None else seed, limit=limit)
    if td.dataset != dataset:
        raise InputError(f"the model was trained on {td.dataset}, not {dataset}; pass "
                         f"--dataset {td.dataset}")
    if td.protocol == "mode" and seed is not None and seed != td.seed:
        raise InputError(f"the model was trained on the MODE train part with seed {td.seed}, so "
                         f"other seeds' test and pool parts overlap its training data; pass "
                         f"--seed {td.seed} (or leave it out)")
    if td.protocol == "official" and purpose == "repair":
        raise InputError(
            f"the model was trained on the official train split of {td.dataset}, which MODE's "
            "pool, validation and test parts overlap; to repair it, retrain it on the MODE train "
            f"part (deepscope train --split mode --seed {td.seed})")
    again = training_split(load, dataset=td.dataset, protocol=td.protocol, seed=td.seed,
                           limit=td.limit, val_fraction=td.val_fraction, bug=td.bug)
    if again.record.fingerprint != td.fingerprint:
        raise InputError(
            f"the data of {td.dataset} no longer matches the checkpoint: cutting "
            f"{td.describe()} again gives other samples (fingerprint "
            f"{again.record.fingerprint[:12]} != {td.fingerprint[:12]}); use the dataset files "
            "the model was trained on")
    eval_seed = td.seed if seed is None else seed
    pool = validation = None
    if again.mode is not None:
        pool, validation = again.mode.pool, again.mode.validation
    return HeldOut(train=_cap(again.train, limit, eval_seed), test=_cap(again.test, limit,
                   eval_seed), validation=_cap(validation, limit, eval_seed),
                   pool=_cap(pool, limit, eval_seed), protocol=td.protocol, seed=td.seed,
                   training_data=td)


def _unverified(td: TrainingData | None, load: Loader, *, seed: int, limit: int | None
                ) -> HeldOut:
    parts = mode_split(stratified_subset(load("all"), limit, seed=seed), seed=seed)
    why = ("the checkpoint does not record its training data" if td is None else
           f"the checkpoint was trained on custom data ({td.describe()})")
    warning = (f"{why}: if the model was trained on samples in the MODE test part (seed {seed}), "
               "test numbers are optimistic; train with `deepscope train --split mode` to "
               "record it")
    return HeldOut(train=parts.train, test=parts.test, validation=parts.validation,
                   pool=parts.pool, protocol="mode-unverified", seed=seed, training_data=td,
                   warning=warning)
