"""Small synthetic datasets for tests (built with :mod:`deepscope.data`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepscope.data import Dataset
from deepscope.errors import InputError

__all__ = ["blobs", "make_dataset", "one_hot_inputs"]


def make_dataset(
    x: torch.Tensor,
    y: torch.Tensor | Sequence[int],
    classes: Sequence[str] | None = None,
    *,
    name: str = "synthetic",
    split: str = "custom",
) -> Dataset:
    """A :class:`~deepscope.data.Dataset` from tensors (``classes`` default to ``"0"``, ...)."""
    y_t = torch.as_tensor(y, dtype=torch.int64)
    if classes is None:
        k = int(y_t.max()) + 1 if len(y_t) else 1
        classes = tuple(str(i) for i in range(k))
    return Dataset(x=x.to(torch.float32), y=y_t, classes=tuple(classes), name=name, split=split)


def blobs(
    n: int = 300,
    num_classes: int = 3,
    shape: tuple[int, int, int] = (1, 8, 8),
    *,
    noise: float = 0.15,
    styles: int = 1,
    seed: int = 0,
    split: str = "custom",
) -> Dataset:
    """Gaussian blobs around random template images, clipped to [0, 1].

    Labels cycle ``0, 1, ..., K-1, 0, ...`` so every class has ``n // K`` or one more samples.
    Each class has ``styles`` templates (sub-clusters, used in turn), so a class can be
    multi-modal like real data.
    Templates and noise both derive from ``seed``; for train and test parts, split one result
    (e.g. with :func:`deepscope.data.train_val_split`).
    """
    if n < 1 or num_classes < 2 or styles < 1:
        raise InputError("blobs needs n >= 1, num_classes >= 2 and styles >= 1")
    g = torch.Generator().manual_seed(seed)
    templates = 0.2 + 0.6 * torch.rand((num_classes * styles, *shape), generator=g)
    i = torch.arange(n)
    y = i % num_classes
    style = (i // num_classes) % styles
    x = templates[y * styles + style] + noise * torch.randn((n, *shape), generator=g)
    return make_dataset(
        x.clamp(0.0, 1.0),
        y,
        tuple(f"class{i}" for i in range(num_classes)),
        name="blobs",
        split=split,
    )


def one_hot_inputs(predictions: Sequence[int] | torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inputs N×1×1×K for :func:`~deepscope.testing.models.identity_classifier`.

    Sample ``i`` has pixel ``predictions[i]`` set to 1 and the others 0, so the identity
    classifier predicts ``predictions[i]`` with logit 1 (the others 0).
    """
    p = torch.as_tensor(predictions, dtype=torch.int64)
    return torch.nn.functional.one_hot(p, num_classes).to(torch.float32).view(-1, 1, 1, num_classes)
