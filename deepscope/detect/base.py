"""The detector contract shared by AmI, feature squeezing and their union.

A detector is fitted on benign inputs, gives every input a *score* (higher = more suspicious)
and flags the inputs whose score exceeds a threshold set on benign calibration inputs so that at
most ``target_fpr`` of them are flagged::

    det = detect.get("squeeze", model, target_fpr=0.05).fit(x_benign)
    det.score(x)        # float tensor (N,)
    det.detect(x)       # bool tensor (N,)
    det.run(x)          # DetectionResult (scores, flags, threshold, ...), with to_dict()
    det.get_params()    # the constructor's parameters (protocol.Params)
    det.save("fs.npz"); FeatureSqueezingDetector.load("fs.npz", model)

Saved detectors are one ``.npz`` (:mod:`deepscope._persist`, ``allow_pickle=False``): tensors
as arrays (``t_<name>``) plus a JSON header with the parameters and learned scalars. The model
is not stored: :meth:`Detector.load` takes it and checks it against two fingerprints recorded at
save time, of its parameter names and shapes (:func:`model_fingerprint`) and of its weights
(:func:`deepscope.models.weights_fingerprint`), so a detector is never attached to another model
of the same architecture. Files saved before the weights fingerprint existed load with a
warning.
"""

from __future__ import annotations

import hashlib
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from deepscope._validate import check_bool, check_int, check_probability
from deepscope._validate import check_images as _check_images
from deepscope.detect.calibration import quantile_threshold, split_calibration
from deepscope.detect.result import DetectionResult
from deepscope.errors import InputError, NotFittedError
from deepscope.models import execution
from deepscope.models.provenance import weights_fingerprint
from deepscope.protocol import Params, Persistent
from deepscope.registry import Registry

__all__ = [
    "DETECTORS",
    "DetectionResult",
    "Detector",
    "check_images",
    "model_fingerprint",
    "quantile_threshold",
]

#: Detector classes by name (feeds :func:`deepscope.detect.get`, ``Detector.load`` and the
#: CLI's ``--method`` choices).
DETECTORS = Registry("detector")

FORMAT_VERSION = 1

#: Parameters every detector has; saved at the top level of the header.
_BASE_PARAMS = ("target_fpr", "batch_size", "progress")


def check_images(x: Any, what: str = "x", *, model_shape: tuple[int, ...] | None = None
                 ) -> torch.Tensor:
    """Validate a batch of images in [0, 1] (N×C×H×W, finite); return it unchanged.

    Kept for compatibility: :func:`deepscope._validate.check_images` does the checks
    (``model_shape`` is its ``shape``).
    """
    return _check_images(x, what, shape=model_shape)


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of the model's parameter and buffer names and shapes."""
    h = hashlib.sha256()
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        h.update(f"{name}:{tuple(t.shape)};".encode())
    return h.hexdigest()[:16]


def _check_same_model(meta: dict[str, Any], model: nn.Module, path: Any) -> None:
    """Refuse ``model`` unless it is the one the saved detector was fitted on."""
    if meta.get("model_fingerprint") != model_fingerprint(model):
        raise InputError(f"{path} was fitted on another model (parameter names/shapes "
                         "differ); pass the model it was fitted with")
    saved = meta.get("weights_fingerprint")
    if saved is None:
        warnings.warn(f"{path} was saved without a weights fingerprint (older deepscope), so it "
                      "cannot be checked that the given model is the one it was fitted on",
                      UserWarning, stacklevel=5)
    elif saved != weights_fingerprint(model):
        raise InputError(f"{path} was fitted on another model: same architecture, different "
                         "weights; pass the checkpoint it was fitted with (or refit the detector "
                         "on this model)")


class Detector(Params, Persistent, ABC):
    """Base class: ``fit`` on benign inputs, then ``score`` / ``detect`` / ``run``.

    Subclasses implement ``fit``, :meth:`_score` and, when they learn more than the threshold,
    the state hooks :meth:`_learned_state` / :meth:`_set_learned_state`; this class validates
    inputs, calibrates the threshold, batches (:func:`deepscope.models.execution.batched`), and
    saves / loads (:class:`~deepscope.protocol.Persistent`).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier to protect (returns logits); it is never modified.
    target_fpr : float
        Share of benign calibration inputs allowed above the threshold.
    batch_size : int
        Inputs per forward pass.
    progress : bool
        Show progress bars in long loops.
    """

    name: ClassVar[str] = "detector"
    #: whether ``fit`` takes attribute boxes / masks (used by JointDetector and the CLI)
    takes_boxes: ClassVar[bool] = False
    _format: ClassVar[str] = "deepscope-detector"
    _version: ClassVar[int] = FORMAT_VERSION

    def __init__(self, model: nn.Module, *, target_fpr: float = 0.05, batch_size: int = 64,
                 progress: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.target_fpr = check_probability("target_fpr", target_fpr)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.progress = check_bool("progress", progress)

    # ------------------------------------------------------------------ factory
    @classmethod
    def factory_params(cls) -> list[str]:
        """Parameters :func:`deepscope.detect.get` accepts for this detector."""
        return cls.param_names()

    @classmethod
    def create(cls, model: nn.Module, **params: Any) -> Detector:
        """Build the detector on ``model`` (what :func:`deepscope.detect.get` calls)."""
        return cls(model, **params)

    # ------------------------------------------------------------------ public API
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "threshold_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call "
                                 f".fit(x_benign{', boxes' if self.takes_boxes else ''}) first")

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Suspicion score per input (float, N), on ``x``'s device."""
        self._check_fitted()
        check_images(x, model_shape=self.input_shape_)
        return self._batched(self._score, x)

    def detect(self, x: torch.Tensor) -> torch.Tensor:
        """Bool (N,): True where the input is flagged as adversarial."""
        return self.score(x) > self.threshold_

    def run(self, x: torch.Tensor) -> DetectionResult:
        """Scores, flags and the threshold as a :class:`DetectionResult`."""
        scores = self.score(x)
        return DetectionResult(scores=scores, flags=scores > self.threshold_,
                               threshold=float(self.threshold_), detector=self.name,
                               target_fpr=self.target_fpr)

    def calibrate(self, x_calib: torch.Tensor) -> Detector:
        """Re-set the threshold on benign ``x_calib`` (keeps everything else learned)."""
        if not hasattr(self, "input_shape_"):
            raise NotFittedError(f"fit this {type(self).__name__} before calibrating it")
        check_images(x_calib, "x_calib", model_shape=self.input_shape_)
        self._calibrate(x_calib)
        return self

    def members(self) -> list[Detector]:
        """The detectors this one consists of (itself for a single detector)."""
        return [self]

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of one batch (no validation, no batching)."""

    def _calibrate(self, x_calib: torch.Tensor) -> None:
        scores = self._batched(self._score, x_calib)
        self.calibration_scores_ = torch.sort(scores.detach().double().cpu()).values
        self.threshold_ = quantile_threshold(scores, self.target_fpr)

    def _own_params(self) -> dict[str, Any]:
        """The constructor's parameters other than the common ones (as stored)."""
        return {k: v for k, v in self.get_params().items() if k not in _BASE_PARAMS}

    def _learned_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """``(own params and learned scalars as a JSON-able dict, learned tensors)``."""
        return self._own_params(), {}

    def _set_learned_state(self, meta: dict[str, Any], arrays: dict[str, torch.Tensor]
                           ) -> None:
        """Restore what :meth:`_learned_state` returned beyond the constructor's parameters."""

    @classmethod
    def _saved_params(cls, meta: dict[str, Any]) -> dict[str, Any]:
        """The constructor's own parameters as stored in a saved header (at its top level, or
        under ``"params"`` for detectors that keep them apart from their learned state)."""
        source = meta.get("params", meta)
        return {k: source[k] for k in cls.param_names() if k not in _BASE_PARAMS and k in source}

    @classmethod
    def _rebuild(cls, model: nn.Module, meta: dict[str, Any], arrays: dict[str, torch.Tensor],
                 *, progress: bool) -> Detector:
        """A new (unfitted) detector with the saved parameters."""
        return cls(model, target_fpr=float(meta["target_fpr"]),
                   batch_size=int(meta["batch_size"]), progress=progress,
                   **cls._saved_params(meta))

    # ------------------------------------------------------------------ helpers
    def _fit_threshold_only(self, x_benign: torch.Tensor, x_calib: torch.Tensor | None
                            ) -> None:
        """``fit`` of a detector that learns nothing but its threshold: check the inputs and
        calibrate on ``x_calib`` (default ``x_benign``)."""
        check_images(x_benign, "x_benign")
        self.input_shape_ = tuple(x_benign.shape[1:])
        x_calib = x_benign if x_calib is None else x_calib
        check_images(x_calib, "x_calib", model_shape=self.input_shape_)
        self._calibrate(x_calib)

    def _split_benign(self, x_benign: torch.Tensor, x_calib: torch.Tensor | None, *,
                      x_adv: torch.Tensor | None = None, labels: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Check a combiner-trained detector's inputs and split off its calibration inputs.

        Without ``x_calib``, a seeded ``calib_fraction`` of ``x_benign`` is held out
        (:func:`~deepscope.detect.calibration.split_calibration`) and ``labels`` (one per
        benign input, checked) are restricted to the fitting rows. Sets ``input_shape_``.

        Returns
        -------
        (x_fit, x_calib, labels of x_fit)
        """
        check_images(x_benign, "x_benign")
        shape = tuple(x_benign.shape[1:])
        if labels is not None:
            labels = torch.as_tensor(labels).long()
            if labels.shape != (x_benign.shape[0],):
                raise InputError(f"labels must have one entry per input ({x_benign.shape[0]}),"
                                 f" got shape {tuple(labels.shape)}")
        x_fit = x_benign
        if x_calib is None:
            fit_idx, cal_idx = split_calibration(x_benign.shape[0], self.calib_fraction,
                                                 self.seed)
            x_fit, x_calib = x_benign[fit_idx], x_benign[cal_idx]
            labels = None if labels is None else labels[fit_idx]
        check_images(x_calib, "x_calib", model_shape=shape)
        if x_adv is not None:
            check_images(x_adv, "x_adv", model_shape=shape)
        self.input_shape_ = shape
        return x_fit, x_calib, labels

    def _batched(self, fn: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Any:
        return execution.batched(self.model, x, fn, batch_size=self.batch_size)

    def _base_state(self) -> dict[str, Any]:
        return {"target_fpr": self.target_fpr, "batch_size": self.batch_size,
                "threshold": float(self.threshold_), "input_shape": list(self.input_shape_)}

    def _set_base_state(self, meta: dict[str, Any], arrays: dict[str, torch.Tensor]) -> None:
        self.threshold_ = float(meta["threshold"])
        self.input_shape_ = tuple(int(v) for v in meta["input_shape"])
        if "calibration_scores" in arrays:
            self.calibration_scores_ = arrays["calibration_scores"].double()

    # ------------------------------------------------------------------ persistence
    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Everything learned, as ``(meta, tensors)`` (used by save and by JointDetector)."""
        self._check_fitted()
        meta, arrays = self._learned_state()
        meta = {**self._base_state(), **meta, "kind": self.name}
        arrays = dict(arrays)
        if hasattr(self, "calibration_scores_"):
            arrays["calibration_scores"] = self.calibration_scores_
        return meta, arrays

    @classmethod
    def from_state(cls, model: nn.Module, meta: dict[str, Any],
                   arrays: dict[str, torch.Tensor], *, progress: bool = True) -> Detector:
        """Rebuild a fitted detector from :meth:`state` on ``model``."""
        kind = meta.get("kind")
        klass = DETECTORS.get(kind) if cls is Detector else cls
        if klass.name != kind:
            raise InputError(f"the saved detector is a {kind!r}, not a {klass.name!r}; load it "
                             f"with Detector.load")
        det = klass._rebuild(model, meta, arrays, progress=progress)
        det._set_base_state(meta, arrays)
        det._set_learned_state(meta, arrays)
        return det

    def _get_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        meta, arrays = self.state()
        meta = {"model_fingerprint": model_fingerprint(self.model),
                "weights_fingerprint": weights_fingerprint(self.model), **meta}
        return meta, {f"t_{k}": v for k, v in arrays.items()}

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], *args: Any,
                    **kwargs: Any) -> Detector:
        model, path = args[0], kwargs.pop("source", "the file")
        _check_same_model(meta, model, path)
        tensors = {k[2:]: torch.from_numpy(v.copy()) for k, v in arrays.items()
                   if k.startswith("t_")}
        return cls.from_state(model, meta, tensors, **kwargs)

    @classmethod
    def load(cls, path: Any, model: nn.Module, *, progress: bool = True) -> Detector:
        """Read a detector written by :meth:`save` and attach it to ``model``.

        ``Detector.load`` returns the saved kind; ``AmIDetector.load`` insists on AmI.
        Raises :class:`InputError` when the file is not a detector or ``model`` does not match
        the one it was fitted with.
        """
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        return super().load(path, model, progress=progress, source=path)
