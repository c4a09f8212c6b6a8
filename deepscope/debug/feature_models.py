"""Feature models: a model's frozen prefix up to a hidden layer plus a new linear softmax layer.

The prefix's (flattened) features are computed once per layer and cached; each feature model
then costs one linear softmax fit on the cached features (:func:`fit_softmax`: Adam on
mini-batches, seeded). Its test accuracy per layer tells where the features stop improving; the
analysed layer is the *first* layer whose feature-model accuracy is within ``tolerance`` of the
best layer's (overridable with ``layer=``).

Sequence layers (pooled over time)
    For token / byte inputs (int64 N×T) a layer whose output is 3-D, N×T×D or N×D×T, is
    **max-pooled over time** to N×D before the linear softmax (:func:`layer_features`); image
    layers and 2-D outputs are flattened as before. The time axis is the one whose size is the
    input's ``T`` (pass ``time_axis`` when both are). Why max, not mean: (1) it is the pooling
    of Kim's text CNN, so at the zoo CNN's ``convs`` layer the feature model sees exactly what
    the network's own head sees; (2) a sentence's features do not depend on how much padding
    follows it (for non-negative layers such as post-ReLU maps, padding positions are 0 and
    never the maximum), whereas a mean divides by the padded length ``T``; (3) the heat map
    keeps one weight per channel / filter (D entries), which is what can be read: "filter 17,
    an n-gram detector, speaks for label L". A flattened N×(D·T) map would instead give a
    weight per (filter, position), tied to where words happen to sit in the sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepscope.errors import InputError
from deepscope.models import hooks, zoo
from deepscope.models.execution import batched
from deepscope.models.inputs import as_xy
from deepscope.protocol import Params, Persistent, check_fitted

__all__ = ["FeatureModels", "LinearHead", "extract", "fit_softmax", "layer_features",
           "layer_shape"]


def _time_axis(h: torch.Tensor, length: int, time_axis: int | None) -> int:
    if time_axis is not None:
        if time_axis not in (1, 2):
            raise InputError(f"time_axis must be 1 (N×T×D) or 2 (N×D×T), got {time_axis!r}")
        return time_axis
    axes = [a for a in (1, 2) if h.shape[a] == length]
    if len(axes) != 1:
        raise InputError(
            f"cannot tell the time axis of a layer output of shape {tuple(h.shape)} for inputs "
            f"of length {length}; pass time_axis=1 (N×T×D) or time_axis=2 (N×D×T)"
        )
    return axes[0]


def layer_features(h: torch.Tensor, x: torch.Tensor, time_axis: int | None = None
                   ) -> torch.Tensor:
    """N×D features of a layer output ``h`` for inputs ``x``: flattened, or for token / byte
    inputs (int64 N×T) and a 3-D ``h`` max-pooled over time (see the module docstring)."""
    if x.dtype == torch.int64 and x.ndim == 2 and h.ndim == 3:
        return h.amax(dim=_time_axis(h, x.shape[1], time_axis))
    return h.flatten(1)


def extract(model: nn.Module, layer: str, x: torch.Tensor, *, batch_size: int = 512,
            time_axis: int | None = None) -> torch.Tensor:
    """Features of ``layer`` for inputs ``x`` (eval mode, no gradients), on CPU float32.

    Returns
    -------
    torch.Tensor
        N×D features; ``D`` is the layer's output size (C·H·W for convolutional blocks) or, for
        a sequence layer, its number of channels (:func:`layer_features`).
    """
    prefix, _ = hooks.split(model, layer)
    out = batched(model, x, lambda xb: layer_features(prefix(xb), xb, time_axis),
                  batch_size=batch_size, to="cpu", dtype=torch.float32)
    assert isinstance(out, torch.Tensor)
    return out


def layer_shape(model: nn.Module, layer: str, x: torch.Tensor, *, pooled: bool = False,
                time_axis: int | None = None) -> tuple[int, ...]:
    """Shape of one sample's output at ``layer`` (e.g. ``(C, H, W)`` or ``(D,)``); with
    ``pooled``, the shape of its features (``(D,)`` for a sequence layer)."""
    prefix, _ = hooks.split(model, layer)
    out = batched(model, x[:1], prefix, batch_size=1)
    assert isinstance(out, torch.Tensor)
    if pooled and x.dtype == torch.int64 and x.ndim == 2 and out.ndim == 3:
        return (int(out.shape[3 - _time_axis(out, x.shape[1], time_axis)]),)
    return tuple(out.shape[1:])


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
    weight = torch.zeros(num_classes, d, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
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


def _subsample(x: torch.Tensor, y: torch.Tensor, val: Any, max_samples: int,
               g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Seeded training subsample and held-out data (20 % of it when ``val`` is None)."""
    order = torch.randperm(len(x), generator=g)[:max_samples]
    if val is None:
        cut = max(1, len(order) // 5)
        xv, yv = x[order[:cut]], y[order[:cut]]
        order = order[cut:]
    else:
        xv, yv = as_xy(val, "val")
        vo = torch.randperm(len(xv), generator=g)[:max_samples]
        xv, yv = xv[vo], yv[vo]
    return x[order], y[order].cpu(), xv, yv.cpu()


class FeatureModels(Params, Persistent):
    """Feature models for a model's hidden layers, their accuracies and the chosen layer.

    ``FeatureModels(model, ...).fit(train, val)``; the older ``FeatureModels(...).fit(model,
    train, val)`` works too. ``save(path)`` / ``FeatureModels.load(path, model)`` keep the
    fitted heads (not the model).

    Parameters
    ----------
    model : nn.Module, optional
        The analysed model (may instead be given to ``fit``).
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
    time_axis : int, optional
        Time axis of 3-D sequence layer outputs (1: N×T×D, 2: N×D×T); default: inferred
        (see the module docstring).

    Attributes
    ----------
    accuracy_ : dict
        Layer → held-out accuracy of its feature model.
    layer_ : str
        The analysed layer.
    heads_ : dict
        Layer → :class:`LinearHead`.
    shape_ : tuple
        Per-sample output shape of ``layer_`` (``(D,)`` for a sequence layer: pooled).
    """

    _format = "feature-models"

    def __init__(self, model: nn.Module | None = None, layers: list[str] | None = None, *,
                 layer: str | None = None, max_samples: int = 3000, tolerance: float = 0.005,
                 epochs: int = 10, seed: int = 0, batch_size: int = 512,
                 time_axis: int | None = None) -> None:
        if isinstance(model, list | tuple) and layers is None:  # old FeatureModels(layers)
            model, layers = None, list(model)
        self.model = model
        self.layers = layers
        self.layer = layer
        self.max_samples = max_samples
        self.tolerance = tolerance
        self.epochs = epochs
        self.seed = seed
        self.batch_size = batch_size
        self.time_axis = time_axis

    def _fit_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]
                  ) -> tuple[nn.Module, Any, Any]:
        """``(model, train, val)`` of ``fit(train, val)`` or the old ``fit(model, train, val)``."""
        if "model" in kwargs:
            self.model = kwargs.pop("model")
        elif args and isinstance(args[0], nn.Module):
            self.model, args = args[0], args[1:]
        names = ("train", "val")
        given = dict(zip(names, args, strict=False))
        unknown = set(kwargs) - set(names)
        if len(args) > 2 or unknown or set(given) & set(kwargs):
            raise InputError("call FeatureModels(model).fit(train, val=None)")
        given.update(kwargs)
        if not isinstance(self.model, nn.Module):
            raise InputError("FeatureModels needs the model: FeatureModels(model).fit(train)")
        if "train" not in given:
            raise InputError("FeatureModels.fit needs the labelled training data")
        return self.model, given["train"], given.get("val")

    def _layers(self, model: nn.Module) -> list[str]:
        if self.layer is not None:
            hooks.resolve(model, self.layer)
            return [self.layer]
        layers = list(self.layers) if self.layers else zoo.hidden_layers(model)
        if not layers:
            raise InputError("no hidden layers to analyse; pass layers=[...]")
        return layers

    def fit(self, *args: Any, **kwargs: Any) -> FeatureModels:
        """Fit one softmax layer per hidden layer on ``train`` and score it on ``val``.

        Call as ``fit(train, val=None)`` (model given to the constructor) or, as before,
        ``fit(model, train, val=None)``. Without ``val`` a seeded 20 % of the (subsampled)
        training data is held out.
        """
        model, train, val = self._fit_args(args, kwargs)
        x, y = as_xy(train, "train")
        if y is None:
            raise InputError("feature models need labelled training data")
        k = int(getattr(train, "num_classes", 0) or int(y.max()) + 1)
        g = torch.Generator().manual_seed(self.seed)
        xt, yt, xv, yv = _subsample(x, y, val, self.max_samples, g)
        layers = self._layers(model)
        self.heads_: dict[str, LinearHead] = {}
        self.accuracy_: dict[str, float] = {}
        for name in layers:
            ft = extract(model, name, xt, batch_size=self.batch_size, time_axis=self.time_axis)
            fv = extract(model, name, xv, batch_size=self.batch_size, time_axis=self.time_axis)
            head = fit_softmax(ft, yt, k, epochs=self.epochs, seed=self.seed)
            self.heads_[name] = head
            self.accuracy_[name] = head.accuracy(fv, yv)
        best = max(self.accuracy_.values())
        self.layer_ = next(n for n in layers if self.accuracy_[n] >= best - self.tolerance)
        self.shape_ = layer_shape(model, self.layer_, xt, pooled=True, time_axis=self.time_axis)
        self.num_classes_ = k
        return self

    def _check(self) -> None:
        check_fitted(self, "layer_", hint="call fit(train) (or fit(model, train)) first")

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

    # -- persistence (protocol.Persistent) ---------------------------------------------------
    def _get_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        self._check()
        names = list(self.heads_)
        arrays: dict[str, torch.Tensor] = {}
        for i, name in enumerate(names):
            arrays[f"weight_{i}"] = self.heads_[name].weight
            arrays[f"bias_{i}"] = self.heads_[name].bias
        meta = {"params": self.get_params(), "heads": names, "accuracy": self.accuracy_,
                "layer_": self.layer_, "shape": list(self.shape_),
                "num_classes": self.num_classes_}
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                    model: nn.Module | None = None) -> FeatureModels:
        if model is not None:
            hooks.resolve(model, meta["layer_"])
        fm = cls(model, **meta["params"])
        fm.heads_ = {name: LinearHead(torch.from_numpy(arrays[f"weight_{i}"]),
                                      torch.from_numpy(arrays[f"bias_{i}"]))
                     for i, name in enumerate(meta["heads"])}
        fm.accuracy_ = {k: float(v) for k, v in meta["accuracy"].items()}
        fm.layer_ = meta["layer_"]
        fm.shape_ = tuple(meta["shape"])
        fm.num_classes_ = int(meta["num_classes"])
        return fm
