"""What an audit returns: one :class:`SectionResult` per section, gathered in an
:class:`AuditResult`.

A section result is a :class:`~deepscope.protocol.Persistent` object: its plain-type
``summary`` (numbers, with their n) and named arrays (curves, matrices, images) are what
``report/audit_report.py`` draws, and what the audit caches in its output folder so that a
re-run after an interruption skips the sections already done. A section that does not apply to
the model or the data is a result too: ``status == "skipped"`` with the ``reason`` in words.

Example
-------
>>> r = SectionResult.skipped("robustness", "the model is not differentiable (ONNX)")
>>> r.status, r.reason
('skipped', 'the model is not differentiable (ONNX)')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from deepscope._jsonable import to_jsonable
from deepscope.errors import InputError
from deepscope.protocol import Persistent

__all__ = ["STATUSES", "AuditResult", "SectionResult"]

#: ``"ok"``: computed; ``"skipped"``: does not apply (``reason`` says why).
STATUSES = ("ok", "skipped")


@dataclass(frozen=True, eq=False)
class SectionResult(Persistent):
    """The outcome of one audit section.

    Attributes
    ----------
    name : str
        Registered section name (``"model"``, ``"diagnosis"``, ...).
    status : {"ok", "skipped"}
    finding : str
        One sentence in words that opens the section in the report (the reason when skipped).
    reason : str or None
        Why the section was skipped.
    summary : dict
        Plain-type numbers and labels the report shows (every rate with its n).
    arrays : dict
        Named numpy arrays the report draws (curves, matrices, images).
    seconds : float
        Wall time of the computation.
    estimate : float
        The time estimated for it beforehand (seconds).
    key : str
        Fingerprint of the model, data and settings it was computed from (cache validity).
    """

    _format: ClassVar[str] = "audit-section"

    name: str
    status: str
    finding: str
    reason: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    estimate: float = 0.0
    key: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise InputError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "skipped" and not self.reason:
            raise InputError(f"skipped section {self.name!r} needs a reason")

    @classmethod
    def skipped(cls, name: str, reason: str, *, key: str = "") -> SectionResult:
        """A section that does not apply, with the reason as its finding."""
        return cls(name=name, status="skipped", finding=f"Not run: {reason}.", reason=reason,
                   key=key)

    @property
    def ok(self) -> bool:
        """True when the section was computed."""
        return self.status == "ok"

    def with_timing(self, *, seconds: float, estimate: float, key: str) -> SectionResult:
        """A copy carrying the measured time, the estimate and the cache key."""
        return SectionResult(self.name, self.status, self.finding, self.reason, self.summary,
                             self.arrays, float(seconds), float(estimate), key)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy without the arrays."""
        return to_jsonable({"name": self.name, "status": self.status, "finding": self.finding,
                            "reason": self.reason, "summary": self.summary,
                            "seconds": self.seconds, "estimate": self.estimate})

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = self.to_dict()
        meta["key"] = self.key
        return meta, {k: np.asarray(v) for k, v in self.arrays.items()}

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], *args: Any,
                    **kwargs: Any) -> SectionResult:
        return cls(name=meta["name"], status=meta["status"], finding=meta["finding"],
                   reason=meta.get("reason"), summary=dict(meta.get("summary") or {}),
                   arrays={k: np.asarray(v) for k, v in arrays.items()},
                   seconds=float(meta.get("seconds", 0.0)),
                   estimate=float(meta.get("estimate", 0.0)), key=str(meta.get("key", "")))


@dataclass(frozen=True, eq=False)
class AuditResult:
    """Every section of one audit, in report order, plus what was audited.

    Attributes
    ----------
    model : dict
        The model card's identity part (kind, path, input shape, classes, parameters).
    data : dict
        The data and its roles (sizes, where train-like data came from, warnings).
    sections : dict
        Section name → :class:`SectionResult`, in the registry's order.
    seconds : float
        Wall time of the whole run.
    """

    model: dict[str, Any]
    data: dict[str, Any]
    sections: dict[str, SectionResult]
    seconds: float = 0.0

    def get(self, name: str) -> SectionResult | None:
        """The section ``name`` when it ran and applied, else None."""
        res = self.sections.get(name)
        return res if res is not None and res.ok else None

    def summary(self) -> dict[str, Any]:
        """The machine-readable ``summary.json``: model, accuracy, per_label, bugs, sections."""
        card = self.get("model")
        diag = self.get("diagnosis")
        per_label: dict[str, Any] = {}
        accuracy = None
        if card is not None:
            accuracy = card.summary.get("accuracy")
            per_label = card.summary.get("per_label", {})
        bugs = [] if diag is None else [{"label": b["label"], "kind": b["kind"],
                                         "name": b.get("name"), "evidence": b.get("evidence")}
                                        for b in diag.summary.get("bugs", [])]
        return to_jsonable({
            "model": self.model, "data": self.data, "accuracy": accuracy,
            "n": None if card is None else card.summary.get("n"),
            "per_label": per_label, "bugs": bugs,
            "sections": {name: ("ok" if r.ok else r.reason) for name, r in self.sections.items()},
            "findings": {name: r.finding for name, r in self.sections.items()},
            "details": {name: r.summary for name, r in self.sections.items() if r.ok},
            "seconds": {"total": self.seconds,
                        **{name: r.seconds for name, r in self.sections.items()}},
        })
