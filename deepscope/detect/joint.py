"""``JointDetector``: flag an input when any member detector flags it, with the members'
thresholds set jointly so that the union's false-positive rate stays at ``target_fpr``.

Each member's score is mapped to its benign calibration quantile ``u = F_benign(score)`` (the
empirical CDF of its benign calibration scores, interpolated: :func:`benign_level`); the
joint score is the largest ``u`` over
the members, and one threshold on it is set on the same calibration inputs. This is the same
per-member quantile level for every member, chosen so that the union flags at most
``target_fpr`` of the benign calibration inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from deepscope._persist import subarrays
from deepscope._validate import check_int, check_probability
from deepscope.detect.base import DETECTORS, DetectionResult, Detector, check_images
from deepscope.detect.calibration import hold_out
from deepscope.errors import InputError

__all__ = ["JointDetector", "benign_level"]

#: Members of ``detect.get("joint", model, ...)`` unless ``members=`` says otherwise.
DEFAULT_MEMBERS = ("ami", "squeeze")
#: Parameters of the joint detector that its members also get (when they take them).
_SHARED = ("target_fpr", "seed", "progress", "batch_size")


def benign_level(scores: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Continuous benign quantile level of ``scores`` given sorted benign scores ``ref``.

    Linear interpolation of the empirical CDF between the benign scores (level ``i / (n-1)``
    at the i-th smallest), extended linearly beyond them, so the level is strictly increasing
    in the score: no ties between members, and the joint threshold flags exactly the allowed
    number of calibration inputs.
    """
    n = ref.numel()
    if n == 1:
        return (scores - ref[0]).sign() * 0.5 + 0.5
    span = (ref[-1] - ref[0]).clamp_min(1e-12)
    idx = torch.searchsorted(ref, scores).clamp(1, n - 1)
    lo, hi = ref[idx - 1], ref[idx]
    frac = ((scores - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    level = (idx - 1 + frac) / (n - 1)
    level = torch.where(scores > ref[-1], 1 + (scores - ref[-1]) / span, level)
    return torch.where(scores < ref[0], (scores - ref[0]) / span, level)


@DETECTORS.register("joint")
class JointDetector(Detector):
    """The union of several detectors at one joint false-positive rate.

    Parameters
    ----------
    detectors : sequence of Detector
        Unfitted (or fitted) members, all on the same model.
    target_fpr : float
        False-positive rate of the union on the benign calibration inputs.
    calib_fraction : float
        Share of ``x_benign`` held out for calibration when ``fit`` gets no ``x_calib``.
    seed, batch_size, progress
        Split seed; see :class:`~deepscope.detect.base.Detector`.
    """

    name: ClassVar[str] = "joint"
    takes_boxes: ClassVar[bool] = True

    def __init__(self, detectors: Any, *, target_fpr: float = 0.05, calib_fraction: float = 0.3,
                 seed: int = 0, batch_size: int = 64, progress: bool = True) -> None:
        dets = list(detectors) if detectors is not None else []
        if not dets or not all(isinstance(d, Detector) for d in dets):
            raise InputError("JointDetector needs a non-empty list of detectors")
        if any(isinstance(d, JointDetector) for d in dets):
            raise InputError("JointDetector members cannot themselves be JointDetectors")
        model = dets[0].model
        if any(d.model is not model for d in dets):
            raise InputError("every member of a JointDetector must protect the same model")
        super().__init__(model, target_fpr=target_fpr, batch_size=batch_size, progress=progress)
        self.detectors = dets
        self.calib_fraction = check_probability("calib_fraction", calib_fraction)
        self.seed = check_int("seed", seed, low=0)

    # ------------------------------------------------------------------ factory
    @classmethod
    def factory_params(cls) -> list[str]:
        """The joint detector's own parameters, ``members``, and every member's parameters."""
        own = [p for p in cls.param_names() if p != "detectors"]
        extra = {p for name in DETECTORS.names() if name != cls.name
                 for p in DETECTORS.get(name).factory_params()}
        return [*own, "members", *sorted(extra - set(own))]

    @classmethod
    def create(cls, model: nn.Module, *, members: Sequence[str] = DEFAULT_MEMBERS,
               **params: Any) -> JointDetector:
        """The union of the registered detectors ``members`` on ``model``.

        ``target_fpr``, ``seed``, ``progress`` and ``batch_size`` go to the union and to every
        member that takes them; ``calib_fraction`` to the union; any other parameter to the
        members that take it (an error if none does).
        """
        own = {k: params.pop(k) for k in [*cls.param_names()] if k in params}
        if "detectors" in own:
            raise InputError("pass members=(names...) to detect.get('joint', ...), or build "
                             "JointDetector([...]) directly")
        names = members.split(",") if isinstance(members, str) else list(members)
        if not names or cls.name in names:
            raise InputError(f"members must name registered detectors other than 'joint'; "
                             f"choose from {[n for n in DETECTORS.names() if n != cls.name]}")
        classes = [DETECTORS.get(m) for m in names]
        unused = set(params) - {p for c in classes for p in c.factory_params()}
        if unused:
            raise InputError(f"no member of this joint detector ({', '.join(names)}) takes "
                             f"{sorted(unused)}")
        shared = {k: v for k, v in own.items() if k in _SHARED}
        dets = [c.create(model, **{k: v for k, v in {**shared, **params}.items()
                                   if k in c.factory_params()}) for c in classes]
        return cls(dets, **own)

    @property
    def takes_any_boxes(self) -> bool:
        return any(d.takes_boxes for d in self.detectors)

    def fit(self, x_benign: torch.Tensor, boxes: Any = None, *, masks: Any = None,
            groups: torch.Tensor | None = None, x_calib: torch.Tensor | None = None,
            refit: bool = True) -> JointDetector:
        """Fit every member on ``x_benign`` (boxes only to those that take them), then set
        the joint threshold on the benign calibration inputs (``x_calib``, or a held-out
        ``calib_fraction`` of ``x_benign``).

        With ``refit=False`` members that are already fitted are kept as they are (only their
        thresholds and the joint one are set on the calibration inputs).
        """
        check_images(x_benign, "x_benign")
        if not refit and all(d.is_fitted for d in self.detectors):
            self.input_shape_ = tuple(x_benign.shape[1:])
            self._calibrate(x_benign if x_calib is None else
                            check_images(x_calib, "x_calib", model_shape=self.input_shape_))
            return self
        if self.takes_any_boxes and boxes is None and masks is None:
            raise InputError("a member of this JointDetector (AmI) needs attribute boxes: "
                             "pass boxes (N×A×4) or masks=")
        x_fit = x_benign
        if x_calib is None:
            split = hold_out(x_benign, self.calib_fraction, self.seed, boxes=boxes,
                             masks=masks, groups=groups)
            x_fit, x_calib = split.x_fit, split.x_calib
            boxes, masks, groups = split.boxes, split.masks, split.groups
        check_images(x_calib, "x_calib", model_shape=tuple(x_benign.shape[1:]))
        for det in self.detectors:
            if det.takes_boxes:
                det.fit(x_fit, boxes, masks=masks, groups=groups, x_calib=x_calib)
            else:
                det.fit(x_fit, x_calib=x_calib)
        self.input_shape_ = tuple(x_benign.shape[1:])
        self._calibrate(x_calib)
        return self

    def _calibrate(self, x_calib: torch.Tensor) -> None:
        for det in self.detectors:
            det._calibrate(x_calib)
        super()._calibrate(x_calib)

    def _levels(self, x: torch.Tensor) -> torch.Tensor:
        """Members × N benign quantile levels of the members' scores."""
        rows = []
        for det in self.detectors:
            ref = det.calibration_scores_.to(x.device)
            s = det._score(x).double().to(x.device)
            rows.append(benign_level(s, ref))
        return torch.stack(rows)

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        return self._levels(x).amax(0).to(x.dtype)

    def run(self, x: torch.Tensor) -> DetectionResult:
        """Joint scores and flags; ``extra["member_levels"]`` holds each member's level."""
        self._check_fitted()
        check_images(x, model_shape=self.input_shape_)
        levels = self._batched(lambda xb: self._levels(xb).T, x)  # N × members
        scores = levels.amax(1).to(x.dtype)
        return DetectionResult(scores=scores, flags=scores > self.threshold_,
                               threshold=float(self.threshold_), detector=self.name,
                               target_fpr=self.target_fpr,
                               extra={"member_levels": levels.contiguous()})

    def members(self) -> list[Detector]:
        """The member detectors."""
        return list(self.detectors)

    def _learned_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        members, arrays = [], {}
        for i, det in enumerate(self.detectors):
            meta, arr = det.state()
            members.append(meta)
            arrays.update({f"m{i}.{k}": v for k, v in arr.items()})
        return {"members": members, "calib_fraction": self.calib_fraction,
                "seed": self.seed}, arrays

    @classmethod
    def _rebuild(cls, model: nn.Module, meta: dict[str, Any], arrays: dict[str, torch.Tensor],
                 *, progress: bool) -> JointDetector:
        dets = []
        for i, m in enumerate(meta["members"]):
            dets.append(Detector.from_state(model, m, subarrays(arrays, f"m{i}."),
                                            progress=progress))
        return cls(dets, target_fpr=float(meta["target_fpr"]),
                   calib_fraction=meta["calib_fraction"], seed=meta["seed"],
                   batch_size=int(meta["batch_size"]), progress=progress)
