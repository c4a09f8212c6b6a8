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

from typing import Any, ClassVar

import torch

from deepscope.detect.ami.attributes import AttributeSet
from deepscope.detect.ami.detector import split_calibration
from deepscope.detect.base import DETECTORS, DetectionResult, Detector, check_images
from deepscope.errors import InputError

__all__ = ["JointDetector", "benign_level"]


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
        self.calib_fraction = calib_fraction
        self.seed = int(seed)

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
        if x_calib is None:
            fit_idx, cal_idx = split_calibration(x_benign.shape[0], self.calib_fraction,
                                                 self.seed)
            x_calib = x_benign[cal_idx.to(x_benign.device)]
            x_fit = x_benign[fit_idx.to(x_benign.device)]
            if boxes is not None and not isinstance(boxes, AttributeSet):
                boxes = torch.as_tensor(boxes)[fit_idx]
            if masks is not None:
                masks = masks[fit_idx.to(masks.device)]
            if groups is not None:
                groups = torch.as_tensor(groups)[fit_idx]
        else:
            x_fit = x_benign
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
        levels = torch.cat([self._levels(x[i : i + self.batch_size])
                            for i in range(0, x.shape[0], self.batch_size)], dim=1)
        scores = levels.amax(0).to(x.dtype)
        return DetectionResult(scores=scores, flags=scores > self.threshold_,
                               threshold=float(self.threshold_), detector=self.name,
                               target_fpr=self.target_fpr,
                               extra={"member_levels": levels.T.contiguous()})

    def _get_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        members, arrays = [], {}
        for i, det in enumerate(self.detectors):
            meta, arr = det.state()
            members.append(meta)
            arrays.update({f"m{i}.{k}": v for k, v in arr.items()})
        return {"members": members, "calib_fraction": self.calib_fraction,
                "seed": self.seed}, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, torch.Tensor]) -> None:
        self.detectors = []
        for i, m in enumerate(meta["members"]):
            prefix = f"m{i}."
            arr = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            self.detectors.append(Detector.from_state(self.model, m, arr,
                                                      progress=self.progress))
        self.calib_fraction = meta["calib_fraction"]
        self.seed = meta["seed"]
