"""Explainer base class, registry and the black-box wrapper every explainer queries through.

Where the model goes (see :mod:`deepscope.protocol`): the black-box explainers (DMM-MEN, LIME,
KernelSHAP, random features) receive the ``predict_proba`` callable in ``fit(x, predict_proba,
target=c)``; :class:`~deepscope.explain.gradients.IntegratedGradients`, a white-box explainer,
receives the torch model in its constructor.
"""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from deepscope._validate import check_int
from deepscope.errors import InputError
from deepscope.explain.explanation import Explanation
from deepscope.explain.features import (
    FeatureSpace,
    GridSpace,
    TabularSpace,
    check_inputs,
)
from deepscope.models import execution
from deepscope.protocol import Params, check_fitted
from deepscope.registry import Registry

EXPLAINERS: Registry[type[Explainer]] = Registry("explainer")


def get(method: str, **params: Any) -> Explainer:
    """Build the explainer registered as ``method`` (``"dmm-men"``, ``"lime"``, ...).

    Parameters
    ----------
    method : str
        A name of :func:`names`.
    **params
        Constructor parameters; white-box explainers also take ``model=``.

    Raises
    ------
    InputError
        A key the explainer's constructor does not take (the message lists the valid ones).
    """
    cls = EXPLAINERS.get(method)
    takes = inspect.signature(cls.__init__).parameters
    subjects = {k: params.pop(k) for k in cls._subject_args if k in params}
    if subjects and not set(subjects) <= set(takes):
        raise InputError(
            f"explainer {method!r} is a black box and takes no {sorted(subjects)}: pass "
            "predict_proba to .fit(x, predict_proba, target=c)"
        )
    cls.check_params(params, what=f"explainer {method!r}")
    return cls(**subjects, **params)


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
        self.fn = predict_proba
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.queries = 0
        self.seconds = 0.0

    def _query(self, xb: np.ndarray) -> np.ndarray:
        part = np.asarray(self.fn(xb), dtype=np.float64)
        if part.ndim != 2 or part.shape[0] != len(xb):
            raise InputError(
                f"predict_proba must return an N×K array; for {len(xb)} inputs it returned "
                f"shape {part.shape}"
            )
        if not np.all(np.isfinite(part)) or part.min() < -1e-6 or part.max() > 1 + 1e-6:
            raise InputError(
                "predict_proba returned values outside [0, 1] or NaN; pass a function "
                "returning probabilities (apply softmax to logits)"
            )
        return part

    def __call__(self, x: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = [self._query(x[sl]) for sl in execution.batch_slices(len(x), self.batch_size)]
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


def check_target(target: Any, n_classes: int) -> int:
    """Validate a class index against the black box's number of outputs."""
    target = check_int("target", target)
    if not 0 <= target < n_classes:
        raise InputError(
            f"target {target} is out of range: the model returns {n_classes} classes"
        )
    return target


def default_space(x: np.ndarray) -> FeatureSpace:
    """2×2 grid cells for images, columns for tabular rows."""
    return GridSpace(2) if x.ndim == 4 else TabularSpace()


def progress_range(n: int, desc: str, enabled: bool) -> Any:
    """``range(n)`` with a progress bar when ``enabled`` (adapters that explain row by row)."""
    return tqdm(range(n), desc=desc, disable=not enabled, leave=False)


class Explainer(Params, ABC):
    """Base class: ``fit(x, predict_proba, target=c)`` then ``explain(x) -> Explanation``.

    Subclasses set ``name``, store their constructor arguments with :meth:`_store` and
    implement :meth:`_fit` (may do nothing) and :meth:`_explain`. ``fit`` validates the inputs,
    fits the feature space when it is not fitted yet, wraps the black box in a
    :class:`BlackBox` (learned attribute ``black_box_``) and checks ``target``.
    ``get_params()`` lists the constructor's parameters (:class:`~deepscope.protocol.Params`).
    """

    name: str = "explainer"

    space: FeatureSpace | None

    def _store(self, arguments: Mapping[str, Any]) -> None:
        """Store every constructor argument under its own name (call with ``locals()``)."""
        for arg in inspect.signature(type(self).__init__).parameters:
            if arg != "self":
                setattr(self, arg, arguments[arg])

    def fit(self, x: Any, predict_proba: Callable[[np.ndarray], np.ndarray],
            target: int = 0) -> Explainer:
        """Prepare the explainer for class ``target`` of ``predict_proba``; returns ``self``.

        Parameters
        ----------
        x : array-like
            ``N×C×H×W`` images in [0, 1], ``N×D`` rows, or int64 ``N×T`` token / byte ids
            with a :class:`~deepscope.explain.features.SequenceSpace`: the inputs to learn from
            (DMM-MEN) or to fit the feature space on (the others).
        predict_proba : callable
            Black box: numpy inputs → ``N×K`` probabilities. Only called, never differentiated.
        target : int
            The class to explain.
        """
        space = self.space if self.space is not None else default_space(check_inputs(x))
        x = space.check(x)  # the space decides the dtype: float pixels / rows, int64 ids
        self.black_box_ = BlackBox(predict_proba, getattr(self, "batch_size", 512))
        probe = self.black_box_(x[:1])
        self.n_classes_ = probe.shape[1]
        self.target_ = check_target(target, self.n_classes_)
        if not hasattr(space, "segments_"):
            space.fit(x)
        self.space_ = space
        self.input_shape_ = tuple(x.shape[1:])
        start = time.perf_counter()
        self._fit(x)
        self.fit_seconds_ = time.perf_counter() - start
        self.fit_queries_ = self.black_box_.queries
        return self

    def _fit(self, x: np.ndarray) -> None:
        """Learn from ``x`` (after the common checks); the default does nothing."""

    def explain(self, x: Any) -> Explanation:
        """Explain each row of ``x`` for the fitted target class."""
        check_fitted(self, "target_", hint="call .fit(x, predict_proba, target=c)")
        x = self.space_.check(x)
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


class FillMixin:
    """The ``fill`` / ``reference`` parameters of the adapters: values of nullified features."""

    fill: str
    reference: np.ndarray | None

    def _fit(self, x: np.ndarray) -> None:
        """Keep the fit inputs: the ``"mean"``-style fills read them when no reference is given."""
        self.fit_x_ = x

    def _fill(self, x: np.ndarray) -> np.ndarray:
        ref = self.reference if self.reference is not None else getattr(self, "fit_x_", None)
        return np.ascontiguousarray(self.space_.baseline(x, self.fill, reference=ref))


def _as_model_input(x: np.ndarray) -> torch.Tensor:
    """Floating inputs as float32 (cast to the model's dtype by the batched runner), integer
    inputs (token ids) as int64."""
    arr = np.ascontiguousarray(x)
    dtype = torch.int64 if arr.dtype.kind in "iu" else torch.float32
    return torch.as_tensor(arr, dtype=dtype)


def check_class_outputs(out: torch.Tensor) -> torch.Tensor:
    """``out`` if it is ``N×K`` class scores; a tagger's ``N×T×K`` gets a hint instead."""
    if out.ndim != 2:
        hint = (" (per-position outputs of a tagger: explain one position with "
                "explain.TaggerAt(model, position) or explain.tagger_proba(model, position))"
                if out.ndim == 3 else "")
        raise InputError(f"the model must return N×K class scores, got shape "
                         f"{tuple(out.shape)}{hint}")
    return out


def model_proba(model: torch.nn.Module, *,
                batch_size: int = 512) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a PyTorch classifier as a black-box ``predict_proba`` (numpy in, numpy out).

    The callable runs ``model`` through :func:`deepscope.models.execution.batched` (eval mode,
    no gradients, every module's mode and parameter flag restored afterwards) on batches of
    ``batch_size`` placed on the model's device, and returns float64 softmax probabilities
    (the logits are cast to float64 before the softmax). Floating inputs are float32 (then
    the model's dtype); integer inputs stay integers (int64).
    """
    check_int("batch_size", batch_size, low=1)

    def softmax64(xb: torch.Tensor) -> torch.Tensor:
        return torch.softmax(check_class_outputs(model(xb)).double(), dim=1)

    def predict_proba(x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, 0))
        out = execution.batched(model, _as_model_input(x), softmax64, batch_size=batch_size)
        assert isinstance(out, torch.Tensor)
        return out.numpy()

    return predict_proba
