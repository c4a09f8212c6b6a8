"""Feature models: a model's frozen prefix up to a hidden layer plus a new linear softmax layer.

The prefix's (flattened) features are computed once per layer and cached; each feature model
then costs one linear softmax fit on the cached features (:func:`fit_softmax`: Adam on
mini-batches, seeded). Its test accuracy per layer tells where the features stop improving; the
analysed layer is the *first* layer whose feature-model accuracy is within ``tolerance`` of the
best layer's (overridable with ``layer=``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepscope.errors import InputError, NotFittedError
from deepscope.models import hooks, zoo
from deepscope.models.execution import model_device, model_dtype, preserved_state
from deepscope.models.inputs import as_xy

__all__ = ["FeatureModels", "LinearHead", "extract", "fit_softmax"]


def extract(model: nn.Module, layer: str, x: torch.Tensor, *, batch_size: int = 512
            ) -> torch.Tensor:
    """Flattened outputs of ``layer`` for inputs ``x`` (eval mode, no gradients), on CPU float32.

    Returns
    -------
    torch.Tensor
        N×D features; ``D`` is the layer's output size (C·H·W for convolutional blocks).
    """
    prefix, _ = hooks.split(model, layer)
    dev, dtype = model_device(model), model_dtype(model)
    outs = []
    with preserved_state(model), torch.no_grad():
        model.eval()
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device=dev, dtype=dtype)
            outs.append(prefix(xb).flatten(1).to("cpu", torch.float32))
    return torch.cat(outs)


def layer_shape(model: nn.Module, layer: str, x: torch.Tensor) -> tuple[int, ...]:
    """Shape of one sample's output at ``layer`` (e.g. ``(C, H, W)`` or ``(D,)``)."""
    prefix, _ = hooks.split(model, layer)
    dev, dtype = model_device(model), model_dtype(model)
    with preserved_state(model), torch.no_grad():
        model.eval()
        return tuple(prefix(x[:1].to(device=dev, dtype=dtype)).shape[1:])


@dataclass(frozen=True, eq=False)
class LinearHead:
    """A fitted softmax layer on features: ``logits = features @ weight.T + bias``."""

    weight: torch.Tensor  # K×D
    bias: torch.Tensor  # K

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.weight.T + self.bias

    def accuracy(self, features: torch.Tensor, labels: torch.Tensor) -> float:
        return float((self.logits(features).argmax(1) == labels).float().mean())


def fit_softmax(features: torch.Tensor, labels: torch.Tensor, num_classes: int, *,
                sample_weight: torch.Tensor | None = None, epochs: int = 15,
                batch_size: int = 256, lr: float = 1e-2, weight_decay: float = 1e-4,
                seed: int = 0) -> LinearHead:
    """Fit a linear softmax classifier on fixed features (Adam, seeded mini-batch order).

    ``sample_weight`` weights each sample's cross-entropy (e.g. inverse class sizes).
    """
    if features.ndim != 2 or len(features) != len(labels):
        raise InputError("fit_softmax needs N×D features and N labels")
    n, d = features.shape
    g = torch.Generator().manual_seed(seed)
    weight = torch.zeros(num_classes, d)
    bias = torch.zeros(num_classes)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    opt = torch.optim.Adam([weight, bias], lr=lr, weight_decay=weight_decay)
    w = sample_weight if sample_weight is not None else torch.ones(n)
    w = w / w.mean()
    steps = epochs * math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr / 100)
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=g)
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                logits = features[idx] @ weight.T + bias
                loss = (F.cross_entropy(logits, labels[idx], reduction="none") * w[idx]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    return LinearHead(weight.detach().clone(), bias.detach().clone())


class FeatureModels:
    """Feature models for a model's hidden layers, their accuracies and the chosen layer.

    Parameters
    ----------
    layers : list of str, optional
        Hidden layers to analyse; default :func:`deepscope.models.zoo.hidden_layers`.
    layer : str, optional
        Force the analysed layer (skips the automatic choice; only it is fitted).
    max_samples : int
        At most this many training samples (seeded, stratified by shuffling) are used.
    tolerance : float
        Automatic choice: first layer within this accuracy of the best one.
    epochs, seed, batch_size : int
        Softmax fit settings and forward-pass batch size.

    Attributes
    ----------
    accuracy_ : dict
        Layer → held-out accuracy of its feature model.
    layer_ : str
        The analysed layer.
    heads_ : dict
        Layer → :class:`LinearHead`.
    shape_ : tuple
        Per-sample output shape of ``layer_``.
    """

    def __init__(self, layers: list[str] | None = None, *, layer: str | None = None,
                 max_samples: int = 3000, tolerance: float = 0.005, epochs: int = 10,
                 seed: int = 0, batch_size: int = 512) -> None:
        self.layers = layers
        self.layer = layer
        self.max_samples = max_samples
        self.tolerance = tolerance
        self.epochs = epochs
        self.seed = seed
        self.batch_size = batch_size

    def fit(self, model: nn.Module, train: Any, val: Any = None) -> FeatureModels:
        """Fit one softmax layer per hidden layer on ``train`` and score it on ``val``.

        Without ``val`` a seeded 20 % of the (subsampled) training data is held out.
        """
        x, y = as_xy(train, "train")
        if y is None:
            raise InputError("feature models need labelled training data")
        k = int(getattr(train, "num_classes", 0) or int(y.max()) + 1)
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(x), generator=g)[: self.max_samples]
        if val is None:
            cut = max(1, len(order) // 5)
            xv, yv = x[order[:cut]], y[order[:cut]]
            order = order[cut:]
        else:
            xv, yv = as_xy(val, "val")
            vo = torch.randperm(len(xv), generator=g)[: self.max_samples]
            xv, yv = xv[vo], yv[vo]
        xt, yt = x[order], y[order].cpu()
        if self.layer is not None:
            hooks.resolve(model, self.layer)
            layers = [self.layer]
        else:
            layers = list(self.layers) if self.layers else zoo.hidden_layers(model)
        if not layers:
            raise InputError("no hidden layers to analyse; pass layers=[...]")
        self.heads_: dict[str, LinearHead] = {}
        self.accuracy_: dict[str, float] = {}
        for name in layers:
            ft = extract(model, name, xt, batch_size=self.batch_size)
            fv = extract(model, name, xv, batch_size=self.batch_size)
            head = fit_softmax(ft, yt, k, epochs=self.epochs, seed=self.seed)
            self.heads_[name] = head
            self.accuracy_[name] = head.accuracy(fv, yv.cpu())
        best = max(self.accuracy_.values())
        self.layer_ = next(n for n in layers if self.accuracy_[n] >= best - self.tolerance)
        self.shape_ = layer_shape(model, self.layer_, xt)
        self.num_classes_ = k
        return self

    def _check(self) -> None:
        if not hasattr(self, "layer_"):
            raise NotFittedError("FeatureModels is not fitted; call fit(model, train) first")

    def to_dict(self) -> dict[str, Any]:
        """Per-layer accuracy and the chosen layer."""
        self._check()
        return {"accuracy": dict(self.accuracy_), "layer": self.layer_,
                "shape": list(self.shape_)}

    @property
    def weights_(self) -> np.ndarray:
        """K×D weight matrix of the chosen layer's feature model."""
        self._check()
        return self.heads_[self.layer_].weight.numpy()
