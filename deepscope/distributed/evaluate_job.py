"""Evaluation and detection scoring over shards.

Evaluation: each shard runs :func:`deepscope.models.evaluate` (shards aligned to its batch
size); the confusion matrices add up exactly, so accuracy, per-label accuracy and a tagger's
precision / recall / F1 equal the local run's; the mean loss is the shards' losses weighted by
their sizes (equal up to float rounding of the sum). Detection scoring: ``detector.score`` per
shard, concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope._persist import read_npz, write_npz
from deepscope.distributed.jobs import Job, ModelFile
from deepscope.distributed.store import digest
from deepscope.models import tagging
from deepscope.models.train import evaluate
from deepscope.models.train_results import Evaluation


@dataclass(frozen=True)
class _Part:
    """Rows of a dataset with its class count and names (what ``evaluate`` reads)."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    classes: tuple[str, ...]


def merge_evaluations(parts: list[Evaluation]) -> Evaluation:
    """The evaluation of all shards' inputs from the shards' evaluations."""
    conf = np.sum([p.confusion for p in parts], axis=0).astype(np.int64)
    per_position = parts[0].per_position
    weights = [int(p.confusion.sum()) if per_position else p.n for p in parts]
    total = max(sum(weights), 1)
    support = conf.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_label = np.where(support > 0, np.diag(conf) / np.maximum(support, 1), np.nan)
    prf: tuple[Any, ...] = (None, None, None)
    if per_position and conf.shape[0] == 2:
        prf = tagging.precision_recall_f1(conf)
    return Evaluation(accuracy=float(np.trace(conf)) / total,
                      per_label=per_label.astype(np.float64), confusion=conf,
                      classes=parts[0].classes, n=sum(p.n for p in parts),
                      loss=sum(p.loss * w for p, w in zip(parts, weights, strict=True)) / total,
                      precision=prf[0], recall=prf[1], f1=prf[2])


class EvaluateJob(Job):
    """:func:`deepscope.models.evaluate` over shards.

    Parameters
    ----------
    model : torch.nn.Module or ModelFile
        The classifier, or a checkpoint the workers load with the safe loader.
    num_classes : int
        Classes of the data.
    classes : tuple of str
        Their names.
    batch_size : int
        Inputs per forward pass (shards are multiples of it).
    """

    kind = "evaluate"

    def __init__(self, model: torch.nn.Module | ModelFile, num_classes: int,
                 classes: tuple[str, ...], batch_size: int = 512) -> None:
        self.model = model
        self.num_classes = num_classes
        self.classes = classes
        self.batch_size = batch_size

    def align(self) -> int:
        return self.batch_size

    def fingerprint(self) -> dict[str, Any]:
        model = self.model.sha256 if isinstance(self.model, ModelFile) else digest(self.model)
        return {"kind": self.kind, "model": model, "classes": digest(self.classes),
                "batch_size": self.batch_size}

    def setup(self) -> torch.nn.Module:
        return self.model.load().model if isinstance(self.model, ModelFile) else self.model

    def run(self, state: torch.nn.Module, index: int, start: int,
            arrays: dict[str, np.ndarray]) -> Evaluation:
        part = _Part(torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"]),
                     self.num_classes, self.classes)
        return evaluate(state, part, batch_size=self.batch_size)

    def save(self, result: Evaluation, path: Path) -> None:
        meta = {"accuracy": result.accuracy, "classes": list(result.classes), "n": result.n,
                "loss": result.loss, "precision": result.precision, "recall": result.recall,
                "f1": result.f1}
        write_npz(path, "evaluation-shard", meta,
                  {"per_label": result.per_label, "confusion": result.confusion})

    def load(self, path: Path) -> Evaluation:
        meta, arrays = read_npz(path, "evaluation-shard")
        return Evaluation(accuracy=float(meta["accuracy"]), per_label=arrays["per_label"],
                          confusion=arrays["confusion"], classes=tuple(meta["classes"]),
                          n=int(meta["n"]), loss=float(meta["loss"]),
                          precision=meta.get("precision"), recall=meta.get("recall"),
                          f1=meta.get("f1"))

    def merge(self, parts: list[Evaluation], seconds: float) -> Evaluation:
        return merge_evaluations(parts)


class ScoreJob(Job):
    """``detector.score(x)`` over shards (the fitted detector travels with Ray's serializer).

    Parameters
    ----------
    detector : Detector
        A fitted detector.
    batch_size : int
        Shard sizes are multiples of it (the detector's own batch size, when it has one).
    """

    kind = "score"

    def __init__(self, detector: Any, batch_size: int = 1) -> None:
        self.detector = detector
        self.batch_size = batch_size

    def align(self) -> int:
        return self.batch_size

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": self.kind, "detector": type(self.detector).__name__,
                "state": digest(self.detector)}

    def run(self, state: Any, index: int, start: int,
            arrays: dict[str, np.ndarray]) -> np.ndarray:
        return self.detector.score(torch.from_numpy(arrays["x"])).detach().cpu().numpy()

    def save(self, result: np.ndarray, path: Path) -> None:
        write_npz(path, "scores-shard", {}, {"scores": result})

    def load(self, path: Path) -> np.ndarray:
        return read_npz(path, "scores-shard")[1]["scores"]

    def merge(self, parts: list[np.ndarray], seconds: float) -> torch.Tensor:
        return torch.from_numpy(np.concatenate(parts))
