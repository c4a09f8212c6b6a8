"""Export the demo's buggy MNIST model and its data in the formats ``deepscope audit`` reads,
so that ``make demo`` audits it the way a user audits their own model.

Written into one folder (atomically, existing files refused unless ``overwrite``):

* ``buggy-mnist.pt`` — a deepscope checkpoint of the buggy model;
* ``heldout.npz`` — ``x`` (N×H×W uint8), ``y``, ``classes``: a seeded, stratified sample of the
  MODE validation, test and pool parts, which the model never trained on;
* ``train.npz`` — the same format, a sample of the (buggy) training data it was trained on.

Example
-------
>>> demo_experiment(cfg, on_buggy=partial(export_demo_model, "report/demo-model",
...                                        arch=cfg.arch))                 # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepscope._atomic import atomic_write
from deepscope.data import Dataset, ModeSplit, stratified_subset
from deepscope.errors import InputError
from deepscope.models import save_checkpoint

__all__ = ["FILES", "export_demo_model", "write_npz_images"]

FILES = ("buggy-mnist.pt", "heldout.npz", "train.npz")


def write_npz_images(path: Path, ds: Dataset, *, overwrite: bool = False) -> Path:
    """``ds`` (single-channel images in [0, 1]) as an ``.npz`` with uint8 ``x``, ``y`` and
    ``classes``, written atomically."""
    if ds.x.dim() != 4 or ds.x.shape[1] != 1:
        raise InputError("write_npz_images writes single-channel N×1×H×W images")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; pass --overwrite")
    x = np.rint(ds.x[:, 0].cpu().numpy() * 255).astype(np.uint8)
    with atomic_write(path) as fh:
        np.savez_compressed(fh, x=x, y=ds.y.cpu().numpy().astype(np.int64),
                            classes=np.array(ds.classes))
    return path


def _concat(parts: list[Dataset]) -> Dataset:
    first = parts[0]
    return Dataset(x=torch.cat([p.x for p in parts]), y=torch.cat([p.y for p in parts]),
                   classes=first.classes, name=first.name, split="heldout")


def export_demo_model(folder: str | Path, model: torch.nn.Module, train: Dataset,
                      split: ModeSplit, *, arch: str, n: int = 10_000, seed: int = 0,
                      overwrite: bool = False) -> Path:
    """Write the demo model, held-out and training samples (see the module docstring)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    heldout = _concat([split.validation, split.test, split.pool])
    save_checkpoint(out / FILES[0], model, arch=arch, classes=train.classes,
                    metadata={"note": "deepscope demo: buggy model (starved label)"},
                    overwrite=overwrite)
    write_npz_images(out / FILES[1], stratified_subset(heldout, n, seed=seed),
                     overwrite=overwrite)
    write_npz_images(out / FILES[2], stratified_subset(train, n, seed=seed), overwrite=overwrite)
    return out
