"""A check :func:`deepscope.models.fit` runs after training: eval mode against train mode.

A model whose accuracy on its own training data is far lower in eval mode than the running
train-mode accuracy of its last epoch did not learn what ``predict`` will use: BatchNorm's
running statistics do not match the batches it trained on (too few steps, tiny or
unrepresentative batches, a validation split that restored an early epoch) or dropout is
doing all the work. :func:`check_train_eval_gap` measures that gap on (a seeded subset of) the
training inputs, unaugmented, and warns with :class:`TrainEvalGapWarning`.

Example
-------
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:            # doctest: +SKIP
...     fit(model, train)
>>> [str(w.message) for w in caught if w.category is TrainEvalGapWarning]  # doctest: +SKIP
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from deepscope.models.execution import batched

__all__ = ["GAP_RATIO", "GAP_THRESHOLD", "TrainEvalGapWarning", "check_train_eval_gap"]

#: Warn when eval-mode accuracy is this much (absolute) below train-mode accuracy ...
GAP_THRESHOLD = 0.15
#: ... and below this share of it (so a small model early in training is not flagged).
GAP_RATIO = 0.75


class TrainEvalGapWarning(UserWarning):
    """The trained model is far less accurate in eval mode than it was in train mode."""


def check_train_eval_gap(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, train_accuracy: float, *,
    max_samples: int = 1024, batch_size: int = 256, threshold: float = GAP_THRESHOLD,
    seed: int = 0, stacklevel: int = 3,
) -> float:
    """Eval-mode accuracy on (up to ``max_samples`` of) ``x``; warns when it is far too low.

    Parameters
    ----------
    model : torch.nn.Module
        The trained classifier (run in eval mode, its state restored).
    x, y : torch.Tensor
        Training inputs and labels.
    train_accuracy : float
        The train-mode accuracy to compare with (the running accuracy of the kept epoch).
    max_samples : int
        A seeded subset of this many inputs is evaluated (all when fewer).
    threshold : float
        Warn when ``train_accuracy - eval_accuracy > threshold`` and the eval accuracy is
        below ``GAP_RATIO`` (75 %) of the train accuracy.

    Returns
    -------
    float
        The eval-mode accuracy on the subset.
    """
    n = len(x)
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_samples]
    xs, ys = x[idx.to(x.device)].cpu(), y[idx.to(y.device)].cpu()
    pred = batched(model, xs, batch_size=batch_size, to="cpu").argmax(-1)
    hits = pred == ys
    if ys.ndim == 2:  # a tagger: positions, padding (x == 0) left out
        hits = hits[xs != 0]
    acc = float(hits.float().mean()) if hits.numel() else 1.0
    if train_accuracy - acc > threshold and acc < GAP_RATIO * train_accuracy:
        warnings.warn(TrainEvalGapWarning(
            f"eval-mode accuracy on the training data is {acc:.1%} but train-mode accuracy was "
            f"{train_accuracy:.1%} in its last epoch: BatchNorm statistics / dropout do not "
            "match training; train longer or in smaller batches (a zoo architecture's "
            "recommended settings: deepscope train without --epochs/--batch-size/--lr/"
            "--val-fraction, or models.zoo.training_defaults)"), stacklevel=stacklevel)
    return acc
