"""What an audit works on: the user's model, their held-out data cut into roles, and where
train-like data comes from.

:func:`prepare` takes a loaded model (:class:`deepscope.models.external.LoadedModel`, or any
object with its attributes: ``module``, ``kind``, ``input_shape``, ``num_classes``,
``class_names``, ``checkpoint``, ``differentiable``, ``path``) and the held-out data, and cuts
the data by a seeded, stratified split into the roles the techniques need:

* ``test`` (40 %): accuracies, diagnosis, attacks, detection, explanations;
* ``validation`` (10 %): repair's per-round label accuracy and the detectors' calibration;
* ``pool`` (50 %): the inputs repair selects from.

Train-like data for the under/over-fitting diagnosis is, in this order: ``train`` (the user's
``--train-data``), the training data a deepscope checkpoint records (reproduced and checked
with :func:`deepscope.debug.heldout_split`), or else a 30 % *reference* part cut from the
held-out data first — then over-fitting cannot be seen, and :attr:`AuditInputs.warning` says
which numbers may be optimistic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from deepscope import data as ds_data
from deepscope.data import Dataset, stratified_split, stratified_subset
from deepscope.errors import InputError
from deepscope.models import zoo
from deepscope.models.provenance import data_fingerprint, sample_ids, weights_fingerprint

__all__ = ["AuditInputs", "prepare"]

#: Shares of the held-out data: test, validation, pool.
ROLE_FRACTIONS = (0.4, 0.1, 0.5)
#: Share of the held-out data cut off as train-like reference when no training data is known.
REFERENCE_FRACTION = 0.3


@dataclass(frozen=True, eq=False)
class AuditInputs:
    """The model and the data roles of one audit.

    Attributes
    ----------
    model : torch.nn.Module
        The classifier (never modified; repair fine-tunes copies).
    loaded : object
        The loaded model record (kind, path, checkpoint ...).
    classes : tuple of str
    data : Dataset
        All held-out data (after ``max_samples``): the model card's accuracy.
    test, validation, pool : Dataset
        The held-out roles.
    train : Dataset or None
        Train-like data (``train_source`` says where it came from).
    train_source : str
        ``"--train-data"``, ``"checkpoint record"``, ``"reference part of --data"`` or
        ``"none"``.
    warning : str or None
        Which numbers may be optimistic, and why.
    key : str
        Fingerprint of the weights and the data (the cache key's base).
    """

    model: torch.nn.Module
    loaded: Any
    classes: tuple[str, ...]
    data: Dataset
    test: Dataset
    validation: Dataset
    pool: Dataset
    train: Dataset | None
    train_source: str
    warning: str | None
    key: str

    @property
    def differentiable(self) -> bool:
        """Whether gradient attacks can run on the model."""
        return bool(getattr(self.loaded, "differentiable", True))

    @property
    def is_image(self) -> bool:
        """Images (N×C×H×W floats) rather than token sequences or feature vectors."""
        return self.data.modality == "image" and self.data.x.dim() == 4

    def model_dict(self) -> dict[str, Any]:
        """Plain-type identity of the model (for the card and ``summary.json``)."""
        loaded = self.loaded
        base = loaded.to_dict() if hasattr(loaded, "to_dict") else {}
        ckpt = getattr(loaded, "checkpoint", None)
        return {**base, "kind": getattr(loaded, "kind", "module"),
                "path": str(getattr(loaded, "path", "")),
                "architecture": getattr(ckpt, "arch", None) or type(self.model).__name__,
                "parameters": zoo.count_parameters(self.model),
                "input_shape": list(self.data.x.shape[1:]), "classes": list(self.classes),
                "differentiable": self.differentiable}

    def data_dict(self) -> dict[str, Any]:
        """Plain-type description of the data roles."""
        return {"n": len(self.data), "name": self.data.name,
                "roles": {"test": len(self.test), "validation": len(self.validation),
                          "pool": len(self.pool),
                          "train-like": 0 if self.train is None else len(self.train)},
                "train_source": self.train_source, "warning": self.warning}


def _recorded_training_data(loaded: Any, seed: int) -> Dataset | None:
    """The training data a deepscope checkpoint records, reproduced and checked, or None."""
    ckpt = getattr(loaded, "checkpoint", None)
    td = getattr(ckpt, "training_data", None)
    if td is None or td.protocol == "custom":
        return None
    from deepscope.debug import heldout_split

    held = heldout_split(td, lambda split: ds_data.load(td.dataset, split, progress=False),
                         dataset=td.dataset, seed=None)
    return held.train


class ScriptChain(torch.nn.Sequential):
    """An eager chain of TorchScript blocks whose deep copy re-loads each block (a plain
    ``copy.deepcopy`` of a scripted module gives parameters that are not leaves, which no
    optimiser accepts; repair fine-tunes deep copies)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> ScriptChain:
        import io
        from collections import OrderedDict

        blocks = []
        for name, child in self.named_children():
            buf = io.BytesIO()
            torch.jit.save(child, buf)
            buf.seek(0)
            device = next(iter(child.parameters()), torch.empty(0)).device
            blocks.append((name, torch.jit.load(buf, map_location=device)))
        copy = ScriptChain(OrderedDict(blocks))
        copy.training = self.training
        return copy


def unrolled(module: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """A TorchScript model as an eager ``nn.Sequential`` of its (scripted) children, when that
    gives the same logits on ``x``; otherwise the model itself.

    Compiled modules cannot be cut at a layer (``get_submodule`` and hooks are not supported on
    them), which MODE's feature models need. Most exported classifiers are a chain of blocks;
    the chain is checked numerically on real inputs before it stands in for the model.
    """
    if not isinstance(module, torch.jit.ScriptModule):
        return module
    children = list(module.named_children())
    if len(children) < 2:
        return module
    from collections import OrderedDict

    chain = ScriptChain(OrderedDict(children))
    chain.training = module.training
    sample = x[:64]
    with torch.no_grad():
        was = module.training
        module.eval()
        try:
            same = torch.allclose(chain(sample), module(sample), rtol=1e-4, atol=1e-5)
        except (RuntimeError, TypeError):
            same = False
        finally:
            module.train(was)
    return chain if same else module


def _check_compatible(data: Dataset, classes: tuple[str, ...], what: str) -> None:
    if data.num_classes != len(classes):
        raise InputError(f"{what} has {data.num_classes} classes but the model has "
                         f"{len(classes)}; pass data with the model's classes")


def prepare(loaded: Any, data: Dataset, *, train: Dataset | None = None,
            max_samples: int | None = None, seed: int = 0) -> AuditInputs:
    """Cut ``data`` into the audit's roles and find train-like data (see the module docstring).

    Parameters
    ----------
    loaded : LoadedModel
        The model to audit.
    data : Dataset
        Held-out data (the model did not train on it).
    train : Dataset, optional
        What the model was trained on (``--train-data``).
    max_samples : int, optional
        Cap on the held-out data and on the training data (seeded, stratified).
    seed : int
        Seed of every split.

    Raises
    ------
    InputError
        Too few samples for the roles, or class counts that differ from the model's.
    """
    module = unrolled(loaded.module, data.x)
    classes = tuple(getattr(loaded, "class_names", None) or data.classes)
    _check_compatible(data, classes, "--data")
    data = stratified_subset(data, max_samples, seed=seed)
    if len(data) < 20:
        raise InputError(f"--data has {len(data)} samples; an audit needs at least 20 "
                         "(more than 500 for stable per-label numbers)")
    warning = None
    source = "none"
    if train is not None:
        _check_compatible(train, classes, "--train-data")
        train = stratified_subset(train, max_samples, seed=seed)
        source = "--train-data"
        warning = _overlap(train, data) if _same_shape(train, data) else None
    else:
        train = _recorded_training_data(loaded, seed)
        if train is not None:
            source = "checkpoint record"
            train = stratified_subset(train, max_samples, seed=seed)
    held = data
    if train is None:
        train, held = stratified_split(data, (REFERENCE_FRACTION, 1 - REFERENCE_FRACTION),
                                       seed=seed, names=("reference", "heldout"))
        source = "reference part of --data"
        warning = ("no training data was given (--train-data) or recorded in the checkpoint: "
                   "the diagnosis' 'train' accuracies are measured on a held-out reference part, "
                   "so over-fitting cannot be detected; and if --data overlaps what the model "
                   "was trained on, every accuracy in this report is optimistic")
    test, validation, pool = stratified_split(held, ROLE_FRACTIONS, seed=seed,
                                              names=("test", "validation", "pool"))
    key = weights_fingerprint(module)[:16] + "-" + data_fingerprint(data)[:16]
    return AuditInputs(model=module, loaded=loaded, classes=classes, data=data, test=test,
                       validation=validation, pool=pool, train=train, train_source=source,
                       warning=warning, key=key)


def _same_shape(a: Dataset, b: Dataset) -> bool:
    return tuple(a.x.shape[1:]) == tuple(b.x.shape[1:])


def _overlap(train: Dataset, data: Dataset) -> str | None:
    """A sentence when samples of ``data`` also occur in ``train`` (by content)."""
    seen = set(sample_ids(train).tolist())
    shared = sum(1 for sid in sample_ids(data).tolist() if sid in seen)
    if not shared:
        return None
    return (f"{shared} of {len(data)} samples of --data also occur in --train-data: held-out "
            "accuracies are optimistic; pass data the model did not train on")
