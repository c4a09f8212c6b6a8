"""One explained sequence decision: a tagger's byte from its window, or a text model's sentence.

Used by ``deepscope explain --dataset function-starts|sst2`` and the demo report; the views are
drawn by :mod:`deepscope.report.sequence_views`.

* **Bytes** (a per-position tagger, LEMNA's setting): the decision at position ``p`` of a
  200-byte window is explained from the ``width``-byte window around ``p`` (41 as LEMNA, cut at
  the edges); the rest of the row is held fixed, the features are the window's bytes and the
  fill is 0 (a nullified byte).
* **Words** (a text classifier): the features are the sentence's tokens (padding left out),
  fill 0 (the padding token).

The explainer is any registered black box (``dmm-men``, ``lime``, ``kernel-shap``, ``random``)
on a :class:`deepscope.explain.SequenceSpace` whose features are the window's (or sentence's)
positions of the whole row, with :func:`deepscope.explain.tagger_proba` (the tagger read at
``p``) or :func:`deepscope.explain.model_proba` as the black box, given ``budget`` model
queries per explanation through its own sample-count parameter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from deepscope import explain
from deepscope._persist import subarrays
from deepscope.errors import InputError
from deepscope.explain import Explanation
from deepscope.protocol import Persistent

__all__ = ["SequenceExplanation", "budget_params", "explain_position", "explain_sentence",
           "window_bounds"]

KINDS = ("bytes", "words")
#: the sample-count parameter of each explainer, by its name in the constructor (the first
#: one it takes; ``n_local``: perturbations per input of the global DMM-MEN)
_BUDGET_NAMES = ("n_samples", "num_samples", "nsamples", "n_local")


@dataclass(frozen=True, eq=False)
class SequenceExplanation(Persistent):
    """One explained decision of a sequence model, with what the views need.

    Attributes
    ----------
    kind : {"bytes", "words"}
    explanation : Explanation
        One sample; feature ``j`` is ``ids[j]``.
    ids : ndarray
        The explained window (bytes, value + 1) or sentence (token ids), int64.
    tokens : tuple of str
        The sentence's words (``kind == "words"``), empty for bytes.
    position : int or None
        Index in ``ids`` of the explained byte (bytes), ``None`` for sentences.
    offset : int
        Where ``ids`` starts in the model's input row.
    target : int
        The explained class.
    proba : float
        The model's probability of ``target`` for this decision.
    label : int or None
        The true label of the decision, when known.
    seconds : float
        Time of the explanation.
    """

    _format: ClassVar[str] = "sequence-explanation"

    kind: str
    explanation: Explanation
    ids: np.ndarray
    tokens: tuple[str, ...]
    position: int | None
    offset: int
    target: int
    proba: float
    label: int | None
    seconds: float

    @property
    def attributions(self) -> np.ndarray:
        """The attribution of each of :attr:`ids`."""
        return np.asarray(self.explanation.attributions[0], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary."""
        return {"kind": self.kind, "method": self.explanation.method, "target": self.target,
                "proba": self.proba, "label": self.label, "position": self.position,
                "offset": self.offset, "ids": self.ids.tolist(), "tokens": list(self.tokens),
                "attributions": self.attributions.tolist(), "seconds": self.seconds}

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        e_meta, e_arrays = self.explanation._get_state()
        meta = {"kind": self.kind, "tokens": list(self.tokens), "position": self.position,
                "offset": self.offset, "target": self.target, "proba": self.proba,
                "label": self.label, "seconds": self.seconds, "explanation": e_meta}
        return meta, {"ids": self.ids, **{f"explanation/{k}": v for k, v in e_arrays.items()}}

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]
                    ) -> SequenceExplanation:
        expl = Explanation._from_state(meta["explanation"], subarrays(arrays, "explanation/"))
        return cls(kind=str(meta["kind"]), explanation=expl, ids=arrays["ids"],
                   tokens=tuple(meta["tokens"]), position=meta["position"],
                   offset=int(meta["offset"]), target=int(meta["target"]),
                   proba=float(meta["proba"]), label=meta["label"],
                   seconds=float(meta["seconds"]))


def budget_params(method: str, budget: int | None) -> dict[str, Any]:
    """``{"<its sample-count parameter>": budget}`` for explainer ``method`` (empty when it has
    none, e.g. ``random``, or when ``budget`` is ``None``)."""
    names = explain.EXPLAINERS.get(method).param_names()
    key = next((n for n in _BUDGET_NAMES if n in names), None)
    if key is None or budget is None:
        return {}
    # the global DMM-MEN queries the input itself plus n_local perturbations of it
    return {key: int(budget) - 1 if key == "n_local" else int(budget)}


def window_bounds(position: int, length: int, width: int) -> tuple[int, int]:
    """``[lo, hi)`` of the ``width``-byte window centred on ``position`` in a row of
    ``length``, cut at the row's edges."""
    half = width // 2
    return max(position - half, 0), min(position + half + 1, length)


def _fit_explain(method: str, row: np.ndarray, space: explain.SequenceSpace,
                 proba: Callable[[np.ndarray], np.ndarray], target: int, *,
                 budget: int | None, seed: int, progress: bool) -> Explanation:
    """``method`` on the features of ``space`` (a window of ``row``; the rest held fixed)."""
    params = budget_params(method, budget)
    if "progress" in explain.EXPLAINERS.get(method).param_names():
        params["progress"] = progress
    ex = explain.get(method, space=space, seed=seed, **params)
    return ex.fit(row[None], proba, target=target).explain(row[None])


def _row(x: Any) -> np.ndarray:
    row = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if row.ndim != 1 or row.dtype != np.int64:
        raise InputError(f"the explained row must be int64 ids (1-D), got {row.dtype} "
                         f"{row.shape}")
    return row


def explain_position(model: torch.nn.Module, row: Any, position: int, *,
                     method: str = "dmm-men", target: int | None = None, width: int = 41,
                     budget: int | None = 500, label: int | None = None, seed: int = 0,
                     progress: bool = False) -> SequenceExplanation:
    """Explain a tagger's decision at ``position`` of ``row`` from the window around it.

    Parameters
    ----------
    model : torch.nn.Module
        A tagger (int64 N×T → N×T×K logits).
    row : array-like
        One int64 input row (T ids).
    position : int
        The explained byte.
    method : str
        Explainer registry name.
    target : int, optional
        The explained class; default the model's decision there.
    width : int
        Window width (LEMNA: 41).
    budget : int, optional
        Model queries per explanation (the explainer's sample count).
    label : int, optional
        The true label at ``position``, recorded.
    seed : int
    progress : bool
    """
    row = _row(row)
    if not 0 <= position < len(row) or row[position] == 0:
        raise InputError(f"--position must be a non-padding byte of the window, in 0.."
                         f"{len(row) - 1}; got {position}")
    lo, hi = window_bounds(position, len(row), width)
    proba = explain.tagger_proba(model, position, batch_size=1024)
    p = proba(row[None])[0]
    target = int(np.argmax(p)) if target is None else int(target)
    start = time.perf_counter()
    space = explain.SequenceSpace(fill=0, window=(lo, hi))
    expl = _fit_explain(method, row, space, proba, target, budget=budget, seed=seed,
                        progress=progress)
    return SequenceExplanation(kind="bytes", explanation=expl, ids=row[lo:hi].copy(), tokens=(),
                               position=position - lo, offset=lo, target=target,
                               proba=float(p[target]), label=label,
                               seconds=time.perf_counter() - start)


def explain_sentence(model: torch.nn.Module, row: Any, vocabulary: Sequence[str], *,
                     method: str = "dmm-men", target: int | None = None,
                     budget: int | None = 500, label: int | None = None, seed: int = 0,
                     progress: bool = False) -> SequenceExplanation:
    """Explain a text classifier's decision on one sentence; the features are its tokens.

    ``vocabulary[i]`` is the token of id ``i``; the other parameters are as in
    :func:`explain_position`.
    """
    row = _row(row)
    length = int(np.count_nonzero(row))
    if length == 0 or (row[:length] == 0).any():
        raise InputError("the sentence must be token ids followed by padding (0), and not empty")

    proba = explain.model_proba(model, batch_size=1024)
    p = proba(row[None])[0]
    target = int(np.argmax(p)) if target is None else int(target)
    start = time.perf_counter()
    space = explain.SequenceSpace(fill=0, window=(0, length))
    expl = _fit_explain(method, row, space, proba, target, budget=budget, seed=seed,
                        progress=progress)
    sentence = row[:length].copy()
    return SequenceExplanation(kind="words", explanation=expl, ids=sentence,
                               tokens=tuple(vocabulary[int(i)] for i in sentence),
                               position=None, offset=0, target=target, proba=float(p[target]),
                               label=label, seconds=time.perf_counter() - start)
