"""Explanations over shards: how each explainer's shard is seeded, and joining the shards.

Seeding rules (:data:`SEEDING`, by explainer name; unknown names get ``"fixed"``):

- ``"per-input"`` (LIME, KernelSHAP): the local explainer seeds sample ``i`` with ``seed + i``;
  the shard starting at input ``start`` gets ``seed + start``, so every input keeps its local
  seed and the result **equals the local run for any shard size**.
- ``"per-shard"`` (random features): one draw per call; shard ``k`` gets
  :func:`~deepscope.distributed.shards.shard_seed` ``(seed, k)``, so the result is the same
  for the same seed and shard size (not the local draw).
- DMM-MEN by mode: the local mode is ``"per-input"`` (it seeds input ``i`` with ``seed + i``),
  the global mode's explain step ``"fixed"``; both equal the local run for any shard size.
- ``"fixed"`` (DMM-MEN's global explain step, Integrated Gradients): ``explain`` is deterministic
  given the fit; shards are aligned to the explainer's ``batch_size`` so the model sees the
  local run's batches and the result is bitwise the local one.

The explainer is fitted on the driver (DMM-MEN's mixture is learned once, from the fitting
inputs) and only ``explain`` is distributed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepscope.distributed.jobs import Job, ModelFile
from deepscope.distributed.shards import shard_seed
from deepscope.distributed.store import digest
from deepscope.explain.base import BlackBox, Explainer, model_proba
from deepscope.explain.explanation import Explanation
from deepscope.registry import Registry


@dataclass(frozen=True)
class Seeding:
    """How an explainer's shard is seeded, and whether shards follow its batches."""

    rule: str
    shard_seed: Callable[[int, int, int], int] | None
    batch_aligned: bool

    def for_shard(self, explainer: Explainer, index: int, start: int) -> Explainer:
        """A shallow copy of ``explainer`` seeded for shard ``index`` starting at ``start``."""
        if self.shard_seed is None or getattr(explainer, "seed", None) is None:
            return explainer
        ex = copy.copy(explainer)
        ex.seed = self.shard_seed(int(explainer.seed), index, start)  # type: ignore[attr-defined]
        return ex


SEEDING: Registry[Seeding] = Registry("shard seeding rule")
PER_INPUT = Seeding("per-input", lambda seed, _index, start: seed + start, batch_aligned=False)
PER_SHARD = Seeding("per-shard", lambda seed, index, _start: shard_seed(seed, index),
                    batch_aligned=False)
FIXED = Seeding("fixed", None, batch_aligned=True)
SEEDING.register("lime")(PER_INPUT)
SEEDING.register("kernel-shap")(PER_INPUT)
SEEDING.register("random")(PER_SHARD)
# DMM-MEN by mode ("<name>:<mode>" keys): the local mode draws per input like LIME; the
# global mode's explain step is deterministic given the fit
SEEDING.register("dmm-men:local")(PER_INPUT)
SEEDING.register("dmm-men:global")(FIXED)


def seeding_of(explainer: Explainer) -> Seeding:
    """The seeding rule of ``explainer``: by ``"<name>:<mode>"`` when the explainer has modes
    registered apart, else by name (``FIXED`` for names without one)."""
    moded = f"{explainer.name}:{getattr(explainer, 'mode', None)}"
    if moded in SEEDING:
        return SEEDING.get(moded)
    return SEEDING.get(explainer.name) if explainer.name in SEEDING else FIXED


def _subjects(explainer: Explainer) -> tuple[str, ...]:
    return tuple(a for a in type(explainer)._subject_args if hasattr(explainer, a))


def merge_explanations(parts: list[Explanation], seconds: float) -> Explanation:
    """Join shard explanations in order (NaN-padding to the widest shard)."""
    width = max(p.n_features for p in parts)

    def padded(a: np.ndarray) -> np.ndarray:
        if a.shape[1] == width:
            return a
        return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=np.nan)

    first = parts[0]
    segments = (np.concatenate([p.segments for p in parts]) if first.per_sample_segments
                else first.segments)
    component = (None if first.component is None
                 else np.concatenate([p.component for p in parts]))  # type: ignore[misc]
    extras = {**first.extras, "explain_seconds": seconds,
              "explain_queries": int(sum(p.extras.get("explain_queries", 0) for p in parts))}
    return Explanation(method=first.method, target=first.target,
                       attributions=np.concatenate([padded(p.attributions) for p in parts]),
                       segments=segments, input_shape=first.input_shape, component=component,
                       extras=extras)


class ExplainJob(Job):
    """``explainer.explain`` over shards (the explainer is fitted already).

    Parameters
    ----------
    explainer : Explainer
        Fitted on the driver.
    model : ModelFile, optional
        When given, workers load it and query ``model_proba(model)`` (white-box explainers
        also get the model): neither the driver's model nor its black box is shipped.
    """

    kind = "explain"

    def __init__(self, explainer: Explainer, model: ModelFile | None = None) -> None:
        self.model = model
        self.seeding = seeding_of(explainer)
        self.batch_size = int(getattr(explainer, "batch_size", 1) or 1)
        self.explainer_digest = digest(explainer)
        self.black_box_digest = ("" if model is not None
                                 else digest(getattr(explainer.black_box_, "fn", None)))
        if model is not None:
            explainer = copy.copy(explainer)
            explainer.black_box_ = None  # type: ignore[assignment]
            for arg in _subjects(explainer):
                setattr(explainer, arg, None)
        self.explainer = explainer

    def align(self) -> int:
        return self.batch_size if self.seeding.batch_aligned else 1

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": self.kind, "method": self.explainer.name, "seeding": self.seeding.rule,
                "explainer": self.explainer_digest,
                "model": self.model.sha256 if self.model is not None else self.black_box_digest}

    def setup(self) -> Explainer:
        ex = copy.copy(self.explainer)
        if self.model is not None:
            model = self.model.load().model
            for arg in _subjects(ex):
                setattr(ex, arg, model)
            ex.black_box_ = BlackBox(model_proba(model), self.batch_size)
        if hasattr(ex, "progress"):
            ex.progress = False  # type: ignore[attr-defined]
        return ex

    def run(self, state: Explainer, index: int, start: int,
            arrays: dict[str, np.ndarray]) -> Explanation:
        return self.seeding.for_shard(state, index, start).explain(arrays["x"])

    def save(self, result: Explanation, path: Path) -> None:
        result.save(path)

    def load(self, path: Path) -> Explanation:
        return Explanation.load(path)

    def merge(self, parts: list[Explanation], seconds: float) -> Explanation:
        return merge_explanations(parts, seconds)
