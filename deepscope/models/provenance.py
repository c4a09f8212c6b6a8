"""What a model was trained on, and which weights a fitted object belongs to.

:class:`TrainingData` is the provenance a checkpoint records (``metadata["training_data"]``):
the dataset, the split protocol (the official ``train`` split, or the ``train`` part of the MODE
split with its seed), the ``--limit`` slice, the number of training samples and a content
fingerprint of exactly those samples, plus how validation data was held out. It holds plain
types only, so checkpoints stay loadable with ``torch.load(..., weights_only=True)``.

Samples are identified by content, not by position: a sample's id is the sha256 of its image
(float32 bytes, shape) and its label, so the fingerprint does not depend on how a dataset was
loaded or ordered, and the same image in two splits is recognised as the same sample.
:func:`sample_ids` exposes the ids, so any two datasets can be checked for overlap.

:func:`weights_fingerprint` hashes a model's ``state_dict`` (names, dtypes, shapes and bytes, in
name order, on the CPU): saved detectors record it and refuse a model with other weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from deepscope.data.dataset import Dataset
from deepscope.data.splits import (
    ModeSplit,
    group_split,
    mode_split,
    stratified_subset,
    train_val_split,
)
from deepscope.errors import CheckpointError, InputError

__all__ = [
    "METADATA_KEY",
    "PROTOCOLS",
    "TrainingData",
    "TrainingSplit",
    "data_fingerprint",
    "overlap_warning",
    "sample_ids",
    "training_split",
    "weights_fingerprint",
]

#: Key of the provenance in a checkpoint's metadata.
METADATA_KEY = "training_data"
#: ``"official"``: the dataset's own train split; ``"mode"``: the train part of
#: ``data.mode_split(load(D, "all"), seed)``; ``"custom"``: anything else (not reproducible).
PROTOCOLS = ("official", "mode", "custom")


def sample_ids(ds: Dataset) -> np.ndarray:
    """One content id per sample: sha256 hex of the input (float32 bytes + shape) and label(s).

    Returns
    -------
    numpy.ndarray
        ``len(ds)`` strings of 64 hex digits, in the dataset's order.
    """
    if not isinstance(ds, Dataset):
        raise InputError(f"ds must be a deepscope Dataset, got {type(ds).__name__}")
    x = np.ascontiguousarray(ds.x.detach().cpu().numpy(), dtype=np.float32)
    y = ds.y.detach().cpu().numpy().astype(np.int64)
    shape = repr(tuple(x.shape[1:])).encode()
    ids = []
    for i in range(len(x)):
        h = hashlib.sha256(shape)
        h.update(x[i].tobytes())
        # per-position labels (N×T, taggers): the whole label row
        h.update(y[i].tobytes() if y.ndim == 2 else int(y[i]).to_bytes(8, "little", signed=True))
        ids.append(h.hexdigest())
    return np.array(ids, dtype="<U64")


def data_fingerprint(ds: Dataset) -> str:
    """sha256 over the sorted :func:`sample_ids`: the same set of samples, in any order,
    gives the same fingerprint."""
    h = hashlib.sha256()
    for sid in np.sort(sample_ids(ds)):
        h.update(sid.encode())
    return h.hexdigest()


@dataclass(frozen=True)
class TrainingData:
    """Which data a model was trained on (recorded in checkpoints; plain types only).

    Attributes
    ----------
    dataset : str
        Dataset name (``data.names()``) or a user label.
    protocol : {"official", "mode", "custom"}
        How the training set was cut (see :data:`PROTOCOLS`).
    split : str
        Name of the part trained on: ``"train"`` (official) or ``"mode-train"``.
    seed : int
        Seed of the ``limit`` slice and of the split (MODE split, validation split).
    limit : int or None
        The stratified slice taken before splitting (``--limit``), None for all samples.
    n_samples : int
        Samples the model was fitted on (validation excluded).
    fingerprint : str
        :func:`data_fingerprint` of those samples.
    validation : str
        Where early-stopping data came from: ``"none"``, ``"train-split"`` (a stratified
        ``val_fraction`` share of the training split), ``"group-split"`` (whole groups of a
        per-position training split, e.g. libraries of ``function-starts``:
        ``data.group_split``) or ``"mode-validation"``.
    val_fraction : float
        Share of the training split held out for validation (0 when none or MODE's part).
    bug : dict or None
        An injected bug (``{"kind", "label", "keep", "seed"}``, see :mod:`deepscope.models.bugs`)
        applied to the cut training set before fitting; None for none.
    """

    dataset: str
    protocol: str
    split: str
    seed: int
    limit: int | None
    n_samples: int
    fingerprint: str
    validation: str = "none"
    val_fraction: float = 0.0
    bug: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InputError(f"protocol must be one of {', '.join(PROTOCOLS)}, got "
                             f"{self.protocol!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 1):
            raise InputError(f"limit must be a positive int or None, got {self.limit!r}")

    @classmethod
    def of(cls, train: Dataset, *, dataset: str, protocol: str, seed: int,
           limit: int | None = None, validation: str = "none", val_fraction: float = 0.0,
           bug: Mapping[str, Any] | None = None) -> TrainingData:
        """Describe ``train`` (the samples actually fitted on) and how it was obtained."""
        split = {"official": "train", "mode": "mode-train"}.get(protocol, train.split)
        return cls(dataset=str(dataset), protocol=protocol, split=split, seed=int(seed),
                   limit=None if limit is None else int(limit), n_samples=len(train),
                   fingerprint=data_fingerprint(train), validation=str(validation),
                   val_fraction=float(val_fraction), bug=None if bug is None else dict(bug))

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict (what checkpoints store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingData:
        """Inverse of :meth:`to_dict`; a malformed entry raises :class:`CheckpointError`."""
        try:
            return cls(dataset=str(d["dataset"]), protocol=str(d["protocol"]),
                       split=str(d["split"]), seed=int(d["seed"]),
                       limit=None if d.get("limit") is None else int(d["limit"]),
                       n_samples=int(d["n_samples"]), fingerprint=str(d["fingerprint"]),
                       validation=str(d.get("validation", "none")),
                       val_fraction=float(d.get("val_fraction", 0.0)),
                       bug=None if d.get("bug") is None else dict(d["bug"]))
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise CheckpointError(f"the checkpoint's {METADATA_KEY!r} entry is malformed "
                                  f"({type(exc).__name__}: {exc})") from None

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TrainingData | None:
        """The provenance stored in checkpoint ``metadata``, or None (older checkpoints)."""
        entry = metadata.get(METADATA_KEY)
        if entry is None:
            return None
        if not isinstance(entry, Mapping):
            raise CheckpointError(f"the checkpoint's {METADATA_KEY!r} entry is not a dict")
        return cls.from_dict(entry)

    def describe(self) -> str:
        """One line, e.g. ``"the MODE train part of mnist (seed 0, 900 samples)"``."""
        what = {"official": f"the official train split of {self.dataset}",
                "mode": f"the MODE train part of {self.dataset}"}.get(
                    self.protocol, f"{self.split!r} of {self.dataset}")
        limit = f", --limit {self.limit}" if self.limit is not None else ""
        bug = (f", injected {self.bug['kind']} bug on label {self.bug['label']}"
               if self.bug else "")
        return f"{what} (seed {self.seed}{limit}{bug}, {self.n_samples} samples)"


@dataclass(frozen=True)
class TrainingSplit:
    """The data of one training run: what to fit on, early-stop on and test on, and its record.

    ``mode`` is the whole MODE split on the ``"mode"`` protocol (its pool and validation parts
    are what MODE repair may use), None on the official one.
    """

    train: Dataset
    validation: Dataset | None
    test: Dataset
    record: TrainingData
    mode: ModeSplit | None = None


def training_split(load: Callable[[str], Dataset], *, dataset: str, protocol: str = "official",
                   seed: int = 0, limit: int | None = None, val_fraction: float = 0.1,
                   bug: Mapping[str, Any] | None = None) -> TrainingSplit:
    """Cut the training data as ``deepscope train`` does, and record how (one place for both).

    Parameters
    ----------
    load : callable
        ``load(split)`` returns the dataset's ``"train"``, ``"test"`` or ``"all"`` split
        (e.g. ``lambda s: data.load("mnist", s)``).
    dataset : str
        The dataset's name, recorded.
    protocol : {"official", "mode"}
        ``"official"``: fit on the train split (minus a ``val_fraction`` validation share; whole
        groups for per-position data such as function-starts' libraries), test
        on the test split. ``"mode"``: ``data.mode_split`` of the ``"all"`` split with ``seed``;
        fit on its train part, early-stop on its validation part (when ``val_fraction > 0``),
        test on its test part; its pool and test parts stay unseen for MODE.
    seed : int
        Seed of the ``limit`` slice and of the splits.
    limit : int, optional
        Take a seeded, stratified slice of this many samples first (of train, or of all).
    val_fraction : float
        Validation share of the official train split; with ``"mode"`` only ``0`` (none) or not.
    bug : dict, optional
        ``{"kind": "underfit"|"overfit", "label": L, "keep": share}`` (and optionally
        ``"seed"``, default ``seed``): inject that bug (:func:`deepscope.models.bugs.get`) into
        the training set once it is cut; validation and test stay as they are.
    """
    parts = None
    if protocol == "official":
        train = stratified_subset(load("train"), limit, seed=seed)
        val = None
        validation = "none"
        if val_fraction > 0 and train.per_position and train.groups is not None:
            train, val = group_split(train, val_fraction, seed=seed)  # no library in both
            validation = "group-split"
        elif val_fraction > 0:
            train, val = train_val_split(train, val_fraction, seed=seed)
            validation = "train-split"
        test = load("test")
    elif protocol == "mode":
        parts = mode_split(stratified_subset(load("all"), limit, seed=seed), seed=seed)
        train, test = parts.train, parts.test
        val = parts.validation if val_fraction > 0 else None
        validation, val_fraction = ("mode-validation" if val is not None else "none"), 0.0
    else:
        raise InputError(f"protocol must be 'official' or 'mode', got {protocol!r}")
    recipe = None
    if bug is not None:
        train, recipe = _inject(train, bug, seed)
    record = TrainingData.of(train, dataset=dataset, protocol=protocol, seed=seed, limit=limit,
                             validation=validation,
                             val_fraction=val_fraction if val is not None else 0.0, bug=recipe)
    return TrainingSplit(train=train, validation=val, test=test, record=record, mode=parts)


def overlap_warning(record: TrainingData | None, dataset: str, split: str) -> str | None:
    """Why accuracy on ``dataset``'s ``split`` may include the model's own training samples.

    Parameters
    ----------
    record : TrainingData or None
        The checkpoint's record (None: nothing is known, nothing is said).
    dataset : str
        The evaluated dataset.
    split : {"train", "test", "all"}
        The evaluated split of it.

    Returns
    -------
    str or None
        One sentence, or None when the split is known to be unseen (or nothing is recorded).
    """
    if record is None or record.dataset != dataset or record.protocol == "custom":
        return None
    if record.protocol == "mode":
        return (f"the model was trained on the MODE train part of {dataset}'s train+test "
                f"(seed {record.seed}), which overlaps the official {split} split: this "
                f"accuracy is optimistic; `deepscope diagnose` measures the MODE test part")
    if split in ("train", "all"):
        return (f"the model was trained on {dataset}'s official train split: accuracy on "
                f"'{split}' includes its own training samples")
    return None


def _inject(train: Dataset, bug: Mapping[str, Any], seed: int
            ) -> tuple[Dataset, dict[str, Any]]:
    """Apply a bug recipe to ``train``; return the buggy set and the plain-type recipe."""
    from deepscope.models import bugs

    unknown = set(bug) - {"kind", "label", "keep", "seed"}
    if unknown or "kind" not in bug or "label" not in bug:
        raise InputError(f"a bug is {{'kind', 'label', 'keep', 'seed'}} (kind and label needed), "
                         f"got {dict(bug)!r}")
    kind = str(bug["kind"])
    if kind not in bugs.names():
        raise InputError(f"unknown bug kind {kind!r}; choose one of {', '.join(bugs.names())}")
    label, keep = bug["label"], float(bug.get("keep", 0.1))
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < train.num_classes:
        raise InputError(f"the bug's label must be an integer in 0..{train.num_classes - 1}, got "
                         f"{label!r}")
    bug_seed = int(bug.get("seed", seed))
    buggy, _ = bugs.get(kind)(train, label, keep=keep, seed=bug_seed)
    return buggy, {"kind": kind, "label": label, "keep": keep, "seed": bug_seed}


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 of ``model.state_dict()``: every entry's name, dtype, shape and bytes, by name.

    Device-independent (tensors are read on the CPU) and read-only (the model is not touched).
    Two models of one architecture with different weights or buffers get different values.
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    h = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):  # extra state of custom modules
            h.update(f"{name}:{t!r};".encode())
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
