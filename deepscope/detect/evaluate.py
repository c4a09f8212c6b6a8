"""``detect.evaluate``: false-positive and detection rates of detectors on given inputs.

The attacks are inputs, not run here (this module does not import :mod:`deepscope.attacks`):
``adversarial`` maps a name to anything with ``x_adv`` and a bool ``success`` (an
:class:`~deepscope.attacks.AttackResult`). Detection rates count **successful** attacks only;
false positives count the benign inputs the model classifies **correctly** only.

Example
-------
>>> rep = detect.evaluate({"AmI": ami, "FS": fs}, x_test, y_test,
...                       adversarial={"FGSM": fgsm(x, y)})              # doctest: +SKIP
>>> rep.rate("AmI", "FGSM"), rep.fp_rate("FS"), rep.to_dict()          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from deepscope._jsonable import to_jsonable
from deepscope.detect.base import Detector
from deepscope.errors import InputError
from deepscope.models.execution import predict_logits
from deepscope.protocol import Persistent

__all__ = ["DetectionReport", "evaluate"]

#: Key of the benign (false-positive) counts in :attr:`DetectionReport.counts`.
FP = "fp"


@dataclass(frozen=True)
class DetectionReport(Persistent):
    """Counts of flagged inputs per detector: benign (FP) and per adversarial set.

    Attributes
    ----------
    detectors : tuple of str
        Detector names, in the order given.
    attacks : tuple of str
        Adversarial-set names, in the order given.
    counts : dict
        ``counts[detector][key] = (flagged, n)`` with ``key`` ``"fp"`` (correct benign inputs)
        or an attack name (successful attacks; ``None`` when no attack succeeded).
    attack_success : dict
        ``attack_success[attack] = (successful, attempted)``.
    n_benign, n_correct : int
        Benign inputs given, and those the model classifies correctly.
    thresholds, target_fprs : dict
        Each detector's threshold and target false-positive rate.
    """

    _format: ClassVar[str] = "detection-report"

    detectors: tuple[str, ...]
    attacks: tuple[str, ...]
    counts: dict[str, dict[str, tuple[int, int] | None]]
    attack_success: dict[str, tuple[int, int]]
    n_benign: int
    n_correct: int
    thresholds: dict[str, float]
    target_fprs: dict[str, float]

    def fp_rate(self, detector: str) -> float:
        """Share of the correctly classified benign inputs ``detector`` flags."""
        flagged, n = self.counts[detector][FP]  # type: ignore[misc]
        return _ratio(flagged, n)

    def rate(self, detector: str, attack: str) -> float | None:
        """Share of the successful ``attack`` inputs ``detector`` flags (None: no success)."""
        c = self.counts[detector][attack]
        return None if c is None else _ratio(c[0], c[1])

    def success_rate(self, attack: str) -> float:
        """Share of the attacked inputs on which ``attack`` succeeded."""
        ok, n = self.attack_success[attack]
        return _ratio(ok, n)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary: the counts and the rates."""
        rates = {d: {FP: self.fp_rate(d), **{a: self.rate(d, a) for a in self.attacks}}
                 for d in self.detectors}
        return to_jsonable({
            "detectors": self.detectors, "attacks": self.attacks, "counts": self.counts,
            "rates": rates, "attack_success": self.attack_success, "n_benign": self.n_benign,
            "n_correct": self.n_correct, "thresholds": self.thresholds,
            "target_fprs": self.target_fprs,
        })

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray | torch.Tensor]]:
        meta = self.to_dict()
        del meta["rates"]
        return meta, {}

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], *args: Any,
                    **kwargs: Any) -> DetectionReport:
        def pair(v: Any) -> tuple[int, int] | None:
            return None if v is None else (int(v[0]), int(v[1]))

        return cls(
            detectors=tuple(meta["detectors"]), attacks=tuple(meta["attacks"]),
            counts={d: {k: pair(v) for k, v in c.items()} for d, c in meta["counts"].items()},
            attack_success={k: pair(v) for k, v in meta["attack_success"].items()},  # type: ignore[misc]
            n_benign=int(meta["n_benign"]), n_correct=int(meta["n_correct"]),
            thresholds={k: float(v) for k, v in meta["thresholds"].items()},
            target_fprs={k: float(v) for k, v in meta["target_fprs"].items()})


def _ratio(k: int, n: int) -> float:
    """``k / n`` computed like ``flags.float().mean()`` (float32), so rates match the old code's."""
    return float(torch.tensor(k, dtype=torch.float32) / n)


def _named(detectors: Mapping[str, Detector] | Sequence[Detector]) -> dict[str, Detector]:
    named = dict(detectors) if isinstance(detectors, Mapping) else {
        d.name: d for d in detectors}
    if not named or not all(isinstance(d, Detector) for d in named.values()):
        raise InputError("detectors must be a non-empty mapping name → fitted Detector "
                         "(or a sequence of fitted detectors with distinct names)")
    return named


def _count(flags: torch.Tensor) -> tuple[int, int]:
    return int(flags.sum()), int(flags.numel())


def _successful(name: str, result: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x_adv, success = getattr(result, "x_adv", None), getattr(result, "success", None)
    if not isinstance(x_adv, torch.Tensor) or not isinstance(success, torch.Tensor):
        raise InputError(f"adversarial[{name!r}] must have tensors x_adv and success (an "
                         f"AttackResult), got {type(result).__name__}")
    if success.shape != (x_adv.shape[0],):
        raise InputError(f"adversarial[{name!r}]: success must have one entry per input")
    success = success.bool()
    return x_adv[success.to(x_adv.device)], success


def evaluate(
    detectors: Mapping[str, Detector] | Sequence[Detector],
    x_benign: torch.Tensor,
    y_benign: torch.Tensor,
    adversarial: Mapping[str, Any] | None = None,
    *,
    model: nn.Module | None = None,
    batch_size: int = 512,
) -> DetectionReport:
    """False-positive and detection counts of fitted detectors.

    Parameters
    ----------
    detectors : mapping or sequence of Detector
        Fitted detectors, by display name (a sequence uses their registered names).
    x_benign, y_benign : torch.Tensor
        Benign inputs and their true labels; only the ones ``model`` classifies correctly
        count as false-positive opportunities.
    adversarial : mapping, optional
        Name → attack result (``x_adv``, ``success``); only successful inputs count.
    model : torch.nn.Module, optional
        The classifier; default the first detector's model.
    batch_size : int
        Forward batch size of the benign predictions.

    Returns
    -------
    DetectionReport
    """
    named = _named(detectors)
    model = model if model is not None else next(iter(named.values())).model
    y = torch.as_tensor(y_benign).to(x_benign.device)
    correct = predict_logits(model, x_benign, batch_size=batch_size).argmax(1) == y
    benign = x_benign[correct]
    if benign.shape[0] == 0:
        raise InputError("the model classifies none of the benign inputs correctly; false "
                         "positives cannot be counted")
    adv = {name: _successful(name, res) for name, res in (adversarial or {}).items()}
    counts: dict[str, dict[str, tuple[int, int] | None]] = {}
    for dname, det in named.items():
        row: dict[str, tuple[int, int] | None] = {FP: _count(det.detect(benign))}
        for aname, (x_ok, _) in adv.items():
            row[aname] = _count(det.detect(x_ok)) if x_ok.shape[0] else None
        counts[dname] = row
    return DetectionReport(
        detectors=tuple(named), attacks=tuple(adv), counts=counts,
        attack_success={a: _count(ok) for a, (_, ok) in adv.items()},
        n_benign=int(x_benign.shape[0]), n_correct=int(correct.sum()),
        thresholds={n: float(d.threshold_) for n, d in named.items()},
        target_fprs={n: float(d.target_fpr) for n, d in named.items()})
