"""What an audit works on: the user's model, their held-out data cut into roles, and where
train-like data comes from.

:func:`prepare` takes a loaded model (:class:`deepscope.models.external.LoadedModel`, or any
object with its attributes: ``module``, ``kind``, ``input_shape``, ``num_classes``,
``class_names``, ``checkpoint``, ``differentiable``, ``path``) and the held-out data, and cuts
the data into roles with :func:`deepscope.data.audit_split` after
:func:`deepscope.models.check_held_out` has left the model's known training samples out of it:

* ``data``: all held-out samples (the model card's accuracy); ``test``: every reported accuracy,
  attack, detection and explanation (all of ``data`` when training data is known, else 40 %);
* ``train`` (train-like reference): ``--train-data``, else the training data a deepscope
  checkpoint records (reproduced and checked with :func:`deepscope.debug.heldout_split`), else
  30 % of ``data`` — then over-fitting cannot be seen;
* ``pool``: 30 % of the training data (else of ``data``), minus 20 % held out as
  ``validation`` (repair's per-round measure and the detectors' calibration).

:attr:`AuditInputs.warning` joins the sentences that say which numbers may be optimistic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from deepscope import data as ds_data
from deepscope.data import Dataset, audit_split, stratified_split, stratified_subset
from deepscope.errors import InputError
from deepscope.models import check_held_out, zoo
from deepscope.models.provenance import data_fingerprint, weights_fingerprint

__all__ = ["AuditInputs", "prepare"]

#: Train-like reference share of --data when no training data is known, and repair-pool share
#: (of the training data, else of --data): :func:`deepscope.data.audit_split`'s rule.
REFERENCE_FRACTION, POOL_FRACTION = 0.3, 0.3
#: Share of the pool held out as repair's validation part and the detectors' calibration set.
VALIDATION_FRACTION = 0.2
#: Fewest held-out samples an audit runs on.
MIN_SAMPLES = 20


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
        Too few samples for the roles, class counts that differ from the model's, or held-out
        data that is the model's training set.
    """
    module = unrolled(loaded.module, data.x)
    classes = tuple(getattr(loaded, "class_names", None) or data.classes)
    _check_compatible(data, classes, "--data")
    if train is not None:
        _check_compatible(train, classes, "--train-data")
    data = stratified_subset(data, max_samples, seed=seed)
    if len(data) < MIN_SAMPLES:
        raise InputError(f"--data has {len(data)} samples; an audit needs at least "
                         f"{MIN_SAMPLES} (more than 500 for stable per-label numbers)")
    source = "--train-data"
    if train is None:
        train = _recorded_training_data(loaded, seed)
        source = "checkpoint record"
    ckpt = getattr(loaded, "checkpoint", None)
    held = check_held_out(data, train_data=train,
                          training_data=getattr(ckpt, "training_data", None))
    roles = audit_split(held.test, train_data=train, seed=seed, max_samples=max_samples,
                        train_like=REFERENCE_FRACTION, repair_pool=POOL_FRACTION)
    if not roles.reference_is_training:
        source = "reference part of --data"
    pool, validation = stratified_split(roles.pool, (1 - VALIDATION_FRACTION,
                                                     VALIDATION_FRACTION),
                                        seed=seed, names=("pool", "validation"))
    notes = [n.rstrip(".") for n in (*held.notes, *roles.notes)]
    key = weights_fingerprint(module)[:16] + "-" + data_fingerprint(held.test)[:16]
    return AuditInputs(model=module, loaded=loaded, classes=classes, data=held.test,
                       test=roles.test, validation=validation, pool=pool,
                       train=roles.reference, train_source=source,
                       warning="; ".join(notes) or None, key=key)
