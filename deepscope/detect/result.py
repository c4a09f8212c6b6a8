"""``DetectionResult``: a detector's scores and decisions on a batch (saved like every result)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from deepscope.protocol import Persistent

__all__ = ["DetectionResult"]


@dataclass(frozen=True)
class DetectionResult(Persistent):
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

    Examples
    --------
    >>> res = det.run(x)                                   # doctest: +SKIP
    >>> res.save("run.npz"); DetectionResult.load("run.npz").rate    # doctest: +SKIP
    """

    _format: ClassVar[str] = "detection-result"

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

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray | torch.Tensor]]:
        meta = {"threshold": self.threshold, "detector": self.detector,
                "target_fpr": self.target_fpr, "extra": list(self.extra)}
        arrays: dict[str, np.ndarray | torch.Tensor] = {"scores": self.scores,
                                                        "flags": self.flags}
        if self.labels is not None:
            arrays["labels"] = self.labels
        arrays.update({f"extra.{k}": v for k, v in self.extra.items()})
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                    *args: Any, **kwargs: Any) -> DetectionResult:
        def t(name: str) -> torch.Tensor:
            return torch.from_numpy(arrays[name].copy())

        return cls(scores=t("scores"), flags=t("flags"), threshold=float(meta["threshold"]),
                   detector=str(meta["detector"]), target_fpr=float(meta["target_fpr"]),
                   labels=t("labels") if "labels" in arrays else None,
                   extra={k: t(f"extra.{k}") for k in meta["extra"]})
