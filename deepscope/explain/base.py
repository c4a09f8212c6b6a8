"""Explainer base class, registry and the black-box wrapper every explainer queries through."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from deepscope.errors import InputError, NotFittedError
from deepscope.explain.explanation import Explanation
from deepscope.explain.features import (
    FeatureSpace,
    GridSpace,
    TabularSpace,
    check_inputs,
)
from deepscope.registry import Registry

EXPLAINERS: Registry[type[Explainer]] = Registry("explainer")


def get(method: str, **params) -> Explainer:
    """Build the explainer registered as ``method`` (``"dmm-men"``, ``"lime"``, ...)."""
    return EXPLAINERS.get(method)(**params)


def names() -> list[str]:
    """Registered explainer names, in registration order."""
    return EXPLAINERS.names()


class BlackBox:
    """Counts and validates the queries sent to a ``predict_proba`` callable.

    Parameters
    ----------
    predict_proba : callable
        numpy ``N×...`` inputs → ``N×K`` class probabilities.
    batch_size : int
        Inputs per call.
    """

    def __init__(self, predict_proba: Callable[[np.ndarray], np.ndarray], batch_size: int = 512):
        if not callable(predict_proba):
            raise InputError(
                f"predict_proba must be callable (numpy inputs -> N×K probabilities), "
                f"got {type(predict_proba).__name__}"
            )
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.fn = predict_proba
        self.batch_size = batch_size
        self.queries = 0
        self.seconds = 0.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = []
        start = time.perf_counter()
        for i in range(0, len(x), self.batch_size):
            part = np.asarray(self.fn(x[i : i + self.batch_size]), dtype=np.float64)
            n = min(self.batch_size, len(x) - i)
            if part.ndim != 2 or part.shape[0] != n:
                raise InputError(
                    f"predict_proba must return an N×K array; for {n} inputs it returned "
                    f"shape {part.shape}"
                )
            if not np.all(np.isfinite(part)) or part.min() < -1e-6 or part.max() > 1 + 1e-6:
                raise InputError(
                    "predict_proba returned values outside [0, 1] or NaN; pass a function "
                    "returning probabilities (apply softmax to logits)"
                )
            out.append(part)
        self.seconds += time.perf_counter() - start
        self.queries += len(x)
        return np.concatenate(out) if out else np.zeros((0, 0))


def class_logit(proba: np.ndarray, target: int) -> np.ndarray:
    """Log-odds of ``target``: ``log p_c - log sum_{j != c} p_j`` (exact, no ``1 - p`` rounding).

    The complement is summed from the other classes' probabilities, which keep their relative
    precision even when ``p_c`` rounds to 1, so the logit does not saturate.
    """
    p = np.asarray(proba, dtype=np.float64)
    tiny = 1e-300
    pc = np.maximum(p[:, target], tiny)
    rest = np.maximum(np.delete(p, target, axis=1).sum(axis=1), tiny)
    return np.clip(np.log(pc) - np.log(rest), -60.0, 60.0)


def check_target(target, n_classes: int) -> int:
    """Validate a class index against the black box's number of outputs."""
    if isinstance(target, bool) or not isinstance(target, int | np.integer):
        raise InputError(f"target must be a class index (int), got {target!r}")
    if not 0 <= int(target) < n_classes:
        raise InputError(
            f"target {target} is out of range: the model returns {n_classes} classes"
        )
    return int(target)


def default_space(x: np.ndarray) -> FeatureSpace:
    """2×2 grid cells for images, columns for tabular rows."""
    return GridSpace(2) if x.ndim == 4 else TabularSpace()


class Explainer(ABC):
    """Base class: ``fit(x, predict_proba, target=c)`` then ``explain(x) -> Explanation``.

    Subclasses set ``name`` and implement :meth:`_fit` (may do nothing) and :meth:`_explain`.
    ``fit`` validates the inputs, fits the feature space when it is not fitted yet, wraps the
    black box in a :class:`BlackBox` (learned attribute ``black_box_``) and checks ``target``.
    """

    name: str = "explainer"

    space: FeatureSpace | None

    def fit(self, x, predict_proba, target: int = 0) -> Explainer:
        """Prepare the explainer for class ``target`` of ``predict_proba``; returns ``self``.

        Parameters
        ----------
        x : array-like
            ``N×C×H×W`` images in [0, 1] or ``N×D`` rows: the inputs to learn from (DMM-MEN)
            or to fit the feature space on (the others).
        predict_proba : callable
            Black box: numpy inputs → ``N×K`` probabilities. Only called, never differentiated.
        target : int
            The class to explain.
        """
        x = check_inputs(x)
        self.black_box_ = BlackBox(predict_proba, getattr(self, "batch_size", 512))
        probe = self.black_box_(x[:1])
        self.n_classes_ = probe.shape[1]
        self.target_ = check_target(target, self.n_classes_)
        space = self.space if self.space is not None else default_space(x)
        if not hasattr(space, "segments_"):
            space.fit(x)
        self.space_ = space
        self.input_shape_ = tuple(x.shape[1:])
        start = time.perf_counter()
        self._fit(x)
        self.fit_seconds_ = time.perf_counter() - start
        self.fit_queries_ = self.black_box_.queries
        return self

    def _fit(self, x: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Learn from ``x`` (after the common checks); the default does nothing."""

    def explain(self, x) -> Explanation:
        """Explain each row of ``x`` for the fitted target class."""
        if not hasattr(self, "target_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted; call .fit(x, predict_proba, target=c)"
            )
        x = check_inputs(x)
        if tuple(x.shape[1:]) != self.input_shape_:
            raise InputError(
                f"inputs of shape {x.shape[1:]} do not match the fitted shape {self.input_shape_}"
            )
        q0 = self.black_box_.queries
        start = time.perf_counter()
        attributions, component, extras = self._explain(x)
        seconds = time.perf_counter() - start
        segs = self.space_.segments(x)
        segments = segs[0].copy() if self.space_.shared else np.ascontiguousarray(segs)
        extras = {
            "explain_seconds": seconds,
            "explain_queries": self.black_box_.queries - q0,
            "fit_seconds": self.fit_seconds_,
            "fit_queries": self.fit_queries_,
            "feature_space": self.space_.describe(),
            **extras,
        }
        return Explanation(
            method=self.name,
            target=self.target_,
            attributions=np.asarray(attributions, dtype=np.float64),
            segments=segments,
            input_shape=self.input_shape_,
            component=component,
            extras=extras,
        )

    @abstractmethod
    def _explain(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, dict]:
        """Return ``(N×F attributions, component or None, extras)``."""


def model_proba(model, *, batch_size: int = 512) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a PyTorch classifier as a black-box ``predict_proba`` (numpy in, numpy out).

    The callable runs ``model`` without gradients on float32 tensors placed on the model's
    device and returns float64 softmax probabilities. The model is put in eval mode for the
    call and its previous mode restored afterwards.
    """
    import torch

    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")

    def predict_proba(x: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        try:
            out = []
            with torch.no_grad():
                for i in range(0, len(x), batch_size):
                    xb = torch.as_tensor(np.ascontiguousarray(x[i : i + batch_size]),
                                         dtype=torch.float32, device=device)
                    out.append(torch.softmax(model(xb).double(), dim=1).cpu().numpy())
            return np.concatenate(out) if out else np.zeros((0, 0))
        finally:
            model.train(was_training)

    return predict_proba
