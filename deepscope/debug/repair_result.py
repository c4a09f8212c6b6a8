"""What :func:`deepscope.debug.repair` returns: :class:`RepairRound` per round and the
:class:`RepairResult`, with ``to_dict()`` and ``save`` / ``load``.

``RepairResult.save(path)`` writes one ``.npz`` (:mod:`deepscope.protocol`): the summary and the
history in the header, the selected pool indices and the **repaired weights** (the state dict,
one array per entry) as arrays. ``RepairResult.load(path, model)`` takes a model of the same
architecture (e.g. the buggy model that was repaired), deep-copies it and loads the repaired
weights into the copy; ``model`` itself is not modified.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from deepscope._jsonable import to_jsonable
from deepscope.errors import InputError
from deepscope.protocol import Persistent

__all__ = ["RepairResult", "RepairRound"]

_WEIGHT = "weight:"


@dataclass(frozen=True)
class RepairRound:
    """One round of repair (round 0 is the model before repair)."""

    round: int
    samples_used: int
    model_acc: float
    label_acc: float
    seconds: float
    selection_seconds: float
    train_seconds: float
    test_model_acc: float | None = None
    test_label_acc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class RepairResult(Persistent):
    """The repaired model (a copy) and how repair went."""

    _format = "repair-result"

    model: nn.Module
    history: tuple[RepairRound, ...]
    label: int
    kind: str
    strategy: str
    budget: int
    target: float
    fixed: bool
    samples_used: int
    samples_to_fix: int | None
    analysis_seconds: float
    selection_seconds: float
    train_seconds: float
    selected: np.ndarray
    analysis: dict[str, Any]

    @property
    def cost_ratio(self) -> float:
        """(analysis + selection seconds) / fine-tuning seconds."""
        return (self.analysis_seconds + self.selection_seconds) / max(self.train_seconds, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary (without the model and the selected indices)."""
        return to_jsonable({
            "label": self.label, "kind": self.kind, "strategy": self.strategy,
            "budget": self.budget, "target": self.target, "fixed": self.fixed,
            "samples_used": self.samples_used, "samples_to_fix": self.samples_to_fix,
            "analysis_seconds": self.analysis_seconds,
            "selection_seconds": self.selection_seconds,
            "train_seconds": self.train_seconds, "cost_ratio": self.cost_ratio,
            "history": [r.to_dict() for r in self.history], "analysis": self.analysis})

    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        meta = self.to_dict()
        meta.pop("cost_ratio")
        arrays: dict[str, Any] = {_WEIGHT + k: v for k, v in self.model.state_dict().items()}
        arrays["selected"] = np.asarray(self.selected, dtype=np.int64)
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                    model: nn.Module | None = None) -> RepairResult:
        if not isinstance(model, nn.Module):
            raise InputError("RepairResult.load(path, model) needs a model of the repaired "
                             "architecture (e.g. the buggy model) to load the weights into")
        weights = {k[len(_WEIGHT):]: torch.from_numpy(v) for k, v in arrays.items()
                   if k.startswith(_WEIGHT)}
        repaired = copy.deepcopy(model)
        try:
            repaired.load_state_dict(weights)
        except RuntimeError as exc:
            raise InputError("the saved repaired weights do not fit this model: "
                             f"{str(exc).splitlines()[0]}") from None
        repaired.eval()  # a repair result's model is handed back in eval mode, as repair does
        names = {f.name for f in fields(cls)} - {"model", "history", "selected"}
        kw = {k: meta[k] for k in names}
        return cls(model=repaired, history=tuple(RepairRound(**r) for r in meta["history"]),
                   selected=arrays["selected"], **kw)
