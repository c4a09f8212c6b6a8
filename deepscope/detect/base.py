"""The detector contract shared by AmI, feature squeezing and their union.

A detector is fitted on benign inputs, gives every input a *score* (higher = more suspicious)
and flags the inputs whose score exceeds a threshold set on benign calibration inputs so that at
most ``target_fpr`` of them are flagged::

    det = FeatureSqueezingDetector(model, target_fpr=0.05).fit(x_benign)
    det.score(x)        # float tensor (N,)
    det.detect(x)       # bool tensor (N,)
    det.run(x)          # DetectionResult (scores, flags, threshold, ...), with to_dict()
    det.save("fs.npz"); FeatureSqueezingDetector.load("fs.npz", model)

Saved detectors are one ``.npz`` (``allow_pickle=False``): tensors as arrays plus a JSON string
with the parameters and learned scalars. The model is not stored: :meth:`Detector.load` takes
it and checks it against a fingerprint of its parameter names and shapes.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from deepscope._atomic import atomic_write
from deepscope._typing import PathType
from deepscope.errors import InputError, NotFittedError
from deepscope.registry import Registry

__all__ = [
    "DETECTORS",
    "DetectionResult",
    "Detector",
    "check_images",
    "model_fingerprint",
    "quantile_threshold",
]

#: Detector classes by name (feeds ``Detector.load`` and the CLI's ``--method`` choices).
DETECTORS = Registry("detector")

FORMAT_VERSION = 1


@dataclass(frozen=True)
class DetectionResult:
    """Scores and decisions of a detector on a batch.

    Attributes
    ----------
    scores : torch.Tensor
        Float (N,): higher means more likely adversarial.
    flags : torch.Tensor
        Bool (N,): ``scores > threshold``.
    threshold : float
        The calibrated threshold.
    detector : str
        Registered name of the detector.
    target_fpr : float
        False-positive rate the threshold was calibrated for.
    labels : torch.Tensor or None
        The model's labels of the inputs (int64, N), when the detector computed them.
    extra : Mapping
        Detector-specific per-sample tensors (e.g. AmI's steered labels).
    """

    scores: torch.Tensor
    flags: torch.Tensor
    threshold: float
    detector: str
    target_fpr: float
    labels: torch.Tensor | None = None
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def rate(self) -> float:
        """Share of the inputs flagged."""
        return float(self.flags.float().mean()) if len(self) else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary (per-sample lists included)."""
        out: dict[str, Any] = {
            "detector": self.detector,
            "n": len(self),
            "flagged": int(self.flags.sum()),
            "rate": self.rate,
            "threshold": self.threshold,
            "target_fpr": self.target_fpr,
            "scores": [float(v) for v in self.scores.detach().cpu()],
            "flags": [bool(v) for v in self.flags.detach().cpu()],
        }
        if self.labels is not None:
            out["labels"] = [int(v) for v in self.labels.detach().cpu()]
        for key, value in self.extra.items():
            out[key] = value.detach().cpu().tolist()
        return out


def quantile_threshold(scores: torch.Tensor, target_fpr: float) -> float:
    """The smallest threshold ``t`` among the scores with ``mean(scores > t) <= target_fpr``.

    With ``k = floor(target_fpr * n)`` false positives allowed, ``t`` is the (k+1)-th largest
    score, so at most ``k`` benign scores exceed it (fewer when scores tie).
    """
    s = scores.detach().flatten().double()
    if s.numel() == 0:
        raise InputError("calibration needs at least one benign input")
    s = torch.sort(s, descending=True).values
    k = math.floor(target_fpr * s.numel() + 1e-9)
    if k >= s.numel():
        return float(s[-1]) - 1.0
    return float(s[k])


def check_images(x: Any, what: str = "x", *, model_shape: tuple[int, ...] | None = None
                 ) -> torch.Tensor:
    """Validate a batch of images in [0, 1] (N×C×H×W, finite); return it unchanged."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InputError(f"{what} must be a floating-point tensor of images N×C×H×W, got "
                         f"{type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}")
    if x.ndim != 4 or x.shape[0] == 0:
        raise InputError(f"{what} must be a non-empty batch N×C×H×W, got shape {tuple(x.shape)}")
    if model_shape is not None and tuple(x.shape[1:]) != tuple(model_shape):
        raise InputError(f"{what} has images of shape {tuple(x.shape[1:])} but the detector was "
                         f"fitted on {tuple(model_shape)}")
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{what} contains NaN or infinite values")
    if float(x.min()) < 0.0 or float(x.max()) > 1.0:
        raise InputError(f"{what} must hold pixels in [0, 1] (got range "
                         f"[{float(x.min()):.3g}, {float(x.max()):.3g}]); rescale it first")
    return x


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of the model's parameter and buffer names and shapes."""
    h = hashlib.sha256()
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        h.update(f"{name}:{tuple(t.shape)};".encode())
    return h.hexdigest()[:16]


def check_target_fpr(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise InputError(f"target_fpr must be a number in (0, 1), got {value!r}")
    return float(value)


class Detector(ABC):
    """Base class: ``fit`` on benign inputs, then ``score`` / ``detect`` / ``run``.

    Subclasses implement :meth:`_fit`, :meth:`_score` and the state hooks
    :meth:`_get_state` / :meth:`_set_state`; this class validates inputs, calibrates the
    threshold, batches, and saves/loads.

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

    def __init__(self, model: nn.Module, *, target_fpr: float = 0.05, batch_size: int = 64,
                 progress: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.target_fpr = check_target_fpr(target_fpr)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.progress = bool(progress)

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

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of one batch (no validation, no batching)."""

    def _calibrate(self, x_calib: torch.Tensor) -> None:
        scores = self._batched(self._score, x_calib)
        self.calibration_scores_ = torch.sort(scores.detach().double().cpu()).values
        self.threshold_ = quantile_threshold(scores, self.target_fpr)

    @abstractmethod
    def _get_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """``(params and learned scalars as JSON-able dict, learned tensors)``."""

    @abstractmethod
    def _set_state(self, meta: dict[str, Any], arrays: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`_get_state` returned."""

    # ------------------------------------------------------------------ helpers
    def _batched(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
                 ) -> torch.Tensor:
        outs = [fn(x[i : i + self.batch_size]) for i in range(0, x.shape[0], self.batch_size)]
        return torch.cat(outs).to(x.device)

    def _base_state(self) -> dict[str, Any]:
        return {"target_fpr": self.target_fpr, "batch_size": self.batch_size,
                "threshold": float(self.threshold_), "input_shape": list(self.input_shape_)}

    def _set_base_state(self, meta: dict[str, Any], arrays: dict[str, torch.Tensor]) -> None:
        self.target_fpr = float(meta["target_fpr"])
        self.batch_size = int(meta["batch_size"])
        self.threshold_ = float(meta["threshold"])
        self.input_shape_ = tuple(int(v) for v in meta["input_shape"])
        if "calibration_scores" in arrays:
            self.calibration_scores_ = arrays["calibration_scores"].double()

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Everything learned, as ``(meta, tensors)`` (used by save and by JointDetector)."""
        self._check_fitted()
        meta, arrays = self._get_state()
        meta = {**self._base_state(), **meta, "kind": self.name}
        arrays = dict(arrays)
        if hasattr(self, "calibration_scores_"):
            arrays["calibration_scores"] = self.calibration_scores_
        return meta, arrays

    @classmethod
    def from_state(cls, model: nn.Module, meta: dict[str, Any],
                   arrays: dict[str, torch.Tensor], *, progress: bool = True) -> Detector:
        kind = meta.get("kind")
        klass = DETECTORS.get(kind) if cls is Detector else cls
        if klass.name != kind:
            raise InputError(f"the saved detector is a {kind!r}, not a {klass.name!r}; load it "
                             f"with Detector.load")
        det = klass.__new__(klass)
        Detector.__init__(det, model, target_fpr=float(meta["target_fpr"]),
                          batch_size=int(meta["batch_size"]), progress=progress)
        det._set_base_state(meta, arrays)
        det._set_state(meta, arrays)
        return det

    def save(self, path: PathType, *, overwrite: bool = False) -> Path:
        """Write the fitted detector to ``path`` (.npz, atomic; the model is not included)."""
        meta, arrays = self.state()
        path = Path(path)
        if path.exists() and not overwrite:
            raise InputError(f"{path} already exists; pass overwrite=True or choose another path")
        if not path.parent.is_dir():
            raise InputError(f"folder {path.parent} does not exist; create it first")
        payload = {"format": "deepscope-detector", "version": FORMAT_VERSION,
                   "model_fingerprint": model_fingerprint(self.model), **meta}
        np_arrays = {f"t_{k}": v.detach().cpu().numpy() for k, v in arrays.items()}
        np_arrays["meta_json"] = np.array(json.dumps(payload))
        with atomic_write(path) as fh:
            np.savez_compressed(fh, **np_arrays)
        return path

    @classmethod
    def load(cls, path: PathType, model: nn.Module, *, progress: bool = True) -> Detector:
        """Read a detector written by :meth:`save` and attach it to ``model``.

        ``Detector.load`` returns the saved kind; ``AmIDetector.load`` insists on AmI.
        Raises :class:`InputError` when the file is not a detector or ``model`` does not match
        the one it was fitted with.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if "meta_json" not in data.files:
                    raise InputError(f"{path} is not a deepscope detector file (no meta_json)")
                meta = json.loads(str(data["meta_json"]))
                arrays = {k[2:]: torch.from_numpy(data[k].copy()) for k in data.files
                          if k.startswith("t_")}
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable detector file ({exc})") from exc
        if meta.get("format") != "deepscope-detector":
            raise InputError(f"{path} is not a deepscope detector file")
        if meta.get("version") != FORMAT_VERSION:
            raise InputError(f"{path} has detector format version {meta.get('version')}; this "
                             f"deepscope reads version {FORMAT_VERSION}")
        if meta.get("model_fingerprint") != model_fingerprint(model):
            raise InputError(f"{path} was fitted on another model (parameter names/shapes "
                             "differ); pass the model it was fitted with")
        return cls.from_state(model, meta, arrays, progress=progress)
