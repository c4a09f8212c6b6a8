"""Buggy models for the MODE benchmark: one per (dataset, architecture, bug, seed), cached.

The MODE protocol split (30 % train / 10 % validation / 10 % test / 50 % pool, seeded and
stratified, :func:`deepscope.data.mode_split`) of the whole dataset (official train + test) is
made with the run's seed; the bug is injected into the 30 % training part with
:mod:`deepscope.models.bugs`; the model is trained from scratch on the buggy part (Adam, cosine
schedule, early stopping on the validation part). Checkpoints go to ``bench/.cache/mode/``
(``$DEEPSCOPE_BENCH_CACHE/mode/`` when that is set).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from torch import nn

from bench import common
from bench.common import set_threads
from deepscope import data, models
from deepscope.data import Dataset, ModeSplit
from deepscope.errors import CheckpointError

__all__ = ["CACHE", "Cell", "buggy_model", "buggy_train", "set_threads", "split_of"]

CACHE = Path(os.environ.get("DEEPSCOPE_BENCH_CACHE", "") or common.CACHE) / "mode"
# training epochs of the buggy models (early stopping on validation, patience 2)
EPOCHS = {"mlp-100k": 6, "mlp-270k": 6, "cnn-8k": 3, "cnn-100k": 3}


@dataclass(frozen=True)
class Cell:
    """One row pair of the table: a model on a dataset with one injected bug."""

    dataset: str
    arch: str
    kind: str  # "underfit" | "overfit"
    label: int
    params: tuple[tuple[str, Any], ...]

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.arch}/{self.kind}"


@lru_cache(maxsize=2)
def split_of(dataset: str, seed: int) -> ModeSplit:
    return data.mode_split(data.load(dataset, "all", progress=False), seed=seed)


def buggy_train(cell: Cell, seed: int) -> tuple[Dataset, Any]:
    split = split_of(cell.dataset, seed)
    return models.bugs.get(cell.kind)(split.train, cell.label, seed=seed, **dict(cell.params))


def _path(cell: Cell, seed: int) -> Path:
    tag = "_".join(f"{k}{v}" for k, v in cell.params)
    return CACHE / f"{cell.dataset}__{cell.arch}__{cell.kind}{cell.label}_{tag}__s{seed}.pt"


def buggy_model(cell: Cell, seed: int, *, epochs: int | None = None) -> tuple[nn.Module, float]:
    """The buggy model of ``cell`` for ``seed`` (trained or loaded) and its training seconds."""
    path = _path(cell, seed)
    if path.exists():
        try:
            ckpt = models.load_checkpoint(path)
            return ckpt.model, float(ckpt.metadata.get("seconds", 0.0))
        except CheckpointError:
            pass
    split = split_of(cell.dataset, seed)
    train, recipe = buggy_train(cell, seed)
    dims = [0, 2, 3]
    model = models.zoo.build(cell.arch, num_classes=train.num_classes, seed=seed,
                             mean=train.x.mean(dim=dims).tolist(),
                             std=train.x.std(dim=dims).tolist())
    start = time.perf_counter()
    models.fit(model, train, epochs=epochs or EPOCHS[cell.arch], seed=seed,
               val=split.validation, lr=2e-3, patience=2, progress=False)
    seconds = time.perf_counter() - start
    CACHE.mkdir(parents=True, exist_ok=True)
    models.save_checkpoint(path, model, arch=cell.arch, classes=train.classes,
                           config={"num_classes": train.num_classes},
                           metadata={"seconds": seconds, "recipe": recipe.description},
                           overwrite=True)
    return model, seconds

